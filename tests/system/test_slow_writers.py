"""Slow and odd writers (issue 7): a file is never read before it is completely written, and renames,
moves, deletions and re-drops behave as a user expects.

One daemon serves the whole module (starting one costs seconds; every case uses its own names).
`OCRD_TRIALS` sets the number of slow-writer trials (20 in CI, 100 for the issue's full count).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path

import pytest

from tests.system.harness import (
    DaemonHarness,
    drop_file,
    encode_image,
    files_under,
    render_text_image,
    temp_like_files,
    wait_until,
)

TRIALS = int(os.environ.get("OCRD_TRIALS", "20"))
SETTLE_S = 1.0  # long enough that a pause "shorter than settle_s" can still be a real pause on a busy machine


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> DaemonHarness:
    harness = DaemonHarness(tmp_path_factory.mktemp("slow-writers"))
    harness.write_config(
        inboxes=[
            {"name": "scans", "path": "inbox/scans", "watch": "inotify", "settle_s": SETTLE_S},
            {"name": "polled", "path": "inbox/polled", "watch": "poll", "settle_s": SETTLE_S},
        ],
    )
    harness.start()
    try:
        yield harness
    finally:
        harness.cleanup()


def _image(text: str, ext: str = "png") -> bytes:
    return encode_image(render_text_image(text, width_px=360, height_px=80), ext)


def _squash(text: str) -> str:
    return "".join(text.split())


def _result(harness: DaemonHarness, inbox: str, stem_rel: str) -> dict:
    return json.loads((harness.outbox / inbox / f"{stem_rel}.json").read_text(encoding="utf-8"))


def _rows_for(harness: DaemonHarness, inbox: str, rel_path: str) -> list[dict]:
    return [r for r in harness.rows() if r["inbox"] == inbox and r["rel_path"] == rel_path]


def _errors(harness: DaemonHarness) -> list[dict]:
    return [e for e in harness.events() if e.get("level") in ("error", "critical")]


def _write_in_chunks(dest: Path, data: bytes, pauses_s: list[float]) -> None:
    """`len(pauses_s) + 1` chunks, each flushed, with the given pauses between them (like a slow SMB copy)."""
    cuts = sorted(random.Random(len(data)).sample(range(1, len(data)), len(pauses_s)))
    bounds = [0, *cuts, len(data)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as handle:
        for i in range(len(bounds) - 1):
            if i:
                time.sleep(pauses_s[i - 1])
            handle.write(data[bounds[i] : bounds[i + 1]])
            handle.flush()
            os.fsync(handle.fileno())


def test_chunked_writes_with_pauses_shorter_than_settle_are_never_read_early(daemon: DaemonHarness):
    rng = random.Random(7)
    trials = []
    for i in range(TRIALS):
        inbox = "scans" if i % 2 == 0 else "polled"
        ext = "png" if i % 3 else "jpg"
        text = f"Slow {3000 + i}"
        chunks = rng.randint(3, 5)
        pauses = [rng.uniform(0.2, 0.7) * SETTLE_S for _ in range(chunks - 1)]
        trials.append((inbox, f"slow/trial_{i:03d}.{ext}", text, _image(text, ext), pauses))
    # All trials write at once, each in its own thread: CI-sized wall time, and the tracker juggles many.
    threads = [
        threading.Thread(target=_write_in_chunks, args=(daemon.inbox(inbox) / rel, data, pauses))
        for inbox, rel, _, data, pauses in trials
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    keys = {(inbox, rel) for inbox, rel, *_ in trials}
    daemon.wait_rows(
        lambda rows: sum(1 for r in rows if (r["inbox"], r["rel_path"]) in keys and r["state"] != "running"
                         and r["state"] != "queued") >= TRIALS,
        60 + 3 * TRIALS, f"{TRIALS} slow-writer trials to finish",
    )  # fmt: skip
    rows = [r for r in daemon.rows() if (r["inbox"], r["rel_path"]) in keys]
    assert [r for r in rows if r["reason"] == "truncated"] == [], "a file was read before it was complete"
    assert sorted((r["inbox"], r["rel_path"]) for r in rows) == sorted(keys), "one row per file"
    for inbox, rel, text, data, _ in trials:
        (row,) = _rows_for(daemon, inbox, rel)
        assert row["state"] == "done", row
        assert row["attempts"] == 1, row
        assert row["size_bytes"] == len(data), "the row must describe the whole file"
        result = _result(daemon, inbox, rel.rsplit(".", 1)[0])
        assert result["source"]["bytes"] == len(data)
        assert _squash(text) in _squash(result["pages"][0]["text"]), (rel, result["pages"][0]["text"])
    wait_until(lambda: all((daemon.archive / i / r).exists() for i, r, *_ in trials), 10, "originals archived")
    for inbox, rel, _, data, _ in trials:
        assert (daemon.archive / inbox / rel).read_bytes() == data
    assert files_under(daemon.quarantine) == []


def test_file_renamed_in_from_a_sibling_temp_folder(daemon: DaemonHarness):
    staging = daemon.root / "staging"  # same file system as the inbox, outside it
    data = _image("Renamed 4711")
    drop_file(staging / "upload.png", data)
    time.sleep(0.1)
    os.rename(staging / "upload.png", daemon.inbox("scans") / "renamed.png")

    daemon.wait_rows(lambda rows: any(r["rel_path"] == "renamed.png" and r["state"] == "done" for r in rows),
                     60, "the renamed file to be done")  # fmt: skip
    (row,) = _rows_for(daemon, "scans", "renamed.png")
    assert row["attempts"] == 1
    assert "4711" in _result(daemon, "scans", "renamed")["pages"][0]["text"]
    wait_until(lambda: (daemon.archive / "scans" / "renamed.png").exists(), 10, "the original archived")
    assert (daemon.archive / "scans" / "renamed.png").read_bytes() == data


def test_file_moved_between_subfolders_before_it_settles_is_processed_once_under_its_final_path(
    daemon: DaemonHarness,
):
    data = _image("Moved 5150")
    first = daemon.inbox("scans") / "incoming" / "moved.png"
    final = daemon.inbox("scans") / "filed" / "2024" / "moved.png"
    drop_file(first, data)
    time.sleep(0.2 * SETTLE_S)
    final.parent.mkdir(parents=True)
    os.rename(first, final)

    daemon.wait_rows(lambda rows: any(r["rel_path"] == "filed/2024/moved.png" and r["state"] == "done" for r in rows),
                     60, "the moved file to be done")  # fmt: skip
    # Give a stray second claim the chance to show up: a full settle and a rescan.
    time.sleep(SETTLE_S + 2.5)
    rows = [r for r in daemon.rows() if r["rel_path"].endswith("moved.png")]
    assert [r["rel_path"] for r in rows] == ["filed/2024/moved.png"], rows
    assert "5150" in _result(daemon, "scans", "filed/2024/moved")["pages"][0]["text"]
    assert not (daemon.outbox / "scans" / "incoming").exists()
    assert (daemon.archive / "scans" / "filed" / "2024" / "moved.png").read_bytes() == data


def test_file_deleted_before_it_settles_leaves_no_row_and_no_error(daemon: DaemonHarness):
    errors_before = len(_errors(daemon))
    path = daemon.inbox("scans") / "gone.png"
    drop_file(path, _image("Gone 6060"))
    time.sleep(0.2 * SETTLE_S)
    path.unlink()
    # A witness dropped after it: once the witness is done, the deleted file had every chance to be claimed.
    drop_file(daemon.inbox("scans") / "witness.png", _image("Witness 6161"))
    daemon.wait_rows(lambda rows: any(r["rel_path"] == "witness.png" and r["state"] == "done" for r in rows),
                     60, "the witness file to be done")  # fmt: skip
    time.sleep(2.5)  # and a rescan
    assert _rows_for(daemon, "scans", "gone.png") == []
    assert _errors(daemon)[errors_before:] == []
    assert not (daemon.outbox / "scans" / "gone.json").exists()


def test_same_name_dropped_again_after_processing_is_processed_again_without_overwriting(daemon: DaemonHarness):
    inbox = daemon.inbox("polled")
    first, second = _image("Again 7001"), _image("Again 7002")
    drop_file(inbox / "again.png", first)
    daemon.wait_rows(lambda rows: sum(r["rel_path"] == "again.png" and r["state"] == "done" for r in rows) == 1,
                     60, "the first again.png to be done")  # fmt: skip
    wait_until(lambda: not (inbox / "again.png").exists(), 10, "the first again.png claimed")
    drop_file(inbox / "again.png", second)
    rows = daemon.wait_rows(
        lambda rows: sum(r["rel_path"] == "again.png" and r["state"] == "done" for r in rows) == 2,
        60, "the second again.png to be done",
    )  # fmt: skip
    done = [r for r in rows if r["rel_path"] == "again.png"]
    assert [r["stem"] for r in done] == ["again", "again~1"], done
    assert "7001" in _result(daemon, "polled", "again")["pages"][0]["text"]
    assert "7002" in _result(daemon, "polled", "again~1")["pages"][0]["text"]
    assert _result(daemon, "polled", "again")["job_id"] == done[0]["id"]
    assert _result(daemon, "polled", "again~1")["job_id"] == done[1]["id"]
    wait_until(lambda: (daemon.archive / "polled" / "again~1.png").exists(), 10, "the second original archived")
    assert (daemon.archive / "polled" / "again.png").read_bytes() == first
    assert (daemon.archive / "polled" / "again~1.png").read_bytes() == second


def test_no_partial_or_temporary_files_left(daemon: DaemonHarness):
    """Runs last in the module: after all of the above, nothing half-written is visible anywhere."""
    for root in (daemon.outbox, daemon.archive, daemon.quarantine):
        assert temp_like_files(root) == [], root
    for name in ("scans", "polled"):
        assert files_under(daemon.inbox(name) / ".ocrd" / "work") == []
    assert all(r["state"] == "done" for r in daemon.rows()), [r for r in daemon.rows() if r["state"] != "done"]
    assert daemon.stop() == 0, daemon.output()
