"""Probe: is an INT8 quantized recognizer / detector faster at equal accuracy? (idea for issue 6)

Usage:
    python bench/quantize_probe.py --eval EVAL_DIR [--limit 10] [--ops MatMul] [--work /tmp/ocrd-bench/quant]

The static INT8 recognizer this probe led to is built into ocrd (ocrd/int8.py, `recognize.precision`);
bench/peers.py and bench/accuracy.py measure it against FP32 (`--ocrd-variant 'fp32={recognize: {precision: fp32}}'`).
The probe runs with `recognize.precision: fp32` so that it compares dynamic INT8 against the shipped model.

Quantizes the default model set's rec (and det) models with onnxruntime's own
`onnxruntime.quantization.quantize_dynamic` (weights INT8, per-channel off, the ONNX metadata such as
the embedded charset copied over), writes them under --work (never into the repo), then runs
bench/model_floor.py (1 worker x 1 thread, same receipts) with the FP32 defaults and with
`recognize.model` / `detect.model` pointing at the quantized files, and prints time and score side by
side. ocrd itself is not changed; this only tells whether the lever is worth building.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def quantize(src: Path, dst: Path, ops: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ocrd.engine.int8.build import copy_metadata

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=ops or None)
    copy_metadata(src, dst)


def floor(eval_dir: Path, limit: int, config: str, out: Path) -> dict:
    subprocess.run([sys.executable, str(HERE / "model_floor.py"), "--eval", str(eval_dir), "--limit", str(limit),
                    "--config", config, "--work", str(out.with_suffix("")), "--json", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--ops", default="MatMul", help="comma-separated op types to quantize ('' = onnxruntime's default set)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ocrd-bench/quant"))
    ap.add_argument("--json", type=Path, default=Path("bench/out/quantize_probe.json"))
    args = ap.parse_args()
    from ocrd.config.load import load_config
    from ocrd.engine.models import model_set_from_config

    ms = model_set_from_config(load_config(None))
    args.work.mkdir(parents=True, exist_ok=True)
    ops = [o for o in args.ops.split(",") if o]
    rec_q = args.work / "rec_int8.onnx"
    det_q = args.work / "det_int8.onnx"
    quantize(ms.rec.path, rec_q, ops)
    quantize(ms.det.path, det_q, ops)
    variants = {
        "fp32": "recognize: {precision: fp32}",
        "rec int8": f"recognize: {{model: {rec_q}, precision: fp32}}",
        "rec + det int8": f"recognize: {{model: {rec_q}, precision: fp32}}\ndetect: {{model: {det_q}}}",
    }
    rows = {}
    for name, cfg in variants.items():
        rows[name] = floor(args.eval, args.limit, cfg, args.work / f"{len(rows)}.json")
        r = rows[name]
        print(f"# {name}: {r['total_s']:.1f} s", file=sys.stderr)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"ops": ops, "rows": rows}, indent=1))
    print(f"{args.limit} receipts, 1 worker x 1 thread, quantized op types: {ops or 'default'}\n")
    print("| models | s total | img/min (1 worker) | det model s | rec model s | det F1 | e2e F1 | CER | word F1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        b, s = r["breakdown_s"], r["score"]
        print(f"| {name} | {r['total_s']:.1f} | {r['img_per_min_single_worker']:.1f} | {b['detect: model']:.1f} | "
              f"{b['recognize: model']:.1f} | {s['det_f1']:.3f} | {s['e2e_f1']:.3f} | {s['cer']:.4f} | {s['word_f1']:.3f} |")


if __name__ == "__main__":
    main()
