"""ocrd vs faster-paddle 1.0.4 (small, tiny) vs RapidOCR 3.10 vs Tesseract 5 on the same folder, in one run, back to back.

Usage:
    python bench/peers.py --eval EVAL_DIR [--set sroie-dev|funsd-dev|rendered-300] [--scorer score.py] [--limit N]
        [--out /tmp/ocrd-bench/peers] [--json bench/out/peers.json] [--ocrd-variant NAME=YAML ...] [--skip SYSTEM ...]

For every system: images/min in steady state (model load excluded) and for the whole command
(process start to exit), the shared scorer's det F1, e2e F1, CER and word F1, and the peak RSS of
the whole process tree (the command and all its descendants, sampled from /proc every 50 ms).

* ocrd: the real `ocrd process` command with the built-in defaults (config `{}`); steady state is
  measured from the first to the last result's `created_at`, as in bench/accuracy.py.
* RapidOCR 3.10 with its defaults (`RapidOCR()`), in a child Python process; steady state is the
  loop over the images after the engine is built.
* faster-paddle 1.0.4 (`OcrEngine(model_size="small" | "tiny")`, Rust pre/post-processing on ONNX
  Runtime, the same PP-OCRv6 models, bundled), in a child Python process, its own defaults (it sizes
  its threads to the machine); steady state is the loop after the engine is built. Its `bounds`
  are axis-aligned lines. Skipped with a note when the package is not installed.
* Tesseract 5 (`tesseract IMG - -l eng tsv`, one process per image, as a shell loop would): words
  grouped by (page, block, paragraph, line) into line boxes; steady state excludes only the Python
  driver's start. Skipped with a note when `tesseract` is not installed.

`--limit N` runs on copies of the first N images (for developing); the score then covers those N only.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proc_tree import run_sampled  # noqa: E402

HERE = Path(__file__).resolve()


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def image_dir(eval_dir: Path, eval_set: str, limit: int | None, work: Path) -> Path:
    src = eval_dir / eval_set / "img"
    if not limit:
        return src
    sub = work / f"subset-{eval_set}-{limit}"
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir(parents=True)
    for p in images_in(src)[:limit]:
        shutil.copyfile(p, sub / p.name)  # a copy, not a link: ocrd never follows symbolic links
    return sub


def score(eval_dir: Path, eval_set: str, pred: Path, scorer: Path | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, str(scorer or eval_dir / "score.py"), str(eval_dir / eval_set / "box"), str(pred)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(proc.stdout)


def steady_from_created_at(out: Path) -> float:
    """Images per minute between the first and the last result written (excludes start-up and model load).

    Uses each result's `created_at`, so it is right for any number of parallel workers.
    """
    from datetime import datetime

    stamps = sorted(
        datetime.fromisoformat(json.loads(p.read_text(encoding="utf-8"))["created_at"].replace("Z", "+00:00"))
        for p in out.glob("*.json")
    )
    if len(stamps) < 2:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]).total_seconds() * 60


# ----------------------------------------------------------------------------- children


def child_rapidocr(img_dir: Path, out: Path) -> None:
    t0 = time.perf_counter()
    from rapidocr import RapidOCR

    engine = RapidOCR()
    out.mkdir(parents=True, exist_ok=True)
    images = images_in(img_dir)
    t1 = time.perf_counter()
    for image in images:
        result = engine(str(image))
        lines = []
        if result.boxes is not None:
            for box, text in zip(result.boxes, result.txts):
                lines.append({"text": text, "box": [[float(x), float(y)] for x, y in box]})
        (out / f"{image.stem}.json").write_text(json.dumps(lines, ensure_ascii=False), encoding="utf-8")
    t2 = time.perf_counter()
    # steady: (n - 1) intervals would need per-image stamps; use n images over the loop time
    print(json.dumps({"load_s": t1 - t0, "loop_s": t2 - t1, "images": len(images)}))


def child_faster_paddle(size: str, img_dir: Path, out: Path) -> None:
    t0 = time.perf_counter()
    import faster_paddle

    engine = faster_paddle.OcrEngine(model_size=size)
    out.mkdir(parents=True, exist_ok=True)
    images = images_in(img_dir)
    t1 = time.perf_counter()
    for image in images:
        result = engine.ocr(image.read_bytes())
        lines = []
        for bound in (result.get("bounds") or {}).values():
            (x0, y0), (x1, y1) = bound["topLeftCoord"], bound["bottomRightCoord"]
            lines.append({"text": bound["text"], "box": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]})
        (out / f"{image.stem}.json").write_text(json.dumps(lines, ensure_ascii=False), encoding="utf-8")
    t2 = time.perf_counter()
    print(json.dumps({"load_s": t1 - t0, "loop_s": t2 - t1, "images": len(images)}))


def tesseract_lines(tsv_text: str) -> list[dict]:
    groups: dict[tuple, list] = {}
    for row in csv.DictReader(io.StringIO(tsv_text), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5":
            continue
        text = (row.get("text") or "").strip()
        if not text or float(row.get("conf") or -1) < 0:
            continue
        key = (row["page_num"], row["block_num"], row["par_num"], row["line_num"])
        x, y, w, h = (int(row[k]) for k in ("left", "top", "width", "height"))
        groups.setdefault(key, []).append((x, y, x + w, y + h, text))
    lines = []
    for words in groups.values():
        x0 = min(w[0] for w in words)
        y0 = min(w[1] for w in words)
        x1 = max(w[2] for w in words)
        y1 = max(w[3] for w in words)
        text = " ".join(w[4] for w in sorted(words, key=lambda w: w[0]))
        lines.append({"text": text, "box": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]})
    return lines


def child_tesseract(img_dir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    images = images_in(img_dir)
    t1 = time.perf_counter()
    for image in images:
        proc = subprocess.run(["tesseract", str(image), "-", "-l", "eng", "tsv"], capture_output=True, text=True)
        lines = tesseract_lines(proc.stdout) if proc.returncode == 0 else []
        (out / f"{image.stem}.json").write_text(json.dumps(lines, ensure_ascii=False), encoding="utf-8")
    t2 = time.perf_counter()
    print(json.dumps({"load_s": 0.0, "loop_s": t2 - t1, "images": len(images)}))


# ----------------------------------------------------------------------------- systems


def run_ocrd(name: str, yaml_text: str, img_dir: Path, work: Path, n: int) -> dict:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    cfg = work / f"{name}.yaml"
    cfg.write_text(yaml_text or "{}\n")
    cmd = [sys.executable, "-m", "ocrd", "process", "-c", str(cfg), "-o", str(out), str(img_dir)]
    code, wall, s = run_sampled(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if code not in (0, 1):
        raise SystemExit(f"ocrd process failed ({code})")
    return {"system": f"ocrd `{name}`", "pred": out, "steady": steady_from_created_at(out),
            "whole": n / wall * 60, "wall_s": wall, "peak_mib": s.peak_mib}



def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        kind, img_dir, out = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
        if kind.startswith("faster-paddle-"):
            child_faster_paddle(kind.removeprefix("faster-paddle-"), img_dir, out)
        else:
            (child_rapidocr if kind == "rapidocr" else child_tesseract)(img_dir, out)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", required=True, type=Path)
    ap.add_argument("--set", default="sroie-dev", help="the eval folder: sroie-dev (receipts) or funsd-dev (forms)")
    ap.add_argument("--scorer", type=Path, help="score.py, when the eval folder has none (bench/rendered_pages.py's set)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ocrd-bench/peers"), help="work folder (outside the repo)")
    ap.add_argument("--json", type=Path, default=Path("bench/out/peers.json"))
    ap.add_argument("--ocrd-variant", action="append", default=[], help="extra ocrd config NAME=YAML")
    ap.add_argument("--skip", action="append", default=[],
                    help="faster-paddle-small | faster-paddle-tiny | rapidocr | tesseract")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    img_dir = image_dir(args.eval, args.set, args.limit, args.out)
    n = len(images_in(img_dir))
    rows, notes = [], []
    for name, yaml_text in [("default", "{}"), *(v.split("=", 1) for v in args.ocrd_variant)]:
        rows.append(run_ocrd(name, yaml_text, img_dir, args.out, n))
        print(f"# {rows[-1]['system']}: {rows[-1]['steady']:.1f} img/min steady", file=sys.stderr)
    peers = [("faster-paddle-small", "faster-paddle 1.0.4 small"), ("faster-paddle-tiny", "faster-paddle 1.0.4 tiny"),
             ("rapidocr", "RapidOCR 3.10 defaults"), ("tesseract", "Tesseract 5 (`-l eng`, TSV lines)")]
    for kind, label in peers:
        if kind in args.skip:
            continue
        if kind.startswith("faster-paddle") and importlib.util.find_spec("faster_paddle") is None:
            notes.append(f"{label} skipped: not installed (pip install faster-paddle==1.0.4)")
            continue
        if kind == "tesseract" and shutil.which("tesseract") is None:
            notes.append("Tesseract skipped: `tesseract` is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)")
            continue
        out = args.out / kind
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, str(HERE), "--_child", kind, str(img_dir), str(out)]
        stdout_path = args.out / f"{kind}.stdout"
        with open(stdout_path, "w") as fh:
            code, wall, s = run_sampled(cmd, stdout=fh, stderr=subprocess.DEVNULL)
        if code != 0:
            raise SystemExit(f"{kind} failed ({code})")
        info = json.loads(stdout_path.read_text().strip().splitlines()[-1])
        rows.append({"system": label, "pred": out, "steady": info["images"] / info["loop_s"] * 60,
                     "whole": n / wall * 60, "wall_s": wall, "peak_mib": s.peak_mib, "load_s": info["load_s"]})
        print(f"# {label}: {rows[-1]['steady']:.1f} img/min steady", file=sys.stderr)
    if shutil.which("tesseract"):
        ver = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
        notes.append(f"tesseract version: {' '.join(ver)}")
    for row in rows:
        row["score"] = score(args.eval, args.set, row["pred"], args.scorer)
        row["pred"] = str(row["pred"])
    print(f"\n{args.set} ({n} images)\n")
    print("| system | img/min steady | img/min whole command | det F1 | e2e F1 | CER | word F1 | peak RSS (tree) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        s = r["score"]
        print(f"| {r['system']} | {r['steady']:.1f} | {r['whole']:.1f} | {s['det_f1']:.3f} | {s['e2e_f1']:.3f} | "
              f"{s['cer']:.4f} | {s['word_f1']:.3f} | {r['peak_mib']:.0f} MiB |")
    for note in notes:
        print(f"\n{note}")
    for prefix in ("faster-paddle 1.0.4 small", "faster-paddle 1.0.4 tiny", "RapidOCR"):
        base = next((r for r in rows if r["system"].startswith(prefix)), None)
        if base:
            for r in rows:
                if r["system"].startswith("ocrd"):
                    print(f"\n{r['system']} / {prefix}: steady {r['steady'] / base['steady']:.2f}x, "
                          f"whole {r['whole'] / base['whole']:.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"images": n, "rows": rows, "notes": notes}, indent=1))


if __name__ == "__main__":
    main()
