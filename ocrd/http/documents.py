"""The API's JSON shapes: a job as clients see it, its links, and which output files it has under which names; no I/O but stat.

Output names are stable and independent of the file's stem: `result.json`,
`result.txt`, `vis.jpg` (first page; `vis.p002.jpg` for later pages),
`result.pdf`, and `result<ending>` for any other output a job has.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ocrd.config.schema import Config
from ocrd.jobs.rows import JobRow, JobState

API = "/api/v1"
_VIS = re.compile(r"(\.p\d{3})?\.vis\.(jpg|png)")
CONTENT_TYPES = {
    ".json": "application/json", ".txt": "text/plain; charset=utf-8", ".jpg": "image/jpeg",
    ".png": "image/png", ".pdf": "application/pdf",
}  # fmt: skip
# Shown inline by a browser only when the type cannot run script in our origin; everything else downloads.
INLINE_TYPES = frozenset({"application/json", "text/plain; charset=utf-8", "image/jpeg", "image/png"})


def job_url(job_id: str) -> str:
    return f"{API}/jobs/{job_id}"


def output_files(row: JobRow, cfg: Config) -> dict[str, Path]:
    """API name -> file for every output the row records that exists inside the outbox."""
    if not row.stem or not row.outputs:
        return {}
    outbox = cfg.outbox.resolve()
    found: dict[str, Path] = {}
    for recorded in row.outputs:
        path = Path(recorded)
        name = path.name
        if not name.startswith(row.stem + "."):
            continue
        ending = name[len(row.stem):]
        vis = _VIS.fullmatch(ending)
        if vis:
            api_name = f"vis{vis.group(1) or ''}.{vis.group(2)}"
        else:
            api_name = "result" + ending
        try:
            real = path.resolve(strict=True)
        except OSError:
            continue
        if real.is_relative_to(outbox) and real.is_file():
            found[api_name] = real
    # A multi-page job's first visualization answers to `vis.jpg` too.
    for ext in ("jpg", "png"):
        if f"vis.{ext}" not in found and f"vis.p001.{ext}" in found:
            found[f"vis.{ext}"] = found[f"vis.p001.{ext}"]
    return found


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def job_document(row: JobRow, cfg: Config) -> dict[str, Any]:
    url = job_url(row.id)
    links: dict[str, Any] = {"self": url}
    outputs = output_files(row, cfg) if row.state is JobState.DONE else {}
    if outputs:
        links["outputs"] = {name: f"{url}/{name}" for name in sorted(outputs)}
    if row.duplicate_of:
        links["duplicate_of"] = job_url(row.duplicate_of)
    if row.state in (JobState.FAILED, JobState.QUARANTINED):
        links["requeue"] = f"{url}/requeue"
    return {
        "id": row.id, "state": str(row.state), "reason": row.reason, "detail": row.error, "inbox": row.inbox,
        "filename": Path(row.rel_path).name, "rel_path": row.rel_path, "bytes": row.size_bytes,
        "sha256": row.sha256, "pages": row.pages, "lines": row.lines, "attempts": row.attempts,
        "created_at": row.created_at, "started_at": row.started_at, "finished_at": row.finished_at,
        "duplicate_of": row.duplicate_of, "submitted_by": row.submitted_by, "links": links,
    }  # fmt: skip
