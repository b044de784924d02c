"""`ocrd requeue`: put failed or quarantined jobs back in the queue, moving quarantined files back to work.

A second, short-lived writer of the job log beside the daemon: each change is
one transaction and SQLite's busy timeout serialises it with the daemon.
"""

from __future__ import annotations

import json
from pathlib import Path

from ocrd.config.schema import Config
from ocrd.inbox.watch import release
from ocrd.jobs.log import JobLog
from ocrd.jobs.rows import JobRow, JobState


def _find_quarantined_file(cfg: Config, row: JobRow) -> Path | None:
    """The quarantined file of `row`, found through the reason file that names its job id."""
    folder = cfg.quarantine / row.inbox / Path(row.rel_path).parent
    if not folder.is_dir():
        return None
    for reason_file in folder.glob("*.reason.json"):
        try:
            if json.loads(reason_file.read_text(encoding="utf-8")).get("job_id") == row.id:
                return reason_file.with_name(reason_file.name[: -len(".reason.json")])
        except (OSError, ValueError, AttributeError):
            continue
    return None


def requeue_jobs(cfg: Config, job_ids: list[str], state: str | None) -> tuple[int, list[str]]:
    """Requeue the given jobs (or every job in `state`); returns (how many, problems for people)."""
    problems: list[str] = []
    moved = 0
    with JobLog.for_config(cfg) as joblog:
        rows: list[JobRow] = []
        for job_id in job_ids:
            row = joblog.get(job_id)
            if row is None:
                problems.append(f"{job_id}: no such job")
            else:
                rows.append(row)
        if state is not None:
            rows += joblog.list_jobs(state=state, limit=None)
        # A job named by id and matched by --state (or named twice) is requeued once: a second
        # pass would find it queued already and fail after the first had moved its file.
        rows = list({row.id: row for row in rows}.values())
        for row in rows:
            problem = requeue_row(cfg, joblog, row)
            if problem is None:
                moved += 1
            else:
                problems.append(f"{row.id}: {problem}")
    return moved, problems


def requeue_row(cfg: Config, joblog: JobLog, row: JobRow) -> str | None:
    """Requeue one failed or quarantined job, its file back in work first; the problem in words, or None.

    Also what the daemon's main loop runs for `POST /api/v1/jobs/{id}/requeue` on its own job log.
    """
    if row.state not in (JobState.FAILED, JobState.QUARANTINED):
        return f"is {row.state}, only failed or quarantined jobs can be requeued"
    work_path = Path(row.work_path)
    if not work_path.exists():
        source = _find_quarantined_file(cfg, row)
        if source is None or not source.exists():
            return f"its file is neither in {work_path.parent} nor in quarantine"
        placed = release(source, work_path)
        if placed != work_path:
            return f"{work_path} was taken; the file is at {placed}"
        source.with_name(source.name + ".reason.json").unlink(missing_ok=True)
    joblog.requeue(row.id)
    return None
