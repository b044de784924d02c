"""File moves of the inbox lifecycle: scanning, claiming into `.ocrd/work`, listing leftovers, releasing without overwriting, walking the paths given to `ocrd process`; never follows a symlink, never reads file contents.

Durability: every move fsyncs the directories whose entries changed, so a
claim or release that returned survives a power cut.
"""

from __future__ import annotations

import errno

import os
import re
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from ocrd.config.schema import InboxConfig
from ocrd.durable import fsync_dir
from ocrd.logs import get_logger
from ocrd.inbox.rules import OCRD_DIR_NAME, is_ignored, is_ignored_name

log = get_logger(__name__)

WORK_DIR_NAME = "work"
MAX_COLLISION_SUFFIX = 10_000
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# link() errors meaning "this file system has no hard links" (CIFS without unix extensions, FAT, some FUSE).
_NO_HARDLINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS, errno.EINVAL}


def work_root(inbox_root: Path) -> Path:
    return Path(inbox_root) / OCRD_DIR_NAME / WORK_DIR_NAME


def makedirs_durable(path: Path) -> None:
    """mkdir -p, fsyncing the parent of every folder it creates (a new folder entry is data too)."""
    missing: list[Path] = []
    folder = Path(path)
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        fsync_dir(folder.parent)


# --------------------------------------------------------------------------- scanning


def scan_inbox(inbox: InboxConfig) -> Iterator[tuple[Path, os.stat_result]]:
    """Every non-ignored regular file under the inbox, with its lstat, in name order per folder.

    Symlinks (to files or folders) are skipped, so the walk never leaves the
    tree; so are `.ocrd/`, ignored names, and folders on another file system
    (a claim must be a same-file-system rename). An error on the inbox root
    propagates; a sub-folder that vanishes or cannot be read is skipped.
    """
    root = Path(inbox.path)
    root_dev = os.stat(root).st_dev  # the configured root itself may be a symlink: that is the admin's choice
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if folder == root:
                raise
            if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                log.warning("inbox_folder_unreadable", inbox=inbox.name, path=str(folder), error=str(exc))
            continue
        subfolders = []
        for entry in entries:
            if is_ignored_name(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished between listing and stat
            if stat.S_ISREG(st.st_mode):
                yield Path(entry.path), st
            elif stat.S_ISDIR(st.st_mode) and inbox.recursive:
                if st.st_dev != root_dev:
                    log.warning("inbox_mount_skipped", inbox=inbox.name, path=str(entry.path))
                    continue
                subfolders.append(Path(entry.path))
        pending.extend(reversed(subfolders))  # depth-first, still in name order


# --------------------------------------------------------------------------- claiming


def _check_inside_tree(inbox_root: Path, path: Path) -> None:
    """Refuse paths outside the inbox, inside `.ocrd/` or ignored, and any symlinked folder on the way."""
    try:
        rel = path.relative_to(inbox_root)
    except ValueError:
        raise ValueError(f"{path} is not inside the inbox {inbox_root}") from None
    if not rel.parts or is_ignored(rel.as_posix()):
        raise ValueError(f"{path} is not a file ocrd may take from the inbox {inbox_root}")
    folder = inbox_root
    for part in rel.parts[:-1]:
        folder = folder / part
        st = os.lstat(folder)  # FileNotFoundError: the file vanished with its folder
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{folder} is a symlink or not a folder; ocrd does not follow it")


def text_rel_path(rel_path: str) -> str:
    """`rel_path` as text the job log, JSON and every share can hold: bytes that are not UTF-8 become U+FFFD.

    Linux names are bytes; a name written in another encoding (Latin-1 from an old SMB
    client, a ZIP made on another system) reaches Python with surrogate escapes, which
    SQLite and JSON refuse. U+FFFD, not a backslash escape: a backslash in a name is
    mangled by SMB shares. Names that differ only there are kept apart by `~1` suffixes.
    """
    try:
        rel_path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(rel_path).decode("utf-8", "replace")
    return rel_path


def escaped_name(rel_path: str) -> str:
    """A name's exact bytes, with those that are not UTF-8 as `\\xNN`: for a log line that must say what it was."""
    return os.fsencode(rel_path).decode("utf-8", "backslashreplace")


def claim(inbox_root: Path, path: Path, job_id: str) -> Path:
    """Atomically move `path` to `<inbox_root>/.ocrd/work/<job_id>/<rel_path>` and return the new path.

    The sub-folders of the inbox are mirrored under the job folder so that a
    crash between the claim and the job row still knows where the file came
    from (`claimed_rel_path`). Raises FileNotFoundError when the file vanished
    (the caller skips it), ValueError for anything but a regular file and for
    paths the inbox must not give out (outside it, under `.ocrd/`, ignored,
    behind a symlinked folder), FileExistsError when the job folder already
    exists. The entry is renamed, never followed: if it is swapped for a
    symlink after the check, the link itself moves, and intake refuses it.
    A name that is not UTF-8 is claimed under its `text_rel_path`.
    """
    inbox_root, path = Path(inbox_root), Path(path)
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"job id {job_id!r} is not a plain name")
    _check_inside_tree(inbox_root, path)
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise ValueError(f"{path} is not a regular file")
    work = work_root(inbox_root)
    makedirs_durable(work)
    job_dir = work / job_id
    # A fresh, exclusive folder: the rename below cannot replace anything.
    job_dir.mkdir()
    target = job_dir / text_rel_path(path.relative_to(inbox_root).as_posix())
    try:
        makedirs_durable(target.parent)
        os.rename(path, target)
    except BaseException:
        _remove_empty_dirs(target.parent, job_dir)
        raise
    fsync_dir(target.parent)
    fsync_dir(work)
    fsync_dir(path.parent)
    return target


def claimed_rel_path(inbox_root: Path, job_id: str, work_path: Path) -> str:
    """The inbox-relative path a claimed file had (as `text_rel_path`), from where `claim` put it."""
    return Path(work_path).relative_to(work_root(Path(inbox_root)) / job_id).as_posix()


def text_named_claim(inbox_root: Path, job_id: str, work_path: Path) -> Path:
    """A claimed file under its `text_rel_path` inside its job folder (renamed if an older claim kept raw bytes)."""
    job_dir = work_root(Path(inbox_root)) / job_id
    rel_path = Path(work_path).relative_to(job_dir).as_posix()
    text = text_rel_path(rel_path)
    if text == rel_path:
        return Path(work_path)
    target = job_dir / text
    makedirs_durable(target.parent)
    os.rename(work_path, target)  # the job folder holds this one file: nothing to replace
    fsync_dir(target.parent)
    fsync_dir(Path(work_path).parent)
    _remove_empty_dirs(Path(work_path).parent, job_dir)
    return target


def work_dir_entries(inbox_root: Path) -> list[tuple[str, Path]]:
    """(job id, claimed file) for everything left in `.ocrd/work`, in job id (= claim time) order.

    For crash recovery. Empty job folders (a crash between creating the folder
    and the rename, or after a release) are removed on the way.
    """
    work = work_root(Path(inbox_root))
    try:
        job_dirs = sorted(os.scandir(work), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    found: list[tuple[str, Path]] = []
    for job_dir in job_dirs:
        if not job_dir.is_dir(follow_symlinks=False):
            continue
        files: list[Path] = []
        for folder, dirnames, filenames in os.walk(job_dir.path):  # os.walk never follows symlinked folders
            files += [Path(folder) / name for name in filenames]
            # a symlink to a folder is listed in dirnames: it is an entry to recover too, not to enter
            files += [Path(folder) / name for name in dirnames if os.path.islink(os.path.join(folder, name))]
        if not files:
            _remove_tree_if_empty(Path(job_dir.path))
            continue
        found.extend((job_dir.name, f) for f in sorted(files))
    return found


def _remove_tree_if_empty(folder: Path) -> None:
    for sub, _dirs, _files in sorted(os.walk(folder), key=lambda entry: len(entry[0]), reverse=True):
        try:
            os.rmdir(sub)
        except OSError:
            return  # something appeared meanwhile; the next recovery looks again


def _remove_empty_dirs(folder: Path, stop_after: Path) -> None:
    """rmdir `folder` and its parents while empty, up to and including `stop_after`."""
    folder = Path(folder)
    while True:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty or already gone: work_dir_entries cleans up later
        fsync_dir(folder.parent)
        if folder == stop_after or folder.parent == folder:
            return
        folder = folder.parent


def remove_claimed(work_path: Path) -> None:
    """Delete a claimed file (on_success: delete) and the folders `claim` made for it."""
    os.unlink(work_path)
    _remove_empty_job_dir(Path(work_path).parent)


# --------------------------------------------------------------------------- releasing


def collision_name(name: str, n: int) -> str:
    """`scan.jpg` -> `scan~n.jpg`; `README` -> `README~n`; n == 0 gives the name unchanged."""
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no dot, or a leading-dot name: the suffix goes at the end
        return f"{name}~{n}"
    return f"{stem}~{n}{dot}{ext}"


def _candidates(dest: Path) -> Iterator[Path]:
    for n in range(MAX_COLLISION_SUFFIX):
        yield dest.with_name(collision_name(dest.name, n))
    raise FileExistsError(errno.EEXIST, f"more than {MAX_COLLISION_SUFFIX} files named like this", str(dest))


def _place(src: Path, dest: Path) -> Path:
    """Give `src` (same file system as dest) the first free name of `dest`, `dest~1`, ... and remove `src`.

    Why link+unlink: os.rename silently replaces an existing destination, and
    checking first leaves a window for another writer. link() fails with
    EEXIST atomically, so no one's file is ever replaced. The cost is a short
    window where both names exist; a crash there leaves a duplicate, never a
    loss. Without hard links, an O_EXCL placeholder reserves the name and
    rename replaces only that placeholder (a crash leaves an empty placeholder).
    """
    for candidate in _candidates(dest):
        try:
            os.link(src, candidate, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in _NO_HARDLINKS:
                raise
            return _place_with_placeholder(src, candidate)
        os.unlink(src)
        return candidate
    raise AssertionError("unreachable")  # _candidates raises when exhausted


def _place_with_placeholder(src: Path, first: Path) -> Path:
    for candidate in _candidates(first):
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        os.rename(src, candidate)
        return candidate
    raise AssertionError("unreachable")


def _copy_across(src: Path, dest: Path) -> Path:
    """Copy `src` to a temporary name in dest's folder, fsync it, then place it; `src` is left alone."""
    tmp = dest.with_name(f".{dest.name}.ocrd-{os.getpid()}.tmp")
    mode = os.lstat(src).st_mode
    if stat.S_ISLNK(mode):  # only a claim race puts a link here; move it as a link, never its target
        os.symlink(os.readlink(src), tmp)
    elif stat.S_ISREG(mode):
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
    else:
        raise ValueError(f"{src} is neither a regular file nor a symlink; cannot copy it across file systems")
    try:
        shutil.copystat(src, tmp, follow_symlinks=False)
        return _place(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_empty_job_dir(folder: Path) -> None:
    """Remove the emptied folders of a claim: `folder` up to its job folder under `.ocrd/work`."""
    folder = Path(folder)
    for job_dir in [folder, *folder.parents]:
        if job_dir.parent.name == WORK_DIR_NAME and job_dir.parent.parent.name == OCRD_DIR_NAME:
            _remove_empty_dirs(folder, job_dir)
            return


def release(work_path: Path, dest: Path) -> Path:
    """Move a claimed file to `dest` (archive, quarantine or back to the inbox) and return where it landed.

    An existing file at `dest` is never overwritten: the name gets `~1`,
    `~2`, ... before the extension. Across file systems the file is copied,
    fsynced, placed, and only then removed from the work folder. Parent
    folders of `dest` are created. The emptied job folder is removed.
    """
    work_path, dest = Path(work_path), Path(dest)
    makedirs_durable(dest.parent)
    try:
        placed = _place(work_path, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        placed = _copy_across(work_path, dest)
        fsync_dir(placed.parent)
        os.unlink(work_path)
    fsync_dir(placed.parent)
    fsync_dir(work_path.parent)
    _remove_empty_job_dir(work_path.parent)
    return placed


def walk_inputs(paths: Sequence[str]) -> Iterator[tuple[Path, Path, str]]:
    """(file, root it was found under, path relative to that root) for every
    path named to `ocrd process`.

    Folders are walked recursively in name order; hidden files and folders
    (dotfiles, our own `.ocrd/`) are skipped, as the daemon does.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        file = Path(dirpath) / name
                        yield file, path, file.relative_to(path).as_posix()
        else:
            yield path, path.parent, path.name
