"""Duplicates and requeue against a real `ocrd run`.

- The same file dropped twice (the second time after the first is done): one `done`, one
  `duplicate` pointing at it, results written once, both originals kept in the archive.
- A file quarantined for a limit (`intake.max_pixels`) is requeued with `ocrd requeue`: while the
  limit stands it comes back to quarantine with a fresh reason file; once the admin raises the
  limit and requeues it again, it is read and done.
"""

from __future__ import annotations

import json

from tests.system.harness import (
    DaemonHarness,
    all_terminal,
    drop_file,
    encode_image,
    files_under,
    render_text_image,
    wait_until,
)


def test_same_file_twice_is_one_done_and_one_duplicate(ocrd_daemon: DaemonHarness):
    harness = ocrd_daemon
    data = encode_image(render_text_image("Invoice 4242"), "png")
    harness.start()

    drop_file(harness.inbox("scans") / "a.png", data)
    (first,) = harness.wait_rows(all_terminal(1), 60, "the first copy to be done")
    assert first["state"] == "done", first
    wait_until(lambda: (harness.archive / "scans" / "a.png").exists(), 10, "the first original archived")

    drop_file(harness.inbox("scans") / "a.png", data)  # same name, same content, dropped again
    rows = harness.wait_rows(all_terminal(2), 60, "the second copy to be decided")
    assert len(rows) == 2
    second = next(r for r in rows if r["id"] != first["id"])
    assert second["state"] == "duplicate", second
    assert second["duplicate_of"] == first["id"]
    assert second["sha256"] == first["sha256"]
    assert second["started_at"] is None and second["outputs"] is None, "a duplicate is not read again"
    assert [e["job_id"] for e in harness.events("job_duplicate")] == [second["id"]]

    outputs = sorted(p.name for p in files_under(harness.outbox / "scans"))
    assert outputs == ["a.json", "a.pdf", "a.txt", "a.vis.jpg"]
    result = json.loads((harness.outbox / "scans" / "a.json").read_text(encoding="utf-8"))
    assert result["job_id"] == first["id"]
    # Nothing is lost: the second original is archived beside the first, under a collision name.
    wait_until(lambda: len(files_under(harness.archive)) == 2, 10, "the duplicate's original archived")
    assert sorted(p.name for p in files_under(harness.archive / "scans")) == ["a.png", "a~1.png"]
    assert all(p.read_bytes() == data for p in files_under(harness.archive))
    assert files_under(harness.inbox("scans")) == []

    status = json.loads(harness.ocrd("status", "--json").stdout)
    assert status["counts"]["done"] == 1 and status["counts"]["duplicate"] == 1
    assert harness.stop() == 0, harness.output()


def _reason_doc(harness: DaemonHarness, rel: str) -> dict:
    path = harness.quarantine / "polled" / f"{rel}.reason.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_requeue_of_a_quarantined_job(ocrd_daemon: DaemonHarness):
    harness = ocrd_daemon
    small_limit = {"intake": {"max_pixels": 200_000}}
    harness.write_config(**small_limit)
    wide = encode_image(render_text_image("Statement 777", width_px=1200), "png")  # 240 000 px
    harness.start()

    drop_file(harness.inbox("polled") / "wide" / "statement.png", wide)
    (row,) = harness.wait_rows(all_terminal(1), 60, "the wide page to be refused")
    assert (row["state"], row["reason"], row["attempts"]) == ("quarantined", "too_many_pixels", 1), row
    wait_until(lambda: (harness.quarantine / "polled" / "wide" / "statement.png.reason.json").exists(), 10,
               "the reason file")  # fmt: skip
    first_reason = _reason_doc(harness, "wide/statement.png")
    assert first_reason["reason"] == "too_many_pixels" and first_reason["job_id"] == row["id"]

    # 1. Requeue while the daemon runs and the limit still stands: read again, refused again.
    requeue = harness.ocrd("requeue", row["id"])
    assert requeue.returncode == 0, requeue.stderr
    assert "1 job(s) requeued" in requeue.stdout

    def quarantined_again() -> dict | None:
        (current,) = harness.rows()
        return current if current["state"] == "quarantined" and current["finished_at"] != row["finished_at"] else None

    again = wait_until(quarantined_again, 60, "the requeued job to be quarantined again")
    assert (again["id"], again["reason"], again["attempts"]) == (row["id"], "too_many_pixels", 1), again
    def new_reason_doc() -> dict | None:
        # The row changes before the file moves and the reason file is written: it may not be there yet.
        try:
            doc = _reason_doc(harness, "wide/statement.png")
        except (FileNotFoundError, ValueError):
            return None
        return doc if doc["time"] != first_reason["time"] else None

    second_reason = wait_until(new_reason_doc, 10, "a new reason file")
    assert second_reason["reason"] == "too_many_pixels" and second_reason["job_id"] == row["id"]
    assert sorted(p.name for p in files_under(harness.quarantine)) == ["statement.png", "statement.png.reason.json"]
    assert files_under(harness.outbox) == []
    assert harness.stop() == 0, harness.output()

    # 2. The admin raises the limit and requeues every quarantined job while the daemon is down.
    harness.write_config()
    # Naming the job and its state at once must requeue it once, not fail on the second sight of it.
    requeue = harness.ocrd("requeue", row["id"], "--state", "quarantined")
    assert requeue.returncode == 0, requeue.stderr
    assert "1 job(s) requeued" in requeue.stdout
    (queued,) = harness.rows()
    assert (queued["state"], queued["attempts"], queued["reason"]) == ("queued", 0, None), queued
    assert files_under(harness.quarantine) == [], "the file moved back out of quarantine, reason file too"
    assert (harness.inbox("polled") / ".ocrd" / "work").is_dir()
    assert [p.read_bytes() for p in files_under(harness.inbox("polled") / ".ocrd" / "work")] == [wide]

    harness.start()
    (done,) = harness.wait_rows(all_terminal(1), 60, "the requeued job to be read")
    assert (done["id"], done["state"], done["attempts"]) == (row["id"], "done", 1), done
    result = json.loads((harness.outbox / "polled" / "wide" / "statement.json").read_text(encoding="utf-8"))
    assert result["job_id"] == row["id"]
    assert "Statement777" in "".join(result["pages"][0]["text"].split())
    # The row says done before the original moves (DESIGN.md section 3): wait for the move.
    archived = harness.archive / "polled" / "wide" / "statement.png"
    wait_until(archived.exists, 10, "the original archived")
    assert archived.read_bytes() == wide
    assert files_under(harness.quarantine) == []
    assert harness.stop() == 0, harness.output()
