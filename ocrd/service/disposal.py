"""What becomes of a claimed original once its row is final: archived, deleted or kept, or quarantined with a reason file."""

from __future__ import annotations

import json
from pathlib import Path

from ocrd.config.schema import Config, InboxConfig
from ocrd.errors import Reason
from ocrd.inbox.files import release, remove_claimed, work_root
from ocrd.jobs.log import JobLog
from ocrd.jobs.rows import JobRow
from ocrd.logs import get_logger
from ocrd.outputs.writers import atomic_write_text
from ocrd.service.outbox import remove_leftovers
from ocrd.service.stats import DaemonStats

log = get_logger("ocrd.daemon")

_DONE_DIR = "done"  # on_success: keep -> <inbox>/.ocrd/done/<rel>, out of the scan's way


def dispose_original(cfg: Config, row: JobRow, inbox: InboxConfig, work_path: Path) -> None:
    """After the row says done (or duplicate): archive, delete or keep the original."""
    if not work_path.exists():
        return
    if cfg.on_success == "delete":
        remove_claimed(work_path)
    elif cfg.on_success == "keep":
        release(work_path, work_root(inbox.path).parent / _DONE_DIR / row.rel_path)
    else:
        release(work_path, cfg.archive / inbox.name / row.rel_path)


def quarantine(joblog: JobLog, cfg: Config, stats: DaemonStats, row: JobRow, reason: Reason, message: str) -> None:
    """Mark the row quarantined, count it, drop its partial outputs, then move its file with a reason file."""
    row = joblog.quarantine(row.id, reason, message)
    stats.quarantined += 1
    counts = dict(stats.quarantines_by_reason)  # replaced, never mutated: the HTTP thread reads it
    counts[str(reason)] = counts.get(str(reason), 0) + 1
    stats.quarantines_by_reason = counts
    log.warning("job_quarantined", job_id=row.id, rel_path=row.rel_path, reason=str(reason), error=message)
    remove_leftovers(cfg, row, partial_outputs=True)  # its job has ended: no worker writes these
    inbox = next((inbox for inbox in cfg.inboxes if inbox.name == row.inbox), None)
    if inbox is not None:
        move_to_quarantine(cfg, row, inbox, Path(row.work_path))


def move_to_quarantine(cfg: Config, row: JobRow, inbox: InboxConfig, work_path: Path) -> None:
    """After the row says quarantined: move the file to `<quarantine>/<inbox>/<rel>` beside a `.reason.json`."""
    if not work_path.exists():
        return
    placed = release(work_path, cfg.quarantine / inbox.name / row.rel_path)
    reason_doc = {
        "job_id": row.id, "inbox": row.inbox, "rel_path": row.rel_path, "reason": row.reason,
        "message": row.error, "attempts": row.attempts, "time": row.finished_at, "sha256": row.sha256,
    }  # fmt: skip
    atomic_write_text(placed.with_name(placed.name + ".reason.json"), json.dumps(reason_doc, indent=1) + "\n")
