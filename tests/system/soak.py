"""Soak run (issue 7): keep a running daemon fed with files until N jobs are done, sampling its resources.

Shared by `tests/system/test_soak.py` (CI-sized) and `bench/soak.py` (the 5,000-job version). Files are
rendered one by one with unique text (so none is a duplicate) and dropped a few at a time whenever the
daemon has fewer than `backlog` unfinished jobs, as a busy office folder would see them. Every
`sample_every` finished jobs the main process's RSS, open file descriptors and threads, the workers'
RSS and the WAL's size are recorded.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ocrd.jobs.connection import WAL_SIZE_LIMIT_BYTES
from tests.system.harness import DaemonHarness, encode_image, proc_status_kb, render_text_image


@dataclass
class Sample:
    done: int
    elapsed_s: float
    main_rss_mib: float
    workers_rss_mib: float
    fds: int
    threads: int
    wal_mib: float
    db_mib: float


@dataclass
class SoakReport:
    jobs: int
    warmup: int
    elapsed_s: float
    samples: list[Sample] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)

    def after_warmup(self) -> list[Sample]:
        return [s for s in self.samples if s.done >= self.warmup]

    def figures(self) -> dict[str, Any]:
        """Growth after warm-up (first sample at or past `warmup` against the largest later value)."""
        later = self.after_warmup()
        base = later[0]
        return {
            "jobs": self.jobs,
            "warmup": self.warmup,
            "elapsed_s": round(self.elapsed_s, 1),
            "jobs_per_min": round(self.jobs / self.elapsed_s * 60, 1),
            "main_rss_at_warmup_mib": round(base.main_rss_mib, 1),
            "main_rss_growth_mib": round(max(s.main_rss_mib for s in later) - base.main_rss_mib, 1),
            "main_rss_last_minus_warmup_mib": round(later[-1].main_rss_mib - base.main_rss_mib, 1),
            "workers_rss_max_mib": round(max(s.workers_rss_mib for s in self.samples), 1),
            "fds_at_warmup": base.fds,
            "fds_range_after_warmup": [min(s.fds for s in later), max(s.fds for s in later)],
            "threads_at_warmup": base.threads,
            "threads_range_after_warmup": [min(s.threads for s in later), max(s.threads for s in later)],
            "wal_max_mib": round(max(s.wal_mib for s in self.samples), 2),
            "wal_last_mib": round(self.samples[-1].wal_mib, 2),
            "db_last_mib": round(self.samples[-1].db_mib, 2),
            "states": self.states,
        }

    def marks(self) -> dict[str, bool]:
        """The issue's pass marks, by name: what both the CI test and bench/soak.py hold the run to."""
        f = self.figures()
        return {
            "main RSS growth after warm-up <= 50 MB": f["main_rss_growth_mib"] * 2**20 <= 50e6,
            "file descriptors stable (max - at warm-up <= 8)": f["fds_range_after_warmup"][1] - f["fds_at_warmup"] <= 8,
            "threads stable (max - at warm-up <= 4)": f["threads_range_after_warmup"][1] - f["threads_at_warmup"] <= 4,
            "WAL bounded (<= 2 x journal_size_limit)": f["wal_max_mib"] * 2**20 <= 2 * WAL_SIZE_LIMIT_BYTES,
            "every job done": self.states == {"done": self.jobs},
        }

    def as_dict(self) -> dict[str, Any]:
        return {"figures": self.figures(), "samples": [asdict(s) for s in self.samples]}


def _count_done(db_path: Path) -> tuple[int, int]:
    """(finished, unfinished) jobs, through a short read-only connection (no snapshot kept open)."""
    if not db_path.exists():
        return 0, 0
    conn = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        finished, total = conn.execute(
            "SELECT coalesce(sum(state IN ('done', 'failed', 'quarantined', 'duplicate')), 0), count(*) FROM jobs"
        ).fetchone()
        return finished, total - finished
    except sqlite3.OperationalError:
        return -1, -1  # busy for a moment, or the schema is not there yet
    finally:
        conn.close()


def _sample(harness: DaemonHarness, done: int, started_s: float) -> Sample:
    assert harness.proc is not None
    pid = harness.proc.pid
    workers = [p for p in harness.live_group_members() if p != pid]
    wal = harness.db_path.with_name(harness.db_path.name + "-wal")
    return Sample(
        done=done,
        elapsed_s=round(time.monotonic() - started_s, 2),
        main_rss_mib=proc_status_kb(pid, "VmRSS") / 1024,
        workers_rss_mib=sum(proc_status_kb(p, "VmRSS") for p in workers) / 1024,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=proc_status_kb(pid, "Threads"),
        wal_mib=(wal.stat().st_size if wal.exists() else 0) / 2**20,
        db_mib=harness.db_path.stat().st_size / 2**20,
    )


def run_soak(
    harness: DaemonHarness,
    *,
    jobs: int,
    warmup: int = 100,
    sample_every: int = 25,
    backlog: int = 8,
    progress: bool = False,
) -> SoakReport:
    """Feed the (started) daemon until `jobs` jobs are finished; the daemon must stay up throughout."""
    assert harness.proc is not None, "start the daemon first"
    inbox = harness.inbox("scans")
    staging = harness.root / "staging"
    staging.mkdir(exist_ok=True)
    started_s = time.monotonic()
    report = SoakReport(jobs=jobs, warmup=warmup, elapsed_s=0.0)
    dropped = 0
    next_sample = 0
    idle_deadline = time.monotonic() + 300.0  # no job finished for this long: the daemon is stuck
    last_done = 0
    while True:
        if harness.proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {harness.proc.returncode}\n{harness.output()}")
        done, unfinished = _count_done(harness.db_path)
        if done < 0:
            time.sleep(0.05)
            continue
        if done > last_done:
            last_done, idle_deadline = done, time.monotonic() + 300.0
        elif time.monotonic() > idle_deadline:
            raise AssertionError(f"no job finished for 300 s at {done} done\n{harness.output()}")
        if done >= next_sample:
            report.samples.append(_sample(harness, done, started_s))
            next_sample = done + sample_every
            if progress:
                s = report.samples[-1]
                print(f"{s.done:6d} done  {s.elapsed_s:7.0f} s  main {s.main_rss_mib:6.1f} MiB  fds {s.fds:3d}  "
                      f"threads {s.threads:3d}  wal {s.wal_mib:5.2f} MiB", flush=True)  # fmt: skip
        if done >= jobs:
            break
        # Keep a small backlog in the inbox (waiting files + unfinished jobs), never more than `jobs` in all.
        in_inbox = sum(1 for e in os.scandir(inbox) if e.is_file())
        while dropped < jobs and in_inbox + unfinished < backlog:
            image = render_text_image(f"Soak {dropped:05d} ok", width_px=240, height_px=60)
            name = f"soak_{dropped:05d}.png"
            (staging / name).write_bytes(encode_image(image, "png"))
            os.rename(staging / name, inbox / name)  # appears complete, as a rename into the inbox does
            dropped += 1
            in_inbox += 1
        time.sleep(0.05)
    report.elapsed_s = time.monotonic() - started_s
    for row in harness.rows():
        report.states[row["state"]] = report.states.get(row["state"], 0) + 1
    return report
