"""Start-up recovery (`Daemon._recover`) on a real job log and real files in tmp_path; no pool, no threads.

Each case sets up what a crash leaves behind (a row in some state, a file in `.ocrd/work/<job id>/`)
and checks that recovery finishes it the way DESIGN.md section 3 says.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ocrd.config.load import config_from_mapping
from ocrd.service.daemon import Daemon
from ocrd.errors import Reason
from ocrd.inbox.watch import work_root
from ocrd.jobs.log import JobLog
from ocrd.jobs.rows import JobRow, JobState

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
DATA = b"\x89PNG\r\n\x1a\n pretend image bytes"


def _daemon(tmp_path: Path, **overrides) -> Daemon:
    cfg = config_from_mapping(
        {"inboxes": [{"name": "scans", "path": "inbox"}], "workers": {"count": 1, "intra_op_threads": 1}, **overrides},
        tmp_path,
    )
    daemon = Daemon(cfg)
    daemon.joblog = JobLog(tmp_path / "jobs.db", clock=lambda: T0, max_attempts=cfg.max_attempts)
    return daemon


@pytest.fixture
def daemon(tmp_path):
    d = _daemon(tmp_path)
    yield d
    d.joblog.close()


def _claimed(daemon: Daemon, job_id: str, rel_path: str) -> Path:
    """A file as the claim leaves it: `<inbox>/.ocrd/work/<job_id>/<rel_path>`."""
    path = work_root(daemon.cfg.inboxes[0].path) / job_id / rel_path
    path.parent.mkdir(parents=True)
    path.write_bytes(DATA)
    return path


def _row(daemon: Daemon, job_id: str, rel_path: str, *, with_file: bool = True) -> tuple[JobRow, Path]:
    if with_file:
        work_path = _claimed(daemon, job_id, rel_path)
    else:
        work_path = work_root(daemon.cfg.inboxes[0].path) / job_id / rel_path
    row = daemon.joblog.add_queued("scans", rel_path, work_path, len(DATA), "ab" * 32, job_id=job_id)
    return row, work_path


def _done(daemon: Daemon, job_id: str) -> None:
    daemon.joblog.start(job_id, "x")
    daemon.joblog.finish_done(job_id, {"pages": 1, "lines": 1})


def test_done_row_with_leftover_file_is_archived(daemon):
    _, work_path = _row(daemon, "J1", "a/scan.jpg")
    _done(daemon, "J1")
    daemon._recover()
    archived = daemon.cfg.archive / "scans" / "a" / "scan.jpg"
    assert archived.read_bytes() == DATA
    assert not work_path.exists() and not work_path.parent.exists()
    assert daemon.joblog.get("J1").state == JobState.DONE


def test_duplicate_row_with_leftover_file_is_archived_beside_the_first(daemon):
    _row(daemon, "J1", "scan.jpg", with_file=False)
    _done(daemon, "J1")
    (daemon.cfg.archive / "scans").mkdir(parents=True)
    (daemon.cfg.archive / "scans" / "scan.jpg").write_bytes(DATA)
    _, work_path = _row(daemon, "J2", "scan.jpg")
    daemon.joblog.mark_duplicate("J2", "J1")
    daemon._recover()
    assert (daemon.cfg.archive / "scans" / "scan~1.jpg").read_bytes() == DATA
    assert not work_path.exists()


def test_quarantined_row_with_leftover_file_is_moved_with_a_reason_file(daemon):
    _, work_path = _row(daemon, "J1", "b/bad.png")
    daemon.joblog.quarantine("J1", Reason.TRUNCATED, "the file ends early")
    daemon._recover()
    placed = daemon.cfg.quarantine / "scans" / "b" / "bad.png"
    assert placed.read_bytes() == DATA
    reason = json.loads((placed.parent / "bad.png.reason.json").read_text(encoding="utf-8"))
    assert (reason["job_id"], reason["reason"], reason["message"]) == ("J1", "truncated", "the file ends early")
    assert not work_path.exists()


def test_running_row_below_max_attempts_is_requeued_and_its_file_stays(daemon):
    _, work_path = _row(daemon, "J1", "scan.jpg")
    daemon.joblog.start("J1", "scan")
    daemon._recover()
    row = daemon.joblog.get("J1")
    assert (row.state, row.reason, row.attempts, row.stem) == (JobState.QUEUED, "interrupted", 1, "scan")
    assert work_path.read_bytes() == DATA
    assert not daemon.cfg.quarantine.exists() or not any(daemon.cfg.quarantine.rglob("*"))


def test_running_row_at_max_attempts_is_quarantined_as_interrupted(tmp_path):
    daemon = _daemon(tmp_path, max_attempts=2)
    try:
        _, work_path = _row(daemon, "J1", "c/loop.jpg")
        daemon.joblog.start("J1", "loop")
        daemon.joblog.finish_failed("J1", Reason.WORKER_CRASHED, "died", retry_at=T0)  # back to queued
        daemon.joblog.start("J1", "loop")  # attempt 2 of 2, then the daemon dies
        daemon._recover()
        row = daemon.joblog.get("J1")
        assert (row.state, row.reason, row.attempts) == (JobState.QUARANTINED, "interrupted", 2)
        placed = daemon.cfg.quarantine / "scans" / "c" / "loop.jpg"
        assert placed.read_bytes() == DATA
        reason = json.loads((placed.parent / "loop.jpg.reason.json").read_text(encoding="utf-8"))
        assert (reason["job_id"], reason["reason"], reason["attempts"]) == ("J1", "interrupted", 2)
        assert not work_path.exists()
    finally:
        daemon.joblog.close()


def test_orphan_work_file_without_a_row_gets_a_queued_row(daemon):
    work_path = _claimed(daemon, "J9", "sub/lost.jpg")
    daemon._recover()
    row = daemon.joblog.get("J9")
    assert row is not None
    assert (row.state, row.inbox, row.rel_path, row.size_bytes) == (JobState.QUEUED, "scans", "sub/lost.jpg", len(DATA))
    assert Path(row.work_path) == work_path and work_path.read_bytes() == DATA


def test_queued_row_with_its_file_is_left_alone(daemon):
    _, work_path = _row(daemon, "J1", "scan.jpg")
    daemon._recover()
    assert daemon.joblog.get("J1").state == JobState.QUEUED
    assert work_path.read_bytes() == DATA


def test_recovery_twice_changes_nothing_more(daemon):
    _row(daemon, "J1", "a.jpg")
    _done(daemon, "J1")
    _row(daemon, "J2", "b.jpg")
    daemon.joblog.quarantine("J2", Reason.CORRUPT, "damaged")
    daemon._recover()
    root = daemon.cfg.archive.parent
    snapshot = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "jobs.db" not in p.name)
    daemon._recover()
    again = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "jobs.db" not in p.name)
    assert again == snapshot
    assert [p.name for p in (daemon.cfg.archive / "scans").iterdir()] == ["a.jpg"]


def test_interrupted_job_loses_its_half_written_temp_files_and_nothing_else(daemon):
    _row(daemon, "J1", "d/scan.jpg")
    daemon.joblog.start("J1", "scan")
    out_dir = daemon.cfg.outbox / "scans" / "d"
    out_dir.mkdir(parents=True)
    stale = [".scan.json.0a1b2c3d.tmp", ".scan.vis.jpg.deadbeef.tmp", ".scan.p002.vis.png.00ff00ff.tmp"]
    kept = [
        "scan~1.json",  # another job's result
        ".scan~1.json.0a1b2c3d.tmp",  # another job's temp
        ".scanner.txt.0a1b2c3d.tmp",  # a stem that only starts the same
        "scan.json",  # a finished result of this job stays (the retry replaces it atomically)
        ".scan.json.notahex.tmp",
    ]
    for name in stale + kept:
        (out_dir / name).write_text("x", encoding="utf-8")
    daemon._recover()
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(kept)


def test_admit_records_a_claimed_file_it_cannot_hash(daemon, monkeypatch):
    inbox = daemon.cfg.inboxes[0]
    dropped = inbox.path / "sub" / "locked.jpg"
    dropped.parent.mkdir(parents=True)
    dropped.write_bytes(DATA)

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("ocrd.service.admission.file_sha256", unreadable)
    daemon._admission.admit(daemon.joblog, inbox, dropped)
    (row,) = daemon.joblog.list_jobs(limit=None)
    assert (row.state, row.rel_path, row.sha256, row.size_bytes) == (JobState.QUEUED, "sub/locked.jpg", None, len(DATA))
    assert Path(row.work_path).read_bytes() == DATA and not dropped.exists()


def test_admit_keeps_a_claim_whose_row_cannot_be_written_yet_and_records_it_later(daemon, monkeypatch):
    """Job log locked by another process: the claimed file must get its row once the lock is gone,
    not sit in work until the next start (issue 7, faults)."""
    from ocrd.jobs.rows import JobLogBusy

    inbox = daemon.cfg.inboxes[0]
    dropped = inbox.path / "sub" / "busy.jpg"
    dropped.parent.mkdir(parents=True)
    dropped.write_bytes(DATA)
    real_add = daemon.joblog.add_queued
    calls = []

    def locked(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise JobLogBusy("job log busy: database is locked")
        return real_add(*args, **kwargs)

    monkeypatch.setattr(daemon.joblog, "add_queued", locked)
    assert daemon._admission.admit(daemon.joblog, inbox, dropped) is False
    assert daemon.joblog.list_jobs(limit=None) == [] and not dropped.exists()
    assert daemon._admission.record_unrecorded(daemon.joblog) is True
    (row,) = daemon.joblog.list_jobs(limit=None)
    assert (row.state, row.rel_path) == (JobState.QUEUED, "sub/busy.jpg")
    assert Path(row.work_path).read_bytes() == DATA


def test_a_claim_the_job_log_refuses_does_not_hold_up_the_files_after_it(daemon, monkeypatch):
    """Not a locked log but this one row (a value SQLite will not store): it is logged and left in work."""
    from structlog.testing import capture_logs

    inbox = daemon.cfg.inboxes[0]
    for name in ("poison.jpg", "next.jpg"):
        (inbox.path / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox.path / name).write_bytes(DATA)
    real_add = daemon.joblog.add_queued

    def refuse_poison(inbox_name, rel_path, *args, **kwargs):
        if rel_path == "poison.jpg":
            raise UnicodeEncodeError("utf-8", rel_path, 0, 1, "surrogates not allowed")
        return real_add(inbox_name, rel_path, *args, **kwargs)

    monkeypatch.setattr(daemon.joblog, "add_queued", refuse_poison)
    with capture_logs() as logs:
        assert daemon._admission.admit(daemon.joblog, inbox, inbox.path / "poison.jpg") is True
        assert daemon._admission.admit(daemon.joblog, inbox, inbox.path / "next.jpg") is True
    assert [row.rel_path for row in daemon.joblog.list_jobs(limit=None)] == ["next.jpg"]
    (failed,) = [e for e in logs if e["event"] == "job_record_failed"]
    assert Path(failed["work_path"]).read_bytes() == DATA  # kept for the next start, not lost


def test_one_claim_that_cannot_be_recovered_does_not_stop_the_start(daemon, monkeypatch):
    _row(daemon, "J1", "first.jpg")
    _done(daemon, "J1")
    _claimed(daemon, "J2", "second.jpg")  # crashed before its row

    def broken_archive(cfg, row, inbox, work_path):
        raise PermissionError(13, "Permission denied", str(daemon.cfg.archive))

    monkeypatch.setattr("ocrd.service.recovery.dispose_original", broken_archive)
    daemon._recover()
    assert daemon.joblog.get("J2").state == JobState.QUEUED  # the claim after the broken one got its row
    assert (work_root(daemon.cfg.inboxes[0].path) / "J1" / "first.jpg").exists()  # kept for the next start


def test_a_job_handed_to_the_pool_but_never_marked_running_has_its_temp_files_removed(daemon):
    # The worker took it and began writing before the main loop could mark it running; then the crash.
    _row(daemon, "J1", "sub/scan.jpg")
    daemon.joblog.assign_stem("J1", "scan")
    out_dir = daemon.cfg.outbox / "scans" / "sub"
    out_dir.mkdir(parents=True)
    temp = out_dir / ".scan.txt.0123abcd.tmp"
    temp.write_text("half")
    partial = out_dir / "scan.vis.jpg"  # a finished part of the set: the retry rewrites it under the same stem
    partial.write_bytes(b"jpg")
    daemon._recover()
    row = daemon.joblog.get("J1")
    assert (row.state, row.attempts, row.stem) == (JobState.QUEUED, 0, "scan")
    assert not temp.exists()
    assert partial.exists()


def test_a_quarantined_job_leaves_no_partial_output_set(tmp_path):
    daemon = _daemon(tmp_path, max_attempts=1)
    try:
        _row(daemon, "J1", "scan.jpg")
        daemon.joblog.start("J1", "scan")  # attempt 1 of 1, killed while writing its outputs
        out_dir = daemon.cfg.outbox / "scans"
        out_dir.mkdir(parents=True)
        for name in ("scan.txt", "scan.vis.jpg", ".scan.json.89abcdef.tmp"):
            (out_dir / name).write_bytes(b"x")
        other = out_dir / "scanner.txt"  # another file's output: not ours, kept
        other.write_bytes(b"y")
        daemon._recover()
        assert daemon.joblog.get("J1").state == JobState.QUARANTINED
        assert sorted(p.name for p in out_dir.iterdir()) == ["scanner.txt"]
    finally:
        daemon.joblog.close()
