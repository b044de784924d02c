"""Unit tests for the job log: schema and migrations, connection pragmas, the state machine, queries and
their plans. Real SQLite files in tmp_path, an injected clock, no sleeps."""

from __future__ import annotations

import json
import pickle
import sqlite3
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ocrd.config.load import default_config
from ocrd.errors import OcrdError, Reason, UnavailableError
from ocrd.jobs.log import JobLog
from ocrd.jobs.queries import FIND_DONE_BY_SHA256_SQL, STATUS_COUNTS_SQL, list_jobs_query
from ocrd.jobs.rows import (
    COLUMNS,
    InvalidTransition,
    JobLogBusy,
    JobNotFound,
    JobRow,
    JobState,
    ReadOnlyJobLog,
    format_utc,
    parse_utc,
)
from ocrd.jobs.schema import SCHEMA_VERSION

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

DESIGN_COLUMNS = [
    "id", "inbox", "rel_path", "sha256", "size_bytes", "state", "attempts", "reason", "error",
    "created_at", "started_at", "finished_at", "wait_ms", "decode_ms", "detect_ms", "recognize_ms",
    "total_ms", "pages", "lines", "mean_confidence", "outputs", "worker_pid", "ocrd_version", "model_set",
]  # fmt: skip
DAEMON_COLUMNS = ["work_path", "stem", "duplicate_of", "not_before"]


class FakeClock:
    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@pytest.fixture
def log(db_path: Path, clock: FakeClock):
    with JobLog(db_path, clock=clock, max_attempts=3) as job_log:
        yield job_log


def add(log: JobLog, name: str = "scan.jpg", inbox: str = "scans", **kwargs) -> JobRow:
    return log.add_queued(inbox, f"a/{name}", f"/in/.ocrd/work/x/{name}", 1234, **kwargs)


def outcome(job_id: str, **overrides) -> dict:
    fields = {
        "job_id": job_id, "sha256": "ab" * 32, "size_bytes": 1234, "format": "jpeg", "pages": 2, "lines": 17,
        "mean_confidence": 0.93, "decode_ms": 5.5, "detect_ms": 40.25, "classify_ms": 3.0, "recognize_ms": 60.0,
        "total_ms": 110.0, "outputs": ("/out/a/scan.json", "/out/a/scan.txt"), "worker_pid": 4242,
        "ocrd_version": "0.1.0", "model_set": "ppocrv6-small", "peak_rss_mb": 412.5,
    }  # fmt: skip
    fields.update(overrides)
    return fields


def raw(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(db_path)


# --------------------------------------------------------------------------- schema and connection


def test_empty_file_migrates_to_the_current_version_with_the_design_columns(log, db_path):
    assert SCHEMA_VERSION == 3  # v2: submitted_by (the API token of an upload); v3: peak_rss_mb
    assert log.schema_version == 3
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        cols = [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
        indexes = {r[1]: [c[2] for c in conn.execute(f"PRAGMA index_info({r[1]})")]
                   for r in conn.execute("PRAGMA index_list(jobs)")}  # fmt: skip
    assert set(DESIGN_COLUMNS + DAEMON_COLUMNS) <= set(cols)
    assert set(cols) == set(COLUMNS)
    assert indexes["jobs_state_created_at"] == ["state", "created_at"]
    assert indexes["jobs_sha256"] == ["sha256"]
    assert indexes["jobs_inbox_rel_path"] == ["inbox", "rel_path"]
    assert indexes["jobs_submitted_by_created_at"] == ["submitted_by", "created_at"]


def test_a_version_1_log_migrates_to_the_current_version_and_keeps_its_rows(db_path, clock):
    from ocrd.jobs.schema import MIGRATIONS

    with raw(db_path) as conn:  # a job log as the first release wrote it
        import sqlite_utils

        MIGRATIONS[0](sqlite_utils.Database(conn))
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO jobs (id, inbox, rel_path, size_bytes, state, created_at, work_path)"
                     " VALUES ('j1', 'scans', 'a.jpg', 3, 'queued', '2026-01-01T00:00:00.000Z', '/w/a.jpg')")  # fmt: skip
    with JobLog(db_path, clock=clock) as log:
        assert log.schema_version == 3
        assert log.get("j1").submitted_by is None and log.get("j1").peak_rss_mb is None
        mine = log.add_queued("scans", "b.jpg", "/w/b.jpg", 5, submitted_by="scanner")
        assert [r.id for r in log.list_jobs(submitted_by="scanner")] == [mine.id]

def test_reopening_is_idempotent_and_keeps_rows(db_path, clock):
    with JobLog(db_path, clock=clock) as first:
        job = add(first)
    with JobLog(db_path, clock=clock) as second:
        assert second.schema_version == SCHEMA_VERSION
        assert second.get(job.id) == job
    with raw(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'jobs'").fetchone()[0] == 1


def test_newer_schema_is_refused(db_path):
    with raw(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(UnavailableError, match="newer"):
        JobLog(db_path)


def test_writer_pragmas(log):
    assert log.pragma("journal_mode") == "wal"
    assert log.pragma("synchronous") == 2  # FULL
    assert log.pragma("busy_timeout") == 5000
    assert log.pragma("foreign_keys") == 1
    assert log.pragma("journal_size_limit") == 8 * 1024 * 1024
    with pytest.raises(ValueError):
        log.pragma("user_version; DROP TABLE jobs")


def test_wal_persists_in_the_file(log, db_path):
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_state_check_constraint(log, db_path):
    job = add(log)
    with raw(db_path) as conn, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE jobs SET state = 'lost' WHERE id = ?", [job.id])


def test_missing_directory_is_unavailable(tmp_path):
    with pytest.raises(UnavailableError, match="cannot open"):
        JobLog(tmp_path / "nope" / "jobs.db")


def test_for_config_uses_state_dir_and_max_attempts(tmp_path, monkeypatch, clock):
    monkeypatch.chdir(tmp_path)
    cfg = default_config()
    cfg.state_dir.mkdir(parents=True)
    with JobLog.for_config(cfg, clock=clock) as job_log:
        assert job_log.path == cfg.state_dir / "jobs.db"
        assert job_log.max_attempts == cfg.max_attempts
    with JobLog.for_config(cfg, readonly=True) as reader:
        assert reader.readonly


# --------------------------------------------------------------------------- transitions


def test_add_queued(log, clock):
    job = add(log, sha256="cd" * 32)
    assert job.state is JobState.QUEUED
    assert job.attempts == 0
    assert job.created_at == "2025-03-01T12:00:00.000Z"
    assert job.work_path == "/in/.ocrd/work/x/scan.jpg"
    assert job.size_bytes == 1234 and job.sha256 == "cd" * 32
    assert job.outputs == () and job.started_at is None and job.stem is None
    assert len(job.id) == 26


def test_add_queued_with_the_claims_job_id(log):
    job = add(log, job_id="01JABCDEFGHJKMNPQRSTVWXYZ0")
    assert job.id == "01JABCDEFGHJKMNPQRSTVWXYZ0"
    with pytest.raises(InvalidTransition, match="already exists"):
        add(log, job_id="01JABCDEFGHJKMNPQRSTVWXYZ0")


def test_start_sets_running_attempts_and_wait_ms_from_the_clock(log, clock):
    job = add(log)
    clock.advance(seconds=2, milliseconds=345)
    started = log.start(job.id, "scan", worker_pid=77)
    assert started.state is JobState.RUNNING
    assert started.attempts == 1
    assert started.started_at == "2025-03-01T12:00:02.345Z"
    assert started.wait_ms == 2345
    assert started.stem == "scan"
    assert started.worker_pid == 77


def test_finish_done_stores_the_outcome(log, clock):
    job = add(log)
    log.start(job.id, "scan")
    clock.advance(seconds=1)
    done = log.finish_done(job.id, outcome(job.id))
    assert done.state is JobState.DONE
    assert done.finished_at == "2025-03-01T12:00:01.000Z"
    assert (done.pages, done.lines, done.mean_confidence) == (2, 17, 0.93)
    assert (done.decode_ms, done.detect_ms, done.classify_ms, done.recognize_ms, done.total_ms) == (
        5.5, 40.25, 3.0, 60.0, 110.0,
    )  # fmt: skip
    assert done.outputs == ("/out/a/scan.json", "/out/a/scan.txt")
    assert (done.sha256, done.worker_pid, done.ocrd_version, done.model_set) == (
        "ab" * 32, 4242, "0.1.0", "ppocrv6-small",
    )  # fmt: skip
    assert done.reason is None and done.error is None
    assert done.peak_rss_mb == 412.5


def test_outputs_are_a_json_list_in_the_table(log, db_path):
    job = add(log)
    log.start(job.id, "scan")
    log.finish_done(job.id, outcome(job.id))
    with raw(db_path) as conn:
        text = conn.execute("SELECT outputs FROM jobs WHERE id = ?", [job.id]).fetchone()[0]
    assert json.loads(text) == ["/out/a/scan.json", "/out/a/scan.txt"]


def test_finish_done_accepts_a_pipeline_outcome_dict(log):
    # The workers' Outcome, as the daemon passes it (asdict + engine identity); ocrd.jobs.records is plain data.
    from ocrd.jobs.records import Outcome

    job = add(log)
    log.start(job.id, "scan")
    result = Outcome(job.id, "ef" * 32, 9, "png", 1, 0, None, 1.0, 2.0, 0.5, 3.0, 7.0, ("/o/a.json",), 5)
    done = log.finish_done(job.id, asdict(result) | {"ocrd_version": "0.1.0", "model_set": "m"})
    assert done.mean_confidence is None and done.lines == 0 and done.outputs == ("/o/a.json",)


def test_a_done_job_that_left_its_pdf_out_says_why(log):
    # The worker's Outcome carries the reason an output was omitted (an encrypted input PDF): the row is
    # done, its reason and error say what is missing.
    from ocrd.jobs.records import Outcome

    job = add(log)
    log.start(job.id, "scan")
    result = Outcome(job.id, "ef" * 32, 9, "pdf", 1, 3, 0.9, 1.0, 2.0, 0.5, 3.0, 7.0, ("/o/a.json",), 5,
                     reason="pdf_encrypted", error="the input PDF is encrypted")  # fmt: skip
    done = log.finish_done(job.id, asdict(result) | {"ocrd_version": "0.1.0", "model_set": "m"})
    assert done.state is JobState.DONE
    assert (done.reason, done.error) == ("pdf_encrypted", "the input PDF is encrypted")
    assert Reason(done.reason) is Reason.PDF_ENCRYPTED


def test_pipeline_outcome_fields_are_all_accepted():
    from dataclasses import fields as dc_fields

    from ocrd.jobs.records import Outcome
    from ocrd.jobs.rows import _DONE_IGNORED, DONE_FIELDS

    assert {f.name for f in dc_fields(Outcome)} <= DONE_FIELDS | _DONE_IGNORED


def test_finish_done_refuses_unknown_fields_and_another_jobs_outcome(log):
    job = add(log)
    log.start(job.id, "scan")
    with pytest.raises(ValueError, match="unknown"):
        log.finish_done(job.id, {"pagez": 1})
    with pytest.raises(ValueError, match="not"):
        log.finish_done(job.id, outcome("SOMEONEELSE"))
    assert log.get(job.id).state is JobState.RUNNING  # nothing half-applied


def test_failure_with_retry_requeues_with_not_before(log, clock):
    job = add(log)
    log.start(job.id, "scan")
    retry_at = clock.now + timedelta(seconds=30)
    row = log.finish_failed(job.id, Reason.OUTPUT_FAILED, "disk full", retry_at=retry_at)
    assert row.state is JobState.QUEUED
    assert row.not_before == "2025-03-01T12:00:30.000Z"
    assert (row.reason, row.error) == ("output_failed", "disk full")
    assert row.finished_at is None
    assert row.attempts == 1


def test_next_queued_honours_not_before(log, clock):
    retried = add(log, "a.jpg")
    clock.advance(seconds=1)
    fresh = add(log, "b.jpg")
    log.start(retried.id, "a")
    log.finish_failed(retried.id, Reason.OUTPUT_FAILED, "eacces", retry_at=clock.now + timedelta(seconds=10))
    assert [r.id for r in log.next_queued(10, clock.now)] == [fresh.id]
    assert [r.id for r in log.next_queued(10, clock.now + timedelta(seconds=9.999))] == [fresh.id]
    assert [r.id for r in log.next_queued(10, clock.now + timedelta(seconds=10))] == [retried.id, fresh.id]
    assert [r.id for r in log.next_queued(1, clock.now + timedelta(seconds=10))] == [retried.id]
    clock.advance(seconds=10)
    assert [r.id for r in log.next_queued(10)] == [retried.id, fresh.id]  # default: the clock
    started = log.start(retried.id, "a")
    assert started.not_before is None and started.attempts == 2


def test_next_queued_is_oldest_first_and_skips_other_states(log, clock):
    ids = []
    for i in range(5):
        ids.append(add(log, f"{i}.jpg").id)
        clock.advance(milliseconds=1)
    log.start(ids[0], "0")
    assert [r.id for r in log.next_queued(3, clock.now)] == ids[1:4]


def test_attempts_exhausted_fails(log, clock):
    job = add(log)
    for attempt in range(1, 4):
        row = log.start(job.id, "scan")
        assert row.attempts == attempt
        clock.advance(seconds=1)
        row = log.finish_failed(job.id, Reason.OUTPUT_FAILED, f"try {attempt}", retry_at=clock.now)
    assert row.state is JobState.FAILED
    assert row.attempts == 3
    assert row.finished_at == format_utc(clock.now)
    assert row.not_before is None and row.error == "try 3"


def test_failure_without_retry_fails_at_once(log):
    job = add(log)
    log.start(job.id, "scan")
    row = log.finish_failed(job.id, "internal_error", "boom", retry_at=None)
    assert row.state is JobState.FAILED and row.reason == "internal_error"


def test_unknown_reason_code_is_refused(log):
    job = add(log)
    log.start(job.id, "scan")
    with pytest.raises(ValueError):
        log.finish_failed(job.id, "it_broke", "boom", retry_at=None)
    with pytest.raises(ValueError):
        log.quarantine(job.id, "it_broke", "boom")


@pytest.mark.parametrize("start_first", [False, True])
def test_quarantine_from_queued_or_running(log, clock, start_first):
    job = add(log)
    if start_first:
        log.start(job.id, "scan")
    clock.advance(seconds=3)
    row = log.quarantine(job.id, Reason.TRUNCATED, "the JPEG ends early")
    assert row.state is JobState.QUARANTINED
    assert (row.reason, row.error) == ("truncated", "the JPEG ends early")
    assert row.finished_at == "2025-03-01T12:00:03.000Z"


def test_duplicate_lookup_and_mark(log, clock):
    first = add(log, "a.jpg")
    log.start(first.id, "a")
    log.finish_done(first.id, outcome(first.id, sha256="11" * 32))
    clock.advance(seconds=1)
    later = add(log, "b.jpg")
    log.start(later.id, "b")
    log.finish_done(later.id, outcome(later.id, sha256="11" * 32))
    assert log.find_done_by_sha256("11" * 32).id == first.id  # the earliest
    assert log.find_done_by_sha256("22" * 32) is None

    again = add(log, "c.jpg", sha256="11" * 32)
    assert log.find_done_by_sha256("11" * 32).id == first.id  # queued rows do not count
    dup = log.mark_duplicate(again.id, first.id)
    assert dup.state is JobState.DUPLICATE and dup.duplicate_of == first.id
    assert dup.finished_at is not None


def test_mark_duplicate_fills_sha256_and_checks_it(log):
    first = add(log, "a.jpg")
    log.start(first.id, "a")
    log.finish_done(first.id, outcome(first.id, sha256="11" * 32))
    unhashed = add(log, "b.jpg")
    assert log.mark_duplicate(unhashed.id, first.id).sha256 == "11" * 32
    other = add(log, "c.jpg", sha256="99" * 32)
    with pytest.raises(InvalidTransition, match="sha256 differs"):
        log.mark_duplicate(other.id, first.id)


def test_mark_duplicate_needs_a_done_original(log):
    first, second = add(log, "a.jpg"), add(log, "b.jpg")
    with pytest.raises(InvalidTransition, match="must be a done job"):
        log.mark_duplicate(second.id, first.id)
    with pytest.raises(InvalidTransition, match="itself"):
        log.mark_duplicate(first.id, first.id)
    with pytest.raises(JobNotFound):
        log.mark_duplicate(first.id, "NOPE")


def test_recover_interrupted_requeues_every_running_row(log, clock):
    a, b, c = add(log, "a.jpg"), add(log, "b.jpg"), add(log, "c.jpg")
    log.start(a.id, "a")
    log.start(c.id, "c")
    recovered = log.recover_interrupted()
    assert [r.id for r in recovered] == [a.id, c.id]
    for row in recovered:
        assert row.state is JobState.QUEUED
        assert row.attempts == 1  # the interrupted attempt counts
        assert row.reason == "interrupted"
        assert row.stem is not None  # the retry rewrites the same outputs
    assert log.get(b.id).state is JobState.QUEUED and log.get(b.id).reason is None
    assert log.recover_interrupted() == []


def test_recovery_then_quarantine_after_max_attempts(log):
    job = add(log)
    for _ in range(3):
        log.start(job.id, "scan")
        (row,) = log.recover_interrupted()
    assert row.attempts == log.max_attempts
    final = log.quarantine(job.id, Reason.INTERRUPTED, "interrupted 3 times")
    assert final.state is JobState.QUARANTINED


def test_retry_must_reuse_the_stem(log):
    job = add(log)
    log.start(job.id, "scan")
    log.recover_interrupted()
    with pytest.raises(InvalidTransition, match="reuse"):
        log.start(job.id, "scan-1")
    assert log.start(job.id, "scan").attempts == 2


def test_requeue_one(log):
    job = add(log)
    log.start(job.id, "scan")
    log.finish_failed(job.id, Reason.TIMEOUT, "slow", retry_at=None)
    row = log.requeue(job.id)
    assert row.state is JobState.QUEUED
    assert row.attempts == 0
    assert row.finished_at is None and row.not_before is None and row.reason is None and row.error is None
    assert row.stem == "scan" and row.work_path == job.work_path


def test_requeue_state(log):
    jobs = [add(log, f"{i}.jpg") for i in range(5)]
    for job in jobs[:3]:
        log.quarantine(job.id, Reason.CORRUPT, "bad")
    log.start(jobs[3].id, "x")
    log.finish_failed(jobs[3].id, Reason.TIMEOUT, "slow", retry_at=None)
    assert log.requeue_state("quarantined") == 3
    assert log.requeue_state(JobState.QUARANTINED) == 0
    assert log.requeue_state(JobState.FAILED) == 1
    assert {r.state for r in log.list_jobs()} == {JobState.QUEUED}
    with pytest.raises(InvalidTransition):
        log.requeue_state(JobState.DONE)
    with pytest.raises(ValueError):
        log.requeue_state("bogus")


ILLEGAL = [
    # (how far to drive the job first, the illegal call)
    ("queued", lambda log, j: log.finish_done(j, {})),
    ("queued", lambda log, j: log.finish_failed(j, Reason.TIMEOUT, "x", retry_at=None)),
    ("queued", lambda log, j: log.requeue(j)),
    ("running", lambda log, j: log.start(j, "s")),
    ("running", lambda log, j: log.requeue(j)),
    ("done", lambda log, j: log.start(j, "s")),
    ("done", lambda log, j: log.quarantine(j, Reason.CORRUPT, "x")),
    ("done", lambda log, j: log.finish_done(j, {})),
    ("done", lambda log, j: log.requeue(j)),
    ("failed", lambda log, j: log.finish_failed(j, Reason.TIMEOUT, "x", retry_at=None)),
    ("failed", lambda log, j: log.start(j, "s")),
    ("quarantined", lambda log, j: log.quarantine(j, Reason.CORRUPT, "x")),
    ("quarantined", lambda log, j: log.start(j, "s")),
]


def drive(log: JobLog, state: str) -> JobRow:
    job = add(log)
    if state != "queued" and state != "quarantined":
        log.start(job.id, "s")
    if state == "done":
        log.finish_done(job.id, {})
    elif state == "failed":
        log.finish_failed(job.id, Reason.TIMEOUT, "x", retry_at=None)
    elif state == "quarantined":
        log.quarantine(job.id, Reason.CORRUPT, "x")
    return log.get(job.id)


@pytest.mark.parametrize(("state", "call"), ILLEGAL)
def test_illegal_transitions_raise_and_change_nothing(log, state, call):
    before = drive(log, state)
    assert before.state == state
    with pytest.raises(InvalidTransition) as info:
        call(log, before.id)
    assert isinstance(info.value, OcrdError)
    assert info.value.state == state and before.id in str(info.value)
    assert log.get(before.id) == before


def test_unknown_job_id(log):
    assert log.get("NOPE") is None
    with pytest.raises(JobNotFound, match="NOPE"):
        log.start("NOPE", "s")


def test_errors_pickle():
    err = pickle.loads(pickle.dumps(InvalidTransition("J", "start", "done", "msg")))
    assert (err.job_id, err.action, err.state, str(err)) == ("J", "start", "done", "msg")
    assert pickle.loads(pickle.dumps(JobNotFound("J"))).job_id == "J"


def test_timestamps_are_utc_with_ms_and_z():
    assert format_utc(datetime(2025, 1, 2, 4, 5, 6, 789000, tzinfo=timezone(timedelta(hours=2)))) == (
        "2025-01-02T02:05:06.789Z"
    )
    assert parse_utc("2025-01-02T02:05:06.789Z") == datetime(2025, 1, 2, 2, 5, 6, 789000, tzinfo=UTC)
    with pytest.raises(ValueError):
        format_utc(datetime(2025, 1, 1))


# --------------------------------------------------------------------------- queries


def test_list_jobs_filters_newest_first(log, clock):
    rows = []
    for i in range(6):
        rows.append(add(log, f"{i}.jpg", inbox="scans" if i % 2 == 0 else "fax"))
        clock.advance(minutes=1)
    log.quarantine(rows[1].id, Reason.CORRUPT, "bad")
    log.quarantine(rows[4].id, Reason.CORRUPT, "bad")

    assert [r.id for r in log.list_jobs()] == [r.id for r in reversed(rows)]
    assert [r.id for r in log.list_jobs(limit=2)] == [rows[5].id, rows[4].id]
    assert [r.id for r in log.list_jobs(state="quarantined")] == [rows[4].id, rows[1].id]
    assert [r.id for r in log.list_jobs(inbox="fax")] == [rows[5].id, rows[3].id, rows[1].id]
    assert [r.id for r in log.list_jobs(state=JobState.QUARANTINED, inbox="scans")] == [rows[4].id]
    since = T0 + timedelta(minutes=3)
    assert [r.id for r in log.list_jobs(since=since)] == [rows[5].id, rows[4].id, rows[3].id]
    assert [r.id for r in log.list_jobs(since=format_utc(since), inbox="scans")] == [rows[4].id]
    assert len(log.list_jobs(limit=None)) == 6
    assert log.list_jobs(limit=0) == []


def test_find_by_path(log, clock):
    first = add(log, "a.jpg")
    clock.advance(seconds=1)
    add(log, "b.jpg")
    again = add(log, "a.jpg")
    add(log, "a.jpg", inbox="fax")
    assert [r.id for r in log.find_by_path("scans", "a/a.jpg")] == [first.id, again.id]
    assert log.find_by_path("scans", "a/zzz.jpg") == []


def test_list_jobs_breaks_ties_within_a_millisecond_by_insertion(log):
    rows = [add(log, f"{i}.jpg") for i in range(4)]  # the clock does not move
    assert [r.id for r in log.list_jobs()] == [r.id for r in reversed(rows)]
    assert [r.id for r in log.next_queued(10)] == [r.id for r in rows]


def test_status_figures(log, clock):
    a, b, c, d, e = (add(log, f"{i}.jpg") for i in range(5))
    clock.advance(hours=1)
    log.start(a.id, "a")
    log.finish_done(a.id, {})  # finished exactly an hour before "now" below: counts
    clock.advance(minutes=30)
    log.start(b.id, "b")
    log.finish_done(b.id, {})
    log.start(c.id, "c")
    log.quarantine(d.id, Reason.CORRUPT, "bad")
    status = log.status(clock.now + timedelta(minutes=30))
    assert status["counts"] == {"queued": 1, "running": 1, "done": 2, "failed": 0, "quarantined": 1, "duplicate": 0}
    assert status["total"] == 5
    assert status["done_last_hour"] == 2
    assert status["oldest_queued_created_at"] == e.created_at
    assert log.status(clock.now + timedelta(minutes=31))["done_last_hour"] == 1
    json.dumps(status)


def test_status_of_an_empty_log(log):
    status = log.status()
    assert status["total"] == 0 and status["oldest_queued_created_at"] is None
    assert set(status["counts"]) == {s.value for s in JobState}


def test_as_dict_is_json_ready(log):
    row = add(log)
    data = row.as_dict()
    assert list(data) == list(COLUMNS)
    assert json.loads(json.dumps(data))["state"] == "queued"


# --------------------------------------------------------------------------- readers


def test_readonly_reads_while_a_write_transaction_is_open(log, db_path):
    committed = add(log, "a.jpg")
    second_writer = JobLog(db_path, clock=lambda: T0)
    second_writer._db.conn.execute("PRAGMA busy_timeout = 0")  # fail at once instead of waiting 5 s
    writer = raw(db_path)
    writer.execute("PRAGMA busy_timeout = 0")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE jobs SET error = 'uncommitted' WHERE id = ?", [committed.id])
    try:
        with JobLog.open_readonly(db_path) as reader:
            assert [r.id for r in reader.list_jobs()] == [committed.id]
            assert reader.get(committed.id).error is None  # sees the last commit, not the open transaction
            assert reader.status()["total"] == 1
        # A second writer, by contrast, waits for the lock and then reports busy (a transient error).
        with pytest.raises(JobLogBusy):
            add(second_writer, "b.jpg")
    finally:
        writer.rollback()
        writer.close()
        second_writer.close()
    assert log.get(committed.id).error is None


def test_readonly_does_not_block_the_writer(log, db_path):
    add(log, "a.jpg")
    with JobLog.open_readonly(db_path) as reader:
        reader._db.conn.execute("BEGIN")  # a reader holding a snapshot open
        assert len(reader.list_jobs()) == 1
        add(log, "b.jpg")  # the writer commits regardless
        assert len(reader.list_jobs()) == 1  # the snapshot is stable
        reader._db.conn.execute("COMMIT")
        assert len(reader.list_jobs()) == 2


def test_readonly_refuses_writes(log, db_path):
    job = add(log)
    with JobLog.open_readonly(db_path) as reader:
        assert reader.readonly
        with pytest.raises(ReadOnlyJobLog):
            reader.start(job.id, "s")
        with pytest.raises(sqlite3.OperationalError):
            reader._db.conn.execute("DELETE FROM jobs")


def test_readonly_after_the_writer_closed(db_path, clock):
    with JobLog(db_path, clock=clock) as writer:
        add(writer)
    with JobLog.open_readonly(db_path) as reader:
        assert len(reader.list_jobs()) == 1


def test_readonly_of_a_missing_or_unmigrated_file(tmp_path):
    with pytest.raises(UnavailableError, match="no job log"):
        JobLog.open_readonly(tmp_path / "jobs.db")
    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(UnavailableError, match="schema version 0"):
        JobLog.open_readonly(tmp_path / "empty.db")
    assert not (tmp_path / "nope.db").exists()


# --------------------------------------------------------------------------- plans


def plan(log: JobLog, sql_params: tuple[str, list]) -> str:
    return " | ".join(log.explain(*sql_params))


def test_query_plans_use_the_indexes(log):
    assert "USING INDEX jobs_state_created_at (state=?)" in plan(log, list_jobs_query("failed", limit=50))
    failed_plan = plan(log, list_jobs_query("failed", limit=50))
    assert "TEMP B-TREE" not in failed_plan  # the index gives the order; LIMIT stops early
    assert "TEMP B-TREE" not in plan(log, list_jobs_query())
    assert "TEMP B-TREE" not in plan(log, list_jobs_query(inbox="scans"))
    assert "SCAN jobs USING COVERING INDEX" in plan(log, (STATUS_COUNTS_SQL, []))
    assert "USING INDEX jobs_sha256" in plan(log, (FIND_DONE_BY_SHA256_SQL, ["ab"]))


def test_100k_rows_keep_the_index_plans(log, db_path, clock):
    n = 100_000
    states = ["done"] * 90 + ["failed"] * 5 + ["quarantined"] * 3 + ["queued"] * 2
    base = T0
    rows = [
        (f"{i:026d}", f"inbox{i % 3}", f"a/{i}.jpg", f"{i % 20_000:064x}", 100, states[i % 100], 1,
         format_utc(base + timedelta(milliseconds=i)), f"/w/{i}")
        for i in range(n)
    ]  # fmt: skip
    with raw(db_path) as conn:
        conn.executemany(
            "INSERT INTO jobs (id, inbox, rel_path, sha256, size_bytes, state, attempts, created_at, work_path)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("UPDATE jobs SET finished_at = created_at WHERE state = 'done'")
    for analyzed in (False, True):
        failed_plan = plan(log, list_jobs_query("failed", limit=50))
        assert "USING INDEX jobs_state_created_at (state=?)" in failed_plan, failed_plan
        assert "TEMP B-TREE" not in failed_plan
        assert "USING INDEX jobs_sha256" in plan(log, (FIND_DONE_BY_SHA256_SQL, ["ab"]))
        assert "COVERING INDEX" in plan(log, (STATUS_COUNTS_SQL, []))
        with raw(db_path) as conn:
            conn.execute("ANALYZE")  # the second round: with statistics, as after PRAGMA optimize
    newest_failed = log.list_jobs(state="failed", limit=50)
    assert len(newest_failed) == 50
    assert newest_failed[0].id == f"{99_994:026d}"  # i % 100 in 90..94 is failed
    assert [r.created_at for r in newest_failed] == sorted((r.created_at for r in newest_failed), reverse=True)
    status = log.status(base + timedelta(milliseconds=n))
    assert status["total"] == n and status["counts"]["failed"] == 5_000
    assert log.find_done_by_sha256(f"{5:064x}").id == f"{5:026d}"
