"""What a raster file's header says (PageHeader, ImageHeader) and the TRUNCATED/CORRUPT refusals every header parser raises.

Every parser (`ocrd.intake.jpeg`, `ocrd.intake.raster`, `ocrd.intake.tiff`,
dispatched by `ocrd.intake.formats.parse_header`) is pure (bytes in,
`ImageHeader` out), must not decode pixels or import a decoder, and raises
only `InputError` (TRUNCATED, CORRUPT, TOO_MANY_PAGES, UNSUPPORTED_FORMAT);
`ocrd.intake.gate` applies the size limits and the "may still be copying"
wording. Truncation is judged here, independently of the decoder, because
OpenCV returns a full image for half a JPEG in some versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocrd.errors import InputError, Reason


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
    # Pixels per inch along x and y as the file states them (JFIF, EXIF, PNG pHYs, TIFF, BMP); None when
    # it states none. Read for the PDF's page size; plausibility is the reader's judgement.
    dpi: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """Format and per-page headers of a raster file (PDF is handled elsewhere)."""

    format: str
    pages: tuple[PageHeader, ...]


_CM_PER_INCH = 2.54


def dpi_from(x: float, y: float, unit: str) -> tuple[float, float] | None:
    """A resolution in `unit` ("inch", "cm" or "m": pixels per that) as pixels per inch; None if unusable."""
    factor = {"inch": 1.0, "cm": _CM_PER_INCH, "m": _CM_PER_INCH / 100}.get(unit)
    if factor is None or not x > 0 or not y > 0:
        return None
    return (round(x * factor, 2), round(y * factor, 2))


def truncated_error(what: str) -> InputError:
    return InputError(Reason.TRUNCATED, f"the file ends early: {what}")


def corrupt_error(what: str) -> InputError:
    return InputError(Reason.CORRUPT, f"the file is damaged: {what}")
