"""Job and Outcome: what the main process hands to a worker, and the figures a finished job sends back.

Plain data with no heavy imports, so the main process (which never decodes or runs a model) can build
and read them without loading OpenCV or onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    path: Path  # where the file is read from (the claimed copy for the daemon)
    rel_path: str  # path shown in results, relative to the inbox or the folder given
    out_dir: Path
    stem: str
    inbox: str | None = None
    # The attempt this run would be if a worker takes it (the row's attempts + 1): names the Dask task,
    # so a result of an earlier, abandoned attempt is told apart and dropped.
    attempt: int = 1
    # Nothing else was running or waiting when it was handed out: it may read with workers.alone_threads.
    alone: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    job_id: str
    sha256: str
    size_bytes: int
    format: str
    pages: int
    lines: int
    mean_confidence: float | None
    decode_ms: float
    detect_ms: float
    classify_ms: float
    recognize_ms: float
    total_ms: float
    outputs: tuple[str, ...] = field(default_factory=tuple)
    worker_pid: int = 0
    worker_rss_mb: float = 0.0  # resident memory of the worker after the job, for recycling
    peak_rss_mb: float | None = None  # the worker's peak resident memory during the job; None: not measurable here
    # Set when an output was left out on purpose (ocrd.errors.Reason, e.g. pdf_encrypted) and why; the
    # job is still done, the rest of its outputs written.
    reason: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EncodedJob:
    """What the pure job function returns: the output set as (file name in the job's out_dir, bytes), in
    writing order with the JSON last, and the Outcome (its `outputs` empty until the set is written).

    Nothing of it is on disk yet: the caller writes the files atomically (`ocrd.outputs.writers`), so a
    job run on another host leaves no trace until the daemon has the whole set.
    """

    outcome: Outcome
    files: tuple[tuple[str, bytes], ...]

    @property
    def size_bytes(self) -> int:
        return sum(len(data) for _, data in self.files)
