"""An upload's body into a staging file as it arrives: raw or multipart field `file`, counted, hashed and sniffed on the way.

Never holds the body in memory: each chunk is written on arrival. Past the
size limit (413), on a type intake would refuse (415, intake's reason code,
decided from the first KiB with intake's own `sniff_format`), when the
disk fills (507) or the client stalls (408) or goes away, the staging file is
deleted and nothing is kept. A complete one is fsynced before it is handed on.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ocrd.errors import InputError, Reason
from ocrd.http.problems import ApiError
from ocrd.inbox.uploads import create_staging_file, discard_staging_file, free_bytes
from ocrd.intake.formats import PDF_HEADER_WINDOW_BYTES, sniff_format

IDLE_TIMEOUT_S = 60.0  # a client that sends nothing for this long loses its upload (408)
MULTIPART_OVERHEAD_BYTES = 1 << 20  # other form fields and boundaries a multipart body may add
_FREE_CHECK_EVERY_BYTES = 8 << 20
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True, slots=True)
class Received:
    path: Path
    size_bytes: int
    sha256: str
    format: str
    filename: str | None  # from the multipart part, when the query named none


def disk_full(detail: str) -> ApiError:
    return ApiError(507, "disk_full", detail, headers={"Retry-After": "60"})


class _Sink:
    """The file's bytes: counted against the limit, hashed, sniffed from the first KiB, written."""

    def __init__(self, handle: BinaryIO, inbox_root: Path, max_bytes: int, min_free_bytes: int):
        self.handle = handle
        self.inbox_root = inbox_root
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.size = 0
        self.digest = hashlib.sha256()
        self.head = b""
        self.format: str | None = None
        self._next_free_check = _FREE_CHECK_EVERY_BYTES

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.max_bytes:
            raise ApiError(413, str(Reason.TOO_LARGE_BYTES),
                           f"the upload is larger than http.max_upload_mb ({self.max_bytes // (1 << 20)} MiB)")  # fmt: skip
        if self.format is None:
            self.head += data[: PDF_HEADER_WINDOW_BYTES]
            if len(self.head) >= PDF_HEADER_WINDOW_BYTES:
                self._sniff()
        self.digest.update(data)
        try:
            self.handle.write(data)
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                raise disk_full("the inbox's disk filled up during the upload") from None
            raise
        if self.size >= self._next_free_check:
            self._next_free_check += _FREE_CHECK_EVERY_BYTES
            if free_bytes(self.inbox_root) < self.min_free_bytes:
                raise disk_full("the inbox's disk is too full to take the rest of this upload")

    def _sniff(self) -> None:
        try:
            self.format = sniff_format(self.head)
        except InputError as exc:
            raise ApiError(415, str(exc.reason), exc.message) from None

    def finish(self) -> str:
        if self.size == 0:
            raise ApiError(415, str(Reason.EMPTY_FILE), "the upload is empty")
        if self.format is None:
            self._sniff()
        assert self.format is not None
        return self.format


class _MultipartFile:
    """Routes the first part named `file` of a multipart body to the sink; other parts are skipped."""

    def __init__(self, sink: _Sink, boundary: bytes):
        self.sink = sink
        self.filename: str | None = None
        self.seen = False
        self.complete = False
        self._in_file = False
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        })  # fmt: skip

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") == b"file" and not self.seen:
            self.seen = self._in_file = True
            name = params.get(b"filename")
            self.filename = name.decode("utf-8", "replace") if name else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.sink.write(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self.complete = True


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    """The body's chunks; a pause longer than IDLE_TIMEOUT_S ends the upload with 408."""
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), IDLE_TIMEOUT_S)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ApiError(408, "upload_stalled", f"no data for {IDLE_TIMEOUT_S:g} s; the upload was dropped") from None
        yield chunk


async def receive_upload(request: Request, inbox_root: Path, max_bytes: int, min_free_bytes: int) -> Received:
    """Stream the body into a new staging file of `inbox_root`; the caller hands it on or discards it."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    try:
        path, handle = create_staging_file(inbox_root)
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise disk_full("the inbox's disk is full") from None
        raise
    sink = _Sink(handle, inbox_root, max_bytes, min_free_bytes)
    try:
        form = None
        if content_type == b"multipart/form-data":
            if not params.get(b"boundary"):
                raise ApiError(400, "bad_multipart", "multipart/form-data without a boundary")
            form = _MultipartFile(sink, params[b"boundary"])
        total = 0
        async for chunk in _chunks(request):
            total += len(chunk)
            if form is None:
                sink.write(chunk)
                continue
            if total > max_bytes + MULTIPART_OVERHEAD_BYTES:
                raise ApiError(413, str(Reason.TOO_LARGE_BYTES), "the multipart body is larger than the upload limit allows")
            try:
                form.parser.write(chunk)
            except ApiError:
                raise
            except Exception as exc:  # noqa: BLE001 - python_multipart's parse errors: the client's body is bad
                raise ApiError(400, "bad_multipart", f"the multipart body cannot be parsed: {exc}") from None
        if form is not None:
            form.parser.finalize()
            if not form.seen:
                raise ApiError(400, "missing_file", "the multipart body has no part named `file`")
            if not form.complete:
                raise ApiError(400, "bad_multipart", "the multipart body ends inside the `file` part")
        fmt = sink.finish()
        try:
            handle.flush()
            await run_in_threadpool(os.fsync, handle.fileno())  # durable before the loop claims it
            handle.close()
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                raise disk_full("the inbox's disk filled up during the upload") from None
            raise
    except BaseException:
        try:
            handle.close()
        except OSError:
            pass  # the buffered rest could not be written either (disk full): the file goes anyway
        discard_staging_file(path)
        raise
    return Received(path, sink.size, sink.digest.hexdigest(), fmt, form.filename if form is not None else None)
