"""Searchable PDF from an input PDF: the original pages kept as they are, each given the text layer as a Form XObject; the policy for pages that already have text and for PDFs that must not be rewritten. Never renders a page.

Nothing of a page is re-encoded: its content streams, fonts, images, links, page boxes and
/Rotate stay; the page's content is wrapped in q/Q and followed by one `Do` of the text form, whose
coordinates are the page's own user space. Where the text goes comes from how intake rendered
the page (crop box, turned by /Rotate, scaled to the result's pixel size), so the layer lies on
the words the OCR read. A page that already draws text (any text-showing operator in its content
or its forms, an earlier OCR layer included) keeps it and gets no second layer unless
`existing_text` is "add". An encrypted or signed PDF is not rewritten at all (`PdfOmitted`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pikepdf

from ocrd.engine.results import PageResult
from ocrd.errors import Reason
from ocrd.outputs.pdf_text import Affine

_TEXT_OPERATORS = "Tj TJ ' \""
_MAX_FORM_DEPTH = 8  # nested forms deeper than this are not searched for text


class PdfOmitted(Exception):
    """The input PDF gets no searchable copy: a stable reason and a message for people."""

    def __init__(self, reason: Reason, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def open_input_pdf(data: bytes, page_count: int) -> pikepdf.Pdf:
    """The input PDF opened for rewriting; raises PdfOmitted when it must not or cannot be rewritten."""
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        raise PdfOmitted(Reason.PDF_ENCRYPTED, "the input PDF is password-protected; no searchable PDF was made") from None
    except (pikepdf.PdfError, ValueError, OSError) as exc:
        raise PdfOmitted(Reason.PDF_UNREWRITABLE, f"the input PDF cannot be rewritten ({_first_line(exc)})") from None
    if pdf.is_encrypted:
        pdf.close()
        raise PdfOmitted(
            Reason.PDF_ENCRYPTED,
            "the input PDF is encrypted (its author restricted changes); it was not rewritten, so no searchable PDF was made",
        )
    if _is_signed(pdf):
        pdf.close()
        raise PdfOmitted(
            Reason.PDF_SIGNED, "the input PDF is digitally signed; rewriting it would break the signature, so no searchable PDF was made"
        )
    if len(pdf.pages) != page_count:
        count = len(pdf.pages)
        pdf.close()
        raise PdfOmitted(Reason.PDF_UNREWRITABLE, f"the input PDF has {count} pages for qpdf but {page_count} for the renderer")
    return pdf


def _is_signed(pdf: pikepdf.Pdf) -> bool:
    form = pdf.Root.get("/AcroForm")
    if not isinstance(form, pikepdf.Dictionary):
        return False
    if int(form.get("/SigFlags", 0)) & 1:
        return True
    fields = form.get("/Fields")
    if not isinstance(fields, pikepdf.Array):
        return False
    return any(isinstance(f, pikepdf.Dictionary) and f.get("/FT") == pikepdf.Name.Sig and "/V" in f for f in fields)


def has_text(page: pikepdf.Page) -> bool:
    """Whether the page draws any text, in its own content or in the forms it uses."""
    try:
        if _shows_text(page.obj):
            return True
        return _forms_show_text(page.obj.get("/Resources"), 0, set())
    except (pikepdf.PdfError, ValueError, TypeError):
        return False  # content qpdf cannot parse: it gets ocrd's layer, its drawing stays as it is


def _shows_text(page_or_form: pikepdf.Object) -> bool:
    for operands, _operator in pikepdf.parse_content_stream(page_or_form, _TEXT_OPERATORS):
        for operand in operands:
            if isinstance(operand, pikepdf.String) and len(bytes(operand)):
                return True
            if isinstance(operand, pikepdf.Array) and any(isinstance(p, pikepdf.String) and len(bytes(p)) for p in operand):
                return True
    return False


def _forms_show_text(resources: object, depth: int, seen: set[tuple[int, int]]) -> bool:
    if depth > _MAX_FORM_DEPTH or not isinstance(resources, pikepdf.Dictionary):
        return False
    xobjects = resources.get("/XObject")
    if not isinstance(xobjects, pikepdf.Dictionary):
        return False
    for _name, xobject in xobjects.items():
        if not isinstance(xobject, pikepdf.Stream) or xobject.get("/Subtype") != pikepdf.Name.Form:
            continue
        if xobject.is_indirect:
            if xobject.objgen in seen:
                continue
            seen.add(xobject.objgen)
        if _shows_text(xobject) or _forms_show_text(xobject.get("/Resources"), depth + 1, seen):
            return True
    return False


def display_box(page: pikepdf.Page) -> tuple[float, float, float, float]:
    """The page's visible area in user space (the crop box within the media box), as (x0, y0, x1, y1)."""
    media = _box(page.obj.get("/MediaBox")) or (0.0, 0.0, 612.0, 792.0)
    crop = _box(page.obj.get("/CropBox")) or media
    x0, y0 = max(media[0], crop[0]), max(media[1], crop[1])
    x1, y1 = min(media[2], crop[2]), min(media[3], crop[3])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else media


def _box(value: object) -> tuple[float, float, float, float] | None:
    if not isinstance(value, pikepdf.Array) or len(value) != 4:
        return None
    a, b, c, d = (float(v) for v in value)
    return (min(a, c), min(b, d), max(a, c), max(b, d))


def page_rotation(page: pikepdf.Page) -> int:
    """The page's /Rotate as 0, 90, 180 or 270 (clockwise, as displayed)."""
    try:
        return int(page.obj.get("/Rotate", 0)) % 360 // 90 * 90
    except (TypeError, ValueError):
        return 0


def pixels_to_user_space(page: pikepdf.Page, result: PageResult) -> Affine:
    """The map from the rendered page's pixels (as intake rendered it: the visible box turned by /Rotate,
    `result.width` x `result.height`) to the page's user space."""
    x0, y0, x1, y1 = display_box(page)
    rotate = page_rotation(page)
    shown_w, shown_h = (y1 - y0, x1 - x0) if rotate in (90, 270) else (x1 - x0, y1 - y0)
    sx, sy = shown_w / max(result.width, 1), shown_h / max(result.height, 1)
    # Displayed point (dx, dy) from the top-left, y down -> user space, per rotation.
    if rotate == 90:
        return (0.0, sx, sy, 0.0, x0, y0)  # ux = x0 + dy, uy = y0 + dx
    if rotate == 180:
        return (-sx, 0.0, 0.0, sy, x1, y0)  # ux = x1 - dx, uy = y0 + dy
    if rotate == 270:
        return (0.0, -sx, -sy, 0.0, x1, y1)  # ux = x1 - dy, uy = y1 - dx
    return (sx, 0.0, 0.0, -sy, x0, y1)  # ux = x0 + dx, uy = y1 - dy


def add_text_form(pdf: pikepdf.Pdf, page: pikepdf.Page, content: bytes, font: pikepdf.Object, font_name: str) -> None:
    """Draw `content` (the text layer, in the page's user space) over the page as a Form XObject."""
    form = pikepdf.Stream(pdf, content)
    form.Type = pikepdf.Name.XObject
    form.Subtype = pikepdf.Name.Form
    form.BBox = list(display_box(page))
    form.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary({"/" + font_name: font}))
    # The page's own resource dictionaries may be shared with other pages: give this page copies of
    # the two levels it changes, holding the same entries, so no other page's resources grow.
    resources = page.obj.get("/Resources")
    own = pikepdf.Dictionary(dict(resources.items())) if isinstance(resources, pikepdf.Dictionary) else pikepdf.Dictionary()
    xobjects = own.get("/XObject")
    own.XObject = pikepdf.Dictionary(dict(xobjects.items())) if isinstance(xobjects, pikepdf.Dictionary) else pikepdf.Dictionary()
    page.obj.Resources = own
    name = page.add_resource(pdf.make_indirect(form), pikepdf.Name.XObject, prefix="OcrdText")
    page.contents_add(b"q\n", prepend=True)
    page.contents_add(b"\nQ\nq " + str(name).encode("ascii") + b" Do Q\n")


def pages_for_layer(pdf: pikepdf.Pdf, results: Sequence[PageResult], existing_text: str) -> list[int]:
    """Indices of the pages that get ocrd's layer: those without text of their own ("skip"), or all ("add")."""
    indices = [i for i, result in enumerate(results) if result.lines]
    if existing_text == "add":
        return indices
    return [i for i in indices if not has_text(pdf.pages[i])]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
