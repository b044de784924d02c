"""HTTP intake under load (issue 16): many uploads from concurrent clients, a trickling client, a full disk.

Usage:
    python bench/uploads.py [--uploads 1000] [--clients 16] [--workers 2] [--trickle-s 30]
        [--trickle-uploads 160] [--full-uploads 20] [--work /tmp/ocrd-bench/uploads]
        [--json bench/out/uploads.json] [--skip-full]

The daemon is started like the system tests start it (tests/system/harness.py: `ocrd run` in its own
process group, a temp config, JSON logs), with the listener on 127.0.0.1, one `upload` token with a
burst and rate high enough that 429 is not what is measured, and `max_queued` above the upload count.

1. Load: UPLOADS distinct small rendered PNGs (one line of text each, about 10 KB) are POSTed by
   CLIENTS threads, one connection per request. Upload latency is request start to the 202 answer
   (the body streamed, fsynced and claimed by the main loop). Then the job log is polled until
   every row is final. Checks: every upload got 202 and a distinct id, the job log holds exactly
   those ids, every one `done` with attempts 1, one archived original and one result JSON each.
   Daemon RSS: the main process and the whole process group, sampled every 0.5 s, peak and last.
2. Trickle: a raw socket sends an upload's headers and then one body byte a second for TRICKLE_S
   seconds, while CLIENTS threads send TRICKLE_UPLOADS uploads; the same batch without the trickler
   just before is the baseline. Reported: both p50/p95 and their ratio. The trickler then sends the
   rest of its body at once and must get 202.
3. Full disk (root only: a 16 MiB tmpfs mounted over the inbox; skipped with a note otherwise): a
   filler file leaves about 1 MiB free, `http.min_free_mb: 0`. FULL_UPLOADS uploads of 2 MiB, half
   with Content-Length (refused before reading) and half chunked (refused when a write fails with
   ENOSPC), must all be answered 507 with nothing kept (no staging file, no row, free space as before);
   a small upload that fits still gets 202.

Timings depend on the machine (2 shared cores here): read ratios and counts, not absolute figures.
The daemon is stopped with SIGTERM (its own pid), the tmpfs unmounted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.system.api_client import add_token, distinct_png  # noqa: E402
from tests.system.harness import DaemonHarness, free_tcp_port, proc_status_kb, wait_until  # noqa: E402

TERMINAL = {"done", "failed", "quarantined", "duplicate"}


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def post(port: int, token: str, body, filename: str, timeout_s: float = 120) -> tuple[int, dict, float]:
    """One upload on a fresh connection: (status, JSON answer, seconds)."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        chunked = not isinstance(body, bytes)
        conn.request("POST", f"/api/v1/jobs?inbox=scans&filename={filename}", body=body, encode_chunked=chunked,
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data else {}), time.perf_counter() - t0
    finally:
        conn.close()


def upload_batch(port: int, token: str, images: list[bytes], clients: int, prefix: str) -> list[tuple[int, dict, float]]:
    answers: list = [None] * len(images)
    lock = threading.Lock()
    nxt = iter(range(len(images)))

    def client() -> None:
        while True:
            with lock:
                n = next(nxt, None)
            if n is None:
                return
            answers[n] = post(port, token, images[n], f"{prefix}{n:05d}.png")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


class RssSampler:
    """Peak and last RSS of the daemon's main process and of its whole process group."""

    def __init__(self, h: DaemonHarness, interval_s: float = 0.5):
        self.h, self.interval_s = h, interval_s
        self.peak_main_kb = self.peak_group_kb = self.last_main_kb = self.last_group_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                main = proc_status_kb(self.h.proc.pid)
                group = sum(proc_status_kb(pid) for pid in self.h.live_group_members())
            except (OSError, ValueError):
                main = group = 0
            self.last_main_kb, self.last_group_kb = main, group
            self.peak_main_kb = max(self.peak_main_kb, main)
            self.peak_group_kb = max(self.peak_group_kb, group)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def start_daemon(root: Path, workers: int, **http) -> tuple[DaemonHarness, int, str]:
    root.mkdir(parents=True, exist_ok=True)
    h = DaemonHarness(root)
    port = free_tcp_port()
    h.write_config(http={"enabled": True, "listen": f"127.0.0.1:{port}", "token_burst": 100_000,
                         "token_rate_per_s": 10_000, "max_queued": 100_000, **http},
                   workers={"count": workers, "intra_op_threads": 1, "job_timeout_s": 120})  # fmt: skip
    token = add_token(h, "bench", "upload")
    h.start()
    return h, port, token


def load_phase(args, root: Path) -> tuple[dict, DaemonHarness, int, str, RssSampler]:
    images = [distinct_png(n, "Upload") for n in range(args.uploads)]
    h, port, token = start_daemon(root, args.workers)
    sampler = RssSampler(h).__enter__()
    t0 = time.perf_counter()
    answers = upload_batch(port, token, images, args.clients, "u")
    upload_wall = time.perf_counter() - t0
    accepted = [a for a in answers if a[0] == 202]
    ids = [a[1]["id"] for a in accepted]
    rows = h.wait_rows(lambda rows: len(rows) >= len(ids) and all(r["state"] in TERMINAL for r in rows),
                       3600, "every upload's row to be final")  # fmt: skip
    drain_wall = time.perf_counter() - t0
    latencies = [a[2] for a in answers]
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    result = {
        "uploads": args.uploads, "clients": args.clients, "workers": args.workers,
        "status_counts": {str(s): sum(1 for a in answers if a[0] == s) for s in sorted({a[0] for a in answers})},
        "distinct_ids": len(set(ids)), "rows": len(rows), "row_ids_equal_answers": sorted(r["id"] for r in rows) == sorted(ids),
        "states": states, "attempts_all_1": all(r["attempts"] == 1 for r in rows),
        "archived": len(list((h.archive / "scans").iterdir())),
        "result_json": len(list((h.outbox / "scans").glob("u*.json"))),
        "upload_p50_ms": round(pct(latencies, 50) * 1000, 1), "upload_p95_ms": round(pct(latencies, 95) * 1000, 1),
        "upload_max_ms": round(max(latencies) * 1000, 1),
        "uploads_per_s": round(args.uploads / upload_wall, 1), "upload_wall_s": round(upload_wall, 1),
        "drain_wall_s": round(drain_wall, 1), "jobs_per_min": round(len(rows) / drain_wall * 60, 1),
        "rss_main_peak_mib": round(sampler.peak_main_kb / 1024, 1), "rss_main_last_mib": round(sampler.last_main_kb / 1024, 1),
        "rss_group_peak_mib": round(sampler.peak_group_kb / 1024, 1),
    }  # fmt: skip
    return result, h, port, token, sampler


def trickle_phase(args, h: DaemonHarness, port: int, token: str) -> dict:
    base_images = [distinct_png(50_000 + n, "Baseline") for n in range(args.trickle_uploads)]
    busy_images = [distinct_png(60_000 + n, "Beside") for n in range(args.trickle_uploads)]
    slow_body = distinct_png(70_000, "Trickle")
    before = len(h.rows())
    baseline = upload_batch(port, token, base_images, args.clients, "b")
    h.wait_rows(lambda rows: len(rows) >= before + len(base_images) and all(r["state"] in TERMINAL for r in rows),
                3600, "the baseline batch to drain")  # fmt: skip

    sock = socket.create_connection(("127.0.0.1", port), timeout=args.trickle_s + 120)
    sock.sendall((f"POST /api/v1/jobs?inbox=scans&filename=trickle.png HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
                  f"Content-Length: {len(slow_body)}\r\n\r\n").encode())  # fmt: skip
    stop = threading.Event()
    sent = [0]

    def trickle() -> None:
        while not stop.is_set() and sent[0] < len(slow_body) - 1:
            sock.sendall(slow_body[sent[0]:sent[0] + 1])
            sent[0] += 1
            stop.wait(1.0)

    trickler = threading.Thread(target=trickle)
    trickler.start()
    t0 = time.monotonic()
    beside = upload_batch(port, token, busy_images, args.clients, "t")
    beside_s = time.monotonic() - t0
    if beside_s < args.trickle_s:
        time.sleep(args.trickle_s - beside_s)  # keep trickling for the time asked, the others done
    stop.set()
    trickler.join()
    sock.sendall(slow_body[sent[0]:])
    reply = sock.recv(65536).decode("latin-1")
    sock.close()
    base_lat = [a[2] for a in baseline]
    beside_lat = [a[2] for a in beside]
    return {
        "trickle_bytes_sent_slowly": sent[0], "trickle_seconds": round(time.monotonic() - t0, 1),
        "trickle_final_status": reply.split(" ", 2)[1] if reply else None,
        "baseline_status_202": sum(a[0] == 202 for a in baseline), "beside_status_202": sum(a[0] == 202 for a in beside),
        "baseline_p50_ms": round(pct(base_lat, 50) * 1000, 1), "baseline_p95_ms": round(pct(base_lat, 95) * 1000, 1),
        "beside_p50_ms": round(pct(beside_lat, 50) * 1000, 1), "beside_p95_ms": round(pct(beside_lat, 95) * 1000, 1),
        "p50_ratio": round(pct(beside_lat, 50) / pct(base_lat, 50), 2),
        "p95_ratio": round(pct(beside_lat, 95) / pct(base_lat, 95), 2),
        "beside_batch_s": round(beside_s, 1),
    }  # fmt: skip


def full_disk_phase(args, root: Path) -> dict:
    if os.geteuid() != 0:
        return {"skipped": "not root: cannot mount a tmpfs (the system test covers min_free_mb above the free space)"}
    root.mkdir(parents=True, exist_ok=True)
    h = DaemonHarness(root)
    h.write_config()  # creates the inbox folders, then the tmpfs goes over the inbox
    inbox = h.inbox("scans")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(inbox)], check=True)
    try:
        st = os.statvfs(inbox)
        free = st.f_bavail * st.f_frsize
        with open(inbox / ".ocrd-filler", "wb") as fh:  # a dot name: intake ignores it
            fh.write(b"\0" * (free - (1 << 20)))
        h2, port, token = start_daemon(root, 1, min_free_mb=0)
        try:
            free_before = os.statvfs(inbox).f_bavail * os.statvfs(inbox).f_frsize
            big = distinct_png(80_000, "Full") + b"\0" * (2 << 20)
            codes = []
            reasons = []
            for n in range(args.full_uploads):
                body = big if n % 2 == 0 else iter([big[i:i + 65536] for i in range(0, len(big), 65536)])
                status, doc, _ = post(port, token, body, f"full{n:02d}.png")
                codes.append(status)
                reasons.append(doc.get("reason"))
            staging = list((inbox / ".ocrd" / "upload").glob("*")) if (inbox / ".ocrd" / "upload").exists() else []
            rows_after_refusals = len(h2.rows())
            free_after = os.statvfs(inbox).f_bavail * os.statvfs(inbox).f_frsize
            small_status, small_doc, _ = post(port, token, distinct_png(80_001, "Fits"), "fits.png")
            if small_status == 202:
                h2.wait_rows(lambda rows: rows and all(r["state"] in TERMINAL for r in rows), 300, "the small upload")
            final_rows = h2.rows()
        finally:
            h2.stop()
            h2.cleanup()
    finally:
        subprocess.run(["umount", str(inbox)], check=False)
    return {
        "tmpfs_mib": 16, "free_before_kib": free_before // 1024, "free_after_kib": free_after // 1024,
        "uploads": args.full_uploads, "upload_mib": round(len(big) / (1 << 20), 2),
        "status_counts": {str(s): codes.count(s) for s in sorted(set(codes))}, "reasons": sorted(set(reasons), key=str),
        "staging_files_left": len(staging), "rows_after_refusals": rows_after_refusals,
        "small_upload_status": small_status, "small_upload_state": final_rows[0]["state"] if final_rows else None,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uploads", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--trickle-s", type=float, default=30.0)
    ap.add_argument("--trickle-uploads", type=int, default=160)
    ap.add_argument("--full-uploads", type=int, default=20)
    ap.add_argument("--work", type=Path, default=Path("/tmp/ocrd-bench/uploads"))
    ap.add_argument("--json", type=Path, default=REPO_ROOT / "bench" / "out" / "uploads.json")
    ap.add_argument("--skip-full", action="store_true")
    args = ap.parse_args()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = args.work / stamp
    work.mkdir(parents=True)
    report: dict = {"date": stamp, "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs",
                    "load_before": os.getloadavg(), "command": " ".join([Path(sys.executable).name, *sys.argv])}  # fmt: skip
    load, h, port, token, sampler = load_phase(args, work / "load")
    report["load"] = load
    print(json.dumps(load, indent=1), flush=True)
    try:
        report["trickle"] = trickle_phase(args, h, port, token)
        print(json.dumps(report["trickle"], indent=1), flush=True)
        report["rss_after_all_mib"] = {"main": round(sampler.last_main_kb / 1024, 1), "main_peak": round(sampler.peak_main_kb / 1024, 1)}
    finally:
        sampler.__exit__()
        h.stop()
        h.cleanup()
    if not args.skip_full:
        report["full_disk"] = full_disk_phase(args, work / "full")
        print(json.dumps(report["full_disk"], indent=1), flush=True)
    report["load_after"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
