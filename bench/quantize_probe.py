"""Probe: is an INT8 quantized recognizer / detector faster at equal accuracy? (idea for issue 6)

Usage:
    python bench/quantize_probe.py --eval EVAL_DIR [--limit 10] [--ops MatMul] [--work /tmp/ocrd-bench/quant]
    python bench/quantize_probe.py --eval EVAL_DIR --static [--limit 40]

--static: onnxruntime's `quantize_static` in QDQ format instead (Conv weights INT8 per channel,
activations UINT8), calibrated on model inputs captured while ocrd reads 24 pages of rendered,
blurred and noised receipt-like text (never the evaluation images); the models are first converted
to opset 13, which per-channel QDQ needs.

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

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=ops or None)
    _copy_metadata(src, dst)


def _capture_inputs(pages: int = 24) -> dict[str, list]:
    """Model inputs, by model file name, while the default engine reads rendered receipt-like pages."""
    import random

    import cv2
    import numpy as np

    sys.path.insert(0, str(HERE.parent))
    import ocrd.runtime as runtime
    from ocrd.config import load_config
    from ocrd.engine import OcrEngine
    from tests.fonts import latin_font_path, render_lines

    captured: dict[str, list] = {}
    real_run = runtime.OnnxModel.run

    def recording_run(self, batch):
        captured.setdefault(self.path.name, []).append(batch.copy())
        return real_run(self, batch)

    runtime.OnnxModel.run = recording_run
    rng = random.Random(5)
    words = ("TOTAL CASH CHANGE QTY ITEM PRICE GST TAX INVOICE DATE TIME NO RM SDN BHD Tel Fax Receipt Thank you "
             "Please come again Subtotal Rounding Discount Member").split()  # fmt: skip

    def line() -> str:
        parts = [rng.choice(words) for _ in range(rng.randint(1, 5))]
        if rng.random() < 0.6:
            parts.append(f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}")
        return " ".join(parts)

    engine = OcrEngine.from_config(load_config(None))
    for page in range(pages):
        lines = [line() for _ in range(rng.randint(15, 45))]
        image, _ = render_lines(lines, latin_font_path(), size_px=rng.choice([18, 22, 26, 30]),
                                line_gap_px=rng.choice([6, 10, 14]))  # fmt: skip
        if rng.random() < 0.5:
            image = cv2.GaussianBlur(image, (3, 3), 0)
        noise = np.random.default_rng(page).normal(0, 8, image.shape)
        engine.read(np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8))
    runtime.OnnxModel.run = real_run
    return captured


def quantize_static_qdq(src: Path, dst: Path, batches: list) -> None:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, input_name: str):
            self._feeds = iter([{input_name: b} for b in batches])

        def get_next(self):
            return next(self._feeds, None)

    upgraded, prepared = dst.with_suffix(".op13.onnx"), dst.with_suffix(".pre.onnx")
    onnx.save(version_converter.convert_version(onnx.load(str(src)), 13), str(upgraded))
    quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
    input_name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    quantize_static(str(prepared), str(dst), Reader(input_name), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, op_types_to_quantize=["Conv"])
    _copy_metadata(src, dst)


def _copy_metadata(src: Path, dst: Path) -> None:
    import onnx

    orig, q = onnx.load(str(src), load_external_data=False), onnx.load(str(dst))
    have = {p.key for p in q.metadata_props}
    for prop in orig.metadata_props:
        if prop.key not in have:
            q.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(q, str(dst))


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
    ap.add_argument("--static", action="store_true", help="QDQ static quantization calibrated on rendered pages")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ocrd-bench/quant"))
    ap.add_argument("--json", type=Path, default=Path("bench/out/quantize_probe.json"))
    args = ap.parse_args()
    from ocrd.config import load_config
    from ocrd.engine import model_set_from_config

    ms = model_set_from_config(load_config(None))
    args.work.mkdir(parents=True, exist_ok=True)
    ops = [o for o in args.ops.split(",") if o]
    rec_q = args.work / "rec_int8.onnx"
    det_q = args.work / "det_int8.onnx"
    if args.static:
        captured = _capture_inputs()
        rec_batches = captured[ms.rec.path.name]
        quantize_static_qdq(ms.rec.path, rec_q, rec_batches[:: max(1, len(rec_batches) // 150)])
        quantize_static_qdq(ms.det.path, det_q, captured[ms.det.path.name])
        ops = ["static QDQ: Conv"]
    else:
        quantize(ms.rec.path, rec_q, ops)
        quantize(ms.det.path, det_q, ops)
    variants = {
        "fp32 (defaults)": "{}",
        "rec int8": f"recognize: {{model: {rec_q}}}",
        "rec + det int8": f"recognize: {{model: {rec_q}}}\ndetect: {{model: {det_q}}}",
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
