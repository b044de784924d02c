"""The daemon: wiring, the main loop `step()`, health and status, shutdown, and `run_daemon` with its signals.

The main process watches, decides and is the only writer of the job log; it
never decodes an image or runs a model (the worker pool does). The job log is
the source of truth: a file move always follows the row that explains it, so
after a crash every leftover file in `.ocrd/work/` can be finished from its row
(`recovery`). Admission of new files, the jobs in flight and the disposal of
originals live in `admission`, `dispatch` and `disposal`; this module puts them
in order each turn.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from ocrd import __version__
from ocrd.config.schema import Config, pool_shape
from ocrd.cpus import available_cpus
from ocrd.errors import UnavailableError
from ocrd.intake.decode import decoder_env
from ocrd.jobs.log import JobLog
from ocrd.inbox.uploads import discard_staging_file
from ocrd.jobs.rows import JobLogBusy
from ocrd.service.handoff import Handoff, Refusal, RequeueRequest, UploadRequest
from ocrd.service.health import HealthSnapshot
from ocrd.logs import get_logger, reopen_log_files
from ocrd.engine.int8.cache import PreparedModels, prepare_model_set
from ocrd.outputs.writers import atomic_write_text
from ocrd.service.admission import Admission
from ocrd.service.dispatch import RETRY_MAX_S, Dispatcher
from ocrd.service.executor import EXECUTOR_STATUS_FILE, Executor, ExecutorHealth
from ocrd.service.outbox import remove_leftovers
from ocrd.service.recovery import recover
from ocrd.service.requeue import requeue_row
from ocrd.service.sdnotify import Notifier
from ocrd.service.stats import DaemonStats
from ocrd.service.workers import WorkerPool

log = get_logger("ocrd.daemon")

_TICK_S = 0.2  # longest the loop blocks waiting for watcher events
_COUNTS_EVERY_S = 5.0  # job-log counts for /metrics are refreshed this often
_STATUS_EVERY_S = 10.0
_WATCHDOG_EVERY_S = 1.0  # far below any sensible WatchdogSec/2, far above the loop's 5 turns a second  # sd_notify STATUS= cadence
_PROGRESS_SLACK_S = 60.0  # beyond job_timeout_s, how long without a finished job before WATCHDOG pings stop

# Builds the executor at start-up from the config and the verified model set (the CLI passes
# `ocrd.cluster.executor.DaskExecutor` for `executor: dask`); None: the local worker pool.
ExecutorFactory = Callable[[Config, PreparedModels], Executor]


class Frontend(Protocol):
    """What serves the daemon over the network (`ocrd.http.server.HttpFrontend`, wired in by the CLI).

    `bind()` early in `start()` (a taken port fails the start before models load), `start(daemon)` once
    the loop can take requests (it reads `health_snapshot()` and submits to `handoff`), `stop()` at shutdown.
    """

    def bind(self) -> None: ...
    def start(self, daemon: Daemon) -> None: ...
    def stop(self) -> None: ...


class Daemon:
    """One ocrd daemon: `start()`, then `step()` until `stopping`, then `shutdown()`."""

    def __init__(
        self,
        cfg: Config,
        *,
        notifier: Notifier | None = None,
        frontend: Frontend | None = None,
        executor: ExecutorFactory | None = None,
    ):
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.stats = DaemonStats()
        self.stopping = False
        self._admission = Admission(cfg, self.stats)
        # Uploads and requeues from HTTP threads, carried out by the loop (the job log's only writer).
        self.handoff = Handoff(wake=self._admission.wake)
        self._pool: Executor | None = None
        self._executor_factory = executor
        self.joblog: JobLog | None = None
        self._http = frontend
        self._jobs_by_state: dict[str, int] = {}
        self._next_count_s = 0.0
        self._last_tick_s = time.monotonic()
        self._next_watchdog_s = 0.0
        self.workers, self.threads = pool_shape(available_cpus(), cfg.workers.count, cfg.workers.intra_op_threads)
        self._dispatch = Dispatcher(cfg, self.workers, self.stats)

    # ------------------------------------------------------------------ start-up

    def _prepare_directories(self) -> None:
        dirs = [self.cfg.outbox, self.cfg.archive, self.cfg.quarantine, self.cfg.state_dir]
        dirs += [inbox.path for inbox in self.cfg.inboxes]
        for path in dirs:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UnavailableError(f"cannot create directory {path}: {exc.strerror}") from None
            if not os.access(path, os.W_OK | os.X_OK):
                raise UnavailableError(f"directory {path} is not writable by this user")

    def start(self) -> None:
        """Check everything, recover from a previous run, start workers and watchers, then say READY."""
        self._prepare_directories()
        if self._http is not None:
            self._http.bind()  # a taken port is a clear error now, not after the models have loaded
        models = prepare_model_set(self.cfg, waiting=self._waiting_for_models)
        self.joblog = JobLog.for_config(self.cfg)
        self._recover()
        os.environ.update(decoder_env(self.cfg.intake))  # inherited by the spawned workers
        if self._executor_factory is not None:
            self._pool = self._executor_factory(self.cfg, models)
        else:
            self._pool = WorkerPool(self.cfg, workers=self.workers, intra_op_threads=self.threads,
                                    model_set=models.model_set, verified=models.verified)  # fmt: skip
        # READY means the models load in a worker: fail here, not on the first file.
        self._pool.wait_ready(timeout_s=max(60.0, self.cfg.workers.job_timeout_s))
        self._admission.start()
        if self._http is not None:
            self._http.start(self)
        log.info(
            "daemon_started", version=__version__, workers=self.workers, threads=self.threads,
            executor=self.cfg.executor,
            recognizer=models.precision, detector=models.det_precision,
            inboxes=[i.name for i in self.cfg.inboxes], watch_modes=self._admission.watch_modes,
        )  # fmt: skip
        self.notifier.ready(self._status_text())

    def _waiting_for_models(self) -> None:
        """Called every few seconds while the INT8 recognizer is built at first start: keep systemd informed."""
        self.notifier.watchdog()
        self.notifier.status("building the INT8 recognizer (first start with these models, one to two minutes)")

    def _recover(self) -> None:
        """Start-up recovery on this daemon's job log, before any worker runs (`recovery.recover`)."""
        assert self.joblog is not None
        recover(self.joblog, self.cfg, self.stats)

    # ------------------------------------------------------------------ loop

    def _status_text(self) -> str:
        return (f"{len(self._dispatch.in_flight)} in flight, {self.stats.done} done, {self.stats.quarantined} quarantined, "
                f"{self.workers} workers")  # fmt: skip

    def health_snapshot(self) -> HealthSnapshot:
        """What /healthz and /metrics show; runs on the HTTP thread, so it reads plain attributes only."""
        counts = self._jobs_by_state
        return HealthSnapshot(
            loop_last_tick_age_s=time.monotonic() - self._last_tick_s,
            workers_alive=self._pool is not None and self._pool.alive,
            workers=self.workers,
            in_flight=len(self._dispatch.in_flight),
            queue_depth=counts.get("queued", 0),
            jobs_by_state=counts,
            quarantines_by_reason=self.stats.quarantines_by_reason,
            worker_restarts=self._pool.recycled if self._pool is not None else 0,
            durations=self._dispatch.durations.snapshot(),
            stopping=self.stopping,
            executor=self._executor_health(),
        )

    def _executor_health(self) -> ExecutorHealth | None:
        if self._pool is None:
            return None
        health = self._pool.health()
        if health.kind == "local":  # the pool does not count its jobs; the dispatcher does
            health = replace(health, tasks_in_flight=len(self._dispatch.in_flight))
        return health

    def _write_executor_status(self) -> None:
        """The executor's health for `ocrd status` (another process): replaced atomically every few seconds."""
        health = self._executor_health()
        if health is None:
            return
        document = health.as_dict() | {"updated_at": time.time(), "pid": os.getpid()}
        try:
            atomic_write_text(self.cfg.state_dir / EXECUTOR_STATUS_FILE, json.dumps(document) + "\n")
        except OSError as exc:  # a status nicety: never a reason to stop the loop
            log.warning("executor_status_unwritten", error=str(exc))

    def _refresh_counts(self) -> None:
        if self.joblog is None or time.monotonic() < self._next_count_s:
            return
        self._jobs_by_state = dict(self.joblog.status()["counts"])
        self._write_executor_status()
        self._next_count_s = time.monotonic() + _COUNTS_EVERY_S

    def step(self, block_s: float = _TICK_S) -> None:
        """One turn of the main loop: events, rescans, admission, dispatch, completion, heartbeat."""
        assert self.joblog is not None and self._pool is not None
        self._admission.drain_events(block_s)
        if time.monotonic() >= self._admission.next_rescan_s:
            self._admission.rescan()
        if not self.stopping:
            self._admission.admit_ready(self.joblog)
            self._serve_handoff()
        else:
            self._refuse_handoff()
        self._dispatch.collect_finished(self.joblog, self._pool)
        if not self.stopping:
            self._dispatch.submit_queued(self.joblog, self._pool)
        self._dispatch.note_started(self.joblog)
        self._refresh_counts()
        now = time.monotonic()
        if not self._dispatch.in_flight:
            self.stats.last_progress_s = now  # idle is healthy
        self._last_tick_s = now
        # WATCHDOG=1 only while jobs complete: a pool that takes jobs and never
        # returns them (past any job timeout) lets systemd restart the service.
        progressing = now - self.stats.last_progress_s < self.cfg.workers.job_timeout_s + _PROGRESS_SLACK_S
        if progressing and now >= self._next_watchdog_s:
            self.notifier.watchdog()
            self._next_watchdog_s = now + _WATCHDOG_EVERY_S

    def _serve_handoff(self) -> None:
        """Carry out what HTTP threads handed over: claim uploads, requeue jobs; answer every ticket taken."""
        for ticket in self.handoff.take_all():
            request = ticket.request
            if not ticket.take():  # its requester gave up waiting: it must not become a job
                if isinstance(request, UploadRequest):
                    discard_staging_file(request.staged_path)
                continue
            try:
                ticket.answer(self._carry_out(request))
            except BaseException:
                ticket.answer(Refusal("internal_error", "the daemon failed to take this request; see its log"))
                raise

    def _carry_out(self, request: UploadRequest | RequeueRequest) -> object:
        assert self.joblog is not None
        if isinstance(request, RequeueRequest):
            row = self.joblog.get(request.job_id)
            if row is None:
                return Refusal("job_not_found", f"no job with id {request.job_id}")
            try:
                problem = requeue_row(self.cfg, self.joblog, row)
            except JobLogBusy as exc:
                return Refusal("job_log_busy", str(exc))
            if problem is not None:
                return Refusal("not_requeueable", f"job {row.id} {problem}")
            log.info("job_requeued", job_id=row.id, via="http")
            return self.joblog.get(row.id)
        inbox = next((i for i in self.cfg.inboxes if i.name == request.inbox), None)
        try:
            if inbox is None:
                raise ValueError(f"no inbox named {request.inbox!r}")
            return self._admission.admit_upload(self.joblog, inbox, request)
        except (OSError, ValueError) as exc:
            discard_staging_file(request.staged_path)
            log.error("upload_claim_failed", inbox=request.inbox, name=request.name, error=str(exc))
            return Refusal("upload_failed", f"the upload could not be placed in the inbox: {exc}")

    def _refuse_handoff(self) -> None:
        refusal = Refusal("stopping", "the daemon is stopping; try again when it is back")
        for ticket in self.handoff.close(refusal):
            if ticket.take():
                if isinstance(ticket.request, UploadRequest):
                    discard_staging_file(ticket.request.staged_path)
                ticket.answer(refusal)
            elif isinstance(ticket.request, UploadRequest):
                discard_staging_file(ticket.request.staged_path)

    def run_forever(self) -> None:
        next_status_s = 0.0
        failures_in_row = 0
        while not self.stopping:
            try:
                self.step()
                failures_in_row = 0
            except Exception:  # noqa: BLE001 - the loop's last line of defence (DESIGN 11): log, back off, go on
                failures_in_row += 1
                log.exception("loop_step_failed", failures_in_row=failures_in_row)
                time.sleep(min(RETRY_MAX_S, 0.5 * 2**failures_in_row))
            if time.monotonic() >= next_status_s:
                self.notifier.status(self._status_text())
                next_status_s = time.monotonic() + _STATUS_EVERY_S

    def request_stop(self) -> None:
        self.stopping = True

    def shutdown(self, grace_s: float) -> None:
        """Stop admitting; let in-flight jobs finish within grace_s; the rest are recovered on the next start."""
        self.notifier.stopping()
        self._refuse_handoff()
        log.info("daemon_stopping", in_flight=len(self._dispatch.in_flight), grace_s=grace_s)
        deadline = time.monotonic() + grace_s
        while self._dispatch.in_flight and time.monotonic() < deadline:
            assert self.joblog is not None and self._pool is not None  # nothing is in flight before start()
            self._admission.drain_events(min(_TICK_S, max(0.0, deadline - time.monotonic())))
            self._dispatch.collect_finished(self.joblog, self._pool)
        self._admission.stop()
        if self._http is not None:
            self._http.stop()
        if self._pool is not None:
            if self._dispatch.in_flight:
                self._pool.stop()
            else:
                self._pool.close()
        if self.joblog is not None:
            if self._dispatch.in_flight:
                for row in self.joblog.unfinished_with_stem():  # the pool is stopped: no worker writes any more
                    remove_leftovers(self.cfg, row)
                requeued = self.joblog.recover_interrupted()
                log.warning("jobs_requeued_at_stop", count=len(requeued))
            self.joblog.close()
        log.info("daemon_stopped", done=self.stats.done, quarantined=self.stats.quarantined)


def run_daemon(
    cfg: Config,
    *,
    grace_s: float | None = None,
    frontend: Frontend | None = None,
    executor: ExecutorFactory | None = None,
) -> int:
    """`ocrd run`: start, loop until SIGTERM/SIGINT, shut down; a second signal exits at once."""
    daemon = Daemon(cfg, frontend=frontend, executor=executor)
    signals_seen = 0

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            os._exit(1)  # the next start recovers whatever was running
        daemon.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: reopen_log_files())  # logrotate's postrotate
    daemon.start()
    try:
        daemon.run_forever()
    finally:
        daemon.shutdown(grace_s if grace_s is not None else cfg.workers.job_timeout_s)
    return 0
