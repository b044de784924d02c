"""Header parsers for intake: magic sniffing, dimensions, page counts, EXIF orientation and truncation from raw bytes; must not decode pixels or import a decoder.

Every parser is pure (bytes in, `ImageHeader` out) and raises only
`InputError` (TRUNCATED, CORRUPT, TOO_MANY_PAGES, UNSUPPORTED_FORMAT); `intake`
applies the size limits and the "may still be copying" wording. Truncation is
judged here, independently of the decoder, because OpenCV returns a full image
for half a JPEG in some versions.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from ocrd.errors import InputError, Reason

# PDF: Acrobat accepts the header anywhere in the first 1024 bytes; we do the same.
PDF_HEADER_WINDOW_BYTES = 1024


@dataclass(frozen=True, slots=True)
class PageHeader:
    """What one page's header says, before decoding."""

    width_px: int
    height_px: int
    bits_per_sample: int = 8
    samples: int = 3
    has_alpha: bool = False
    orientation: int = 1  # EXIF/TIFF orientation 1..8 (1 = as stored)
    # Set when the header names a variant OpenCV's decoder is known to lack;
    # used only to word a decode failure (the decoder still gets its chance).
    unsupported: str | None = None
    # TIFF PlanarConfiguration=2 (one plane per sample).
    planar_separate: bool = False


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """Format and per-page headers of a raster file (PDF is handled elsewhere)."""

    format: str
    pages: tuple[PageHeader, ...]


# ---------------------------------------------------------------- sniffing

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


# ---------------------------------------------------------------- shared helpers

def _truncated(what: str) -> InputError:
    return InputError(Reason.TRUNCATED, f"the file ends early: {what}")


def _corrupt(what: str) -> InputError:
    return InputError(Reason.CORRUPT, f"the file is damaged: {what}")


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
        raise _truncated(f"a {fmt.upper()} header field points past the end of the file") from None
    except (ValueError, OverflowError) as exc:
        raise _corrupt(f"the {fmt.upper()} header is invalid ({exc})") from None


# ---------------------------------------------------------------- EXIF

def parse_exif_orientation(blob: bytes) -> int:
    """Orientation (1..8) from an EXIF blob (TIFF structure, optional 'Exif\\0\\0' prefix).

    Bad or missing EXIF means 1: broken metadata must not refuse a good image.
    """
    if blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    if len(blob) < 8 or blob[:4] not in (b"II*\x00", b"MM\x00*"):
        return 1
    bo = "<" if blob[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(bo + "I", blob, 4)
        (count,) = struct.unpack_from(bo + "H", blob, ifd)
        for i in range(min(count, 1000)):
            tag, typ, n = struct.unpack_from(bo + "HHI", blob, ifd + 2 + 12 * i)
            if tag == 0x0112 and typ == 3 and n >= 1:
                (value,) = struct.unpack_from(bo + "H", blob, ifd + 2 + 12 * i + 8)
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


# ---------------------------------------------------------------- JPEG

# SOF markers carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) are not frames.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# In entropy-coded data a marker is 0xFF followed by anything but 0x00 (stuffing),
# RSTn (D0-D7) or another 0xFF (fill).
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def parse_jpeg(data: bytes) -> ImageHeader:
    """Walk JPEG markers up to EOI: frame size, EXIF orientation, truncation.

    A complete image must reach EOI (FFD9) after its last scan; bytes after EOI
    are accepted (MPO second frames, camera trailers, appended junk) because
    the image itself is whole.
    """
    pos = 2
    n = len(data)
    frame: tuple[int, int, int, int] | None = None
    orientation = 1
    seen_scan = False
    while True:
        if pos < n and data[pos] != 0xFF:
            # libjpeg skips extraneous bytes before a marker (with a warning); so do we.
            pos = data.find(b"\xff", pos)
            if pos < 0:
                break
        # Markers may be preceded by any number of 0xFF fill bytes.
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0x00:
            continue  # a stuffed 0xFF00 outside a scan: more extraneous bytes
        if 0x02 <= marker <= 0xBF:
            raise _corrupt(f"invalid JPEG marker 0x{marker:02X} at byte {pos - 2}")
        if marker == 0xD9:  # EOI
            if frame is None or not seen_scan:
                raise _corrupt("JPEG ends before any image data")
            height, width, bits, comps = frame
            return ImageHeader(
                "jpeg",
                (PageHeader(width, height, bits, comps, False, orientation),),
            )
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # standalone markers carry no length
        if pos + 2 > n:
            break
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise _corrupt(f"JPEG segment with impossible length {length}")
        seg_end = pos + length
        if seg_end > n:
            break
        seg = data[pos + 2 : seg_end]
        if marker in _JPEG_SOF:
            if len(seg) < 6:
                raise _corrupt("JPEG frame header too short")
            bits, height, width, comps = struct.unpack_from(">BHHB", seg, 0)
            if width == 0 or height == 0:
                raise _corrupt("JPEG frame has zero width or height")
            if frame is None:  # the first frame is the image; later ones are odd but harmless
                frame = (height, width, bits, comps)
        elif marker == 0xE1 and seg.startswith(b"Exif\x00\x00") and orientation == 1:
            orientation = parse_exif_orientation(seg)
        pos = seg_end
        if marker == 0xDA:  # SOS: entropy-coded data follows until the next real marker
            if frame is None:
                raise _corrupt("JPEG scan before frame header")
            seen_scan = True
            match = _JPEG_NEXT_MARKER.search(data, pos)
            if match is None:
                break
            pos = match.start()
    raise _truncated("the JPEG has no end-of-image marker")


# ---------------------------------------------------------------- PNG

def parse_png(data: bytes) -> ImageHeader:
    """Walk PNG chunks: IHDR (size, depth, alpha), eXIf, IEND; every chunk must fit."""
    pos = 8
    n = len(data)
    ihdr: tuple[int, ...] | None = None
    has_trns = False
    orientation = 1
    while True:
        if pos + 8 > n:
            raise _truncated("the PNG has no end chunk (IEND)")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if not ctype.isalpha() or not ctype.isascii():
            # Chunk types are four ASCII letters; anything else is garbage, not a short copy.
            raise _corrupt(f"PNG chunk type {ctype!r} at byte {pos} is invalid")
        if length > 0x7FFFFFFF:
            raise _corrupt(f"PNG chunk length {length} is out of range")
        end = pos + 12 + length
        if end > n:
            raise _truncated(f"PNG chunk {ctype!r} needs {end - n} more bytes")
        body = data[pos + 8 : pos + 8 + length]
        if ihdr is None:
            if ctype != b"IHDR" or length != 13:
                raise _corrupt("PNG does not start with an IHDR chunk")
            (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
            if zlib.crc32(data[pos + 4 : pos + 8 + length]) != crc:
                raise _corrupt("PNG header checksum (IHDR CRC) does not match")
            ihdr = struct.unpack(">IIBBBBB", body)
            width, height = ihdr[0], ihdr[1]
            if width == 0 or height == 0:
                raise _corrupt("PNG has zero width or height")
        elif ctype == b"tRNS":
            has_trns = True
        elif ctype == b"eXIf":
            orientation = parse_exif_orientation(body)
        elif ctype == b"IEND":
            break
        pos = end
    width, height, bits, color_type = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    samples = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(color_type)
    if samples is None:
        raise _corrupt(f"PNG colour type {color_type} is invalid")
    has_alpha = color_type in (4, 6) or has_trns
    return ImageHeader(
        "png", (PageHeader(width, height, bits, samples, has_alpha, orientation),)
    )


# ---------------------------------------------------------------- BMP

def parse_bmp(data: bytes) -> ImageHeader:
    """BMP file + DIB header: size, depth; uncompressed pixel rows must fit in the file."""
    if len(data) < 26:
        raise _truncated("the BMP header is incomplete")
    (pixel_offset,) = struct.unpack_from("<I", data, 10)
    (dib_size,) = struct.unpack_from("<I", data, 14)
    compression = 0
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _planes, bpp = struct.unpack_from("<HHHH", data, 18)
    elif dib_size >= 16:
        width, height, _planes, bpp = struct.unpack_from("<iiHH", data, 18)
        if dib_size >= 20:
            (compression,) = struct.unpack_from("<I", data, 30)
    else:
        raise _corrupt(f"BMP header size {dib_size} is invalid")
    height = abs(height)  # negative means rows stored top-down
    if width <= 0 or height == 0:
        raise _corrupt("BMP has zero or negative width or height")
    if bpp not in (1, 2, 4, 8, 16, 24, 32, 64):
        raise _corrupt(f"BMP bit depth {bpp} is invalid")
    has_alpha = False
    if dib_size >= 56 and bpp == 32 and compression in (3, 6):
        (alpha_mask,) = struct.unpack_from("<I", data, 14 + 52)
        has_alpha = alpha_mask != 0
    if compression in (0, 3, 6):  # BI_RGB / BI_BITFIELDS / BI_ALPHABITFIELDS: exact size known
        row_bytes = ((width * bpp + 31) // 32) * 4
        if pixel_offset + row_bytes * height > len(data):
            raise _truncated("the BMP pixel rows extend past the end of the file")
    elif pixel_offset >= len(data):
        raise _truncated("the BMP pixel data starts past the end of the file")
    return ImageHeader("bmp", (PageHeader(width, height, 8, 4 if has_alpha else 3, has_alpha),))


# ---------------------------------------------------------------- WebP

def parse_webp(data: bytes) -> ImageHeader:
    """RIFF/WEBP chunks: VP8X canvas or VP8/VP8L frame size, alpha, EXIF orientation."""
    if len(data) < 12:
        raise _truncated("the WebP header is incomplete")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size + 8 > len(data):
        raise _truncated(f"the WebP container needs {riff_size + 8 - len(data)} more bytes")
    end = riff_size + 8  # bytes after the RIFF container are ignored
    pos = 12
    size: tuple[int, int] | None = None
    has_alpha = False
    orientation = 1
    while pos + 8 <= end:
        ctype, length = struct.unpack_from("<4sI", data, pos)
        body_end = pos + 8 + length
        if body_end > end:
            raise _truncated(f"WebP chunk {ctype!r} extends past the end of the file")
        body = data[pos + 8 : body_end]
        if ctype == b"VP8X":
            if len(body) < 10:
                raise _corrupt("WebP VP8X chunk too short")
            has_alpha = bool(body[0] & 0x10)
            width = 1 + int.from_bytes(body[4:7], "little")
            height = 1 + int.from_bytes(body[7:10], "little")
            size = (width, height)
        elif ctype == b"VP8 " and size is None:
            if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
                raise _corrupt("WebP lossy frame header is invalid")
            width, height = struct.unpack_from("<HH", body, 6)
            size = (width & 0x3FFF, height & 0x3FFF)
        elif ctype == b"VP8L" and size is None:
            if len(body) < 5 or body[0] != 0x2F:
                raise _corrupt("WebP lossless header is invalid")
            (bits,) = struct.unpack_from("<I", body, 1)
            size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            has_alpha = bool((bits >> 28) & 1)
        elif ctype == b"EXIF":
            orientation = parse_exif_orientation(body)
        pos = body_end + (length & 1)  # chunks are padded to even length
    if size is None:
        raise _corrupt("WebP has no image chunk")
    if size[0] == 0 or size[1] == 0:
        raise _corrupt("WebP has zero width or height")
    return ImageHeader(
        "webp",
        (PageHeader(size[0], size[1], 8, 4 if has_alpha else 3, has_alpha, orientation),),
    )


# ---------------------------------------------------------------- TIFF

_TIFF_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_TIFF_INT_FMT = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}
# Entries beyond this in one IFD are not a real scan; refuse rather than loop in Python.
_TIFF_MAX_ENTRIES = 4096
_TIFF_MAX_OFFSETS = 1_000_000


def parse_tiff(data: bytes, max_pages: int) -> ImageHeader:
    """Walk the main IFD chain (classic and BigTIFF) without decoding pixels.

    Stops after `max_pages` + 1 IFDs so a file with thousands of pages is refused
    cheaply with TOO_MANY_PAGES; a chain that revisits an offset is CORRUPT.
    Strip/tile offsets + byte counts must lie inside the file (else TRUNCATED).
    """
    bo = "<" if data[:2] == b"II" else ">"
    (version,) = struct.unpack_from(bo + "H", data, 2)
    big = version == 43
    if big:
        bytesize, _zero, ifd = struct.unpack_from(bo + "HHQ", data, 4)
        if bytesize != 8:
            raise _corrupt("BigTIFF offset size is not 8")
    else:
        (ifd,) = struct.unpack_from(bo + "I", data, 4)
    pages: list[PageHeader] = []
    seen: set[int] = set()
    while ifd:
        if ifd in seen:
            raise _corrupt(f"TIFF page chain loops back to offset {ifd}")
        seen.add(ifd)
        if len(pages) >= max_pages:
            raise InputError(
                Reason.TOO_MANY_PAGES,
                f"the TIFF has more than {max_pages} pages (the configured limit)",
            )
        page, ifd = _tiff_ifd(data, ifd, bo, big)
        pages.append(page)
    if not pages:
        raise _corrupt("TIFF has no pages")
    return ImageHeader("tiff", tuple(pages))


def _tiff_ifd(data: bytes, ifd: int, bo: str, big: bool) -> tuple[PageHeader, int]:
    n = len(data)
    if ifd >= n:
        if ifd >= _TIFF_PLAUSIBLE_OFFSET:  # no copy in progress is that large: a bogus offset
            raise _corrupt(f"TIFF page directory offset {ifd} is impossible")
        raise _truncated(f"TIFF page directory at byte {ifd} is past the end ({n} bytes)")
    count_fmt, entry_size, off_fmt, inline = ("Q", 20, "Q", 8) if big else ("H", 12, "I", 4)
    (count,) = struct.unpack_from(bo + count_fmt, data, ifd)
    if count > _TIFF_MAX_ENTRIES:
        raise _corrupt(f"TIFF directory has {count} entries")
    head = ifd + (8 if big else 2)
    tags: dict[int, list[int]] = {}
    for i in range(count):
        entry = head + entry_size * i
        tag, typ = struct.unpack_from(bo + "HH", data, entry)
        (num,) = struct.unpack_from(bo + ("Q" if big else "I"), data, entry + 4)
        if tag not in _TIFF_WANTED:
            continue
        fmt = _TIFF_INT_FMT.get(typ)
        if fmt is None or num == 0:
            continue
        nbytes = _TIFF_TYPE_BYTES[typ] * num
        if num > _TIFF_MAX_OFFSETS:
            raise _corrupt(f"TIFF tag {tag} has {num} values")
        if nbytes <= inline:
            where = entry + (12 if big else 8)
        else:
            (where,) = struct.unpack_from(bo + off_fmt, data, entry + (12 if big else 8))
            if where + nbytes > n:
                raise _truncated(f"TIFF tag {tag} values lie past the end of the file")
        tags[tag] = list(struct.unpack_from(f"{bo}{num}{fmt}", data, where))
    (next_ifd,) = struct.unpack_from(bo + off_fmt, data, head + entry_size * count)
    width = tags.get(256, [0])[0]
    height = tags.get(257, [0])[0]
    if width <= 0 or height <= 0:
        raise _corrupt("TIFF page has no width or height")
    offsets = tags.get(324) or tags.get(273)
    counts = tags.get(325) or tags.get(279)
    if not offsets:
        raise _corrupt("TIFF page has no image data offsets")
    if counts:
        for start, length in zip(offsets, counts):
            if start + length > n:
                raise _truncated("TIFF image data lies past the end of the file")
    elif max(offsets) >= n:
        raise _truncated("TIFF image data starts past the end of the file")
    bits = max(tags.get(258, [1]))
    samples = tags.get(277, [1])[0]
    extra = tags.get(338, [])
    orientation = tags.get(274, [1])[0]
    compression = tags.get(259, [1])[0]
    unsupported = _TIFF_UNSUPPORTED_COMPRESSION.get(compression)
    if unsupported is None and samples == 1 and bits in (2, 4):
        unsupported = f"{bits}-bit grayscale"
    page = PageHeader(
        width_px=width,
        height_px=height,
        bits_per_sample=bits,
        samples=samples,
        has_alpha=bool(extra) and extra[0] in (1, 2),  # associated / unassociated alpha
        orientation=orientation if 1 <= orientation <= 8 else 1,
        unsupported=unsupported,
        planar_separate=tags.get(284, [1])[0] == 2,
    )
    return page, next_ifd


# Width, height, bits, compression, strips, orientation, samples, strip counts, planar config, tiles, extra samples.
_TIFF_WANTED = {256, 257, 258, 259, 273, 274, 277, 279, 284, 324, 325, 338}
# Measured to fail in opencv-python-headless 5.0's libtiff build.
_TIFF_UNSUPPORTED_COMPRESSION = {6: "old-style JPEG compression", 34925: "LZMA compression", 50001: "WebP compression"}
_TIFF_PLAUSIBLE_OFFSET = 1 << 32
