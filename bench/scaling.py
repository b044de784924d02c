"""How cost grows with the work: time per page against megapixels, and throughput against workers x threads.

Usage:
    python bench/scaling.py --eval EVAL_DIR [--pages 3] [--mp 0.5,1,2,4,8] [--shapes 1x1,1x2,2x1]
        [--limit 0] [--json bench/out/scaling.json] [--png-dir docs/img]

1. Megapixels: the first --pages receipts of sroie-dev are resized (Lanczos, aspect kept) to each
   target size, saved as JPEG quality 95 under /tmp, and run through `ocrd.service.pipeline.process_file`
   in one process (1 worker x 1 thread, defaults, one untimed warm-up); the median per page of
   each stage is charted (docs/img/scaling_megapixels.png).
2. Workers x threads: the real `ocrd process` command over sroie-dev/img for each shape
   (`workers: {count: W, intra_op_threads: T}`), steady images/min from the results' created_at
   (docs/img/scaling_workers.png).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import image_dir, steady_from_created_at  # noqa: E402
from proc_tree import run_sampled  # noqa: E402

WORK = Path("/tmp/ocrd-bench/scaling")


def megapixel_sweep(eval_dir: Path, pages: int, targets: list[float]) -> list[dict]:
    import cv2

    from ocrd.config.load import load_config
    from ocrd.engine.ocr_engine import OcrEngine
    from ocrd.engine.int8.cache import prepare_model_set
    from ocrd.intake.decode import decoder_env
    from ocrd.jobs.ids import new_job_id
    from ocrd.service.pipeline import Job, process_file

    src = sorted((eval_dir / "sroie-dev" / "img").glob("*.jpg"))[:pages]
    mp_dir = WORK / "mp"
    shutil.rmtree(mp_dir, ignore_errors=True)
    mp_dir.mkdir(parents=True)
    files: list[tuple[float, Path]] = []
    for p in src:
        img = cv2.imread(str(p))
        h, w = img.shape[:2]
        for mp in targets:
            s = (mp * 1e6 / (h * w)) ** 0.5
            nw, nh = max(1, round(w * s)), max(1, round(h * s))
            out = mp_dir / f"{p.stem}_{mp:g}mp.jpg"
            cv2.imwrite(str(out), cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LANCZOS4), [cv2.IMWRITE_JPEG_QUALITY, 95])
            files.append((mp, out))
    cfg_path = WORK / "config.yaml"
    cfg_path.write_text("{}\n")
    cfg = load_config(cfg_path).with_outbox(WORK / "mp-out")
    os.environ.update(decoder_env(cfg.intake))
    engine = OcrEngine.from_config(cfg, model_set=prepare_model_set(cfg).model_set, intra_op_threads=1)
    engine.warm_up()

    def run(path: Path) -> dict:
        job = Job(job_id=new_job_id(), path=path, rel_path=path.name, out_dir=cfg.outbox, stem=path.stem)
        t0 = time.perf_counter()
        o = process_file(job, engine, cfg)
        wall = (time.perf_counter() - t0) * 1000
        return {"wall_ms": wall, "decode_ms": o.decode_ms, "detect_ms": o.detect_ms, "classify_ms": o.classify_ms,
                "recognize_ms": o.recognize_ms, "lines": o.lines}

    run(files[0][1])
    rows = []
    for mp in targets:
        runs = [run(f) for m, f in files if m == mp]
        row = {"mp": mp, "pages": len(runs)}
        for k in runs[0]:
            row[k] = statistics.median(r[k] for r in runs)
        row["outputs_other_ms"] = row["wall_ms"] - row["decode_ms"] - row["detect_ms"] - row["classify_ms"] - row["recognize_ms"]
        rows.append(row)
        print(f"# {mp:g} MP: {row['wall_ms']:.0f} ms/page (median of {len(runs)})", file=sys.stderr)
    return rows


def shape_sweep(eval_dir: Path, shapes: list[str], limit: int) -> list[dict]:
    img_dir = image_dir(eval_dir, limit, WORK)
    n = len(list(img_dir.glob("*.jpg")))
    rows = []
    for shape in shapes:
        w, t = (int(x) for x in shape.split("x"))
        out = WORK / f"shape-{shape}"
        shutil.rmtree(out, ignore_errors=True)
        cfg = WORK / f"shape-{shape}.yaml"
        cfg.write_text(f"workers: {{count: {w}, intra_op_threads: {t}}}\n")
        cmd = [sys.executable, "-m", "ocrd", "process", "-c", str(cfg), "-o", str(out), str(img_dir)]
        code, wall, s = run_sampled(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows.append({"shape": shape, "workers": w, "threads": t, "steady_img_min": steady_from_created_at(out),
                     "whole_img_min": n / wall * 60, "peak_rss_mib": s.peak_mib, "exit": code})
        print(f"# {shape}: {rows[-1]['steady_img_min']:.1f} img/min steady", file=sys.stderr)
    return rows


def plot(mp_rows: list[dict], shape_rows: list[dict], png_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png_dir.mkdir(parents=True, exist_ok=True)
    if mp_rows:
        fig, ax = plt.subplots(figsize=(9.5, 4.5), dpi=110)
        xs = [r["mp"] for r in mp_rows]
        bottom = [0.0] * len(xs)
        for key, label, color in [("decode_ms", "decode", "tab:gray"), ("detect_ms", "detect", "tab:blue"),
                                  ("classify_ms", "crop + classify", "tab:orange"),
                                  ("recognize_ms", "recognize", "tab:green"),
                                  ("outputs_other_ms", "outputs + other", "tab:purple")]:
            vals = [r[key] / 1000 for r in mp_rows]
            ax.fill_between(xs, bottom, [b + v for b, v in zip(bottom, vals)], label=label, color=color, alpha=0.7, step=None)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.plot(xs, [r["wall_ms"] / 1000 for r in mp_rows], "k.-", label="total per page")
        ax.set_xlabel("page size (megapixels)")
        ax.set_ylabel("seconds per page (median, 1 worker x 1 thread)")
        ax.set_xlim(0, max(xs) * 1.02)
        ax.set_ylim(0, max(r["wall_ms"] for r in mp_rows) / 1000 * 1.2)
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        ax.set_title("ocrd: time per page against page size (same receipts resized)", fontsize=10)
        fig.tight_layout()
        fig.savefig(png_dir / "scaling_megapixels.png")
    if shape_rows:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        labels = [f"{r['workers']} worker(s)\nx {r['threads']} thread(s)" for r in shape_rows]
        bars = ax.bar(labels, [r["steady_img_min"] for r in shape_rows], color="tab:blue")
        for b, r in zip(bars, shape_rows):
            ax.annotate(f"{r['steady_img_min']:.1f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=9)
        ax.set_ylabel("images/min (steady, sroie-dev)")
        ax.set_ylim(0, max(r["steady_img_min"] for r in shape_rows) * 1.2)
        ax.set_title(f"ocrd process throughput vs workers x threads ({os.cpu_count()} cores)")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(png_dir / "scaling_workers.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", required=True, type=Path)
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--mp", default="0.5,1,2,4,8")
    ap.add_argument("--shapes", default="1x1,1x2,2x1")
    ap.add_argument("--limit", type=int, default=0, help="workers x threads on the first N receipts only")
    ap.add_argument("--json", type=Path, default=Path("bench/out/scaling.json"))
    ap.add_argument("--png-dir", type=Path, default=Path("docs/img"))
    ap.add_argument("--replot", type=Path, help="only redraw the charts from an earlier --json file")
    args = ap.parse_args()
    if args.replot:
        data = json.loads(args.replot.read_text())
        plot(data["megapixels"], data["shapes"], args.png_dir)
        return
    WORK.mkdir(parents=True, exist_ok=True)
    mp_rows = megapixel_sweep(args.eval, args.pages, [float(x) for x in args.mp.split(",")]) if args.mp else []
    shape_rows = shape_sweep(args.eval, args.shapes.split(","), args.limit) if args.shapes else []
    plot(mp_rows, shape_rows, args.png_dir)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"megapixels": mp_rows, "shapes": shape_rows}, indent=1))
    if mp_rows:
        print("| page MP | ms/page | decode | detect | crop+classify | recognize | outputs+other | lines |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in mp_rows:
            print(f"| {r['mp']:g} | {r['wall_ms']:.0f} | {r['decode_ms']:.0f} | {r['detect_ms']:.0f} | {r['classify_ms']:.0f} | "
                  f"{r['recognize_ms']:.0f} | {r['outputs_other_ms']:.0f} | {r['lines']:.0f} |")
    if shape_rows:
        print("\n| workers x threads | img/min steady | img/min whole command | peak RSS (tree) |\n|---|---:|---:|---:|")
        for r in shape_rows:
            print(f"| {r['workers']} x {r['threads']} | {r['steady_img_min']:.1f} | {r['whole_img_min']:.1f} | {r['peak_rss_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
