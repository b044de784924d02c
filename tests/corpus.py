"""Generates the intake test corpus at test time (numpy, cv2, Pillow, hand-built bytes); must not download or read files from outside the test's tmp dir."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

# ---------------------------------------------------------------- raster builders


def marker_image(width: int = 60, height: int = 30) -> np.ndarray:
    """White BGR image with a black 8x8 block in the top-left corner."""
    image = np.full((height, width, 3), 255, np.uint8)
    image[:8, :8] = 0
    return image


def pil_bytes(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg_bytes(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    ok, enc = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return enc.tobytes()


def png_bytes(image: np.ndarray) -> bytes:
    ok, enc = cv2.imencode(".png", image)
    assert ok
    return enc.tobytes()


def tiff_pages_bytes(levels: list[int], width: int = 40, height: int = 20) -> bytes:
    """Multi-page grayscale TIFF; page i is filled with levels[i] and has width + i."""
    frames = [Image.new("L", (width + i, height), level) for i, level in enumerate(levels)]
    return pil_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png_header_only(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A tiny PNG whose IHDR claims width x height (valid CRCs), with a small IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def tiff_ifd_chain(pages: int, *, loop: bool = False, big_endian: bool = False) -> bytes:
    """A classic TIFF with `pages` 1x1 pages sharing one strip; `loop` points the last IFD back at the first."""
    bo = ">" if big_endian else "<"
    header = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(bo + "I", 8)
    ifd_size = 2 + 6 * 12 + 4
    strip_offset = 8 + pages * ifd_size
    out = bytearray(header)
    for i in range(pages):
        start = 8 + i * ifd_size
        nxt = start + ifd_size if i + 1 < pages else (8 if loop else 0)
        entries = [
            (256, 3, 1, 1),  # width
            (257, 3, 1, 1),  # height
            (258, 3, 1, 8),  # bits per sample
            (262, 3, 1, 1),  # photometric: black is zero
            (273, 4, 1, strip_offset),
            (279, 4, 1, 1),
        ]
        out += struct.pack(bo + "H", len(entries))
        for tag, typ, count, value in entries:
            if typ == 3:
                out += struct.pack(bo + "HHIHH", tag, typ, count, value, 0)
            else:
                out += struct.pack(bo + "HHII", tag, typ, count, value)
        out += struct.pack(bo + "I", nxt)
    out += b"\x80"
    return bytes(out)


def bigtiff_header(width: int, height: int) -> bytes:
    """A one-page BigTIFF (8-byte offsets) with one 1-byte strip."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (273, 16, 1, 0), (279, 16, 1, 1)]
    ifd_offset = 16
    strip_offset = ifd_offset + 8 + 20 * len(entries) + 8
    out = bytearray(b"II+\x00" + struct.pack("<HHQ", 8, 0, ifd_offset))
    out += struct.pack("<Q", len(entries))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = strip_offset
        out += struct.pack("<HHQQ", tag, typ, count, value)
    out += struct.pack("<Q", 0)
    out += b"\x80"
    return bytes(out)


# ---------------------------------------------------------------- PDF builders


def pdf_bytes(pages: list[tuple[float, float, str]], *, encrypt: bool = False) -> bytes:
    """Hand-built PDF; each page is (width_pt, height_pt, content stream).

    With `encrypt`, the trailer names a Standard security handler whose /U
    entry no password matches, so any reader must ask for a password.
    """
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    for i, (width_pt, height_pt, content) in enumerate(pages):
        stream = content.encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt} {height_pt}] /Contents {4 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    extra = b""
    if encrypt:
        objects.append(
            b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>"
        )
        file_id = b"<0123456789abcdef0123456789abcdef>"
        extra = b"/Encrypt %d 0 R /ID [%s %s] " % (len(objects), file_id, file_id)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, extra, xref)
    return bytes(out)


def black_box(x_pt: float, y_pt: float, size_pt: float = 36) -> str:
    """Content stream: a filled black square with its lower-left corner at (x, y) in points."""
    return f"0 0 0 rg {x_pt} {y_pt} {size_pt} {size_pt} re f"


def planar_tiff_16bit_rgb(width: int, height: int, rgb16: tuple[int, int, int]) -> bytes:
    """Uncompressed 16-bit RGB TIFF with PlanarConfiguration=2 (one strip per colour plane)."""
    plane_bytes = width * height * 2
    entries_n = 10
    ifd = 8
    after_ifd = ifd + 2 + 12 * entries_n + 4
    bits_at, offsets_at, counts_at = after_ifd, after_ifd + 6, after_ifd + 18
    data_at = after_ifd + 30
    entries = [
        (256, 3, 1, width), (257, 3, 1, height), (258, 3, 3, bits_at), (259, 3, 1, 1),
        (262, 3, 1, 2), (273, 4, 3, offsets_at), (277, 3, 1, 3), (278, 3, 1, height),
        (279, 4, 3, counts_at), (284, 3, 1, 2),
    ]
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd) + struct.pack("<H", entries_n))
    for tag, typ, count, value in entries:
        if typ == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0)
    out += struct.pack("<3H", 16, 16, 16)
    out += struct.pack("<3I", *(data_at + i * plane_bytes for i in range(3)))
    out += struct.pack("<3I", plane_bytes, plane_bytes, plane_bytes)
    for value in rgb16:
        out += struct.pack("<H", value) * (width * height)
    return bytes(out)
