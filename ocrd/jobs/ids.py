"""Job identifiers: sortable by creation time, unique without coordination (ULID layout, Crockford base32)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_job_id(now_s: float | None = None) -> str:
    """26 characters: 48 bits of milliseconds since the epoch, then 80 random bits.

    Text order equals creation order (to the millisecond), so `ORDER BY id`
    lists jobs as they arrived.
    """
    millis = int((time.time() if now_s is None else now_s) * 1000)
    return _base32(millis, 10) + _base32(int.from_bytes(os.urandom(10), "big"), 16)
