"""The worker pool with real models: results, timeouts, crashes and memory recycling."""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import pytest

from ocrd.config.load import default_config
from ocrd.errors import Reason
from ocrd.jobs.ids import new_job_id
from ocrd.service.pipeline import Job
from ocrd.service.workers import WorkerPool, classify_failure
from tests.fonts import latin_font_path, render_lines


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    base = default_config()
    return dataclasses.replace(base, workers=dataclasses.replace(base.workers, job_timeout_s=60, max_rss_mb=1))


def _job(tmp_path, name: str, text: str) -> Job:
    font = latin_font_path()
    if font is None:
        pytest.skip("no TrueType font found to render test images")
    image, _ = render_lines([text], font)
    path = tmp_path / f"{name}.png"
    import cv2

    cv2.imwrite(str(path), image)
    return Job(job_id=new_job_id(), path=path, rel_path=path.name, out_dir=tmp_path / "out", stem=name)


def test_pool_recycles_workers_past_the_memory_limit_and_keeps_working(cfg, tmp_path):
    with WorkerPool(cfg, workers=1, intra_op_threads=1) as pool:
        first = pool.submit(_job(tmp_path, "a", "Invoice 1001")).result()
        assert first.worker_rss_mb > 1  # a real process with models loaded
        assert pool.note_worker_memory(first.worker_rss_mb) is True
        second = pool.submit(_job(tmp_path, "b", "Invoice 1002")).result()
    assert second.worker_pid != first.worker_pid  # a fresh worker took the next job
    assert pool.recycled == 1
    assert (tmp_path / "out" / "b.json").exists()


def test_a_worker_killed_from_outside_fails_at_most_one_job_and_the_pool_recovers(cfg, tmp_path):
    with WorkerPool(cfg, workers=1, intra_op_threads=1) as pool:
        ok = pool.submit(_job(tmp_path, "c", "Total 19.10")).result()
        os.kill(ok.worker_pid, signal.SIGKILL)
        job = _job(tmp_path, "d", "Total 20.20")
        try:
            again = pool.submit(job).result()
        except Exception as exc:  # the job that met the dead worker: classified, retried by the caller
            assert classify_failure(exc, 60).reason is Reason.WORKER_CRASHED
            again = pool.submit(job).result()
    assert again.worker_pid != ok.worker_pid
    assert (tmp_path / "out" / "d.json").exists()


def test_failures_are_classified():
    from concurrent.futures import TimeoutError as FutureTimeout

    from concurrent.futures.process import BrokenProcessPool

    import pebble

    assert classify_failure(FutureTimeout(), 5).reason is Reason.TIMEOUT
    assert classify_failure(BrokenProcessPool("All workers expired"), 5).reason is Reason.WORKER_CRASHED
    assert classify_failure(pebble.ProcessExpired("gone", code=-11), 5).reason is Reason.WORKER_CRASHED
    failure = classify_failure(PermissionError(13, "Permission denied"), 5)
    assert failure.reason is Reason.OUTPUT_FAILED and failure.transient
    assert classify_failure(RuntimeError("boom"), 5).reason is Reason.INTERNAL_ERROR


def _pool_worker_pids() -> set[int]:
    """Child processes of this test process that run a pool worker (spawned by multiprocessing)."""
    me = os.getpid()
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) != me:  # field 4 of stat: the parent pid
            continue
        with open(f"/proc/{entry}/cmdline", "rb") as handle:
            if b"spawn_main" in handle.read():  # not multiprocessing's resource tracker
                pids.add(int(entry))
    return pids


def _big_job(tmp_path, name: str) -> Job:
    """A page large enough that reading it takes a while on any machine (many text lines)."""
    font = latin_font_path()
    if font is None:
        pytest.skip("no TrueType font found to render test images")
    image, _ = render_lines([f"Line {n} of a long statement 12.34" for n in range(60)], font, size_px=28)
    path = tmp_path / f"{name}.png"
    import cv2

    cv2.imwrite(str(path), image)
    return Job(job_id=new_job_id(), path=path, rel_path=path.name, out_dir=tmp_path / "out", stem=name)


def test_a_job_past_its_timeout_is_stopped_with_its_worker(cfg, tmp_path):
    short = dataclasses.replace(cfg, workers=dataclasses.replace(cfg.workers, job_timeout_s=0.05))
    with WorkerPool(short, workers=1, intra_op_threads=1) as pool:
        future = pool.submit(_big_job(tmp_path, "slow"))
        with pytest.raises(Exception) as caught:
            future.result()
    assert classify_failure(caught.value, 0.05).reason is Reason.TIMEOUT
    assert not (tmp_path / "out" / "slow.json").exists()


def test_a_worker_that_dies_mid_job_fails_only_that_job(cfg, tmp_path):
    with WorkerPool(cfg, workers=1, intra_op_threads=1) as pool:
        pool.wait_ready(timeout_s=60)
        future = pool.submit(_big_job(tmp_path, "doomed"))
        # Kill only once a worker has taken the job: killed earlier, pebble would break the whole pool
        # ("All workers expired", which the daemon re-dispatches) and this would test something else.
        deadline = time.monotonic() + 60
        while not future.running() and not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.running(), "the worker never took the job"
        for pid in _pool_worker_pids():
            os.kill(pid, signal.SIGKILL)  # as a segfaulting decoder or the OOM killer would
        with pytest.raises(Exception) as caught:
            future.result()
        assert classify_failure(caught.value, 60).reason is Reason.WORKER_CRASHED
        after = pool.submit(_job(tmp_path, "next", "Invoice 1003")).result()
    assert after.lines >= 1 and (tmp_path / "out" / "next.json").exists()


def test_pebble_names_a_break_with_no_task_taken_as_the_daemon_expects():
    """The daemon re-dispatches, without charging an attempt, jobs failed with this exact wording."""
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    import pebble

    from ocrd.service.dispatch import _NO_TASK_RUNNING

    # Every worker dies while starting, so no job is ever taken.
    pool = pebble.ProcessPool(max_workers=1, initializer=os._exit, initargs=(3,),
                              context=multiprocessing.get_context("spawn"))  # fmt: skip
    try:
        future = pool.schedule(os.getpid)
        with pytest.raises(BrokenProcessPool) as caught:
            future.result(timeout=60)
    finally:
        pool.stop()
        pool.join()
    assert str(caught.value) == _NO_TASK_RUNNING


def test_workers_give_a_pages_memory_back_after_the_job(cfg, tmp_path):
    """Between jobs a worker holds its engine, not the last page's buffers (ocrd.service.allocator)."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")

    def rss_after_two_big_pages(keep: bool) -> float:
        shaped = dataclasses.replace(cfg, workers=dataclasses.replace(cfg.workers, reuse_freed_memory=keep))
        with WorkerPool(shaped, workers=1, intra_op_threads=1) as pool:
            pool.submit(_big_job(tmp_path, f"warm-{keep}")).result()
            return pool.submit(_big_job(tmp_path, f"big-{keep}")).result().worker_rss_mb

    kept_mb, released_mb = rss_after_two_big_pages(keep=True), rss_after_two_big_pages(keep=False)
    assert released_mb < kept_mb - 20, f"released {released_mb:.0f} MiB vs kept {kept_mb:.0f} MiB"
