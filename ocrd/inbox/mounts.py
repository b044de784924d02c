"""Chooses inotify or polling per inbox from the mount table; reads /proc only when no text is injected, never writes.

Why: inotify reports only changes made through the local kernel, so on a
network or cluster file system a file written by another machine produces no
event at all. `auto` therefore polls on those and uses inotify elsewhere.
"""

from __future__ import annotations

import os
import re

from ocrd.logs import get_logger

log = get_logger(__name__)

NETWORK_FS_TYPES = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "smb", "9p", "afs", "ceph", "glusterfs",
        "sshfs", "fuse", "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", "davfs", "coda",
        "virtiofs", "vboxsf", "ncpfs",
    }
)
# Every FUSE subtype (fuse.sshfs, fuse.rclone, fuse.s3fs, ...): the data may live anywhere.
# `fuseblk` (ntfs-3g, exfat on a local disk) is deliberately not in here.
NETWORK_FS_PREFIXES = ("fuse.",)

_MOUNT_TABLES = ("/proc/self/mountinfo", "/proc/mounts")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in mount points as \040 \011 \012 \134.
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[tuple[str, str]]:
    """(mount point, file system type) for each line of /proc/self/mountinfo or /proc/mounts text, in order.

    mountinfo: `id parent maj:min root MOUNTPOINT opts [optional...] - FSTYPE source superopts`.
    mounts:    `source MOUNTPOINT FSTYPE opts dump pass`. Malformed lines are skipped.
    """
    mounts: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if "-" in fields[6:] and fields[0].isdigit():
            sep = fields.index("-", 6)
            if sep + 1 < len(fields):
                mounts.append((_unescape(fields[4]), fields[sep + 1]))
        elif len(fields) >= 3:
            mounts.append((_unescape(fields[1]), fields[2]))
    return mounts


def filesystem_type(path: str | os.PathLike[str], mounts_text: str) -> str | None:
    """The type of the file system holding `path`: the longest matching mount point (the last one when stacked)."""
    target = os.path.realpath(os.fspath(path))
    best: tuple[int, str] | None = None
    for mount_point, fstype in parse_mounts(mounts_text):
        mp = mount_point.rstrip("/") or "/"
        inside = mp == "/" or target == mp or target.startswith(mp + "/")
        if inside and (best is None or len(mp) >= best[0]):
            best = (len(mp), fstype)
    return best[1] if best else None


def is_network_fs(fstype: str) -> bool:
    lowered = fstype.lower()
    return lowered in NETWORK_FS_TYPES or lowered.startswith(NETWORK_FS_PREFIXES)


def _read_mount_table() -> str | None:
    for candidate in _MOUNT_TABLES:
        try:
            with open(candidate, encoding="utf-8", errors="surrogateescape") as f:
                return f.read()
        except OSError:
            continue
    return None


def watch_mode_for(path: str | os.PathLike[str], configured: str, mounts_text: str | None = None) -> str:
    """"inotify" or "poll" for an inbox at `path`: `configured` unless it is "auto".

    With "auto", polls on the network file systems above and when the mount
    table cannot be read at all (polling is slower but never misses a file).
    """
    if configured in ("inotify", "poll"):
        return configured
    if configured != "auto":
        raise ValueError(f"watch mode must be auto, inotify or poll, got {configured!r}")
    text = mounts_text if mounts_text is not None else _read_mount_table()
    if text is None:
        log.warning("inbox_mount_table_unreadable", path=str(path), mode="poll")
        return "poll"
    fstype = filesystem_type(path, text)
    if fstype is None:
        log.warning("inbox_mount_unknown", path=str(path), mode="poll")
        return "poll"
    return "poll" if is_network_fs(fstype) else "inotify"
