"""Soak (issue 7), long version: one `ocrd run` kept busy for 5,000 jobs; memory, descriptors, threads, WAL.

    .venv/bin/python bench/soak.py [--jobs 5000] [--warmup 100] [--sample-every 50]
        [--json bench/out/soak.json] [--png docs/img/soak.png]

The daemon runs on a temp config (two workers, workers recycled every 500 jobs as by default), fed with
small rendered PNGs dropped a few at a time (tests/system/soak.py, the same runner the CI-sized test
uses). Pass marks, from the issue: main-process RSS growth <= 50 MB after the warm-up, file descriptors
and threads stable, WAL bounded. Prints the figures as a Markdown table; exit status 1 when a mark fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.system.harness import DaemonHarness  # noqa: E402
from tests.system.soak import SoakReport, run_soak  # noqa: E402


def chart(report: SoakReport, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report.samples
    done = [x.done for x in s]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), dpi=110, sharex=True)
    ax = axes[0]
    ax.plot(done, [x.main_rss_mib for x in s], label="daemon main process RSS")
    ax.plot(done, [x.workers_rss_mib / 2 for x in s], label="workers' RSS / 2 (per worker)", alpha=0.7)
    ax.axvline(report.warmup, color="grey", linestyle=":", label=f"end of warm-up ({report.warmup} jobs)")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right")
    ax.set_title(f"ocrd run, {report.jobs:,} jobs: resources of the daemon")
    ax = axes[1]
    ax.plot(done, [x.fds for x in s], label="open file descriptors (main)")
    ax.plot(done, [x.threads for x in s], label="threads (main)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right")
    ax = axes[2]
    ax.plot(done, [x.wal_mib for x in s], label="jobs.db-wal")
    ax.plot(done, [x.db_mib for x in s], label="jobs.db")
    ax.set_ylabel("MiB")
    ax.set_xlabel("jobs done")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--sample-every", type=int, default=50)
    ap.add_argument("--json", type=Path, default=Path("bench/out/soak.json"))
    ap.add_argument("--png", type=Path, default=Path("docs/img/soak.png"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="ocrd-soak-") as tmp:
        harness = DaemonHarness(Path(tmp))
        harness.write_config(workers={"count": 2}, rescan_interval_s=5.0)
        try:
            harness.start()
            report = run_soak(harness, jobs=args.jobs, warmup=args.warmup, sample_every=args.sample_every,
                              progress=True)  # fmt: skip
            exit_code = harness.stop()
        finally:
            harness.cleanup()
    figures = report.figures()
    marks = report.marks() | {"daemon exit status 0 on SIGTERM": exit_code == 0}
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "marks": marks,
        **report.as_dict(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    chart(report, args.png)
    print("\n| figure | value |\n|---|---:|")
    for key, value in figures.items():
        print(f"| {key} | {value} |")
    print("\n| mark | met |\n|---|---|")
    for mark, ok in marks.items():
        print(f"| {mark} | {'yes' if ok else 'NO'} |")
    return 0 if all(marks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
