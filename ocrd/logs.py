"""Logging setup: structlog to JSON lines (journald) or a console format, plus an optional JSON-lines file
sink that logrotate can rotate; stdlib logs are routed through the same pipeline.

The only importer of `structlog`. `configure_logging` is called once by the
CLI; nothing is configured at import. Installs no signal handler: the daemon
calls `reopen_log_files()` from its SIGHUP handler.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import structlog

from ocrd.errors import UnavailableError


def _renderer(fmt: str, stream: IO[str]) -> Any:
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer(ensure_ascii=False)


class ReopenableFileHandler(logging.handlers.WatchedFileHandler):
    """Appends to a file that logrotate may rename away at any time.

    Two ways to follow a rotation, both losing nothing: like WatchedFileHandler
    it re-opens when the path no longer names the open file (checked before each
    record), and `request_reopen()` (signal-safe: it only sets a flag) makes the
    next record re-open unconditionally, for SIGHUP. Lines written between the
    rename and the re-open land in the renamed file, which is why logrotate/ocrd
    uses delaycompress.
    """

    def __init__(self, filename: str | os.PathLike[str]):
        super().__init__(os.fspath(filename), mode="a", encoding="utf-8")
        self._reopen_requested = False

    def request_reopen(self) -> None:
        # No lock and no I/O: safe from a signal handler that interrupted emit().
        self._reopen_requested = True

    def reopen(self) -> None:
        """Close and re-open the file now (takes the handler lock)."""
        self.acquire()
        try:
            self._reopen_requested = False
            if self.stream is not None:
                self.stream.flush()
                self.stream.close()
                self.stream = None  # type: ignore[assignment]
            self.stream = self._open()
            self._statstream()
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        if self._reopen_requested:
            try:
                self.reopen()
            except OSError:
                self.handleError(record)
                return
        super().emit(record)


def _encodable_line(_logger: Any, _method: str, line: str) -> str:
    """The rendered line with lone surrogates (a file name's non-UTF-8 bytes) as `\\udcNN` escapes.

    Without this, writing the line to a UTF-8 stream raises and logging drops it; in JSON
    the escape is the standard one and reads back as the same string.
    """
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def _json_formatter(shared: list[Any], renderer: Any) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
            _encodable_line,
        ],
    )


def configure_logging(
    fmt: str = "auto",
    level: str = "info",
    stream: IO[str] | None = None,
    file: str | os.PathLike[str] | None = None,
) -> None:
    """Route structlog and stdlib logging to one stream with one format and level.

    `file`, when given, receives the same records as JSON lines whatever `fmt`
    is (a file is read by programs); its directory is created if missing.
    Raises UnavailableError when the file cannot be opened.
    """
    stream = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handlers: list[logging.Handler] = []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_json_formatter(shared, _renderer(fmt, stream)))
    handlers.append(handler)
    if file is not None:
        path = Path(file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            file_handler = ReopenableFileHandler(path)
        except OSError as exc:
            raise UnavailableError(f"cannot open log file {path}: {exc.strerror or exc}") from None
        file_handler.setFormatter(_json_formatter(shared, structlog.processors.JSONRenderer(ensure_ascii=False)))
        handlers.append(file_handler)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, ReopenableFileHandler):
            old.close()
    for new in handlers:
        root.addHandler(new)
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def reopen_log_files() -> int:
    """Make every file sink re-open its file before its next line; returns how many there are.

    Safe to call from a signal handler (SIGHUP): it only sets flags.
    """
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, ReopenableFileHandler)]
    for handler in handlers:
        handler.request_reopen()
    return len(handlers)


@contextmanager
def bound_job(job_id: str, **fields: Any) -> Iterator[None]:
    """Every log line inside the block, structlog or stdlib, from this thread/task carries `job_id`."""
    with structlog.contextvars.bound_contextvars(job_id=job_id, **fields):
        yield


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
