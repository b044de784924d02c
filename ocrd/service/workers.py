"""Bounded pool of worker processes, each with its own OcrEngine; timeouts, crashes and recycling.

The only importer of pebble. The main process submits Jobs and gets Outcomes
or a classified failure back; it never decodes an image or runs a model.
Workers are spawned, not forked: the main process runs observer threads,
and forking a threaded process can deadlock the child.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pebble

from ocrd.service.allocator import keep_freed_memory_for_reuse, release_freed_memory
from ocrd.service.resident import current_rss_mb, peak_rss_mb, reset_peak_rss
from ocrd.service.executor import ExecutorHealth, WorkerCrashed
from ocrd.errors import InputError, Reason, UnavailableError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ocrd.config.schema import Config
    from ocrd.engine.ocr_engine import OcrEngine
    from ocrd.engine.models import ModelSet, VerifiedFile
    from ocrd.jobs.records import Job, Outcome

# Per-process state of a worker: built once by _init_worker, used by every job it runs.
_worker_state: dict[str, Any] = {}


def _init_worker(
    cfg: Config, intra_op_threads: int, model_set: ModelSet | None, verified: Mapping[str, VerifiedFile] | None
) -> None:
    # Ctrl-C in a terminal signals the whole process group; only the main
    # process decides how to stop, so workers ignore it and finish their job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGHUP means "reopen log files" to the main process; it must not kill a worker.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Imported here, not at module top: the decoder limits in the environment
    # must be in place before cv2 is first imported in this process.
    from ocrd.intake.decode import decoder_env

    os.environ.update(decoder_env(cfg.intake))
    from ocrd.engine.ocr_engine import OcrEngine

    if cfg.workers.reuse_freed_memory:
        keep_freed_memory_for_reuse()

    from ocrd.cpus import available_cpus

    alone_threads = cfg.workers.resolved_alone_threads(available_cpus())
    engine = OcrEngine.from_config(cfg, model_set=model_set, intra_op_threads=intra_op_threads,
                                   alone_threads=alone_threads, verified=verified)  # fmt: skip
    engine.warm_up()
    _worker_state["engine"] = engine
    _worker_state["cfg"] = cfg


def _ping() -> int:
    return os.getpid()


def _run_job(job: Job) -> Outcome:
    return run_job(job, _worker_state["engine"], _worker_state["cfg"])


def run_job(job: Job, engine: OcrEngine, cfg: Config) -> Outcome:
    """One job as a worker runs it: process_file, then the page's memory goes back to the kernel.

    So what a worker holds between jobs is its engine (a refused file's buffers included), and the
    RSS the main process checks for recycling is a leak signal, not the last page's high-water mark.
    `workers.reuse_freed_memory` keeps the memory instead (faster, see ocrd.service.allocator).
    """
    from ocrd.service.pipeline import process_file

    measured = reset_peak_rss()
    try:
        outcome = process_file(job, engine, cfg)
        peak = peak_rss_mb() if measured else None  # before the release: the page's buffers are still counted
    finally:
        if not cfg.workers.reuse_freed_memory:
            release_freed_memory()
    return replace(outcome, worker_rss_mb=current_rss_mb(), peak_rss_mb=peak)


@dataclass(frozen=True, slots=True)
class JobFailure:
    """Why a job did not produce an Outcome: a stable reason code and a message for people."""

    reason: Reason
    message: str
    transient: bool = False  # worth retrying later (disk full, permissions): the input is not at fault


def classify_failure(exc: BaseException, timeout_s: float) -> JobFailure:
    """Map what a job future raised to a reason code."""
    if isinstance(exc, InputError):
        return JobFailure(exc.reason, exc.message)
    if isinstance(exc, FutureTimeout):
        return JobFailure(Reason.TIMEOUT, f"processing took longer than {timeout_s:g} s; the worker was stopped")
    if isinstance(exc, BrokenProcessPool):
        return JobFailure(Reason.WORKER_CRASHED, "a worker process died before it could take this file; retried")
    if isinstance(exc, pebble.ProcessExpired):
        return JobFailure(
            Reason.WORKER_CRASHED, f"the worker process died while reading this file (exit code {exc.exitcode})"
        )
    if isinstance(exc, WorkerCrashed):  # a cluster executor's worker died and its reruns were used up
        return JobFailure(Reason.WORKER_CRASHED, str(exc))
    if isinstance(exc, OSError):
        return JobFailure(Reason.OUTPUT_FAILED, f"could not write results: {exc}", transient=True)
    return JobFailure(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")


class WorkerPool:
    """A fixed number of worker processes; each job runs under a wall-clock timeout."""

    def __init__(
        self,
        cfg: Config,
        *,
        workers: int,
        intra_op_threads: int,
        model_set: ModelSet | None = None,
        verified: Mapping[str, VerifiedFile] | None = None,
    ):
        """`model_set`: the files to load (`ocrd.engine.int8.cache.prepare_model_set`'s); None: the configured files as shipped.

        `verified`: the main process's verification of those files (workers then skip re-hashing).
        """
        self.workers = workers
        self.timeout_s = cfg.workers.job_timeout_s
        self.max_rss_mb = cfg.workers.max_rss_mb
        self.recycled = 0
        self._cfg = cfg
        self._threads = intra_op_threads
        self._model_set = model_set
        self._verified = dict(verified) if verified else None
        self._pool = self._new_pool()
        self._retired: list[pebble.ProcessPool] = []

    def _new_pool(self) -> pebble.ProcessPool:
        return pebble.ProcessPool(
            max_workers=self.workers,
            max_tasks=self._cfg.workers.max_jobs_per_worker,
            initializer=_init_worker,
            initargs=(self._cfg, self._threads, self._model_set, self._verified),
            context=multiprocessing.get_context("spawn"),
        )

    def submit(self, job: Job) -> Future:
        if not self._pool.active:
            # pebble marks the whole pool broken when a worker dies while the only
            # pending jobs were not yet handed out ("All workers expired"); those
            # jobs fail as worker_crashed and are retried. Start a fresh pool.
            self._pool.stop()
            self._retired.append(self._pool)
            self._pool = self._new_pool()
            self.recycled += 1
        return self._pool.schedule(_run_job, args=(job,), timeout=self.timeout_s)

    @property
    def alive(self) -> bool:
        return self._pool.active

    @property
    def capacity(self) -> int:
        """Two jobs per worker: one running, one waiting so the worker never idles between jobs."""
        return 2 * self.workers

    def health(self) -> ExecutorHealth:
        return ExecutorHealth(kind="local", alive=self.alive, capacity=self.capacity, workers_connected=self.workers,
                              threads=self.workers * self._threads)  # fmt: skip

    def wait_ready(self, timeout_s: float) -> None:
        """Block until a worker has loaded its engine (pebble starts workers lazily); raise if it cannot."""
        future = self._pool.schedule(_ping, timeout=timeout_s)
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 - reported as "unavailable" with the cause
            raise UnavailableError(f"the worker processes could not start: {type(exc).__name__}: {exc}") from None

    def note_worker_memory(self, rss_mb: float) -> bool:
        """Recycle the workers when one reports more resident memory than allowed; True if it did.

        pebble cannot retire one chosen worker, so new jobs go to a fresh pool
        while the old one finishes what it has and exits. Rare by design: the
        engine's memory is flat, so this guards against leaks in native code.
        """
        if rss_mb <= self.max_rss_mb:
            return False
        old, self._pool = self._pool, self._new_pool()
        old.close()
        for pool in [p for p in self._retired if not p.active]:
            pool.join()  # finished: reap its processes and threads
            self._retired.remove(pool)
        self._retired.append(old)
        self.recycled += 1
        return True

    def close(self) -> None:
        """Finish queued jobs, then stop the workers."""
        for pool in [*self._retired, self._pool]:
            pool.close()
            pool.join()

    def stop(self) -> None:
        """Stop now; running jobs are abandoned."""
        for pool in [*self._retired, self._pool]:
            pool.stop()
            pool.join()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.close()
        else:
            self.stop()
