"""The file gate: open_document reads an untrusted file once (regular files only, no links), sniffs it and checks its header against the limits, decoding no pixels; `Document.pages()` then decodes lazily.

Every refusal is `InputError(Reason.X, message)`; nothing else escapes for a
bad file. Decoding lives in `ocrd.intake.decode`, header parsing in
`ocrd.intake.formats` and the format modules, PDF in `ocrd.intake.pdf`.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ocrd.errors import InputError, Reason
from ocrd.intake.decode import Page, decode_page
from ocrd.intake.formats import parse_header, sniff_format
from ocrd.intake.headers import ImageHeader
from ocrd.intake.pdf import pdf_page_count, render_pages

if TYPE_CHECKING:
    from ocrd.config.schema import IntakeConfig

log = logging.getLogger(__name__)

_EXTENSION_FORMAT = {
    ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg",
    ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp", ".dib": "bmp",
    ".webp": "webp", ".pdf": "pdf",
}
_READ_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Document:
    """A file that passed the gate and header checks; `pages()` decodes lazily."""

    path: Path
    format: str
    size_bytes: int
    sha256: str
    page_count: int
    _cfg: IntakeConfig = field(repr=False, compare=False)
    # The bytes read once through the opened descriptor: never re-read by path (TOCTOU).
    _data: bytes = field(repr=False, compare=False)
    _header: ImageHeader | None = field(default=None, repr=False, compare=False)

    @property
    def data(self) -> bytes:
        """The file's bytes as read through the gate (for an output that keeps the original, such as
        the PDF's byte-for-byte JPEG or the pages of an input PDF)."""
        return self._data

    def page_dpi(self, index: int) -> tuple[float, float] | None:
        """The resolution page `index`'s header states (pixels per inch, x and y), or None (and for a PDF)."""
        if self._header is None or not 0 <= index < len(self._header.pages):
            return None
        return self._header.pages[index].dpi

    def pages(self) -> Iterator[Page]:
        """Decode and yield one page at a time; raises InputError for a bad page."""
        if self.format == "pdf":
            cfg = self._cfg
            for index, image in render_pages(self._data, cfg.pdf_dpi, cfg.max_pixels, cfg.max_side_px):
                yield Page(index, image)
                del image  # flat memory: drop our reference before rendering the next page
            return
        assert self._header is not None
        multi = len(self._header.pages) > 1
        for index, header in enumerate(self._header.pages):
            page = decode_page(self._data, self.format, header, index, multi=multi)
            yield page
            del page  # flat memory: drop our reference before decoding the next page


def open_document(path: Path, cfg: IntakeConfig, *, now_s: float | None = None) -> Document:
    """Run the gate and header checks, cheapest first; decode no pixels.

    `now_s` (default time.time()) judges whether a truncated file is young
    enough that it may still be copying; the message says so.
    """
    path = Path(path)
    data, st = _read_regular_file(path, cfg.max_bytes)
    return document_from_bytes(data, path, cfg, mtime_s=st.st_mtime, now_s=now_s)


def read_input(path: Path, cfg: IntakeConfig) -> tuple[bytes, float]:
    """The gate's read alone (regular file, no links, size limit): the bytes and the file's mtime.

    For an executor that runs the rest of the checks elsewhere (`document_from_bytes` on a Dask
    worker): the bytes are read here once, through the opened descriptor, as `open_document` does.
    """
    data, st = _read_regular_file(Path(path), cfg.max_bytes)
    return data, st.st_mtime


def document_from_bytes(
    data: bytes, path: Path, cfg: IntakeConfig, *, mtime_s: float, now_s: float | None = None
) -> Document:
    """The header checks of `open_document` on bytes already read (`path` names the file, `mtime_s` is its
    modification time, which words a truncation); the size limits are checked again, since the bytes
    may have come from another host."""
    path = Path(path)
    if not data:
        raise InputError(Reason.EMPTY_FILE, "the file is empty (0 bytes)")
    if len(data) > cfg.max_bytes:
        raise InputError(Reason.TOO_LARGE_BYTES, _too_large_message(len(data), cfg.max_bytes))
    fmt = sniff_format(data[:4096])
    _log_extension_mismatch(path, fmt)
    header: ImageHeader | None = None
    try:
        if fmt == "pdf":
            page_count = pdf_page_count(data, cfg.max_pages)
        else:
            header = parse_header(data, fmt, cfg.max_pages)
            _check_limits(header, cfg)
            page_count = len(header.pages)
    except InputError as exc:
        if exc.reason is Reason.TRUNCATED:
            raise _truncation_with_age(exc, mtime_s, cfg.young_file_s, now_s) from None
        raise
    return Document(
        path=path,
        format=fmt,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        page_count=page_count,
        _cfg=cfg,
        _data=data,
        _header=header,
    )


def _read_regular_file(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """Open without following a final symlink, check it is a regular file, read it whole."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(Reason.NOT_REGULAR_FILE, "the path is a symbolic link; links are never followed") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputError(Reason.NOT_FOUND, "the file disappeared before it could be read") from None
        if exc.errno == errno.ENXIO:  # a socket or a FIFO on some systems
            raise InputError(Reason.NOT_REGULAR_FILE, "the path is not a regular file") from None
        # No dedicated reason code for unreadable files yet; NOT_FOUND with the cause.
        raise InputError(Reason.NOT_FOUND, f"the file cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _file_kind(st.st_mode)
            raise InputError(Reason.NOT_REGULAR_FILE, f"the path is {kind}, not a regular file")
        if st.st_size == 0:
            raise InputError(Reason.EMPTY_FILE, "the file is empty (0 bytes)")
        if st.st_size > max_bytes:
            raise InputError(Reason.TOO_LARGE_BYTES, _too_large_message(st.st_size, max_bytes))
        # One read of the whole size: a single allocation, so a 200 MB file
        # costs 200 MB, not twice that while chunks are joined.
        data = _read_exactly(fd, st.st_size)
        if len(data) == st.st_size:
            # A file still growing: take what is there now (rare path, small reads).
            parts = [data]
            total = len(data)
            while total <= max_bytes:
                chunk = _read_exactly(fd, _READ_CHUNK_BYTES)
                if not chunk:
                    break
                parts.append(chunk)
                total += len(chunk)
            if len(parts) > 1:
                data = b"".join(parts)
            del parts
        if len(data) > max_bytes:
            raise InputError(Reason.TOO_LARGE_BYTES, _too_large_message(len(data), max_bytes))
    finally:
        os.close(fd)
    if not data:
        raise InputError(Reason.EMPTY_FILE, "the file is empty (0 bytes)")
    return data, st


def _read_exactly(fd: int, size: int) -> bytes:
    """Read up to `size` bytes (fewer only at end of file)."""
    try:
        data = os.read(fd, size)
        if len(data) in (0, size):
            return data
        parts = [data]
        got = len(data)
        while got < size:
            chunk = os.read(fd, min(size - got, _READ_CHUNK_BYTES))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)
    except OSError as exc:
        raise InputError(Reason.CORRUPT, f"the file cannot be read ({exc.strerror})") from None


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _too_large_message(size_bytes: int, max_bytes: int) -> str:
    return f"the file is {size_bytes / 2**20:.1f} MiB, more than the limit of {max_bytes / 2**20:.1f} MiB"


def _log_extension_mismatch(path: Path, fmt: str) -> None:
    expected = _EXTENSION_FORMAT.get(path.suffix.lower())
    if expected != fmt:
        # Logged, never trusted: the content decides how the file is read.
        log.warning(
            "intake_extension_mismatched path=%s extension=%s format=%s",
            path, path.suffix or "(none)", fmt,
        )


def _check_limits(header: ImageHeader, cfg: IntakeConfig) -> None:
    for index, page in enumerate(header.pages):
        width, height = page.width_px, page.height_px
        where = f"page {index + 1} is" if len(header.pages) > 1 else "the image is"
        if max(width, height) > cfg.max_side_px:
            raise InputError(
                Reason.TOO_MANY_PIXELS,
                f"{where} {width}x{height} pixels; a side may be at most {cfg.max_side_px} pixels",
            )
        if width * height > cfg.max_pixels:
            raise InputError(
                Reason.TOO_MANY_PIXELS,
                f"{where} {width}x{height} = {width * height / 1e6:.1f} megapixels, "
                f"more than the limit of {cfg.max_pixels / 1e6:.1f}",
            )


def _truncation_with_age(exc: InputError, mtime_s: float, young_file_s: float, now_s: float | None) -> InputError:
    age_s = (time.time() if now_s is None else now_s) - mtime_s
    if age_s < young_file_s:
        hint = f"it was modified {max(age_s, 0):.0f} s ago and may still be copying"
    else:
        hint = f"it has not changed for {age_s:.0f} s, so it is not still copying"
    return InputError(Reason.TRUNCATED, f"{exc.message}; {hint}")
