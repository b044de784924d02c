"""The worker side of the Dask executor: `OcrdWorkerPlugin` (per worker process: check it matches the daemon,
prepare the model set with its INT8 copy, load and warm the engine, then offer the `ocrd` resource) and
`run_task`, the task every job runs as (the pure job function on the bytes the daemon read).

A worker needs nothing but `dask worker SCHEDULER` in an environment with ocrd installed: the daemon
registers this plugin with the scheduler, which hands it to every worker that joins. Tasks ask for the
`ocrd` resource, which only a worker that passed the check offers, so a refused worker stays connected
(and says why in its log and the daemon's) but never receives a job.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from ocrd.cluster.identity import WorkerIdentity, differences, source_identity

if TYPE_CHECKING:
    from distributed import Worker

    from ocrd.config.schema import Config
    from ocrd.jobs.records import EncodedJob, Job

PLUGIN_NAME = "ocrd"
RESOURCE = "ocrd"  # what every ocrd task asks for; offered only by a worker that passed the check
STARTED_TOPIC = "ocrd-task-started"  # a worker began a task: the daemon charges the attempt, starts the timeout
WORKER_TOPIC = "ocrd-worker"  # a worker was accepted or refused, and why
_GLIBC_DYNAMIC_MMAP_MAX_BYTES = 32 * 1024 * 1024  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit glibc

# A child of distributed's logger, so the lines land wherever `dask worker` sends its own (its stderr, the journal).
log = logging.getLogger("distributed.ocrd")


class WorkerRefused(Exception):
    """This worker must not take ocrd jobs: the reason says what differs from the daemon."""


class OcrdWorkerPlugin(WorkerPlugin):
    """Loads the daemon's model set once per worker process; `engine` is what `run_task` reads with."""

    name = PLUGIN_NAME
    # Registered once per scheduler process by each daemon start: a daemon started with another config
    # replaces the plugin, and every worker reloads with the new settings.
    idempotent = False

    def __init__(self, cfg: Config, expected: WorkerIdentity):
        # The daemon's cache_dir is a path on the daemon's host: a worker builds its INT8 copy in its own
        # ($CACHE_DIRECTORY from the unit, else ~/.cache/ocrd).
        self.cfg = replace(cfg, cache_dir=None)
        self.expected = expected
        self.engine: Any = None
        self.identity: WorkerIdentity | None = None
        self.refusal: str | None = None

    async def setup(self, worker: Worker) -> None:
        # Minutes on a first start (the INT8 build): in a thread, so the worker keeps its heartbeats.
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._load)
        except WorkerRefused as exc:
            self.refusal = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure to load means this worker takes no job
            self.refusal = f"its models could not be loaded: {type(exc).__name__}: {exc}"
        identity = self.identity.as_dict() if self.identity is not None else None
        if self.refusal is not None:
            log.error("ocrd refused this worker: %s (fix it and restart the worker)", self.refusal)
            worker.log_event(WORKER_TOPIC, {"event": "refused", "worker": worker.address, "reason": self.refusal,
                                            "identity": identity})  # fmt: skip
            return
        await worker.set_resources(**{RESOURCE: worker.state.nthreads})
        log.info("ocrd worker ready: %s", identity)
        worker.log_event(WORKER_TOPIC, {"event": "accepted", "worker": worker.address, "identity": identity,
                                        "nthreads": worker.state.nthreads})  # fmt: skip

    def _load(self) -> None:
        cfg = self.cfg
        identity = source_identity(cfg)
        self.identity = identity
        if found := differences(self.expected, identity):
            raise WorkerRefused("; ".join(found))
        # The decoder limits are read once, when cv2 is first imported in this process: set them first.
        from ocrd.intake.decode import decoder_env

        os.environ.update(decoder_env(cfg.intake))
        from ocrd.engine.int8.cache import prepare_model_set
        from ocrd.engine.ocr_engine import OcrEngine
        from ocrd.service.allocator import keep_freed_memory_for_reuse

        models = prepare_model_set(cfg)
        self.identity = identity = replace(identity, precision=models.precisions)
        if found := differences(self.expected, identity):
            reason = f" ({models.fallback_reason})" if models.fallback_reason else ""
            raise WorkerRefused("; ".join(found) + reason)
        if cfg.workers.reuse_freed_memory:
            keep_freed_memory_for_reuse()
        else:
            # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also freezes glibc's mmap
            # threshold at 128 KiB: every page buffer is mapped and unmapped again, and a receipt took twice
            # the CPU of a local worker's (bench/dask_drain.py). Put both where glibc's own dynamic thresholds
            # settle in a local worker; memory still goes back after every job (run_task).
            keep_freed_memory_for_reuse(_GLIBC_DYNAMIC_MMAP_MAX_BYTES)
        # auto: one ONNX thread per task thread; run one worker process per core (docs/operations.md).
        threads = cfg.workers.intra_op_threads if isinstance(cfg.workers.intra_op_threads, int) else 1
        engine = OcrEngine.from_config(cfg, model_set=models.model_set, intra_op_threads=threads,
                                       verified=models.verified)  # fmt: skip
        engine.warm_up()
        self.engine = engine


def run_task(job: Job, data: bytes, mtime_s: float) -> EncodedJob:
    """One job on a worker: announce the start, run the pure job function, give the page's memory back."""
    from ocrd.service.allocator import release_freed_memory
    from ocrd.service.pipeline import encode_job
    from ocrd.service.resident import current_rss_mb, peak_rss_mb, reset_peak_rss

    worker = get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, OcrdWorkerPlugin) or plugin.engine is None:
        # Only possible if the resource outlived the plugin (it was removed by hand): not the file's fault.
        raise RuntimeError(f"worker {worker.address} has no ocrd engine loaded")
    worker.log_event(STARTED_TOPIC, {"key": worker.get_current_task(), "worker": worker.address, "pid": os.getpid()})
    # The mark is the process's: with several task threads per worker it covers the jobs running beside this one.
    measured = reset_peak_rss()
    try:
        encoded = encode_job(job, data, plugin.engine, plugin.cfg, mtime_s=mtime_s)
        peak = peak_rss_mb() if measured else None
    finally:
        if not plugin.cfg.workers.reuse_freed_memory:
            release_freed_memory()
    outcome = replace(encoded.outcome, worker_rss_mb=current_rss_mb(), peak_rss_mb=peak)
    return replace(encoded, outcome=outcome)
