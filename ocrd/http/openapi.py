"""The API's OpenAPI 3.1 document, written out by hand (served at /api/v1/openapi.json; no docs page, nothing from a CDN)."""

from __future__ import annotations

from typing import Any

from ocrd import __version__

_PROBLEM = {"description": "RFC 9457 problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
_JOB = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _PROBLEM for code in codes}


def _job_id() -> dict[str, Any]:
    return {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "ocrd", "version": __version__,
                 "description": "Upload scans, follow their jobs, fetch their results. Send a token as "
                                "`Authorization: Bearer TOKEN` or `X-API-Token: TOKEN`."},
        "security": [{"bearer": []}, {"apiToken": []}],
        "paths": {
            "/api/v1/jobs": {
                "post": {
                    "summary": "Upload a file; it becomes a job (role upload or admin)",
                    "parameters": [
                        {"name": "inbox", "in": "query", "schema": {"type": "string"},
                         "description": "needed when the token may post to more than one inbox"},
                        {"name": "filename", "in": "query", "schema": {"type": "string"},
                         "description": "a name only; folders, `..` and control characters are removed"},
                    ],
                    "requestBody": {"required": True, "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                        "multipart/form-data": {"schema": {"type": "object", "properties": {
                            "file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
                    }},
                    "responses": {"202": {"description": "accepted; `Location` names the job",
                                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
                                  **_errors(400, 401, 403, 408, 413, 415, 429, 503, 507)},
                },
                "get": {
                    "summary": "Jobs, newest first (an upload token sees its own)",
                    "parameters": [
                        {"name": "state", "in": "query", "schema": {"$ref": "#/components/schemas/State"}},
                        {"name": "inbox", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
                        {"name": "before", "in": "query", "schema": {"type": "string"}, "description": "a job id: continue after it"},
                    ],
                    "responses": {"200": {"description": "a page of jobs", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {
                            "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                            "next": {"type": ["string", "null"]}}}}}},
                        **_errors(400, 401, 429)},
                },
            },
            "/api/v1/jobs/{job_id}": {"get": {"summary": "One job", "parameters": [_job_id()],
                                              "responses": {"200": _JOB | {"description": "the job"}, **_errors(401, 404, 429)}}},
            "/api/v1/jobs/{job_id}/{output}": {"get": {
                "summary": "An output: result.json, result.txt, vis.jpg, result.pdf, ... (those in the job's links)",
                "parameters": [_job_id(), {"name": "output", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the file"}, **_errors(401, 404, 429),
                              "409": _PROBLEM | {"description": "queued or running; see Retry-After"}}}},
            "/api/v1/jobs/{job_id}/requeue": {"post": {"summary": "Requeue a failed or quarantined job (admin)",
                                                       "parameters": [_job_id()],
                                                       "responses": {"202": _JOB | {"description": "requeued"},
                                                                     **_errors(401, 403, 404, 409, 429, 503)}}},
            "/api/v1/me": {"get": {"summary": "The token's name, role and the inboxes it may post to",
                                   "responses": {"200": {"description": "the token"}, **_errors(401, 429)}}},
            "/healthz": {"get": {"summary": "Liveness (no token)", "security": [],
                                 "responses": {"200": {"description": "healthy"}, "503": {"description": "unhealthy"}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "apiToken": {"type": "apiKey", "in": "header", "name": "X-API-Token"}},
            "schemas": {
                "State": {"enum": ["queued", "running", "done", "failed", "quarantined", "duplicate"]},
                "Accepted": {"type": "object", "properties": {k: {"type": t} for k, t in (
                    ("id", "string"), ("state", "string"), ("inbox", "string"), ("filename", "string"),
                    ("bytes", "integer"), ("sha256", "string"), ("links", "object"))}},
                "Job": {"type": "object", "properties": {
                    **{k: {"type": ["string", "null"]} for k in (
                        "id", "reason", "detail", "inbox", "filename", "rel_path", "sha256", "created_at",
                        "started_at", "finished_at", "duplicate_of", "submitted_by")},
                    "state": {"$ref": "#/components/schemas/State"},
                    **{k: {"type": ["integer", "null"]} for k in ("bytes", "pages", "lines", "attempts")},
                    "links": {"type": "object"}}},
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "reason": {"type": "string", "description": "stable code to match on"},
                    "detail": {"type": "string"}}},
            },
        },
    }  # fmt: skip
