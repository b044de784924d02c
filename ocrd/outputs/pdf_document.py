"""The searchable PDF of a document, encoded whole in memory: image pages with their text layers, or the input PDF with layers grafted on; PDF/A-2b when asked; what was left out and why. Writes no file.

The caller says where the pages come from (`ImagePages`: one encoded picture per page;
`PdfPages`: the input PDF's bytes) and gets the finished bytes or an omission: a PDF that cannot
be made whole is never partly made. PDF/A-2b is checked with pikepdf's validator before the file
is labelled so; a PDF input that holds what PDF/A forbids is written as an ordinary searchable PDF
and the reason noted.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import pikepdf

from ocrd.engine.results import DocumentResult, PageResult
from ocrd.errors import Reason
from ocrd.outputs.pdf_font import GlyphlessFont, build_font, font_characters, font_object
from ocrd.outputs.pdf_graft import PdfOmitted, add_text_form, open_input_pdf, pages_for_layer, pixels_to_user_space
from ocrd.outputs.pdf_images import PagePicture, image_xobject, page_geometry
from ocrd.outputs.pdf_text import layer_content, layer_texts, pdf_number
from ocrd.outputs.pdfa import pdfa_findings, set_metadata

FONT_NAME = "OcrdFont"
IMAGE_NAME = "OcrdImage"


@dataclass(frozen=True, slots=True)
class ImagePages:
    """A document read from images: one picture per result page."""

    pictures: tuple[PagePicture, ...]


@dataclass(frozen=True, slots=True)
class PdfPages:
    """A document read from a PDF: its bytes, to keep its pages and graft the text on."""

    data: bytes


PdfSource = ImagePages | PdfPages


@dataclass(frozen=True, slots=True)
class Omitted:
    """An output left out of the set (`pdf`), or a property it lacks (`pdfa`): a stable reason and a message."""

    output: str
    reason: Reason
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "reason": str(self.reason), "message": self.message}


@dataclass(frozen=True, slots=True)
class PdfEncoding:
    data: bytes | None  # None: no PDF (see `omitted`)
    omitted: tuple[Omitted, ...] = ()


def encode_pdf(doc: DocumentResult, source: PdfSource, *, pdfa: bool, existing_text: str) -> PdfEncoding:
    """The searchable PDF of `doc`; PDF/A-2b when `pdfa`. `existing_text` ("skip" | "add"): whether a
    page of an input PDF that already has text gets ocrd's layer too."""
    if isinstance(source, PdfPages):
        try:
            return _encoded(doc, lambda: _grafted(doc, source.data, existing_text), pdfa, grafted=True)
        except PdfOmitted as omitted:
            return PdfEncoding(None, (Omitted("pdf", omitted.reason, omitted.message),))
        except pikepdf.PdfError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            message = f"the input PDF could not be rewritten ({first}); no searchable PDF was made"
            return PdfEncoding(None, (Omitted("pdf", Reason.PDF_UNREWRITABLE, message),))
    if len(source.pictures) != len(doc.pages):
        raise ValueError(f"{len(source.pictures)} page pictures for {len(doc.pages)} pages")
    return _encoded(doc, lambda: _from_images(doc.pages, source.pictures), pdfa, grafted=False)


def _encoded(doc: DocumentResult, build: Callable[[], pikepdf.Pdf], pdfa: bool, *, grafted: bool) -> PdfEncoding:
    """Build, label (PDF/A when asked and it passes the validator) and save; the bytes reopened as a check.

    A grafted PDF is the user's own: its metadata is left as it was unless it becomes PDF/A."""
    pdf = build()
    omitted: tuple[Omitted, ...] = ()
    try:
        if pdfa:
            _describe(pdf, doc, pdfa=True)
            findings = pdfa_findings(pdf)
            if findings:
                pdf.close()
                pdf = build()
                omitted = (Omitted("pdfa", Reason.PDFA_NOT_CONFORMING, _not_conforming(findings)),)
                pdfa = False
        if not pdfa and not grafted:
            _describe(pdf, doc, pdfa=False)
        data = _save(pdf, pdfa=pdfa, grafted=grafted)
    finally:
        pdf.close()
    with pikepdf.open(io.BytesIO(data)) as check:
        if len(check.pages) != len(doc.pages):
            raise pikepdf.PdfError(f"the written PDF has {len(check.pages)} pages, not {len(doc.pages)}")
    return PdfEncoding(data, omitted)


def _not_conforming(findings: Sequence[str]) -> str:
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"the input PDF holds what PDF/A-2b forbids: {findings[0]}{more}; the PDF was written without the PDF/A label"


def _describe(pdf: pikepdf.Pdf, doc: DocumentResult, *, pdfa: bool) -> None:
    created = datetime.fromisoformat(doc.created_at.replace("Z", "+00:00"))
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    version = doc.engine.get("ocrd_version", "")
    set_metadata(
        pdf, title=PurePosixPath(doc.source.rel_path).name, producer=f"ocrd {version}".strip(), created=created, pdfa=pdfa
    )


def _save(pdf: pikepdf.Pdf, *, pdfa: bool, grafted: bool) -> bytes:
    out = io.BytesIO()
    if pdfa:
        from pikepdf.pdfa import resolve_save_kwargs  # the settings the validator's verdict assumed

        pdf.save(out, **resolve_save_kwargs("2b", deterministic_id=True))
    else:
        # An input PDF keeps its object layout; ocrd's own PDFs pack their small objects into streams.
        mode = pikepdf.ObjectStreamMode.preserve if grafted else pikepdf.ObjectStreamMode.generate
        pdf.save(out, object_stream_mode=mode, deterministic_id=True, fix_metadata_version=not grafted)
    return out.getvalue()


def _font_for(pages: Sequence[PageResult]) -> GlyphlessFont | None:
    chars = font_characters(text for page in pages for text in layer_texts(page))
    return build_font(chars) if len(chars) > 1 else None


def _from_images(results: Sequence[PageResult], pictures: Sequence[PagePicture]) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    font = _font_for(results)
    font_ref = font_object(pdf, font) if font is not None else None
    for result, picture in zip(results, pictures):
        width_pt, height_pt, placement, to_pdf = page_geometry(picture, result.width, result.height)
        page = pdf.add_blank_page(page_size=(width_pt, height_pt))
        content = f"q {' '.join(pdf_number(v) for v in placement)} cm /{IMAGE_NAME} Do Q\n".encode("ascii")
        resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary({"/" + IMAGE_NAME: pdf.make_indirect(image_xobject(pdf, picture))}))
        if font is not None and font_ref is not None:
            content += layer_content(result, to_pdf, font, FONT_NAME)
            resources.Font = pikepdf.Dictionary({"/" + FONT_NAME: font_ref})
        stream = pikepdf.Stream(pdf, b"")
        stream.write(zlib.compress(content), filter=pikepdf.Name.FlateDecode)
        page.obj.Resources = resources
        page.obj.Contents = pdf.make_indirect(stream)
    return pdf


def _grafted(doc: DocumentResult, data: bytes, existing_text: str) -> pikepdf.Pdf:
    pdf = open_input_pdf(data, len(doc.pages))
    indices = pages_for_layer(pdf, doc.pages, existing_text)
    font = _font_for([doc.pages[i] for i in indices])
    if font is None:
        return pdf
    font_ref = font_object(pdf, font)
    for index in indices:
        page = pdf.pages[index]
        content = layer_content(doc.pages[index], pixels_to_user_space(page, doc.pages[index]), font, FONT_NAME)
        if content:
            add_text_form(pdf, page, content, font_ref, FONT_NAME)
    return pdf
