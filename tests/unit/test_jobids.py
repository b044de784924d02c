"""Unit tests for job ids: 26 Crockford base32 characters, text order = creation order, unique."""

from __future__ import annotations

import re
import time

from ocrd.jobs.ids import new_job_id

_CROCKFORD = re.compile(r"[0-9ABCDEFGHJKMNPQRSTVWXYZ]{26}")


def test_length_and_alphabet():
    job_id = new_job_id(1_700_000_000.0)
    assert len(job_id) == 26
    assert _CROCKFORD.fullmatch(job_id)


def test_sortable_by_creation_time():
    times = [0.0, 0.001, 1.0, 999.999, 1_000.0, 1_700_000_000.0, 1_700_000_000.001, 4_000_000_000.5]
    ids = [new_job_id(t) for t in times]
    assert sorted(ids) == ids
    assert sorted(reversed(ids)) == ids


def test_time_prefix_encodes_milliseconds():
    assert new_job_id(0.0)[:10] == "0" * 10
    assert new_job_id(0.032)[:10] == "0000000010"  # 32 ms = "10" in base 32
    a, b = new_job_id(1_700_000_000.123), new_job_id(1_700_000_000.123)
    assert a[:10] == b[:10]


def test_unique_within_one_millisecond():
    ids = {new_job_id(1_700_000_000.0) for _ in range(2000)}
    assert len(ids) == 2000


def test_default_clock_is_now():
    before = new_job_id(time.time() - 1)
    assert before < new_job_id() < new_job_id(time.time() + 1)
