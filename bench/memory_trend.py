"""Memory trend of a long `ocrd process` run: whole-tree RSS over time, sampled from /proc.

Usage:
    python bench/memory_trend.py --eval EVAL_DIR [--files 2000] [--work /tmp/ocrd-bench/memtrend] \
        [--json bench/out/memory_trend.json] [--png docs/img/memory_trend.png]

Makes FILES distinct copies of the sroie-dev receipts (same pixels, a few random bytes after the
JPEG end marker) under --work (outside the repository), runs `ocrd process` with the built-in
defaults over them, samples the process tree's summed RSS every 0.5 s together with the number of
results written so far, and charts RSS against files done. Reports RSS after warm-up (at 10 % of
the files) and at the end, and the least-squares slope of RSS over the second half of the run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from copies import make_copies  # noqa: E402
from proc_tree import tree_rss  # noqa: E402


def count_json(out: Path) -> int:
    try:
        return sum(1 for p in out.iterdir() if p.name.endswith(".json"))
    except FileNotFoundError:
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", required=True, type=Path)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/ocrd-bench/memtrend"))
    ap.add_argument("--interval-s", type=float, default=0.5)
    ap.add_argument("--json", type=Path, default=Path("bench/out/memory_trend.json"))
    ap.add_argument("--png", type=Path, default=Path("docs/img/memory_trend.png"))
    ap.add_argument("--replot", type=Path, help="only redraw the chart and tables from an earlier --json file")
    ap.add_argument("--config", default="{}", help="YAML config for the run (default: the built-in defaults)")
    ap.add_argument("--label", default="default config", help="what the chart title says the config is")
    args = ap.parse_args()
    if args.replot:
        report = json.loads(args.replot.read_text())
        plot(report, args.png, args.label)
        print_bins(report)
        return
    shutil.rmtree(args.work, ignore_errors=True)
    inbox, out = args.work / "in", args.work / "out"
    make_copies(args.eval / "sroie-dev" / "img", inbox, args.files)
    cfg = args.work / "config.yaml"
    cfg.write_text(args.config + "\n")
    cmd = [sys.executable, "-m", "ocrd", "process", "-c", str(cfg), "-o", str(out), str(inbox)]
    samples = []  # (t, rss_bytes, processes, files_done)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    next_count, done = 0.0, 0
    while proc.poll() is None:
        t = time.perf_counter() - t0
        rss, n = tree_rss(proc.pid)
        if t >= next_count:
            done, next_count = count_json(out), t + 2.0
        samples.append((round(t, 2), rss, n, done))
        time.sleep(args.interval_s)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.communicate()
    done = count_json(out)
    mib = [(t, b / 2**20, n, d) for t, b, n, d in samples]
    busy = [m for m in mib if m[2] >= 3] or mib  # samples with the workers alive (not start-up/shut-down)
    warm = [m for m in mib if m[3] >= 0.1 * args.files]
    second_half = [m for m in mib if m[3] >= 0.5 * args.files]
    slope = 0.0
    if len(second_half) > 2:
        xs = [m[3] for m in second_half]
        ys = [m[1] for m in second_half]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        den = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0
    report = {
        "files": args.files,
        "done": done,
        "exit": proc.returncode,
        "wall_s": round(wall, 1),
        "img_per_min_whole": round(done / wall * 60, 1),
        "peak_rss_mib": round(max(m[1] for m in mib), 1),
        "rss_after_warmup_mib": round(warm[0][1], 1) if warm else None,
        "rss_end_mib": round(busy[-1][1], 1),  # last sample with the workers still running
        "max_rss_second_half_mib": round(max(m[1] for m in second_half), 1) if second_half else None,
        "slope_second_half_mib_per_1000_files": round(slope * 1000, 2),
        "summary": stdout.strip().splitlines()[-1:] or stderr[-300:],
        "samples": mib,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report))
    plot(report, args.png, args.label)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=1))
    print_bins(report)


def bins(report: dict, width: int = 100) -> list[tuple[int, float, float, float]]:
    """(first file, min, median, max) of the tree RSS per `width` files done, workers alive only.

    The minimum is the floor between pages (what the processes keep); median and max follow the
    pages being read, which `ocrd process` takes largest file first.
    """
    import statistics

    out = []
    for lo in range(0, report["files"], width):
        b = [m[1] for m in report["samples"] if lo <= m[3] < lo + width and m[2] >= 3]
        if b:
            out.append((lo, min(b), statistics.median(b), max(b)))
    return out


def print_bins(report: dict) -> None:
    print("\n| files done | min tree RSS (MiB) | median | max |\n|---|---:|---:|---:|")
    for lo, low, med, mx in bins(report):
        print(f"| {lo}-{lo + 99} | {low:.0f} | {med:.0f} | {mx:.0f} |")


def plot(report: dict, png: Path, label: str = "default config") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["samples"]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    ax.plot([m[3] for m in s], [m[1] for m in s], lw=0.8, color="tab:blue", label="whole process tree RSS")
    ax.set_xlabel("files done (results written)")
    ax.set_ylabel("RSS of ocrd process + workers (MiB)")
    ax.set_ylim(0, max(1700, max(m[1] for m in s) * 1.15))
    ax.set_xlim(0, report["files"])
    b = bins(report, 50)
    ax.plot([lo + 25 for lo, _, _, _ in b], [med for _, _, med, _ in b], color="black", lw=1.5, marker=".",
            label="median per 50 files")
    ax.axhline(1536, color="tab:red", ls="--", lw=0.8, label="1.5 GiB target")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.text(0.01, 0.03, "workers are replaced after max_jobs_per_worker (500) files each", transform=ax.transAxes,
            fontsize=8, color="dimgray")
    ax.set_title(f"ocrd process, {report['files']} receipts, {label}: memory over the run")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)


if __name__ == "__main__":
    main()
