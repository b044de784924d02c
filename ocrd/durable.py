"""Durability primitives: fsync a file or a directory's entries, tolerating file systems that refuse it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

# Some network file systems refuse fsync on a directory; the data itself was synced by then.
_FSYNC_UNSUPPORTED = (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP)


def fsync_file(path: Path) -> None:
    """Make a file's contents durable (before renaming it into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` durable (a rename is only durable once its directories are synced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)
