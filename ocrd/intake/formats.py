"""Which format a file is: magic-byte sniffing, the refusal wording for unsupported files, and dispatch to the header parser of each format."""

from __future__ import annotations

import struct

from ocrd.errors import InputError, Reason
from ocrd.intake.headers import ImageHeader, corrupt_error, truncated_error
from ocrd.intake.jpeg import parse_jpeg
from ocrd.intake.raster import parse_bmp, parse_png, parse_webp
from ocrd.intake.tiff import parse_tiff

# What sniff_format can return.
FORMATS = ("jpeg", "png", "tiff", "bmp", "webp", "pdf")
# PDF: Acrobat accepts the header anywhere in the first 1024 bytes; we do the same.
PDF_HEADER_WINDOW_BYTES = 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"BM", "bmp"),
)

# Formats we refuse, named so the message tells a person what the file looks like.
_LOOKS_LIKE: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "a Windows icon"),
    (b"icns", "a macOS icon"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%!PS", "a PostScript file"),
    (b"\xc5\xd0\xd3\xc6", "an EPS file"),
    (b"qoif", "a QOI image"),
    (b"SIMPLE  =", "a FITS file"),
    (b"\x01\xda", "an SGI image"),
    (b"DDS ", "a DirectDraw texture"),
    (b"BLP", "a BLP texture"),
)


def sniff_format(head: bytes) -> str:
    """Return the format named by the magic bytes of `head` (the first 1 KiB or more).

    Raises InputError(UNSUPPORTED_FORMAT) naming what the bytes look like when easy.
    """
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if b"%PDF-" in head[:PDF_HEADER_WINDOW_BYTES]:
        return "pdf"
    raise InputError(
        Reason.UNSUPPORTED_FORMAT,
        f"not a supported image or PDF ({describe_unknown(head)}); "
        "accepted: JPEG, PNG, TIFF, BMP, WebP, PDF",
    )


def describe_unknown(head: bytes) -> str:
    """A short guess at what an unsupported file is, for the refusal message."""
    for magic, name in _LOOKS_LIKE:
        if head.startswith(magic):
            return f"it looks like {name}"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace")
        if brand in ("avif", "avis"):
            return "it looks like an AVIF image"
        if brand.startswith(("hei", "mif")):
            return "it looks like a HEIC image"
        return "it looks like an ISO media file"
    sample = head[:512]
    stripped = sample.lstrip()
    if stripped[:5].lower() in (b"<!doc", b"<html") or stripped[:5] == b"<?xml":
        return "it looks like an HTML/XML document"
    if sample and _is_text(sample):
        return "it looks like a plain-text file"
    return f"unknown magic bytes {head[:8].hex(' ')}"


def _is_text(sample: bytes) -> bool:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at the sample's end; judge on bytes then.
        text = sample.decode("latin-1")
    printable = sum(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return printable >= 0.95 * len(text)


def parse_header(data: bytes, fmt: str, max_pages: int) -> ImageHeader:
    """Parse the header of a raster file of format `fmt` (from `sniff_format`)."""
    parser = {
        "jpeg": parse_jpeg,
        "png": parse_png,
        "bmp": parse_bmp,
        "webp": parse_webp,
    }.get(fmt)
    try:
        if fmt == "tiff":
            return parse_tiff(data, max_pages)
        if parser is None:
            raise ValueError(f"no header parser for {fmt}")
        return parser(data)
    except (struct.error, IndexError):
        # Every read is bounds-checked on purpose; an escape here means a field
        # pointed past the end, which is what a half-copied file looks like.
        raise truncated_error(f"a {fmt.upper()} header field points past the end of the file") from None
    except (ValueError, OverflowError) as exc:
        raise corrupt_error(f"the {fmt.upper()} header is invalid ({exc})") from None
