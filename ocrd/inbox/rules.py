"""Which names in an inbox are never work: dotfiles, partial downloads, office lock files, NAS metadata; pure, no I/O.

Why case-insensitive throughout: inboxes are often SMB shares written by
Windows and macOS clients, where `THUMBS.DB`, `Scan.TMP` and `@EaDir` are
the same things as their lower-case spellings.
"""

from __future__ import annotations

import os

# The daemon's own folder inside every inbox; a dotdir, so the dot rule covers it too.
OCRD_DIR_NAME = ".ocrd"

# Whole names, compared case-insensitively.
_IGNORED_NAMES = frozenset(
    {
        "thumbs.db",
        "desktop.ini",
        "@eadir",  # Synology thumbnails and metadata
        "#recycle",  # Synology / QNAP recycle bin
        "#snapshot",  # Synology snapshot view
        "$recycle.bin",  # Windows recycle bin on a share
        "system volume information",
    }
)
# Name endings of files still being written by browsers and transfer tools.
_IGNORED_SUFFIXES = (
    ".tmp",
    ".part",  # Firefox, wget, KDE
    ".partial",
    ".crdownload",  # Chrome
    ".download",  # Safari
    ".filepart",  # WinSCP uploads
)
# Name beginnings: dotfiles (also .DS_Store, .~lock.*#, rsync's .name.XXXXXX) and Office owner files.
_IGNORED_PREFIXES = (".", "~$")


def is_ignored_name(name: str) -> bool:
    """True when one path component (a file or folder name) must never be picked up or descended into."""
    lowered = name.lower()
    return (
        not lowered
        or lowered.startswith(_IGNORED_PREFIXES)
        or lowered.endswith(_IGNORED_SUFFIXES)
        or lowered in _IGNORED_NAMES
    )


def is_ignored(rel_path: str | os.PathLike[str]) -> bool:
    """True when any component of `rel_path` (relative to the inbox root) is ignored.

    `.` and empty components (from `a//b` or a trailing slash) are skipped; a
    `..` component counts as ignored, since it would leave the inbox.
    """
    text = os.fspath(rel_path).replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        return True  # the inbox root itself is not a file to take
    return any(is_ignored_name(part) for part in parts)
