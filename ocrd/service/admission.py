"""Admission of new files: watcher events and rescans feed the stability trackers; a settled file is claimed and given its queued row."""

from __future__ import annotations

import queue
import time
from pathlib import Path

from ocrd.config.schema import Config, InboxConfig
from ocrd.engine.models import file_sha256
from ocrd.errors import UnavailableError
from ocrd.inbox.files import claim, claimed_rel_path, escaped_name, scan_inbox
from ocrd.inbox.stability import StabilityTracker
from ocrd.inbox.uploads import claim_upload
from ocrd.inbox.watch import InboxWatcher
from ocrd.jobs.ids import new_job_id
from ocrd.jobs.log import JobLog
from ocrd.jobs.rows import JobLogBusy, JobLogError
from ocrd.logs import get_logger
from ocrd.service.handoff import UploadRequest
from ocrd.service.stats import DaemonStats

log = get_logger("ocrd.daemon")


class Admission:
    """The inboxes' side of the main loop: `start()` the watchers, then `drain_events`, `rescan` and `admit_ready` each turn."""

    def __init__(self, cfg: Config, stats: DaemonStats):
        self.cfg = cfg
        self.stats = stats
        self._events: queue.SimpleQueue[tuple[str, Path]] = queue.SimpleQueue()
        self._trackers: dict[str, StabilityTracker] = {}
        # Claimed files whose row could not be written yet (job log locked): recorded before any new claim.
        # The last item names the API token of an upload (None for a dropped file).
        self._unrecorded: list[tuple[InboxConfig, str, Path, int, str | None, str, str | None]] = []
        self._busy_reported = False  # one error per locked-job-log episode, not one per turn
        self._scan_failing: set[str] = set()  # inboxes whose rescan fails (unmounted, removed): error once
        self.next_rescan_s = 0.0
        self._watcher: InboxWatcher | None = None

    def start(self) -> None:
        """Track each inbox, start watching them, and take in what is already there."""
        for inbox in self.cfg.inboxes:
            self._trackers[inbox.name] = StabilityTracker(inbox.settle_s, time.monotonic)
        self._watcher = InboxWatcher(self.cfg.inboxes, self._on_event)
        self._watcher.start()
        self.rescan()

    @property
    def watch_modes(self) -> object:
        return getattr(self._watcher, "modes", None)

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()

    def _on_event(self, inbox_name: str, path: Path) -> None:
        # Runs on a watchdog thread: enqueue only, never raise.
        self._events.put((inbox_name, path))

    def wake(self) -> None:
        """End the loop's wait for events now (an upload is waiting); safe from any thread."""
        self._events.put(("", Path()))  # no inbox has an empty name: drain_events skips it

    def rescan(self) -> None:
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
        self.next_rescan_s = time.monotonic() + self.cfg.rescan_interval_s

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

    def drain_events(self, block_s: float) -> None:
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

    def admit_ready(self, joblog: JobLog) -> None:
        if not self.record_unrecorded(joblog):
            return  # the job log is still locked: claim nothing more until those files have rows
        for inbox in self.cfg.inboxes:
            tracker = self._trackers[inbox.name]
            tracker.refresh()
            ready = tracker.ready()
            for index, path in enumerate(ready):
                if not self.admit(joblog, inbox, path):
                    for later in ready[index + 1 :]:
                        tracker.touch(later)  # not claimed: tracked again, admitted once the log is free
                    return

    def record_unrecorded(self, joblog: JobLog) -> bool:
        """Write the rows of files claimed while the job log was locked; True when none is left."""
        while self._unrecorded:
            inbox, rel_path, work_path, size, sha256, job_id, submitted_by = self._unrecorded[0]
            try:
                row = joblog.add_queued(inbox.name, rel_path, work_path, size, sha256, job_id=job_id,
                                        submitted_by=submitted_by)  # fmt: skip
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
            log.info("job_queued", job_id=row.id, inbox=inbox.name, rel_path=rel_path, size_bytes=size,
                     **({"submitted_by": submitted_by} if submitted_by else {}))  # fmt: skip
        return True

    def admit(self, joblog: JobLog, inbox: InboxConfig, path: Path) -> bool:
        """Claim `path` and write its row; False when the job log is locked (the claim waits in memory)."""
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
        self._unrecorded.append((inbox, rel_path, work_path, size, sha256, job_id, None))
        return self.record_unrecorded(joblog)

    def admit_upload(self, joblog: JobLog, inbox: InboxConfig, upload: UploadRequest) -> str:
        """Claim a complete upload like a settled file and write its row; returns the job id.

        Once claimed it gets its row (now, or after a locked job log frees, before any new claim), so
        the id can be answered at once. Size and sha256 were counted as the bytes arrived.
        """
        job_id = new_job_id()
        work_path = claim_upload(inbox.path, upload.staged_path, job_id, upload.name)
        self._unrecorded.append((inbox, upload.name, work_path, upload.size_bytes, upload.sha256, job_id,
                                 upload.submitted_by))  # fmt: skip
        self.record_unrecorded(joblog)
        return job_id
