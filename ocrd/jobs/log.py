"""JobLog: the job state transitions on one jobs.db and the queries behind `ocrd jobs` / `ocrd status`.

It never touches job files or outputs.
One writer (the daemon's main process) opens it with `JobLog(path)`; anyone else reads through
`JobLog.open_readonly(path)` or the sqlite3 CLI, and WAL keeps readers from blocking the writer.
Every public method is one transaction. Rows, states and errors are in `ocrd.jobs.rows`, the table in
`ocrd.jobs.schema`, the readers' SQL in `ocrd.jobs.queries`, connection and transactions in `ocrd.jobs.connection`.

State machine (DESIGN.md section 3):

    queued ──start──▶ running ──finish_done──▶ done
      ▲                 │ finish_failed: retry_at given and attempts < max_attempts ─▶ queued (not_before)
      │                 │ finish_failed otherwise ─▶ failed
      │                 │ recover_interrupted (at start-up) ─▶ queued
    queued/running ──quarantine──▶ quarantined      queued/running ──mark_duplicate──▶ duplicate
    failed/quarantined ──requeue──▶ queued (attempts reset)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocrd.config.schema import Config
from ocrd.errors import Reason
from ocrd.jobs.connection import JobDatabase
from ocrd.jobs.ids import new_job_id
from ocrd.jobs.queries import (
    COUNT_IN_STATE_SQL,
    DONE_SINCE_SQL,
    FIND_DONE_BY_SHA256_SQL,
    JOB_BY_ID_SQL,
    JOBS_BY_PATH_SQL,
    NEXT_QUEUED_SQL,
    OLDEST_QUEUED_SQL,
    STATUS_COUNTS_SQL,
    UNFINISHED_WITH_STEM_SQL,
    list_jobs_query,
)
from ocrd.jobs.rows import (
    ACTIVE_STATES,
    REQUEUEABLE_STATES,
    InvalidTransition,
    JobLogError,
    JobNotFound,
    JobRow,
    JobState,
    decode_row,
    done_columns,
    format_utc,
    parse_utc,
)

DB_FILE_NAME = "jobs.db"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _require_same_stem(row: JobRow, stem: str, action: str) -> None:
    """A job keeps the output stem it was first given, so a retry rewrites its own outputs."""
    if row.stem is not None and row.stem != stem:
        raise InvalidTransition(
            row.id, action, row.state,
            f"job {row.id}: already uses output stem {row.stem!r}; a retry must reuse it, got {stem!r}",
        )  # fmt: skip


class JobLog(JobDatabase):
    """The job table of one jobs.db: the writer's view (`JobLog(path)`) or a reader's (`open_readonly`)."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] = _utc_now,
        max_attempts: int = 3,
        _readonly: bool = False,
    ):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self._clock = clock
        super().__init__(path, readonly=_readonly)

    @classmethod
    def open_readonly(cls, path: Path, *, clock: Callable[[], datetime] = _utc_now) -> JobLog:
        """A reader that can never write or block the daemon (`file:...?mode=ro`, WAL)."""
        return cls(path, clock=clock, _readonly=True)

    @classmethod
    def for_config(
        cls, cfg: Config, *, clock: Callable[[], datetime] = _utc_now, readonly: bool = False
    ) -> JobLog:
        """The job log at `state_dir/jobs.db`, with the config's max_attempts."""
        path = cfg.state_dir / DB_FILE_NAME
        if readonly:
            return cls.open_readonly(path, clock=clock)
        return cls(path, clock=clock, max_attempts=cfg.max_attempts)

    # ----------------------------------------------------------------- rows

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[JobRow]:
        return [decode_row(r) for r in self._db.query(sql, list(params))]

    def _get_or_raise(self, job_id: str) -> JobRow:
        rows = self._fetch(JOB_BY_ID_SQL, [job_id])
        if not rows:
            raise JobNotFound(job_id)
        return rows[0]

    def _transition(
        self,
        job_id: str,
        action: str,
        allowed: frozenset[JobState],
        changes: Callable[[JobRow], dict[str, Any]],
    ) -> JobRow:
        """Check the row's state, apply `changes(row)`; in the caller's transaction."""
        row = self._get_or_raise(job_id)
        if row.state not in allowed:
            ok = ", ".join(sorted(allowed))
            message = f"job {job_id}: cannot {action} a job in state '{row.state}' (only from {ok})"
            raise InvalidTransition(job_id, action, row.state, message)
        values = changes(row)
        assignments = ", ".join(f"{name} = ?" for name in values)
        cursor = self._db.execute(
            f"UPDATE jobs SET {assignments} WHERE id = ? AND state = ?",
            [*values.values(), job_id, str(row.state)],
        )
        if cursor.rowcount != 1:  # pragma: no cover - the write lock makes this impossible
            raise JobLogError(f"job {job_id}: changed underneath {action}")
        return self._get_or_raise(job_id)

    def _now_text(self) -> str:
        return format_utc(self._clock())

    # ----------------------------------------------------------------- transitions

    def add_queued(
        self,
        inbox: str,
        rel_path: str,
        work_path: Path | str,
        size_bytes: int,
        sha256: str | None = None,
        *,
        job_id: str | None = None,
        submitted_by: str | None = None,
    ) -> JobRow:
        """A new `queued` row. Pass `job_id` when the claim already used it (`.ocrd/work/<job_id>/`);
        `submitted_by` names the API token of an upload."""
        now = self._clock()
        job_id = job_id or new_job_id(now.timestamp())
        with self._write():
            try:
                self._db.execute(
                    "INSERT INTO jobs (id, inbox, rel_path, sha256, size_bytes, state, attempts,"
                    " created_at, work_path, submitted_by) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)",
                    [job_id, inbox, rel_path, sha256, int(size_bytes), format_utc(now), str(work_path), submitted_by],
                )
            except sqlite3.IntegrityError as exc:
                if self._fetch(JOB_BY_ID_SQL, [job_id]):
                    raise InvalidTransition(job_id, "add", None, f"job {job_id} already exists") from None
                raise JobLogError(f"job {job_id}: refused by the schema: {exc}") from None
            return self._get_or_raise(job_id)

    def assign_stem(self, job_id: str, stem: str) -> JobRow:
        """queued → queued with its output stem fixed: called when the job is handed to the pool.

        Before a worker can write anything under that name, so that after a crash the retry (whether or
        not the job had been marked `running`) rewrites the same outputs instead of leaving a second set.
        """

        def changes(row: JobRow) -> dict[str, Any]:
            _require_same_stem(row, stem, "assign_stem")
            return {"stem": stem}

        with self._write():
            return self._transition(job_id, "assign_stem", frozenset({JobState.QUEUED}), changes)

    def start(self, job_id: str, stem: str, worker_pid: int | None = None) -> JobRow:
        """queued → running: attempts + 1, started_at, wait_ms = started_at - created_at.

        A job that already has a stem (an earlier attempt) must be started with the same one, so a retry
        rewrites its own outputs instead of leaving a second set beside them.
        """
        now = self._clock()

        def changes(row: JobRow) -> dict[str, Any]:
            _require_same_stem(row, stem, "start")
            wait_ms = round((now - parse_utc(row.created_at)).total_seconds() * 1000)
            return {
                "state": str(JobState.RUNNING),
                "attempts": row.attempts + 1,
                "started_at": format_utc(now),
                "wait_ms": max(0, wait_ms),
                "stem": stem,
                "worker_pid": worker_pid,
                "not_before": None,
            }

        with self._write():
            return self._transition(job_id, "start", frozenset({JobState.QUEUED}), changes)

    def finish_done(self, job_id: str, outcome_fields: Mapping[str, Any]) -> JobRow:
        """running → done, storing the outcome's figures (keys from DONE_FIELDS); reason and error are
        cleared unless the outcome names an output it left out."""
        values = {"reason": None, "error": None} | done_columns(job_id, outcome_fields)
        values.update(state=str(JobState.DONE), finished_at=self._now_text(), not_before=None)
        with self._write():
            return self._transition(job_id, "finish", frozenset({JobState.RUNNING}), lambda row: values)

    def finish_failed(
        self, job_id: str, reason: Reason | str, error: str, *, retry_at: datetime | None
    ) -> JobRow:
        """running → queued (not_before = retry_at) while attempts < max_attempts and retry_at is given,
        else running → failed."""
        code = str(Reason(reason))
        not_before = format_utc(retry_at) if retry_at is not None else None
        now_text = self._now_text()

        def changes(row: JobRow) -> dict[str, Any]:
            if not_before is not None and row.attempts < self.max_attempts:
                return {"state": str(JobState.QUEUED), "reason": code, "error": error, "not_before": not_before}
            return {"state": str(JobState.FAILED), "reason": code, "error": error, "finished_at": now_text,
                    "not_before": None}  # fmt: skip

        with self._write():
            return self._transition(job_id, "fail", frozenset({JobState.RUNNING}), changes)

    def release(self, job_id: str, reason: Reason | str, error: str) -> JobRow:
        """running → queued with the attempt taken back: the executor lost the job, not through the file
        (a cluster scheduler went away), so it is handed out again at once without counting against it."""
        code = str(Reason(reason))

        def changes(row: JobRow) -> dict[str, Any]:
            return {"state": str(JobState.QUEUED), "attempts": max(0, row.attempts - 1), "reason": code,
                    "error": error, "not_before": None}  # fmt: skip

        with self._write():
            return self._transition(job_id, "release", frozenset({JobState.RUNNING}), changes)

    def quarantine(self, job_id: str, reason: Reason | str, error: str) -> JobRow:
        """queued/running → quarantined (the caller has moved the file and written its reason file)."""
        code = str(Reason(reason))
        values = {
            "state": str(JobState.QUARANTINED), "reason": code, "error": error,
            "finished_at": self._now_text(), "not_before": None,
        }  # fmt: skip
        with self._write():
            return self._transition(job_id, "quarantine", ACTIVE_STATES, lambda row: values)

    def mark_duplicate(self, job_id: str, of_job_id: str) -> JobRow:
        """queued/running → duplicate of an earlier `done` job with the same content."""
        now_text = self._now_text()
        with self._write():
            if of_job_id == job_id:
                raise InvalidTransition(job_id, "mark_duplicate", None, f"job {job_id}: cannot duplicate itself")
            original = self._get_or_raise(of_job_id)
            if original.state != JobState.DONE:
                raise InvalidTransition(
                    job_id, "mark_duplicate", None,
                    f"job {job_id}: duplicate_of must be a done job; {of_job_id} is '{original.state}'",
                )  # fmt: skip

            def changes(row: JobRow) -> dict[str, Any]:
                if row.sha256 is not None and original.sha256 is not None and row.sha256 != original.sha256:
                    raise InvalidTransition(
                        job_id, "mark_duplicate", row.state,
                        f"job {job_id}: sha256 differs from {of_job_id}; not a duplicate",
                    )  # fmt: skip
                return {
                    "state": str(JobState.DUPLICATE), "duplicate_of": of_job_id,
                    "sha256": row.sha256 or original.sha256, "finished_at": now_text, "not_before": None,
                }  # fmt: skip

            return self._transition(job_id, "mark_duplicate", ACTIVE_STATES, changes)

    def recover_interrupted(self) -> list[JobRow]:
        """Every `running` row back to `queued` (reason `interrupted`), oldest first, at daemon start.

        Attempts are kept (the interrupted one counted); the caller quarantines rows at max_attempts.
        """
        with self._write():
            ids = [
                r["id"]
                for r in self._db.query("SELECT id FROM jobs WHERE state = 'running' ORDER BY created_at, rowid")
            ]
            self._db.execute(
                "UPDATE jobs SET state = 'queued', reason = ?, error = ?, not_before = NULL"
                " WHERE state = 'running'",
                [str(Reason.INTERRUPTED), "the daemon stopped while this job was running"],
            )
            return self._rows_by_id(ids)

    def unfinished_with_stem(self) -> list[JobRow]:
        """Queued or running rows that were handed to a worker pool at some point (they have a stem)."""
        return self._fetch(UNFINISHED_WITH_STEM_SQL)

    def requeue(self, job_id: str) -> JobRow:
        """failed/quarantined → queued with attempts reset (the caller moves the file back to work_path)."""
        with self._write():
            return self._transition(job_id, "requeue", REQUEUEABLE_STATES, lambda row: dict(_REQUEUE_VALUES))

    def requeue_state(self, state: JobState | str) -> int:
        """Requeue every row in `state` (failed or quarantined); returns how many."""
        state = JobState(state)
        if state not in REQUEUEABLE_STATES:
            raise InvalidTransition("*", "requeue", state, f"cannot requeue jobs in state {state!r}")
        assignments = ", ".join(f"{k} = ?" for k in _REQUEUE_VALUES)
        with self._write():
            cursor = self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE state = ?", [*_REQUEUE_VALUES.values(), str(state)]
            )
            return cursor.rowcount

    # ----------------------------------------------------------------- queries

    def _rows_by_id(self, ids: list[str]) -> list[JobRow]:
        """The rows, in the order of `ids`."""
        return [row for job_id in ids for row in self._fetch(JOB_BY_ID_SQL, [job_id])]

    def get(self, job_id: str) -> JobRow | None:
        rows = self._fetch(JOB_BY_ID_SQL, [job_id])
        return rows[0] if rows else None

    def find_done_by_sha256(self, sha256: str) -> JobRow | None:
        """The earliest `done` job with this content, or None."""
        rows = self._fetch(FIND_DONE_BY_SHA256_SQL, [sha256])
        return rows[0] if rows else None

    def find_by_path(self, inbox: str, rel_path: str) -> list[JobRow]:
        """Every row for this inbox path, oldest first."""
        return self._fetch(JOBS_BY_PATH_SQL, [inbox, rel_path])

    def next_queued(self, limit: int, now: datetime | None = None) -> list[JobRow]:
        """Up to `limit` queued rows whose not_before has passed, oldest first."""
        now_text = format_utc(now if now is not None else self._clock())
        return self._fetch(NEXT_QUEUED_SQL, [now_text, int(limit)])

    def list_jobs(
        self,
        state: JobState | str | None = None,
        inbox: str | None = None,
        since: datetime | str | None = None,
        limit: int | None = 50,
        *,
        before: str | None = None,
        submitted_by: str | None = None,
    ) -> list[JobRow]:
        """Rows newest first; `since` compares created_at; limit None means all; `before` (a job id)
        continues a listing after that job; `submitted_by` keeps one API token's uploads."""
        sql, params = list_jobs_query(state, inbox, since, limit, before=before, submitted_by=submitted_by)
        return self._fetch(sql, params)

    def count_in_state(self, state: JobState | str) -> int:
        """How many rows are in `state` (an index range, cheap at any table size)."""
        return int(self._db.execute(COUNT_IN_STATE_SQL, [str(JobState(state))]).fetchone()[0])

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        """Counts per state (every state present, zeros included), total, done in the last hour,
        and the oldest queued created_at; one consistent snapshot."""
        now = now if now is not None else self._clock()
        with self._read():
            found = {r["state"]: r["n"] for r in self._db.query(STATUS_COUNTS_SQL)}
            hour_ago = format_utc(now - timedelta(hours=1))
            done_last_hour = self._db.execute(DONE_SINCE_SQL, [hour_ago]).fetchone()[0]
            oldest_queued = self._db.execute(OLDEST_QUEUED_SQL).fetchone()[0]
        counts = {str(s): int(found.get(str(s), 0)) for s in JobState}
        return {
            "counts": counts,
            "total": sum(counts.values()),
            "done_last_hour": int(done_last_hour),
            "oldest_queued_created_at": oldest_queued,
            "now": format_utc(now),
        }

    def explain(self, sql: str, params: Sequence[Any] = ()) -> list[str]:
        """EXPLAIN QUERY PLAN details, one string per step (tests and benches)."""
        return [r[3] for r in self._db.conn.execute("EXPLAIN QUERY PLAN " + sql, list(params))]


_REQUEUE_VALUES: dict[str, Any] = {
    "state": str(JobState.QUEUED),
    "attempts": 0,
    "not_before": None,
    "finished_at": None,
    "reason": None,
    "error": None,
}

