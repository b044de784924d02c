"""One open jobs.db: its connection (the writer's or a reader's), pragmas, schema migration or check, transactions.

JobDatabase knows nothing of jobs beyond the schema version; `ocrd.jobs.log.JobLog` builds the job state
machine and queries on it. The writer's connection is WAL, `synchronous=FULL`, foreign keys on, migrated;
a reader's is `file:...?mode=ro` and `query_only`, and refuses a schema version it does not read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from ocrd.errors import UnavailableError
from ocrd.jobs.rows import JobLogBusy, JobLogError, ReadOnlyJobLog
from ocrd.jobs.schema import MIGRATIONS, SCHEMA_VERSION

WAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024
BUSY_TIMEOUT_MS = 5000


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


class JobDatabase:
    """One jobs.db connection: the writer's (`JobDatabase(path)`) or a reader's (`readonly=True`)."""

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        conn = self._connect()
        try:
            # execute_plugins=False: no third-party sqlite-utils plugin gets to touch the daemon's connection.
            if readonly:
                self._db = _ReaderDatabase(conn)
            else:
                import sqlite_utils  # writer only: it pulls in numpy, 0.1 s a reader like `ocrd jobs` need not pay

                self._db = sqlite_utils.Database(conn, execute_plugins=False)
            if readonly:
                self._check_readable_schema()
            else:
                self._setup_writer()
                self._migrate()
        except BaseException:
            conn.close()
            raise

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

    def __enter__(self) -> Self:
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


def _wrap(exc: sqlite3.OperationalError, path: Path) -> JobLogError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return JobLogBusy(f"{path}: job log busy: {text}")
    return JobLogError(f"{path}: job log error: {text}")
