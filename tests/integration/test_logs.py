"""The log file sink: JSON lines always, job_id bound, and rotation by logrotate without losing a line."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocrd.errors import UnavailableError
from ocrd.logs import bound_job, configure_logging, get_logger, reopen_log_files
from tests.integration.test_service_files import logrotate_copy


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def read_json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_file_sink_is_json_even_when_the_console_format_is_chosen(tmp_path):
    stream = io.StringIO()
    log_file = tmp_path / "sub" / "ocrd.log"  # the folder is created
    configure_logging("console", "info", stream=stream, file=log_file)
    get_logger("t").info("job_done", pages=2, rel_path="a/b.jpg")
    records = read_json_lines(log_file)
    assert records[0]["event"] == "job_done" and records[0]["pages"] == 2 and records[0]["level"] == "info"
    assert "job_done" in stream.getvalue() and not stream.getvalue().lstrip().startswith("{")


def test_bound_job_tags_structlog_and_stdlib_lines_and_ends_with_the_block(tmp_path):
    log_file = tmp_path / "ocrd.log"
    configure_logging("json", "info", stream=io.StringIO(), file=log_file)
    with bound_job("01JOB", inbox="scans"):
        get_logger("t").info("job_started")
        logging.getLogger("some.library").warning("library said %s", "hello")
    get_logger("t").info("idle")
    started, library, idle = read_json_lines(log_file)
    assert started["job_id"] == library["job_id"] == "01JOB" and started["inbox"] == "scans"
    assert library["event"] == "library said hello" and library["logger"] == "some.library"
    assert "job_id" not in idle


def test_a_file_name_that_is_not_utf8_does_not_cost_the_line(tmp_path):
    stream = io.StringIO()
    log_file = tmp_path / "ocrd.log"
    configure_logging("json", "info", stream=stream, file=log_file)
    raw = os.fsdecode(b"M\xfcller.jpg")  # how Python holds a Latin-1 name's byte 0xfc
    get_logger("t").warning("claim_refused", rel_path=raw)
    logging.getLogger("other").warning("stdlib line about %s", raw)
    records = read_json_lines(log_file)
    assert [r.get("rel_path", r["event"]) for r in records] == [raw, f"stdlib line about {raw}"]  # read back exactly
    assert stream.getvalue().count("\n") == 2 and "\\udcfc" in stream.getvalue()
    stream.getvalue().encode("utf-8")  # what goes to journald is valid UTF-8


def test_level_filters_the_file_too(tmp_path):
    log_file = tmp_path / "ocrd.log"
    configure_logging("json", "warning", stream=io.StringIO(), file=log_file)
    get_logger("t").info("quiet")
    get_logger("t").warning("loud")
    assert [r["event"] for r in read_json_lines(log_file)] == ["loud"]


def test_unopenable_log_file_is_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UnavailableError, match="cannot open log file"):
        configure_logging("json", "info", stream=io.StringIO(), file=blocker / "ocrd.log")


def test_a_renamed_file_is_followed_without_any_signal(tmp_path):
    log_file = tmp_path / "ocrd.log"
    configure_logging("json", "info", stream=io.StringIO(), file=log_file)
    log = get_logger("t")
    log.info("line", n=0)
    os.rename(log_file, tmp_path / "ocrd.log.1")
    log.info("line", n=1)
    assert [r["n"] for r in read_json_lines(tmp_path / "ocrd.log.1")] == [0]
    assert [r["n"] for r in read_json_lines(log_file)] == [1]


def test_reopen_request_reopens_on_the_next_line(tmp_path):
    # copytruncate-style or same-inode cases: the explicit request reopens even when the path still matches.
    log_file = tmp_path / "ocrd.log"
    configure_logging("json", "info", stream=io.StringIO(), file=log_file)
    log = get_logger("t")
    log.info("line", n=0)
    assert reopen_log_files() == 1
    log_file.unlink()
    log_file.touch()  # may even reuse the inode: the flag makes it reopen regardless
    log.info("line", n=1)
    assert [r["n"] for r in read_json_lines(log_file)] == [1]


def test_reopen_without_file_sink_is_a_no_op():
    configure_logging("json", "info", stream=io.StringIO())
    assert reopen_log_files() == 0


WRITER = r"""
import signal, sys, time
from pathlib import Path
from ocrd.logs import configure_logging, get_logger, reopen_log_files
log_file, stop_file = sys.argv[1], Path(sys.argv[2])
configure_logging("json", "info", stream=open("/dev/null", "w"), file=log_file)
signal.signal(signal.SIGHUP, lambda *_: reopen_log_files())   # what the daemon installs
log = get_logger("writer")
n = 0
while not stop_file.exists():
    log.info("tick", n=n)
    n += 1
    time.sleep(0.002)
log.info("tick", n=n)
print(n + 1)
"""


def wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_logrotate_force_rotation_while_writing_loses_no_line(tmp_path):
    logrotate = shutil.which("logrotate")
    if logrotate is None:
        pytest.skip("logrotate is not installed (apt-get install logrotate; .ci/run does this as root)")
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o750)
    log_file = log_dir / "ocrd.log"
    stop_file = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(log_file), str(stop_file)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        wait_for(lambda: count_lines(log_file) >= 50)
        # The shipped config, its paths moved to tmp, postrotate signalling our writer instead of systemd.
        conf = logrotate_copy(tmp_path, log_dir, postrotate=f"/bin/kill -HUP {writer.pid}")
        proc = subprocess.run([logrotate, "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rotated = log_dir / "ocrd.log.1"  # delaycompress: the first rotation stays plain text
        assert rotated.exists()
        wait_for(lambda: count_lines(log_file) >= 50)  # writing went on in the new file
        stop_file.touch()
        total = int(writer.communicate(timeout=30)[0])
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0
    numbers = [r["n"] for path in (rotated, log_file) for r in read_json_lines(path)]
    assert numbers == list(range(total)), "lines lost, duplicated or out of order across the rotation"
    assert read_json_lines(rotated)[0]["n"] == 0 and read_json_lines(log_file)[-1]["n"] == total - 1
