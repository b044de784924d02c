"""Whole-process-tree resident memory: sample /proc for a process and all its descendants.

Usage as a module:

    from proc_tree import TreeSampler
    with TreeSampler(proc.pid, interval_s=0.05) as s:
        proc.wait()
    s.peak_bytes, s.samples  # [(seconds since start, summed RSS bytes, process count), ...]

Usage as a command (prints peak RSS of the tree as JSON on stderr, exit code of the command):

    python bench/proc_tree.py [--csv OUT.csv] -- CMD ARGS...

RSS is summed over the tree (shared pages such as the onnxruntime library are
counted once per process, as `ps` and the kernel's OOM accounting do).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        # ppid is the 2nd field after the parenthesised command name (which may hold spaces)
        rest = data[data.rfind(b")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(name))
    return kids


def tree_pids(root: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(root: int) -> tuple[int, int]:
    pids = tree_pids(root)
    return sum(rss_bytes(p) for p in pids), len(pids)


class TreeSampler:
    """Background thread summing the RSS of `root` and its descendants every `interval_s`."""

    def __init__(self, root: int, interval_s: float = 0.05):
        self.root = root
        self.interval_s = interval_s
        self.samples: list[tuple[float, int, int]] = []
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.perf_counter()

    def _loop(self) -> None:
        while not self._stop.is_set():
            total, count = tree_rss(self.root)
            if count and total:
                self.samples.append((time.perf_counter() - self._t0, total, count))
                self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> TreeSampler:
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2**20


def run_sampled(cmd: list[str], interval_s: float = 0.05, **popen_kw) -> tuple[int, float, TreeSampler]:
    """Run `cmd` to completion while sampling its tree; return (exit code, wall seconds, sampler)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, **popen_kw)
    with TreeSampler(proc.pid, interval_s) as sampler:
        proc.wait()
    return proc.returncode, time.perf_counter() - t0, sampler


def main() -> None:
    args = sys.argv[1:]
    csv_path = None
    if args[:1] == ["--csv"]:
        csv_path, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise SystemExit(__doc__)
    code, wall, s = run_sampled(args)
    if csv_path:
        with open(csv_path, "w", encoding="ascii") as fh:
            fh.write("t_s,rss_bytes,processes\n")
            fh.writelines(f"{t:.3f},{b},{n}\n" for t, b, n in s.samples)
    print(json.dumps({"exit": code, "wall_s": round(wall, 3), "peak_rss_mib": round(s.peak_mib, 1)}), file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
