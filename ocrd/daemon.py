"""The daemon: wiring, start-up recovery, the main loop `step()`, admission, completion and shutdown.

The main process watches, decides and is the only writer of the job log; it
never decodes an image or runs a model (the worker pool does). The job log is
the source of truth: a file move always follows the row that explains it, so
after a crash every leftover file in `.ocrd/work/` can be finished from its row.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocrd import __version__
from ocrd.config import Config, InboxConfig, pool_shape
from ocrd.cpus import available_cpus
from ocrd.errors import Reason, UnavailableError
from ocrd.inbox import (
    InboxWatcher,
    StabilityTracker,
    claim,
    claimed_rel_path,
    escaped_name,
    release,
    remove_claimed,
    scan_inbox,
    text_named_claim,
    work_dir_entries,
    work_root,
)
from ocrd.intake import decoder_env
from ocrd.jobids import new_job_id
from ocrd.joblog import JobLog, JobLogBusy, JobLogError, JobRow, JobState
from ocrd.health import DurationHistogram, HealthServer, HealthSnapshot
from ocrd.logs import get_logger, reopen_log_files
from ocrd.int8 import prepare_model_set
from ocrd.models import file_sha256
from ocrd.outputs import atomic_write_text, choose_stem
from ocrd.job import Job, Outcome
from ocrd.sdnotify import Notifier
from ocrd.workers import JobFailure, WorkerPool, classify_failure

log = get_logger("ocrd.daemon")

_TICK_S = 0.2  # longest the loop blocks waiting for watcher events
_RETRY_BASE_S = 5.0  # transient failures retry after 5 s, 10 s, 20 s, ... (capped)
_RETRY_MAX_S = 300.0
_COUNTS_EVERY_S = 5.0  # job-log counts for /metrics are refreshed this often
_STATUS_EVERY_S = 10.0
_WATCHDOG_EVERY_S = 1.0  # far below any sensible WatchdogSec/2, far above the loop's 5 turns a second  # sd_notify STATUS= cadence
_PROGRESS_SLACK_S = 60.0  # beyond job_timeout_s, how long without a finished job before WATCHDOG pings stop
_NO_TASK_RUNNING = "All workers expired"  # pebble's BrokenProcessPool text when it broke with no task taken
_DONE_DIR = "done"  # on_success: keep -> <inbox>/.ocrd/done/<rel>, out of the scan's way


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


@dataclass
class DaemonStats:
    started_s: float = field(default_factory=time.monotonic)
    last_progress_s: float = field(default_factory=time.monotonic)
    admitted: int = 0
    done: int = 0
    quarantined: int = 0
    duplicates: int = 0
    retried: int = 0


class Daemon:
    """One ocrd daemon: `start()`, then `step()` until `stopping`, then `shutdown()`."""

    def __init__(self, cfg: Config, *, notifier: Notifier | None = None):
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.stats = DaemonStats()
        self.stopping = False
        self._events: queue.SimpleQueue[tuple[str, Path]] = queue.SimpleQueue()
        self._inboxes = {inbox.name: inbox for inbox in cfg.inboxes}
        self._trackers: dict[str, StabilityTracker] = {}
        self._in_flight: dict[str, _InFlight] = {}
        # Claimed files whose row could not be written yet (job log locked): recorded before any new claim.
        self._unrecorded: list[tuple[InboxConfig, str, Path, int, str | None, str]] = []
        self._busy_reported = False  # one error per locked-job-log episode, not one per turn
        self._scan_failing: set[str] = set()  # inboxes whose rescan fails (unmounted, removed): error once
        self._next_rescan_s = 0.0
        self._watcher: InboxWatcher | None = None
        self._pool: WorkerPool | None = None
        self.joblog: JobLog | None = None
        self._http: HealthServer | None = None
        self._durations = DurationHistogram()
        self._quarantines_by_reason: dict[str, int] = {}
        self._jobs_by_state: dict[str, int] = {}
        self._next_count_s = 0.0
        self._last_tick_s = time.monotonic()
        self._next_watchdog_s = 0.0
        self.workers, self.threads = pool_shape(available_cpus(), cfg.workers.count, cfg.workers.intra_op_threads)

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
        models = prepare_model_set(self.cfg, waiting=self._waiting_for_models)
        self.joblog = JobLog.for_config(self.cfg)
        self._recover()
        os.environ.update(decoder_env(self.cfg.intake))  # inherited by the spawned workers
        self._pool = WorkerPool(self.cfg, workers=self.workers, intra_op_threads=self.threads,
                                model_set=models.model_set, verified=models.verified)  # fmt: skip
        # READY means the models load in a worker: fail here, not on the first file.
        self._pool.wait_ready(timeout_s=max(60.0, self.cfg.workers.job_timeout_s))
        for inbox in self.cfg.inboxes:
            self._trackers[inbox.name] = StabilityTracker(inbox.settle_s, time.monotonic)
        self._watcher = InboxWatcher(self.cfg.inboxes, self._on_event)
        self._watcher.start()
        self._rescan()
        if self.cfg.http.enabled:
            self._http = HealthServer(self.cfg.http.listen, self.health_snapshot).start()
        log.info(
            "daemon_started", version=__version__, workers=self.workers, threads=self.threads,
            recognizer=models.precision,
            inboxes=[i.name for i in self.cfg.inboxes], watch_modes=getattr(self._watcher, "modes", None),
        )  # fmt: skip
        self.notifier.ready(self._status_text())

    def _waiting_for_models(self) -> None:
        """Called every few seconds while the INT8 recognizer is built at first start: keep systemd informed."""
        self.notifier.watchdog()
        self.notifier.status("building the INT8 recognizer (first start with these models, one to two minutes)")

    def _recover(self) -> None:
        """Requeue interrupted jobs and finish the file moves a crash left half done."""
        assert self.joblog is not None
        # No worker runs yet: temp files of any job that was handed to a pool are leftovers of a crash
        # (including jobs a worker took before the main loop could mark them running).
        for row in self.joblog.unfinished_with_stem():
            self._remove_leftovers(row)
        for row in self.joblog.recover_interrupted():
            log.warning("job_interrupted", job_id=row.id, rel_path=row.rel_path, attempts=row.attempts)
            if row.attempts >= self.cfg.max_attempts:
                self._quarantine(row, Reason.INTERRUPTED, "the daemon stopped while this file was processed, "
                                 f"{row.attempts} times; it may crash the reader")  # fmt: skip
        for inbox in self.cfg.inboxes:
            for job_id, work_path in work_dir_entries(inbox.path):
                try:
                    self._recover_claim(inbox, job_id, work_path)
                except JobLogError:
                    raise  # no job log, no start: systemd retries
                except Exception:  # noqa: BLE001 - one left-over file must not keep the service from starting
                    log.exception("job_recovery_failed", job_id=job_id, inbox=inbox.name, work_path=str(work_path),
                                  kept="in the work folder; the next start retries it")  # fmt: skip

    def _recover_claim(self, inbox: InboxConfig, job_id: str, work_path: Path) -> None:
        """Finish what a crash left of one claimed file: give it its row, or its final move."""
        assert self.joblog is not None
        row = self.joblog.get(job_id)
        if row is None:
            # Crashed between the claim and the row: the claim mirrored the sub-folder, so the row
            # gets the path the file had in the inbox (as text, should an older claim have kept bytes).
            work_path = text_named_claim(inbox.path, job_id, work_path)
            rel_path = claimed_rel_path(inbox.path, job_id, work_path)
            self.joblog.add_queued(inbox.name, rel_path, work_path, work_path.lstat().st_size,
                                   job_id=job_id)  # fmt: skip
            log.warning("job_recovered", job_id=job_id, work_path=str(work_path))
        elif row.state in (JobState.DONE, JobState.DUPLICATE):
            self._dispose_original(row, inbox, work_path)
        elif row.state == JobState.QUARANTINED:
            self._move_to_quarantine(row, inbox, work_path)
        # FAILED rows keep their file in work on purpose: `ocrd requeue` retries them.

    def _remove_leftovers(self, row: JobRow, *, partial_outputs: bool = False) -> None:
        """Delete the hidden `.<output>.<hex>.tmp` files a worker killed mid-write left beside `row`'s outputs.

        With `partial_outputs`, also the row's own text and visualization files when its JSON (written
        last, so the mark of a complete set) is missing: used when the row is quarantined, since no retry
        will rewrite them. Only while no worker is writing this row (at start-up, at stop once the pool is
        stopped, or once its job has ended), and only names of this row's own outputs.
        """
        inbox = self._inboxes.get(row.inbox)
        if inbox is None or row.stem is None:
            return
        out_dir = self._out_dir(inbox, row.rel_path)
        outputs = r"(\.json|\.txt|(\.p\d{3})?\.vis\.(jpg|png))"  # outputs.output_paths' names after the stem
        stem = re.escape(row.stem)
        patterns = [re.compile(rf"\.{stem}{outputs}\.[0-9a-f]{{8}}\.tmp")]  # outputs._create_temp's pattern
        if partial_outputs and not (out_dir / f"{row.stem}.json").exists():
            patterns.append(re.compile(rf"{stem}{outputs}"))
        try:
            names = [entry.name for entry in os.scandir(out_dir) if any(p.fullmatch(entry.name) for p in patterns)]
        except FileNotFoundError:
            return
        for name in names:
            try:
                (out_dir / name).unlink(missing_ok=True)
            except OSError as exc:  # a leftover file is untidy, not a reason to stop
                log.warning("stale_output_kept", job_id=row.id, path=str(out_dir / name), error=str(exc))
            else:
                log.warning("stale_output_removed", job_id=row.id, path=str(out_dir / name))

    # ------------------------------------------------------------------ events and admission

    def _on_event(self, inbox_name: str, path: Path) -> None:
        # Runs on a watchdog thread: enqueue only, never raise.
        self._events.put((inbox_name, path))

    def _rescan(self) -> None:
        recovered = False
        for inbox in self.cfg.inboxes:
            tracker = self._trackers[inbox.name]
            try:
                for path, st in scan_inbox(inbox):
                    tracker.observe(path, st.st_size, st.st_mtime_ns)
            except OSError as exc:
                # An unmounted share or a removed folder: keep running, try again next rescan.
                # One error per outage: the rescan may come every second.
                if inbox.name not in self._scan_failing:
                    log.error("inbox_scan_failed", inbox=inbox.name, path=str(inbox.path), error=str(exc))
                    self._scan_failing.add(inbox.name)
            else:
                if inbox.name in self._scan_failing:
                    self._scan_failing.discard(inbox.name)
                    log.info("inbox_scan_recovered", inbox=inbox.name, path=str(inbox.path))
                    recovered = True
        if recovered and not self._scan_failing:
            self._restart_watcher()
        self._next_rescan_s = time.monotonic() + self.cfg.rescan_interval_s

    def _restart_watcher(self) -> None:
        """After an inbox folder came back, watch it again (a removed folder's observer has stopped)."""
        if self._watcher is None or self._watcher.is_alive():
            return
        self._watcher.stop()
        watcher = InboxWatcher(self.cfg.inboxes, self._on_event)
        try:
            watcher.start()
        except (UnavailableError, OSError) as exc:
            log.error("inbox_watch_restart_failed", error=str(exc))  # rescans still find new files
            return
        self._watcher = watcher
        log.info("inbox_watch_restarted", watch_modes=watcher.modes)

    def _drain_events(self, block_s: float) -> None:
        deadline = time.monotonic() + block_s
        while True:
            timeout = deadline - time.monotonic()
            try:
                inbox_name, path = self._events.get(timeout=max(0.0, timeout)) if timeout > 0 else self._events.get_nowait()
            except queue.Empty:
                return
            tracker = self._trackers.get(inbox_name)
            if tracker is not None:
                tracker.touch(path)  # the next refresh stats it once it has been quiet for settle_s
            block_s = 0  # got one: take whatever else is queued without waiting

    def _admit_ready(self) -> None:
        assert self.joblog is not None
        if not self._record_unrecorded():
            return  # the job log is still locked: claim nothing more until those files have rows
        for inbox in self.cfg.inboxes:
            tracker = self._trackers[inbox.name]
            tracker.refresh()
            ready = tracker.ready()
            for index, path in enumerate(ready):
                if not self._admit(inbox, path):
                    for later in ready[index + 1 :]:
                        tracker.touch(later)  # not claimed: tracked again, admitted once the log is free
                    return

    def _record_unrecorded(self) -> bool:
        """Write the rows of files claimed while the job log was locked; True when none is left."""
        assert self.joblog is not None
        while self._unrecorded:
            inbox, rel_path, work_path, size, sha256, job_id = self._unrecorded[0]
            try:
                row = self.joblog.add_queued(inbox.name, rel_path, work_path, size, sha256, job_id=job_id)
            except JobLogBusy as exc:
                if not self._busy_reported:
                    log.error("job_log_busy", job_id=job_id, rel_path=rel_path, error=str(exc),
                              waiting=len(self._unrecorded))  # fmt: skip
                    self._busy_reported = True
                return False
            except JobLogError:
                raise  # the job log itself fails (disk full, I/O): the loop backs off and tries this file again
            except Exception:  # noqa: BLE001 - one file the log cannot take must not hold up every later one
                log.exception("job_record_failed", job_id=job_id, inbox=inbox.name, rel_path=rel_path,
                              work_path=str(work_path), kept="in the work folder; the next start retries it")  # fmt: skip
                self._unrecorded.pop(0)
                continue
            if self._busy_reported:
                log.info("job_log_free", recorded=len(self._unrecorded))
                self._busy_reported = False
            self._unrecorded.pop(0)
            self.stats.admitted += 1
            log.info("job_queued", job_id=row.id, inbox=inbox.name, rel_path=rel_path, size_bytes=size)
        return True

    def _admit(self, inbox: InboxConfig, path: Path) -> bool:
        """Claim `path` and write its row; False when the job log is locked (the claim waits in memory)."""
        assert self.joblog is not None
        rel_path = path.relative_to(inbox.path).as_posix()
        job_id = new_job_id()
        try:
            work_path = claim(inbox.path, path, job_id)
        except FileNotFoundError:
            return True  # deleted before it settled: nothing to do
        except (ValueError, OSError) as exc:
            log.warning("claim_refused", inbox=inbox.name, rel_path=rel_path, error=str(exc))
            return True
        if (claimed := claimed_rel_path(inbox.path, job_id, work_path)) != rel_path:
            log.warning("inbox_name_not_utf8", inbox=inbox.name, job_id=job_id, name=escaped_name(rel_path),
                        rel_path=claimed, note="bytes that are not UTF-8 are U+FFFD in the job log and outputs")  # fmt: skip
            rel_path = claimed
        try:
            size = work_path.stat().st_size
            sha256: str | None = file_sha256(work_path)
        except OSError as exc:
            # Claimed but unreadable (mode 000, a share's ACL): the row must exist all the same, or the
            # file sits in work until the next start; the worker's intake gives it a reason code.
            log.warning("job_hash_failed", inbox=inbox.name, rel_path=rel_path, error=str(exc))
            size, sha256 = work_path.lstat().st_size, None
        # The file is claimed: from here it must get its row, or it would sit in work until the next start.
        self._unrecorded.append((inbox, rel_path, work_path, size, sha256, job_id))
        return self._record_unrecorded()

    # ------------------------------------------------------------------ dispatch and completion

    def _out_dir(self, inbox: InboxConfig, rel_path: str) -> Path:
        return self.cfg.outbox / inbox.name / Path(rel_path).parent

    def _submit_queued(self) -> None:
        assert self.joblog is not None and self._pool is not None
        capacity = 2 * self.workers - len(self._in_flight)
        if capacity <= 0 or self.stopping:
            return
        now = datetime.now(UTC)
        for row in self.joblog.next_queued(capacity + len(self._in_flight), now):
            if len(self._in_flight) >= 2 * self.workers:
                break
            if row.id in self._in_flight:
                continue
            inbox = self._inboxes.get(row.inbox)
            if inbox is None or not Path(row.work_path).exists():
                self._quarantine_missing(row)
                continue
            if self.cfg.duplicates == "skip" and row.sha256:
                if any(f.row.sha256 == row.sha256 for f in self._in_flight.values()):
                    continue  # the same content is being read right now: decide when it is done
                earlier = self.joblog.find_done_by_sha256(row.sha256)
                if earlier is not None and earlier.id != row.id:
                    row = self.joblog.mark_duplicate(row.id, earlier.id)
                    self.stats.duplicates += 1
                    log.info("job_duplicate", job_id=row.id, duplicate_of=earlier.id, rel_path=row.rel_path)
                    self._dispose_original(row, inbox, Path(row.work_path))
                    continue
            out_dir = self._out_dir(inbox, row.rel_path)
            stem = row.stem
            if stem is None:
                reserved = {f.stem for f in self._in_flight.values() if self._out_dir(f.inbox, f.row.rel_path) == out_dir}
                stem = choose_stem(out_dir, Path(row.rel_path).stem, 1, self.cfg.outputs,
                                   is_ours=lambda p, job_id=row.id: _written_by(p, job_id), reserved=reserved)  # fmt: skip
                # Recorded before any worker can write under it: a retry after a crash reuses it.
                row = self.joblog.assign_stem(row.id, stem)
            job = Job(job_id=row.id, path=Path(row.work_path), rel_path=row.rel_path, out_dir=out_dir,
                      stem=stem, inbox=inbox.name)  # fmt: skip
            self._in_flight[row.id] = _InFlight(row, self._pool.submit(job), inbox, stem, time.monotonic())

    def _note_started(self) -> None:
        """queued → running (one attempt charged) for each job a worker has taken since the last turn."""
        assert self.joblog is not None
        for flight in self._in_flight.values():
            if not flight.started and (flight.future.running() or flight.future.done()):
                try:
                    self._mark_started(flight)
                except JobLogBusy:
                    return  # still `queued` in the log; marked on a later turn or when it finishes

    def _mark_started(self, flight: _InFlight) -> None:
        assert self.joblog is not None
        flight.row = self.joblog.start(flight.row.id, flight.stem)
        flight.started = True

    @staticmethod
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

    def _collect_finished(self) -> None:
        for job_id, flight in list(self._in_flight.items()):
            if not flight.future.done():
                continue
            del self._in_flight[job_id]
            self.stats.last_progress_s = time.monotonic()
            try:
                if self._never_taken(flight):
                    log.info("job_redispatched", job_id=job_id, rel_path=flight.row.rel_path)
                    continue  # its row is still `queued`: the next _submit_queued hands it out again
                if not flight.started:
                    self._mark_started(flight)  # it finished before a turn saw it running
                try:
                    outcome = flight.future.result()
                except Exception as exc:  # noqa: BLE001 - every failure is classified, none is fatal
                    self._on_failure(flight, classify_failure(exc, self.cfg.workers.job_timeout_s))
                else:
                    self._on_success(flight, outcome)
            except JobLogBusy:
                # The handlers' first act is the row's transition, so nothing happened yet: keep the
                # finished job in flight and handle it again next turn (else its row stays `running`).
                self._in_flight[job_id] = flight
                raise

    def _on_success(self, flight: _InFlight, outcome: Outcome) -> None:
        assert self.joblog is not None and self._pool is not None
        fields = asdict(outcome) | {"ocrd_version": __version__, "model_set": self.cfg.model_set}
        row = self.joblog.finish_done(flight.row.id, fields)
        self.stats.done += 1
        self._durations.observe(time.monotonic() - flight.submitted_s)
        log.info("job_done", job_id=row.id, rel_path=row.rel_path, pages=outcome.pages, lines=outcome.lines,
                 total_ms=outcome.total_ms)  # fmt: skip
        self._dispose_original(row, flight.inbox, Path(row.work_path))
        if self._pool.note_worker_memory(outcome.worker_rss_mb):
            log.warning("workers_recycled", job_id=row.id, worker_rss_mb=round(outcome.worker_rss_mb),
                        max_rss_mb=self.cfg.workers.max_rss_mb)  # fmt: skip

    def _on_failure(self, flight: _InFlight, failure: JobFailure) -> None:
        assert self.joblog is not None
        row = self.joblog.get(flight.row.id) or flight.row
        retryable = failure.transient or failure.reason in (Reason.TIMEOUT, Reason.WORKER_CRASHED)
        if retryable and row.attempts < self.cfg.max_attempts:
            delay_s = min(_RETRY_MAX_S, _RETRY_BASE_S * 2 ** (row.attempts - 1))
            self.joblog.finish_failed(row.id, failure.reason, failure.message,
                                      retry_at=datetime.now(UTC) + timedelta(seconds=delay_s))  # fmt: skip
            self.stats.retried += 1
            log.warning("job_retry_scheduled", job_id=row.id, reason=str(failure.reason), error=failure.message,
                        attempts=row.attempts, delay_s=delay_s)  # fmt: skip
            return
        if failure.transient:
            # The input is fine but the outbox is not: keep the file in work for `ocrd requeue`.
            self.joblog.finish_failed(row.id, failure.reason, failure.message, retry_at=None)
            log.error("job_failed", job_id=row.id, reason=str(failure.reason), error=failure.message)
            return
        self._quarantine(row, failure.reason, failure.message)

    # ------------------------------------------------------------------ file dispositions

    def _dispose_original(self, row: JobRow, inbox: InboxConfig, work_path: Path) -> None:
        """After the row says done (or duplicate): archive, delete or keep the original."""
        if not work_path.exists():
            return
        if self.cfg.on_success == "delete":
            remove_claimed(work_path)
        elif self.cfg.on_success == "keep":
            release(work_path, work_root(inbox.path).parent / _DONE_DIR / row.rel_path)
        else:
            release(work_path, self.cfg.archive / inbox.name / row.rel_path)

    def _quarantine(self, row: JobRow, reason: Reason, message: str) -> None:
        assert self.joblog is not None
        row = self.joblog.quarantine(row.id, reason, message)
        self.stats.quarantined += 1
        counts = dict(self._quarantines_by_reason)  # replaced, never mutated: the HTTP thread reads it
        counts[str(reason)] = counts.get(str(reason), 0) + 1
        self._quarantines_by_reason = counts
        log.warning("job_quarantined", job_id=row.id, rel_path=row.rel_path, reason=str(reason), error=message)
        self._remove_leftovers(row, partial_outputs=True)  # its job has ended: no worker writes these
        inbox = self._inboxes.get(row.inbox)
        if inbox is not None:
            self._move_to_quarantine(row, inbox, Path(row.work_path))

    def _move_to_quarantine(self, row: JobRow, inbox: InboxConfig, work_path: Path) -> None:
        if not work_path.exists():
            return
        placed = release(work_path, self.cfg.quarantine / inbox.name / row.rel_path)
        reason_doc = {
            "job_id": row.id, "inbox": row.inbox, "rel_path": row.rel_path, "reason": row.reason,
            "message": row.error, "attempts": row.attempts, "time": row.finished_at, "sha256": row.sha256,
        }  # fmt: skip
        atomic_write_text(placed.with_name(placed.name + ".reason.json"), json.dumps(reason_doc, indent=1) + "\n")

    def _quarantine_missing(self, row: JobRow) -> None:
        assert self.joblog is not None
        self.joblog.quarantine(row.id, Reason.NOT_FOUND, f"the claimed file {row.work_path} is gone")
        log.error("job_file_missing", job_id=row.id, work_path=row.work_path)

    # ------------------------------------------------------------------ loop

    def _status_text(self) -> str:
        return (f"{len(self._in_flight)} in flight, {self.stats.done} done, {self.stats.quarantined} quarantined, "
                f"{self.workers} workers")  # fmt: skip

    def health_snapshot(self) -> HealthSnapshot:
        """What /healthz and /metrics show; runs on the HTTP thread, so it reads plain attributes only."""
        counts = self._jobs_by_state
        return HealthSnapshot(
            loop_last_tick_age_s=time.monotonic() - self._last_tick_s,
            workers_alive=self._pool is not None and self._pool.alive,
            workers=self.workers,
            in_flight=len(self._in_flight),
            queue_depth=counts.get("queued", 0),
            jobs_by_state=counts,
            quarantines_by_reason=self._quarantines_by_reason,
            worker_restarts=self._pool.recycled if self._pool is not None else 0,
            durations=self._durations.snapshot(),
            stopping=self.stopping,
        )

    def _refresh_counts(self) -> None:
        if self.joblog is None or time.monotonic() < self._next_count_s:
            return
        self._jobs_by_state = dict(self.joblog.status()["counts"])
        self._next_count_s = time.monotonic() + _COUNTS_EVERY_S

    def step(self, block_s: float = _TICK_S) -> None:
        """One turn of the main loop: events, rescans, admission, dispatch, completion, heartbeat."""
        self._drain_events(block_s)
        if time.monotonic() >= self._next_rescan_s:
            self._rescan()
        if not self.stopping:
            self._admit_ready()
        self._collect_finished()
        self._submit_queued()
        self._note_started()
        self._refresh_counts()
        now = time.monotonic()
        if not self._in_flight:
            self.stats.last_progress_s = now  # idle is healthy
        self._last_tick_s = now
        # WATCHDOG=1 only while jobs complete: a pool that takes jobs and never
        # returns them (past any job timeout) lets systemd restart the service.
        progressing = now - self.stats.last_progress_s < self.cfg.workers.job_timeout_s + _PROGRESS_SLACK_S
        if progressing and now >= self._next_watchdog_s:
            self.notifier.watchdog()
            self._next_watchdog_s = now + _WATCHDOG_EVERY_S

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
                time.sleep(min(_RETRY_MAX_S, 0.5 * 2**failures_in_row))
            if time.monotonic() >= next_status_s:
                self.notifier.status(self._status_text())
                next_status_s = time.monotonic() + _STATUS_EVERY_S

    def request_stop(self) -> None:
        self.stopping = True

    def shutdown(self, grace_s: float) -> None:
        """Stop admitting; let in-flight jobs finish within grace_s; the rest are recovered on the next start."""
        self.notifier.stopping()
        log.info("daemon_stopping", in_flight=len(self._in_flight), grace_s=grace_s)
        deadline = time.monotonic() + grace_s
        while self._in_flight and time.monotonic() < deadline:
            self._drain_events(min(_TICK_S, max(0.0, deadline - time.monotonic())))
            self._collect_finished()
        if self._watcher is not None:
            self._watcher.stop()
        if self._http is not None:
            self._http.stop()
        if self._pool is not None:
            if self._in_flight:
                self._pool.stop()
            else:
                self._pool.close()
        if self.joblog is not None:
            if self._in_flight:
                for row in self.joblog.unfinished_with_stem():  # the pool is stopped: no worker writes any more
                    self._remove_leftovers(row)
                requeued = self.joblog.recover_interrupted()
                log.warning("jobs_requeued_at_stop", count=len(requeued))
            self.joblog.close()
        log.info("daemon_stopped", done=self.stats.done, quarantined=self.stats.quarantined)


def _written_by(json_path: Path, job_id: str) -> bool:
    try:
        with open(json_path, encoding="utf-8") as handle:
            return json.load(handle).get("job_id") == job_id
    except (OSError, ValueError, AttributeError):
        return False


def run_daemon(cfg: Config, *, grace_s: float | None = None) -> int:
    """`ocrd run`: start, loop until SIGTERM/SIGINT, shut down; a second signal exits at once."""
    daemon = Daemon(cfg)
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
