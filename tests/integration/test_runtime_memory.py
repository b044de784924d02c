"""The worker's allocator setting: freed inference buffers are reused, not faulted in again (glibc only)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Allocate and free a 32 MiB buffer, then count the page faults of allocating and touching it again.
_PROBE = r"""
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from ocrd.runtime import keep_freed_memory_for_reuse
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


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are a glibc feature")
def test_freed_buffers_are_reused_after_tuning():
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    default, tuned = faults("default"), faults("tuned")
    pages = 32 * 1024 * 1024 // 4096
    assert tuned < pages // 50, f"the tuned allocator should reuse the freed block ({tuned} faults)"
    # glibc's default gives the block back and faults it in again (fault-around and huge pages make the
    # count smaller than the page count, never near zero).
    assert default > 10 * max(tuned, 1), f"default {default} faults vs tuned {tuned}: the setting is moot"
