"""CPU discovery for sizing the pool: the affinity mask, capped by cgroup v1/v2 CPU quotas (a fake /proc and /sys)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocrd.cpus import available_cpus, cgroup_cpu_quota


def _proc(tmp_path: Path, cgroup_lines: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup_lines)
    return proc


def test_cgroup_v2_quota_of_the_service(tmp_path):
    proc = _proc(tmp_path, "0::/system.slice/ocrd.service\n")
    service = tmp_path / "cg" / "system.slice" / "ocrd.service"
    service.mkdir(parents=True)
    (service / "cpu.max").write_text("150000 100000\n")  # CPUQuota=150%
    (tmp_path / "cg" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(proc, tmp_path / "cg") == pytest.approx(1.5)


def test_a_parents_quota_counts_and_the_tightest_wins(tmp_path):
    proc = _proc(tmp_path, "0::/machine.slice/box/inner\n")
    root = tmp_path / "cg"
    (root / "machine.slice" / "box" / "inner").mkdir(parents=True)
    (root / "machine.slice" / "box" / "inner" / "cpu.max").write_text("max 100000\n")
    (root / "machine.slice" / "box" / "cpu.max").write_text("200000 100000\n")
    (root / "machine.slice" / "cpu.max").write_text("400000 100000\n")
    assert cgroup_cpu_quota(proc, root) == pytest.approx(2.0)


def test_cgroup_v1_cfs_quota(tmp_path):
    proc = _proc(tmp_path, "4:memory:/x\n1:cpu,cpuacct:/docker/abc\n0::/\n")
    folder = tmp_path / "cg" / "cpu,cpuacct" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("50000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(proc, tmp_path / "cg") == pytest.approx(0.5)


def test_no_quota_anywhere_and_unreadable_setups_are_unlimited(tmp_path):
    proc = _proc(tmp_path, "0::/user.slice\n1:cpu:/\n")
    (tmp_path / "cg" / "cpu").mkdir(parents=True)
    (tmp_path / "cg" / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1: no limit
    (tmp_path / "cg" / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(proc, tmp_path / "cg") is None
    assert cgroup_cpu_quota(tmp_path / "no-proc", tmp_path / "cg") is None
    (proc / "self" / "cgroup").write_text("0::/\n")
    (tmp_path / "cg" / "cpu.max").write_text("garbage\n")
    assert cgroup_cpu_quota(proc, tmp_path / "cg") is None


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="affinity masks are Linux's")
def test_available_cpus_is_the_affinity_mask_capped_by_the_quota_rounded_up(tmp_path):
    mask = len(os.sched_getaffinity(0))
    unlimited = _proc(tmp_path / "a", "0::/\n")
    assert available_cpus(unlimited, tmp_path / "a" / "cg") == mask
    limited = _proc(tmp_path / "b", "0::/\n")
    (tmp_path / "b" / "cg").mkdir(parents=True)
    (tmp_path / "b" / "cg" / "cpu.max").write_text("50000 100000\n")  # half a CPU still gets one worker
    assert available_cpus(limited, tmp_path / "b" / "cg") == 1
