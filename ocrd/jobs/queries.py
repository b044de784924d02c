"""The SQL behind the job log's reads: row lookups, the `ocrd jobs` listing, `ocrd status`, the next queued jobs.

Public so tests and benches can EXPLAIN them (JobLog.explain); the indexes they are written for are in
`ocrd.jobs.schema`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocrd.jobs.rows import COLUMNS, JobState, format_utc, parse_utc

SELECT_JOBS = "SELECT " + ", ".join(COLUMNS) + " FROM jobs"
JOB_BY_ID_SQL = SELECT_JOBS + " WHERE id = ?"
JOBS_BY_PATH_SQL = SELECT_JOBS + " WHERE inbox = ? AND rel_path = ? ORDER BY created_at, rowid"
UNFINISHED_WITH_STEM_SQL = (
    SELECT_JOBS + " WHERE state IN ('queued', 'running') AND stem IS NOT NULL ORDER BY created_at, rowid"
)


def _as_utc_text(moment: datetime | str) -> str:
    return format_utc(parse_utc(moment) if isinstance(moment, str) else moment)


def list_jobs_query(
    state: JobState | str | None = None,
    inbox: str | None = None,
    since: datetime | str | None = None,
    limit: int | None = 50,
    *,
    before: str | None = None,
    submitted_by: str | None = None,
) -> tuple[str, list[Any]]:
    """The SQL and parameters behind JobLog.list_jobs (public so tests and benches can EXPLAIN it)."""
    where: list[str] = []
    params: list[Any] = []
    if submitted_by is not None:
        where.append("submitted_by = ?")
        params.append(submitted_by)
    if before is not None:
        # Keyset paging: strictly older than the given job in the listing's own order; an unknown id
        # compares with NULL and so matches nothing.
        where.append("(created_at, rowid) < (SELECT created_at, rowid FROM jobs WHERE id = ?)")
        params.append(before)
    if state is not None:
        where.append("state = ?")
        params.append(str(JobState(state)))
    if inbox is not None:
        # Unary + keeps the planner off (inbox, rel_path): walking a created_at index newest-first and
        # stopping at `limit` beats collecting and sorting every row of a large inbox.
        where.append("+inbox = ?")
        params.append(inbox)
    if since is not None:
        where.append("created_at >= ?")
        params.append(_as_utc_text(since))
    sql = SELECT_JOBS
    if where:
        sql += " WHERE " + " AND ".join(where)
    # rowid breaks ties within one millisecond; it is the last column of every index, so no sort is needed.
    sql += " ORDER BY created_at DESC, rowid DESC"
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        sql += " LIMIT ?"
        params.append(int(limit))
    return sql, params


NEXT_QUEUED_SQL = (
    SELECT_JOBS + " WHERE state = 'queued' AND (not_before IS NULL OR not_before <= ?)"
    " ORDER BY created_at, rowid LIMIT ?"
)
# +state: without it the planner walks (state, created_at) for the ORDER BY, i.e. every done row
# (seconds at a million rows); the sha256 index finds the few matches and sorting them is free.
FIND_DONE_BY_SHA256_SQL = SELECT_JOBS + " WHERE sha256 = ? AND +state = 'done' ORDER BY created_at, rowid LIMIT 1"
STATUS_COUNTS_SQL = "SELECT state, count(*) AS n FROM jobs GROUP BY state"
COUNT_IN_STATE_SQL = "SELECT count(*) FROM jobs WHERE state = ?"
DONE_SINCE_SQL = "SELECT count(*) FROM jobs WHERE state = 'done' AND finished_at >= ?"
OLDEST_QUEUED_SQL = "SELECT min(created_at) FROM jobs WHERE state = 'queued'"
