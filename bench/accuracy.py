"""Accuracy and speed of `ocrd process` per model set / config variant, in one run (peers: bench/peers.py).

Usage:
    python bench/accuracy.py --eval ../shared/eval [--variant NAME=YAML ...] [--out bench/out]

Each variant is a YAML mapping merged over the built-in defaults, e.g.
`v5='{model_set: ppocrv5-mobile}'`. For every variant the script runs the
real `ocrd process` command over `<eval>/sroie-dev/img`, scores the results
with `<eval>/score.py`, reads the per-file timings from the JSON results
(steady state: model loading excluded) and times the whole command. It then
runs the checks on `<eval>/cn` named in issue 2. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import score, steady_from_created_at  # noqa: E402 - one scorer call and one steady-rate rule for all benches

CN_FIRST_LINE = {
    "rapidocr/ch_en_num.jpg": "正品促销",
    "rapidocr/text_cls.jpg": "怪我咯",
    "rapidocr/img_exif_orientation.jpg": "我是中国人",
    "rapidocr/black_font_color_transparent.png": "我是中国人",
    "rapidocr/white_font_color_transparent.png": "我是中国人",
}
CN_MULTILINE = ["cnocr/multi-line_cn1.png", "cnocr/multi-line_cn2.png"]
CN_EMPTY = "rapidocr/empty_black.jpg"


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def run_ocrd(files_or_dir: list[str], out: Path, config_yaml: str, workdir: Path) -> tuple[float, int]:
    """Run `ocrd process`; return (wall seconds, peak RSS of the process tree's largest child in KiB)."""
    cfg_path = workdir / "config.yaml"
    cfg_path.write_text(config_yaml or "{}\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "ocrd", "process", "-c", str(cfg_path), "-o", str(out), *files_or_dir]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"ocrd process failed ({proc.returncode}): {proc.stderr}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def cn_checks(eval_dir: Path, config_yaml: str, workdir: Path) -> dict[str, str]:
    out = workdir / "cn"
    files = [str(eval_dir / "cn" / f) for f in [*CN_FIRST_LINE, *CN_MULTILINE, CN_EMPTY]]
    run_ocrd(files, out, config_yaml, workdir)
    expected = {x["file"]: x for x in json.loads((eval_dir / "cn" / "expected.json").read_text(encoding="utf-8"))}
    results: dict[str, str] = {}

    def lines_of(rel: str) -> list[str]:
        path = out / (Path(rel).stem + ".json")
        if not path.exists():
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
        return [line["text"] for page in data["pages"] for line in page["lines"]]

    for rel, want in CN_FIRST_LINE.items():
        got = lines_of(rel)
        results[rel] = "ok" if got and got[0] == want else f"FAIL ({got[:1]})"
    for rel in CN_MULTILINE:
        want = "".join(expected[rel]["expected_lines"])
        got = "".join(lines_of(rel))
        results[rel] = f"1-CER {1 - levenshtein(want, got) / len(want):.3f}"
    got = lines_of(CN_EMPTY)
    results[CN_EMPTY] = "ok (0 lines)" if not got else f"FAIL ({len(got)} lines)"
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", required=True, type=Path, help="the shared eval folder (holds score.py)")
    ap.add_argument("--variant", action="append", default=[], help="NAME=YAML config override (repeatable)")
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    args = ap.parse_args()
    variants = [v.split("=", 1) for v in args.variant] or [["default", "{}"]]
    img_dir = args.eval / "sroie-dev" / "img"
    n_images = len(list(img_dir.glob("*.jpg")))
    rows = []
    cn_rows = {}
    for name, yaml_text in variants:
        work = args.out / name
        out = work / "sroie"
        work.mkdir(parents=True, exist_ok=True)
        wall, _ = run_ocrd([str(img_dir)], out, yaml_text, work)
        s = score(args.eval, "sroie-dev", out)
        rows.append((f"ocrd `{name}`", steady_from_created_at(out), n_images / wall * 60, s))
        cn_rows[name] = cn_checks(args.eval, yaml_text, work)
        print(f"# {name}: {rows[-1][1]:.1f} img/min steady, {rows[-1][2]:.1f} whole command; {s}", file=sys.stderr)
    print(f"\nsroie-dev ({n_images} receipts), {os.cpu_count()} cores\n")
    print("| system | img/min steady | img/min whole command | det F1 | e2e F1 | CER | word F1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, steady, whole, s in rows:
        print(f"| {name} | {steady:.1f} | {whole:.1f} | {s['det_f1']:.3f} | {s['e2e_f1']:.3f} | {s['cer']:.4f} | {s['word_f1']:.3f} |")
    print("\ncn checks\n")
    names = list(cn_rows)
    print("| file | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for rel in cn_rows[names[0]]:
        print(f"| {rel} | " + " | ".join(cn_rows[n][rel] for n in names) + " |")


if __name__ == "__main__":
    main()
