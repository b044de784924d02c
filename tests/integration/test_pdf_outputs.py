"""PDF, PDF/A, hOCR and ALTO end to end with the real engine through `process_file`: JPEG, PNG, bilevel and multi-page TIFF, scanned PDFs (one page turned by /Rotate), a PDF that already has text, Chinese, an encrypted PDF; each read back, not string-matched."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pikepdf
import pytest
from lxml import etree
from PIL import Image

from ocrd.config.load import config_from_mapping
from ocrd.jobs.ids import new_job_id
from ocrd.jobs.records import Job
from ocrd.outputs.writers import load_result_schema
from ocrd.service.pipeline import process_file
from tests import pdfcheck
from tests.corpus import pil_bytes
from tests.documents import render_page
from tests.fonts import CJK_FONT, latin_font_path, render_lines

STANDARDS = Path(__file__).parent.parent / "fixtures" / "standards"
needs_font = pytest.mark.skipif(latin_font_path() is None, reason="no DejaVuSans.ttf to render pages (matplotlib or fonts-dejavu-core)")
LINES = ["Invoice 4711 from Example Office", "Total due 19.10 EUR", "Paid by transfer on 2026-11-21"]


def run(engine, tmp_path: Path, name: str, data: bytes, **outputs):
    source = tmp_path / name
    source.write_bytes(data)
    cfg = config_from_mapping({"outputs": {"hocr": True, "alto": True, "visualization": False, **outputs}}, tmp_path)
    stem = Path(name).stem
    job = Job(job_id=new_job_id(), path=source, rel_path=name, out_dir=tmp_path / "out", stem=stem)
    outcome = process_file(job, engine, cfg)
    result = json.loads((tmp_path / "out" / f"{stem}.json").read_text(encoding="utf-8"))
    jsonschema.validate(result, load_result_schema())
    pdf_path = tmp_path / "out" / f"{stem}.pdf"
    return outcome, result, (pdf_path.read_bytes() if pdf_path.exists() else None)


def assert_pdf_reads_as_the_json(pdf: bytes, result: dict) -> None:
    """Per page: pdftotext's words are the OCR's words, each within a word height of its JSON box;
    PDFium's words are the OCR's words in reading order."""
    pages = pdfcheck.pdftotext_words(pdf)
    assert len(pages) == len(result["pages"])
    for index, ((size, words), page) in enumerate(zip(pages, result["pages"])):
        expected = pdfcheck.words_of_page(page)
        assert expected, "the engine read nothing: the round trip would be empty"
        assert sorted(w.text for w in words) == sorted(expected)
        pdfcheck.assert_words_placed(page, size, words)
        assert pdfcheck.pdfium_text(pdf, index).split() == expected


def assert_alto_and_hocr(tmp_path: Path, stem: str, result: dict) -> None:
    schema = etree.XMLSchema(etree.parse(str(STANDARDS / "alto-4-4.local.xsd")))
    alto = etree.parse(str(tmp_path / "out" / f"{stem}.alto.xml"))
    schema.assertValid(alto)
    strings = [s.get("CONTENT") for s in alto.iter("{http://www.loc.gov/standards/alto/ns-v4#}String")]
    assert strings == [w for page in result["pages"] for w in pdfcheck.words_of_page(page)]
    hocr = etree.parse(str(tmp_path / "out" / f"{stem}.hocr"))
    words = [el.text for el in hocr.iter() if el.get("class") == "ocrx_word"]
    assert words == strings


def lines_image(lines=LINES, font=None, size_px=40) -> np.ndarray:
    image, _ = render_lines(lines, font or latin_font_path(), size_px=size_px)
    return image


# ---------------------------------------------------------------- images


@needs_font
def test_jpeg_page_is_searchable_embedded_as_is_and_pdfa(engine, tmp_path):
    page = render_page("receipt_table", dpi=150)
    data = pil_bytes(Image.fromarray(page.image[:, :, 0]), "JPEG", quality=85, dpi=(150, 150))
    outcome, result, pdf = run(engine, tmp_path, "receipt.jpg", data, pdfa=True)
    assert outcome.reason is None and str(tmp_path / "out" / "receipt.pdf") in outcome.outputs
    assert_pdf_reads_as_the_json(pdf, result)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        (image,) = [o for o in doc.objects if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == "/Image"]
        assert hashlib.sha256(image.read_raw_bytes()).digest() == hashlib.sha256(data).digest()
        width_pt, height_pt = float(doc.pages[0].MediaBox[2]), float(doc.pages[0].MediaBox[3])
    assert (width_pt, height_pt) == pytest.approx((612, 792), abs=0.5)  # 8.5 x 11 in at its 150 dpi
    assert len(pdf) <= len(data) * 1.1 + 20_000
    from pikepdf import pdfa

    report = pdfa.validate_written(io.BytesIO(pdf), "2b")
    assert report.passed, report.summary()
    assert_alto_and_hocr(tmp_path, "receipt", result)


@needs_font
def test_png_page(engine, tmp_path):
    _outcome, result, pdf = run(engine, tmp_path, "note.png", pil_bytes(Image.fromarray(lines_image()), "PNG"))
    assert [line["text"] for line in result["pages"][0]["lines"]] == LINES
    assert_pdf_reads_as_the_json(pdf, result)
    assert_alto_and_hocr(tmp_path, "note", result)


@needs_font
def test_bilevel_tiff_page_is_one_bit_and_pdfa(engine, tmp_path):
    bilevel = Image.fromarray(np.where(lines_image()[:, :, 0] < 128, 0, 255).astype(np.uint8)).convert("1")
    _outcome, result, pdf = run(engine, tmp_path, "fax.tif", pil_bytes(bilevel, "TIFF", compression="group4"), pdfa=True)
    assert_pdf_reads_as_the_json(pdf, result)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        (image,) = [o for o in doc.objects if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == "/Image"]
        assert int(image.BitsPerComponent) == 1
    from pikepdf import pdfa

    assert pdfa.validate_written(io.BytesIO(pdf), "2b").passed


@needs_font
def test_multi_page_tiff_is_one_pdf_page_per_page(engine, tmp_path):
    frames = [Image.fromarray(lines_image([text])[:, :, 0]) for text in ("Delivery note 815", "Receipt 2026 closed")]
    data = pil_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw")
    _outcome, result, pdf = run(engine, tmp_path, "pages.tiff", data)
    assert pdfcheck.page_count(pdf) == 2
    assert_pdf_reads_as_the_json(pdf, result)


def test_chinese_phrase_is_found_by_search(engine, tmp_path):
    image = lines_image(["我是中国人", "正品促销"], font=CJK_FONT, size_px=40)
    _outcome, result, pdf = run(engine, tmp_path, "cn.png", pil_bytes(Image.fromarray(image), "PNG"))
    assert [line["text"] for line in result["pages"][0]["lines"]] == ["我是中国人", "正品促销"]
    assert pdfcheck.pdfium_finds(pdf, "正品促销") and pdfcheck.pdfium_finds(pdf, "我是中国人")
    assert "正品促销" in pdfcheck.pdftotext_text(pdf)


# ---------------------------------------------------------------- PDFs


def scanned_pdf(images: list[np.ndarray], rotate: list[int], *, text_page: bool = False) -> bytes:
    """Each image as a page at 100 dpi, stored turned so that the page's /Rotate shows it upright;
    with `text_page`, a born-digital page (Helvetica text) first."""
    pdf = pikepdf.new()
    if text_page:
        page = pdf.add_blank_page(page_size=(612, 792))
        helvetica = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                         BaseFont=pikepdf.Name.Helvetica))  # fmt: skip
        page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=helvetica))
        page.obj.Contents = pdf.make_stream(b"BT /F1 28 Tf 72 700 Td (Typed letter 2026) Tj ET")
    for image, turn in zip(images, rotate):
        stored = np.ascontiguousarray(np.rot90(image[:, :, 0], k=turn // 90))  # counter-clockwise by /Rotate
        height, width = stored.shape
        page = pdf.add_blank_page(page_size=(width * 0.72, height * 0.72))
        xobject = pikepdf.Stream(pdf, stored.tobytes())
        xobject.Type, xobject.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        xobject.Width, xobject.Height, xobject.BitsPerComponent = width, height, 8
        xobject.ColorSpace = pikepdf.Name.DeviceGray
        page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=pdf.make_indirect(xobject)))
        page.obj.Contents = pdf.make_stream(f"q {width * 0.72} 0 0 {height * 0.72} 0 0 cm /Im0 Do Q".encode())
        page.obj.Rotate = turn
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


@needs_font
def test_scanned_pdf_keeps_its_pages_and_gets_the_layer(engine, tmp_path):
    original = scanned_pdf([lines_image(), lines_image(["Second page of the scan"])], [0, 90])
    _outcome, result, pdf = run(engine, tmp_path, "scan.pdf", original, pdfa=True)
    pages = pdfcheck.pdftotext_words(pdf)
    for (size, words), page in zip(pages, result["pages"]):
        assert sorted(w.text for w in words) == sorted(pdfcheck.words_of_page(page))
        pdfcheck.assert_words_placed(page, size, words)  # the /Rotate 90 page included
    for index in range(2):
        assert np.array_equal(pdfcheck.render(original, index), pdfcheck.render(pdf, index))
    from pikepdf import pdfa

    assert pdfa.validate_written(io.BytesIO(pdf), "2b").passed
    assert_alto_and_hocr(tmp_path, "scan", result)


@needs_font
def test_pdf_with_text_keeps_its_text_and_only_the_scanned_page_gets_a_layer(engine, tmp_path):
    original = scanned_pdf([lines_image()], [0], text_page=True)
    _outcome, result, pdf = run(engine, tmp_path, "mixed.pdf", original)
    typed = pdfcheck.pdfium_text(pdf, 0)
    assert typed.split() == ["Typed", "letter", "2026"]  # once: its own text, no second layer
    assert pdfcheck.words_of_page(result["pages"][0]) == ["Typed", "letter", "2026"]  # OCR read it too
    ((_size, scan_words),) = pdfcheck.pdftotext_words(pdf)[1:]
    assert sorted(w.text for w in scan_words) == sorted(pdfcheck.words_of_page(result["pages"][1]))
    assert np.array_equal(pdfcheck.render(original, 0), pdfcheck.render(pdf, 0))


@needs_font
def test_encrypted_pdf_gets_every_output_but_the_pdf_and_says_why(engine, tmp_path):
    plain = scanned_pdf([lines_image()], [0])
    with pikepdf.open(io.BytesIO(plain)) as doc:
        out = io.BytesIO()
        doc.save(out, encryption=pikepdf.Encryption(owner="owner-secret", user=""))
    outcome, result, pdf = run(engine, tmp_path, "locked.pdf", out.getvalue())
    assert pdf is None
    assert outcome.reason == "pdf_encrypted" and "encrypted" in outcome.error
    assert result["omitted"][0]["reason"] == "pdf_encrypted"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["locked.alto.xml", "locked.hocr", "locked.json", "locked.txt"]
