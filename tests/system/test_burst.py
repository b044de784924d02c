"""Burst (issue 7): many tiny files dropped at once are all processed, with in-flight jobs bounded.

`OCRD_BURST_N` sets the count (200 in CI; the issue's full size is 1000). While the batch drains, a
thread samples the job log: rows in `running` are the jobs workers have taken, and with the ones
waiting in the pool's queue no more than 2 x workers are ever handed out (DESIGN section 7), so the
sampled count must stay within that bound. The daemon's peak RSS (VmHWM of the main process) and the largest
sampled RSS of the whole process group are printed; run with `-s` to see them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from tests.system.harness import (
    DEFAULT_OUTPUT_SUFFIXES,
    DaemonHarness,
    encode_image,
    files_under,
    proc_status_kb,
    render_text_image,
    temp_like_files,
)

N = int(os.environ.get("OCRD_BURST_N", "200"))
WORKERS = 2


def test_burst_of_tiny_files_is_processed_with_bounded_in_flight(ocrd_daemon: DaemonHarness):
    harness = ocrd_daemon
    harness.write_config(workers={"count": WORKERS}, rescan_interval_s=5.0)
    harness.start()
    # Rendered and encoded first, written afterwards in one quick loop: "dropped at once".
    payloads = [(f"b{i // 100:02d}/tiny_{i:04d}.png", encode_image(render_text_image(f"No {i}", width_px=200,
                 height_px=56), "png")) for i in range(N)]  # fmt: skip
    staging = harness.root / "staging"
    for rel, data in payloads:
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    samples: list[int] = []
    group_rss_kb: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        conn = sqlite3.connect(f"{harness.db_path.absolute().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            while not stop.is_set():
                try:
                    samples.append(conn.execute("SELECT count(*) FROM jobs WHERE state = 'running'").fetchone()[0])
                except sqlite3.OperationalError:
                    pass  # busy for a moment: the next sample counts
                group_rss_kb.append(sum(proc_status_kb(pid) for pid in harness.live_group_members()))
                stop.wait(0.05)
        finally:
            conn.close()

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    for folder in sorted({Path(rel).parent for rel, _ in payloads}):
        os.rename(staging / folder, harness.inbox("scans") / folder)  # the whole batch appears at once
    sampler.start()
    try:
        rows = harness.wait_rows(lambda rows: len(rows) >= N and all(r["state"] == "done" for r in rows),
                                 60 + 1.5 * N, f"{N} files to be done")  # fmt: skip
    finally:
        stop.set()
        sampler.join(timeout=10)
    elapsed_s = time.monotonic() - started
    peak_kb = proc_status_kb(harness.proc.pid, "VmHWM")

    assert sorted(r["rel_path"] for r in rows) == sorted(rel for rel, _ in payloads)
    assert all(r["attempts"] == 1 for r in rows)
    for rel, data in payloads[:: max(1, N // 20)]:
        result = json.loads((harness.outbox / "scans" / f"{rel[:-4]}.json").read_text(encoding="utf-8"))
        assert result["source"]["bytes"] == len(data)
    assert len(files_under(harness.outbox)) == len(DEFAULT_OUTPUT_SUFFIXES) * N
    assert temp_like_files(harness.outbox) == []
    assert len(samples) > 20, "the sampler must have watched the run"
    assert max(samples) >= 1, "the sampler never saw a job running"
    assert max(samples) <= 2 * WORKERS, f"{max(samples)} jobs in flight with {WORKERS} workers"
    print(f"\nburst: {N} files in {elapsed_s:.1f} s; running max {max(samples)} (bound {2 * WORKERS}) over "
          f"{len(samples)} samples; daemon peak RSS {peak_kb / 1024:.0f} MiB; process group RSS max "
          f"{max(group_rss_kb) / 1024:.0f} MiB")  # fmt: skip
    assert harness.stop() == 0, harness.output()
