"""The per-job memory figure: the high-water mark goes back to the current RSS on reset and rises with use."""

import mmap
import sys

import pytest

from ocrd.service.resident import current_rss_mb, peak_rss_mb, reset_peak_rss

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

MIB = 1024 * 1024


def fresh_resident_pages(size: int) -> mmap.mmap:
    """Memory the kernel hands over new and that is then written page by page.

    Not a bytearray: in a long test session the allocator may serve one from
    memory that earlier tests freed but that is still resident, and then the
    high-water mark rightly does not move."""
    area = mmap.mmap(-1, size)
    for offset in range(0, size, mmap.PAGESIZE):
        area[offset] = 1
    return area


def test_the_peak_after_a_reset_counts_what_was_touched_since_and_not_what_came_before():
    big = fresh_resident_pages(200 * MIB)
    before = peak_rss_mb()
    big.close()  # unmapped: given back to the kernel
    assert reset_peak_rss()
    after_reset = peak_rss_mb()
    assert before is not None and after_reset is not None
    assert after_reset < before - 150  # the 200 MiB were given back, and the mark forgot them
    assert abs(after_reset - current_rss_mb()) < 20
    page = fresh_resident_pages(64 * MIB)
    assert peak_rss_mb() >= after_reset + 60
    page.close()
