"""The HTTP listener: `/healthz` and `/metrics`, the token-guarded upload and job API under `/api/v1`, and the web page at `/`.

Runs inside the daemon process on its own thread (uvicorn's event loop) and
never writes the job log: an upload is streamed to a staging file in the
inbox's `.ocrd/upload/`, then handed to the main loop (`ocrd.service.handoff`),
which claims it like a dropped file; reads go through read-only job-log
connections. It may import every package below it, `ocrd.service` included
(the hand-off, the health snapshot), and only the CLI imports it. It is the
only importer of `starlette` (routing, requests, responses), `uvicorn` (the
ASGI server) and `python_multipart` (streaming multipart bodies).
"""
