"""The HTTP API of a running `ocrd run` over real HTTP (issue 16): every status code, tokens and roles, the path
tricks, a duplicate, a SIGKILL in the middle of an upload followed by a restart, 50 uploads at once.

One worker per daemon; the images are one rendered line each.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from tests.system.api_client import (
    Api,
    add_token,
    distinct_png,
    start_partial_upload,
    start_with_http,
)
from tests.system.harness import DaemonHarness, files_under, free_tcp_port, wait_until

TRUNCATED_PNG_CUT = 300  # bytes of a PNG kept: the signature and header pass the sniff, the decode fails


def _worker_pids(h: DaemonHarness) -> list[int]:
    assert h.proc is not None
    return [pid for pid in h.live_group_members() if pid != h.proc.pid]


def test_every_status_code_of_the_api(ocrd_daemon: DaemonHarness, tmp_path: Path):
    h = ocrd_daemon
    api = start_with_http(h, max_upload_mb=1, max_queued=3)
    png = distinct_png(1)

    # No token stored yet: the API answers 401 to all but /healthz.
    assert api.get("/healthz").status == 200
    first = api.get("/api/v1/me")
    assert first.status == 401 and first.reason == "no_tokens"
    assert first.headers["content-type"] == "application/problem+json"
    assert first.headers["www-authenticate"].startswith("Bearer")
    assert api.upload(png).status == 401 and not files_under(h.inbox("scans"))

    # Tokens added while the daemon runs take effect at once; only hashes are on disk.
    admin = api.with_token(add_token(h, "admin", "admin"))
    reader = api.with_token(add_token(h, "reader", "read"))
    uploader = api.with_token(add_token(h, "scanner", "upload", "scans"))
    other = api.with_token(add_token(h, "polled-only", "upload", "polled"))
    tokens_file = h.root / "state" / "tokens.json"
    assert os.stat(tokens_file).st_mode & 0o777 == 0o600
    assert admin.token not in tokens_file.read_text() and admin.token not in h.output()
    assert admin.get("/api/v1/me").json()["role"] == "admin"
    assert api.get("/api/v1/me", headers={"X-API-Token": reader.token}).json()["name"] == "reader"
    assert api.with_token("ocrd_wrong").get("/api/v1/me").reason == "token_invalid"
    assert api.with_token(None).get("/api/v1/jobs").reason == "token_missing"
    assert admin.get("/api/v1/openapi.json").json()["openapi"].startswith("3.")

    # 400: a Host this server is not configured for (DNS rebinding), an unknown inbox.
    rebound = admin.get("/healthz", headers={"Host": "attacker.example"})
    assert rebound.status == 400 and rebound.reason == "host_not_allowed"
    assert admin.upload(png, inbox="nope").reason == "unknown_inbox"
    # 403: a role or an inbox the token lacks.
    assert reader.upload(png).status == 403 and reader.upload(png).reason == "forbidden_role"
    assert other.upload(png, inbox="scans").reason == "forbidden_inbox"
    assert reader.request("POST", "/api/v1/jobs/x/requeue").reason == "forbidden_role"
    # 413 declared and counted (a chunked body has no length), 415 with intake's reason codes; nothing kept.
    big = png + b"\0" * (1 << 20)
    assert uploader.upload(big).status == 413
    too_big = uploader.upload(iter([big[i:i + 65536] for i in range(0, len(big), 65536)]))
    assert too_big.status == 413 and too_big.reason == "too_large_bytes"
    text = uploader.upload(b"Meeting notes, not a scan.\n" * 50, filename="notes.jpg")
    assert text.status == 415 and text.reason == "unsupported_format" and "plain-text" in text.json()["detail"]
    assert uploader.upload(b"", filename="empty.png").reason == "empty_file"
    assert uploader.upload(b"GIF89a" + b"\0" * 2000).reason == "unsupported_format"
    assert not files_under(h.inbox("scans")), "a refused upload left a file"

    # 202 (raw body and multipart), then the job runs like a dropped file.
    accepted = uploader.upload(png, filename="invoice.png")
    assert accepted.status == 202, accepted.body
    job = accepted.json()
    assert accepted.headers["location"] == f"/api/v1/jobs/{job['id']}" == job["links"]["self"]
    assert (job["state"], job["inbox"], job["filename"], job["bytes"]) == ("queued", "scans", "invoice.png", len(png))
    done = uploader.wait_job(job["id"])
    assert done["state"] == "done" and done["pages"] == 1 and "0001" in uploader.get(done["links"]["outputs"]["result.txt"]).body.decode()
    for name in ("result.json", "result.txt", "vis.jpg", "result.pdf"):
        got = uploader.get(f"/api/v1/jobs/{job['id']}/{name}")
        assert got.status == 200 and got.body, name
    assert uploader.get(f"/api/v1/jobs/{job['id']}/vis.jpg").headers["content-type"] == "image/jpeg"
    pdf = uploader.get(f"/api/v1/jobs/{job['id']}/result.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.body.startswith(b"%PDF-")
    assert pdf.headers["content-disposition"].startswith("attachment")  # downloaded, never rendered in our origin
    assert uploader.get(f"/api/v1/jobs/{job['id']}/result.nope").reason == "output_not_found"
    assert uploader.get("/api/v1/jobs/01NOSUCHJOB").status == 404
    assert (h.archive / "scans" / "invoice.png").read_bytes() == png
    multi = uploader.upload_multipart(distinct_png(2), "C:\\Users\\me\\Scans\\form.png")
    assert multi.status == 202 and multi.json()["filename"] == "form.png"

    # The same content again: a duplicate of the first job, with no outputs of its own.
    dup = uploader.upload(png, filename="again.png").json()
    dup_done = uploader.wait_job(dup["id"])
    assert dup_done["state"] == "duplicate" and dup_done["duplicate_of"] == job["id"]
    missing = uploader.get(f"/api/v1/jobs/{dup['id']}/result.txt")
    assert missing.status == 404 and missing.json()["duplicate_of"] == job["id"]

    # Path tricks: names only, whatever the client sends; nothing lands outside the inbox's folders.
    tricks = {"../../../../etc/passwd.png": "passwd.png", "a/b\\c.png": "c.png", "..": "upload.png",
              "\x1b[31mred\x00\n.png": "_[31mred__.png", ".hidden.png": "hidden.png", "\u202egnp.exe": "_gnp.exe"}  # fmt: skip
    for n, (raw, expected) in enumerate(tricks.items(), start=10):
        answer = uploader.upload(distinct_png(n), filename=raw)
        assert answer.status == 202 and answer.json()["filename"] == expected, (raw, answer.body)
        final = uploader.wait_job(answer.json()["id"])
        assert final["rel_path"] == expected and final["state"] == "done", final
    assert not (tmp_path / "etc").exists() and not (h.root.parent / "etc" / "passwd.png").exists()
    assert {p.name for p in (h.archive / "scans").iterdir()} >= set(tricks.values())

    # An upload token reads its own jobs only; read and admin see all.
    mine = admin.upload(distinct_png(3), filename="admins.png").json()
    admin.wait_job(mine["id"])
    assert uploader.get(f"/api/v1/jobs/{mine['id']}").status == 404
    assert mine["id"] not in [j["id"] for j in uploader.get("/api/v1/jobs?limit=500").json()["jobs"]]
    assert reader.get(f"/api/v1/jobs/{mine['id']}").status == 200
    page = reader.get("/api/v1/jobs?limit=2").json()
    rest = reader.get(page["next"]).json()
    assert len(page["jobs"]) == 2 and page["jobs"][0]["created_at"] >= page["jobs"][1]["created_at"] >= rest["jobs"][0]["created_at"]
    assert reader.get("/api/v1/jobs?state=bogus").status == 400

    # Requeue: admin only, 202 for a quarantined job, 409 for a done one.
    broken = admin.upload(distinct_png(4)[:TRUNCATED_PNG_CUT], filename="broken.png").json()
    assert admin.wait_job(broken["id"])["state"] == "quarantined"
    assert admin.request("POST", f"/api/v1/jobs/{job['id']}/requeue").status == 409
    assert admin.request("POST", "/api/v1/jobs/01NOSUCHJOB/requeue").status == 404
    requeued = admin.request("POST", f"/api/v1/jobs/{broken['id']}/requeue")
    assert requeued.status == 202 and requeued.json()["state"] == "queued", requeued.body
    assert admin.wait_job(broken["id"])["state"] == "quarantined"  # it is still broken
    assert h.events("job_requeued")

    # 409 + Retry-After while queued or running, 503 + Retry-After past max_queued: workers paused.
    workers = _worker_pids(h)
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        waiting = [uploader.upload(distinct_png(100 + n), filename=f"w{n}.png") for n in range(4)]
        assert [w.status for w in waiting] == [202] * 4
        early = uploader.get(f"/api/v1/jobs/{waiting[0].json()['id']}/result.txt")
        assert early.status == 409 and early.reason == "not_ready" and int(early.headers["retry-after"]) > 0
        full = uploader.upload(distinct_png(200))
        assert full.status == 503 and full.reason == "queue_full" and int(full.headers["retry-after"]) > 0
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    for w in waiting:
        assert uploader.wait_job(w.json()["id"])["state"] == "done"

    # 429 past the per-token rate (60 at once, 20/s), with Retry-After; other tokens are not affected.
    flood = api.with_token(add_token(h, "flood", "read"))
    codes = [flood.get("/api/v1/me").status for _ in range(150)]
    assert 429 in codes and codes[0] == 200
    limited = flood.get("/api/v1/me")
    assert limited.status == 429 and limited.reason == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    assert reader.get("/api/v1/me").status == 200

    # Revoked: 401 at once.
    assert h.ocrd("token", "revoke", "flood").returncode == 0
    assert flood.get("/api/v1/me").reason == "token_invalid"
    listed = h.ocrd("token", "list")
    assert "scanner" in listed.stdout and "flood" not in listed.stdout and uploader.token not in listed.stdout
    assert not list((h.inbox("scans") / ".ocrd" / "upload").iterdir())
    assert h.stop() == 0, h.output()
    assert admin.token not in h.output() and uploader.token not in h.output()


def test_sigkill_mid_upload_leaves_nothing_and_the_restart_cleans_up(ocrd_daemon: DaemonHarness):
    h = ocrd_daemon
    api = start_with_http(h)
    token = add_token(h, "scanner", "upload")
    data = distinct_png(7) + b"\0" * 400_000
    sock = start_partial_upload(api.port, token, data, sent_bytes=200_000)
    staging = h.inbox("scans") / ".ocrd" / "upload"
    wait_until(lambda: any(p.stat().st_size > 0 for p in staging.glob("*.part")), 10, "the staging file to fill")
    h.kill_group()
    sock.close()
    # Half an upload is visible nowhere but in the staging area: no job, no file in the inbox or work.
    assert [p.name.endswith(".part") for p in files_under(h.inbox("scans"))] == [True]
    assert h.rows() == []

    # The restart deletes it; a disk "too full" (min_free_mb above any disk) refuses with 507 and keeps nothing.
    h.write_config(http={"enabled": True, "listen": f"127.0.0.1:{api.port}", "min_free_mb": 10**7},
                   workers={"count": 1, "intra_op_threads": 1})  # fmt: skip
    h.start()
    assert not files_under(h.inbox("scans")) and h.events("uploads_discarded")[0]["count"] == 1
    full = api.with_token(token).upload(distinct_png(8))
    assert full.status == 507 and full.reason == "disk_full" and not files_under(h.inbox("scans"))
    assert h.rows() == []
    assert h.stop() == 0, h.output()


def test_a_port_that_cannot_be_bound_stops_the_start_and_ocrd_check_says_so(ocrd_daemon: DaemonHarness):
    import socket

    h = ocrd_daemon
    port = free_tcp_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        h.write_config(http={"enabled": True, "listen": f"127.0.0.1:{port}"})
        check = h.ocrd("check")
        assert check.returncode == 69 and f"http.listen 127.0.0.1:{port}: cannot listen there" in check.stderr
        t0 = time.monotonic()
        run = h.ocrd("run", timeout_s=120)
        assert run.returncode == 69 and f"cannot listen on 127.0.0.1:{port} for http" in run.stderr, run.stderr
        assert time.monotonic() - t0 < 60  # refused before any model or worker is loaded


def test_fifty_parallel_uploads_are_each_processed_exactly_once(ocrd_daemon: DaemonHarness):
    h = ocrd_daemon
    api = start_with_http(h, token_burst=200)
    uploader = api.with_token(add_token(h, "scanner", "upload"))
    images = [distinct_png(n, "Parallel") for n in range(50)]
    answers: list = [None] * 50
    start = threading.Barrier(50)

    def send(n: int) -> None:
        start.wait()
        answers[n] = uploader.upload(images[n], filename=f"p{n:02d}.png")

    threads = [threading.Thread(target=send, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [a.status for a in answers] == [202] * 50, [a.body for a in answers if a.status != 202]
    ids = [a.json()["id"] for a in answers]
    assert len(set(ids)) == 50
    rows = h.wait_rows(lambda rows: len(rows) >= 50 and all(r["state"] == "done" for r in rows), 300, "50 done jobs")
    assert sorted(r["id"] for r in rows) == sorted(ids)  # each upload is exactly one job
    assert all(r["attempts"] == 1 for r in rows)
    assert sorted(p.name for p in (h.archive / "scans").iterdir()) == [f"p{n:02d}.png" for n in range(50)]
    assert len(list((h.outbox / "scans").glob("p*.json"))) == 50
    for n in (0, 49):
        text = uploader.get(f"/api/v1/jobs/{ids[n]}/result.txt").body.decode()
        assert f"{n:04d}" in text
    assert h.stop() == 0, h.output()
