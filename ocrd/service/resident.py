"""A process's resident memory from /proc: now, and its peak since the last reset (one job's cost).

Linux only; elsewhere every figure is None or 0.0 and nothing fails. Imports no third-party library.

Why a reset: the kernel keeps one high-water mark per process (VmHWM). A worker lives for hundreds of
jobs, so without a reset the mark would be the worst page so far, not this page's. Writing "5" to
/proc/self/clear_refs (Linux >= 4.0) sets the mark back to the current RSS, so the peak read after a
job is the most the worker held while reading that file: its engine plus the page.
"""

from __future__ import annotations

import os

_MIB = 1024 * 1024


def current_rss_mb() -> float:
    """Resident set size of this process now (not the peak), from /proc; 0.0 where it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / _MIB
    except (OSError, ValueError, IndexError):
        return 0.0


def reset_peak_rss() -> bool:
    """Set this process's high-water mark back to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """The process's resident-memory high-water mark (VmHWM) in MiB, or None where /proc lacks it."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None
