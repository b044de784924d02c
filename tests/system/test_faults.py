"""Faults (issue 7): the daemon keeps running, logs a clear error, retries or keeps the file per policy,
loses nothing, and finishes the pending work once the fault clears.

(a) outbox not writable (the daemon runs as `nobody`: root ignores permissions), (b) job log locked by
another process, (c) inbox folder removed and recreated, (d) a worker killed from outside, (e) outbox on
a full file system (a 1 MiB tmpfs). (b)-(d) share one daemon; (a) and (e) need their own set-up.
A job that hangs past its timeout is covered by tests/integration/test_multipage.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.harness import (
    DaemonHarness,
    drop_file,
    encode_image,
    files_under,
    render_text_image,
    temp_like_files,
    wait_until,
)

LOCK_S = float(os.environ.get("OCRD_LOCK_S", "6"))  # the long version: 30
NOBODY = 65534


def _image(text: str) -> bytes:
    return encode_image(render_text_image(text, width_px=360, height_px=80), "png")


def _row(harness: DaemonHarness, rel_path: str) -> dict | None:
    rows = [r for r in harness.rows() if r["rel_path"] == rel_path]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def _state_is(harness: DaemonHarness, rel_path: str, state: str):
    return lambda rows: any(r["rel_path"] == rel_path and r["state"] == state for r in rows)


def _errors(harness: DaemonHarness) -> list[dict]:
    return [e for e in harness.events() if e.get("level") in ("error", "critical")]


def _text(harness: DaemonHarness, inbox: str, stem: str) -> str:
    result = json.loads((harness.outbox / inbox / f"{stem}.json").read_text(encoding="utf-8"))
    return result["pages"][0]["text"]


def _assert_nothing_lost(harness: DaemonHarness, expected: dict[str, bytes], inbox: str = "scans") -> None:
    """Every dropped file done once, archived intact, one complete output set, no debris."""
    for rel, data in expected.items():
        row = _row(harness, rel)
        assert row is not None and row["state"] == "done", row
        stem = rel.rsplit(".", 1)[0]
        assert (harness.outbox / inbox / f"{stem}.json").exists()
        wait_until(lambda rel=rel: (harness.archive / inbox / rel).exists(), 10, f"{rel} archived")
        assert (harness.archive / inbox / rel).read_bytes() == data
    assert [p for p in files_under(harness.outbox) if "~" in p.name] == []
    assert temp_like_files(harness.outbox) == []
    assert files_under(harness.inbox(inbox) / ".ocrd" / "work") == []


# ----------------------------------------------------------------------------- shared daemon: (b), (c), (d)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Iterator[DaemonHarness]:
    harness = DaemonHarness(tmp_path_factory.mktemp("faults"))
    harness.write_config(rescan_interval_s=0.5, max_attempts=3)
    harness.start()
    try:
        yield harness
    finally:
        harness.cleanup()


def test_job_log_locked_by_another_process(daemon: DaemonHarness):
    inbox = daemon.inbox("scans")
    dropped = {f"locked/before_{i}.png": _image(f"Before {8100 + i}") for i in range(2)}
    for rel, data in dropped.items():
        drop_file(inbox / rel, data)
    # Take the lock while the first files are queued or running, so completions hit it too.
    daemon.wait_rows(lambda rows: any(r["rel_path"].startswith("locked/") for r in rows), 30, "a first row")
    conn = sqlite3.connect(daemon.db_path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        locked_at = time.monotonic()
        during = {f"locked/during_{i}.png": _image(f"During {8200 + i}") for i in range(3)}
        for rel, data in during.items():
            drop_file(inbox / rel, data)
        dropped |= during
        # Held until the daemon has run into it: on a loaded machine its first write may come so late
        # that the 5 s busy timeout would outlast a fixed lock and the write simply succeed.
        wait_until(lambda: _busy_errors(daemon), LOCK_S + 60, "the locked job log to be reported as an error")
        time.sleep(max(0.0, LOCK_S - (time.monotonic() - locked_at)))
        assert daemon.proc.poll() is None, "the daemon died while the job log was locked"
    finally:
        conn.execute("COMMIT")
        conn.close()

    daemon.wait_rows(lambda rows: sum(r["rel_path"] in dropped and r["state"] == "done" for r in rows) == len(dropped),
                     60, "every file dropped around the lock to be done")  # fmt: skip
    _assert_nothing_lost(daemon, dropped)


def _busy_errors(harness: DaemonHarness) -> list[dict]:
    return [e for e in _errors(harness) if "busy" in json.dumps(e) or "locked" in json.dumps(e)]


def test_inbox_folder_removed_and_recreated(daemon: DaemonHarness):
    inbox = daemon.inbox("scans")
    daemon.wait_rows(lambda rows: all(r["state"] in ("done", "quarantined") for r in rows), 60, "an idle daemon")
    shutil.rmtree(inbox)  # like an unmounted share: the folder (with .ocrd/) is gone
    wait_until(lambda: daemon.events("inbox_scan_failed"), 10, "the failing rescan to be reported")
    time.sleep(1.5)  # several rescans while it is missing
    assert daemon.proc.poll() is None
    assert len(daemon.events("inbox_scan_failed")) == 1, "one error per outage, not one per rescan"
    inbox.mkdir()
    data = _image("Back 9090")
    drop_file(inbox / "back.png", data)
    daemon.wait_rows(_state_is(daemon, "back.png", "done"), 60, "a file dropped into the recreated inbox")
    assert "9090" in _text(daemon, "scans", "back")
    assert daemon.events("inbox_scan_recovered")
    _assert_nothing_lost(daemon, {"back.png": data})
    # Watched again (not only found by rescans): the observer of the removed folder was replaced.
    assert daemon.events("inbox_watch_restarted"), daemon.output()


def test_file_names_that_are_not_utf8_or_hold_a_newline(daemon: DaemonHarness):
    """A Latin-1 name from an old SMB client: processed under U+FFFD, its bytes in the log; the loop keeps going."""
    inbox = daemon.inbox("scans")
    dropped = {os.fsdecode(b"names/M\xfcller-\xe9t\xe9.png"): ("names/M\ufffdller-\ufffdt\ufffd.png", _image("Latin 7311"))}
    dropped[os.fsdecode(b"names/sub\xff/x.png")] = ("names/sub\ufffd/x.png", _image("Folder 7312"))
    dropped["names/two\nlines.png"] = ("names/two\nlines.png", _image("Newline 7313"))
    for raw, (_text_name, data) in dropped.items():
        drop_file(inbox / raw, data)
    expected = {text_name: data for text_name, data in dropped.values()}
    daemon.wait_rows(lambda rows: sum(r["rel_path"] in expected and r["state"] == "done" for r in rows) == len(expected),
                     60, "every oddly named file to be done")  # fmt: skip
    _assert_nothing_lost(daemon, expected)
    assert "7311" in _text(daemon, "scans", "names/M\ufffdller-\ufffdt\ufffd")
    renamed = {e["name"]: e["rel_path"] for e in daemon.events("inbox_name_not_utf8")}
    assert renamed == {"names/M\\xfcller-\\xe9t\\xe9.png": "names/M\ufffdller-\ufffdt\ufffd.png",
                       "names/sub\\xff/x.png": "names/sub\ufffd/x.png"}  # fmt: skip
    assert not [e for e in _errors(daemon) if "Unicode" in json.dumps(e)]


def _worker_pids(harness: DaemonHarness) -> list[int]:
    pids = []
    for pid in harness.live_group_members():
        if pid == harness.proc.pid:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            pids.append(pid)
    return pids


def test_worker_killed_from_outside_while_processing(daemon: DaemonHarness):
    # A big page, so the job is still running when the kill lands.
    lines = [f"Line {i} of the killed job 4242" for i in range(24)]
    from tests.fonts import latin_font_path, render_lines

    image, _ = render_lines(lines, latin_font_path(), size_px=36, width_px=1800)
    data = encode_image(image, "png")
    drop_file(daemon.inbox("scans") / "killed.png", data)
    daemon.wait_rows(_state_is(daemon, "killed.png", "running"), 60, "killed.png to be running")
    workers = _worker_pids(daemon)
    assert workers, "no worker process found"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)

    daemon.wait_rows(_state_is(daemon, "killed.png", "done"), 90, "the killed job to be retried and done")
    row = _row(daemon, "killed.png")
    assert row["attempts"] == 2, row
    retries = [e for e in daemon.events("job_retry_scheduled") if e.get("job_id") == row["id"]]
    assert [e["reason"] for e in retries] == ["worker_crashed"], retries
    assert "4242" in _text(daemon, "scans", "killed")
    assert daemon.proc.poll() is None
    _assert_nothing_lost(daemon, {"killed.png": data})


# ----------------------------------------------------------------------------- (a) outbox not writable


# `setpriv` rather than os.setuid in preexec_fn: the interpreter may live under a 0700 home (pyenv in
# /root), which `nobody` could not even execute. CAP_DAC_READ_SEARCH lets it read and traverse anything,
# and nothing more: it still cannot write where its uid may not, which is the fault under test.
_AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
              "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]  # fmt: skip


def _chown_tree(root: Path, uid: int) -> None:
    for folder, dirs, files in os.walk(root):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)


@pytest.fixture
def unprivileged_daemon() -> Iterator[DaemonHarness]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run the daemon as an unprivileged user (root ignores file permissions)")
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to run the daemon as an unprivileged user")
    root = Path(tempfile.mkdtemp(prefix="ocrd-nobody-"))
    os.chmod(root, 0o755)
    harness = DaemonHarness(root)
    harness.command_prefix = _AS_NOBODY
    harness.extra_env.update(HOME=str(root), PYTHONDONTWRITEBYTECODE="1")
    try:
        yield harness
    finally:
        harness.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def test_outbox_not_writable(unprivileged_daemon: DaemonHarness):
    harness = unprivileged_daemon
    harness.write_config(max_attempts=2)
    _chown_tree(harness.root, NOBODY)
    harness.start()
    inbox = harness.inbox("scans")
    os.chown(harness.outbox, 0, 0)  # root's, 0755: the daemon (nobody) can no longer create outbox/scans
    os.chmod(harness.outbox, 0o755)

    first, second = _image("Denied 1111"), _image("Denied 2222")
    drop_file(inbox / "first.png", first)
    os.chown(inbox / "first.png", NOBODY, NOBODY)
    # Policy: output_failed is transient: retried (5 s later), then `failed` with the file kept in work.
    harness.wait_rows(_state_is(harness, "first.png", "failed"), 60, "first.png to fail after its retries")
    row = _row(harness, "first.png")
    assert row["reason"] == "output_failed" and row["attempts"] == 2, row
    assert Path(row["work_path"]).read_bytes() == first, "a failed file is kept, intact, for requeue"
    assert files_under(harness.quarantine) == []
    failed = [e for e in harness.events("job_failed") if e.get("job_id") == row["id"]]
    assert len(failed) == 1 and "ermission" in failed[0]["error"], failed

    drop_file(inbox / "second.png", second)
    os.chown(inbox / "second.png", NOBODY, NOBODY)
    harness.wait_rows(lambda rows: any(r["rel_path"] == "second.png" and r["reason"] == "output_failed"
                                       and r["state"] == "queued" for r in rows),
                      60, "second.png's first attempt to fail and be scheduled again")  # fmt: skip
    assert harness.proc.poll() is None

    os.chown(harness.outbox, NOBODY, NOBODY)  # the fault clears
    harness.wait_rows(_state_is(harness, "second.png", "done"), 60, "second.png done on its retry")
    result = harness.ocrd("requeue", "--state", "failed")
    assert result.returncode == 0, result.stderr
    harness.wait_rows(_state_is(harness, "first.png", "done"), 60, "first.png done after `ocrd requeue`")
    assert "1111" in _text(harness, "scans", "first") and "2222" in _text(harness, "scans", "second")
    _assert_nothing_lost(harness, {"first.png": first, "second.png": second})
    assert harness.stop() == 0, harness.output()


# ----------------------------------------------------------------------------- (e) full file system


@pytest.fixture
def tmpfs_outbox(tmp_path) -> Iterator[Path]:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(outbox)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield outbox
    finally:
        subprocess.run(["umount", "-l", str(outbox)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Write zeros until the file system is full (unbuffered: a buffered close would raise ENOSPC)."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_outbox_on_a_full_file_system(ocrd_daemon: DaemonHarness, tmpfs_outbox: Path):
    harness = ocrd_daemon
    harness.write_config(max_attempts=3)
    harness.start()
    filler = _fill(tmpfs_outbox)
    data = _image("Full 3333")
    drop_file(harness.inbox("scans") / "full.png", data)

    harness.wait_rows(lambda rows: any(r["rel_path"] == "full.png" and r["reason"] == "output_failed"
                                       and r["state"] == "queued" for r in rows),
                      60, "the first attempt to fail on the full disk")  # fmt: skip
    retries = harness.events("job_retry_scheduled")
    assert retries and "space" in retries[0]["error"], retries
    assert temp_like_files(tmpfs_outbox) == [], "a failed write must not leave temp files"
    assert [p.name for p in files_under(tmpfs_outbox)] == ["filler.bin"], "no partial output set"
    assert Path(_row(harness, "full.png")["work_path"]).read_bytes() == data

    filler.unlink()  # the fault clears
    harness.wait_rows(_state_is(harness, "full.png", "done"), 60, "full.png done on its retry")
    assert "3333" in _text(harness, "scans", "full")
    _assert_nothing_lost(harness, {"full.png": data})
    assert harness.stop() == 0, harness.output()
