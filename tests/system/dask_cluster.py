"""Helpers for the Dask system tests: a real `dask scheduler` and real `dask worker` processes on 127.0.0.1.

`dask worker` exits when its scheduler goes away; in production systemd's `Restart=always`
(systemd/ocrd-dask-worker.service) starts it again, and here a supervisor thread does the same.
Every process is started by this module and stopped by its own pid.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.fonts import latin_font_path, render_lines
from tests.system.harness import free_tcp_port, wait_until

DASK = str(Path(sys.executable).parent / "dask")
WORKER_START_S = 120.0  # models load (and are hashed) in each worker; the machine is shared


def _stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the nanny and its worker process
            proc.wait(timeout=timeout_s)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # a worker process its nanny left behind
    except (ProcessLookupError, PermissionError):
        pass


class Scheduler:
    """`dask scheduler` on a fixed 127.0.0.1 port, so a restarted one is found at the same address."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.port = free_tcp_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.root / f"scheduler{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.root,
        )  # fmt: skip
        log.close()
        wait_until(lambda: b"Scheduler at" in (self.root / f"scheduler{self.starts}.log").read_bytes(), 60,
                   "the scheduler to listen")  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


class Worker:
    """One `dask worker --nthreads 1` (with its nanny), restarted whenever it exits, as systemd would."""

    def __init__(self, root: Path, scheduler: Scheduler, name: str, env: dict[str, str] | None = None):
        self.root = Path(root)
        self.scheduler = scheduler
        self.name = name
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"supervise-{name}", daemon=True)

    def start(self) -> None:
        self._launch()
        self._thread.start()

    def _launch(self) -> None:
        self.runs += 1
        log = open(self.log_path(self.runs), "wb")
        self.proc = subprocess.Popen(
            [DASK, "worker", self.scheduler.address, "--name", self.name, "--nthreads", "1", "--nworkers", "1",
             "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "120",
             "--local-directory", str(self.root / f"{self.name}-scratch")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.root,
            env=self.env,
        )  # fmt: skip
        log.close()

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self.proc
            if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                time.sleep(1.0)  # systemd's RestartSec
                if not self._stopping.is_set():
                    self._launch()
            self._stopping.wait(0.2)

    def log_path(self, run: int) -> Path:
        return self.root / f"{self.name}.{run}.log"

    def log_text(self) -> str:
        return "".join(self.log_path(n).read_text(errors="replace") for n in range(1, self.runs + 1)
                       if self.log_path(n).exists())  # fmt: skip

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        if self.proc is not None:
            _stop(self.proc)


def fake_model_package(root: Path, changed_role: str = "cls") -> Path:
    """A `rapidocr` package dir whose model files are the installed ones except one byte more in one file:
    what a worker host with other model files looks like. Put its parent first on PYTHONPATH."""
    from ocrd.engine.models import BUILTIN_SETS, package_dir

    spec = BUILTIN_SETS["ppocrv6-small"]
    source = package_dir(spec.package)
    target = Path(root) / "fake-models" / spec.package
    for role in ("det", "rec", "cls"):
        rel = getattr(spec, role)[0]
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        data = (source / rel).read_bytes()
        (target / rel).write_bytes(data + b"\0" if role == changed_role else data)
    (target / "__init__.py").write_text("")
    return target.parent


def slow_tiff(pages: int = 8, lines: int = 40) -> bytes:
    """A multi-page TIFF of full text pages: seconds to read, so a test can act while it runs."""
    from PIL import Image

    font = latin_font_path()
    assert font is not None, "no TrueType font to render test pages"
    images = []
    for page in range(pages):
        image, _ = render_lines([f"Page {page} line {n} of a long statement 12.34" for n in range(lines)], font,
                                size_px=28)  # fmt: skip
        images.append(Image.fromarray(image[:, :, ::-1]))
    buffer = io.BytesIO()
    images[0].save(buffer, format="TIFF", save_all=True, append_images=images[1:], compression="tiff_lzw")
    return buffer.getvalue()
