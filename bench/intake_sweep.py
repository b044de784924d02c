"""Robustness sweep for intake: open and decode every file of a folder, each in a fresh child process with a timeout; must not modify the corpus.

Usage: python bench/intake_sweep.py CORPUS_DIR [--timeout-s 30] [--jobs 2] [--json OUT]

Each child sets OpenCV's limits (`decoder_env`) before cv2 is imported, exactly
as a worker does, then runs `open_document` + `pages()`. The parent records
per file the reason code (or `ok` with the page count), wall time and the
child's own peak RSS (from wait4, so one child's peak is not mixed with
another's). A child killed by a signal counts as `worker_crashed`, one past
the timeout as `timeout`, and any exception other than InputError as
`internal:<type>` (a bug to fix).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def _child(path: str) -> None:
    """Run in the child: decode one file, print one JSON line."""
    sys.path.insert(0, str(_REPO))
    import logging

    logging.disable(logging.WARNING)  # extension mismatches are expected here
    from ocrd.config.schema import IntakeConfig
    from ocrd.intake.decode import decoder_env

    cfg = IntakeConfig()
    os.environ.update(decoder_env(cfg))  # before cv2 is first imported
    from ocrd.errors import InputError
    from ocrd.intake.gate import open_document

    result: dict = {}
    try:
        doc = open_document(Path(path), cfg)
        count = 0
        for page in doc.pages():
            count += 1
            del page
        result = {"outcome": "ok", "format": doc.format, "pages": count}
    except InputError as exc:
        result = {"outcome": str(exc.reason), "message": exc.message}
    except Exception as exc:  # a bug: intake must only raise InputError for bad files
        result = {"outcome": f"internal:{type(exc).__name__}", "message": str(exc)[:300]}
    print(json.dumps(result), flush=True)


def _run_one(path: Path, timeout_s: float) -> dict:
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    status, rusage = 0, None
    timed_out = False
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - start > timeout_s:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    wall_s = time.monotonic() - start
    out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)  # we reaped it ourselves
    record = {"file": str(path), "wall_s": round(wall_s, 3), "peak_rss_mb": round(rusage.ru_maxrss / 1024, 1)}
    if timed_out:
        record["outcome"] = "timeout"
    elif proc.returncode < 0:
        record["outcome"] = "worker_crashed"
        record["message"] = f"killed by signal {-proc.returncode}"
    else:
        try:
            record.update(json.loads(out.strip().splitlines()[-1]))
        except (IndexError, ValueError):
            record["outcome"] = "worker_crashed"
            record["message"] = f"exit {proc.returncode} without a result"
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every record here")
    args = parser.parse_args(argv)

    files = sorted(p for p in args.corpus.rglob("*") if p.is_file() or p.is_symlink())
    records: list[dict] = []
    from concurrent.futures import ThreadPoolExecutor

    # Threads only wait on children; each decode is its own process.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for record in pool.map(lambda p: _run_one(p, args.timeout_s), files):
            records.append(record)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    _print_summary(records, args.corpus)
    bad = [r for r in records if r["outcome"].startswith("internal:") or r["outcome"] in ("timeout", "worker_crashed")]
    return 1 if bad else 0


def _print_summary(records: list[dict], corpus: Path) -> None:
    counts = collections.Counter(r["outcome"] for r in records)
    pages = sum(r.get("pages", 0) for r in records)
    print(f"\nintake sweep over {corpus} ({len(records)} files, {pages} pages decoded)\n")
    print("| outcome | files |")
    print("|---|---:|")
    for outcome, n in counts.most_common():
        print(f"| {outcome} | {n} |")
    top_rss = max(records, key=lambda r: r["peak_rss_mb"])
    slowest = max(records, key=lambda r: r["wall_s"])
    rss = sorted(r["peak_rss_mb"] for r in records)
    print()
    print(f"peak RSS of one child: max {top_rss['peak_rss_mb']} MB ({_rel(top_rss, corpus)}), median {rss[len(rss) // 2]} MB")
    print(f"slowest file: {slowest['wall_s']} s ({_rel(slowest, corpus)}, {slowest['outcome']})")
    print(f"total wall (sum over children): {sum(r['wall_s'] for r in records):.1f} s")
    odd = [r for r in records if r["outcome"].startswith("internal:") or r["outcome"] in ("timeout", "worker_crashed")]
    for r in odd:
        print(f"  !! {r['outcome']}: {_rel(r, corpus)} {r.get('message', '')}")


def _rel(record: dict, corpus: Path) -> str:
    try:
        return str(Path(record["file"]).relative_to(corpus))
    except ValueError:
        return record["file"]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        sys.exit(main())
