"""A small HTTP client for the system tests of ocrd's API: real sockets to 127.0.0.1, stdlib only.

Also the helpers those tests share: a daemon with the listener on, tokens made with `ocrd token add`,
distinct test images, and uploads (raw, multipart, chunked, or cut off half way).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tests.system.harness import DaemonHarness, encode_image, free_tcp_port, render_text_image, wait_until


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def reason(self) -> str | None:
        try:
            return self.json().get("reason")
        except ValueError:
            return None


class Api:
    """Requests to one daemon's listener; `token` is sent as a Bearer header unless told otherwise."""

    def __init__(self, port: int, token: str | None = None):
        self.port = port
        self.token = token

    def with_token(self, token: str | None) -> Api:
        return Api(self.port, token)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                timeout_s: float = 60) -> Answer:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        sent = dict(headers or {})
        if self.token is not None and "Authorization" not in sent and "X-API-Token" not in sent:
            sent["Authorization"] = f"Bearer {self.token}"
        try:
            chunked = body is not None and not isinstance(body, (bytes, str))
            conn.request(method, path, body=body, headers=sent, encode_chunked=chunked)
            resp = conn.getresponse()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def upload(self, data: bytes, *, inbox: str | None = "scans", filename: str | None = "scan.png",
               headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in (("inbox", inbox), ("filename", filename)) if v is not None)
        return self.request("POST", f"/api/v1/jobs?{query}", body=data,
                            headers={"Content-Type": "application/octet-stream", **(headers or {})})  # fmt: skip

    def upload_multipart(self, data: bytes, filename: str, *, inbox: str = "scans", field: str = "file") -> Answer:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
        return self.request("POST", f"/api/v1/jobs?inbox={inbox}", body=body,
                            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip

    def job(self, job_id: str) -> dict[str, Any]:
        answer = self.get(f"/api/v1/jobs/{job_id}")
        assert answer.status == 200, (answer.status, answer.body)
        return answer.json()

    def wait_job(self, job_id: str, states: tuple[str, ...] = ("done", "failed", "quarantined", "duplicate"),
                 timeout_s: float = 90) -> dict[str, Any]:  # fmt: skip
        return wait_until(lambda: (doc := self.job(job_id))["state"] in states and doc, timeout_s,
                          f"job {job_id} to reach {'/'.join(states)}", interval_s=0.2)  # fmt: skip


def start_partial_upload(port: int, token: str, data: bytes, sent_bytes: int, filename: str = "half.png") -> socket.socket:
    """Send the headers of an upload of `data` and only its first `sent_bytes`; the socket stays open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (f"POST /api/v1/jobs?inbox=scans&filename={filename} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()  # fmt: skip
    sock.sendall(head + data[:sent_bytes])
    return sock


def add_token(h: DaemonHarness, name: str, role: str, *inboxes: str) -> str:
    args = ["token", "add", name, "--role", role]
    for inbox in inboxes:
        args += ["--inbox", inbox]
    done = h.ocrd(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]  # the token is the last line


def start_with_http(h: DaemonHarness, **http: Any) -> Api:
    port = free_tcp_port()
    h.write_config(http={"enabled": True, "listen": f"127.0.0.1:{port}", **http},
                   workers={"count": 1, "intra_op_threads": 1, "job_timeout_s": 60})  # fmt: skip
    h.start()
    return Api(port)


def distinct_png(n: int, text: str = "Invoice") -> bytes:
    """A small PNG that reads `text n` (distinct content, so no two are duplicates)."""
    return encode_image(render_text_image(f"{text} {n:04d}", width_px=420, height_px=110), "png")


def wait_for(predicate: Any, timeout_s: float, what: str) -> Any:
    return wait_until(predicate, timeout_s, what, interval_s=0.1)


def now_s() -> float:
    return time.monotonic()
