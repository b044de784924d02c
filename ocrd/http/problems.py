"""Errors as RFC 9457 problem documents (`application/problem+json`) carrying a stable reason code; no I/O.

`reason` is the contract a client matches on (like the job log's reason
codes: add, never rename); `title` and `detail` are for people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.responses import Response

PROBLEM_TYPE = "application/problem+json"

# HTTP status -> the short title RFC 9110 gives it.
TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
    429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
    507: "Insufficient Storage",
}  # fmt: skip


class ApiError(Exception):
    """Raised anywhere in a request; the server turns it into a problem response."""

    def __init__(self, status: int, reason: str, detail: str, *, headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, object] | None = None):  # fmt: skip
        super().__init__(f"{status} {reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_response(error: ApiError, instance: str | None = None) -> Response:
    body: dict[str, object] = {
        "type": f"urn:ocrd:problem:{error.reason}",
        "title": TITLES.get(error.status, "Error"),
        "status": error.status,
        "reason": error.reason,
        "detail": error.detail,
    }
    if instance:
        body["instance"] = instance
    body.update(error.extra)
    headers = {"Cache-Control": "no-store", **error.headers}
    return Response(json.dumps(body, ensure_ascii=False) + "\n", status_code=error.status, headers=headers,
                    media_type=PROBLEM_TYPE)  # fmt: skip
