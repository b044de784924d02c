"""SIGKILL in the middle of a batch (daemon and workers at once), restart: every file exactly once.

The kill is real: the whole process group goes down with no chance to clean up. The restarted
daemon must requeue what was running, finish half-done file moves, and leave no partial or
temporary output, no duplicate result (`~1`), no job row that is not terminal, and a sound database.
"""

from __future__ import annotations

import json
import sqlite3

from tests.system.harness import (
    DEFAULT_OUTPUT_SUFFIXES,
    DaemonHarness,
    all_terminal,
    drop_file,
    encode_image,
    files_under,
    render_text_image,
    temp_like_files,
    wait_until,
)

COUNT = 12


def test_sigkill_mid_batch_then_restart_processes_each_file_once(ocrd_daemon: DaemonHarness):
    harness = ocrd_daemon
    harness.write_config(workers={"count": 1})  # one worker: the batch takes long enough to be cut
    drops = {}
    for i in range(COUNT):
        inbox = "scans" if i % 3 else "polled"
        rel = f"batch/page_{i:02d}.png" if i % 2 else f"page_{i:02d}.jpg"
        text = f"Receipt {2001 + i}"
        drops[(inbox, rel)] = (text, encode_image(render_text_image(text), rel.rsplit(".", 1)[1]))
    harness.start()
    for (inbox, rel), (_, data) in drops.items():
        drop_file(harness.inbox(inbox) / rel, data)

    wait_until(lambda: len(harness.events("job_done")) >= 2, 90, "two jobs done before the kill", interval_s=0.02)
    harness.kill_group()
    assert harness.proc.returncode == -9
    wait_until(lambda: not harness.live_group_members(), 10, "the killed workers to be gone")

    before = {(r["inbox"], r["rel_path"]): r for r in harness.rows()}
    done_before = [key for key, r in before.items() if r["state"] == "done"]
    assert 2 <= len(done_before) < COUNT, f"the kill did not land mid-batch: {len(done_before)} done"
    running_before = [r["id"] for r in before.values() if r["state"] == "running"]

    harness.start()
    rows = harness.wait_rows(all_terminal(COUNT), 120, "the restarted daemon to drain the batch")
    # Rows turn terminal just before their file moves: wait for the last move too.
    wait_until(lambda: len(files_under(harness.archive)) == COUNT, 10, "every original archived")
    interrupted = {e["job_id"] for e in harness.events("job_interrupted")}
    assert interrupted == set(running_before), "every job running at the kill is recovered, and only those"

    # -- exactly one row per dropped file, all done, outputs at their first-choice names
    assert sorted((r["inbox"], r["rel_path"]) for r in rows) == sorted(drops), rows
    for row in rows:
        assert row["state"] == "done", row
        text, data = drops[(row["inbox"], row["rel_path"])]
        stem = row["rel_path"].rsplit(".", 1)[0]
        result_path = harness.outbox / row["inbox"] / f"{stem}.json"
        result = json.loads(result_path.read_text(encoding="utf-8"))
        assert result["job_id"] == row["id"]
        assert "".join(text.split()) in "".join(result["pages"][0]["text"].split()), result["pages"][0]
        assert (harness.archive / row["inbox"] / row["rel_path"]).read_bytes() == data
    outputs = files_under(harness.outbox)
    assert len(outputs) == len(DEFAULT_OUTPUT_SUFFIXES) * COUNT, [p.name for p in outputs]
    assert [p for p in outputs if "~" in p.name] == [], "a result was written twice under another name"
    assert len(files_under(harness.archive)) == COUNT
    assert files_under(harness.quarantine) == []
    for root in (harness.outbox, harness.archive):
        assert temp_like_files(root) == [], f"partial files left in {root}"
    for name in ("scans", "polled"):
        assert files_under(harness.inbox(name) / ".ocrd" / "work") == []
        assert files_under(harness.inbox(name)) == []

    # -- the database survived the kill
    conn = sqlite3.connect(f"{harness.db_path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()

    assert harness.stop() == 0, harness.output()
