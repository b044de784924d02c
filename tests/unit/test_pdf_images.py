"""Searchable PDFs made from image pages with hand-built results: the text read back (pdftotext, PDFium) is the words, where the words are, turned lines, CJK search, the font, JPEG byte for byte, orientation, page size, lossless pages, PDF/A-2b."""

from __future__ import annotations

import hashlib
import io
import re

import cv2
import numpy as np
import pikepdf
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from ocrd.engine.results import PageResult
from ocrd.outputs.pdf_document import ImagePages, encode_pdf
from ocrd.outputs.pdf_font import build_font, font_characters
from ocrd.outputs.pdf_images import jpeg_picture, pixels_picture, plausible_dpi
from ocrd.outputs.pdf_text import layer_content
from tests import pdfcheck
from tests.results import make_doc, turned_line
from tests.corpus import jpeg_bytes, pil_bytes

UPRIGHT = [("Invoice 42 paid", 0, 100, 120), ("Total 19.10 EUR", 0, 100, 220)]
TURNED = [("Upwards text", 90, 60, 900), ("Upside down", 180, 900, 500), ("Downwards", 270, 940, 100)]


def page_with(lines: list[tuple[str, int, float, float]], width: int = 1000, height: int = 1000) -> PageResult:
    return PageResult(width, height, tuple(turned_line(t, x, y, degrees=d) for t, d, x, y in lines))


def white(width: int = 1000, height: int = 1000) -> np.ndarray:
    image = np.full((height, width, 3), 255, np.uint8)
    image[40:60, 40:300] = 0
    return image


def image_pdf(page: PageResult, image: np.ndarray | None = None, dpi=(100.0, 100.0), **kw) -> bytes:
    image = white(page.width, page.height) if image is None else image
    encoding = encode_pdf(make_doc([page]), ImagePages((pixels_picture(image, dpi),)), pdfa=kw.get("pdfa", False),
                          existing_text="skip")  # fmt: skip
    assert encoding.omitted == ()
    assert encoding.data is not None
    return encoding.data


# ---------------------------------------------------------------- the text comes back


def test_pdftotext_reads_back_the_words_in_order():
    pdf = image_pdf(page_with(UPRIGHT))
    ((_size, words),) = pdfcheck.pdftotext_words(pdf)
    assert [w.text for w in words] == "Invoice 42 paid Total 19.10 EUR".split()


def test_pdfium_reads_back_the_text_with_real_spaces():
    text = pdfcheck.pdfium_text(image_pdf(page_with(UPRIGHT)))
    assert text.split() == "Invoice 42 paid Total 19.10 EUR".split()
    assert "Invoice 42 paid" in text  # the spaces are characters of the layer, not guessed from gaps


@pytest.mark.parametrize("lines", [UPRIGHT, TURNED], ids=["upright", "turned"])
def test_word_positions_lie_within_a_word_height_of_the_json_boxes(lines):
    page = page_with(lines)
    ((size, words),) = pdfcheck.pdftotext_words(image_pdf(page))
    pdfcheck.assert_words_placed(page.to_dict(), size, words)


def test_turned_lines_read_in_their_own_direction():
    pdf = image_pdf(page_with(TURNED))
    ((_size, words),) = pdfcheck.pdftotext_words(pdf)
    read = " ".join(w.text for w in words)
    assert all(line in read for line, *_ in TURNED), read  # each line's words in order, no letters reversed
    # PDFium sees every turned word too (it orders an upside-down line's words by x, its own choice).
    assert sorted(pdfcheck.pdfium_text(pdf).split()) == sorted(" ".join(line for line, *_ in TURNED).split())


def test_chinese_is_written_without_spaces_and_found_by_search():
    page = page_with([("正品 促销", 0, 100, 300), ("我是中国人", 0, 100, 400)])
    pdf = image_pdf(page)
    assert pdfcheck.pdfium_finds(pdf, "正品促销")
    assert pdfcheck.pdfium_finds(pdf, "我是中国人")
    font = build_font(font_characters(["正品 促销", "我是中国人"]))
    shown = layer_content(page, (1.0, 0.0, 0.0, -1.0, 0.0, 1000.0), font, "F").decode()
    glyphs = {f"{gid:04X}": ch for ch, gid in font.gids.items()}
    texts = ["".join(glyphs[run[i : i + 4]] for i in range(0, len(run), 4)) for run in re.findall(r"<([0-9A-F]+)> Tj", shown)]
    assert " " not in texts  # no space between the two Chinese words
    assert "".join(texts) == "正品促销我是中国人"


def test_font_has_a_unicode_cmap_for_every_character():
    chars = font_characters(["Grüße €", "正品促销", "𠀋 emoji 😀"])
    font = build_font(chars)
    cmap = TTFont(io.BytesIO(font.program)).getBestCmap()
    assert {chr(code) for code in cmap} == chars
    assert sorted(font.gids.values()) == list(range(1, len(chars) + 1))  # glyph 0 (.notdef) is never shown
    assert build_font(chars).program == font.program  # deterministic


def test_every_script_is_extractable_through_the_pdf():
    page = page_with([("Grüße €5 😀", 0, 100, 300), ("Ελληνικά Кириллица", 0, 100, 400)])
    text = pdfcheck.pdfium_text(image_pdf(page))
    assert "Grüße €5 😀" in text and "Ελληνικά Кириллица" in text


# ---------------------------------------------------------------- the pictures


def test_jpeg_is_embedded_byte_for_byte():
    data = jpeg_bytes(640, 480, seed=3)
    picture = jpeg_picture(data, turn_degrees=0, mirrored=False, dpi=None)
    assert picture is not None
    encoding = encode_pdf(make_doc([page_with(UPRIGHT, 640, 480)], "scan.jpg"), ImagePages((picture,)), pdfa=False,
                          existing_text="skip")  # fmt: skip
    with pikepdf.open(io.BytesIO(encoding.data)) as pdf:
        (image,) = [obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image"]
        assert image.Filter == pikepdf.Name.DCTDecode
        assert hashlib.sha256(image.read_raw_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert len(encoding.data) <= len(data) * 1.1 + 20_000


EXIF_ORIENTATIONS = [1, 2, 3, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("orientation", EXIF_ORIENTATIONS)
def test_exif_orientation_is_applied_by_placement_not_by_re_encoding(orientation, tmp_path):
    from ocrd.config.load import config_from_mapping
    from ocrd.intake.gate import open_document

    stored = np.full((120, 200, 3), 255, np.uint8)
    stored[10:40, 10:60] = 0  # a black block near the stored top-left corner
    stored[80:110, 150:190] = 128
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    path.write_bytes(pil_bytes(Image.fromarray(stored[:, :, ::-1]), "JPEG", quality=95, exif=exif.tobytes()))
    document = open_document(path, config_from_mapping({}, tmp_path).intake)
    (page,) = document.pages()
    picture = jpeg_picture(document.data, turn_degrees=page.orientation_applied, mirrored=page.mirrored, dpi=(72.0, 72.0))
    assert picture is not None
    result = PageResult(page.image.shape[1], page.image.shape[0], ())
    pdf = encode_pdf(make_doc([result], "photo.jpg"), ImagePages((picture,)), pdfa=False, existing_text="skip").data
    shown = pdfcheck.render(pdf)  # 72 dpi: one pixel per point, the JPEG's own size
    expected = cv2.cvtColor(page.image, cv2.COLOR_BGR2GRAY)
    assert shown.shape == expected.shape
    assert np.abs(shown.astype(int) - expected.astype(int)).mean() < 6


def test_page_size_comes_from_the_resolution_or_300_dpi():
    assert plausible_dpi((150.0, 150.0), 1000, 1000) == (150.0, 150.0)
    assert plausible_dpi(None, 1000, 1000) == (300.0, 300.0)
    assert plausible_dpi((1.0, 1.0), 1000, 1000) == (300.0, 300.0)  # JFIF's "aspect ratio only"
    assert plausible_dpi((72.0, 300.0), 1000, 1000) == (300.0, 300.0)  # axes 4x apart: a broken field
    x_dpi, _ = plausible_dpi((50.0, 50.0), 30_000, 100)
    assert 30_000 * 72 / x_dpi <= 14_400  # never past a PDF reader's 200-inch page
    page = page_with(UPRIGHT, 850, 1100)
    ((size, _words),) = pdfcheck.pdftotext_words(image_pdf(page, white(850, 1100), dpi=(100.0, 100.0)))
    assert size == pytest.approx((612.0, 792.0))  # 8.5 x 11 in


@pytest.mark.parametrize("kind", ["bilevel", "gray", "color"])
def test_other_pages_are_embedded_losslessly(kind):
    rng = np.random.default_rng(1)
    if kind == "bilevel":
        gray = np.where(rng.random((300, 400)) > 0.7, 0, 255).astype(np.uint8)
        image = np.repeat(gray[:, :, None], 3, axis=2)
    elif kind == "gray":
        image = np.repeat(rng.integers(0, 256, (300, 400, 1), dtype=np.uint8), 3, axis=2)
    else:
        image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    pdf = image_pdf(page_with(UPRIGHT, 400, 300), image)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        (stream,) = [o for o in doc.objects if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == "/Image"]
        assert stream.Filter == pikepdf.Name.FlateDecode
        assert int(stream.BitsPerComponent) == (1 if kind == "bilevel" else 8)
        assert stream.ColorSpace == (pikepdf.Name.DeviceRGB if kind == "color" else pikepdf.Name.DeviceGray)
        decoded = np.asarray(pikepdf.PdfImage(stream).as_pil_image().convert("RGB"))[:, :, ::-1]
    assert np.array_equal(decoded, image)


# ---------------------------------------------------------------- PDF/A-2b


@pytest.mark.parametrize("source", ["png", "jpeg"])
def test_pdfa_2b_passes_pikepdfs_validator(source):
    from pikepdf import pdfa

    page = page_with(UPRIGHT + [("正品促销", 0, 100, 600)], 640, 800)
    if source == "jpeg":
        picture = jpeg_picture(jpeg_bytes(640, 800), turn_degrees=0, mirrored=False, dpi=None)
    else:
        picture = pixels_picture(white(640, 800), None)
    encoding = encode_pdf(make_doc([page], "in/scan.jpg"), ImagePages((picture,)), pdfa=True, existing_text="skip")
    assert encoding.omitted == ()
    report = pdfa.validate_written(io.BytesIO(encoding.data), "2b")
    assert report.passed, report.summary()
    facts = pdfcheck.pdfa_structure(encoding.data)
    assert (facts["icc_class"], facts["icc_colour_space"]) == (b"mntr", b"RGB ")
    assert (facts["part"], facts["conformance"]) == ("2", "B")
    assert facts["title"] == "scan.jpg" and facts["producer"] == "ocrd 0.1.0"
    assert facts["created"].startswith("2024-05-01T12:00:00")
    assert facts["fonts_embedded"] and not facts["encrypted"] and not facts["page_groups"]


def test_without_pdfa_the_pdf_does_not_claim_it():
    facts = pdfcheck.pdfa_structure(image_pdf(page_with(UPRIGHT)))
    assert facts["part"] is None and facts["icc_class"] == b""


def test_a_cmyk_jpeg_is_not_passed_through_into_pdfa():
    cmyk = pil_bytes(Image.new("CMYK", (40, 30), (0, 50, 100, 0)), "JPEG")
    assert jpeg_picture(cmyk, turn_degrees=0, mirrored=False, dpi=None, allow_cmyk=False) is None
    passthrough = jpeg_picture(cmyk, turn_degrees=0, mirrored=False, dpi=None)
    assert passthrough is not None and passthrough.color_space == "DeviceCMYK" and passthrough.inverted_cmyk
