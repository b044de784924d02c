"""Crash sweep (issue 7): SIGKILL the whole daemon (main process and workers) at random moments, many
times, restarting it each time, while files keep arriving; then let it drain and check that nothing was
lost, duplicated or left half written.

    .venv/bin/python bench/crash_sweep.py --files 500 --kills 200          # the long version
    .venv/bin/python bench/crash_sweep.py --files 20 --kills 5 --seed 1     # a quick proof

Checks after the last restart has drained (each figure must be 0):
  files lost          an input not found exactly once in archive + quarantine (by content), or still
                      in an inbox or .ocrd/work, or a `done` row without its result
  duplicate outputs   more than one result JSON for one input, or a `~N` output name
  partial outputs     an output (.txt, .vis.*) without its JSON, or a hidden/.tmp file in the outbox
  rows not terminal   job rows still queued or running
  integrity           PRAGMA integrity_check of jobs.db is not "ok"
Prints one JSON summary line last; exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.system.harness import (  # noqa: E402
    DaemonHarness,
    encode_image,
    files_under,
    render_text_image,
    temp_like_files,
    wait_until,
)

TERMINAL = {"done", "failed", "quarantined", "duplicate"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_inputs(count: int, seed: int) -> list[tuple[str, str, bytes, str]]:
    """(inbox, rel_path, data, text): unique content each, in both inboxes, some in sub-folders."""
    rng = random.Random(seed)
    inputs = []
    for i in range(count):
        text = f"Sweep {10000 + i}"
        ext = rng.choice(("png", "jpg"))
        folder = rng.choice(("", "", "a", "b/c"))
        rel = f"{folder}/f_{i:04d}.{ext}" if folder else f"f_{i:04d}.{ext}"
        inbox = "scans" if i % 3 else "polled"
        inputs.append((inbox, rel, encode_image(render_text_image(text, width_px=300, height_px=64), ext), text))
    return inputs


def _drop(harness: DaemonHarness, inbox: str, rel: str, data: bytes) -> None:
    dest = harness.inbox(inbox) / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = harness.root / "staging" / f"{os.getpid()}-{rel.replace('/', '_')}"
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.write_bytes(data)
    os.rename(staging, dest)  # arrives complete, like a well-behaved uploader


def verify(harness: DaemonHarness, inputs: list[tuple[str, str, bytes, str]]) -> dict:
    """The figures of the module docstring, plus counts for the record."""
    by_sha = {_sha(data): (inbox, rel, text) for inbox, rel, data, text in inputs}
    placed: Counter[str] = Counter()
    for root in (harness.archive, harness.quarantine):
        for path in files_under(root):
            if path.name.endswith(".reason.json"):
                continue
            placed[_sha(path.read_bytes())] += 1
    leftovers = [p for name in ("scans", "polled") for p in files_under(harness.inbox(name))]
    rows = harness.rows()
    states = Counter(r["state"] for r in rows)
    jsons: Counter[str] = Counter()
    wrong_text = 0
    outputs = files_under(harness.outbox)
    for path in outputs:
        if path.name.endswith(".json") and not path.name.startswith("."):
            result = json.loads(path.read_text(encoding="utf-8"))
            sha = result["source"]["sha256"]
            jsons[sha] += 1
            expected = by_sha.get(sha, (None, None, ""))[2]
            if "".join(expected.split()) not in "".join(result["pages"][0]["text"].split()):
                wrong_text += 1
    json_stems = {p.with_suffix("") for p in outputs if p.suffix == ".json"}
    partial = [p for p in outputs if p.suffix != ".json" and not p.name.startswith(".")
               and Path(str(p).split(".")[0]) not in json_stems]  # fmt: skip
    partial += temp_like_files(harness.outbox)
    done_shas = {r["sha256"] for r in rows if r["state"] == "done"}
    lost = [sha for sha in by_sha if placed[sha] != 1] + [str(p) for p in leftovers]
    lost += [sha for sha in done_shas if jsons[sha] == 0]
    duplicates = [sha for sha, n in jsons.items() if n > 1] + [str(p) for p in outputs if "~" in p.name]
    conn = sqlite3.connect(f"{harness.db_path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return {
        "files": len(inputs),
        "rows": len(rows),
        "states": dict(states),
        "quarantine_reasons": dict(Counter(r["reason"] for r in rows if r["state"] == "quarantined")),
        "files_lost": len(lost),
        "duplicate_outputs": len(duplicates),
        "partial_outputs_visible": len(partial),
        "rows_not_terminal": sum(1 for r in rows if r["state"] not in TERMINAL),
        "integrity_ok": integrity == [("ok",)],
        "results_with_wrong_text": wrong_text,
        "details": {"lost": lost[:20], "duplicates": duplicates[:20], "partial": [str(p) for p in partial[:20]]},
    }


def sweep(root: Path, files: int, kills: int, max_delay_s: float, seed: int, workers: int = 2,
          log=print) -> dict:  # fmt: skip
    rng = random.Random(seed)
    harness = DaemonHarness(root)
    harness.write_config(workers={"count": workers}, rescan_interval_s=1.0)
    inputs = _make_inputs(files, seed)
    # Half the batch is there at the first start (so early kills land on running jobs); the rest
    # arrives a slice before each restart (so kills land on claims and recovery too).
    first = files // 2
    pending = list(inputs)
    per_round = -(-(files - first) // (kills + 1))
    started = time.monotonic()
    kills_done = 0
    try:
        for round_no in range(kills + 1):
            take = per_round + (first if round_no == 0 else 0)
            for inbox, rel, data, _ in pending[:take]:
                _drop(harness, inbox, rel, data)
            pending = pending[take:]
            harness.start()
            if round_no == kills:
                break
            # Some kills land at once (start-up recovery); most after a random number of jobs of this run
            # finished plus a random delay, so they hit jobs being claimed, run, written or moved.
            if rng.random() > 0.1:
                want = rng.randint(0, 3)
                try:
                    wait_until(lambda: len(harness.events("job_done")) >= want, max_delay_s * 5, "jobs", 0.02)
                except AssertionError:
                    pass  # nothing left to do in this run: kill it anyway
                time.sleep(rng.uniform(0, max_delay_s / 4))
            harness.kill_group()
            kills_done += 1
            wait_until(lambda: not harness.live_group_members(), 30, "the killed group to be gone")
            done = sum(1 for r in harness.rows() if r["state"] == "done")
            log(f"kill {kills_done}/{kills}: {done} done so far")
        for inbox, rel, data, _ in pending:
            _drop(harness, inbox, rel, data)
        harness.wait_rows(lambda rows: len(rows) >= files and all(r["state"] in TERMINAL for r in rows),
                          120 + 3 * files, "the last run to drain")  # fmt: skip
        wait_until(lambda: not any(files_under(harness.inbox(n)) for n in ("scans", "polled")), 60,
                   "inboxes and work folders empty")  # fmt: skip
        stop_code = harness.stop()
    finally:
        harness.cleanup()
    figures = verify(harness, inputs)
    runs = range(1, harness.runs + 1)
    figures["jobs_interrupted_and_recovered"] = sum(len(harness.events("job_interrupted", run=r)) for r in runs)
    figures["claims_recovered_without_row"] = sum(len(harness.events("job_recovered", run=r)) for r in runs)
    figures.update(kills=kills_done, seconds=round(time.monotonic() - started, 1), stop_exit_code=stop_code,
                   max_delay_s=max_delay_s, seed=seed, workers=workers)  # fmt: skip
    return figures


def failed(figures: dict) -> bool:
    return bool(figures["files_lost"] or figures["duplicate_outputs"] or figures["partial_outputs_visible"]
                or figures["rows_not_terminal"] or not figures["integrity_ok"] or figures["stop_exit_code"])  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--max-delay", type=float, default=3.0, help="longest wait before a kill, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", type=Path, help="work folder (default: a new temp folder, kept for inspection)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="ocrd-crash-sweep-"))
    print(f"crash sweep: {args.files} files, {args.kills} kills, in {root} on {platform.node()} "
          f"({os.cpu_count()} cpus)", flush=True)  # fmt: skip
    figures = sweep(root, args.files, args.kills, args.max_delay, args.seed, args.workers,
                    log=lambda line: print(line, flush=True))  # fmt: skip
    print(json.dumps(figures))
    return 1 if failed(figures) else 0


if __name__ == "__main__":
    sys.exit(main())
