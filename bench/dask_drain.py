"""Drain throughput on a Dask cluster (issue 17): one worker and two, each pinned to its own core, against the
local pool on the same cores; the daemon's, the scheduler's and the workers' CPU; and the small-scale
figures the "plan past this machine" section of docs/design.md extrapolates from.

Usage:
    python bench/dask_drain.py --images ../shared/eval/sroie-dev/img [--files 24] [--json out.json]

Drains: the same N images (read from --images, copied into a temp inbox, never into the project) are
dropped at once into a fresh daemon; the drain is the time from the drop until every row is terminal.
  local-1: `taskset -c 0 ocrd run`, workers.count 1 (daemon and worker on core 0)
  dask-1:  `dask worker --nthreads 1` under `taskset -c 0`; daemon and scheduler not pinned
  local-2: `taskset -c 0,1 ocrd run`, workers.count 2
  dask-2:  two workers, `taskset -c 0` and `taskset -c 1`; daemon and scheduler not pinned
All of these are processes on one 2-core machine: the daemon and the scheduler take their CPU from the
same two cores the workers run on, so their CPU seconds are reported beside the drain.
Small-scale rates: scheduler round trips of trivial tasks, bytes echoed through the scheduler, job-log
commits per second (a job's four transitions, synchronous=FULL), and the inbox rescan of a 20,000-file tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of one process (not its children), seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_s(pid: int) -> float:
    """CPU of a process and its live descendants (a nanny and its worker; the daemon and its pool), found by
    parent pid in /proc (a child started from another thread is not in /proc/PID/task/PID/children)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu_s(p)
        todo += parents.get(p, [])
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval_s)
    raise SystemExit(f"timed out after {timeout_s:g} s waiting for {what}")


def spawn(cmd: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env=env, start_new_session=True)  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rows_terminal(db: Path, expected: int) -> bool:
    if not db.exists():
        return False
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        states = [r[0] for r in conn.execute("SELECT state FROM jobs")]
    finally:
        conn.close()
    return len(states) >= expected and all(s in ("done", "failed", "quarantined", "duplicate") for s in states)


def drain(name: str, images: list[Path], root: Path, *, workers: list[str] | None, local_cpus: str | None) -> dict:
    """One drain; `workers`: the taskset CPU list of each Dask worker (None: the local pool on `local_cpus`)."""
    run = root / name
    inbox = run / "inbox"
    inbox.mkdir(parents=True)
    cfg: dict[str, Any] = {
        "inboxes": [{"name": "scans", "path": "inbox", "watch": "inotify", "settle_s": 0.5}],
        "outbox": "outbox", "archive": "archive", "quarantine": "quarantine", "state_dir": "state",
        "duplicates": "reprocess", "logging": {"format": "json", "level": "info"},
        "workers": {"count": 1 if workers is None and local_cpus == "0" else 2, "intra_op_threads": 1},
    }  # fmt: skip
    procs: list[tuple[str, subprocess.Popen]] = []
    scheduler_proc = None
    if workers is not None:
        port = free_port()
        cfg["executor"], cfg["dask"] = "dask", {"scheduler": f"tcp://127.0.0.1:{port}"}
        scheduler_proc = spawn([str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                "--no-dashboard"], run / "scheduler.log", run)  # fmt: skip
        wait_for(lambda: b"Scheduler at" in (run / "scheduler.log").read_bytes(), 60, "the scheduler")
        for n, cpus in enumerate(workers):
            procs.append((f"worker{n}", spawn(
                ["taskset", "-c", cpus, str(VENV_BIN / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                 "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(run / f"w{n}")],
                run / f"worker{n}.log", run)))  # fmt: skip
    (run / "config.yaml").write_text(json.dumps(cfg))
    prefix = ["taskset", "-c", local_cpus] if workers is None and local_cpus else []
    daemon = spawn([*prefix, sys.executable, "-m", "ocrd", "run", "-c", str(run / "config.yaml")], run / "daemon.log",
                   run, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        log = run / "daemon.log"
        wait_for(lambda: b"daemon_started" in log.read_bytes() or daemon.poll() is not None, 300, "the daemon", 0.2)
        if workers is not None:
            wait_for(lambda: log.read_bytes().count(b"dask_worker_accepted") >= len(workers), 300, "the workers", 0.2)
        cpu0 = {"daemon": cpu_s(daemon.pid), "pool": tree_cpu_s(daemon.pid) - cpu_s(daemon.pid)}
        if scheduler_proc is not None:
            cpu0["scheduler"] = cpu_s(scheduler_proc.pid)
            cpu0["workers"] = sum(tree_cpu_s(p.pid) for _, p in procs)
        in_bytes = 0
        load_at_start = round(os.getloadavg()[0], 2)  # anything else running on the two cores shows here
        t0 = time.monotonic()
        for image in images:
            shutil.copyfile(image, inbox / image.name)
            in_bytes += image.stat().st_size
        wait_for(lambda: rows_terminal(run / "state" / "jobs.db", len(images)), 3600, f"the {name} drain", 0.2)
        drain_s = time.monotonic() - t0
        main_s = cpu_s(daemon.pid)
        cpu = {"daemon": main_s - cpu0["daemon"]}
        if workers is None:  # the local pool's worker processes are the daemon's children
            cpu["workers"] = tree_cpu_s(daemon.pid) - main_s - cpu0["pool"]
        if scheduler_proc is not None:
            cpu["scheduler"] = cpu_s(scheduler_proc.pid) - cpu0["scheduler"]
            cpu["workers"] = sum(tree_cpu_s(p.pid) for _, p in procs) - cpu0["workers"]
    finally:
        stop(daemon)
        for _, proc in procs:
            stop(proc)
        if scheduler_proc is not None:
            stop(scheduler_proc)
    out_bytes = sum(p.stat().st_size for p in (run / "outbox").rglob("*") if p.is_file())
    result = {"name": name, "files": len(images), "drain_s": round(drain_s, 2), "load_1min": load_at_start,
              "files_per_min": round(60 * len(images) / drain_s, 1),
              "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
              "bytes_in": in_bytes, "bytes_out": out_bytes}  # fmt: skip
    shutil.rmtree(run / "outbox", ignore_errors=True)
    shutil.rmtree(run / "archive", ignore_errors=True)
    print(json.dumps(result), flush=True)
    return result


def scheduler_rates(root: Path) -> dict:
    """Trivial-task round trips and bytes echoed through a local scheduler with two 1-thread workers."""
    from distributed import Client  # the [dask] extra; ocrd's own code imports it only in ocrd.cluster

    port = free_port()
    run = root / "rates"
    run.mkdir()
    sched = spawn([str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                  run / "scheduler.log", run)  # fmt: skip
    workers = []
    try:
        wait_for(lambda: b"Scheduler at" in (run / "scheduler.log").read_bytes(), 60, "the scheduler")
        workers = [spawn([str(VENV_BIN / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                          "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(run / f"w{n}")],
                         run / f"w{n}.log", run) for n in range(2)]  # fmt: skip
        with Client(f"tcp://127.0.0.1:{port}", timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            n = 2000
            cpu_before = cpu_s(sched.pid)
            t0 = time.perf_counter()
            client.gather(client.map(int, range(n), pure=False))
            tasks_s = time.perf_counter() - t0
            sched_cpu_per_task_ms = (cpu_s(sched.pid) - cpu_before) / n * 1000
            payload = os.urandom(1 << 20)  # an input plus its outputs are about 1-2 MiB per receipt
            rounds = 64
            t0 = time.perf_counter()
            client.gather([client.submit(bytes, payload, pure=False) for _ in range(rounds)])
            echo_s = time.perf_counter() - t0
    finally:
        for proc in workers:
            stop(proc)
        stop(sched)
    return {"trivial_tasks_per_s": round(n / tasks_s), "scheduler_cpu_ms_per_task": round(sched_cpu_per_task_ms, 3),
            "echo_mib_per_s": round(2 * rounds / echo_s, 1)}  # fmt: skip


def joblog_rate(root: Path, jobs: int = 300) -> dict:
    """A job's four commits (queued, stem, running, done) on this disk, as the daemon's loop makes them."""
    from ocrd.jobs.log import JobLog

    log = JobLog(root / "rate.db")
    fields = {"sha256": "0" * 64, "size_bytes": 1, "decode_ms": 1, "detect_ms": 1, "classify_ms": 1,
              "recognize_ms": 1, "total_ms": 4, "pages": 1, "lines": 1, "mean_confidence": 0.9, "outputs": ["a"],
              "worker_pid": 1}  # fmt: skip
    t0 = time.perf_counter()
    for n in range(jobs):
        row = log.add_queued("scans", f"f{n}.png", f"/w/{n}", 1)
        log.assign_stem(row.id, f"f{n}")
        log.start(row.id, f"f{n}")
        log.finish_done(row.id, fields)
    elapsed = time.perf_counter() - t0
    log.close()
    return {"jobs_per_s": round(jobs / elapsed, 1), "commits_per_s": round(4 * jobs / elapsed, 1)}


def scan_rate(root: Path, files: int = 20_000) -> dict:
    """One full rescan (`scan_inbox`, what admission runs every rescan_interval_s) of a tree of `files` files."""
    from ocrd.config.schema import InboxConfig
    from ocrd.inbox.files import scan_inbox

    tree = root / "scan"
    for n in range(files):
        folder = tree / f"d{n // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n}.jpg").write_bytes(b"x")
    inbox = InboxConfig(name="scans", path=tree)
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        count = sum(1 for _ in scan_inbox(inbox))
        timings.append(time.perf_counter() - t0)
    assert count == files, count
    return {"files": files, "scan_s": round(min(timings), 3), "files_per_s": round(files / min(timings))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="a folder of images (e.g. ../shared/eval/sroie-dev/img)")
    parser.add_argument("--files", type=int, default=24, help="images per drain (default 24)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", nargs="*", help="run only these parts: local-1 dask-1 local-2 dask-2 rates")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the drains, interleaved; ratios are medians")
    args = parser.parse_args()
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.files]
    if not images:
        raise SystemExit(f"no images in {args.images}")
    wanted = set(args.only or ["local-1", "dask-1", "local-2", "dask-2", "rates"])
    results: dict[str, Any] = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "drains": []}
    with tempfile.TemporaryDirectory(prefix="ocrd-dask-bench-") as tmp:
        root = Path(tmp)
        plan = [("local-1", None, "0"), ("dask-1", ["0"], None), ("local-2", None, "0,1"), ("dask-2", ["0", "1"], None)]
        for round_no in range(args.rounds):
            for name, workers, cpus in plan:
                if name in wanted:
                    results["drains"].append(drain(f"{name}", images, root / f"r{round_no}", workers=workers,
                                                   local_cpus=cpus))  # fmt: skip
        if "rates" in wanted:
            results["scheduler"] = scheduler_rates(root)
            results["joblog"] = joblog_rate(root)
            results["scan"] = scan_rate(root)
            print(json.dumps({k: results[k] for k in ("scheduler", "joblog", "scan")}), flush=True)
    rounds = [results["drains"][i : i + len(wanted - {"rates"})] for i in range(0, len(results["drains"]),
                                                                            max(1, len(wanted - {"rates"})))]  # fmt: skip
    pairs = {"dask_2_over_1": ("dask-2", "dask-1"), "local_2_over_1": ("local-2", "local-1"),
             "dask_over_local_1": ("dask-1", "local-1"), "dask_over_local_2": ("dask-2", "local-2")}  # fmt: skip
    ratios = {}
    for label, (top, bottom) in pairs.items():
        values = []
        for one_round in rounds:  # within a round the runs are back to back: the fairest comparison
            by_name = {d["name"]: d["files_per_min"] for d in one_round}
            if top in by_name and bottom in by_name:
                values.append(by_name[top] / by_name[bottom])
        if values:
            ratios[label] = {"median": round(statistics.median(values), 2), "each": [round(v, 2) for v in values]}
    results["ratios"] = ratios
    print(json.dumps(ratios))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
