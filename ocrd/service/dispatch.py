"""The jobs in flight: queued rows handed to the worker pool, an attempt charged once a worker takes one, finished futures turned into done, retry or quarantine."""

from __future__ import annotations

import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocrd import __version__
from ocrd.config.schema import Config, InboxConfig
from ocrd.errors import Reason
from ocrd.jobs.log import JobLog
from ocrd.jobs.rows import JobLogBusy, JobRow
from ocrd.jobs.records import Job, Outcome
from ocrd.logs import get_logger
from ocrd.outputs.writers import choose_stem
from ocrd.service.disposal import dispose_original, quarantine
from ocrd.service.executor import Executor, JobReleased
from ocrd.service.health import DurationHistogram
from ocrd.service.outbox import output_dir, written_by
from ocrd.service.stats import DaemonStats
from ocrd.service.workers import JobFailure, classify_failure

log = get_logger("ocrd.daemon")

_RETRY_BASE_S = 5.0  # transient failures retry after 5 s, 10 s, 20 s, ... (capped)
RETRY_MAX_S = 300.0
_NO_TASK_RUNNING = "All workers expired"  # pebble's BrokenProcessPool text when it broke with no task taken


@dataclass
class _InFlight:
    row: JobRow
    future: Any
    inbox: InboxConfig
    stem: str
    submitted_s: float
    # False while the job waits in the pool's queue: its row stays `queued` and no attempt is charged,
    # so a crash can only count against files a worker had actually taken.
    started: bool = False


class Dispatcher:
    """Up to two jobs per worker in the pool: `submit_queued`, `note_started` and `collect_finished` each turn."""

    def __init__(self, cfg: Config, workers: int, stats: DaemonStats):
        self.cfg = cfg
        self.workers = workers
        self.stats = stats
        self.in_flight: dict[str, _InFlight] = {}
        self.durations = DurationHistogram()
        self._inboxes = {inbox.name: inbox for inbox in cfg.inboxes}

    def submit_queued(self, joblog: JobLog, pool: Executor) -> None:
        limit = pool.capacity  # a cluster's changes as workers come and go (0 while its scheduler is away)
        capacity = limit - len(self.in_flight)
        if capacity <= 0:
            return
        now = datetime.now(UTC)
        rows = joblog.next_queued(capacity + len(self.in_flight), now)
        # A file that finds the daemon idle (nothing in flight, nothing else waiting) may use every core.
        alone = not self.in_flight and sum(1 for r in rows if r.id not in self.in_flight) == 1
        for row in rows:
            if len(self.in_flight) >= limit:
                break
            if row.id in self.in_flight:
                continue
            inbox = self._inboxes.get(row.inbox)
            if inbox is None or not Path(row.work_path).exists():
                _quarantine_missing(joblog, row)
                continue
            if self.cfg.duplicates == "skip" and row.sha256:
                if any(f.row.sha256 == row.sha256 for f in self.in_flight.values()):
                    continue  # the same content is being read right now: decide when it is done
                earlier = joblog.find_done_by_sha256(row.sha256)
                if earlier is not None and earlier.id != row.id:
                    row = joblog.mark_duplicate(row.id, earlier.id)
                    self.stats.duplicates += 1
                    log.info("job_duplicate", job_id=row.id, duplicate_of=earlier.id, rel_path=row.rel_path)
                    dispose_original(self.cfg, row, inbox, Path(row.work_path))
                    continue
            out_dir = output_dir(self.cfg.outbox, inbox, row.rel_path)
            stem = row.stem
            if stem is None:
                reserved = {f.stem for f in self.in_flight.values()
                            if output_dir(self.cfg.outbox, f.inbox, f.row.rel_path) == out_dir}  # fmt: skip
                stem = choose_stem(out_dir, Path(row.rel_path).stem, 1, self.cfg.outputs,
                                   is_ours=lambda p, job_id=row.id: written_by(p, job_id), reserved=reserved)  # fmt: skip
                # Recorded before any worker can write under it: a retry after a crash reuses it.
                row = joblog.assign_stem(row.id, stem)
            job = Job(job_id=row.id, path=Path(row.work_path), rel_path=row.rel_path, out_dir=out_dir,
                      stem=stem, inbox=inbox.name, attempt=row.attempts + 1, alone=alone)  # fmt: skip
            self.in_flight[row.id] = _InFlight(row, pool.submit(job), inbox, stem, time.monotonic())

    def note_started(self, joblog: JobLog) -> None:
        """queued → running (one attempt charged) for each job a worker has taken since the last turn."""
        for flight in self.in_flight.values():
            if not flight.started and (flight.future.running() or flight.future.done()):
                try:
                    _mark_started(joblog, flight)
                except JobLogBusy:
                    return  # still `queued` in the log; marked on a later turn or when it finishes

    def collect_finished(self, joblog: JobLog, pool: Executor) -> None:
        for job_id, flight in list(self.in_flight.items()):
            if not flight.future.done():
                continue
            del self.in_flight[job_id]
            self.stats.last_progress_s = time.monotonic()
            try:
                if _never_taken(flight):
                    log.info("job_redispatched", job_id=job_id, rel_path=flight.row.rel_path)
                    continue  # its row is still `queued`: the next submit_queued hands it out again
                if not flight.started:
                    _mark_started(joblog, flight)  # it finished before a turn saw it running
                try:
                    outcome = flight.future.result()
                except JobReleased as exc:
                    joblog.release(job_id, Reason.INTERRUPTED, str(exc))
                    log.warning("job_released", job_id=job_id, rel_path=flight.row.rel_path, error=str(exc))
                except Exception as exc:  # noqa: BLE001 - every failure is classified, none is fatal
                    self._on_failure(joblog, flight, classify_failure(exc, self.cfg.workers.job_timeout_s))
                else:
                    self._on_success(joblog, pool, flight, outcome)
            except JobLogBusy:
                # The handlers' first act is the row's transition, so nothing happened yet: keep the
                # finished job in flight and handle it again next turn (else its row stays `running`).
                self.in_flight[job_id] = flight
                raise

    def _on_success(self, joblog: JobLog, pool: Executor, flight: _InFlight, outcome: Outcome) -> None:
        fields = asdict(outcome) | {"ocrd_version": __version__, "model_set": self.cfg.model_set}
        row = joblog.finish_done(flight.row.id, fields)
        self.stats.done += 1
        self.durations.observe(time.monotonic() - flight.submitted_s)
        log.info("job_done", job_id=row.id, rel_path=row.rel_path, pages=outcome.pages, lines=outcome.lines,
                 total_ms=outcome.total_ms, peak_rss_mb=outcome.peak_rss_mb)  # fmt: skip
        dispose_original(self.cfg, row, flight.inbox, Path(row.work_path))
        if pool.note_worker_memory(outcome.worker_rss_mb):
            log.warning("workers_recycled", job_id=row.id, worker_rss_mb=round(outcome.worker_rss_mb),
                        max_rss_mb=self.cfg.workers.max_rss_mb)  # fmt: skip

    def _on_failure(self, joblog: JobLog, flight: _InFlight, failure: JobFailure) -> None:
        row = joblog.get(flight.row.id) or flight.row
        retryable = failure.transient or failure.reason in (Reason.TIMEOUT, Reason.WORKER_CRASHED)
        if retryable and row.attempts < self.cfg.max_attempts:
            delay_s = min(RETRY_MAX_S, _RETRY_BASE_S * 2 ** (row.attempts - 1))
            joblog.finish_failed(row.id, failure.reason, failure.message,
                                 retry_at=datetime.now(UTC) + timedelta(seconds=delay_s))  # fmt: skip
            self.stats.retried += 1
            log.warning("job_retry_scheduled", job_id=row.id, reason=str(failure.reason), error=failure.message,
                        attempts=row.attempts, delay_s=delay_s)  # fmt: skip
            return
        if failure.transient:
            # The input is fine but the outbox is not: keep the file in work for `ocrd requeue`.
            joblog.finish_failed(row.id, failure.reason, failure.message, retry_at=None)
            log.error("job_failed", job_id=row.id, reason=str(failure.reason), error=failure.message)
            return
        quarantine(joblog, self.cfg, self.stats, row, failure.reason, failure.message)


def _mark_started(joblog: JobLog, flight: _InFlight) -> None:
    flight.row = joblog.start(flight.row.id, flight.stem)
    flight.started = True


def _never_taken(flight: _InFlight) -> bool:
    """True when the pool broke while no worker had any job: this one is simply dispatched again.

    pebble says "All workers expired" only when no task was running (a worker died between jobs or
    while starting), so nothing was read yet. Any other break may have been this job's doing and is
    charged as a crash; an unknown wording falls on that side too.
    """
    if flight.started:
        return False
    if flight.future.cancelled():
        return True
    error = flight.future.exception()
    return isinstance(error, BrokenProcessPool) and str(error) == _NO_TASK_RUNNING


def _quarantine_missing(joblog: JobLog, row: JobRow) -> None:
    joblog.quarantine(row.id, Reason.NOT_FOUND, f"the claimed file {row.work_path} is gone")
    log.error("job_file_missing", job_id=row.id, work_path=row.work_path)
