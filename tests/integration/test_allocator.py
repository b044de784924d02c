"""The workers' allocator policy on a real glibc: freed memory given back after a job, or kept for reuse."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim and mallopt are glibc's")

# Allocate and free a 32 MiB buffer, then count the page faults of allocating and touching it again.
_REUSE_PROBE = r"""
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from ocrd.service.allocator import keep_freed_memory_for_reuse
    assert keep_freed_memory_for_reuse()
def touch():
    buf = np.empty(32 * 1024 * 1024, dtype=np.uint8)
    buf[::4096] = 1
    del buf
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

# A job's worth of heap blocks (100 KiB each: below glibc's mmap threshold, so they live in the heap),
# freed except the last one, which pins the top of the heap the way a long-lived object does: glibc
# keeps all of it resident until it is told to give free pages back. Prints MiB above the start.
_RELEASE_PROBE = r"""
import sys
import numpy as np
def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
start = rss_mib()
blocks = [np.ones(100 * 1024, dtype=np.uint8) for _ in range(1000)]
pinned = blocks[-1]
del blocks
held = rss_mib() - start
if sys.argv[1] == "release":
    from ocrd.service.allocator import release_freed_memory
    assert release_freed_memory()
print(round(held), round(rss_mib() - start))
"""


def _run(probe: str, mode: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, check=True)
    return [int(v) for v in out.stdout.split()]


def test_freed_buffers_are_reused_after_tuning():
    (default,), (tuned,) = _run(_REUSE_PROBE, "default"), _run(_REUSE_PROBE, "tuned")
    pages = 32 * 1024 * 1024 // 4096
    assert tuned < pages // 50, f"the tuned allocator should reuse the freed block ({tuned} faults)"
    # glibc's default gives the block back and faults it in again (fault-around and huge pages make the
    # count smaller than the page count, never near zero).
    assert default > 10 * max(tuned, 1), f"default {default} faults vs tuned {tuned}: the setting is moot"


def test_released_memory_leaves_the_process():
    held, kept = _run(_RELEASE_PROBE, "keep")
    assert held >= 80, f"the probe should hold ~100 MiB of freed heap ({held} MiB)"
    assert kept >= 0.8 * held, "without a release glibc keeps the freed heap resident"
    held, after = _run(_RELEASE_PROBE, "release")
    assert after <= 0.2 * held, f"released: {after} of {held} MiB still resident"
