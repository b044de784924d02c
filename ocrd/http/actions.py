"""The writing side of the API: POST a file (it becomes a job) and POST a requeue; both are carried out by the main loop.

A request checks what it can on its own first (token, inbox, backlog, free
space, size, type), streams the body to a staging file, then hands a ticket
to the main loop and waits for its answer: the job id. It never writes the
job log. A request that times out abandons its ticket, so the loop cannot
make a job of it afterwards.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ocrd.config.schema import InboxConfig
from ocrd.http.access import authenticate
from ocrd.http.context import AppContext, context_of
from ocrd.http.documents import job_document, job_url
from ocrd.http.problems import ApiError
from ocrd.http.receive import disk_full, receive_upload
from ocrd.http.tokens import Role, Token
from ocrd.inbox.uploads import discard_staging_file, free_bytes, safe_upload_name
from ocrd.jobs.rows import REQUEUEABLE_STATES, JobRow, JobState
from ocrd.logs import get_logger
from ocrd.service.handoff import Refusal, RequeueRequest, Ticket, UploadRequest

log = get_logger("ocrd.http")

HANDOFF_TIMEOUT_S = 30.0  # the loop answers within a turn (0.2 s) unless it is stuck
RETRY_QUEUE_FULL_S = 30
RETRY_STOPPING_S = 30

_REFUSALS = {  # the loop's refusal code -> (status, reason the client sees)
    "stopping": (503, "stopping"),
    "job_not_found": (404, "job_not_found"),
    "not_requeueable": (409, "not_requeueable"),
    "job_log_busy": (503, "job_log_busy"),
    "upload_failed": (500, "upload_failed"),
    "internal_error": (500, "internal_error"),
}


async def await_answer(ticket: Ticket, timeout_s: float = HANDOFF_TIMEOUT_S) -> Any:
    """The loop's answer, or None when the loop had not taken the ticket in time (it then never will)."""
    loop = asyncio.get_running_loop()
    answered = asyncio.Event()

    def wake() -> None:  # runs on the main loop's thread
        try:
            loop.call_soon_threadsafe(answered.set)
        except RuntimeError:
            pass  # this server's event loop has closed: nobody is waiting any more

    ticket.on_answer(wake)
    try:
        await asyncio.wait_for(answered.wait(), timeout_s)
    except TimeoutError:
        if ticket.abandon():
            return None
        await asyncio.wait_for(answered.wait(), timeout_s)  # taken: the answer is moments away
    return ticket.result


def _raise_refusal(refusal: Refusal) -> None:
    status, reason = _REFUSALS.get(refusal.code, (500, refusal.code))
    headers = {"Retry-After": str(RETRY_STOPPING_S)} if status == 503 else {}
    raise ApiError(status, reason, refusal.message, headers=headers)


def _choose_inbox(ctx: AppContext, token: Token, name: str | None) -> InboxConfig:
    if not name:
        allowed = [i for i in ctx.cfg.inboxes if token.may_upload_to(i.name)]
        if len(allowed) != 1:
            raise ApiError(400, "inbox_required", "name the inbox: ?inbox=" + "|".join(i.name for i in allowed))
        return allowed[0]
    inbox = ctx.inbox(name)
    if inbox is None:
        raise ApiError(400, "unknown_inbox", f"no inbox named {name!r}")
    if not token.may_upload_to(inbox.name):
        raise ApiError(403, "forbidden_inbox", f"this token may not post to the inbox {inbox.name!r}")
    return inbox


def _check_room(ctx: AppContext, inbox: InboxConfig, declared_bytes: int) -> None:
    """Refuse before reading a byte: stopping, backlog over http.max_queued, disk too full."""
    if ctx.is_stopping():
        raise ApiError(503, "stopping", "the daemon is stopping", headers={"Retry-After": str(RETRY_STOPPING_S)})
    queued = ctx.readers.get().count_in_state(JobState.QUEUED) + ctx.handoff.pending()
    if queued > ctx.cfg.http.max_queued:
        raise ApiError(503, "queue_full", f"{queued} jobs are waiting (http.max_queued is {ctx.cfg.http.max_queued})",
                       headers={"Retry-After": str(RETRY_QUEUE_FULL_S)})  # fmt: skip
    if free_bytes(inbox.path) - declared_bytes < ctx.cfg.http.min_free_mb << 20:
        raise disk_full(f"the disk of the inbox {inbox.name!r} is too full to take this upload")


async def post_job(request: Request) -> Response:
    ctx = context_of(request)
    token = authenticate(request.headers, ctx.tokens, ctx.limiter, (Role.UPLOAD, Role.ADMIN))
    inbox = _choose_inbox(ctx, token, request.query_params.get("inbox"))
    max_bytes = ctx.cfg.http.max_upload_mb << 20
    try:
        declared = int(request.headers.get("content-length", "0"))
    except ValueError:
        raise ApiError(400, "bad_request", "Content-Length is not a number") from None
    if declared > max_bytes + (1 << 20):  # multipart adds boundaries; the exact count is taken as it arrives
        raise ApiError(413, "too_large_bytes", f"the upload is larger than http.max_upload_mb ({ctx.cfg.http.max_upload_mb} MiB)")
    await run_in_threadpool(_check_room, ctx, inbox, declared)
    try:
        received = await receive_upload(request, inbox.path, max_bytes, ctx.cfg.http.min_free_mb << 20)
    except ClientDisconnect:
        log.info("upload_abandoned", inbox=inbox.name, token=token.name, note="the client went away mid-upload")
        return Response(status_code=400)  # nobody reads it
    name = safe_upload_name(request.query_params.get("filename") or received.filename, received.format)
    ticket = ctx.handoff.submit(UploadRequest(inbox.name, name, received.path, received.size_bytes,
                                              received.sha256, token.name))  # fmt: skip
    try:
        answer = await await_answer(ticket)
    except TimeoutError:
        answer = Refusal("stopping", "the daemon did not take the upload in time")
    if answer is None:
        discard_staging_file(received.path)
        raise ApiError(503, "daemon_busy", "the daemon did not take the upload in time; send it again",
                       headers={"Retry-After": "5"})  # fmt: skip
    if isinstance(answer, Refusal):
        _raise_refusal(answer)
    job_id = str(answer)
    log.info("upload_received", job_id=job_id, inbox=inbox.name, filename=name, size_bytes=received.size_bytes,
             format=received.format, token=token.name)  # fmt: skip
    body = {"id": job_id, "state": str(JobState.QUEUED), "inbox": inbox.name, "filename": name,
            "bytes": received.size_bytes, "sha256": received.sha256, "links": {"self": job_url(job_id)}}  # fmt: skip
    return JSONResponse(body, status_code=202, headers={"Location": job_url(job_id), "Cache-Control": "no-store"})


def _requeueable_row(ctx: AppContext, job_id: str) -> JobRow:
    row = ctx.readers.get().get(job_id)
    if row is None:
        raise ApiError(404, "job_not_found", f"no job with id {job_id}")
    if row.state not in REQUEUEABLE_STATES:
        raise ApiError(409, "not_requeueable", f"job {job_id} is {row.state}; only failed or quarantined jobs can be requeued")
    return row


async def requeue_job(request: Request) -> Response:
    ctx = context_of(request)
    authenticate(request.headers, ctx.tokens, ctx.limiter, (Role.ADMIN,))
    job_id = request.path_params["job_id"]
    await run_in_threadpool(_requeueable_row, ctx, job_id)
    ticket = ctx.handoff.submit(RequeueRequest(job_id))
    try:
        answer = await await_answer(ticket)
    except TimeoutError:
        answer = None
    if answer is None:
        raise ApiError(503, "daemon_busy", "the daemon did not take the requeue in time", headers={"Retry-After": "5"})
    if isinstance(answer, Refusal):
        _raise_refusal(answer)
    return JSONResponse(job_document(answer, ctx.cfg), status_code=202, headers={"Location": job_url(job_id)})
