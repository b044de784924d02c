"""The `jobs` table's schema: its migrations, in order, and the version they reach (PRAGMA user_version).

Only the definitions: `ocrd.jobs.connection` runs them, under the write lock, when the writer opens the file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ocrd.jobs.rows import JobState

if TYPE_CHECKING:
    import sqlite_utils


def _migrate_v1(db: sqlite_utils.Database) -> None:
    states = ", ".join(f"'{s}'" for s in JobState)
    db.execute(
        f"""
        CREATE TABLE jobs (
            id              TEXT PRIMARY KEY NOT NULL,  -- sortable job id (ocrd.jobs.ids)
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


def _migrate_v2(db: sqlite_utils.Database) -> None:
    # Who posted the file over the HTTP API (the token's name; NULL for files dropped into an inbox):
    # an `upload` token reads only its own jobs, newest first.
    db.execute("ALTER TABLE jobs ADD COLUMN submitted_by TEXT")
    db.execute(
        "CREATE INDEX jobs_submitted_by_created_at ON jobs (submitted_by, created_at) WHERE submitted_by IS NOT NULL"
    )


def _migrate_v3(db: sqlite_utils.Database) -> None:
    # The worker's peak resident memory while it read the file (MiB): what a page cost, so a user can
    # see which inputs are expensive and size workers.count and MemoryMax from real figures.
    db.execute("ALTER TABLE jobs ADD COLUMN peak_rss_mb REAL")


# Ordered: MIGRATIONS[n - 1] takes the schema from version n - 1 to n. Append, never edit a shipped one.
MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (_migrate_v1, _migrate_v2, _migrate_v3)
SCHEMA_VERSION = len(MIGRATIONS)
