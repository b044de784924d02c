"""The ocrd error tree, process exit codes and stable job reason codes; imports nothing from ocrd."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """Process exit codes (sysexits.h values where one fits)."""

    OK = 0
    SOME_FAILED = 1
    UNAVAILABLE = 69  # EX_UNAVAILABLE: models missing or corrupt, directories unusable
    INTERNAL = 70  # EX_SOFTWARE
    BAD_CONFIG = 78  # EX_CONFIG: systemd must not restart on this


class Reason(StrEnum):
    """Stable reason codes stored in the job log and in quarantine reason files.

    The values are a public contract: scripts match on them. Add, never rename.
    """

    EMPTY_FILE = "empty_file"
    TOO_LARGE_BYTES = "too_large_bytes"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_MANY_PAGES = "too_many_pages"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    ENCRYPTED_PDF = "encrypted_pdf"
    NOT_REGULAR_FILE = "not_regular_file"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    WORKER_CRASHED = "worker_crashed"
    INTERRUPTED = "interrupted"
    OUTPUT_FAILED = "output_failed"
    INTERNAL_ERROR = "internal_error"
    # A done job whose searchable PDF was left out (the rest of its outputs written): why.
    PDF_ENCRYPTED = "pdf_encrypted"  # the input PDF is encrypted (an owner password): not rewritten
    PDF_SIGNED = "pdf_signed"  # the input PDF is signed: rewriting it would break the signature
    PDF_UNREWRITABLE = "pdf_unrewritable"  # the input PDF could not be rewritten safely
    # The PDF was written, but not as PDF/A-2b: the input PDF holds what PDF/A forbids.
    PDFA_NOT_CONFORMING = "pdfa_not_conforming"


class OcrdError(Exception):
    """Base of every error ocrd raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL


class ConfigError(OcrdError):
    """The configuration is invalid; `problems` holds one line per bad key."""

    exit_code = ExitCode.BAD_CONFIG

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))

    def __reduce__(self):
        return (type(self), (self.problems,))


class UnavailableError(OcrdError):
    """Something the process needs is missing or unusable (models, directories)."""

    exit_code = ExitCode.UNAVAILABLE


class ModelError(UnavailableError):
    """A model file is missing, unreadable, or does not match its recorded checksum."""


class InputError(OcrdError):
    """An input file was refused; `reason` is a stable code, the message is for people."""

    exit_code = ExitCode.SOME_FAILED

    def __init__(self, reason: Reason, message: str):
        self.reason = Reason(reason)
        self.message = message
        super().__init__(f"{self.reason}: {message}")

    def __reduce__(self):
        # Crosses process boundaries (worker -> main): pickle by its real arguments.
        return (type(self), (str(self.reason), self.message))
