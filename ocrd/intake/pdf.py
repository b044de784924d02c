"""PDF side of intake: page count, encryption and page rendering with pypdfium2 (its only importer); must not trust or extract the PDF's own text layer.

pypdfium2 is imported lazily so processes that never see a PDF do not load PDFium.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from ocrd.errors import InputError, Reason

# PDF user space unit: 1/72 inch.
_PT_PER_INCH = 72.0
# PDFium error codes (fpdfview.h): FPDF_ERR_PASSWORD, FPDF_ERR_SECURITY.
_PDFIUM_ERR_PASSWORD = 4
_PDFIUM_ERR_SECURITY = 6
# Acrobat looks for %%EOF in the last 1024 bytes; a copy in progress lacks it.
_PDF_EOF_WINDOW_BYTES = 1024


def _open(data: bytes):
    import pypdfium2 as pdfium  # lazy: see module docstring

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code in (_PDFIUM_ERR_PASSWORD, _PDFIUM_ERR_SECURITY):
            raise InputError(
                Reason.ENCRYPTED_PDF,
                "the PDF is password-protected; save an unprotected copy and drop that",
            ) from None
        raise InputError(Reason.CORRUPT, f"the PDF cannot be read ({exc})") from None


def pdf_page_count(data: bytes, max_pages: int) -> int:
    """Open the PDF (no rendering) and return its page count, enforcing `max_pages`."""
    if b"%%EOF" not in data[-_PDF_EOF_WINDOW_BYTES:]:
        raise InputError(Reason.TRUNCATED, "the file ends early: the PDF has no end marker (%%EOF)")
    doc = _open(data)
    try:
        count = len(doc)
    finally:
        doc.close()
    if count == 0:
        raise InputError(Reason.CORRUPT, "the PDF has no pages")
    if count > max_pages:
        raise InputError(
            Reason.TOO_MANY_PAGES,
            f"the PDF has {count} pages, more than the limit of {max_pages}",
        )
    return count


def render_scale(width_pt: float, height_pt: float, dpi: int, max_pixels: int, max_side_px: int) -> float:
    """Pixels per PDF point: `dpi`/72, reduced so the page fits the pixel limits.

    A large page is rendered smaller rather than refused: its text is still readable.
    """
    scale = dpi / _PT_PER_INCH
    width_pt, height_pt = max(width_pt, 1.0), max(height_pt, 1.0)
    if width_pt * height_pt * scale * scale > max_pixels:
        scale = math.sqrt(max_pixels / (width_pt * height_pt))
    if max(width_pt, height_pt) * scale > max_side_px:
        scale = max_side_px / max(width_pt, height_pt)
    # floor() in the renderer must not push us over the limit by rounding.
    return scale * 0.999 if scale != dpi / _PT_PER_INCH else scale


def render_pages(data: bytes, dpi: int, max_pixels: int, max_side_px: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, BGR uint8 image) per page, one page in memory at a time."""
    import pypdfium2 as pdfium

    doc = _open(data)
    try:
        for index in range(len(doc)):
            try:
                page = doc[index]
                try:
                    width_pt, height_pt = page.get_size()
                    scale = render_scale(width_pt, height_pt, dpi, max_pixels, max_side_px)
                    bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255))
                    try:
                        # A real copy: the bitmap's buffer is freed by close() below.
                        image = np.array(bitmap.to_numpy()[:, :, :3], dtype=np.uint8, order="C", copy=True)
                    finally:
                        bitmap.close()
                finally:
                    page.close()
            except (pdfium.PdfiumError, ValueError, OverflowError) as exc:
                raise InputError(Reason.CORRUPT, f"PDF page {index + 1} cannot be rendered ({exc})") from None
            if image.ndim != 3 or image.size == 0:
                raise InputError(Reason.CORRUPT, f"PDF page {index + 1} rendered to an empty image")
            yield index, image
    finally:
        doc.close()
