"""The job log's data model: job states, the JobLogError family, timestamp text, and JobRow with its columns.

Plain Python with no SQL and no `sqlite_utils`, so anything that reads or reports jobs can import it.
Timestamps are ISO 8601 UTC text with milliseconds and a `Z` (`2025-01-31T12:00:00.000Z`), so text order
is time order and comparisons run in SQL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ocrd.errors import OcrdError


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
    submitted_by: str | None = None  # the API token's name for an upload; None for a dropped file
    peak_rss_mb: float | None = None  # the worker's peak resident memory while it read the file (MiB)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (for `ocrd jobs --json`)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["state"] = str(self.state)
        out["outputs"] = list(self.outputs)
        return out


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(JobRow))


def decode_row(values: Mapping[str, Any]) -> JobRow:
    """A JobRow from a `jobs` row as SQLite returns it (state as text, outputs as JSON text)."""
    data = dict(values)
    data["state"] = JobState(data["state"])
    data["outputs"] = tuple(json.loads(data["outputs"])) if data["outputs"] else ()
    return JobRow(**data)


# Keys finish_done stores; `job_id` (checked against the row) and `format` (not a column) are accepted so
# that `dataclasses.asdict(outcome) | {"ocrd_version": ..., "model_set": ...}` can be passed as it is.
DONE_FIELDS = frozenset(
    {
        "sha256", "size_bytes", "decode_ms", "detect_ms", "classify_ms", "recognize_ms", "total_ms",
        "pages", "lines", "mean_confidence", "outputs", "worker_pid", "ocrd_version", "model_set", "peak_rss_mb",
        "reason", "error",  # a done job's omitted output (the searchable PDF of an encrypted PDF), else None
    }
)  # fmt: skip
_DONE_IGNORED = frozenset({"job_id", "format", "worker_rss_mb"})  # in the Outcome, not in the table


def done_columns(job_id: str, outcome_fields: Mapping[str, Any]) -> dict[str, Any]:
    """The columns a `done` job's outcome fills (keys from DONE_FIELDS, outputs as JSON text)."""
    unknown = set(outcome_fields) - DONE_FIELDS - _DONE_IGNORED
    if unknown:
        raise ValueError(f"finish_done: unknown outcome fields {sorted(unknown)}")
    if outcome_fields.get("job_id", job_id) != job_id:
        raise ValueError(f"finish_done: outcome is for job {outcome_fields['job_id']}, not {job_id}")
    values: dict[str, Any] = {k: v for k, v in outcome_fields.items() if k in DONE_FIELDS}
    if "outputs" in values:
        values["outputs"] = json.dumps([str(p) for p in values["outputs"]])
    return values
