"""The INT8 recognizer: an onnxruntime static-quantized copy of the configured recognition model.

Why: recognition is most of a page's time, and with 8-bit dot-product instructions (AVX-512-VNNI,
AVX-VNNI, Arm dotprod) its convolutions run much faster in INT8: ~30 % more pages per minute on the
eval receipts, every accuracy bar still met (docs/benchmarks.md, "INT8 recognizer").

How: built once, never downloaded. The FP32 model (verified against its recorded sha256 first)
reads the rendered pages shipped in `ocrd/calibration/`, made to look scanned (scaled, blurred,
noisy); the recognizer inputs it produces calibrate onnxruntime's `quantize_static` (QDQ,
convolution weights INT8 per channel, activations UINT8), and the convolutions whose inputs 8 bits
represent worst are left FP32 (`_sensitive_convolutions`). The file goes into the cache directory under a name
made of the source model's digest and the recipe version, next to a record of its own sha256; every
load checks the file against that record, and a file that does not match is rebuilt. Building is
deterministic (same inputs, same bytes) and runs in a child process, so the calling process never
imports onnx or holds the calibration data; a lock file keeps two processes from building at once.

If the copy cannot be built or loaded (no writable cache, a model onnxruntime cannot quantize), the
FP32 model is used and the reason is logged: slower, never wrong, never down.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ocrd.durable import fsync_dir, fsync_file
from ocrd.errors import ModelError
from ocrd.logs import get_logger
from ocrd.models import ModelFile, ModelSet, VerifiedFile, file_sha256, model_set_from_config

if TYPE_CHECKING:
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader

    from ocrd.config import Config

log = get_logger("ocrd.int8")

# Part of the cached file's name: change it whenever the calibration pages, their variants or the
# quantization settings change, so that no file built the old way is used again.
RECIPE = "qdq-conv-s8u8-pc-sqnr40-r3"
# The built copy must read the clean calibration pages (not used to calibrate) like the FP32 model
# does, to at least this agreement, or it is discarded; a bad build (another CPU's kernels, a custom
# model that quantizes badly) then costs speed, never text. Measured: 0.99+ for the shipped model.
MIN_AGREEMENT = 0.97
# Convolutions whose input keeps less signal than this in 8 bits stay FP32 (_sensitive_convolutions).
MIN_SQNR_DB = 40.0
# Every n-th calibration batch feeds that sensitivity analysis (it keeps all activations in memory).
SENSITIVITY_EVERY = 25
CALIBRATION_DIR = Path(__file__).parent / "calibration"
# Longest a build (or the wait for another process's build) may take; 1-2 minutes on 2 cores.
BUILD_TIMEOUT_S = 900.0
_LOCK_NAME = ".int8-build.lock"


@dataclass(frozen=True, slots=True)
class PreparedModels:
    """The model files a run uses, each verified, and why the FP32 recognizer is used if INT8 was asked for."""

    model_set: ModelSet
    verified: dict[str, VerifiedFile]
    precision: str  # the recognizer's: int8 | fp32
    fallback_reason: str | None = None


class Int8BuildError(ModelError):
    """The INT8 copy could not be built; the caller falls back to the FP32 model."""


def cache_dir_for(cfg: Config, environ: os._Environ[str] | dict[str, str] = os.environ) -> Path:
    """`cache_dir` from the config, else systemd's $CACHE_DIRECTORY, else $XDG_CACHE_HOME/ocrd or ~/.cache/ocrd.

    A service user without a home directory (and no systemd cache directory) gets `<state_dir>/cache`.
    """
    if cfg.cache_dir is not None:
        return cfg.cache_dir
    if environ.get("CACHE_DIRECTORY"):
        return Path(environ["CACHE_DIRECTORY"].split(":")[0])
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "ocrd"
    try:
        home = Path.home()
    except RuntimeError:  # no $HOME and no passwd entry
        return cfg.state_dir / "cache"
    return home / ".cache" / "ocrd"


def cached_path(cache_dir: Path, source: ModelFile, source_sha256: str) -> Path:
    return cache_dir / f"{source.path.stem}.{source_sha256[:16]}.{RECIPE}.int8.onnx"


def _record_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def lookup(cache_dir: Path, source: ModelFile, source_sha256: str) -> ModelFile | None:
    """The cached copy as a ModelFile carrying its recorded sha256 (verify() checks it), or None if not built."""
    path = cached_path(cache_dir, source, source_sha256)
    try:
        record = json.loads(_record_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not path.is_file() or record.get("recipe") != RECIPE or record.get("source_sha256") != source_sha256:
        return None
    if not isinstance(record.get("sha256"), str):
        return None
    return ModelFile("rec", path, record["sha256"])


def prepare_model_set(cfg: Config, *, waiting: Callable[[], None] | None = None) -> PreparedModels:
    """The configured model set, verified, with the recognizer replaced by its INT8 copy if so configured.

    Builds the copy on first use (one to two minutes); `waiting` is called every few seconds meanwhile
    (the daemon pings systemd's watchdog from it). Raises ModelError only for the FP32 files.
    """
    model_set = model_set_from_config(cfg)
    verified = {f.role: f.verify_once() for f in model_set.files()}
    if cfg.recognize.precision != "int8":
        return PreparedModels(model_set, verified, "fp32")
    cache_dir = cache_dir_for(cfg)
    try:
        int8, int8_verified = _cached_or_built(cfg, cache_dir, model_set.rec, verified["rec"].sha256, waiting)
    except (ModelError, OSError) as exc:
        reason = str(exc) if isinstance(exc, ModelError) else f"{exc.strerror or exc}: {getattr(exc, 'filename', '')}"
        log.warning("int8_unavailable", reason=reason, cache_dir=str(cache_dir),
                    hint="using the FP32 recognizer; fix the cause or set recognize.precision: fp32")  # fmt: skip
        return PreparedModels(model_set, verified, "fp32", fallback_reason=reason)
    return PreparedModels(replace(model_set, rec=int8), verified | {"rec": int8_verified}, "int8")


def _cached_or_built(
    cfg: Config, cache_dir: Path, source: ModelFile, source_sha256: str, waiting: Callable[[], None] | None
) -> tuple[ModelFile, VerifiedFile]:
    """The cached copy and this run's verification of it (hashed once), built first if missing or damaged."""
    found = lookup(cache_dir, source, source_sha256)
    verified = _verified(found)
    if verified is not None:
        return found, verified  # type: ignore[return-value]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(cache_dir, waiting):
        # Another process may have built it while this one waited for the lock.
        found = lookup(cache_dir, source, source_sha256)
        verified = _verified(found)
        if verified is not None:
            return found, verified  # type: ignore[return-value]
        if found is not None:
            log.warning("int8_cache_mismatch", path=str(found.path), action="rebuilding")
        target = cached_path(cache_dir, source, source_sha256)
        _remove_stale_temp(cache_dir)
        log.info("int8_building", source=str(source.path), target=str(target),
                 note="first start with this model: one to two minutes, once")  # fmt: skip
        started = time.monotonic()
        _build_in_child(cfg, source, source_sha256, target, waiting)
        built = lookup(cache_dir, source, source_sha256)
        if built is None:
            raise Int8BuildError(f"the INT8 build finished but left no usable file at {target}")
        log.info("int8_built", path=str(built.path), sha256=built.sha256, seconds=round(time.monotonic() - started, 1))
        _remove_superseded(target, prefix=f"{source.path.stem}.{source_sha256[:16]}.")
        return built, built.verify_once()


def _verified(found: ModelFile | None) -> VerifiedFile | None:
    """`found` hashed and checked against its record, or None if there is none or it does not match."""
    if found is None:
        return None
    try:
        return found.verify_once()
    except ModelError:
        return None


@contextmanager
def _build_lock(cache_dir: Path, waiting: Callable[[], None] | None) -> Iterator[None]:
    fd = os.open(cache_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + BUILD_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Int8BuildError(f"another process has been building the INT8 recognizer in {cache_dir} "
                                         f"for over {BUILD_TIMEOUT_S:.0f} s") from None  # fmt: skip
                if waiting is not None:
                    waiting()
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)  # releases the lock


def _remove_stale_temp(cache_dir: Path) -> None:
    """Temp folders of a build that was killed; only called while holding the build lock."""
    import shutil

    for leftover in cache_dir.glob(".int8-build-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _remove_superseded(target: Path, *, prefix: str) -> None:
    """Copies of the same source model (`prefix`) built by an older recipe: never used again."""
    for old in target.parent.iterdir():
        if old.name.startswith(prefix) and ".int8.onnx" in old.name and not old.name.startswith(target.name):
            old.unlink(missing_ok=True)


def _build_in_child(
    cfg: Config, source: ModelFile, source_sha256: str, target: Path, waiting: Callable[[], None] | None
) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(cfg, source, source_sha256, target, send), name="ocrd-int8-build")
    child.start()
    send.close()
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    try:
        while child.is_alive() and time.monotonic() < deadline:
            child.join(timeout=2.0)
            if waiting is not None:
                waiting()
        if child.is_alive():
            raise Int8BuildError(f"building the INT8 recognizer took over {BUILD_TIMEOUT_S:.0f} s; stopped")
        message = receive.recv() if receive.poll() else None
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        receive.close()
    if message != "ok":
        detail = message or f"the build process exited with code {child.exitcode}"
        raise Int8BuildError(f"could not build the INT8 recognizer from {source.path}: {detail}")


def _child_main(cfg: Config, source: ModelFile, source_sha256: str, target: Path, send) -> None:
    try:
        build(cfg, source, source_sha256, target)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which falls back to FP32
        send.send(f"{type(exc).__name__}: {exc}")
    else:
        send.send("ok")
    finally:
        send.close()


# --------------------------------------------------------------------------- building (in the child)


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
    prepared: Path, quantized: Path, float_feed: CalibrationDataReader, qdq_feed: CalibrationDataReader
) -> dict[str, float]:
    """Convolutions whose input activation loses most in 8 bits: {node name: signal-to-quantization-noise dB}.

    onnxruntime's QDQ debugging tools run the float and the fully quantized model on calibration
    batches and compare each quantized tensor before and after its quantize/dequantize pair. Inputs
    below MIN_SQNR_DB (measured on the shipped model: 28-37 dB for ten of them, all after residual or
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
        if tensor in convolutions_of and sqnr is not None and float(sqnr) < MIN_SQNR_DB:
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


def _agreement(cfg: Config, fp32_set: ModelSet, quantized: Path) -> float:
    """text_agreement of the FP32 and the quantized recognizer on the clean calibration pages."""
    from ocrd.engine import OcrEngine, settings_from_config

    threads = os.cpu_count() or 1
    readings: list[list[str]] = []
    for model_set in (fp32_set, replace(fp32_set, rec=ModelFile("rec", quantized, None))):
        engine = OcrEngine(model_set, settings_from_config(cfg), intra_op_threads=threads, verify=False)
        readings.append([line.text for page in calibration_pages(scanned=False) for line in engine.read(page).lines])
    return text_agreement(readings[0], readings[1])


def build(cfg: Config, source: ModelFile, source_sha256: str, target: Path) -> None:
    """Quantize `source` into `target` (atomically) and write its record; runs in the build child."""
    import shutil
    import tempfile

    import onnx
    from onnx import version_converter
    from onnxruntime import __version__ as ort_version
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ocrd.engine import OcrEngine

    started = time.monotonic()
    fp32_set = model_set_from_config(cfg)
    if file_sha256(source.path) != source_sha256:
        raise Int8BuildError(f"{source.path} changed while the INT8 copy was being prepared")
    engine = OcrEngine.from_config(cfg, model_set=fp32_set, intra_op_threads=os.cpu_count() or 1)
    batches = [batch for page in calibration_pages() for batch in engine.recognizer_inputs(page)]
    if not batches:
        raise Int8BuildError("the calibration pages produced no text lines")
    del engine
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
        sample = batches[::SENSITIVITY_EVERY]
        sensitive = _sensitive_convolutions(prepared, quantized, Feed(sample), Feed(sample))
        quantize_static(str(prepared), str(quantized), Feed(), nodes_to_exclude=sorted(sensitive), **settings)
        copy_metadata(source.path, quantized)
        agreement = _agreement(cfg, fp32_set, quantized)
        if agreement < MIN_AGREEMENT:
            raise Int8BuildError(f"the INT8 copy reads the check pages too differently from the FP32 model "
                                 f"(agreement {agreement:.3f} < {MIN_AGREEMENT}); keeping FP32")  # fmt: skip
        fsync_file(quantized)
        os.replace(quantized, target)
        record = {
            "recipe": RECIPE,
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
        os.replace(record_tmp, _record_path(target))
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
