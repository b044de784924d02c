"""Which files in the outbox are a job's own: its output folder, a killed worker's leftovers, an earlier set it wrote."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ocrd.config.schema import Config, InboxConfig
from ocrd.jobs.rows import JobRow
from ocrd.logs import get_logger

log = get_logger("ocrd.daemon")


def output_dir(outbox: Path, inbox: InboxConfig, rel_path: str) -> Path:
    """Where the outputs of the inbox file `rel_path` go: its sub-folder mirrored under `<outbox>/<inbox>/`."""
    return outbox / inbox.name / Path(rel_path).parent


def remove_leftovers(cfg: Config, row: JobRow, *, partial_outputs: bool = False) -> None:
    """Delete the hidden `.<output>.<hex>.tmp` files a worker killed mid-write left beside `row`'s outputs.

    With `partial_outputs`, also the row's own text and visualization files when its JSON (written
    last, so the mark of a complete set) is missing: used when the row is quarantined, since no retry
    will rewrite them. Only while no worker is writing this row (at start-up, at stop once the pool is
    stopped, or once its job has ended), and only names of this row's own outputs.
    """
    inbox = next((inbox for inbox in cfg.inboxes if inbox.name == row.inbox), None)
    if inbox is None or row.stem is None:
        return
    out_dir = output_dir(cfg.outbox, inbox, row.rel_path)
    outputs = r"(\.json|\.txt|(\.p\d{3})?\.vis\.(jpg|png)|\.pdf|\.hocr|\.alto\.xml)"  # output_paths' names after the stem
    stem = re.escape(row.stem)
    patterns = [re.compile(rf"\.{stem}{outputs}\.[0-9a-f]{{8}}\.tmp")]  # outputs._create_temp's pattern
    if partial_outputs and not (out_dir / f"{row.stem}.json").exists():
        patterns.append(re.compile(rf"{stem}{outputs}"))
    try:
        names = [entry.name for entry in os.scandir(out_dir) if any(p.fullmatch(entry.name) for p in patterns)]
    except FileNotFoundError:
        return
    for name in names:
        try:
            (out_dir / name).unlink(missing_ok=True)
        except OSError as exc:  # a leftover file is untidy, not a reason to stop
            log.warning("stale_output_kept", job_id=row.id, path=str(out_dir / name), error=str(exc))
        else:
            log.warning("stale_output_removed", job_id=row.id, path=str(out_dir / name))


def written_by(json_path: Path, job_id: str) -> bool:
    """True when the result JSON at `json_path` records `job_id`: a retry of that job may write over its set."""
    try:
        with open(json_path, encoding="utf-8") as handle:
            return json.load(handle).get("job_id") == job_id
    except (OSError, ValueError, AttributeError):
        return False
