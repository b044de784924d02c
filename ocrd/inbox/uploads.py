"""Files that arrive over HTTP: the staging area `<inbox>/.ocrd/upload/`, upload names, the claim into `.ocrd/work`; never reads file contents.

An upload is written to a hidden staging file on the inbox's own file system
while it arrives, so that a finished one can be claimed like a dropped file:
one rename into `.ocrd/work/<job_id>/<name>`. Until then nothing outside
`.ocrd/upload/` sees it (scans skip `.ocrd/`), and a crash leaves only a
staging file, which the next start deletes. Names are names only: no folder,
no `..`, no control character ever reaches the work folder or the outputs.
"""

from __future__ import annotations

import os
import secrets
import unicodedata
from pathlib import Path
from typing import BinaryIO

from ocrd.durable import fsync_dir
from ocrd.inbox.files import makedirs_durable, work_root
from ocrd.inbox.rules import OCRD_DIR_NAME

UPLOAD_DIR_NAME = "upload"
STAGING_SUFFIX = ".part"
MAX_NAME_BYTES = 200  # well under NAME_MAX (255) so collision suffixes (~1) and output endings still fit
DEFAULT_NAME = "upload"
# The extension a nameless upload gets, by the format intake sniffed.
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "bmp": ".bmp", "webp": ".webp", "pdf": ".pdf"}


def upload_root(inbox_root: Path) -> Path:
    return Path(inbox_root) / OCRD_DIR_NAME / UPLOAD_DIR_NAME


def safe_upload_name(raw: str | None, fmt: str | None = None) -> str:
    """A file name for an upload: the last component of `raw`, without control characters or leading dots.

    Clients send `C:\\scans\\a.jpg`, `../../etc/passwd`, names with newlines or
    bidi overrides; all become plain names (`a.jpg`, `passwd`, `a_b.jpg`).
    Nothing left (`..`, empty): `upload` plus the sniffed format's extension.
    """
    text = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    # Cc: control characters (newline, NUL, ESC); Cf: invisible format characters (RLO, zero width).
    text = "".join("_" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be stored as text
    text = text.strip().lstrip(".").strip()
    if not text:
        text = DEFAULT_NAME + EXTENSIONS.get(fmt or "", "")
    return _shortened(text)


def _shortened(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not stem or len(ext) > 16:
        stem, dot, ext = name, "", ""
    keep = MAX_NAME_BYTES - len((dot + ext).encode("utf-8"))
    return stem.encode("utf-8")[:keep].decode("utf-8", "ignore") + dot + ext


def create_staging_file(inbox_root: Path) -> tuple[Path, BinaryIO]:
    """A new, exclusive staging file under `.ocrd/upload/`, open for writing."""
    folder = upload_root(inbox_root)
    makedirs_durable(folder)
    path = folder / f"{secrets.token_hex(12)}{STAGING_SUFFIX}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    return path, os.fdopen(fd, "wb")


def discard_staging_file(path: Path) -> None:
    """Remove a staging file that will not become a job (refused, abandoned, client gone)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def clean_upload_area(inbox_root: Path) -> int:
    """Delete every staging file (at start-up, before the HTTP server takes requests); returns how many."""
    folder = upload_root(inbox_root)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    removed = 0
    for entry in entries:
        if entry.is_file(follow_symlinks=False) or entry.is_symlink():
            os.unlink(entry.path)
            removed += 1
    if removed:
        fsync_dir(folder)
    return removed


def claim_upload(inbox_root: Path, staged: Path, job_id: str, name: str) -> Path:
    """Move a complete staging file to `.ocrd/work/<job_id>/<name>` (one rename) and return the new path."""
    if name != safe_upload_name(name) or "/" in name:
        raise ValueError(f"upload name {name!r} is not a plain name")
    staged = Path(staged)
    if staged.parent != upload_root(inbox_root):
        raise ValueError(f"{staged} is not in the upload area of {inbox_root}")
    work = work_root(inbox_root)
    makedirs_durable(work)
    job_dir = work / job_id
    job_dir.mkdir()  # fresh and exclusive: the rename below cannot replace anything
    target = job_dir / name
    try:
        os.rename(staged, target)
    except BaseException:
        job_dir.rmdir()
        raise
    fsync_dir(job_dir)
    fsync_dir(work)
    fsync_dir(staged.parent)
    return target


def free_bytes(inbox_root: Path) -> int:
    """Bytes an unprivileged writer may still use on the inbox's file system."""
    st = os.statvfs(inbox_root)
    return st.f_bavail * st.f_frsize
