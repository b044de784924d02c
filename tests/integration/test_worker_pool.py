"""The worker pool with real models: results, timeouts, crashes and memory recycling."""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest

from ocrd.config import default_config
from ocrd.errors import Reason
from ocrd.jobids import new_job_id
from ocrd.pipeline import Job
from ocrd.workers import WorkerPool, classify_failure
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
