"""JPEG header parser: the marker walk to end-of-image, frame size, EXIF orientation and truncation."""

from __future__ import annotations

import re
import struct

from ocrd.intake.headers import ImageHeader, PageHeader, corrupt_error, dpi_from, truncated_error
from ocrd.intake.tiff import parse_exif_orientation, parse_exif_resolution

_JFIF_UNITS = {1: "inch", 2: "cm"}  # 0: the densities are only an aspect ratio

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
    jfif_dpi: tuple[float, float] | None = None
    exif_dpi: tuple[float, float] | None = None
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
            raise corrupt_error(f"invalid JPEG marker 0x{marker:02X} at byte {pos - 2}")
        if marker == 0xD9:  # EOI
            if frame is None or not seen_scan:
                raise corrupt_error("JPEG ends before any image data")
            height, width, bits, comps = frame
            return ImageHeader(
                "jpeg",
                (PageHeader(width, height, bits, comps, False, orientation, dpi=jfif_dpi or exif_dpi),),
            )
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # standalone markers carry no length
        if pos + 2 > n:
            break
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise corrupt_error(f"JPEG segment with impossible length {length}")
        seg_end = pos + length
        if seg_end > n:
            break
        seg = data[pos + 2 : seg_end]
        if marker in _JPEG_SOF:
            if len(seg) < 6:
                raise corrupt_error("JPEG frame header too short")
            bits, height, width, comps = struct.unpack_from(">BHHB", seg, 0)
            if width == 0 or height == 0:
                raise corrupt_error("JPEG frame has zero width or height")
            if frame is None:  # the first frame is the image; later ones are odd but harmless
                frame = (height, width, bits, comps)
        elif marker == 0xE1 and seg.startswith(b"Exif\x00\x00") and orientation == 1:
            orientation = parse_exif_orientation(seg)
            exif_dpi = exif_dpi or parse_exif_resolution(seg)
        elif marker == 0xE0 and seg.startswith(b"JFIF\x00") and len(seg) >= 12 and jfif_dpi is None:
            unit = _JFIF_UNITS.get(seg[7])
            x_density, y_density = struct.unpack_from(">HH", seg, 8)
            jfif_dpi = dpi_from(x_density, y_density, unit) if unit else None
        pos = seg_end
        if marker == 0xDA:  # SOS: entropy-coded data follows until the next real marker
            if frame is None:
                raise corrupt_error("JPEG scan before frame header")
            seen_scan = True
            match = _JPEG_NEXT_MARKER.search(data, pos)
            if match is None:
                break
            pos = match.start()
    raise truncated_error("the JPEG has no end-of-image marker")
