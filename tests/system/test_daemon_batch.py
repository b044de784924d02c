"""The daemon's main scenario (issue 4, "Done means"): a real `ocrd run` takes a batch from two inboxes.

N rendered images (default 50, `OCRD_SYSTEM_N` shrinks it) go into an inotify inbox and a polled
one, some written slowly in flushed chunks, some into sub-folders, plus 5 corrupt files and one
empty file that is never filled. Every good file must end up as JSON + text + visualization with
its own words, its original in the archive, the corrupt ones in quarantine with their reason code,
one job row each in the right state, and SIGTERM must end the daemon with exit code 0.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from tests.system.harness import (
    DEFAULT_OUTPUT_SUFFIXES,
    SETTLE_S,
    DaemonHarness,
    all_terminal,
    drop_file,
    drop_slowly,
    encode_image,
    files_under,
    render_text_image,
    temp_like_files,
    wait_until,
)

N = int(os.environ.get("OCRD_SYSTEM_N", "50"))
DRAIN_TIMEOUT_S = 60 + 3.0 * N  # about 0.25 s of work per image; generous for a loaded machine
SUBFOLDERS = ("", "2024/march", "", "dept-a", "")


@dataclass(frozen=True)
class Drop:
    inbox: str
    rel_path: str
    data: bytes
    text: str | None = None  # the rendered words; None for corrupt files
    reason: str | None = None  # expected quarantine reason code
    slow: bool = False

    @property
    def stem_rel(self) -> str:
        p = PurePosixPath(self.rel_path)
        return str(p.with_name(p.stem))


def _good_drops(n: int) -> list[Drop]:
    drops = []
    for i in range(n):
        text = f"Invoice {1001 + i}"
        ext = "png" if i % 3 == 0 else "jpg"
        folder = SUBFOLDERS[i % len(SUBFOLDERS)]
        rel = f"{folder}/scan_{i:03d}.{ext}" if folder else f"scan_{i:03d}.{ext}"
        inbox = "scans" if i % 2 == 0 else "polled"
        drops.append(Drop(inbox, rel, encode_image(render_text_image(text), ext), text=text, slow=i % 4 == 1))
    return drops


def _corrupt_drops(sample_jpg: bytes, sample_png: bytes) -> list[Drop]:
    noise = random.Random(4).randbytes(4096)
    assert not noise.startswith((b"\xff\xd8", b"\x89PNG", b"%PDF", b"II*\x00", b"MM\x00*", b"BM", b"RIFF"))
    return [
        Drop("scans", "notes.jpg", b"Meeting notes, not a picture at all.\n" * 20, reason="unsupported_format"),
        Drop("scans", "bad/half.jpg", sample_jpg[: len(sample_jpg) // 2], reason="truncated"),
        Drop("polled", "half.png", sample_png[: len(sample_png) // 2], reason="truncated"),
        Drop("polled", "bad/noise.png", noise, reason="unsupported_format"),
        Drop("scans", "report.pdf", b"Quarterly report\nPlain text with a .pdf name.\n", reason="unsupported_format"),
    ]


def _json_text(result: dict) -> str:
    return "\n".join(page["text"] for page in result["pages"])


def _squash(text: str) -> str:
    return "".join(text.split())


@pytest.fixture
def batch(ocrd_daemon: DaemonHarness):
    """Start the daemon, drop everything, wait until every dropped file has a terminal row."""
    harness = ocrd_daemon
    good = _good_drops(N)
    sample_jpg = next(d.data for d in good if d.rel_path.endswith(".jpg"))
    sample_png = next(d.data for d in good if d.rel_path.endswith(".png"))
    corrupt = _corrupt_drops(sample_jpg, sample_png)
    harness.start()

    empty = harness.inbox("scans") / "waiting" / "empty.jpg"
    empty.parent.mkdir(parents=True)
    empty.touch()
    # Interleave good and bad; the slow ones pause for less than settle_s between chunks.
    for index, drop in enumerate(good + corrupt):
        dest = harness.inbox(drop.inbox) / drop.rel_path
        if drop.slow:
            drop_slowly(dest, drop.data, pause_s=SETTLE_S / 2, parts=3 if index % 8 == 1 else 2)
        else:
            drop_file(dest, drop.data)

    rows = harness.wait_rows(all_terminal(len(good) + len(corrupt)), DRAIN_TIMEOUT_S, "every dropped file to finish")
    # A row turns terminal just before its file moves (DESIGN.md section 3): wait for the last moves.
    wait_until(
        lambda: len(files_under(harness.archive)) == len(good)
        and len(files_under(harness.quarantine)) == 2 * len(corrupt),
        10, "the last originals archived or quarantined",
    )  # fmt: skip
    return harness, good, corrupt, rows, empty


def test_batch_end_to_end(batch):
    harness, good, corrupt, rows, empty = batch
    assert len(rows) == N + 5, [(r["inbox"], r["rel_path"], r["state"]) for r in rows]
    by_path = {(r["inbox"], r["rel_path"]): r for r in rows}
    assert len(by_path) == len(rows), "a dropped file got two job rows"

    # -- good files: one row `done`, four outputs (the PDF included) with the right words, the original archived
    for drop in good:
        row = by_path[(drop.inbox, drop.rel_path)]
        assert row["state"] == "done", row
        assert row["attempts"] == 1 and row["reason"] is None and row["lines"] >= 1, row
        out_stem = harness.outbox / drop.inbox / drop.stem_rel
        outputs = [out_stem.with_name(out_stem.name + ext) for ext in DEFAULT_OUTPUT_SUFFIXES]
        for path in outputs:
            assert path.is_file() and path.stat().st_size > 0, f"missing {path}"
        assert sorted(json.loads(row["outputs"])) == sorted(str(p) for p in outputs)
        result = json.loads(outputs[0].read_text(encoding="utf-8"))
        assert result["job_id"] == row["id"]
        assert result["source"]["inbox"] == drop.inbox and result["source"]["rel_path"] == drop.rel_path
        assert result["source"]["sha256"] == row["sha256"]
        assert _squash(drop.text) in _squash(_json_text(result)), (drop.rel_path, _json_text(result))
        assert _squash(drop.text) in _squash(outputs[1].read_text(encoding="utf-8"))
        archived = harness.archive / drop.inbox / drop.rel_path
        assert archived.read_bytes() == drop.data, f"{archived} is not the dropped file"
        assert not (harness.inbox(drop.inbox) / drop.rel_path).exists()

    expected_outputs = {
        str(harness.outbox / d.inbox / d.stem_rel) + ext for d in good for ext in DEFAULT_OUTPUT_SUFFIXES
    }
    assert {str(p) for p in files_under(harness.outbox)} == expected_outputs, "unexpected files in the outbox"
    assert len(files_under(harness.archive)) == N

    # -- corrupt files: quarantined, each beside a reason file naming its code and job
    for drop in corrupt:
        row = by_path[(drop.inbox, drop.rel_path)]
        assert row["state"] == "quarantined" and row["reason"] == drop.reason, row
        placed = harness.quarantine / drop.inbox / drop.rel_path
        assert placed.read_bytes() == drop.data
        reason = json.loads(placed.with_name(placed.name + ".reason.json").read_text(encoding="utf-8"))
        assert reason["reason"] == drop.reason and reason["job_id"] == row["id"], reason
        assert reason["message"], reason
    assert len(files_under(harness.quarantine)) == 2 * len(corrupt)

    # -- the empty file is never taken: still in the inbox, no row
    assert empty.is_file() and empty.stat().st_size == 0
    assert ("scans", "waiting/empty.jpg") not in by_path

    # -- the outside views of the job log agree, while the daemon runs
    if shutil.which("sqlite3"):
        cli = subprocess.run(
            ["sqlite3", str(harness.db_path), "select state, count(*) from jobs group by 1 order by 1"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.split() == sorted([f"done|{N}", "quarantined|5"])

    status = harness.ocrd("status", "--json")
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout)["counts"]
    assert counts == {"queued": 0, "running": 0, "done": N, "failed": 0, "quarantined": 5, "duplicate": 0}

    jobs = harness.ocrd("jobs", "--state", "quarantined", "--json")
    assert jobs.returncode == 0, jobs.stderr
    listed = json.loads(jobs.stdout)
    assert {(j["id"], j["inbox"], j["rel_path"], j["reason"]) for j in listed} == {
        (by_path[(d.inbox, d.rel_path)]["id"], d.inbox, d.rel_path, d.reason) for d in corrupt
    }

    # -- SIGTERM: exit 0, nothing half-written, nothing left in the work folders
    assert harness.stop() == 0, harness.output()
    assert harness.events("daemon_stopped"), harness.output()
    # multiprocessing's resource tracker leaves when it sees the daemon's pipe close: allow it a moment.
    wait_until(lambda: not harness.live_group_members(), 10, "worker processes to exit after the daemon")
    for root in (harness.outbox, harness.archive, harness.quarantine):
        assert temp_like_files(root) == [], f"temporary files left in {root}"
    for name in ("scans", "polled"):
        assert files_under(harness.inbox(name) / ".ocrd" / "work") == []
    assert files_under(harness.inbox("scans")) == [empty]
    assert files_under(harness.inbox("polled")) == []
    errors = [e for e in harness.events() if e.get("level") in ("error", "critical")]
    assert errors == [], errors
