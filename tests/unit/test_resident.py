"""The per-job memory figure: the high-water mark goes back to the current RSS on reset and rises with use."""

import sys

import pytest

from ocrd.service.resident import current_rss_mb, peak_rss_mb, reset_peak_rss

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_the_peak_after_a_reset_counts_what_was_touched_since_and_not_what_came_before():
    big = bytearray(200 * 1024 * 1024)  # touched (zeroed) pages: resident
    before = peak_rss_mb()
    del big
    assert reset_peak_rss()
    after_reset = peak_rss_mb()
    assert before is not None and after_reset is not None
    assert after_reset < before - 150  # the 200 MiB were given back, and the mark forgot them
    assert abs(after_reset - current_rss_mb()) < 20
    page = bytearray(64 * 1024 * 1024)
    assert peak_rss_mb() >= after_reset + 60
    del page
