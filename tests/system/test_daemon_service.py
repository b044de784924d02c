"""`ocrd run` as a system service (issue 5, "Done means"), each part checked against a real daemon process:

- the sd_notify protocol over a datagram socket the test opens (READY, STATUS, WATCHDOG, STOPPING);
- /healthz and /metrics scraped over HTTP after real jobs, the metrics parsed as Prometheus text;
- the log file sink rotated by `logrotate -f` (the shipped config, paths moved to tmp) while the daemon
  writes on, with no line lost or duplicated;
- `ocrd check` exit codes on the harness config.

One worker per daemon: these tests are about the service plumbing, not throughput.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.system.harness import (
    DaemonHarness,
    NotifyListener,
    all_terminal,
    drop_file,
    encode_image,
    free_tcp_port,
    read_json_log,
    render_text_image,
    wait_until,
)

ONE_WORKER = {"count": 1}
JOBS_TIMEOUT_S = 120.0  # a handful of one-line images on a shared 2-core machine
NOTIFY_TIMEOUT_S = 10.0
CORRUPT = b"Meeting notes, not a picture at all.\n" * 20  # a .jpg that is text: unsupported_format


def _image(text: str, ext: str = "png") -> bytes:
    return encode_image(render_text_image(text, width_px=400, height_px=120), ext)


# --------------------------------------------------------------------------- sd_notify


def test_sd_notify_from_a_running_daemon(ocrd_daemon: DaemonHarness, tmp_path: Path):
    h = ocrd_daemon
    h.write_config(workers=ONE_WORKER)
    logged_before_ready: list[bool] = []

    def on_message(text: str) -> None:
        # Runs as the datagram arrives: the daemon_started line (written after the models
        # loaded in a worker) must already be in the log by then.
        if "READY=1" in text.split("\n"):
            logged_before_ready.append(bool(h.events("daemon_started")))

    listener = NotifyListener(tmp_path, on_message)
    try:
        h.extra_env["NOTIFY_SOCKET"] = str(listener.path)
        h.start()
        (ready_s, ready), *_ = listener.wait_for("READY=1", NOTIFY_TIMEOUT_S)
        assert logged_before_ready == [True], "READY=1 came before the daemon_started line, or more than once"
        first = listener.snapshot()[0][1]
        assert first.startswith("READY=1"), f"the first datagram is not READY=1: {first!r}"

        # STATUS= rides along with READY and is then sent by the loop on its own.
        statuses = listener.wait_for("STATUS=", NOTIFY_TIMEOUT_S, count=2)
        for _, text in statuses:
            status = next(line for line in text.split("\n") if line.startswith("STATUS="))
            assert "in flight" in status and "1 workers" in status, status

        # Idle is healthy: the loop keeps pinging, and keeps on doing so.
        listener.wait_for("WATCHDOG=1", NOTIFY_TIMEOUT_S, count=5, since_s=ready_s)
        listener.wait_for("WATCHDOG=1", NOTIFY_TIMEOUT_S, count=3, since_s=time.monotonic())
        assert not listener.with_field("STOPPING=1")

        term_s = time.monotonic()
        assert h.stop() == 0, h.output()
        (stopping_s, _), *_ = listener.wait_for("STOPPING=1", NOTIFY_TIMEOUT_S, since_s=term_s)
        late = [text for t, text in listener.snapshot() if t > stopping_s and "WATCHDOG=1" in text.split("\n")]
        assert not late, "WATCHDOG=1 after STOPPING=1"
        assert len(listener.with_field("READY=1")) == 1
        assert len(listener.with_field("STOPPING=1")) == 1
    finally:
        listener.close()


# --------------------------------------------------------------------------- /healthz and /metrics


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names lower-cased: HTTP names are case-insensitive) and body."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def _samples(metrics_text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value}; raises if the text is not valid Prometheus exposition."""
    out = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_healthz_and_metrics_scraped_from_a_running_daemon(ocrd_daemon: DaemonHarness):
    h = ocrd_daemon
    port = free_tcp_port()
    h.write_config(workers=ONE_WORKER, http={"enabled": True, "listen": f"127.0.0.1:{port}"})
    h.start()
    (listening,) = h.events("http_listening")
    base = listening["url"]
    assert base == f"http://127.0.0.1:{port}"

    drop_file(h.inbox("scans") / "a.png", _image("Invoice 1001"))
    drop_file(h.inbox("polled") / "b.jpg", _image("Invoice 1002", "jpg"))
    drop_file(h.inbox("scans") / "notes.jpg", CORRUPT)
    rows = h.wait_rows(all_terminal(3), JOBS_TIMEOUT_S, "3 terminal jobs")
    by_name = {Path(r["rel_path"]).name: r for r in rows}
    assert {n: r["state"] for n, r in by_name.items()} == {"a.png": "done", "b.jpg": "done", "notes.jpg": "quarantined"}
    reason = by_name["notes.jpg"]["reason"]
    assert reason == "unsupported_format"

    code, _, body = _get(f"{base}/healthz")
    health = json.loads(body)
    assert code == 200 and health["status"] == "ok", body
    assert health["workers_alive"] is True and health["workers"] == 1
    assert _get(f"{base}/nope")[0] == 404

    # Job-log counts reach /metrics on the loop's next refresh (every few seconds).
    def scrape() -> tuple[dict, dict, str] | None:
        code, headers, body = _get(f"{base}/metrics")
        assert code == 200, body
        text = body.decode("utf-8")
        samples = _samples(text)
        done = samples.get(("ocrd_jobs", (("state", "done"),)), 0)
        quarantined = samples.get(("ocrd_jobs", (("state", "quarantined"),)), 0)
        return (samples, headers, text) if done >= 2 and quarantined >= 1 else None

    samples, headers, text = wait_until(scrape, 20, "/metrics to count 2 done and 1 quarantined", interval_s=0.5)
    assert headers["content-type"].startswith("text/plain"), headers
    assert samples[("ocrd_job_duration_seconds_count", ())] >= 2
    assert samples[("ocrd_job_duration_seconds_sum", ())] > 0
    assert samples[("ocrd_job_duration_seconds_bucket", (("le", "+Inf"),))] >= 2
    assert samples[("ocrd_quarantines_total", (("reason", reason),))] >= 1
    assert samples[("ocrd_queue_depth", ())] == 0
    assert samples[("ocrd_jobs_in_flight", ())] == 0
    assert samples[("ocrd_workers_alive", ())] == 1
    assert ("ocrd_worker_restarts_total", ()) in samples
    assert "# TYPE ocrd_job_duration_seconds histogram" in text

    assert h.stop() == 0, h.output()


# --------------------------------------------------------------------------- log file rotation


def _rotate_by_hand(log_file: Path, pid: int) -> None:
    """What the shipped logrotate config does (delaycompress), for machines without logrotate."""
    one, two = log_file.with_name(log_file.name + ".1"), log_file.with_name(log_file.name + ".2.gz")
    if one.exists():
        with open(one, "rb") as src, gzip.open(two, "wb") as dst:
            shutil.copyfileobj(src, dst)
        one.unlink()
    os.rename(log_file, one)
    os.kill(pid, signal.SIGHUP)


@pytest.mark.parametrize("rotator", ["logrotate", "rename+SIGHUP"])
def test_log_file_rotated_under_a_running_daemon_loses_no_line(ocrd_daemon: DaemonHarness, tmp_path: Path, rotator):
    from tests.integration.test_service_files import logrotate_copy

    logrotate = shutil.which("logrotate")
    if rotator == "logrotate" and logrotate is None:
        pytest.skip("logrotate is not installed (apt-get install logrotate; .ci/run does this as root)")
    h = ocrd_daemon
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o750)  # logrotate refuses a world-writable folder
    log_file = log_dir / "ocrd.log"
    h.write_config(workers=ONE_WORKER, logging={"file": str(log_file)})
    h.start()
    assert h.proc is not None

    one, two = log_dir / "ocrd.log.1", log_dir / "ocrd.log.2.gz"

    def sink_records() -> list[dict]:
        return [r for path in (two, one, log_file) if path.exists() for r in read_json_log(path)]

    def rotate() -> None:
        if rotator == "logrotate":
            conf = logrotate_copy(tmp_path, log_dir, postrotate=f"/bin/kill -HUP {h.proc.pid}")
            proc = subprocess.run([logrotate, "-f", "-s", str(tmp_path / "logrotate.state"), str(conf)],
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
            assert proc.returncode == 0, proc.stdout + proc.stderr
        else:
            _rotate_by_hand(log_file, h.proc.pid)

    batches: list[set[str]] = []
    for b in range(3):
        before = {r["id"] for r in h.rows()}
        for i in range(2):
            drop_file(h.inbox("scans" if i % 2 == 0 else "polled") / f"b{b}_{i}.png", _image(f"Batch {b} page {i}"))
        rows = h.wait_rows(all_terminal(len(before) + 2), JOBS_TIMEOUT_S, f"batch {b} terminal")
        batch = {r["id"] for r in rows} - before
        assert {r["state"] for r in rows if r["id"] in batch} == {"done"}
        batches.append(batch)
        # The row is written before its job_done line: wait for the line itself, then rotate under it.
        wait_until(lambda: batch <= {r.get("job_id") for r in sink_records() if r["event"] == "job_done"},
                   30, f"batch {b}'s job_done lines in the log file")  # fmt: skip
        if b < 2:
            rotate()

    assert h.stop() == 0, h.output()
    assert one.exists() and two.exists(), sorted(p.name for p in log_dir.iterdir())
    with open(two, "rb") as handle:
        assert handle.read(2) == b"\x1f\x8b", "the second rotation did not compress"

    # Every job's job_done exactly once across the current file and the rotated ones.
    done_ids = {r["id"] for r in h.rows() if r["state"] == "done"}
    assert done_ids == set().union(*batches) and len(done_ids) == 6
    seen = Counter(r.get("job_id") for r in sink_records() if r["event"] == "job_done")
    assert seen == Counter({job_id: 1 for job_id in done_ids}), seen

    # Each file holds what was logged while it was current: the new file got lines after each rotation.
    per_file = {
        p.name: {r.get("job_id") for r in read_json_log(p) if r["event"] == "job_done"} for p in (two, one, log_file)
    }
    assert per_file == {two.name: batches[0], one.name: batches[1], log_file.name: batches[2]}, per_file
    assert any(r["event"] == "daemon_started" for r in read_json_log(two))
    assert read_json_log(log_file)[-1]["event"] == "daemon_stopped"

    # No line lost or duplicated anywhere: the file sink saw exactly what stdout (journald) saw, in order.
    def key(r: dict) -> tuple:
        return r["event"], r.get("job_id"), r.get("rel_path")

    assert [key(r) for r in sink_records()] == [key(r) for r in h.events()]


# --------------------------------------------------------------------------- ocrd check


def test_ocrd_check_exit_codes_on_the_harness_config(ocrd_daemon: DaemonHarness):
    h = ocrd_daemon
    ok = h.ocrd("check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1].startswith("ok: config "), ok.stdout

    h.outbox.write_text("a file where the outbox folder should be\n")
    bad = h.ocrd("check")
    assert bad.returncode == 69, bad.stdout + bad.stderr
    problems = [line for line in bad.stderr.splitlines() if line.startswith("ocrd check:")]
    assert problems == [f"ocrd check: unavailable: outbox {h.outbox} is not a directory"], bad.stderr
