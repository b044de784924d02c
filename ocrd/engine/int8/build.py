"""Building an INT8 recognizer or detector, in the child process ocrd.engine.int8.cache spawns: calibrate, quantize, gate, write.

The FP32 engine reads the rendered pages shipped in `ocrd/engine/int8/calibration/`, made to look scanned;
the inputs it hands the model being quantized (line crops for the recognizer, resized pages for the
detector) calibrate onnxruntime's `quantize_static` (QDQ, convolution weights INT8 per channel,
activations UINT8); the convolutions whose inputs 8 bits represent worst are left FP32
(`_sensitive_convolutions`); the engine with the copy must read the clean pages like the FP32 engine
(MIN_AGREEMENT); then file and record are written atomically, the record last. Only this module imports
onnx and onnxruntime.quantization, and only the build child imports this module.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ocrd.cpus import available_cpus
from ocrd.durable import fsync_dir, fsync_file
from ocrd.engine.int8.recipe import RECIPES, Int8BuildError, record_path
from ocrd.engine.models import ModelFile, ModelSet, file_sha256, model_set_from_config

if TYPE_CHECKING:
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader

    from ocrd.config.schema import Config

# The built copy must read the clean calibration pages (not used to calibrate) like the FP32 model
# does, to at least this agreement, or it is discarded; a bad build (another CPU's kernels, a custom
# model that quantizes badly) then costs speed, never text. Measured: 0.99+ for the shipped model.
MIN_AGREEMENT = 0.97
# Convolutions whose input keeps less signal than this in 8 bits stay FP32 (_sensitive_convolutions), per
# role. The detector's threshold is lower: its probability map is thresholded, not decoded character by
# character, and at 40 dB 15 of its 83 convolutions would stay FP32 for no measured gain (30 dB: 4;
# docs/benchmarks.md, "INT8 detector").
MIN_SQNR_DB = {"rec": 40.0, "det": 30.0}
# Every n-th calibration batch feeds that sensitivity analysis (it keeps all activations in memory):
# the recognizer has hundreds of line batches, the detector one input per page.
SENSITIVITY_EVERY = {"rec": 25, "det": 4}
CALIBRATION_DIR = Path(__file__).parent / "calibration"


def child_main(cfg: Config, source: ModelFile, source_sha256: str, target: Path, send) -> None:
    """The build child's entry point: builds, then sends "ok" or the error to the parent."""
    try:
        build(cfg, source, source_sha256, target)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which falls back to FP32
        send.send(f"{type(exc).__name__}: {exc}")
    else:
        send.send("ok")
    finally:
        send.close()


def calibration_pages(*, scanned: bool = True) -> Iterator[np.ndarray]:
    """The shipped pages as BGR images, as a scan would have them (smaller, blurred, noisy), or clean.

    Calibration uses the scanned look only: clean renders are pure black on pure white, a contrast
    no scan has, and min/max calibration would widen every activation range for them.
    """
    import cv2
    import numpy as np

    for number, path in enumerate(sorted(CALIBRATION_DIR.glob("page-*.png"))):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise Int8BuildError(f"calibration page {path} is unreadable; reinstall ocrd")
        if scanned:
            gray = cv2.resize(gray, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
            noisy = cv2.GaussianBlur(gray, (3, 3), 0).astype(np.float32)
            noisy += np.random.default_rng(number).normal(0.0, 8.0, noisy.shape).astype(np.float32)
            gray = np.clip(noisy, 0, 255).astype(np.uint8)
        yield cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def text_agreement(reference: list[str], candidate: list[str]) -> float:
    """How alike two readings of the same pages are: difflib's ratio over all their text, 0..1."""
    from difflib import SequenceMatcher

    return SequenceMatcher(None, "\n".join(reference), "\n".join(candidate), autojunk=False).ratio()


def _sensitive_convolutions(
    prepared: Path, quantized: Path, float_feed: CalibrationDataReader, qdq_feed: CalibrationDataReader,
    min_sqnr_db: float,
) -> dict[str, float]:
    """Convolutions whose input activation loses most in 8 bits: {node name: signal-to-quantization-noise dB}.

    onnxruntime's QDQ debugging tools run the float and the fully quantized model on calibration
    batches and compare each quantized tensor before and after its quantize/dequantize pair. Inputs
    below `min_sqnr_db` (measured on the shipped recognizer, at 40 dB: 28-37 dB for ten of them, all after residual or
    activation arithmetic with a wide range) are left in FP32; their convolutions cost ~10 % of the
    speed gain and carry most of the accuracy loss (docs/benchmarks.md, "INT8 recognizer").
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import qdq_loss_debug

    with tempfile.TemporaryDirectory(prefix=".int8-build-sqnr-", dir=quantized.parent) as tmp:
        float_aug, qdq_aug = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        for model, augmented in ((prepared, float_aug), (quantized, qdq_aug)):
            qdq_loss_debug.modify_model_output_intermediate_tensors(str(model), str(augmented), op_types_for_saving=["Conv"])
        float_acts = qdq_loss_debug.collect_activations(str(float_aug), float_feed)
        qdq_acts = qdq_loss_debug.collect_activations(str(qdq_aug), qdq_feed)
    errors = qdq_loss_debug.compute_activation_error(qdq_loss_debug.create_activation_matching(qdq_acts, float_acts))
    convolutions_of: dict[str, list[str]] = {}
    for node in onnx.load(str(prepared), load_external_data=False).graph.node:
        if node.op_type == "Conv":
            convolutions_of.setdefault(node.input[0], []).append(node.name)
    sensitive: dict[str, float] = {}
    for tensor, error in errors.items():
        sqnr = error.get("qdq_err")
        if tensor in convolutions_of and sqnr is not None and float(sqnr) < min_sqnr_db:
            sensitive.update({name: float(sqnr) for name in convolutions_of[tensor]})
    return sensitive


def copy_metadata(source: Path, quantized: Path) -> None:
    """Copy the source model's metadata (the recognizer's charset lives there) that quantization dropped."""
    import onnx

    original, result = onnx.load(str(source), load_external_data=False), onnx.load(str(quantized))
    have = {p.key for p in result.metadata_props}
    for prop in original.metadata_props:
        if prop.key not in have:
            result.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(result, str(quantized))


def _agreement(cfg: Config, fp32_set: ModelSet, role: str, quantized: Path) -> float:
    """text_agreement of the FP32 engine and the engine with the quantized `role` model on the clean calibration pages."""
    from ocrd.engine.ocr_engine import OcrEngine, settings_from_config

    threads = available_cpus()
    readings: list[list[str]] = []
    for model_set in (fp32_set, replace(fp32_set, **{role: ModelFile(role, quantized, None)})):
        engine = OcrEngine(model_set, settings_from_config(cfg), intra_op_threads=threads, verify=False)
        readings.append([line.text for page in calibration_pages(scanned=False) for line in engine.read(page).lines])
    return text_agreement(readings[0], readings[1])


# The sensitivity analysis holds every convolution's output for every sample it is fed, float and
# quantized: whole detector inputs (1280 px pages) took the build child past 12 GiB, eight 512 px squares
# 4.1 GiB. The detector is calibrated on the middle 640 px of each input (text at the size the detector
# sees it, margins left out) and analysed on every 4th of those cut to 320 px: the child then peaks at
# about 1.5 GiB (docs/benchmarks.md, "INT8 detector").
_DET_CALIBRATION_SIDE_PX = 640
_DET_SENSITIVITY_SIDE_PX = 320


def _middle(batch: np.ndarray, side_px: int) -> np.ndarray:
    """The centred square of an NCHW batch at most `side_px` on a side, on the detector's 32-pixel grid."""
    height, width = batch.shape[2:]
    h, w = min(height, side_px), min(width, side_px)
    top, left = (height - h) // 64 * 32, (width - w) // 64 * 32
    return batch[:, :, top : top + h, left : left + w].copy()  # C-contiguous, as onnxruntime wants


def _sensitivity_sample(batches: list[np.ndarray], role: str) -> list[np.ndarray]:
    """Every n-th calibration batch; the detector's cut smaller still (the analysis runs two models on them)."""
    sample = batches[:: SENSITIVITY_EVERY[role]]
    return [_middle(batch, _DET_SENSITIVITY_SIDE_PX) for batch in sample] if role == "det" else sample


def _calibration_batches(cfg: Config, fp32_set: ModelSet, role: str) -> list[np.ndarray]:
    """The inputs the FP32 engine hands the `role` model while it reads the scanned-look calibration pages."""
    import cv2

    from ocrd.engine.ocr_engine import OcrEngine, settings_from_config

    settings = settings_from_config(cfg)
    if role == "det":
        engine = OcrEngine(fp32_set, settings, intra_op_threads=available_cpus())
        # Each page as rendered and at half its size: the detector enlarges small pages (receipt photos,
        # 100-dpi forms) toward its limit, so it also sees text twice as large on the same input size.
        pages = [page for full in calibration_pages()
                 for page in (full, cv2.resize(full, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))]  # fmt: skip
        return [_middle(engine.detector_input(page), _DET_CALIBRATION_SIDE_PX) for page in pages]
    # Calibrated on line crops cut at the detected box (no recognize.crop_margin): measured against a
    # copy calibrated on the wider crops it then reads, it keeps word F1 0.996 vs 0.986 on 300-dpi
    # pages, receipts and forms equal (docs/benchmarks.md, session 7).
    # Nor padded to recognize.min_batch_width_h (issue 14): the batches stay those recipe r3 was
    # built from, so the copy stays the same file; only short crops would gain zero columns.
    settings = replace(settings, recognize=replace(settings.recognize, crop_margin=0.0, min_batch_width_h=0.0))
    # The detector as shipped finds the lines to crop, whatever detect.precision says: the recognizer's
    # copy must not depend on the detector's.
    engine = OcrEngine(fp32_set, settings, intra_op_threads=available_cpus())
    return [batch for page in calibration_pages() for batch in engine.recognizer_inputs(page)]


def build(cfg: Config, source: ModelFile, source_sha256: str, target: Path) -> None:
    """Quantize `source` into `target` (atomically) and write its record; runs in the build child."""
    import shutil
    import tempfile

    import onnx
    from onnx import version_converter
    from onnxruntime import __version__ as ort_version
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    started = time.monotonic()
    role = source.role
    fp32_set = model_set_from_config(cfg)
    if file_sha256(source.path) != source_sha256:
        raise Int8BuildError(f"{source.path} changed while the INT8 copy was being prepared")
    batches = _calibration_batches(cfg, fp32_set, role)
    if not batches:
        raise Int8BuildError("the calibration pages produced no text lines")
    original = onnx.load(str(source.path))
    input_name = original.graph.input[0].name

    class Feed(CalibrationDataReader):
        def __init__(self, feed_batches: list[np.ndarray] = batches) -> None:
            self._feeds = iter({input_name: batch} for batch in feed_batches)

        def get_next(self):  # noqa: ANN202 - onnxruntime's interface
            return next(self._feeds, None)

    work = Path(tempfile.mkdtemp(prefix=".int8-build-", dir=target.parent))
    try:
        # Per-channel QDQ needs opset >= 13; PaddleOCR exports are often older.
        upgraded, prepared, quantized = work / "opset13.onnx", work / "prepared.onnx", work / "int8.onnx"
        if original.opset_import[0].version < 13:
            onnx.save(version_converter.convert_version(original, 13), str(upgraded))
        else:
            onnx.save(original, str(upgraded))
        quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
        settings = dict(quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, op_types_to_quantize=["Conv"])  # fmt: skip
        # First every convolution, then again without those whose input 8 bits represent worst.
        quantize_static(str(prepared), str(quantized), Feed(), **settings)
        sample = _sensitivity_sample(batches, role)
        sensitive = _sensitive_convolutions(prepared, quantized, Feed(sample), Feed(sample), MIN_SQNR_DB[role])
        quantize_static(str(prepared), str(quantized), Feed(), nodes_to_exclude=sorted(sensitive), **settings)
        copy_metadata(source.path, quantized)
        agreement = _agreement(cfg, fp32_set, role, quantized)
        if agreement < MIN_AGREEMENT:
            raise Int8BuildError(f"the INT8 copy reads the check pages too differently from the FP32 model "
                                 f"(agreement {agreement:.3f} < {MIN_AGREEMENT}); keeping FP32")  # fmt: skip
        fsync_file(quantized)
        os.replace(quantized, target)
        record = {
            "recipe": RECIPES[role],
            "sha256": file_sha256(target),
            "source": str(source.path),
            "source_sha256": source_sha256,
            "calibration_batches": len(batches),
            "agreement": round(agreement, 4),
            "fp32_convolutions": {name: round(sqnr, 1) for name, sqnr in sorted(sensitive.items())},
            "onnxruntime": ort_version,
            "onnx": onnx.__version__,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_s": round(time.monotonic() - started, 1),
        }
        record_tmp = work / "record.json"
        record_tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        fsync_file(record_tmp)
        # The record last: a file without a (matching) record is never used.
        os.replace(record_tmp, record_path(target))
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
