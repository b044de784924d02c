"""`DaskExecutor`: the daemon's jobs as Dask tasks, behind the `ocrd.service.executor.Executor` interface.

Each job: the daemon reads the claimed file through the gate (an I/O thread), submits `run_task` under a key
naming the job and its attempt, hears from the worker when the task starts (the dispatcher then charges the
attempt), and when the encoded output set comes back writes it durably (JSON last) before the job's future
completes, so the loop commits the row after the files are on disk, as with the local pool.

Exactly once in effect: a job's future completes once; a result that arrives after it (a task the daemon
already timed out, an attempt it gave up on) is dropped and nothing is written. A worker that dies: Dask
reruns the task (the scheduler's `allowed-failures`), and when it gives up the job fails as worker_crashed.
Dask cannot interrupt a task: past `workers.job_timeout_s` the daemon fails the job as timed out, cancels
the task and restarts that worker through its nanny. The scheduler lost: every job in flight is released
(back to queued, uncharged), capacity drops to 0 so nothing new is handed out, and the monitor thread
connects again; the loop keeps watching and claiming meanwhile.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distributed.scheduler import KilledWorker

from ocrd.cluster.connection import Connection
from ocrd.cluster.identity import WorkerIdentity, source_identity
from ocrd.cluster.plugin import RESOURCE, OcrdWorkerPlugin, run_task
from ocrd.errors import InputError
from ocrd.intake.gate import read_input
from ocrd.logs import get_logger
from ocrd.service.executor import ExecutorHealth, JobReleased, WorkerCrashed, write_encoded

if TYPE_CHECKING:
    from ocrd.config.schema import Config
    from ocrd.engine.int8.cache import PreparedModels
    from ocrd.jobs.records import EncodedJob, Job

log = get_logger("ocrd.cluster")

_MONITOR_EVERY_S = 0.25  # timeouts are enforced to about this; the scheduler is asked about workers each turn
_IO_THREADS = 2  # reading inputs and writing output sets: disk-bound, off the daemon loop


@dataclass
class _Task:
    job: Job
    future: Future  # what the dispatcher holds
    key: str | None = None
    dask_future: Any = None
    started_s: float | None = None  # monotonic, when a worker last announced it began
    worker: str | None = None
    writing: bool = False  # the result is being written: no timeout may fire any more


class DaskExecutor:
    """Jobs on a Dask cluster; built by the CLI for `executor: dask` and handed to the daemon."""

    def __init__(self, cfg: Config, models: PreparedModels):
        self._cfg = cfg
        self._timeout_s = cfg.workers.job_timeout_s
        expected: WorkerIdentity = source_identity(cfg)
        expected = WorkerIdentity(expected.ocrd_version, expected.model_set, expected.sources, models.precisions)
        self._conn = Connection(cfg.dask, OcrdWorkerPlugin(cfg, expected), self._on_started, self._on_accepted)
        self._tasks: dict[str, _Task] = {}  # by task key
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        self._io = ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="ocrd-dask-io")
        self._closing = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="ocrd-dask-monitor", daemon=True)
        self._monitor_started = False
        self.recycled = 0
        self.stale_dropped = 0

    # ------------------------------------------------------------ the Executor interface

    @property
    def capacity(self) -> int:
        view = self._conn.view
        if not view.reachable or not self._conn.connected:
            return 0
        limit = self._cfg.dask.max_in_flight
        return 2 * view.threads if limit == "auto" else int(limit)

    @property
    def alive(self) -> bool:
        view = self._conn.view
        return view.reachable and bool(view.accepted)

    def health(self) -> ExecutorHealth:
        view = self._conn.view
        with self._lock:
            in_flight = sum(1 for t in self._tasks.values() if t.key is not None)
        return ExecutorHealth(kind="dask", alive=self.alive, capacity=self.capacity,
                              workers_connected=len(view.accepted), threads=view.threads, tasks_in_flight=in_flight,
                              scheduler=self._conn.address, scheduler_reachable=view.reachable,
                              workers_refused=len(view.refused))  # fmt: skip

    def wait_ready(self, timeout_s: float) -> None:
        """Connect once before the daemon says READY; an unreachable scheduler is logged, not fatal (the
        daemon keeps claiming and the monitor keeps trying), since the cluster may start after it."""
        self._conn.ensure()
        self._conn.refresh()
        if not self._monitor_started:
            self._monitor.start()
            self._monitor_started = True

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        task = _Task(job, future)
        self._io.submit(self._send, task)
        return future

    def note_worker_memory(self, rss_mb: float) -> bool:
        return False  # a Dask worker's memory is its nanny's to watch (`dask worker --memory-limit`)

    def close(self) -> None:
        """Stop taking results in; jobs still out are the daemon's to requeue (its shutdown does)."""
        self._closing.set()
        self._io.shutdown(wait=True)  # a write under way finishes: no half set is left for recovery
        with self._lock:
            tasks = list(self._tasks.values())
            self._tasks.clear()
        client = self._conn.client
        if client is not None and tasks:
            try:
                client.cancel([t.dask_future for t in tasks if t.dask_future is not None], force=True)
            except Exception:  # noqa: BLE001, S110 - the scheduler may be gone already; nothing is written either way
                pass
        for task in tasks:
            if not task.future.done():
                task.future.cancel() or task.future.set_exception(JobReleased("the daemon is stopping"))
        if self._monitor_started:
            self._monitor.join(timeout=10)
        self._conn.close()

    def stop(self) -> None:
        self.close()

    # ------------------------------------------------------------ one job's way

    def _send(self, task: _Task) -> None:
        """I/O thread: read the claimed file through the gate, then hand it to the scheduler."""
        job = task.job
        try:
            data, mtime_s = read_input(job.path, self._cfg.intake)
        except InputError as exc:
            task.future.set_exception(exc)  # refused here as a local worker would refuse it
            return
        except OSError as exc:
            task.future.set_exception(exc)
            return
        client = self._conn.client
        if self._closing.is_set() or client is None or not self._conn.connected:
            task.future.cancel()  # never taken: the dispatcher hands it out again when there is capacity
            return
        key = f"ocrd-{job.job_id}-a{job.attempt}-{next(self._serial)}"
        task.key = key
        with self._lock:
            self._tasks[key] = task
        try:
            # pure=False, retries=0: a job is never deduplicated or silently rerun by Dask for its own errors;
            # reruns after a worker's death are the scheduler's allowed-failures, as the issue asks.
            dask_future = client.submit(run_task, job, data, mtime_s, key=key, pure=False, retries=0,
                                        resources={RESOURCE: 1})  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the scheduler went away between the check and the submit
            with self._lock:
                self._tasks.pop(key, None)
            log.warning("dask_submit_failed", job_id=job.job_id, error=str(exc))
            task.future.cancel()
            return
        task.dask_future = dask_future
        dask_future.add_done_callback(lambda f, task=task: self._finish_later(task, f))

    def _finish_later(self, task: _Task, dask_future: Any) -> None:
        # Runs on the client's event thread, which must not block (a result is read and written): hand over.
        try:
            self._io.submit(self._finish, task, dask_future)
        except RuntimeError:  # closing: the I/O threads are gone and nothing more is written
            pass

    def _on_started(self, msg: dict[str, Any]) -> None:
        """A worker began a task (the client's event thread): the job is taken; its timeout starts now."""
        with self._lock:
            task = self._tasks.get(str(msg.get("key")))
            if task is None or task.future.done():
                return
            first = task.started_s is None
            task.started_s = time.monotonic()  # a rerun after a worker's death gets its own full timeout
            task.worker = str(msg.get("worker"))
            if first:
                task.future.set_running_or_notify_cancel()
        if first:
            log.info("dask_task_started", job_id=task.job.job_id, key=task.key, worker=task.worker, pid=msg.get("pid"))
        else:
            log.warning("dask_task_rerun", job_id=task.job.job_id, key=task.key, worker=task.worker, pid=msg.get("pid"))

    def _on_accepted(self, worker: str) -> None:
        """A worker now offers the ocrd resource: hand the jobs no worker has begun out again.

        The scheduler places a task with a resource restriction when it is submitted, or when a worker
        joins; a resource a worker adds later (after loading its models) wakes no task already waiting
        for one. So tasks not yet begun are cancelled (their jobs were never taken: the dispatcher hands
        them out again at once, uncharged) and the new submissions see every accepted worker.
        """
        with self._lock:
            waiting = [t for t in self._tasks.values() if t.started_s is None and t.dask_future is not None]
        client = self._conn.client
        if not waiting or client is None:
            return
        log.info("dask_tasks_resubmitted", worker=worker, count=len(waiting), why="a worker became usable")
        # From the client's event thread a blocking call would deadlock: cancel from a thread of our own.
        threading.Thread(target=self._cancel_quietly, args=(client, [t.dask_future for t in waiting]), daemon=True,
                         name="ocrd-dask-cancel").start()  # fmt: skip

    @staticmethod
    def _cancel_quietly(client: Any, futures: list[Any]) -> None:
        try:
            client.cancel(futures, force=True)
        except Exception as exc:  # noqa: BLE001 - the scheduler went away: its loss releases them anyway
            log.warning("dask_cancel_failed", count=len(futures), error=str(exc))

    def _finish(self, task: _Task, dask_future: Any) -> None:
        """I/O thread: a task ended; turn it into the job's ending unless the job already has one."""
        status = dask_future.status
        with self._lock:
            self._tasks.pop(task.key or "", None)
            stale = task.future.done()
            if not stale and status == "finished":
                task.writing = True
        if stale or self._closing.is_set():
            if status == "finished":
                self.stale_dropped += 1
                log.warning("dask_stale_result_dropped", job_id=task.job.job_id, key=task.key)
            return
        if status == "finished":
            try:
                encoded: EncodedJob = dask_future.result()
                outcome = write_encoded(task.job, encoded)
            except BaseException as exc:  # noqa: BLE001 - the dispatcher classifies (OSError: output_failed)
                task.future.set_exception(exc)
            else:
                task.future.set_result(outcome)
            return
        if status == "cancelled":
            # Only the scheduler's loss cancels a task the daemon still waits for.
            if task.started_s is None and task.future.cancel():
                return
            task.future.set_exception(JobReleased("the Dask scheduler was lost while this job ran; queued again"))
            return
        exc = dask_future.exception()
        if isinstance(exc, KilledWorker):
            exc = WorkerCrashed(f"the Dask workers running this file died, and the scheduler gave up ({exc})")
        if not task.future.running():
            task.future.set_running_or_notify_cancel()
        task.future.set_exception(exc)

    # ------------------------------------------------------------ the monitor thread

    def _watch(self) -> None:
        while not self._closing.wait(_MONITOR_EVERY_S):
            try:
                self._conn.ensure()
                self._conn.refresh()
                self._enforce_timeouts()
            except Exception:  # noqa: BLE001 - the monitor must outlive any one failure
                log.exception("dask_monitor_failed")

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        expired: list[_Task] = []
        with self._lock:
            for key, task in list(self._tasks.items()):
                if task.started_s is None or task.writing or now - task.started_s <= self._timeout_s:
                    continue
                del self._tasks[key]
                task.future.set_exception(FutureTimeout())
                expired.append(task)
        for task in expired:
            log.warning("dask_task_timed_out", job_id=task.job.job_id, key=task.key, worker=task.worker,
                        timeout_s=self._timeout_s, action="cancelled; restarting that worker")  # fmt: skip
            client = self._conn.client
            if client is not None and task.dask_future is not None:
                try:
                    client.cancel([task.dask_future], force=True)
                except Exception as exc:  # noqa: BLE001 - restarting the worker stops the task anyway
                    log.warning("dask_cancel_failed", key=task.key, error=str(exc))
            if task.worker is not None:
                self.recycled += 1
                # In its own thread: a restart waits for the new process, and timeouts of others go on.
                threading.Thread(target=self._conn.restart_worker, args=(task.worker,), daemon=True,
                                 name="ocrd-dask-restart").start()  # fmt: skip
