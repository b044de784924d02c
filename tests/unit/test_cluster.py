"""The Dask executor's own decisions, without a cluster: which worker is refused, how each way a task can
end becomes the job's ending, that a result after the job's ending is dropped unwritten, the daemon's
timeout, and what `ocrd status`, /healthz and /metrics say about it."""

from __future__ import annotations

import json
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("distributed", reason="the [dask] extra is not installed")

from distributed.scheduler import KilledWorker  # noqa: E402

from ocrd.cluster.executor import DaskExecutor, _Task  # noqa: E402
from ocrd.cluster.identity import WorkerIdentity, differences, source_identity  # noqa: E402
from ocrd.config.load import config_from_mapping  # noqa: E402
from ocrd.errors import InputError, Reason  # noqa: E402
from ocrd.jobs.records import EncodedJob, Job, Outcome  # noqa: E402
from ocrd.service.executor import EXECUTOR_STATUS_FILE, ExecutorHealth, JobReleased, WorkerCrashed  # noqa: E402
from ocrd.service.executor import executor_status_line  # noqa: E402
from ocrd.service.health import MetricsExporter, HealthSnapshot, healthz_document  # noqa: E402
from ocrd.service.workers import classify_failure  # noqa: E402

DAEMON = WorkerIdentity("1.0", "ppocrv6-small", (("det", "aa"), ("rec", "bb")), "rec int8, det int8")


def test_a_worker_matching_the_daemon_passes_and_each_difference_is_named():
    assert differences(DAEMON, DAEMON) == []
    assert differences(DAEMON, WorkerIdentity("1.0", "ppocrv6-small", DAEMON.sources, None)) == []  # not prepared yet
    odd = WorkerIdentity("1.1", "ppocrv6-small", (("det", "aa"), ("rec", "cc")), "rec int8, det fp32")
    assert differences(DAEMON, odd) == [
        "ocrd 1.1, the daemon runs 1.0",
        "rec model sha256 cc, the daemon's is bb",
        "model precision rec int8, det fp32, the daemon's is rec int8, det int8",
    ]


def test_this_hosts_identity_hashes_the_installed_files(tmp_path):
    identity = source_identity(config_from_mapping({}, tmp_path))
    roles = dict(identity.sources)
    assert set(roles) == {"det", "cls", "rec"} and all(len(digest) == 64 for digest in roles.values())


class _DaskFuture:
    """What `_finish` reads of a distributed Future once it is done."""

    def __init__(self, status: str, value=None, error: BaseException | None = None):
        self.status, self._value, self._error = status, value, error

    def result(self):
        return self._value

    def exception(self):
        return self._error


@pytest.fixture
def executor(tmp_path):
    cfg = config_from_mapping({"executor": "dask", "dask": {"scheduler": "tcp://127.0.0.1:9"},
                               "workers": {"job_timeout_s": 5}}, tmp_path)  # fmt: skip
    ex = DaskExecutor(cfg, SimpleNamespace(precisions="rec int8, det int8"))  # never connected: no network in a unit test
    yield ex
    ex.close()


def _task(ex: DaskExecutor, tmp_path: Path, key: str) -> _Task:
    job = Job(job_id=key, path=tmp_path / "in.png", rel_path="in.png", out_dir=tmp_path / "out", stem="in")
    task = _Task(job, Future(), key=key, dask_future=object())
    ex._tasks[key] = task
    return task


def _encoded(job_id: str) -> EncodedJob:
    outcome = Outcome(job_id, "0" * 64, 10, "png", 1, 1, 0.9, 1, 1, 1, 1, 4)
    return EncodedJob(outcome, (("in.txt", b"text\n"), ("in.json", b"{}\n")))


def test_a_result_is_written_before_the_job_completes_and_one_after_its_end_is_dropped(executor, tmp_path):
    task = _task(executor, tmp_path, "k1")
    executor._on_started({"key": "k1", "worker": "tcp://w1", "pid": 7})
    assert task.future.running() and task.worker == "tcp://w1"
    executor._finish(task, _DaskFuture("finished", _encoded("k1")))
    assert [Path(p).name for p in task.future.result().outputs] == ["in.txt", "in.json"]
    assert (tmp_path / "out" / "in.txt").read_bytes() == b"text\n"

    late = _task(executor, tmp_path, "k2")
    late.job = Job("k2", tmp_path / "in.png", "in.png", tmp_path / "late", "in")
    executor._on_started({"key": "k2", "worker": "tcp://w2", "pid": 8})
    late.started_s = time.monotonic() - 6  # past the 5 s timeout
    executor._enforce_timeouts()
    assert isinstance(late.future.exception(), FutureTimeout) and executor.recycled == 1
    executor._finish(late, _DaskFuture("finished", _encoded("k2")))  # the task ended anyway
    assert executor.stale_dropped == 1 and not (tmp_path / "late").exists()


def test_each_way_a_task_ends_becomes_the_jobs_ending(executor, tmp_path):
    never = _task(executor, tmp_path, "never")
    executor._finish(never, _DaskFuture("cancelled"))  # cancelled before any worker began it
    assert never.future.cancelled()

    lost = _task(executor, tmp_path, "lost")
    executor._on_started({"key": "lost", "worker": "tcp://w1"})
    executor._finish(lost, _DaskFuture("cancelled"))  # the scheduler went away while it ran
    assert isinstance(lost.future.exception(), JobReleased)

    crashed = _task(executor, tmp_path, "crashed")
    executor._finish(crashed, _DaskFuture("error", error=KilledWorker("crashed", SimpleNamespace(address="tcp://w1"), 3)))
    failure = classify_failure(crashed.future.exception(), 5)
    assert isinstance(crashed.future.exception(), WorkerCrashed) and failure.reason is Reason.WORKER_CRASHED

    refused = _task(executor, tmp_path, "refused")
    executor._finish(refused, _DaskFuture("error", error=InputError(Reason.CORRUPT, "bad file")))
    assert classify_failure(refused.future.exception(), 5).reason is Reason.CORRUPT
    assert executor._tasks == {}


def test_a_rerun_on_another_worker_restarts_the_timeout(executor, tmp_path):
    task = _task(executor, tmp_path, "k")
    executor._on_started({"key": "k", "worker": "tcp://w1"})
    task.started_s -= 4
    executor._on_started({"key": "k", "worker": "tcp://w2"})  # w1 died; Dask reran it
    executor._enforce_timeouts()
    assert not task.future.done() and task.worker == "tcp://w2"


def test_without_a_scheduler_nothing_is_handed_out_and_health_says_why(executor):
    assert executor.capacity == 0 and not executor.alive
    health = executor.health()
    assert (health.kind, health.scheduler, health.scheduler_reachable) == ("dask", "tcp://127.0.0.1:9", False)
    code, body = healthz_document(lambda: HealthSnapshot(0.1, False, 2, executor=health))
    assert code == 503 and body["reasons"] == ["dask scheduler tcp://127.0.0.1:9 unreachable; jobs wait queued"]
    assert body["executor"]["scheduler_reachable"] is False


def test_metrics_and_status_show_the_executor(tmp_path):
    health = ExecutorHealth("dask", True, 8, workers_connected=4, threads=4, tasks_in_flight=3,
                            scheduler="tls://s:8786", scheduler_reachable=True, workers_refused=1)  # fmt: skip
    text = MetricsExporter(lambda: HealthSnapshot(0.1, True, 2, executor=health)).render().decode()
    assert 'ocrd_executor_info{kind="dask",scheduler="tls://s:8786"} 1.0' in text
    assert "ocrd_executor_tasks_in_flight 3.0" in text and "ocrd_executor_workers_refused 1.0" in text
    assert executor_status_line(tmp_path).startswith("executor: unknown")
    (tmp_path / EXECUTOR_STATUS_FILE).write_text(json.dumps(health.as_dict() | {"updated_at": 1000.0}))
    assert executor_status_line(tmp_path, now_s=1005.0) == (
        "executor: dask scheduler tls://s:8786 reachable, 4 workers connected (4 threads, 1 refused), 3 tasks in flight")
    assert executor_status_line(tmp_path, now_s=1100.0).endswith("as of 100 s ago: is the daemon running?")
