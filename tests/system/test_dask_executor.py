"""`executor: dask` (issue 17) with real `dask scheduler` and `dask worker` processes on 127.0.0.1.

A batch drained on two workers gives the files a local run gives; a worker SIGKILLed mid-job, the
scheduler restarted mid-batch, a job hanging past its timeout and a worker with other model files.
After each: every file processed exactly once (one row, one `job_done`, one output set, no suffixed
second set), no partial output (no temp files, no set without its JSON), every row terminal, the
work folder empty. Workers run with --nthreads 1 (this machine has two cores, shared).
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.dask_cluster import Scheduler, Worker, fake_model_package, slow_tiff
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

pytest.importorskip("distributed", reason="the [dask] extra is not installed")

BATCH_S = 240.0


def _image(n: int) -> bytes:
    return encode_image(render_text_image(f"Invoice {n:03d} total {n * 7}.50 EUR", width_px=520, height_px=90), "png")


@pytest.fixture
def cluster(tmp_path) -> Iterator[tuple[Scheduler, list[Worker]]]:
    """A scheduler (started) and a list the test appends its workers to; all stopped afterwards."""
    scheduler = Scheduler(tmp_path)
    scheduler.start()
    workers: list[Worker] = []
    try:
        yield scheduler, workers
    finally:
        for worker in workers:
            worker.stop()
        scheduler.stop()


def _daemon(root: Path, scheduler: Scheduler | None, **overrides) -> DaemonHarness:
    root.mkdir(parents=True, exist_ok=True)
    harness = DaemonHarness(root)
    extra = {"executor": "dask", "dask": {"scheduler": scheduler.address}} if scheduler is not None else {}
    harness.write_config(**(extra | overrides))
    return harness


def _start_workers(root: Path, scheduler: Scheduler, workers: list[Worker], count: int, harness: DaemonHarness) -> None:
    for n in range(count):
        worker = Worker(root, scheduler, f"w{len(workers) + 1}")
        worker.start()
        workers.append(worker)
    wait_until(lambda: len(harness.events("dask_worker_accepted")) >= count, 120, f"{count} workers accepted")


def _assert_exactly_once(harness: DaemonHarness, dropped: dict[str, bytes], *, quarantined: tuple[str, ...] = ()) -> None:
    rows = harness.rows()
    by_path = Counter(r["rel_path"] for r in rows)
    assert by_path == Counter(dropped.keys()), by_path  # one row per dropped file, none twice
    done_events = Counter(e["job_id"] for run in range(1, harness.runs + 1) for e in harness.events("job_done", run))
    for row in rows:
        rel = row["rel_path"]
        stem = rel.rsplit(".", 1)[0]
        if rel in quarantined:
            assert row["state"] == "quarantined", row
            assert (harness.quarantine / "scans" / rel).read_bytes() == dropped[rel]
            assert not (harness.outbox / "scans" / f"{stem}.json").exists()
            continue
        assert row["state"] == "done", row
        assert done_events[row["id"]] == 1, (rel, done_events[row["id"]])
        for suffix in DEFAULT_OUTPUT_SUFFIXES:
            # a multi-page file has one visualization per page: <stem>.p001.vis.jpg, ...
            names = (f"{stem}{suffix}", f"{stem}.p001{suffix}")
            assert any((harness.outbox / "scans" / name).is_file() for name in names), (rel, suffix)
        wait_until(lambda rel=rel: (harness.archive / "scans" / rel).exists(), 10, f"{rel} archived")
        assert (harness.archive / "scans" / rel).read_bytes() == dropped[rel]
    assert [p.name for p in files_under(harness.outbox) if "~" in p.name] == []
    assert temp_like_files(harness.outbox) == []
    assert files_under(harness.inbox("scans") / ".ocrd" / "work") == []
    stems = {p.name.split(".", 1)[0] for p in files_under(harness.outbox / "scans")}
    assert all((harness.outbox / "scans" / f"{s}.json").exists() for s in stems)  # no set without its JSON


def _normalized(result_json: Path) -> dict:
    """The result without what differs between any two runs of one file: its job id, time and timings."""
    doc = json.loads(result_json.read_text(encoding="utf-8"))
    for key in ("job_id", "created_at", "timings_ms"):
        doc.pop(key)
    return doc


def test_a_batch_on_two_workers_gives_the_files_a_local_run_gives(tmp_path, cluster):
    scheduler, workers = cluster
    dropped = {f"inv{n}.png": _image(n) for n in range(8)}
    local = _daemon(tmp_path / "local", None)
    dask = _daemon(tmp_path / "dask", scheduler)
    try:
        local.start()
        for rel, data in dropped.items():
            drop_file(local.inbox("scans") / rel, data)
        local.wait_rows(all_terminal(len(dropped)), BATCH_S, "the local batch")
        assert local.stop() == 0

        dask.start()
        _start_workers(tmp_path, scheduler, workers, 2, dask)
        for rel, data in dropped.items():
            drop_file(dask.inbox("scans") / rel, data)
        dask.wait_rows(all_terminal(len(dropped)), BATCH_S, "the Dask batch")
        # `ocrd status` reads what the loop last wrote (every 5 s): a short batch can end before that.
        want = f"scheduler {scheduler.address} reachable, 2 workers connected"
        wait_until(lambda: want in dask.ocrd("status").stdout, 20, "ocrd status to show both workers", interval_s=1)
        assert dask.stop() == 0
    finally:
        local.cleanup()
        dask.cleanup()
    _assert_exactly_once(local, dropped)
    _assert_exactly_once(dask, dropped)
    # Both workers read files; the daemon wrote them.
    assert len({r["worker_pid"] for r in dask.rows()}) == 2
    for rel in dropped:
        stem = rel.rsplit(".", 1)[0]
        ours, theirs = local.outbox / "scans", dask.outbox / "scans"
        assert (ours / f"{stem}.txt").read_bytes() == (theirs / f"{stem}.txt").read_bytes()
        assert (ours / f"{stem}.vis.jpg").read_bytes() == (theirs / f"{stem}.vis.jpg").read_bytes()
        assert _normalized(ours / f"{stem}.json") == _normalized(theirs / f"{stem}.json")


def test_a_worker_killed_mid_job_is_rerun_by_dask_within_the_same_attempt(tmp_path, cluster):
    scheduler, workers = cluster
    harness = _daemon(tmp_path, scheduler)
    try:
        harness.start()
        _start_workers(tmp_path, scheduler, workers, 2, harness)
        dropped = {"long.tif": slow_tiff(), **{f"inv{n}.png": _image(n) for n in range(3)}}
        for rel, data in dropped.items():
            drop_file(harness.inbox("scans") / rel, data)
        long_row = wait_until(lambda: next((r for r in harness.rows() if r["rel_path"] == "long.tif"), None), 60,
                              "the long file's row")  # fmt: skip
        started = wait_until(lambda: [e for e in harness.events("dask_task_started") if e["job_id"] == long_row["id"]],
                             120, "the long file started on a worker")  # fmt: skip
        os.kill(started[0]["pid"], signal.SIGKILL)  # the worker process (its nanny lives on and restarts it)
        harness.wait_rows(all_terminal(len(dropped)), BATCH_S, "the batch after the kill")
        assert [e["job_id"] for e in harness.events("dask_task_rerun")] == [long_row["id"]]
        row = next(r for r in harness.rows() if r["rel_path"] == "long.tif")
        assert (row["state"], row["attempts"]) == ("done", 1)  # Dask's rerun is not a second attempt
        assert harness.stop() == 0
    finally:
        harness.cleanup()
    _assert_exactly_once(harness, dropped)


def test_the_scheduler_restarted_mid_batch_requeues_the_jobs_in_flight(tmp_path, cluster):
    scheduler, workers = cluster
    harness = _daemon(tmp_path, scheduler)
    try:
        harness.start()
        _start_workers(tmp_path, scheduler, workers, 2, harness)
        dropped = {"long.tif": slow_tiff(6), **{f"inv{n}.png": _image(n) for n in range(6)}}
        for rel, data in dropped.items():
            drop_file(harness.inbox("scans") / rel, data)
        wait_until(lambda: any(r["state"] == "running" for r in harness.rows()), 120, "a job running")
        scheduler.kill()
        # Meanwhile the daemon keeps watching and claiming: a file dropped now gets its row.
        dropped["late.png"] = _image(99)
        drop_file(harness.inbox("scans") / "late.png", dropped["late.png"])
        harness.wait_rows(lambda rows: any(r["rel_path"] == "late.png" for r in rows), 60, "the late file claimed")
        wait_until(lambda: "UNREACHABLE" in harness.ocrd("status").stdout, 60, "status to say the scheduler is away")
        scheduler.start()
        harness.wait_rows(all_terminal(len(dropped)), BATCH_S, "the batch after the scheduler came back")
        released = {e["job_id"] for e in harness.events("job_released")}
        assert released, "no job was in flight when the scheduler died"
        for row in harness.rows():
            assert row["attempts"] == 1, row  # a job the scheduler lost was not charged
        assert harness.stop() == 0
    finally:
        harness.cleanup()
    _assert_exactly_once(harness, dropped)


def test_a_job_past_its_timeout_is_stopped_by_the_daemon_and_its_worker_restarted(tmp_path, cluster):
    scheduler, workers = cluster
    # One long TIFF takes far longer than 3 s on these cores; a one-line PNG takes well under a second.
    harness = _daemon(tmp_path, scheduler, workers={"job_timeout_s": 3}, max_attempts=2)
    try:
        harness.start()
        _start_workers(tmp_path, scheduler, workers, 1, harness)
        dropped = {"hang.tif": slow_tiff(12), **{f"inv{n}.png": _image(n) for n in range(3)}}
        for rel, data in dropped.items():
            drop_file(harness.inbox("scans") / rel, data)
        harness.wait_rows(all_terminal(len(dropped)), BATCH_S, "the batch with the hanging file")
        row = next(r for r in harness.rows() if r["rel_path"] == "hang.tif")
        assert (row["state"], row["reason"], row["attempts"]) == ("quarantined", "timeout", 2)
        assert len([e for e in harness.events("dask_task_timed_out") if e["job_id"] == row["id"]]) == 2
        # Restarted through the scheduler: each new worker process loads the models and is accepted again.
        assert len(harness.events("dask_worker_accepted")) >= 2 and not harness.events("dask_worker_restart_failed")
        assert harness.stop() == 0
    finally:
        harness.cleanup()
    _assert_exactly_once(harness, dropped, quarantined=("hang.tif",))


def test_a_worker_with_other_model_files_is_refused_and_takes_no_job(tmp_path, cluster):
    scheduler, workers = cluster
    harness = _daemon(tmp_path, scheduler)
    try:
        harness.start()
        _start_workers(tmp_path, scheduler, workers, 1, harness)
        odd = Worker(tmp_path, scheduler, "odd", env={"PYTHONPATH": str(fake_model_package(tmp_path))})
        odd.start()
        workers.append(odd)
        refused = wait_until(lambda: harness.events("dask_worker_refused"), 120, "the odd worker refused")
        assert "cls model sha256" in refused[0]["reason"], refused
        assert "ocrd refused this worker" in odd.log_text()
        dropped = {f"inv{n}.png": _image(n) for n in range(4)}
        for rel, data in dropped.items():
            drop_file(harness.inbox("scans") / rel, data)
        harness.wait_rows(all_terminal(len(dropped)), BATCH_S, "the batch beside a refused worker")
        started_on = {e["worker"] for e in harness.events("dask_task_started")}
        assert started_on == {harness.events("dask_worker_accepted")[0]["worker"]}
        # the daemon rewrites what `ocrd status` reads every 5 s
        wait_until(lambda: "1 refused" in harness.ocrd("status").stdout, 30, "status to count the refused worker")
        assert harness.stop() == 0
    finally:
        harness.cleanup()
    _assert_exactly_once(harness, dropped)
