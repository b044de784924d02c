"""The stability tracker: decides when a dropped file is completely written; no threads, no clock of its own, I/O only through an injected stat.

A file is stable when a stat taken at least `settle_s` after the start of its
quiet period shows the same size and mtime as at its start, and no event
arrived in between. The quiet period starts at the last change seen (new size
or mtime) or the last event, whichever is later. Why a confirming stat rather
than "nothing heard for settle_s": events can be missed (network shares,
inotify queue overflow) and rescans are rare, so silence alone proves nothing.

The daemon's loop is: `touch()` for each watcher event, `observe()` for each
rescan entry, then `refresh()` (stats what is due) and `ready()` (claims).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class _Entry:
    size_bytes: int | None = None  # None until the first stat
    mtime_ns: int | None = None
    quiet_since_s: float = 0.0  # start of the current quiet period
    observed_s: float | None = None  # time of the last stat


class StabilityTracker:
    """Tracks candidate files of one inbox until each has settled; `ready()` hands them out once."""

    def __init__(self, settle_s: float, clock: Callable[[], float]):
        if settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, got {settle_s}")
        self.settle_s = float(settle_s)
        self._clock = clock
        self._entries: dict[Path, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return Path(path) in self._entries if isinstance(path, (str, os.PathLike)) else False

    def observe(self, path: str | os.PathLike[str], size_bytes: int, mtime_ns: int) -> None:
        """Record a stat of `path` (from a scan or `refresh`); a changed size or mtime restarts the quiet period."""
        now = self._clock()
        key = Path(path)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(size_bytes, mtime_ns, now, now)
            return
        if entry.size_bytes != size_bytes or entry.mtime_ns != mtime_ns:
            entry.size_bytes, entry.mtime_ns = size_bytes, mtime_ns
            entry.quiet_since_s = now
        entry.observed_s = now

    def touch(self, path: str | os.PathLike[str]) -> None:
        """Record a watcher event for `path`: whatever was seen before no longer counts."""
        now = self._clock()
        key = Path(path)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(quiet_since_s=now)
        else:
            entry.quiet_since_s = now

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Stop tracking `path` (it vanished, was claimed elsewhere, or is not a regular file)."""
        self._entries.pop(Path(path), None)

    def due(self) -> list[Path]:
        """Paths that need a stat now: never stat'ed yet, or quiet for settle_s since the last change, event or stat."""
        now = self._clock()
        return [
            path
            for path, e in self._entries.items()
            if e.observed_s is None or now - max(e.quiet_since_s, e.observed_s) >= self.settle_s
        ]

    def refresh(self, stat_fn: Callable[[Path], os.stat_result] = os.lstat) -> None:
        """Stat every due path with `stat_fn` (lstat: never follow links) and observe or forget it.

        Vanished paths and anything that is not a regular file are forgotten;
        other errors (a permission hiccup on a share) keep the entry for the next try.
        """
        for path in self.due():
            try:
                st = stat_fn(path)
            except (FileNotFoundError, NotADirectoryError):
                self.forget(path)
                continue
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                self.forget(path)
                continue
            self.observe(path, st.st_size, st.st_mtime_ns)

    def ready(self) -> list[Path]:
        """Settled, non-empty files, oldest quiet period first; they are no longer tracked (the caller claims them)."""
        settled = [
            (e.quiet_since_s, path)
            for path, e in self._entries.items()
            if e.observed_s is not None
            and e.size_bytes  # None (never stat'ed) and 0 (empty: the writer may not have started) wait
            and e.observed_s - e.quiet_since_s >= self.settle_s
        ]
        settled.sort()
        for _, path in settled:
            del self._entries[path]
        return [path for _, path in settled]
