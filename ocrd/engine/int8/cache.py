"""The INT8 models' cache: where the quantized copies of the recognizer and detector live, whether they are intact, when to build them.

Why: detection and recognition are nearly all of a page's time, and with 8-bit dot-product
instructions (AVX-512-VNNI, AVX-VNNI, Arm dotprod) their convolutions run much faster in INT8: the
recognizer ~30 % more pages per minute on the eval receipts, the detector ~3x faster per page
(docs/benchmarks.md, "INT8 recognizer" and "INT8 detector").

How: built once, never downloaded, by `ocrd.engine.int8.build` in a spawned child process (so the calling
process never imports onnx or holds the calibration data). The file goes into the cache directory
under a name made of the source model's digest and the recipe version, next to a record of its own
sha256 and the onnxruntime version that built it; every load checks the file against that record, and
a file that does not match, or was built by another onnxruntime version, is rebuilt.
Building is deterministic (same inputs, same bytes); a lock file keeps two processes from building
at once.

If the copy cannot be built or loaded (no writable cache, a model onnxruntime cannot quantize), the
FP32 model is used and the reason is logged: slower, never wrong, never down.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from ocrd.errors import ModelError
from ocrd.logs import get_logger
from ocrd.engine.int8.recipe import QUANTIZED_ROLES, RECIPES, Int8BuildError, cached_path, record_path
from ocrd.engine.models import ModelFile, ModelSet, VerifiedFile, model_set_from_config

if TYPE_CHECKING:
    from ocrd.config.schema import Config

log = get_logger("ocrd.int8")

# Longest a build (or the wait for another process's build) may take; 1-2 minutes on 2 cores.
BUILD_TIMEOUT_S = 900.0
_LOCK_NAME = ".int8-build.lock"
_ROLE_NAMES = {"rec": "recognizer", "det": "detector"}


@dataclass(frozen=True, slots=True)
class PreparedModels:
    """The model files a run uses, each verified, and why an FP32 model is used where INT8 was asked for."""

    model_set: ModelSet
    verified: dict[str, VerifiedFile]
    precision: str  # the recognizer's: int8 | fp32
    fallback_reason: str | None = None  # the first role's that fell back
    det_precision: str = "fp32"  # the detector's: int8 | fp32

    @property
    def precisions(self) -> str:
        """Both models' precision in one phrase ("rec int8, det int8"): a Dask worker must match the daemon's."""
        return f"rec {self.precision}, det {self.det_precision}"


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


def installed_onnxruntime_version() -> str | None:
    """The onnxruntime distribution's version, read from its metadata (the library is not loaded)."""
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:  # a differently named build (onnxruntime-gpu, ...): not compared
        return None


def _record(path: Path) -> dict | None:
    try:
        record = json.loads(record_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _built_by_other_runtime(record: dict, runtime_version: str | None) -> bool:
    # The agreement gate ran under the onnxruntime that built the copy; after an upgrade the
    # copy is built (and checked) again rather than trusted.
    return runtime_version is not None and record.get("onnxruntime") != runtime_version


def lookup(
    cache_dir: Path, source: ModelFile, source_sha256: str, runtime_version: str | None = None
) -> ModelFile | None:
    """The cached copy as a ModelFile carrying its recorded sha256 (verify() checks it), or None if not built.

    `runtime_version`: the onnxruntime version the copy must have been built with (None: any).
    """
    path = cached_path(cache_dir, source, source_sha256)
    record = _record(path)
    if record is None or not path.is_file():
        return None
    if record.get("recipe") != RECIPES[source.role] or record.get("source_sha256") != source_sha256:
        return None
    if _built_by_other_runtime(record, runtime_version) or not isinstance(record.get("sha256"), str):
        return None
    return ModelFile(source.role, path, record["sha256"])


def prepare_model_set(
    cfg: Config,
    *,
    waiting: Callable[[], None] | None = None,
    earlier: Mapping[str, VerifiedFile] | None = None,
) -> PreparedModels:
    """The configured model set, verified, with the recognizer and the detector replaced by their INT8
    copies where `recognize.precision` / `detect.precision` ask for it.

    Builds a copy on first use (one to two minutes each); `waiting` is called every few seconds meanwhile
    (the daemon pings systemd's watchdog from it). `earlier`: the caller's own verification of the
    shipped files by role, not hashed again while unchanged. Raises ModelError only for the FP32 files;
    a copy that cannot be built leaves that role in FP32 (the other is unaffected).
    """
    model_set = model_set_from_config(cfg)
    earlier = earlier or {}
    verified = {f.role: f.verify_once(earlier.get(f.role)) for f in model_set.files()}
    wanted = {"rec": cfg.recognize.precision, "det": cfg.detect.precision}
    precision = dict.fromkeys(QUANTIZED_ROLES, "fp32")
    reasons: list[str] = []
    cache_dir = cache_dir_for(cfg)
    for role in QUANTIZED_ROLES:
        if wanted[role] != "int8":
            continue
        source = getattr(model_set, role)
        try:
            int8, int8_verified = _cached_or_built(cfg, cache_dir, source, verified[role].sha256, waiting)
        except (ModelError, OSError) as exc:
            reason = str(exc) if isinstance(exc, ModelError) else f"{exc.strerror or exc}: {getattr(exc, 'filename', '')}"
            key = "recognize" if role == "rec" else "detect"
            log.warning("int8_unavailable", role=role, reason=reason, cache_dir=str(cache_dir),
                        hint=f"using the FP32 {_ROLE_NAMES[role]}; fix the cause or set {key}.precision: fp32")  # fmt: skip
            reasons.append(reason)
            continue
        model_set = replace(model_set, **{role: int8})
        verified = verified | {role: int8_verified}
        precision[role] = "int8"
    return PreparedModels(model_set, verified, precision["rec"], fallback_reason=reasons[0] if reasons else None,
                          det_precision=precision["det"])  # fmt: skip



class CacheState(Enum):
    READY = "ready"  # built, and the file matches its record
    DAMAGED = "damaged"  # built, but the file does not match its record: rebuilt at the next start
    MISSING = "missing"  # not built for this source model, recipe and onnxruntime version


def cache_state(cache_dir: Path, source: ModelFile, source_sha256: str) -> tuple[CacheState, ModelFile | None, VerifiedFile | None]:
    """The cached copy's state, the copy (if built) and this call's verification of it (if READY): hashed once."""
    found = lookup(cache_dir, source, source_sha256, installed_onnxruntime_version())
    if found is None:
        return CacheState.MISSING, None, None
    try:
        return CacheState.READY, found, found.verify_once()
    except ModelError:
        return CacheState.DAMAGED, found, None


def _cached_or_built(
    cfg: Config, cache_dir: Path, source: ModelFile, source_sha256: str, waiting: Callable[[], None] | None
) -> tuple[ModelFile, VerifiedFile]:
    """The cached copy and this run's verification of it, built first if missing or damaged."""
    state, found, verified = cache_state(cache_dir, source, source_sha256)
    if state is CacheState.READY:
        return found, verified  # type: ignore[return-value]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(cache_dir, waiting):
        # Another process may have built it while this one waited for the lock.
        state, found, verified = cache_state(cache_dir, source, source_sha256)
        if state is CacheState.READY:
            return found, verified  # type: ignore[return-value]
        if state is CacheState.DAMAGED:
            log.warning("int8_cache_mismatch", path=str(found.path), action="rebuilding")  # type: ignore[union-attr]
        target = cached_path(cache_dir, source, source_sha256)
        runtime_version = installed_onnxruntime_version()
        earlier_record = _record(target)
        if state is CacheState.MISSING and earlier_record and _built_by_other_runtime(earlier_record, runtime_version):
            log.info("int8_runtime_changed", built_with=earlier_record.get("onnxruntime"), now=runtime_version,
                     action="rebuilding")  # fmt: skip
        _remove_stale_temp(cache_dir)
        log.info("int8_building", source=str(source.path), target=str(target),
                 note="first start with this model: one to two minutes, once")  # fmt: skip
        started = time.monotonic()
        _build_in_child(cfg, source, source_sha256, target, waiting)
        built = lookup(cache_dir, source, source_sha256, runtime_version)
        if built is None:
            raise Int8BuildError(f"the INT8 build finished but left no usable file at {target}")
        log.info("int8_built", path=str(built.path), sha256=built.sha256, seconds=round(time.monotonic() - started, 1))
        _remove_superseded(target, prefix=f"{source.path.stem}.{source_sha256[:16]}.")
        return built, built.verify_once()


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
                    raise Int8BuildError(f"another process has been building an INT8 model in {cache_dir} "
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

    from ocrd.engine.int8.build import child_main as _child_main

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
            raise Int8BuildError(f"building the INT8 {_ROLE_NAMES[source.role]} took over {BUILD_TIMEOUT_S:.0f} s; stopped")
        message = receive.recv() if receive.poll() else None
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        receive.close()
    if message != "ok":
        detail = message or f"the build process exited with code {child.exitcode}"
        raise Int8BuildError(f"could not build the INT8 {_ROLE_NAMES[source.role]} from {source.path}: {detail}")
