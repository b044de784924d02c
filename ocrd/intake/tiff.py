"""TIFF structures: the IFD-chain header parser (classic and BigTIFF) and the EXIF orientation reader, since EXIF is a TIFF IFD."""

from __future__ import annotations

import struct

from ocrd.errors import InputError, Reason
from ocrd.intake.headers import ImageHeader, PageHeader, corrupt_error, dpi_from, truncated_error

_TIFF_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_TIFF_INT_FMT = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}
# Entries beyond this in one IFD are not a real scan; refuse rather than loop in Python.
_TIFF_MAX_ENTRIES = 4096
_TIFF_MAX_OFFSETS = 1_000_000
# An EXIF blob is a TIFF header plus IFDs; orientation is the same tag (274) in both.
_ORIENTATION_TAG = 0x0112
# So are the resolution tags: XResolution, YResolution (RATIONAL) and ResolutionUnit (2 inch, 3 cm).
_X_RESOLUTION_TAG, _Y_RESOLUTION_TAG, _RESOLUTION_UNIT_TAG = 0x011A, 0x011B, 0x0128
_RATIONAL = 5
_RESOLUTION_UNITS = {2: "inch", 3: "cm"}


def _byte_order(head: bytes) -> str:
    """The struct byte-order prefix named by a TIFF header: II little-endian, otherwise MM big-endian."""
    return "<" if head[:2] == b"II" else ">"


def _orientation_or_upright(value: int) -> int:
    """An orientation tag value 1..8 as is; anything else means 1 (as stored)."""
    return value if 1 <= value <= 8 else 1


def parse_exif_orientation(blob: bytes) -> int:
    """Orientation (1..8) from an EXIF blob (TIFF structure, optional 'Exif\\0\\0' prefix).

    Bad or missing EXIF means 1: broken metadata must not refuse a good image.
    """
    if blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    if len(blob) < 8 or blob[:4] not in (b"II*\x00", b"MM\x00*"):
        return 1
    bo = _byte_order(blob)
    try:
        (ifd,) = struct.unpack_from(bo + "I", blob, 4)
        (count,) = struct.unpack_from(bo + "H", blob, ifd)
        for i in range(min(count, 1000)):
            tag, typ, n = struct.unpack_from(bo + "HHI", blob, ifd + 2 + 12 * i)
            if tag == _ORIENTATION_TAG and typ == 3 and n >= 1:
                (value,) = struct.unpack_from(bo + "H", blob, ifd + 2 + 12 * i + 8)
                return _orientation_or_upright(value)
    except struct.error:
        return 1
    return 1


def parse_exif_resolution(blob: bytes) -> tuple[float, float] | None:
    """Pixels per inch (x, y) from an EXIF blob's first IFD, or None; bad EXIF means None."""
    if blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    if len(blob) < 8 or blob[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    bo = _byte_order(blob)
    found: dict[int, float] = {}
    try:
        (ifd,) = struct.unpack_from(bo + "I", blob, 4)
        (count,) = struct.unpack_from(bo + "H", blob, ifd)
        for i in range(min(count, 1000)):
            entry = ifd + 2 + 12 * i
            tag, typ, n = struct.unpack_from(bo + "HHI", blob, entry)
            if tag in (_X_RESOLUTION_TAG, _Y_RESOLUTION_TAG) and typ == _RATIONAL and n >= 1:
                (offset,) = struct.unpack_from(bo + "I", blob, entry + 8)
                numerator, denominator = struct.unpack_from(bo + "II", blob, offset)
                found[tag] = numerator / denominator if denominator else 0.0
            elif tag == _RESOLUTION_UNIT_TAG and typ == 3 and n >= 1:
                (found[tag],) = struct.unpack_from(bo + "H", blob, entry + 8)
    except struct.error:
        return None
    unit = _RESOLUTION_UNITS.get(int(found.get(_RESOLUTION_UNIT_TAG, 2)))
    if _X_RESOLUTION_TAG not in found or unit is None:
        return None
    return dpi_from(found[_X_RESOLUTION_TAG], found.get(_Y_RESOLUTION_TAG, found[_X_RESOLUTION_TAG]), unit)


def parse_tiff(data: bytes, max_pages: int) -> ImageHeader:
    """Walk the main IFD chain (classic and BigTIFF) without decoding pixels.

    Stops after `max_pages` + 1 IFDs so a file with thousands of pages is refused
    cheaply with TOO_MANY_PAGES; a chain that revisits an offset is CORRUPT.
    Strip/tile offsets + byte counts must lie inside the file (else TRUNCATED).
    """
    bo = _byte_order(data)
    (version,) = struct.unpack_from(bo + "H", data, 2)
    big = version == 43
    if big:
        bytesize, _zero, ifd = struct.unpack_from(bo + "HHQ", data, 4)
        if bytesize != 8:
            raise corrupt_error("BigTIFF offset size is not 8")
    else:
        (ifd,) = struct.unpack_from(bo + "I", data, 4)
    pages: list[PageHeader] = []
    seen: set[int] = set()
    while ifd:
        if ifd in seen:
            raise corrupt_error(f"TIFF page chain loops back to offset {ifd}")
        seen.add(ifd)
        if len(pages) >= max_pages:
            raise InputError(
                Reason.TOO_MANY_PAGES,
                f"the TIFF has more than {max_pages} pages (the configured limit)",
            )
        page, ifd = _tiff_ifd(data, ifd, bo, big)
        pages.append(page)
    if not pages:
        raise corrupt_error("TIFF has no pages")
    return ImageHeader("tiff", tuple(pages))


def _tiff_ifd(data: bytes, ifd: int, bo: str, big: bool) -> tuple[PageHeader, int]:
    n = len(data)
    if ifd >= n:
        if ifd >= _TIFF_PLAUSIBLE_OFFSET:  # no copy in progress is that large: a bogus offset
            raise corrupt_error(f"TIFF page directory offset {ifd} is impossible")
        raise truncated_error(f"TIFF page directory at byte {ifd} is past the end ({n} bytes)")
    count_fmt, entry_size, off_fmt, inline = ("Q", 20, "Q", 8) if big else ("H", 12, "I", 4)
    (count,) = struct.unpack_from(bo + count_fmt, data, ifd)
    if count > _TIFF_MAX_ENTRIES:
        raise corrupt_error(f"TIFF directory has {count} entries")
    head = ifd + (8 if big else 2)
    tags: dict[int, list[int]] = {}
    for i in range(count):
        entry = head + entry_size * i
        tag, typ = struct.unpack_from(bo + "HH", data, entry)
        (num,) = struct.unpack_from(bo + ("Q" if big else "I"), data, entry + 4)
        if tag not in _TIFF_WANTED:
            continue
        fmt = "I" if typ == _RATIONAL else _TIFF_INT_FMT.get(typ)
        if fmt is None or num == 0:
            continue
        nbytes = _TIFF_TYPE_BYTES[typ] * num
        if num > _TIFF_MAX_OFFSETS:
            raise corrupt_error(f"TIFF tag {tag} has {num} values")
        if nbytes <= inline:
            where = entry + (12 if big else 8)
        else:
            (where,) = struct.unpack_from(bo + off_fmt, data, entry + (12 if big else 8))
            if where + nbytes > n:
                raise truncated_error(f"TIFF tag {tag} values lie past the end of the file")
        values = 2 * num if typ == _RATIONAL else num
        tags[tag] = list(struct.unpack_from(f"{bo}{values}{fmt}", data, where))
    (next_ifd,) = struct.unpack_from(bo + off_fmt, data, head + entry_size * count)
    width = tags.get(256, [0])[0]
    height = tags.get(257, [0])[0]
    if width <= 0 or height <= 0:
        raise corrupt_error("TIFF page has no width or height")
    offsets = tags.get(324) or tags.get(273)
    counts = tags.get(325) or tags.get(279)
    if not offsets:
        raise corrupt_error("TIFF page has no image data offsets")
    if counts:
        for start, length in zip(offsets, counts):
            if start + length > n:
                raise truncated_error("TIFF image data lies past the end of the file")
    elif max(offsets) >= n:
        raise truncated_error("TIFF image data starts past the end of the file")
    bits = max(tags.get(258, [1]))
    samples = tags.get(277, [1])[0]
    extra = tags.get(338, [])
    orientation = tags.get(_ORIENTATION_TAG, [1])[0]
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
        orientation=_orientation_or_upright(orientation),
        unsupported=unsupported,
        planar_separate=tags.get(284, [1])[0] == 2,
        dpi=_tiff_dpi(tags),
    )
    return page, next_ifd


def _tiff_dpi(tags: dict[int, list[int]]) -> tuple[float, float] | None:
    x, y = tags.get(_X_RESOLUTION_TAG), tags.get(_Y_RESOLUTION_TAG)
    unit = _RESOLUTION_UNITS.get(tags.get(_RESOLUTION_UNIT_TAG, [2])[0])
    if not x or len(x) < 2 or not x[1] or unit is None:
        return None
    x_ppu = x[0] / x[1]
    y_ppu = y[0] / y[1] if y and len(y) >= 2 and y[1] else x_ppu
    return dpi_from(x_ppu, y_ppu, unit)


# Width, height, bits, compression, strips, orientation, samples, strip counts, x/y resolution, planar config,
# resolution unit, tiles, extra samples.
_TIFF_WANTED = {256, 257, 258, 259, 273, 274, 277, 279, 282, 283, 284, 296, 324, 325, 338}
# Measured to fail in opencv-python-headless 5.0's libtiff build.
_TIFF_UNSUPPORTED_COMPRESSION = {6: "old-style JPEG compression", 34925: "LZMA compression", 50001: "WebP compression"}
_TIFF_PLAUSIBLE_OFFSET = 1 << 32
