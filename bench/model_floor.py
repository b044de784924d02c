"""Model floor: how much of ocrd's per-file time is onnxruntime running ocrd's own models.

Usage:
    python bench/model_floor.py --eval EVAL_DIR [--limit N] [--threads 1] [--json bench/out/model_floor.json]

In one process, with one engine built from the built-in defaults (intra-op threads = --threads), it
runs the daemon's own per-file function `ocrd.service.pipeline.process_file` (decode, detect, classify,
recognise, write JSON + text + visualization, then give the page's memory back as a worker does)
over `<eval>/sroie-dev/img`, after one untimed warm-up file. `ocrd.engine.runtime.OnnxModel.run` is
wrapped to add up the pure onnxruntime time per model;
the other stages are wrapped the same way (decode = open_document + page iteration, outputs =
plan_outputs split into rendering, encoding, the PDF and atomic writes). Reports the ratio
total / model floor (issue 6 target: <= 1.15) and where the rest goes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

T: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


def timed(name: str, fn):
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            T[name] += time.perf_counter() - t0
            CALLS[name] += 1

    return wrapper


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", default="{}", help="YAML overrides merged over the defaults")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ocrd-bench/floor"))
    ap.add_argument("--json", type=Path, default=Path("bench/out/model_floor.json"))
    args = ap.parse_args()

    from ocrd.config.load import load_config
    from ocrd.intake.decode import decoder_env

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    cfg_path = args.work / "config.yaml"
    cfg_path.write_text(args.config + "\n")
    cfg = load_config(cfg_path).with_outbox(args.work / "out")
    os.environ.update(decoder_env(cfg.intake))

    import ocrd.outputs.writers as outputs
    import ocrd.service.pipeline as pipeline
    import ocrd.engine.runtime as runtime
    from ocrd.engine.ocr_engine import OcrEngine
    from ocrd.engine.int8.cache import prepare_model_set
    from ocrd.jobs.ids import new_job_id
    from ocrd.jobs.records import Job

    orig_run = runtime.OnnxModel.run

    def run(self, batch):
        t0 = time.perf_counter()
        try:
            return orig_run(self, batch)
        finally:
            key = "model:" + self.path.stem
            T[key] += time.perf_counter() - t0
            CALLS[key] += 1

    runtime.OnnxModel.run = run
    orig_open = pipeline.open_document

    def open_document(path, icfg):
        doc = timed("decode", orig_open)(path, icfg)
        orig_pages = doc.pages

        def pages():
            it = iter(orig_pages())
            while True:
                t0 = time.perf_counter()
                page = next(it, None)
                T["decode"] += time.perf_counter() - t0
                if page is None:
                    return
                yield page

        class Proxy:  # Document is a frozen, slotted dataclass: wrap it instead of patching it
            def __getattr__(self, name):
                return getattr(doc, name)

        proxy = Proxy()
        proxy.pages = pages  # type: ignore[attr-defined]
        return proxy

    pipeline.open_document = open_document
    import ocrd.outputs.pdf_document as pdf_document

    pipeline.plan_outputs = timed("outputs", outputs.plan_outputs)
    pdf_document.encode_pdf = timed("outputs:pdf", pdf_document.encode_pdf)  # plan_outputs imports it per call
    outputs.render_visualization = timed("outputs:render_vis", outputs.render_visualization)
    outputs.encode_image = timed("outputs:encode_vis", outputs.encode_image)
    outputs.atomic_write_bytes = timed("outputs:atomic_write", outputs.atomic_write_bytes)
    outputs.result_json_text = timed("outputs:json_text", outputs.result_json_text)
    pipeline.visualization_copy = timed("vis_copy", pipeline.visualization_copy)

    from ocrd.service.allocator import keep_freed_memory_for_reuse
    import ocrd.service.workers as workers
    from ocrd.service.workers import run_job

    workers.release_freed_memory = timed("release_memory", workers.release_freed_memory)

    if cfg.workers.reuse_freed_memory:  # as a worker does at start (ocrd.service.workers._init_worker)
        keep_freed_memory_for_reuse()
    engine = OcrEngine.from_config(cfg, model_set=prepare_model_set(cfg).model_set, intra_op_threads=args.threads)
    engine.warm_up()
    orig_read = engine.read
    engine.read = timed("engine.read", orig_read)  # type: ignore[method-assign]

    images = sorted((args.eval / "sroie-dev" / "img").glob("*.jpg"))
    if args.limit:
        images = images[: args.limit]

    def one(path: Path) -> tuple[float, object]:
        job = Job(job_id=new_job_id(), path=path, rel_path=path.name, out_dir=cfg.outbox, stem=path.stem)
        t0 = time.perf_counter()
        outcome = run_job(job, engine, cfg)  # as a worker runs it (process_file, then memory released)
        return time.perf_counter() - t0, outcome

    one(images[0])  # warm-up (first real page: allocations, caches)
    T.clear()
    CALLS.clear()
    per_file = []
    stage = defaultdict(float)
    for path in images:
        wall, outcome = one(path)
        per_file.append(wall)
        stage["detect"] += outcome.detect_ms / 1000
        stage["classify"] += outcome.classify_ms / 1000
        stage["recognize"] += outcome.recognize_ms / 1000
    total = sum(per_file)
    models = {k[6:]: v for k, v in T.items() if k.startswith("model:")}
    floor = sum(models.values())
    det_model = sum(v for k, v in models.items() if "det" in k)
    cls_model = sum(v for k, v in models.items() if "cls" in k)
    rec_model = sum(v for k, v in models.items() if "rec" in k)
    breakdown = {
        "decode (read + sha256 + imdecode)": T["decode"],
        "detect: model": det_model,
        "detect: resize/normalise + box post-processing": stage["detect"] - det_model,
        "crop + classify: model": cls_model,
        "crop + classify: rest": stage["classify"] - cls_model,
        "recognize: model": rec_model,
        "recognize: resize/normalise + CTC decode": stage["recognize"] - rec_model,
        "visualization copy (downscale)": T["vis_copy"],
        "outputs: render visualization": T["outputs:render_vis"],
        "outputs: encode visualization JPEG": T["outputs:encode_vis"],
        "outputs: JSON text": T["outputs:json_text"],
        "outputs: atomic writes (fsync)": T["outputs:atomic_write"],
        "outputs: searchable PDF (font, text layer, qpdf)": T.get("outputs:pdf", 0.0),
        "memory given back after the job (malloc_trim)": T["release_memory"],
    }
    accounted = sum(breakdown.values())
    breakdown["other (result objects, reading order, describe, ...)"] = total - accounted
    report = {
        "images": len(images),
        "threads": args.threads,
        "total_s": total,
        "model_floor_s": floor,
        "ratio_total_over_floor": total / floor,
        "ratio_engine_read_over_floor": T["engine.read"] / floor,
        "img_per_min_single_worker": len(images) / total * 60,
        "model_calls": {k[6:]: v for k, v in CALLS.items() if k.startswith("model:")},
        "model_s": models,
        "breakdown_s": breakdown,
    }
    import subprocess

    scored = subprocess.run([sys.executable, str(args.eval / "score.py"), str(args.eval / "sroie-dev" / "box"),
                             str(cfg.outbox)], capture_output=True, text=True)
    report["score"] = json.loads(scored.stdout) if scored.returncode == 0 else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"{len(images)} receipts, 1 worker x {args.threads} thread(s), defaults")
    print(f"total {total:.2f} s, model floor {floor:.2f} s -> ratio {total / floor:.3f} "
          f"(engine.read alone {T['engine.read'] / floor:.3f}); {len(images) / total * 60:.1f} img/min\n")
    print("| stage | seconds | share of total |\n|---|---:|---:|")
    for k, v in breakdown.items():
        print(f"| {k} | {v:.2f} | {v / total * 100:.1f} % |")
    print(f"| **total** | {total:.2f} | 100 % |")
    print("\nmodel calls:", json.dumps(report["model_calls"]))
    if report["score"]:
        sc = report["score"]
        print(f"score: det F1 {sc['det_f1']:.3f}, e2e F1 {sc['e2e_f1']:.3f}, CER {sc['cer']:.4f}, word F1 {sc['word_f1']:.3f}")


if __name__ == "__main__":
    main()
