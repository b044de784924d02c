"""The one HTTP listener: routes, the Host check and security headers, and `HttpFrontend`, which runs uvicorn on a thread of the daemon.

`bind()` opens the socket early in the daemon's start, so a taken port stops
it before the models load (exit 69); `start(daemon)` serves once the main
loop can answer uploads; `stop()` lets requests in progress finish briefly.
Why Starlette on uvicorn: an event loop holds a slow client (a scanner on a
weak link sending a byte a second) as a cheap coroutine, not a thread, and
bodies stream chunk by chunk; FastAPI's validation layer would add pydantic
for a handful of hand-checked parameters.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocrd.config.schema import Config
from ocrd.errors import UnavailableError
from ocrd.http.actions import post_job, requeue_job
from ocrd.http.context import AppContext
from ocrd.http.problems import ApiError, problem_response
from ocrd.http.views import STATIC_DIR, get_job, get_output, healthz, index, list_jobs, me, metrics, openapi
from ocrd.logs import get_logger
from ocrd.service.handoff import Handoff
from ocrd.service.health import DEFAULT_MAX_TICK_AGE_S, HealthSnapshot

log = get_logger("ocrd.http")

# No inline script or style, nothing from elsewhere; images from blob: URLs (fetched with the token).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
MAX_CONNECTIONS = 256  # beyond this uvicorn answers 503 at once: slow clients cannot exhaust the process
START_TIMEOUT_S = 10.0


class DaemonPort(Protocol):
    """What the server needs of the daemon (`ocrd.service.daemon.Daemon` has it)."""

    handoff: Handoff
    stopping: bool

    def health_snapshot(self) -> HealthSnapshot: ...


def host_of(header: str) -> str:
    """`Host` without its port: `example.org:8443` -> `example.org`, `[::1]:9478` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    name, _, port = header.rpartition(":")
    return name if name and port.isdigit() else header


class Guard:
    """ASGI middleware: refuse a Host not configured (DNS rebinding), add the security headers to every answer."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str]):
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if "*" not in self.allowed_hosts and host_of(host) not in self.allowed_hosts:
            error = ApiError(400, "host_not_allowed", "this server is not known by that name (see http.allowed_hosts)")
            await problem_response(error)(scope, receive, self._with_headers(send))
            return
        await self.app(scope, receive, self._with_headers(send))

    @staticmethod
    def _with_headers(send: Send) -> Callable[[Message], Any]:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        return wrapped


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(exc, request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    headers = dict(exc.headers or {})
    return problem_response(ApiError(exc.status_code, reason, str(exc.detail), headers=headers), request.url.path)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("http_request_failed", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
    return problem_response(ApiError(500, "internal_error", "the server failed on this request; see its log"))


def build_app(ctx: AppContext) -> ASGIApp:
    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/", index, methods=["GET", "HEAD"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/api/v1/me", me, methods=["GET"]),
        Route("/api/v1/jobs", list_jobs, methods=["GET"]),
        Route("/api/v1/jobs", post_job, methods=["POST"]),
        Route("/api/v1/jobs/{job_id}", get_job, methods=["GET"]),
        Route("/api/v1/jobs/{job_id}/requeue", requeue_job, methods=["POST"]),
        Route("/api/v1/jobs/{job_id}/{output}", get_output, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={ApiError: _api_error, HTTPException: _http_error,
                                                        Exception: _internal_error})  # fmt: skip
    app.state.ctx = ctx
    host, _ = ctx.cfg.http.address()
    return Guard(app, frozenset({*ctx.cfg.http.allowed_hosts, host.lower()}))


class HttpFrontend:
    """The daemon's HTTP side: `bind()`, `start(daemon)`, `stop()`. `listen` overrides the config's (port 0 in tests)."""

    def __init__(self, cfg: Config, *, listen: str | None = None, max_tick_age_s: float = DEFAULT_MAX_TICK_AGE_S):
        self.cfg = cfg
        self.listen = listen or cfg.http.listen
        self.max_tick_age_s = max_tick_age_s
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def bind(self) -> None:
        host, _, port = self.listen.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, int(port)))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise UnavailableError(f"cannot listen on {self.listen} for http: {exc.strerror or exc}") from None
        self._sock = sock

    @property
    def address(self) -> tuple[str, int]:
        if self._sock is None:
            raise RuntimeError("HttpFrontend is not bound")
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self, daemon: DaemonPort) -> HttpFrontend:
        if self._sock is None:
            self.bind()
        assert self._sock is not None
        ctx = AppContext.build(self.cfg, daemon.handoff, daemon.health_snapshot, lambda: daemon.stopping,
                               self.max_tick_age_s)  # fmt: skip
        config = uvicorn.Config(
            build_app(ctx), loop="asyncio", http="h11", ws="none", lifespan="off", interface="asgi3",
            log_config=None, log_level="warning", access_log=False, server_header=False, proxy_headers=False,
            limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=5, timeout_graceful_shutdown=5,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="ocrd-http", daemon=True)  # fmt: skip
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise UnavailableError(f"the http server on {self.listen} did not start")
            time.sleep(0.01)
        log.info("http_listening", url=self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
