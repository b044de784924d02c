"""The daemon path: drain a pre-filled inbox with `ocrd run`, compare with `ocrd process`, then measure
drop-to-JSON latency on an idle daemon.

Usage:
    python bench/daemon_path.py --eval EVAL_DIR [--files 200] [--rounds 2] [--drops 20] [--settle 2.0,0.5]
        [--work /tmp/ocrd-bench/daemon] [--json bench/out/daemon_path.json]

1. FILES distinct copies of the sroie-dev receipts (same pixels, random bytes after the JPEG end
   marker, so the duplicate check does not skip them) are made under --work (outside the repo).
2. `ocrd process` (defaults) runs over them: whole-command and steady images/min.
3. The same files are put in an inbox before `ocrd run` starts (temp config, defaults otherwise:
   settle_s 2.0, on_success archive). The job log is polled read-only every 0.25 s until all FILES
   rows are terminal. Throughput: whole (daemon start to last terminal row) and steady (first to
   last finished_at in the job log, the same definition as ocrd process's steady figure).
   Steps 2 and 3 are repeated ROUNDS times in alternating order (process, drain, then drain,
   process, ...), so a drift of the machine's speed during the run weighs on both paths alike; the
   ratio is taken over the summed files and times of all rounds, and each round's own ratio is shown.
4. Latency, for each settle_s: a fresh daemon is started on an empty inbox and left idle; DROPS files
   are renamed into the inbox one at a time (the next after the previous file's JSON appeared and a
   0.5 s pause); drop-to-JSON is the time from the rename to the result JSON existing (polled every
   10 ms). settle_s is part of that time by design.
The daemons are stopped with SIGTERM (their own pid only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from copies import make_copies  # noqa: E402
from peers import steady_from_created_at  # noqa: E402
from proc_tree import TreeSampler  # noqa: E402


def daemon_config(root: Path, settle_s: float) -> Path:
    cfg = root / "config.yaml"
    cfg.write_text(
        f"""inboxes:
  - name: scans
    path: {root}/inbox
    settle_s: {settle_s}
outbox: {root}/outbox
archive: {root}/archive
quarantine: {root}/quarantine
state_dir: {root}/state
logging: {{format: json, level: info}}
"""
    )
    return cfg


def terminal_rows(db: Path) -> tuple[int, list[str]]:
    if not db.exists():
        return 0, []
    try:
        conn = sqlite3.connect(db.absolute().as_uri() + "?mode=ro", uri=True, timeout=1)
        try:
            n = conn.execute("SELECT count(*) FROM jobs WHERE state IN ('done','failed','quarantined','duplicate')").fetchone()[0]
            return n, []
        finally:
            conn.close()
    except sqlite3.Error:
        return 0, []


def finished_stamps(db: Path) -> tuple[list[datetime], dict[str, int], list[float]]:
    conn = sqlite3.connect(db.absolute().as_uri() + "?mode=ro", uri=True)
    try:
        stamps = [datetime.fromisoformat(r[0].replace("Z", "+00:00"))
                  for r in conn.execute("SELECT finished_at FROM jobs WHERE finished_at IS NOT NULL ORDER BY finished_at")]
        states = dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        worker_ms = [r[0] for r in conn.execute("SELECT total_ms FROM jobs WHERE state = 'done'")]
        return stamps, states, worker_ms
    finally:
        conn.close()


def start_daemon(cfg: Path, log: Path) -> subprocess.Popen:
    fh = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "ocrd", "run", "-c", str(cfg)], stdout=fh, stderr=fh)


def stop_daemon(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def drain(root: Path, files: list[Path], n: int) -> dict:
    for sub in ("inbox", "outbox", "archive", "quarantine", "state"):
        shutil.rmtree(root / sub, ignore_errors=True)
    (root / "inbox").mkdir(parents=True)
    for f in files:
        shutil.copyfile(f, root / "inbox" / f.name)
    cfg = daemon_config(root, 2.0)
    db = root / "state" / "jobs.db"
    t0 = time.perf_counter()
    proc = start_daemon(cfg, root / "drain.log")
    with TreeSampler(proc.pid) as sampler:
        while True:
            done, _ = terminal_rows(db)
            if done >= n or proc.poll() is not None:
                break
            time.sleep(0.25)
        wall = time.perf_counter() - t0
    stop_daemon(proc)
    stamps, states, worker_ms = finished_stamps(db)
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]).total_seconds() * 60 if len(stamps) > 1 else 0.0
    return {"files": n, "wall_s": wall, "whole_img_min": n / wall * 60, "steady_img_min": steady,
            "states": states, "peak_rss_mib": sampler.peak_mib, "worker_s": sum(worker_ms) / 1000}


def process(root: Path, src: Path, n: int) -> dict:
    out = root / "process-out"
    shutil.rmtree(out, ignore_errors=True)
    cfg = root / "process.yaml"
    cfg.write_text("{}\n")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ocrd", "process", "-c", str(cfg), "-o", str(out), str(src)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with TreeSampler(proc.pid) as sampler:
        proc.wait()
    wall = time.perf_counter() - t0
    worker_ms = [json.loads(p.read_text(encoding="utf-8"))["timings_ms"]["total"] for p in out.glob("*.json")]
    return {"files": n, "wall_s": wall, "whole_img_min": n / wall * 60,
            "steady_img_min": steady_from_created_at(out), "exit": proc.returncode, "peak_rss_mib": sampler.peak_mib,
            "worker_s": sum(worker_ms) / 1000}


def pooled(runs: list[dict]) -> dict:
    """Throughput over several runs of one path: summed files over summed time (steady: per run's own rate, weighted)."""
    files = sum(r["files"] for r in runs)
    wall = sum(r["wall_s"] for r in runs)
    steady_s = sum((r["files"] - 1) / r["steady_img_min"] * 60 for r in runs if r["steady_img_min"])
    steady_files = sum(r["files"] - 1 for r in runs if r["steady_img_min"])
    return {"runs": len(runs), "files": files, "wall_s": wall, "whole_img_min": files / wall * 60,
            "steady_img_min": steady_files / steady_s * 60 if steady_s else 0.0,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "worker_s": sum(r["worker_s"] for r in runs),
            "states": runs[-1].get("states")}


def latency(root: Path, sources: list[Path], settle_s: float, drops: int) -> dict:
    for sub in ("inbox", "outbox", "archive", "quarantine", "state", "stage"):
        shutil.rmtree(root / sub, ignore_errors=True)
    (root / "inbox").mkdir(parents=True)
    stage = root / "stage"
    stage.mkdir()
    cfg = daemon_config(root, settle_s)
    proc = start_daemon(cfg, root / f"latency-{settle_s:g}.log")
    try:
        # idle: wait until the daemon says it started (after a worker has loaded its models), then a bit more
        log = root / f"latency-{settle_s:g}.log"
        deadline = time.time() + 120
        while b"daemon_started" not in log.read_bytes() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(3.0)  # pebble starts the second worker lazily; let it load too
        lat = []
        for i in range(drops):
            src = sources[i % len(sources)]
            name = f"drop{settle_s:g}_{i:03d}_{src.stem}.jpg"
            staged = stage / name
            staged.write_bytes(src.read_bytes() + os.urandom(8) + b"lat" + i.to_bytes(2, "big"))
            out_json = root / "outbox" / "scans" / (Path(name).stem + ".json")
            t0 = time.perf_counter()
            staged.rename(root / "inbox" / name)
            while not out_json.exists():
                if time.perf_counter() - t0 > 120 or proc.poll() is not None:
                    tail = (root / f"latency-{settle_s:g}.log").read_text(errors="replace")[-2000:]
                    raise SystemExit(f"no result for {name} (daemon exit {proc.poll()}); log tail:\n{tail}")
                time.sleep(0.01)
            lat.append(time.perf_counter() - t0)
            time.sleep(0.5)
    finally:
        stop_daemon(proc)
    lat_sorted = sorted(lat)
    p95 = lat_sorted[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    return {"settle_s": settle_s, "drops": drops, "p50_s": statistics.median(lat), "p95_s": p95,
            "min_s": lat_sorted[0], "max_s": lat_sorted[-1], "latencies_s": lat}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", required=True, type=Path)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2, help="process/drain pairs, in alternating order")
    ap.add_argument("--drops", type=int, default=20)
    ap.add_argument("--settle", default="2.0,0.5")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ocrd-bench/daemon"))
    ap.add_argument("--skip-drain", action="store_true")
    ap.add_argument("--json", type=Path, default=Path("bench/out/daemon_path.json"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    src = args.work / "files"
    files = make_copies(args.eval / "sroie-dev" / "img", src, args.files, prefix="d")
    report: dict = {}
    if not args.skip_drain:
        rounds = []
        for i in range(args.rounds):
            pair: dict = {}
            for path in ("process", "drain") if i % 2 == 0 else ("drain", "process"):
                pair[path] = process(args.work, src, args.files) if path == "process" else drain(args.work, files, args.files)
                print(f"# round {i + 1}, {path}: {pair[path]}", file=sys.stderr)
            pair["ratio_steady"] = pair["drain"]["steady_img_min"] / pair["process"]["steady_img_min"]
            pair["ratio_whole"] = pair["drain"]["whole_img_min"] / pair["process"]["whole_img_min"]
            rounds.append(pair)
        report["rounds"] = rounds
        for path in ("process", "drain"):
            report[path] = pooled([r[path] for r in rounds])
        report["ratio_whole"] = report["drain"]["whole_img_min"] / report["process"]["whole_img_min"]
        report["ratio_steady"] = report["drain"]["steady_img_min"] / report["process"]["steady_img_min"]
    sources = sorted((args.eval / "sroie-dev" / "img").glob("*.jpg"))
    report["latency"] = [latency(args.work, sources, float(s), args.drops) for s in args.settle.split(",")]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, default=str))
    if "drain" in report:
        p, d = report["process"], report["drain"]
        print(f"{args.files} distinct receipts, defaults, {args.rounds} rounds in alternating order\n")
        print("| round (order) | `ocrd process` steady / whole | `ocrd run` drain steady / whole | ratio steady / whole |")
        print("|---|---:|---:|---:|")
        for i, r in enumerate(report["rounds"]):
            order = "process, drain" if i % 2 == 0 else "drain, process"
            print(f"| {i + 1} ({order}) | {r['process']['steady_img_min']:.1f} / {r['process']['whole_img_min']:.1f} "
                  f"| {r['drain']['steady_img_min']:.1f} / {r['drain']['whole_img_min']:.1f} "
                  f"| {r['ratio_steady']:.3f} / {r['ratio_whole']:.3f} |")
        print(f"| all rounds (summed files / summed time) | {p['steady_img_min']:.1f} / {p['whole_img_min']:.1f} "
              f"| {d['steady_img_min']:.1f} / {d['whole_img_min']:.1f} "
              f"| **{report['ratio_steady']:.3f}** / **{report['ratio_whole']:.3f}** |")
        print(f"\nworkers' own time per file (`total_ms` of each job: decode to outputs written): "
              f"`ocrd process` {p['worker_s'] / p['files'] * 1000:.0f} ms, `ocrd run` {d['worker_s'] / d['files'] * 1000:.0f} ms "
              f"(ratio {d['worker_s'] / p['worker_s']:.3f}); the rest of a gap is dispatch and bookkeeping.")
        print(f"\npeak RSS (tree): `ocrd process` {p['peak_rss_mib']:.0f} MiB, `ocrd run` {d['peak_rss_mib']:.0f} MiB; "
              f"job states after the last drain: {d['states']}")
    print("\n| settle_s | drops | p50 drop-to-JSON | p95 | min | max |\n|---:|---:|---:|---:|---:|---:|")
    for r in report["latency"]:
        print(f"| {r['settle_s']:g} | {r['drops']} | {r['p50_s']:.2f} s | {r['p95_s']:.2f} s | {r['min_s']:.2f} s | {r['max_s']:.2f} s |")


if __name__ == "__main__":
    main()
