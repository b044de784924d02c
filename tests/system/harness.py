"""Helpers for system tests: run `ocrd run` as a real process, drop files, read logs and the job log.

The daemon is started with `start_new_session=True`, so it leads its own process group and its
spawned worker processes belong to it: `kill_group()` is a real crash of the whole daemon.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import cv2

from tests.fonts import latin_font_path, render_lines

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0  # models load in every worker; the machine is shared with benchmarks
STOP_TIMEOUT_S = 60.0
TERMINAL_STATES = frozenset({"done", "failed", "quarantined", "duplicate"})
SETTLE_S = 0.4
# What the default config writes per page file, in the order outputs.output_paths names them.
DEFAULT_OUTPUT_SUFFIXES = (".json", ".txt", ".vis.jpg", ".pdf")


def base_config() -> dict[str, Any]:
    """Two inboxes (one inotify, one polled), everything else under the config's folder, JSON logs."""
    return {
        "inboxes": [
            {"name": "scans", "path": "inbox/scans", "watch": "inotify", "settle_s": SETTLE_S},
            {"name": "polled", "path": "inbox/polled", "watch": "poll", "settle_s": SETTLE_S},
        ],
        "outbox": "outbox",
        "archive": "archive",
        "quarantine": "quarantine",
        "state_dir": "state",
        "rescan_interval_s": 2.0,
        "workers": {"count": 2, "intra_op_threads": 1, "job_timeout_s": 60},
        # Truncated test files are final, not still copying: no reason to word them as young.
        "intake": {"young_file_s": 0},
        "logging": {"format": "json", "level": "info"},
    }


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


# ----------------------------------------------------------------------------- images


def render_text_image(text: str, *, width_px: int = 600, height_px: int = 200) -> Any:
    """A BGR image with `text` in DejaVu Sans on white, about width_px x height_px."""
    font = latin_font_path()
    if font is None:  # pragma: no cover - DejaVu ships with matplotlib and most systems
        raise RuntimeError("no DejaVuSans.ttf found for rendering test images")
    size_px = 40
    margin_px = (height_px - size_px) // 2
    image, _ = render_lines([text], font, size_px=size_px, margin_px=margin_px, width_px=width_px)
    return image


def encode_image(image: Any, ext: str) -> bytes:
    ok, buf = cv2.imencode(f".{ext}", image)
    assert ok, f"cannot encode .{ext}"
    return buf.tobytes()


def drop_file(dest: Path, data: bytes) -> None:
    """Copy `data` to `dest` in one go, as `cp` would."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as handle:
        handle.write(data)


def drop_slowly(dest: Path, data: bytes, pause_s: float, parts: int = 2) -> None:
    """Write `data` to `dest` in `parts` chunks, flushed to disk, pausing `pause_s` between them."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // parts)
    with open(dest, "wb") as handle:
        for start in range(0, len(data), step):
            if start:
                time.sleep(pause_s)
            handle.write(data[start : start + step])
            handle.flush()
            os.fsync(handle.fileno())


def proc_status_kb(pid: int, key: str = "VmRSS") -> int:
    """A kB (or count) field of /proc/<pid>/status: VmRSS, VmHWM, Threads; 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()) if root.exists() else []


def temp_like_files(root: Path) -> list[Path]:
    """Files a half-finished write could leave: hidden names or `.tmp` endings."""
    return [p for p in files_under(root) if p.name.startswith(".") or p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- the daemon


class DaemonHarness:
    """One temp installation: config, folders, and (when started) one `ocrd run` process."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cfg_path = self.root / "config.yaml"
        self.outbox = self.root / "outbox"
        self.archive = self.root / "archive"
        self.quarantine = self.root / "quarantine"
        self.db_path = self.root / "state" / "jobs.db"
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None
        self._files: list[Any] = []
        self.extra_env: dict[str, str] = {}  # added to the daemon's environment (NOTIFY_SOCKET, ...)
        self.command_prefix: list[str] = []  # run the daemon through this (e.g. setpriv to drop privileges)

    # -- config and paths

    def write_config(self, **overrides: Any) -> dict[str, Any]:
        cfg = _merge(base_config(), overrides)
        self.cfg_path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")  # JSON is YAML
        for inbox in cfg["inboxes"]:
            (self.root / inbox["path"]).mkdir(parents=True, exist_ok=True)
        return cfg

    def inbox(self, name: str) -> Path:
        return self.root / "inbox" / name

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "OCRD_CONFIG"}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    # -- process lifecycle

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start `ocrd run -c config` and wait for its `daemon_started` log line."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        self.stdout_path = self.root / f"run{self.runs}.stdout"
        self.stderr_path = self.root / f"run{self.runs}.stderr"
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        self._files += [out, err]
        self.proc = subprocess.Popen(
            [*self.command_prefix, sys.executable, "-m", "ocrd", "run", "-c", str(self.cfg_path)],
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )

        def started() -> bool:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise AssertionError(f"ocrd run exited with {code} before it was ready\n{self.output()}")
            return bool(self.events("daemon_started"))

        wait_until(started, timeout_s, "the daemon_started log line", interval_s=0.2)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then wait for the exit code (SIGKILL to the group after `timeout_s`, and fail)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise AssertionError(f"ocrd run did not exit within {timeout_s:g} s of SIGTERM\n{self.output()}") from None

    def kill_group(self) -> None:
        """SIGKILL the daemon and every process of its group (its workers), and reap the daemon."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def live_group_members(self) -> list[int]:
        """Pids of the daemon's process group that still run (zombies waiting for init don't count)."""
        assert self.proc is not None
        members = []
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited meanwhile
            state, pgid = fields[0], int(fields[2])
            if pgid == self.proc.pid and state not in ("Z", "X"):
                members.append(int(stat_file.parent.name))
        return members

    def cleanup(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            # Whatever is left of the group (workers of a daemon that died, or one that hung) goes too.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.proc.poll() is None:
                self.proc.wait(timeout=30)
        for handle in self._files:
            handle.close()

    # -- what it says

    def output(self) -> str:
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            if path is not None and path.exists():
                text = path.read_text(encoding="utf-8", errors="replace")
                parts.append(f"--- {path.name} (last 4000 chars)\n{text[-4000:]}")
        return "\n".join(parts)

    def events(self, name: str | None = None, run: int | None = None) -> list[dict[str, Any]]:
        """Parsed JSON log lines of run `run` (default: the current one), optionally only event `name`."""
        path = self.root / f"run{run or self.runs}.stdout"
        if not path.exists():
            return []
        found = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the last line may be half written
            if isinstance(record, dict) and (name is None or record.get("event") == name):
                found.append(record)
        return found

    # -- the job log, read as any outside reader would

    def rows(self) -> list[dict[str, Any]]:
        """Every job row, via a read-only SQLite connection (works while the daemon writes)."""
        if not self.db_path.exists():
            return []
        conn = sqlite3.connect(f"{self.db_path.absolute().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY created_at, rowid")]
        finally:
            conn.close()

    def ocrd(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        """Run another `ocrd` command on the same config (jobs, status, requeue)."""
        return subprocess.run(
            [*self.command_prefix, sys.executable, "-m", "ocrd", *args, "-c", str(self.cfg_path)],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def wait_rows(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float, what: str) -> list[dict]:
        """Poll the job log until `predicate(rows)` holds; the daemon must stay alive meanwhile."""

        def check() -> list[dict[str, Any]] | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"ocrd run exited with {self.proc.returncode}\n{self.output()}")
            rows = self.rows()
            return rows if predicate(rows) else None

        try:
            return wait_until(check, timeout_s, what, interval_s=0.25)
        except AssertionError as exc:
            states: dict[str, int] = {}
            for row in self.rows():
                states[row["state"]] = states.get(row["state"], 0) + 1
            raise AssertionError(f"{exc}; job states now {states}\n{self.output()}") from None


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bound to port 0, then released); the config refuses port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def read_json_log(path: Path) -> list[dict[str, Any]]:
    """JSON-lines records of a log file, plain or gzip-compressed (by logrotate's `compress`)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class NotifyListener:
    """A systemd-like NOTIFY_SOCKET: an AF_UNIX datagram socket drained by a thread.

    Draining matters: the notifier's socket is blocking and the kernel queues only
    net.unix.max_dgram_qlen (often 10) datagrams, so an unread socket would stall
    the daemon's loop on WATCHDOG=1. `messages` holds (monotonic time, text) pairs.
    `on_message(text)` runs on the reader thread as each datagram arrives.
    """

    def __init__(self, directory: Path, on_message: Callable[[str], None] | None = None):
        self.path = Path(directory) / "notify.sock"
        self._tmpdir: str | None = None
        if len(os.fsencode(self.path)) > 100:  # sun_path holds 108 bytes
            self._tmpdir = tempfile.mkdtemp(prefix="ocrd-notify-")
            self.path = Path(self._tmpdir) / "notify.sock"
        self.messages: list[tuple[float, str]] = []
        self._on_message = on_message
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._sock.settimeout(0.2)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="notify-listener", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            text = data.decode("utf-8", errors="replace")
            if self._on_message is not None:
                self._on_message(text)
            with self._lock:
                self.messages.append((time.monotonic(), text))

    def snapshot(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.messages)

    def with_field(self, assignment: str, since_s: float = 0.0) -> list[tuple[float, str]]:
        """Messages (after `since_s`) holding the line `assignment` ("READY=1") or, ending in '=', any value."""
        def has(text: str) -> bool:
            lines = text.split("\n")
            if assignment.endswith("="):
                return any(line.startswith(assignment) for line in lines)
            return assignment in lines

        return [(t, m) for t, m in self.snapshot() if t >= since_s and has(m)]

    def wait_for(
        self, assignment: str, timeout_s: float, count: int = 1, since_s: float = 0.0
    ) -> list[tuple[float, str]]:
        """Wait until `count` messages with `assignment` arrived after `since_s`; returns them."""
        return wait_until(
            lambda: (found := self.with_field(assignment, since_s)) and len(found) >= count and found,
            timeout_s, f"{count} x {assignment} on NOTIFY_SOCKET",  # fmt: skip
        )

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._sock.close()
        self.path.unlink(missing_ok=True)
        if self._tmpdir is not None:
            os.rmdir(self._tmpdir)


def all_terminal(expected: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda rows: len(rows) >= expected and all(r["state"] in TERMINAL_STATES for r in rows)
