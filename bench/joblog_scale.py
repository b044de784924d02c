"""The job log at scale: `ocrd jobs --state failed --limit 50` and `ocrd status` on 1,000,000 rows.

Usage:
    python bench/joblog_scale.py [--rows 1000000] [--work /tmp/ocrd-bench/joblog] [--repeat 5]
        [--json bench/out/joblog_scale.json] [--importtime]

Builds `<work>/state/jobs.db`: an empty file migrated by `ocrd.jobs.log.JobLog` itself (the real
schema and indexes), then ROWS synthetic rows bulk-inserted with executemany in one transaction.
State mix: 95 % done, 2 % failed, 1 % quarantined, 1.5 % duplicate, 0.4 % queued, 0.1 % running;
created over 60 days (the newest rows in the last hour), realistic timings and paths.
Then, after compiling ocrd's bytecode as `pip install .` does, median of --repeat runs each (one
untimed run first, so the database pages are in the page cache as on a server that is in use):
* whole commands `ocrd jobs -c CFG --state failed --limit 50` and `ocrd status -c CFG` (process start
  to exit, output to /dev/null), next to `python -c pass` and `python -c "import ocrd.cli"`;
* in-process: JobLog.open_readonly + list_jobs(state="failed", limit=50), and + status().
With --importtime, `python -X importtime -m ocrd status` is summarised (largest cumulative imports).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

STATES = [("done", 0.95), ("failed", 0.02), ("quarantined", 0.01), ("duplicate", 0.015), ("queued", 0.004), ("running", 0.001)]
REASONS_FAILED = ["timeout", "worker_crashed", "internal_error", "output_failed"]
REASONS_Q = ["corrupt", "truncated", "unsupported_format", "too_many_pixels"]


def build(db: Path, rows: int, seed: int = 6) -> float:
    from ocrd.jobs.log import JobLog
    from ocrd.jobs.rows import COLUMNS, format_utc
    from ocrd.jobs.ids import new_job_id

    db.parent.mkdir(parents=True, exist_ok=True)
    JobLog(db).close()  # creates the file and runs the migrations (schema + indexes)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - timedelta(days=60)
    span = (now - start).total_seconds()
    states = [s for s, _ in STATES]
    weights = [w for _, w in STATES]
    t0 = time.perf_counter()
    import sqlite3

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    placeholders = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    done_ids: list[str] = []

    def gen():
        for i in range(rows):
            created = start + timedelta(seconds=span * i / rows)  # ids and created_at grow together
            job_id = new_job_id(created.timestamp())
            state = rng.choices(states, weights)[0]
            rel = f"2026/{rng.randrange(1, 13):02d}/scan_{i:07d}.{rng.choice(['jpg', 'pdf', 'tif', 'png'])}"
            sha = f"{rng.getrandbits(256):064x}"
            started = created + timedelta(seconds=rng.uniform(2, 30))
            finished = started + timedelta(seconds=rng.uniform(0.8, 6))
            total = (finished - started).total_seconds() * 1000
            reason = error = dup = None
            fin = format_utc(finished)
            timings = [round(rng.uniform(5, 60), 1), round(total * 0.25, 1), round(total * 0.03, 1), round(total * 0.65, 1), round(total, 1)]
            pages, lines, conf = rng.randint(1, 3), rng.randint(10, 90), round(rng.uniform(0.85, 0.99), 4)
            outputs = json.dumps([f"/srv/ocr/outbox/scans/{rel}.json", f"/srv/ocr/outbox/scans/{rel}.txt"])
            st, attempts = format_utc(started), 1
            if state == "failed":
                reason, error, attempts = rng.choice(REASONS_FAILED), "processing took longer than 300 s", 3
                timings, pages, lines, conf, outputs = [None] * 5, None, None, None, None
            elif state == "quarantined":
                reason, error = rng.choice(REASONS_Q), "the file is damaged"
                timings, pages, lines, conf, outputs = [None] * 5, None, None, None, None
            elif state == "duplicate":
                dup = done_ids[rng.randrange(len(done_ids))] if done_ids else None
                timings, pages, lines, conf, outputs = [None] * 5, None, None, None, None
                if dup is None:
                    state = "done"
            elif state in ("queued", "running"):
                fin = None
                timings, pages, lines, conf, outputs = [None] * 5, None, None, None, None
                if state == "queued":
                    st, attempts = None, 0
            if state == "done":
                done_ids.append(job_id)
                if len(done_ids) > 1000:
                    done_ids.pop(0)
            row = {
                "id": job_id, "inbox": rng.choice(["scans", "scans", "scans", "invoices", "hr"]), "rel_path": rel,
                "sha256": sha, "size_bytes": rng.randint(50_000, 5_000_000), "state": state, "attempts": attempts,
                "reason": reason, "error": error, "created_at": format_utc(created), "started_at": st,
                "finished_at": fin, "wait_ms": None if st is None else round((started - created).total_seconds() * 1000),
                "decode_ms": timings[0], "detect_ms": timings[1], "classify_ms": timings[2], "recognize_ms": timings[3],
                "total_ms": timings[4], "pages": pages, "lines": lines, "mean_confidence": conf, "outputs": outputs,
                "worker_pid": rng.randint(1000, 60000) if st else None, "ocrd_version": "0.1.0",
                "model_set": "ppocrv6-small", "work_path": f"/srv/ocr/inbox/scans/.ocrd/work/{job_id}/{rel.rsplit('/', 1)[-1]}",
                "stem": rel.rsplit("/", 1)[-1].rsplit(".", 1)[0] if st else None, "duplicate_of": dup, "not_before": None,
            }
            yield tuple(row.get(c) for c in COLUMNS)

    conn.execute("BEGIN")
    conn.executemany(sql, gen())
    conn.execute("COMMIT")
    # No ANALYZE: the daemon never runs it, so the planner sees what a real jobs.db gives it.
    conn.close()
    return time.perf_counter() - t0


def time_cmd(cmd: list[str], repeat: int) -> tuple[float, list[float]]:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # warm, untimed
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), runs


def time_inproc(db: Path, repeat: int) -> dict:
    from ocrd.jobs.log import JobLog

    out = {}
    for name, fn in [("list failed 50", lambda j: j.list_jobs(state="failed", limit=50)), ("status", lambda j: j.status())]:
        open_q, q_only = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            with JobLog.open_readonly(db) as j:
                t1 = time.perf_counter()
                fn(j)
                t2 = time.perf_counter()
            open_q.append((t2 - t0) * 1000)
            q_only.append((t2 - t1) * 1000)
        out[name] = {"open_plus_query_ms": statistics.median(open_q), "query_ms": statistics.median(q_only)}
    with JobLog.open_readonly(db) as j:
        from ocrd.jobs.queries import STATUS_COUNTS_SQL, list_jobs_query

        sql, params = list_jobs_query("failed", None, None, 50)
        out["plans"] = {"list failed 50": j.explain(sql, params), "status counts": j.explain(STATUS_COUNTS_SQL)}
    return out


def importtime(cfg: Path) -> list[tuple[str, float]]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "ocrd", "status", "-c", str(cfg)],
                          capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append((m.group(4), int(m.group(2)) / 1000, len(m.group(3))))
    top = [(name, ms) for name, ms, indent in rows if indent <= 3]  # top-level imports (cumulative)
    return sorted(top, key=lambda r: -r[1])[:12]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/ocrd-bench/joblog"))
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--reuse", action="store_true", help="keep an existing jobs.db of the right size")
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--json", type=Path, default=Path("bench/out/joblog_scale.json"))
    args = ap.parse_args()
    db = args.work / "state" / "jobs.db"
    cfg = args.work / "config.yaml"
    build_s = None
    if not (args.reuse and db.exists()):
        shutil.rmtree(args.work, ignore_errors=True)
        build_s = build(db, args.rows)
    cfg.write_text(f"state_dir: {args.work / 'state'}\n")
    py = sys.executable
    # `pip install .` compiles the package's bytecode at install time; a checkout (editable install,
    # or PYTHONDONTWRITEBYTECODE=1) would otherwise recompile ocrd's modules on every command.
    import ocrd

    subprocess.run([py, "-m", "compileall", "-q", str(Path(ocrd.__file__).parent)], check=True)
    report: dict = {"rows": args.rows, "build_s": build_s, "db_mib": db.stat().st_size / 2**20, "whole_command_ms": {}}
    for label, cmd in [
        ("python -c pass", [py, "-c", "pass"]),
        ("python -c 'import ocrd.cli'", [py, "-c", "import ocrd.cli"]),
        ("ocrd jobs --state failed --limit 50", [py, "-m", "ocrd", "jobs", "-c", str(cfg), "--state", "failed", "--limit", "50"]),
        ("ocrd status", [py, "-m", "ocrd", "status", "-c", str(cfg)]),
    ]:
        med, runs = time_cmd(cmd, args.repeat)
        report["whole_command_ms"][label] = {"median": med, "runs": runs}
    report["in_process"] = time_inproc(db, args.repeat)
    if args.importtime:
        report["importtime_top_ms"] = importtime(cfg)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"{args.rows:,} rows, jobs.db {report['db_mib']:.0f} MiB" + (f", built in {build_s:.0f} s" if build_s else ""))
    print("\n| command | median of %d (ms) |\n|---|---:|" % args.repeat)
    for label, r in report["whole_command_ms"].items():
        print(f"| `{label}` | {r['median']:.0f} |")
    print("\n| in-process | open + query (ms) | query only (ms) |\n|---|---:|---:|")
    for label in ("list failed 50", "status"):
        r = report["in_process"][label]
        print(f"| {label} | {r['open_plus_query_ms']:.1f} | {r['query_ms']:.1f} |")
    print("\nplans:", json.dumps(report["in_process"]["plans"]))
    if args.importtime:
        print("\n| top-level import (cumulative) | ms |\n|---|---:|")
        for name, ms in report["importtime_top_ms"]:
            print(f"| {name} | {ms:.1f} |")


if __name__ == "__main__":
    main()
