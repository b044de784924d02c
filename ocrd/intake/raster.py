"""Header parsers of the single-image container formats PNG, BMP and WebP: size, depth, alpha, EXIF orientation, truncation."""

from __future__ import annotations

import struct
import zlib

from ocrd.intake.headers import ImageHeader, PageHeader, corrupt_error, dpi_from, truncated_error
from ocrd.intake.tiff import parse_exif_orientation, parse_exif_resolution


def parse_png(data: bytes) -> ImageHeader:
    """Walk PNG chunks: IHDR (size, depth, alpha), eXIf, IEND; every chunk must fit."""
    pos = 8
    n = len(data)
    ihdr: tuple[int, ...] | None = None
    has_trns = False
    orientation = 1
    dpi: tuple[float, float] | None = None
    while True:
        if pos + 8 > n:
            raise truncated_error("the PNG has no end chunk (IEND)")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if not ctype.isalpha() or not ctype.isascii():
            # Chunk types are four ASCII letters; anything else is garbage, not a short copy.
            raise corrupt_error(f"PNG chunk type {ctype!r} at byte {pos} is invalid")
        if length > 0x7FFFFFFF:
            raise corrupt_error(f"PNG chunk length {length} is out of range")
        end = pos + 12 + length
        if end > n:
            raise truncated_error(f"PNG chunk {ctype!r} needs {end - n} more bytes")
        body = data[pos + 8 : pos + 8 + length]
        if ihdr is None:
            if ctype != b"IHDR" or length != 13:
                raise corrupt_error("PNG does not start with an IHDR chunk")
            (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
            if zlib.crc32(data[pos + 4 : pos + 8 + length]) != crc:
                raise corrupt_error("PNG header checksum (IHDR CRC) does not match")
            ihdr = struct.unpack(">IIBBBBB", body)
            width, height = ihdr[0], ihdr[1]
            if width == 0 or height == 0:
                raise corrupt_error("PNG has zero width or height")
        elif ctype == b"tRNS":
            has_trns = True
        elif ctype == b"eXIf":
            orientation = parse_exif_orientation(body)
            dpi = dpi or parse_exif_resolution(body)
        elif ctype == b"pHYs" and length == 9 and body[8] == 1:  # unit 1: pixels per metre
            dpi = dpi_from(*struct.unpack_from(">II", body, 0), "m")
        elif ctype == b"IEND":
            break
        pos = end
    width, height, bits, color_type = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    samples = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(color_type)
    if samples is None:
        raise corrupt_error(f"PNG colour type {color_type} is invalid")
    has_alpha = color_type in (4, 6) or has_trns
    return ImageHeader(
        "png", (PageHeader(width, height, bits, samples, has_alpha, orientation, dpi=dpi),)
    )


def parse_bmp(data: bytes) -> ImageHeader:
    """BMP file + DIB header: size, depth; uncompressed pixel rows must fit in the file."""
    if len(data) < 26:
        raise truncated_error("the BMP header is incomplete")
    (pixel_offset,) = struct.unpack_from("<I", data, 10)
    (dib_size,) = struct.unpack_from("<I", data, 14)
    compression = 0
    dpi = None
    if dib_size >= 40:
        dpi = dpi_from(*struct.unpack_from("<ii", data, 38), "m")  # biX/YPelsPerMeter
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _planes, bpp = struct.unpack_from("<HHHH", data, 18)
    elif dib_size >= 16:
        width, height, _planes, bpp = struct.unpack_from("<iiHH", data, 18)
        if dib_size >= 20:
            (compression,) = struct.unpack_from("<I", data, 30)
    else:
        raise corrupt_error(f"BMP header size {dib_size} is invalid")
    height = abs(height)  # negative means rows stored top-down
    if width <= 0 or height == 0:
        raise corrupt_error("BMP has zero or negative width or height")
    if bpp not in (1, 2, 4, 8, 16, 24, 32, 64):
        raise corrupt_error(f"BMP bit depth {bpp} is invalid")
    has_alpha = False
    if dib_size >= 56 and bpp == 32 and compression in (3, 6):
        (alpha_mask,) = struct.unpack_from("<I", data, 14 + 52)
        has_alpha = alpha_mask != 0
    if compression in (0, 3, 6):  # BI_RGB / BI_BITFIELDS / BI_ALPHABITFIELDS: exact size known
        row_bytes = ((width * bpp + 31) // 32) * 4
        if pixel_offset + row_bytes * height > len(data):
            raise truncated_error("the BMP pixel rows extend past the end of the file")
    elif pixel_offset >= len(data):
        raise truncated_error("the BMP pixel data starts past the end of the file")
    return ImageHeader("bmp", (PageHeader(width, height, 8, 4 if has_alpha else 3, has_alpha, dpi=dpi),))


def parse_webp(data: bytes) -> ImageHeader:
    """RIFF/WEBP chunks: VP8X canvas or VP8/VP8L frame size, alpha, EXIF orientation."""
    if len(data) < 12:
        raise truncated_error("the WebP header is incomplete")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size + 8 > len(data):
        raise truncated_error(f"the WebP container needs {riff_size + 8 - len(data)} more bytes")
    end = riff_size + 8  # bytes after the RIFF container are ignored
    pos = 12
    size: tuple[int, int] | None = None
    has_alpha = False
    orientation = 1
    dpi: tuple[float, float] | None = None
    while pos + 8 <= end:
        ctype, length = struct.unpack_from("<4sI", data, pos)
        body_end = pos + 8 + length
        if body_end > end:
            raise truncated_error(f"WebP chunk {ctype!r} extends past the end of the file")
        body = data[pos + 8 : body_end]
        if ctype == b"VP8X":
            if len(body) < 10:
                raise corrupt_error("WebP VP8X chunk too short")
            has_alpha = bool(body[0] & 0x10)
            width = 1 + int.from_bytes(body[4:7], "little")
            height = 1 + int.from_bytes(body[7:10], "little")
            size = (width, height)
        elif ctype == b"VP8 " and size is None:
            if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
                raise corrupt_error("WebP lossy frame header is invalid")
            width, height = struct.unpack_from("<HH", body, 6)
            size = (width & 0x3FFF, height & 0x3FFF)
        elif ctype == b"VP8L" and size is None:
            if len(body) < 5 or body[0] != 0x2F:
                raise corrupt_error("WebP lossless header is invalid")
            (bits,) = struct.unpack_from("<I", body, 1)
            size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            has_alpha = bool((bits >> 28) & 1)
        elif ctype == b"EXIF":
            orientation = parse_exif_orientation(body)
            dpi = parse_exif_resolution(body)
        pos = body_end + (length & 1)  # chunks are padded to even length
    if size is None:
        raise corrupt_error("WebP has no image chunk")
    if size[0] == 0 or size[1] == 0:
        raise corrupt_error("WebP has zero width or height")
    return ImageHeader(
        "webp",
        (PageHeader(size[0], size[1], 8, 4 if has_alpha else 3, has_alpha, orientation, dpi=dpi),),
    )
