"""The reading side: /healthz, /metrics, the page, and the API's GETs (who am I, a job, a listing, an output, the OpenAPI document).

Handlers are plain functions, so Starlette runs them on its thread pool, each
thread with its own read-only job-log connection. An `upload` token sees only
the jobs it posted; any other job is "not found" to it, not "forbidden", so
ids of other people's jobs cannot be probed.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from ocrd.http.access import authenticate
from ocrd.http.context import AppContext, context_of
from ocrd.http.documents import API, INLINE_TYPES, content_type, job_document, output_files
from ocrd.http.openapi import openapi_document
from ocrd.http.problems import ApiError
from ocrd.http.tokens import Role, Token
from ocrd.jobs.rows import ACTIVE_STATES, JobRow, JobState
from ocrd.service.health import healthz_document

STATIC_DIR = Path(__file__).with_name("static")
MAX_LIST_LIMIT = 500
RETRY_WHILE_ACTIVE_S = 5


def healthz(request: Request) -> Response:
    ctx = context_of(request)
    code, body = healthz_document(ctx.snapshot, ctx.max_tick_age_s)
    return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})


def metrics(request: Request) -> Response:
    ctx = context_of(request)
    try:
        payload = ctx.metrics.render()
    except Exception as exc:  # noqa: BLE001 - report on the scrape, keep serving
        return Response(f"metrics failed: {exc}\n", status_code=500, media_type="text/plain; charset=utf-8")
    return Response(payload, headers={"Content-Type": ctx.metrics.content_type, "Cache-Control": "no-store"})


def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})  # fmt: skip


def _token(request: Request, *roles: Role) -> tuple[AppContext, Token]:
    ctx = context_of(request)
    return ctx, authenticate(request.headers, ctx.tokens, ctx.limiter, roles or None)


def visible_row(ctx: AppContext, token: Token, job_id: str) -> JobRow:
    row = ctx.readers.get().get(job_id)
    if row is None or (not token.reads_all and row.submitted_by != token.name):
        raise ApiError(404, "job_not_found", f"no job with id {job_id}")
    return row


def me(request: Request) -> Response:
    ctx, token = _token(request)
    may_post = [inbox.name for inbox in ctx.cfg.inboxes if token.may_upload_to(inbox.name)]
    return JSONResponse({**token.public(), "upload_inboxes": may_post,
                         "max_upload_mb": ctx.cfg.http.max_upload_mb})  # fmt: skip


def openapi(request: Request) -> Response:
    _token(request)
    return JSONResponse(openapi_document())


def get_job(request: Request) -> Response:
    ctx, token = _token(request)
    row = visible_row(ctx, token, request.path_params["job_id"])
    return JSONResponse(job_document(row, ctx.cfg), headers={"Cache-Control": "no-store"})


def list_jobs(request: Request) -> Response:
    ctx, token = _token(request)
    query = request.query_params
    state = query.get("state") or None
    if state is not None and state not in {str(s) for s in JobState}:
        raise ApiError(400, "bad_request", f"state must be one of {', '.join(JobState)}, got {state!r}")
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ApiError(400, "bad_request", f"limit must be an integer from 1 to {MAX_LIST_LIMIT}")
    inbox = query.get("inbox") or None
    before = query.get("before") or None
    rows = ctx.readers.get().list_jobs(state=state, inbox=inbox, limit=limit + 1, before=before,
                                       submitted_by=None if token.reads_all else token.name)  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    next_url = None
    if more:
        params = {k: v for k, v in (("state", state), ("inbox", inbox)) if v} | {"limit": str(limit), "before": rows[-1].id}
        next_url = f"{API}/jobs?" + "&".join(f"{k}={v}" for k, v in params.items())
    return JSONResponse({"jobs": [job_document(r, ctx.cfg) for r in rows], "next": next_url},
                        headers={"Cache-Control": "no-store"})  # fmt: skip


def get_output(request: Request) -> Response:
    ctx, token = _token(request)
    row = visible_row(ctx, token, request.path_params["job_id"])
    name = request.path_params["output"]
    if row.state in ACTIVE_STATES:
        raise ApiError(409, "not_ready", f"job {row.id} is {row.state}; its results are not written yet",
                       headers={"Retry-After": str(RETRY_WHILE_ACTIVE_S)})  # fmt: skip
    path = output_files(row, ctx.cfg).get(name) if row.state is JobState.DONE else None
    if path is None:
        detail = f"job {row.id} ({row.state}) has no output {name!r}"
        extra = {}
        if row.duplicate_of:
            detail += f"; it is a duplicate of {row.duplicate_of}, whose results are at {API}/jobs/{row.duplicate_of}"
            extra = {"duplicate_of": row.duplicate_of}
        raise ApiError(404, "output_not_found", detail, extra=extra)
    media = content_type(path)
    stem = Path(row.rel_path).stem
    download = f"{stem}{path.name[len(row.stem or ''):]}" if row.stem else path.name
    disposition = "inline" if media in INLINE_TYPES and "download" not in request.query_params else "attachment"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, no-cache"},
                        content_disposition_type=disposition, filename=download)  # fmt: skip
