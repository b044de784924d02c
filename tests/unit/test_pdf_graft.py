"""Searchable PDFs made from input PDFs with hand-built results: the pages kept (rendering, content, links, boxes, /Rotate), the layer on the words of a turned page, pages with text skipped or not, and the PDFs that are not rewritten (encrypted, signed, unrewritable) while the rest of the set is written."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pikepdf
import pytest
import pypdfium2 as pdfium

from ocrd.engine.results import PageResult
from ocrd.outputs.pdf_document import PdfPages, encode_pdf
from ocrd.outputs.writers import write_outputs
from tests import pdfcheck
from tests.results import make_doc, turned_line
from tests.unit.test_outputs import FakeOutputsConfig

RENDER_SCALE = 200 / 72  # intake's default pdf_dpi


def input_pdf(*, encrypt: bool = False, signed: bool = False) -> bytes:
    """Two pages: a born-digital page (Helvetica text, a vector box, a link) and a scanned one (an
    image, no text) with /Rotate 90 and a crop box inside its media box."""
    pdf = pikepdf.new()
    text_page = pdf.add_blank_page(page_size=(612, 792))
    helvetica = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                     BaseFont=pikepdf.Name.Helvetica))  # fmt: skip
    text_page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=helvetica))
    text_page.obj.Contents = pdf.make_stream(b"0 0 1 rg 72 600 200 40 re f BT /F1 24 Tf 72 700 Td (Born digital) Tj ET")
    link = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[72, 600, 272, 640],
                              A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.org/")))  # fmt: skip
    text_page.obj.Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(link)]))
    scan = pdf.add_blank_page(page_size=(612, 792))
    pixels = np.full((100, 80), 255, np.uint8)
    pixels[20:40, 10:70] = 0
    image = pikepdf.Stream(pdf, pixels.tobytes())
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = 80, 100, 8
    image.ColorSpace = pikepdf.Name.DeviceGray
    scan.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=pdf.make_indirect(image)))
    scan.obj.Contents = pdf.make_stream(b"q 612 0 0 792 0 0 cm /Im0 Do Q")
    scan.obj.CropBox = [36, 36, 576, 756]
    scan.obj.Rotate = 90
    if signed:
        field = pikepdf.Dictionary(FT=pikepdf.Name.Sig, T=pikepdf.String("Signature1"), V=pikepdf.Dictionary())
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=[pdf.make_indirect(field)], SigFlags=3)
    out = io.BytesIO()
    encryption = pikepdf.Encryption(owner="owner-secret", user="", allow=pikepdf.Permissions(modify_other=False)) if encrypt else False
    pdf.save(out, encryption=encryption)
    return out.getvalue()


def rendered_size(pdf: bytes, index: int) -> tuple[int, int]:
    doc = pdfium.PdfDocument(pdf)
    try:
        width, height = doc[index].get_size()
        return int(width * RENDER_SCALE), int(height * RENDER_SCALE)
    finally:
        doc.close()


def results_for(pdf: bytes) -> list[PageResult]:
    """What OCR would report for the two pages, in the rendered pages' pixels (as displayed)."""
    w0, h0 = rendered_size(pdf, 0)
    w1, h1 = rendered_size(pdf, 1)
    assert (w1, h1) == (int(720 * RENDER_SCALE), int(540 * RENDER_SCALE))  # crop box, turned by /Rotate
    first = PageResult(w0, h0, (turned_line("Born digital", 200, 270, degrees=0, char_w=40, h=60),), index=0)
    second = PageResult(w1, h1, (
        turned_line("Scanned words here", 300, 500, degrees=0, char_w=40, h=60),
        turned_line("Written upwards", 150, 1300, degrees=90, char_w=40, h=60),
    ), index=1)  # fmt: skip
    return [first, second]


def graft(pdf: bytes, existing_text: str = "skip", pdfa: bool = False):
    return encode_pdf(make_doc(results_for(pdf), "in/letter.pdf"), PdfPages(pdf), pdfa=pdfa, existing_text=existing_text)


def forms_of(pdf: bytes) -> list[list[str]]:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return [[str(name) for name in page.Resources.get("/XObject", {}).keys() if str(name).startswith("/OcrdText")]
                for page in doc.pages]  # fmt: skip


# ---------------------------------------------------------------- pages kept


def test_every_page_renders_as_before():
    original = input_pdf()
    searchable = graft(original).data
    for index in range(2):
        before, after = pdfcheck.render(original, index), pdfcheck.render(searchable, index)
        assert before.shape == after.shape
        assert np.array_equal(before, after)


def test_the_pages_keep_their_content_links_boxes_and_rotation():
    original = input_pdf()
    with pikepdf.open(io.BytesIO(original)) as before, pikepdf.open(io.BytesIO(graft(original).data)) as after:
        for old, new in zip(before.pages, after.pages):
            assert [float(v) for v in new.MediaBox] == [float(v) for v in old.MediaBox]
            assert [float(v) for v in new.obj.get("/CropBox", new.MediaBox)] == [float(v) for v in old.obj.get("/CropBox", old.MediaBox)]
            assert int(new.obj.get("/Rotate", 0)) == int(old.obj.get("/Rotate", 0))
            old_content = old.Contents.read_bytes()
            new_streams = new.Contents if isinstance(new.Contents, pikepdf.Array) else [new.Contents]
            assert old_content in [s.read_bytes() for s in new_streams]  # the original stream, untouched
        (link,) = after.pages[0].Annots
        assert str(link.A.URI) == "https://example.org/"


def test_a_page_with_text_gets_no_second_layer_unless_asked():
    original = input_pdf()
    assert [len(f) for f in forms_of(graft(original).data)] == [0, 1]
    assert [len(f) for f in forms_of(graft(original, existing_text="add").data)] == [1, 1]
    text = pdfcheck.pdfium_text(graft(original).data, 0)
    assert text.count("Born digital") == 1  # not found twice


def test_the_layer_lies_on_the_words_of_a_turned_cropped_page():
    original = input_pdf()
    searchable = graft(original).data
    results = results_for(original)
    pages = pdfcheck.pdftotext_words(searchable)
    size, words = pages[1]
    assert size == pytest.approx((720.0, 540.0))  # pdftotext reads the page as displayed
    pdfcheck.assert_words_placed(results[1].to_dict(), size, words)
    # PDFium reads a /Rotate page's lines in the unturned page's frame (a line break per word here), but
    # in order and every word.
    assert pdfcheck.pdfium_text(searchable, 1).split() == "Scanned words here Written upwards".split()


# ---------------------------------------------------------------- PDFs that are not rewritten


@pytest.mark.parametrize(("kind", "reason"), [("encrypted", "pdf_encrypted"), ("signed", "pdf_signed")])
def test_a_pdf_that_must_not_be_rewritten_is_left_out_and_the_rest_written(tmp_path, kind, reason):
    original = input_pdf(encrypt=kind == "encrypted", signed=kind == "signed")
    doc = make_doc(results_for(original), "in/letter.pdf")
    cfg = FakeOutputsConfig(pdf=True, hocr=True, alto=True, visualization=False)
    written = write_outputs(doc, [], tmp_path, "letter", cfg, pdf_source=PdfPages(original))
    assert sorted(p.name for p in written) == ["letter.alto.xml", "letter.hocr", "letter.json", "letter.txt"]
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in written)  # no partial PDF, no temp file
    result = json.loads((tmp_path / "letter.json").read_text(encoding="utf-8"))
    (omitted,) = result["omitted"]
    assert omitted["output"] == "pdf" and omitted["reason"] == reason and omitted["message"]


def test_a_pdf_qpdf_cannot_write_is_left_out(monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise pikepdf.PdfError("simulated: object 7 0 cannot be written")

    original = input_pdf()
    monkeypatch.setattr(pikepdf.Pdf, "save", broken_save)
    encoding = graft(original)
    assert encoding.data is None
    assert [(o.output, str(o.reason)) for o in encoding.omitted] == [("pdf", "pdf_unrewritable")]


def test_pdfa_of_a_pdf_with_unembedded_fonts_is_written_unlabelled_with_a_note():
    encoding = graft(input_pdf(), pdfa=True)
    assert encoding.data is not None
    assert [(o.output, str(o.reason)) for o in encoding.omitted] == [("pdfa", "pdfa_not_conforming")]
    assert pdfcheck.pdfa_structure(encoding.data)["part"] is None  # it does not claim PDF/A


def test_pdfa_of_a_scanned_pdf_passes_the_validator():
    from pikepdf import pdfa

    original = input_pdf()
    with pikepdf.open(io.BytesIO(original)) as doc:
        del doc.pages[0]  # keep the scanned page only
        out = io.BytesIO()
        doc.save(out)
    scanned = out.getvalue()
    result = results_for(original)[1]
    encoding = encode_pdf(make_doc([result], "scan.pdf"), PdfPages(scanned), pdfa=True, existing_text="skip")
    assert encoding.omitted == ()
    report = pdfa.validate_written(io.BytesIO(encoding.data), "2b")
    assert report.passed, report.summary()
    assert pdfcheck.pdfa_structure(encoding.data)["title"] == "scan.pdf"
