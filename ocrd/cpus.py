"""How many CPUs this process may really use: its affinity mask, lowered by a cgroup CPU quota.

`os.cpu_count()` counts the host's CPUs. Under systemd (`CPUAffinity=`, `CPUQuota=`) or in a
container with a CPU limit the service may use far fewer, and sizing the worker pool by the host
would start a worker per host core, each with its own models in memory, all throttled to the quota.
Reads /proc and /sys only; nothing here raises: an unreadable or unknown setup counts as no limit.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def available_cpus(proc_root: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs for this process: the affinity mask, capped by a CPU quota rounded up (1.5 CPUs -> 2)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(proc_root, cgroup_root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cgroup_cpu_quota(proc_root: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The tightest CPU quota (in CPUs) on this process's cgroup and its parents; None when unlimited.

    cgroup v2: `cpu.max` ("max 100000" or "150000 100000") along the path of the "0::" line of
    /proc/self/cgroup, mounted at `cgroup_root` (or its `unified/` folder on hybrid systems).
    cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` of the "cpu" controller's path.
    """
    try:
        lines = (proc_root / "self" / "cgroup").read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    limits: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        rel = path.lstrip("/")
        if controllers == "":
            for mount in (cgroup_root, cgroup_root / "unified"):
                limits += _walk_up(mount, rel, _v2_limit)
        elif "cpu" in controllers.split(","):
            limits += _walk_up(cgroup_root / controllers, rel, _v1_limit)
    return min(limits) if limits else None


def _walk_up(mount: Path, rel: str, read_limit) -> list[float]:
    """The limits found in the cgroup folder `rel` under `mount` and in each of its parents."""
    found = []
    parts = [p for p in rel.split("/") if p]
    for depth in range(len(parts), -1, -1):
        limit = read_limit(mount.joinpath(*parts[:depth]))
        if limit is not None:
            found.append(limit)
    return found


def _v2_limit(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text(encoding="ascii").split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1_limit(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="ascii"))
        return None if quota <= 0 else quota / period
    except (OSError, ValueError, ZeroDivisionError):
        return None
