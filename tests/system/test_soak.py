"""Soak (issue 7), CI-sized: a daemon kept busy for `OCRD_SOAK_JOBS` jobs (300 here; `bench/soak.py` runs
5,000) must not grow: main-process RSS within 50 MB of its value after a 100-job warm-up, open file
descriptors and threads back where they were, and the WAL bounded by the job log's size limit.
"""

from __future__ import annotations

import os

from tests.system.harness import DEFAULT_OUTPUT_SUFFIXES, DaemonHarness, files_under, temp_like_files
from tests.system.soak import run_soak

JOBS = int(os.environ.get("OCRD_SOAK_JOBS", "300"))
WARMUP = 100


def test_soak_keeps_memory_descriptors_threads_and_wal_flat(ocrd_daemon: DaemonHarness):
    harness = ocrd_daemon
    # Workers recycled every 50 jobs: the soak also crosses worker restarts, as a long run does.
    harness.write_config(workers={"count": 2, "max_jobs_per_worker": 50}, rescan_interval_s=5.0)
    harness.start()
    report = run_soak(harness, jobs=JOBS, warmup=WARMUP, sample_every=20)
    figures = report.figures()
    print(f"\nsoak: {figures}")

    assert report.states == {"done": JOBS}, report.states
    assert len(files_under(harness.outbox)) == len(DEFAULT_OUTPUT_SUFFIXES) * JOBS
    assert temp_like_files(harness.outbox) == []
    assert len(report.after_warmup()) >= 5, "too few samples after the warm-up to judge a trend"
    # Memory within 50 MB of the warm-up; descriptors and threads: what the loop, the observers and the
    # pool hold, not one more per job; the WAL within its size limit.
    assert [mark for mark, ok in report.marks().items() if not ok] == [], figures
    assert harness.stop() == 0, harness.output()
