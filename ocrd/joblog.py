"""The SQLite job log: schema and migrations, connection setup, job state transitions and the queries behind
`ocrd jobs` / `ocrd status`; the only importer of `sqlite_utils`. It never touches job files or outputs.

One writer (the daemon's main process) opens it with `JobLog(path)`; anyone else reads through
`JobLog.open_readonly(path)` or the sqlite3 CLI, and WAL keeps readers from blocking the writer.
Every public method is one transaction. Timestamps are ISO 8601 UTC text with milliseconds and a `Z`
(`2025-01-31T12:00:00.000Z`), so text order is time order and comparisons run in SQL.

State machine (DESIGN.md section 3):

    queued ──start──▶ running ──finish_done──▶ done
      ▲                 │ finish_failed: retry_at given and attempts < max_attempts ─▶ queued (not_before)
      │                 │ finish_failed otherwise ─▶ failed
      │                 │ recover_interrupted (at start-up) ─▶ queued
    queued/running ──quarantine──▶ quarantined      queued/running ──mark_duplicate──▶ duplicate
    failed/quarantined ──requeue──▶ queued (attempts reset)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrd.config import Config
from ocrd.errors import OcrdError, Reason, UnavailableError
from ocrd.jobids import new_job_id

if TYPE_CHECKING:
    import sqlite_utils

DB_FILE_NAME = "jobs.db"
WAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024
BUSY_TIMEOUT_MS = 5000


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"


TERMINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.QUARANTINED, JobState.DUPLICATE})
ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})
REQUEUEABLE_STATES = frozenset({JobState.FAILED, JobState.QUARANTINED})


class JobLogError(OcrdError):
    """The job log refused or could not carry out an operation."""


class InvalidTransition(JobLogError):
    """A state change that the job state machine does not allow (or an id that already exists)."""

    def __init__(self, job_id: str, action: str, state: str | None, message: str | None = None):
        self.job_id = job_id
        self.action = action
        self.state = state
        super().__init__(message or f"job {job_id}: cannot {action} a job in state '{state}'")

    def __reduce__(self):
        return (type(self), (self.job_id, self.action, self.state, str(self)))


class JobNotFound(JobLogError):
    """No row with this job id."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"no job with id {job_id!r}")

    def __reduce__(self):
        return (type(self), (self.job_id,))


class JobLogBusy(JobLogError):
    """The database stayed locked by another writer for longer than the busy timeout (transient)."""


class ReadOnlyJobLog(JobLogError):
    """A write was attempted through a read-only JobLog."""


# --------------------------------------------------------------------------- time


def format_utc(moment: datetime) -> str:
    """`2025-01-31T12:00:00.000Z`; naive datetimes are refused (their zone is a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timezone-aware datetime required, got naive {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """The inverse of format_utc (accepts any ISO 8601 text with an offset)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return moment.astimezone(UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc_text(moment: datetime | str) -> str:
    return format_utc(parse_utc(moment) if isinstance(moment, str) else moment)


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class JobRow:
    """One row of `jobs`, as stored; `outputs` decoded from its JSON list, timestamps kept as text."""

    id: str
    inbox: str
    rel_path: str
    sha256: str | None
    size_bytes: int
    state: JobState
    attempts: int
    reason: str | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    wait_ms: int | None
    decode_ms: float | None
    detect_ms: float | None
    classify_ms: float | None
    recognize_ms: float | None
    total_ms: float | None
    pages: int | None
    lines: int | None
    mean_confidence: float | None
    outputs: tuple[str, ...]
    worker_pid: int | None
    ocrd_version: str | None
    model_set: str | None
    work_path: str
    stem: str | None
    duplicate_of: str | None
    not_before: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (for `ocrd jobs --json`)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["state"] = str(self.state)
        out["outputs"] = list(self.outputs)
        return out


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(JobRow))
_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM jobs"


def _row(values: Mapping[str, Any]) -> JobRow:
    data = dict(values)
    data["state"] = JobState(data["state"])
    data["outputs"] = tuple(json.loads(data["outputs"])) if data["outputs"] else ()
    return JobRow(**data)


# Keys finish_done stores; `job_id` (checked against the row) and `format` (not a column) are accepted so
# that `dataclasses.asdict(outcome) | {"ocrd_version": ..., "model_set": ...}` can be passed as it is.
DONE_FIELDS = frozenset(
    {
        "sha256", "size_bytes", "decode_ms", "detect_ms", "classify_ms", "recognize_ms", "total_ms",
        "pages", "lines", "mean_confidence", "outputs", "worker_pid", "ocrd_version", "model_set",
    }
)  # fmt: skip
_DONE_IGNORED = frozenset({"job_id", "format", "worker_rss_mb"})  # in the Outcome, not in the table


# --------------------------------------------------------------------------- schema


def _migrate_v1(db: sqlite_utils.Database) -> None:
    states = ", ".join(f"'{s}'" for s in JobState)
    db.execute(
        f"""
        CREATE TABLE jobs (
            id              TEXT PRIMARY KEY NOT NULL,  -- sortable job id (ocrd.jobids)
            inbox           TEXT NOT NULL,
            rel_path        TEXT NOT NULL,
            sha256          TEXT,
            size_bytes      INTEGER NOT NULL,
            state           TEXT NOT NULL CHECK (state IN ({states})),
            attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            reason          TEXT,                       -- stable code, ocrd.errors.Reason
            error           TEXT,                       -- message for people
            created_at      TEXT NOT NULL,              -- ISO 8601 UTC, ms, Z
            started_at      TEXT,
            finished_at     TEXT,
            wait_ms         INTEGER,
            decode_ms       REAL,
            detect_ms       REAL,
            classify_ms     REAL,
            recognize_ms    REAL,
            total_ms        REAL,
            pages           INTEGER,
            lines           INTEGER,
            mean_confidence REAL,
            outputs         TEXT,                       -- JSON list of paths
            worker_pid      INTEGER,
            ocrd_version    TEXT,
            model_set       TEXT,
            work_path       TEXT NOT NULL,              -- the claimed file under <inbox>/.ocrd/work
            stem            TEXT,                       -- output stem, kept so a retry rewrites the same names
            duplicate_of    TEXT REFERENCES jobs (id) ON DELETE SET NULL,
            not_before      TEXT                        -- retry backoff: not started before this time
        )
        """
    )
    # (state, created_at): list by state, next_queued, oldest queued, counts per state (covering).
    db.execute("CREATE INDEX jobs_state_created_at ON jobs (state, created_at)")
    db.execute("CREATE INDEX jobs_sha256 ON jobs (sha256)")
    db.execute("CREATE INDEX jobs_inbox_rel_path ON jobs (inbox, rel_path)")
    # Newest-first listing without a state filter, and --since.
    db.execute("CREATE INDEX jobs_created_at ON jobs (created_at)")
    # "done in the last hour" without walking every done row.
    db.execute("CREATE INDEX jobs_state_finished_at ON jobs (state, finished_at)")
    # The foreign key's child lookup (ON DELETE SET NULL) would otherwise scan the table per deleted row.
    db.execute("CREATE INDEX jobs_duplicate_of ON jobs (duplicate_of) WHERE duplicate_of IS NOT NULL")


# Ordered: MIGRATIONS[n - 1] takes the schema from version n - 1 to n. Append, never edit a shipped one.
MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (_migrate_v1,)
SCHEMA_VERSION = len(MIGRATIONS)


# --------------------------------------------------------------------------- queries


def list_jobs_query(
    state: JobState | str | None = None,
    inbox: str | None = None,
    since: datetime | str | None = None,
    limit: int | None = 50,
) -> tuple[str, list[Any]]:
    """The SQL and parameters behind JobLog.list_jobs (public so tests and benches can EXPLAIN it)."""
    where: list[str] = []
    params: list[Any] = []
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
    sql = _SELECT
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


_NEXT_QUEUED_SQL = (
    _SELECT + " WHERE state = 'queued' AND (not_before IS NULL OR not_before <= ?)"
    " ORDER BY created_at, rowid LIMIT ?"
)
# +state: without it the planner walks (state, created_at) for the ORDER BY, i.e. every done row
# (seconds at a million rows); the sha256 index finds the few matches and sorting them is free.
FIND_DONE_BY_SHA256_SQL = _SELECT + " WHERE sha256 = ? AND +state = 'done' ORDER BY created_at, rowid LIMIT 1"
STATUS_COUNTS_SQL = "SELECT state, count(*) AS n FROM jobs GROUP BY state"
_DONE_SINCE_SQL = "SELECT count(*) FROM jobs WHERE state = 'done' AND finished_at >= ?"
_OLDEST_QUEUED_SQL = "SELECT min(created_at) FROM jobs WHERE state = 'queued'"


# --------------------------------------------------------------------------- the log


class _ReaderDatabase:
    """The two calls a reader makes, on plain sqlite3 (the shape of sqlite_utils.Database's)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, list(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        cursor = self.conn.execute(sql, list(params))
        names = [column[0] for column in cursor.description]
        for values in cursor:
            yield dict(zip(names, values))


def _require_same_stem(row: JobRow, stem: str, action: str) -> None:
    """A job keeps the output stem it was first given, so a retry rewrites its own outputs."""
    if row.stem is not None and row.stem != stem:
        raise InvalidTransition(
            row.id, action, row.state,
            f"job {row.id}: already uses output stem {row.stem!r}; a retry must reuse it, got {stem!r}",
        )  # fmt: skip


class JobLog:
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
        self.path = Path(path)
        self.readonly = _readonly
        self.max_attempts = max_attempts
        self._clock = clock
        conn = self._connect()
        try:
            # execute_plugins=False: no third-party sqlite-utils plugin gets to touch the daemon's connection.
            if _readonly:
                self._db = _ReaderDatabase(conn)
            else:
                import sqlite_utils  # writer only: it pulls in numpy, 0.1 s a reader like `ocrd jobs` need not pay

                self._db = sqlite_utils.Database(conn, execute_plugins=False)
            if _readonly:
                self._check_readable_schema()
            else:
                self._setup_writer()
                self._migrate()
        except BaseException:
            conn.close()
            raise

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

    # ----------------------------------------------------------------- connection

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.readonly:
                if not self.path.is_file():
                    raise UnavailableError(f"{self.path}: no job log (has the daemon ever run?)")
                uri = self.path.absolute().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            else:
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise UnavailableError(f"{self.path}: cannot open the job log: {exc}") from None
        # isolation_level=None: the sqlite3 module opens no implicit transactions; _write() issues
        # BEGIN IMMEDIATE itself, so the write lock is taken (or waited for) before anything is read.
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _setup_writer(self) -> None:
        try:
            mode = self._pragma("journal_mode = WAL")
        except sqlite3.Error as exc:
            raise UnavailableError(f"{self.path}: cannot open the job log: {exc}") from None
        if str(mode).lower() != "wal":
            # WAL is what lets `ocrd jobs` and sqlite3 read while the daemon writes; it needs a local disk.
            raise UnavailableError(
                f"{self.path}: the job log cannot use WAL mode (journal_mode={mode}); "
                "put state_dir on a local filesystem"
            )
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA foreign_keys = ON")
        # The WAL is checkpointed every ~1000 pages, but the file keeps its largest size ever (a reader
        # holding a snapshot during a burst can make that large); this truncates it back after a checkpoint.
        self._db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")

    def _pragma(self, statement: str) -> Any:
        return self._db.conn.execute(f"PRAGMA {statement}").fetchone()[0]

    def pragma(self, name: str) -> Any:
        """Read one PRAGMA value (journal_mode, synchronous, busy_timeout, foreign_keys, user_version...)."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a pragma name: {name!r}")
        return self._pragma(name)

    @property
    def schema_version(self) -> int:
        return int(self._pragma("user_version"))

    def _migrate(self) -> None:
        if self.schema_version == SCHEMA_VERSION:
            return
        with self._write():
            current = self.schema_version  # again, under the write lock: another process may have migrated
            if current > SCHEMA_VERSION:
                raise UnavailableError(
                    f"{self.path}: job log schema version {current} is newer than this ocrd "
                    f"understands ({SCHEMA_VERSION}); upgrade ocrd"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version - 1](self._db)
                self._db.execute(f"PRAGMA user_version = {version}")

    def _check_readable_schema(self) -> None:
        self._db.execute("PRAGMA query_only = ON")
        try:
            version = self.schema_version
        except sqlite3.Error as exc:
            raise UnavailableError(f"{self.path}: cannot read the job log: {exc}") from None
        if version != SCHEMA_VERSION:
            hint = "upgrade ocrd" if version > SCHEMA_VERSION else "start the daemon once to migrate it"
            raise UnavailableError(
                f"{self.path}: job log schema version {version}, this ocrd reads {SCHEMA_VERSION}; {hint}"
            )

    def close(self) -> None:
        self._db.conn.close()

    def __enter__(self) -> JobLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def _write(self) -> Iterator[None]:
        if self.readonly:
            raise ReadOnlyJobLog(f"{self.path}: opened read-only")
        conn = self._db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _wrap(exc, self.path) from None
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _wrap(exc, self.path) from None

    @contextmanager
    def _read(self) -> Iterator[None]:
        # Several SELECTs (status) see one snapshot.
        conn = self._db.conn
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[JobRow]:
        return [_row(r) for r in self._db.query(sql, list(params))]

    def _get_or_raise(self, job_id: str) -> JobRow:
        rows = self._fetch(_SELECT + " WHERE id = ?", [job_id])
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
    ) -> JobRow:
        """A new `queued` row. Pass `job_id` when the claim already used it (`.ocrd/work/<job_id>/`)."""
        now = self._clock()
        job_id = job_id or new_job_id(now.timestamp())
        with self._write():
            try:
                self._db.execute(
                    "INSERT INTO jobs (id, inbox, rel_path, sha256, size_bytes, state, attempts,"
                    " created_at, work_path) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?)",
                    [job_id, inbox, rel_path, sha256, int(size_bytes), format_utc(now), str(work_path)],
                )
            except sqlite3.IntegrityError as exc:
                if self._fetch(_SELECT + " WHERE id = ?", [job_id]):
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
        """running → done, storing the outcome's figures (keys from DONE_FIELDS); clears reason and error."""
        unknown = set(outcome_fields) - DONE_FIELDS - _DONE_IGNORED
        if unknown:
            raise ValueError(f"finish_done: unknown outcome fields {sorted(unknown)}")
        if outcome_fields.get("job_id", job_id) != job_id:
            raise ValueError(f"finish_done: outcome is for job {outcome_fields['job_id']}, not {job_id}")
        values: dict[str, Any] = {k: v for k, v in outcome_fields.items() if k in DONE_FIELDS}
        if "outputs" in values:
            values["outputs"] = json.dumps([str(p) for p in values["outputs"]])
        values.update(
            state=str(JobState.DONE), finished_at=self._now_text(), reason=None, error=None, not_before=None
        )
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
        return self._fetch(
            _SELECT + " WHERE state IN ('queued', 'running') AND stem IS NOT NULL ORDER BY created_at, rowid"
        )

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
        return [row for job_id in ids for row in self._fetch(_SELECT + " WHERE id = ?", [job_id])]

    def get(self, job_id: str) -> JobRow | None:
        rows = self._fetch(_SELECT + " WHERE id = ?", [job_id])
        return rows[0] if rows else None

    def find_done_by_sha256(self, sha256: str) -> JobRow | None:
        """The earliest `done` job with this content, or None."""
        rows = self._fetch(FIND_DONE_BY_SHA256_SQL, [sha256])
        return rows[0] if rows else None

    def find_by_path(self, inbox: str, rel_path: str) -> list[JobRow]:
        """Every row for this inbox path, oldest first."""
        return self._fetch(
            _SELECT + " WHERE inbox = ? AND rel_path = ? ORDER BY created_at, rowid", [inbox, rel_path]
        )

    def next_queued(self, limit: int, now: datetime | None = None) -> list[JobRow]:
        """Up to `limit` queued rows whose not_before has passed, oldest first."""
        now_text = format_utc(now if now is not None else self._clock())
        return self._fetch(_NEXT_QUEUED_SQL, [now_text, int(limit)])

    def list_jobs(
        self,
        state: JobState | str | None = None,
        inbox: str | None = None,
        since: datetime | str | None = None,
        limit: int | None = 50,
    ) -> list[JobRow]:
        """Rows newest first; `since` compares created_at; limit None means all."""
        sql, params = list_jobs_query(state, inbox, since, limit)
        return self._fetch(sql, params)

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        """Counts per state (every state present, zeros included), total, done in the last hour,
        and the oldest queued created_at; one consistent snapshot."""
        now = now if now is not None else self._clock()
        with self._read():
            found = {r["state"]: r["n"] for r in self._db.query(STATUS_COUNTS_SQL)}
            hour_ago = format_utc(now - timedelta(hours=1))
            done_last_hour = self._db.execute(_DONE_SINCE_SQL, [hour_ago]).fetchone()[0]
            oldest_queued = self._db.execute(_OLDEST_QUEUED_SQL).fetchone()[0]
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


def _wrap(exc: sqlite3.OperationalError, path: Path) -> JobLogError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return JobLogBusy(f"{path}: job log busy: {text}")
    return JobLogError(f"{path}: job log error: {text}")
