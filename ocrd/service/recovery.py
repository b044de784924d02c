"""Start-up recovery: what a new start does with rows a crash left running and claims it left in `.ocrd/work/`."""

from __future__ import annotations

from pathlib import Path

from ocrd.config.schema import Config, InboxConfig
from ocrd.errors import Reason
from ocrd.inbox.files import claimed_rel_path, text_named_claim, work_dir_entries
from ocrd.inbox.uploads import clean_upload_area
from ocrd.jobs.log import JobLog
from ocrd.jobs.rows import JobLogError, JobState
from ocrd.logs import get_logger
from ocrd.service.disposal import dispose_original, move_to_quarantine, quarantine
from ocrd.service.outbox import remove_leftovers
from ocrd.service.stats import DaemonStats

log = get_logger("ocrd.daemon")


def recover(joblog: JobLog, cfg: Config, stats: DaemonStats) -> None:
    """Requeue interrupted jobs and finish the file moves a crash left half done."""
    # No worker runs yet: temp files of any job that was handed to a pool are leftovers of a crash
    # (including jobs a worker took before the main loop could mark them running).
    for row in joblog.unfinished_with_stem():
        remove_leftovers(cfg, row)
    for row in joblog.recover_interrupted():
        log.warning("job_interrupted", job_id=row.id, rel_path=row.rel_path, attempts=row.attempts)
        if row.attempts >= cfg.max_attempts:
            quarantine(joblog, cfg, stats, row, Reason.INTERRUPTED, "the daemon stopped while this file was processed, "
                       f"{row.attempts} times; it may crash the reader")  # fmt: skip
    for inbox in cfg.inboxes:
        # Uploads a crash cut short never became jobs: no HTTP request runs yet, so every staging file is one.
        if removed := clean_upload_area(inbox.path):
            log.warning("uploads_discarded", inbox=inbox.name, count=removed, note="interrupted mid-upload")
        for job_id, work_path in work_dir_entries(inbox.path):
            try:
                _recover_claim(joblog, cfg, inbox, job_id, work_path)
            except JobLogError:
                raise  # no job log, no start: systemd retries
            except Exception:  # noqa: BLE001 - one left-over file must not keep the service from starting
                log.exception("job_recovery_failed", job_id=job_id, inbox=inbox.name, work_path=str(work_path),
                              kept="in the work folder; the next start retries it")  # fmt: skip


def _recover_claim(joblog: JobLog, cfg: Config, inbox: InboxConfig, job_id: str, work_path: Path) -> None:
    """Finish what a crash left of one claimed file: give it its row, or its final move."""
    row = joblog.get(job_id)
    if row is None:
        # Crashed between the claim and the row: the claim mirrored the sub-folder, so the row
        # gets the path the file had in the inbox (as text, should an older claim have kept bytes).
        work_path = text_named_claim(inbox.path, job_id, work_path)
        rel_path = claimed_rel_path(inbox.path, job_id, work_path)
        joblog.add_queued(inbox.name, rel_path, work_path, work_path.lstat().st_size, job_id=job_id)
        log.warning("job_recovered", job_id=job_id, work_path=str(work_path))
    elif row.state in (JobState.DONE, JobState.DUPLICATE):
        dispose_original(cfg, row, inbox, work_path)
    elif row.state == JobState.QUARANTINED:
        move_to_quarantine(cfg, row, inbox, work_path)
    # FAILED rows keep their file in work on purpose: `ocrd requeue` retries them.
