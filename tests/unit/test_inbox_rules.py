"""Unit tests for the inbox's pure parts: ignore rules, the stability tracker (fake clock), mount table parsing, collision names."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ocrd.inbox.watch import (
    StabilityTracker,
    collision_name,
    filesystem_type,
    is_ignored,
    is_ignored_name,
    parse_mounts,
    watch_mode_for,
)

# --------------------------------------------------------------------------- ignore rules

IGNORED = [
    ".hidden.jpg",
    ".ocrd/work/01ABC/scan.jpg",
    ".ocrd",
    "sub/.git/scan.jpg",
    "scan.jpg.tmp",
    "SCAN.JPG.TMP",
    "scan.jpg.part",
    "scan.jpg.crdownload",
    "scan.jpg.filepart",
    "~$report.docx",
    ".~lock.report.odt#",
    "Thumbs.db",
    "THUMBS.DB",
    ".DS_Store",
    "@eaDir/scan.jpg@SynoEAStream",
    "photos/@EADIR/thumb.jpg",
    "#recycle/old.jpg",
    "#Recycle/old.jpg",
    "desktop.ini",
    "Desktop.INI",
    "$RECYCLE.BIN/x.jpg",
    "a/b.tmp/c.jpg",  # a folder still being copied by a tool that renames it at the end
    "../outside.jpg",
    "",
    ".",
]
TAKEN = [
    "scan.jpg",
    "sub/dir/scan.PNG",
    "a.b.c.pdf",
    "tmp/scan.jpg",  # a folder named tmp is fine; only the .tmp ending is ignored
    "scan.tmp.jpg",
    "my~$file.jpg",  # ~$ only at the start
    "partial.jpg",
    "thumbs.db.jpg",
    "recycle/x.jpg",
    "sub\\win\\scan.jpg",
    "./scan.jpg",
]


@pytest.mark.parametrize("rel_path", IGNORED)
def test_ignored(rel_path):
    assert is_ignored(rel_path)


@pytest.mark.parametrize("rel_path", TAKEN)
def test_taken(rel_path):
    assert not is_ignored(rel_path)


def test_backslash_components_are_checked():
    assert is_ignored("sub\\.ocrd\\scan.jpg")


def test_name_rule_matches_path_rule():
    assert is_ignored_name(".ocrd") and is_ignored_name("@eaDir") and not is_ignored_name("scan.jpg")


# --------------------------------------------------------------------------- stability tracker


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


P = Path("/inbox/scan.jpg")
Q = Path("/inbox/other.jpg")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def tracker(clock):
    return StabilityTracker(settle_s=2.0, clock=clock)


def test_stable_after_a_confirming_observation(tracker, clock):
    tracker.observe(P, 100, 5)
    assert tracker.ready() == []
    clock.advance(1.9)
    tracker.observe(P, 100, 5)
    assert tracker.ready() == []  # not quiet for settle_s yet
    clock.advance(0.1)
    assert tracker.ready() == []  # quiet long enough, but no stat has confirmed it
    tracker.observe(P, 100, 5)
    assert tracker.ready() == [P]
    assert tracker.ready() == []  # handed out once: no longer tracked
    assert P not in tracker


def test_file_that_keeps_changing_is_never_ready(tracker, clock):
    for i in range(100):
        tracker.observe(P, 100 + i, 5 + i)
        assert tracker.ready() == []
        clock.advance(1.5)
    tracker.observe(P, 1000, 5 + 99)  # only the size changes
    clock.advance(3)
    tracker.observe(P, 1000, 6 + 99)  # only the mtime changes
    assert tracker.ready() == []
    clock.advance(2)
    tracker.observe(P, 1000, 6 + 99)
    assert tracker.ready() == [P]


def test_zero_byte_files_wait(tracker, clock):
    tracker.observe(P, 0, 5)
    for _ in range(10):
        clock.advance(5)
        tracker.observe(P, 0, 5)
        assert tracker.ready() == []
    assert P in tracker
    tracker.observe(P, 10, 6)  # the writer finally started
    assert tracker.ready() == []
    clock.advance(2)
    tracker.observe(P, 10, 6)
    assert tracker.ready() == [P]


def test_event_resets_the_settle_timer(tracker, clock):
    tracker.observe(P, 100, 5)
    clock.advance(1.5)
    tracker.touch(P)  # a write that did not (yet) change size or mtime as seen
    clock.advance(1.5)
    tracker.observe(P, 100, 5)
    assert tracker.ready() == []  # 3 s since the first sighting, but only 1.5 s since the event
    clock.advance(0.5)
    tracker.observe(P, 100, 5)
    assert tracker.ready() == [P]


def test_event_after_the_last_observation_blocks(tracker, clock):
    tracker.observe(P, 100, 5)
    clock.advance(2)
    tracker.observe(P, 100, 5)
    tracker.touch(P)
    assert tracker.ready() == []


def test_event_alone_is_never_ready(tracker, clock):
    tracker.touch(P)
    clock.advance(100)
    assert tracker.ready() == []
    assert tracker.due() == [P]  # never stat'ed: stat it now


def test_forget(tracker, clock):
    tracker.observe(P, 100, 5)
    tracker.observe(Q, 100, 5)
    tracker.forget(P)
    tracker.forget(Path("/never/seen"))
    clock.advance(2)
    tracker.observe(P, 100, 5)  # seen again after forget: a fresh start
    tracker.observe(Q, 100, 5)
    assert tracker.ready() == [Q]
    clock.advance(2)
    tracker.observe(P, 100, 5)
    assert tracker.ready() == [P]


def test_ready_in_order_of_quiet_period(tracker, clock):
    tracker.observe(Q, 1, 1)
    clock.advance(0.5)
    tracker.observe(P, 1, 1)
    clock.advance(2)
    tracker.observe(P, 1, 1)
    tracker.observe(Q, 1, 1)
    assert tracker.ready() == [Q, P]


def test_str_and_path_are_the_same_key(tracker, clock):
    tracker.observe(str(P), 1, 1)
    clock.advance(2)
    tracker.observe(P, 1, 1)
    assert tracker.ready() == [P]


def _st(size: int, mtime_ns: int, mode: int = stat.S_IFREG | 0o644) -> os.stat_result:
    return os.stat_result((mode, 1, 1, 1, 0, 0, size, 0, 0, 0, 0, 0, 0, mtime_ns))


def test_due_and_refresh_with_fake_stat(tracker, clock):
    files = {P: _st(100, 5)}

    def fake_stat(path: Path) -> os.stat_result:
        if path not in files:
            raise FileNotFoundError(path)
        return files[path]

    tracker.touch(P)
    tracker.touch(Q)  # an event for a file that is gone before anyone looks
    assert sorted(tracker.due()) == sorted([P, Q])
    tracker.refresh(fake_stat)
    assert Q not in tracker and P in tracker
    assert tracker.due() == []
    clock.advance(1)
    tracker.refresh(fake_stat)
    assert tracker.ready() == []
    clock.advance(1)
    assert tracker.due() == [P]
    tracker.refresh(fake_stat)
    assert tracker.ready() == [P]


def test_refresh_forgets_symlinks_and_keeps_on_other_errors(tracker, clock):
    def link_stat(path: Path) -> os.stat_result:
        return _st(10, 1, stat.S_IFLNK | 0o777)

    def denied(path: Path) -> os.stat_result:
        raise PermissionError(path)

    tracker.touch(P)
    tracker.refresh(denied)
    assert P in tracker
    tracker.refresh(link_stat)
    assert P not in tracker


# --------------------------------------------------------------------------- mounts

MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
40 27 0:40 / /srv/nas rw,relatime shared:1 - nfs4 filer:/export rw,vers=4.2
41 40 254:1 / /srv/nas/local rw,relatime - ext4 /dev/vdb rw
42 27 0:41 / /mnt/Scan\040Share rw,relatime - cifs //win/scans rw,vers=3.0
43 27 0:42 / /mnt/remote rw,nosuid,nodev,relatime shared:7 master:3 - fuse.sshfs user@host:/ rw,user_id=0
44 27 0:43 / /mnt/ntfs rw,relatime - fuseblk /dev/sdb1 rw
45 27 0:44 / /mnt/stack rw,relatime - ext4 /dev/vdc rw
46 45 0:45 / /mnt/stack rw,relatime - nfs host:/x rw
"""

PROC_MOUNTS = r"""/dev/vda / ext4 rw,relatime 0 0
filer:/export /srv/nas nfs rw,vers=3 0 0
//win/scans /mnt/Scan\040Share smb3 rw 0 0
"""


def test_parse_mountinfo_unescapes_spaces():
    mounts = parse_mounts(MOUNTINFO)
    assert ("/mnt/Scan Share", "cifs") in mounts
    assert ("/mnt/remote", "fuse.sshfs") in mounts  # optional fields before the separator are skipped
    assert mounts[1] == ("/", "ext4")


def test_parse_proc_mounts():
    assert parse_mounts(PROC_MOUNTS) == [("/", "ext4"), ("/srv/nas", "nfs"), ("/mnt/Scan Share", "smb3")]


def test_parse_skips_malformed_lines():
    assert parse_mounts("\ngarbage\n27 1 254:0 / / rw - \n") == []


@pytest.mark.parametrize(
    ("path", "fstype", "mode"),
    [
        ("/srv/nas/scans", "nfs4", "poll"),
        ("/srv/nas", "nfs4", "poll"),
        ("/srv/nas/local/scans", "ext4", "inotify"),  # longest mount point wins
        ("/srv/nasty", "ext4", "inotify"),  # a prefix of the name is not a parent folder
        ("/mnt/Scan Share/in", "cifs", "poll"),
        ("/mnt/remote/in", "fuse.sshfs", "poll"),
        ("/mnt/ntfs/in", "fuseblk", "inotify"),
        ("/mnt/stack/in", "nfs", "poll"),  # stacked mounts: the last one is visible
        ("/var/inbox", "ext4", "inotify"),
    ],
)
def test_watch_mode_from_mountinfo(path, fstype, mode):
    assert filesystem_type(path, MOUNTINFO) == fstype
    assert watch_mode_for(path, "auto", MOUNTINFO) == mode


def test_watch_mode_from_proc_mounts():
    assert watch_mode_for("/srv/nas/x", "auto", PROC_MOUNTS) == "poll"
    assert watch_mode_for("/mnt/Scan Share", "auto", PROC_MOUNTS) == "poll"
    assert watch_mode_for("/home/x", "auto", PROC_MOUNTS) == "inotify"


def test_explicit_mode_wins_and_unknown_is_refused():
    assert watch_mode_for("/srv/nas/x", "inotify", MOUNTINFO) == "inotify"
    assert watch_mode_for("/var/inbox", "poll", MOUNTINFO) == "poll"
    with pytest.raises(ValueError):
        watch_mode_for("/var/inbox", "fanotify", MOUNTINFO)


def test_unknown_mount_polls():
    assert watch_mode_for("/anything", "auto", "") == "poll"


@pytest.mark.parametrize("fstype", ["nfs", "smbfs", "9p", "afs", "ceph", "glusterfs", "sshfs", "fuse.rclone"])
def test_network_types(fstype):
    assert watch_mode_for("/data/in", "auto", f"/dev/x / ext4 rw 0 0\nsrv:/ /data {fstype} rw 0 0\n") == "poll"


# --------------------------------------------------------------------------- collision names


@pytest.mark.parametrize(
    ("name", "n", "expected"),
    [
        ("scan.jpg", 0, "scan.jpg"),
        ("scan.jpg", 1, "scan~1.jpg"),
        ("scan.jpg", 12, "scan~12.jpg"),
        ("archive.tar.gz", 1, "archive.tar~1.gz"),
        ("README", 2, "README~2"),
        (".profile", 1, ".profile~1"),
    ],
)
def test_collision_name(name, n, expected):
    assert collision_name(name, n) == expected
