"""When the daemon charges an attempt: only once a worker has taken the job, never while it waits in the pool.

The pool is replaced by one that hands out plain `concurrent.futures.Future`s the test moves along by hand
(running, finished, broken), so each step of a job's life is decided here, not by timing; the job log and the
claimed files are real.
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ocrd.config.load import config_from_mapping
from ocrd.service.daemon import Daemon
from ocrd.inbox.watch import claim
from ocrd.jobs.log import JobLog
from ocrd.jobs.rows import JobState
from ocrd.service.pipeline import Job

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


class HandPool:
    """Records each submitted job and returns a future nobody runs until the test says so."""

    capacity = 2  # one worker: two jobs in flight, as WorkerPool.capacity says

    def __init__(self) -> None:
        self.submitted: list[tuple[Job, Future]] = []

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        self.submitted.append((job, future))
        return future

    def future_of(self, job_id: str) -> Future:
        return next(f for j, f in reversed(self.submitted) if j.job_id == job_id)


@pytest.fixture
def daemon(tmp_path):
    cfg = config_from_mapping(
        {"inboxes": [{"name": "scans", "path": "inbox"}], "workers": {"count": 1, "intra_op_threads": 1}},
        tmp_path,
    )
    d = Daemon(cfg)
    d.joblog = JobLog(tmp_path / "jobs.db", clock=lambda: T0, max_attempts=cfg.max_attempts)
    d._pool = HandPool()
    inbox = cfg.inboxes[0].path
    inbox.mkdir(parents=True)
    for n in range(3):
        (inbox / f"f{n}.png").write_bytes(b"x" * (n + 1))  # different content: no duplicates
        work_path = claim(inbox, inbox / f"f{n}.png", f"J{n}")
        d.joblog.add_queued("scans", f"f{n}.png", work_path, n + 1, f"{n:064x}", job_id=f"J{n}")
    yield d
    d.joblog.close()


def _attempts(daemon: Daemon) -> dict[str, tuple[str, int]]:
    return {r.id: (str(r.state), r.attempts) for r in map(daemon.joblog.get, ["J0", "J1", "J2"])}


def test_jobs_waiting_in_the_pool_stay_queued_and_uncharged(daemon):
    daemon._dispatch.submit_queued(daemon.joblog, daemon._pool)
    daemon._dispatch.note_started(daemon.joblog)
    # one worker: up to two jobs handed out, none taken yet
    assert [j.job_id for j, _ in daemon._pool.submitted] == ["J0", "J1"]
    assert _attempts(daemon) == {"J0": ("queued", 0), "J1": ("queued", 0), "J2": ("queued", 0)}
    # ... but their output names are fixed already, before any worker can write under them
    assert [daemon.joblog.get(j).stem for j in ("J0", "J1", "J2")] == ["f0", "f1", None]

    daemon._pool.future_of("J0").set_running_or_notify_cancel()  # a worker took J0
    daemon._dispatch.note_started(daemon.joblog)
    assert _attempts(daemon) == {"J0": ("running", 1), "J1": ("queued", 0), "J2": ("queued", 0)}
    assert daemon.joblog.get("J0").stem == "f0"

    # The daemon dies here: recovery requeues the one a worker had, the waiting one was never charged.
    interrupted = daemon.joblog.recover_interrupted()
    assert [r.id for r in interrupted] == ["J0"]
    assert _attempts(daemon) == {"J0": ("queued", 1), "J1": ("queued", 0), "J2": ("queued", 0)}


def test_a_finished_job_is_charged_unless_the_pool_broke_before_any_worker_took_it(daemon, tmp_path):
    daemon._dispatch.submit_queued(daemon.joblog, daemon._pool)
    future = daemon._pool.future_of("J0")
    future.set_running_or_notify_cancel()
    future.set_exception(BrokenProcessPool("Unpicklable object from worker"))  # taken: charged
    # pebble's words when every worker died while none had a task: J1 was never read
    daemon._pool.future_of("J1").set_exception(BrokenProcessPool("All workers expired"))
    daemon._dispatch.collect_finished(daemon.joblog, daemon._pool)

    j0, j1 = daemon.joblog.get("J0"), daemon.joblog.get("J1")
    assert (j0.state, j0.attempts, j0.reason) == (JobState.QUEUED, 1, "worker_crashed")  # retry scheduled
    assert (j1.state, j1.attempts, j1.reason) == (JobState.QUEUED, 0, None)  # simply handed out again
    assert Path(j1.work_path).exists()

    daemon._dispatch.submit_queued(daemon.joblog, daemon._pool)
    assert "J1" in daemon._dispatch.in_flight  # J0 waits for its retry time, J1 goes straight back to the pool


def test_a_job_the_executor_lost_goes_back_uncharged_and_a_crash_it_gave_up_on_is_charged(daemon):
    """A cluster executor's two endings that are not the file's doing: JobReleased (the scheduler went away)
    gives the attempt back; WorkerCrashed (reruns used up) is charged like a local worker's death."""
    from ocrd.service.executor import JobReleased, WorkerCrashed

    daemon._dispatch.submit_queued(daemon.joblog, daemon._pool)
    assert [j.attempt for j, _ in daemon._pool.submitted] == [1, 1]  # the attempt each would be, in the task key
    for job_id, error in (("J0", JobReleased("scheduler lost")), ("J1", WorkerCrashed("worker died 3 times"))):
        future = daemon._pool.future_of(job_id)
        future.set_running_or_notify_cancel()
        daemon._dispatch.note_started(daemon.joblog)
        future.set_exception(error)
    assert _attempts(daemon)["J0"] == ("running", 1)
    daemon._dispatch.collect_finished(daemon.joblog, daemon._pool)

    j0, j1 = daemon.joblog.get("J0"), daemon.joblog.get("J1")
    assert (j0.state, j0.attempts, j0.reason, j0.not_before) == (JobState.QUEUED, 0, "interrupted", None)
    assert (j1.state, j1.attempts, j1.reason) == (JobState.QUEUED, 1, "worker_crashed")
    assert j1.not_before is not None  # retried after the back-off, as a local crash is
    daemon._dispatch.submit_queued(daemon.joblog, daemon._pool)
    assert "J0" in daemon._dispatch.in_flight and "J1" not in daemon._dispatch.in_flight



def test_files_handed_out_while_others_wait_share_the_cores(daemon):
    daemon._dispatch.submit_queued(daemon.joblog, daemon._pool)
    assert [(j.job_id, j.alone) for j, _ in daemon._pool.submitted] == [("J0", False), ("J1", False)]


def test_a_file_that_finds_the_daemon_idle_may_use_every_core(daemon):
    for job_id in ("J1", "J2"):
        daemon.joblog.quarantine(job_id, "truncated", "test: out of the way")
    daemon._dispatch.submit_queued(daemon.joblog, daemon._pool)
    assert [(j.job_id, j.alone) for j, _ in daemon._pool.submitted] == [("J0", True)]
