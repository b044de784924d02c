"""Integration tests for the inbox on a real file system: real watchdog observers (inotify and polling), scans, claim and release."""

from __future__ import annotations

import errno
import importlib
import inspect
import logging
import os
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ocrd.config.schema import InboxConfig
from ocrd.errors import UnavailableError
from ocrd.inbox.watch import (
    InboxWatcher,
    StabilityTracker,
    claim,
    claimed_rel_path,
    escaped_name,
    release,
    remove_claimed,
    scan_inbox,
    text_named_claim,
    text_rel_path,
    work_dir_entries,
    work_root,
)

# watchdog 7's inotify emitter warns when `mkdir -p` races its own recursive watch setup; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

WAIT_S = 10.0  # an upper bound, not a sleep: tests return as soon as the event arrives
POLL_S = 0.05


class Recorder:
    """on_event that records calls and lets a test wait for a given path without sleeping."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Path]] = []
        self._cond = threading.Condition()

    def __call__(self, inbox: str, path: Path) -> None:
        with self._cond:
            self.events.append((inbox, path))
            self._cond.notify_all()

    def wait_for(self, path: Path, timeout_s: float = WAIT_S) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: any(p == path for _, p in self.events), timeout_s)

    def paths(self) -> set[Path]:
        with self._cond:
            return {p for _, p in self.events}


def inbox_at(path: Path, watch: str, *, name: str = "scans", recursive: bool = True) -> InboxConfig:
    path.mkdir(parents=True, exist_ok=True)
    return InboxConfig(name=name, path=path, recursive=recursive, watch=watch, settle_s=0.5)


@pytest.fixture
def watch():
    """Start an InboxWatcher; every one started is stopped at the end."""
    started: list[InboxWatcher] = []

    def start(inboxes, on_event, **kwargs) -> InboxWatcher:
        watcher = InboxWatcher(inboxes, on_event, poll_interval_s=POLL_S, **kwargs)
        watcher.start()
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def sync(recorder: Recorder, folder: Path, tag: str) -> None:
    """Drop a sentinel file and wait for it: every earlier change has then been dispatched."""
    sentinel = folder / f"sentinel-{tag}.jpg"
    sentinel.write_bytes(b"x")
    assert recorder.wait_for(sentinel), f"no event for {sentinel}"


# --------------------------------------------------------------------------- watcher


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_created_file_is_reported(tmp_path, watch, mode):
    inbox = inbox_at(tmp_path / "in", mode)
    recorder = Recorder()
    watcher = watch([inbox], recorder)
    assert watcher.modes == {"scans": mode}
    assert watcher.is_alive()

    target = inbox.path / "sub" / "scan.jpg"
    target.parent.mkdir()
    target.write_bytes(b"\xff\xd8data")
    assert recorder.wait_for(target)
    assert all(name == "scans" for name, _ in recorder.events)
    assert all(isinstance(p, Path) for _, p in recorder.events)


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_inbox_path_that_is_a_symlink_reports_paths_under_the_configured_path(tmp_path, watch, mode):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "inbox-link"
    link.symlink_to(real, target_is_directory=True)
    inbox = InboxConfig(name="scans", path=link, watch=mode, settle_s=0.5)
    recorder = Recorder()
    watch([inbox], recorder)
    (real / "sub").mkdir()
    (real / "sub" / "scan.jpg").write_bytes(b"x")
    assert recorder.wait_for(link / "sub" / "scan.jpg")  # the same path scan_inbox gives


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_ignored_names_and_non_files_produce_no_event(tmp_path, watch, mode):
    inbox = inbox_at(tmp_path / "in", mode)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"x")
    recorder = Recorder()
    watch([inbox], recorder)

    root = inbox.path
    for name in ["scan.jpg.part", ".hidden.jpg", "Thumbs.db", "~$doc.docx", "x.crdownload", "desktop.ini"]:
        (root / name).write_bytes(b"x")
    for folder in [".ocrd/work/J1", "@eaDir", "#recycle"]:
        (root / folder).mkdir(parents=True)
        (root / folder / "scan.jpg").write_bytes(b"x")
    (root / "link.jpg").symlink_to(outside)
    (root / "folder.jpg").mkdir()
    sync(recorder, root, "a")
    sync(recorder, root, "b")  # a second round: the first may share a poll with the ignored files

    assert recorder.paths() == {root / "sentinel-a.jpg", root / "sentinel-b.jpg"}


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_watcher_does_not_follow_a_symlinked_folder_out_of_the_tree(tmp_path, watch, mode):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    inbox = inbox_at(tmp_path / "in", mode)
    (inbox.path / "escape").symlink_to(outside, target_is_directory=True)
    recorder = Recorder()
    watch([inbox], recorder)
    (outside / "new.jpg").write_bytes(b"x")
    (outside / "deep" / "newer.jpg").write_bytes(b"x")
    sync(recorder, inbox.path, "a")
    sync(recorder, inbox.path, "b")
    assert not any("escape" in p.parts for p in recorder.paths())


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_rename_into_place_reports_the_new_name(tmp_path, watch, mode):
    inbox = inbox_at(tmp_path / "in", mode)
    partial = inbox.path / "scan.jpg.part"
    partial.write_bytes(b"x" * 100)
    recorder = Recorder()
    watch([inbox], recorder)

    final = inbox.path / "scan.jpg"
    os.rename(partial, final)
    assert recorder.wait_for(final)
    assert partial not in recorder.paths()


def test_file_moved_in_from_outside_is_reported(tmp_path, watch):
    inbox = inbox_at(tmp_path / "in", "inotify")
    staged = tmp_path / "staging" / "scan.jpg"
    staged.parent.mkdir()
    staged.write_bytes(b"x")
    recorder = Recorder()
    watch([inbox], recorder)
    os.rename(staged, inbox.path / "scan.jpg")
    assert recorder.wait_for(inbox.path / "scan.jpg")


def test_non_recursive_inbox_ignores_subfolders(tmp_path, watch):
    inbox = inbox_at(tmp_path / "in", "inotify", recursive=False)
    (inbox.path / "sub").mkdir()
    recorder = Recorder()
    watch([inbox], recorder)
    (inbox.path / "sub" / "deep.jpg").write_bytes(b"x")
    sync(recorder, inbox.path, "a")
    assert inbox.path / "sub" / "deep.jpg" not in recorder.paths()


def test_failing_callback_does_not_kill_the_watcher(tmp_path, watch):
    inbox = inbox_at(tmp_path / "in", "inotify")
    recorder = Recorder()
    broken = {inbox.path / "boom.jpg"}

    def on_event(name: str, path: Path) -> None:
        if path in broken:
            raise RuntimeError("the daemon's queue is broken")
        recorder(name, path)

    with capture_logs() as logs:
        watcher = watch([inbox], on_event)
        (inbox.path / "boom.jpg").write_bytes(b"x")
        sync(recorder, inbox.path, "after")
    assert watcher.is_alive()
    assert any(entry["event"] == "inbox_event_failed" for entry in logs)


def test_two_inboxes_auto_mode_polls_on_a_network_mount(tmp_path, watch):
    local = inbox_at(tmp_path / "local", "auto", name="local")
    remote = inbox_at(tmp_path / "remote", "auto", name="remote")
    # Pretend tmp_path/remote is an NFS mount; everything else is on ext4.
    real_remote = os.path.realpath(remote.path).replace(" ", "\\040")
    mounts = f"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:50 / {real_remote} rw - nfs4 filer:/x rw\n"
    recorder = Recorder()
    watcher = watch([local, remote], recorder, mounts_text=mounts)
    assert watcher.modes == {"local": "inotify", "remote": "poll"}

    (local.path / "a.jpg").write_bytes(b"x")
    (remote.path / "b.jpg").write_bytes(b"x")
    assert recorder.wait_for(local.path / "a.jpg")
    assert recorder.wait_for(remote.path / "b.jpg")
    assert ("local", local.path / "a.jpg") in recorder.events
    assert ("remote", remote.path / "b.jpg") in recorder.events


def test_watcher_feeds_the_tracker_to_a_claim(tmp_path, watch):
    """The daemon's intended use: events -> tracker.touch, refresh, ready; no fake clock, bounded by an Event."""
    import queue
    import time

    inbox = inbox_at(tmp_path / "in", "inotify")
    events: queue.Queue[tuple[str, Path]] = queue.Queue()
    watch([inbox], lambda name, path: events.put((name, path)))
    tracker = StabilityTracker(settle_s=0.2, clock=time.monotonic)
    target = inbox.path / "scan.jpg"
    with open(target, "wb") as f:
        f.write(b"x" * 10)
        f.flush()
    deadline = time.monotonic() + WAIT_S
    ready: list[Path] = []
    while not ready and time.monotonic() < deadline:
        try:
            _, path = events.get(timeout=0.05)
            tracker.touch(path)
        except queue.Empty:
            pass
        tracker.refresh()
        ready = tracker.ready()
    assert ready == [target]


def test_missing_inbox_is_unavailable_and_stop_is_idempotent(tmp_path):
    inbox = InboxConfig(name="gone", path=tmp_path / "missing", watch="inotify")
    watcher = InboxWatcher([inbox], Recorder())
    with pytest.raises(UnavailableError, match="gone"):
        watcher.start()
    assert not watcher.is_alive()
    watcher.stop()
    watcher.stop()


def test_stop_ends_the_threads(tmp_path):
    inbox = inbox_at(tmp_path / "in", "poll")
    watcher = InboxWatcher([inbox], Recorder(), poll_interval_s=POLL_S)
    watcher.start()
    assert watcher.is_alive()
    before = threading.active_count()
    watcher.stop(timeout_s=WAIT_S)
    assert not watcher.is_alive()
    assert threading.active_count() < before


WATCHDOG_EVENT_AFTER_STOP = "InotifyEmitter.queue_events() called when the thread is inactive"


def test_watchdogs_event_after_stop_error_becomes_a_debug_event(tmp_path, caplog):
    """watchdog logs an inotify event read after stop() (stop racing a pending event) at ERROR; it is no fault."""
    # The installed watchdog still says it this way (else the filter no longer matches and this must change).
    assert WATCHDOG_EVENT_AFTER_STOP in inspect.getsource(importlib.import_module("watchdog.observers.inotify"))
    watcher = InboxWatcher([inbox_at(tmp_path / "in", "inotify")], Recorder())
    watcher.start()
    watcher.stop()
    with caplog.at_level(logging.DEBUG), capture_logs() as logs:
        logging.getLogger("watchdog.observers.inotify").error(WATCHDOG_EVENT_AFTER_STOP)
    assert caplog.records == []
    assert [(e["event"], e["log_level"]) for e in logs] == [("inbox_event_after_stop_dropped", "debug")]


def test_other_watchdog_errors_still_reach_the_log(tmp_path, caplog):
    watcher = InboxWatcher([inbox_at(tmp_path / "in", "inotify")], Recorder())
    watcher.start()
    watcher.stop()
    with caplog.at_level(logging.ERROR):
        logging.getLogger("watchdog.observers.inotify").error("inotify watch limit reached")
    assert [r.getMessage() for r in caplog.records] == ["inotify watch limit reached"]


# --------------------------------------------------------------------------- scan


def test_scan_skips_symlinks_ocrd_and_ignored(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    inbox = inbox_at(tmp_path / "in", "inotify")
    root = inbox.path
    (root / "a.jpg").write_bytes(b"a")
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "b.png").write_bytes(b"bb")
    (root / "sub" / "deeper" / "c.pdf").write_bytes(b"ccc")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "link.jpg").symlink_to(outside / "secret.jpg")
    (root / ".ocrd" / "work" / "J1").mkdir(parents=True)
    (root / ".ocrd" / "work" / "J1" / "claimed.jpg").write_bytes(b"x")
    (root / "x.jpg.part").write_bytes(b"x")
    (root / "@eaDir").mkdir()
    (root / "@eaDir" / "thumb.jpg").write_bytes(b"x")
    os.mkfifo(root / "pipe.jpg")

    found = list(scan_inbox(inbox))
    assert [p for p, _ in found] == [root / "a.jpg", root / "sub" / "b.png", root / "sub" / "deeper" / "c.pdf"]
    assert [st.st_size for _, st in found] == [1, 2, 3]

    flat = list(scan_inbox(InboxConfig(name="flat", path=root, recursive=False)))
    assert [p for p, _ in flat] == [root / "a.jpg"]


def test_scan_does_not_cross_into_another_file_system(tmp_path, monkeypatch):
    inbox = inbox_at(tmp_path / "in", "inotify")
    (inbox.path / "top.jpg").write_bytes(b"x")
    (inbox.path / "mounted").mkdir()
    (inbox.path / "mounted" / "far.jpg").write_bytes(b"x")
    real_stat = os.stat

    def root_on_another_device(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        if Path(path) == inbox.path:  # pretend every folder below the root is a different mount
            values = list(st)
            values[2] = st.st_dev + 1  # st_dev
            return os.stat_result(values)
        return st

    monkeypatch.setattr(os, "stat", root_on_another_device)
    assert [p for p, _ in scan_inbox(inbox)] == [inbox.path / "top.jpg"]


def test_scan_of_a_missing_inbox_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(scan_inbox(InboxConfig(name="x", path=tmp_path / "missing")))


# --------------------------------------------------------------------------- claim, work folder, release


def test_claim_moves_into_the_work_folder(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    src = root / "sub" / "scan.jpg"
    src.write_bytes(b"content")

    claimed = claim(root, src, "01JOB")
    # The sub-folder is mirrored: a crash before the job row is written still knows where the file came from.
    assert claimed == root / ".ocrd" / "work" / "01JOB" / "sub" / "scan.jpg"
    assert claimed_rel_path(root, "01JOB", claimed) == "sub/scan.jpg"
    assert claimed.read_bytes() == b"content"
    assert not src.exists()
    assert work_dir_entries(root) == [("01JOB", claimed)]


def test_a_name_that_is_not_utf8_is_claimed_as_text(tmp_path):
    root = tmp_path / "in"
    raw = os.fsdecode(b"sub\xfc/M\xfcller.jpg")  # Latin-1 bytes, as an old SMB client writes them
    (root / raw).parent.mkdir(parents=True)
    (root / raw).write_bytes(b"content")

    claimed = claim(root, root / raw, "01JOB")
    assert claimed_rel_path(root, "01JOB", claimed) == "sub\ufffd/M\ufffdller.jpg"
    assert claimed.read_bytes() == b"content"
    assert os.listdir((root / raw).parent) == []  # moved out; the user's folder stays
    assert escaped_name(raw) == "sub\\xfc/M\\xfcller.jpg"  # the exact bytes, for the log
    assert text_rel_path("Grüße/scan.jpg") == "Grüße/scan.jpg"


def test_an_older_claim_that_kept_the_raw_name_is_renamed_to_text(tmp_path):
    root = tmp_path / "in"
    job_dir = work_root(root) / "01OLD"
    raw = job_dir / os.fsdecode(b"d\xe9p\xf4t/scan.jpg")
    raw.parent.mkdir(parents=True)
    raw.write_bytes(b"content")

    renamed = text_named_claim(root, "01OLD", raw)
    assert claimed_rel_path(root, "01OLD", renamed) == "d\ufffdp\ufffdt/scan.jpg"
    assert renamed.read_bytes() == b"content"
    assert os.listdir(job_dir) == ["d\ufffdp\ufffdt"]  # the emptied raw folder is gone
    assert text_named_claim(root, "01OLD", renamed) == renamed  # already text: left alone


def test_release_and_delete_remove_the_mirrored_folders_of_a_claim(tmp_path):
    root = tmp_path / "in"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "one.jpg").write_bytes(b"1")
    (root / "a" / "b" / "two.jpg").write_bytes(b"2")
    placed = release(claim(root, root / "a" / "b" / "one.jpg", "01A"), tmp_path / "archive" / "a" / "b" / "one.jpg")
    remove_claimed(claim(root, root / "a" / "b" / "two.jpg", "01B"))
    assert placed.read_bytes() == b"1"
    assert list(work_root(root).iterdir()) == []
    assert (root / "a" / "b").is_dir()  # the inbox's own folders stay


def test_work_dir_entries_prunes_an_emptied_nested_job_folder(tmp_path):
    root = tmp_path / "in"
    (work_root(root) / "01X" / "sub" / "deeper").mkdir(parents=True)
    assert work_dir_entries(root) == []
    assert not (work_root(root) / "01X").exists()


def test_claim_of_a_vanished_file_raises_and_leaves_nothing(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    with pytest.raises(FileNotFoundError):
        claim(root, root / "gone.jpg", "01JOB")
    assert work_dir_entries(root) == []
    assert not (work_root(root) / "01JOB").exists()


def test_claim_refuses_paths_it_must_not_take(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.jpg"
    secret.write_bytes(b"x")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "folder").mkdir()
    (root / "link.jpg").symlink_to(secret)
    (root / ".ocrd").mkdir()
    (root / ".ocrd" / "x.jpg").write_bytes(b"x")

    for path in [root / "escape" / "secret.jpg", secret, root / "folder", root / "link.jpg", root / ".ocrd" / "x.jpg"]:
        with pytest.raises(ValueError):
            claim(root, path, "01JOB")
    with pytest.raises(ValueError):
        claim(root, root / "folder", "../evil")
    assert secret.read_bytes() == b"x"
    assert (root / "link.jpg").is_symlink()


def test_claim_never_reuses_a_job_folder(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"a")
    (root / "b.jpg").write_bytes(b"b")
    claim(root, root / "a.jpg", "01JOB")
    with pytest.raises(FileExistsError):
        claim(root, root / "b.jpg", "01JOB")
    assert (root / "b.jpg").read_bytes() == b"b"


def test_work_dir_entries_lists_leftovers_in_order_and_prunes_empty_folders(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for job, name in [("02B", "b.jpg"), ("01A", "a.jpg")]:
        (root / name).write_bytes(b"x")
        claim(root, root / name, job)
    (work_root(root) / "03EMPTY").mkdir()
    assert [(j, p.name) for j, p in work_dir_entries(root)] == [("01A", "a.jpg"), ("02B", "b.jpg")]
    assert not (work_root(root) / "03EMPTY").exists()


def _claimed(root: Path, job: str, name: str, data: bytes) -> Path:
    (root / name).write_bytes(data)
    return claim(root, root / name, job)


def test_release_never_overwrites_and_numbers_collisions(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    archive = tmp_path / "archive" / "scans" / "sub"
    dest = archive / "scan.jpg"

    first = release(_claimed(root, "01A", "scan.jpg", b"one"), dest)
    second = release(_claimed(root, "01B", "scan.jpg", b"two"), dest)
    third = release(_claimed(root, "01C", "scan.jpg", b"three"), dest)

    assert (first, second, third) == (dest, archive / "scan~1.jpg", archive / "scan~2.jpg")
    assert [p.read_bytes() for p in (first, second, third)] == [b"one", b"two", b"three"]
    assert list(work_root(root).iterdir()) == []  # emptied job folders are removed by release itself
    assert work_dir_entries(root) == []


def test_release_back_into_the_inbox(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    claimed = _claimed(root, "01A", "sub/scan.jpg", b"data")
    (root / "sub" / "scan.jpg").write_bytes(b"a newer drop with the same name")
    back = release(claimed, root / "sub" / "scan.jpg")
    assert back == root / "sub" / "scan~1.jpg"
    assert back.read_bytes() == b"data"
    assert (root / "sub" / "scan.jpg").read_bytes() == b"a newer drop with the same name"


def test_release_without_hard_links_uses_a_placeholder(tmp_path, monkeypatch):
    root = tmp_path / "in"
    root.mkdir()
    dest = tmp_path / "q" / "scan.jpg"
    dest.parent.mkdir()
    dest.write_bytes(b"someone else's")
    claimed = _claimed(root, "01A", "scan.jpg", b"mine")

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    placed = release(claimed, dest)
    assert placed == dest.with_name("scan~1.jpg")
    assert placed.read_bytes() == b"mine"
    assert dest.read_bytes() == b"someone else's"
    assert not claimed.exists()


def _other_filesystem(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a different file system than tmp_path")
    return shm


def test_release_across_file_systems_copies(tmp_path):
    import shutil
    import uuid

    other = _other_filesystem(tmp_path) / f"ocrd-test-{uuid.uuid4().hex}"
    try:
        root = tmp_path / "in"
        root.mkdir()
        dest = other / "archive" / "scan.jpg"
        dest.parent.mkdir(parents=True)
        dest.write_bytes(b"earlier")
        claimed = _claimed(root, "01A", "scan.jpg", b"payload" * 1000)
        mtime_ns = claimed.stat().st_mtime_ns

        placed = release(claimed, dest)
        assert placed == dest.with_name("scan~1.jpg")
        assert placed.read_bytes() == b"payload" * 1000
        assert placed.stat().st_mtime_ns // 1000 == mtime_ns // 1000  # copystat keeps the time (to the us)
        assert dest.read_bytes() == b"earlier"
        assert not claimed.exists()
        assert sorted(p.name for p in dest.parent.iterdir()) == ["scan.jpg", "scan~1.jpg"]  # no temp left
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_release_of_a_missing_work_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        release(tmp_path / "in" / ".ocrd" / "work" / "01A" / "gone.jpg", tmp_path / "archive" / "gone.jpg")
