"""The daemon's running counters: written by the main loop's parts, read by its status line and /metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class DaemonStats:
    started_s: float = field(default_factory=time.monotonic)
    last_progress_s: float = field(default_factory=time.monotonic)
    admitted: int = 0
    done: int = 0
    quarantined: int = 0
    duplicates: int = 0
    retried: int = 0
    # Replaced, never mutated: the HTTP thread reads it.
    quarantines_by_reason: dict[str, int] = field(default_factory=dict)
