"""What runs jobs for the daemon: the `Executor` protocol the dispatcher uses (the local `WorkerPool`, or a
cluster executor the CLI wires in), the executor's health, the two ways a job can end that are not the
file's doing, and writing an output set that came back as bytes.

A job's future answers `running()` once a worker has taken it (the dispatcher charges an attempt then),
ends with an Outcome, or raises: InputError (a refused file), concurrent.futures.TimeoutError (past
`workers.job_timeout_s`), `WorkerCrashed`, `JobReleased`, OSError (outputs not written); a future
cancelled before any worker took it is simply handed out again.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ocrd.outputs.writers import OutputPlan, write_planned

if TYPE_CHECKING:
    from ocrd.jobs.records import EncodedJob, Job, Outcome


EXECUTOR_STATUS_FILE = "executor.json"  # in state_dir: the executor as the loop last saw it, for `ocrd status`
_STATUS_STALE_S = 30.0  # the loop rewrites it every 5 s: older means the daemon is not running


class WorkerCrashed(Exception):
    """The process running the job died, and the executor gave up rerunning it (charged as worker_crashed)."""


class JobReleased(Exception):
    """The executor lost the job through no fault of the file (its scheduler went away): the row goes back
    to queued without the attempt being charged, and the job is handed out again."""


@dataclass(frozen=True, slots=True)
class ExecutorHealth:
    """What `ocrd status`, /healthz and /metrics say about the executor; plain values, cheap to build."""

    kind: str  # local | dask
    alive: bool  # jobs can run now: the local pool is up, or the scheduler is reachable with a usable worker
    capacity: int  # jobs the dispatcher may have in flight now
    workers_connected: int = 0  # worker processes (local) or Dask workers that passed the identity check
    threads: int = 0  # their task threads in total
    tasks_in_flight: int = 0  # jobs handed to the executor and not yet returned
    scheduler: str | None = None  # the Dask scheduler's address
    scheduler_reachable: bool | None = None  # None: no scheduler (local)
    workers_refused: int = 0  # Dask workers turned away (other ocrd version or model files)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


class Executor(Protocol):
    """The interface `ocrd.service.dispatch` and the daemon use; `WorkerPool` is the local one."""

    recycled: int  # workers replaced after a crash, timeout or recycling, since start

    @property
    def capacity(self) -> int: ...
    @property
    def alive(self) -> bool: ...
    def submit(self, job: Job) -> Future: ...
    def wait_ready(self, timeout_s: float) -> None: ...
    def note_worker_memory(self, rss_mb: float) -> bool: ...
    def health(self) -> ExecutorHealth: ...
    def close(self) -> None: ...
    def stop(self) -> None: ...


def write_encoded(job: Job, encoded: EncodedJob) -> Outcome:
    """Write an output set computed elsewhere into the job's out_dir, as a local worker writes its own:
    each file durable (temp, fsync, rename, fsync of the folder), the JSON last; the Outcome with the paths.

    A file name that is not a plain name in out_dir (a worker must never choose where the daemon writes)
    is refused before anything is written.
    """
    out_dir = Path(job.out_dir)
    files = []
    for name, data in encoded.files:
        if not name or "/" in name or name in (".", "..") or "\0" in name:
            raise ValueError(f"job {job.job_id}: refused output name {name!r} from the executor")
        files.append((out_dir / name, data))
    written = write_planned(OutputPlan(tuple(files)), out_dir)
    return replace(encoded.outcome, outputs=tuple(str(p) for p in written))


def executor_status_line(state_dir: Path, now_s: float | None = None) -> str:
    """One line for `ocrd status` from the file the daemon's loop keeps up to date (it runs elsewhere)."""
    try:
        doc: dict[str, Any] = json.loads((Path(state_dir) / EXECUTOR_STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "executor: unknown (no daemon has run with this state_dir)"
    age_s = (time.time() if now_s is None else now_s) - float(doc.get("updated_at", 0))
    stale = f"; as of {age_s:.0f} s ago: is the daemon running?" if age_s > _STATUS_STALE_S else ""
    if doc.get("kind") == "local":
        return (f"executor: local pool, {doc.get('workers_connected')} workers, {doc.get('tasks_in_flight')} jobs in "
                f"flight{stale}")  # fmt: skip
    reach = "reachable" if doc.get("scheduler_reachable") else "UNREACHABLE"
    return (f"executor: {doc.get('kind')} scheduler {doc.get('scheduler')} {reach}, {doc.get('workers_connected')} "
            f"workers connected ({doc.get('threads')} threads, {doc.get('workers_refused')} refused), "
            f"{doc.get('tasks_in_flight')} tasks in flight{stale}")  # fmt: skip

