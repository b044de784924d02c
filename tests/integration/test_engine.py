"""Integration tests of OcrEngine.read with the real PP-OCR models on text the tests render."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from tests.fonts import CJK_CHARS, CJK_FONT, latin_font_path, render_lines
from ocrd.engine.ocr_engine import OcrEngine
from ocrd.engine.results import PageResult

LATIN_FONT = latin_font_path()
needs_latin_font = pytest.mark.skipif(
    LATIN_FONT is None,
    reason="no DejaVuSans.ttf found (install matplotlib or the fonts-dejavu-core package) to render Latin text",
)

ENGLISH = ["Invoice 42", "Total 19.10"]
CHINESE = ["我是中国人", "正品促销"]
assert set("".join(CHINESE)) <= CJK_CHARS, "add new characters to the font subset (tests/fixtures/fonts/README.md)"


def texts(page: PageResult) -> list[str]:
    return [line.text for line in page.lines]


def rotate_180(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(cv2.rotate(image, cv2.ROTATE_180))


# ---------------------------------------------------------------- reading text


@needs_latin_font
@pytest.mark.parametrize("text", ENGLISH)
def test_english_line_reads_exactly(engine, text):
    image, _ = render_lines([text], LATIN_FONT)
    page = engine.read(image)
    assert texts(page) == [text]
    (line,) = page.lines
    assert 0.8 <= line.confidence <= 1.0
    assert 0.5 <= line.det_score <= 1.0


@pytest.mark.parametrize("text", CHINESE)
def test_chinese_line_reads_exactly(engine, text):
    image, _ = render_lines([text], CJK_FONT, size_px=36)
    assert texts(engine.read(image)) == [text]


@pytest.mark.parametrize(
    ("text", "font"),
    [pytest.param("Invoice 42", "latin", marks=needs_latin_font), ("我是中国人", "cjk"), ("正品促销", "cjk")],
)
def test_upside_down_line_reads_with_classifier(engine, engine_without_classifier, text, font):
    image, _ = render_lines([text], LATIN_FONT if font == "latin" else CJK_FONT, size_px=36)
    upside_down = rotate_180(image)
    assert texts(engine.read(upside_down)) == [text]
    # Control: the rotation is a real challenge, the classifier is what fixes it.
    assert texts(engine_without_classifier.read(upside_down)) != [text]


PAGE = ["Invoice 1042", "Date 2025-03-01", "Customer Acme Ltd", "Item A 12.50", "Item B 3.20",
        "Item C 7.75", "Item D 1.05", "Subtotal 24.50", "Tax 2.45", "Total 26.95"]  # fmt: skip


def _count_classifier_calls(engine, monkeypatch) -> list[int]:
    """How many lines each classification round took (the screen, then the rest if it found a turned one)."""
    calls: list[int] = []
    classifier = engine._classifier
    real_classify = classifier._classify
    monkeypatch.setattr(classifier, "_classify", lambda crops, indices, *rest: calls.append(len(indices))
                        or real_classify(crops, indices, *rest))  # fmt: skip
    return calls


@needs_latin_font
def test_an_upright_page_is_screened_by_its_6_widest_lines(engine, monkeypatch):
    image, _ = render_lines(PAGE, LATIN_FONT)
    calls = _count_classifier_calls(engine, monkeypatch)
    assert texts(engine.read(image)) == PAGE
    assert calls == [6], "only the 6 widest of 10 lines are classified on an upright page"


@needs_latin_font
def test_an_upside_down_page_is_found_by_the_screen_and_every_line_turned(engine, monkeypatch):
    image, _ = render_lines(PAGE, LATIN_FONT)
    calls = _count_classifier_calls(engine, monkeypatch)
    # Each line reads right, and the page is read from its own top (most of its lines were turned).
    page = engine.read(rotate_180(image))
    assert texts(page) == PAGE
    assert page.text == "\n".join(PAGE)
    # The boxes keep the coordinates of the page as displayed: the first line read is the lowest there.
    tops = [min(y for _, y in line.box) for line in page.lines]
    assert tops == sorted(tops, reverse=True)
    assert calls == [6, 4], "the screen found upside-down lines, so the other 4 were classified too"


LONG_LINES = [
    "Deliveries are made to the address given in the order confirmation",
    "Terms and conditions of delivery apply to every order placed with us",
    "Our office is closed on public holidays and answers on the next day",
]


@needs_latin_font
@pytest.mark.parametrize("turned", [False, True], ids=["upright", "upside-down"])
def test_long_lines_are_classified_by_windows_and_read_right(engine, turned):
    """A letter's lines are 30-40 times as long as high: squeezed whole into the classifier's 4:1 input
    they were "turned" while upright (and left turned while turned); read by windows they are not."""
    image, _ = render_lines(LONG_LINES, LATIN_FONT, size_px=34)
    page = engine.read(rotate_180(image) if turned else image)
    assert texts(page) == LONG_LINES


@needs_latin_font
@pytest.mark.parametrize("rotate", [cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE], ids=["cw", "ccw"])
def test_a_page_fed_sideways_is_read_from_its_own_top(engine, rotate):
    """A landscape scan, or a page put on the glass sideways: every line reads, in the page's own order."""
    image, _ = render_lines(PAGE, LATIN_FONT)
    page = engine.read(np.ascontiguousarray(cv2.rotate(image, rotate)))
    assert texts(page) == PAGE
    # The boxes keep the coordinates of the page as displayed: its lines are columns there.
    widths = [max(x for x, _ in line.box) - min(x for x, _ in line.box) for line in page.lines]
    heights = [max(y for _, y in line.box) - min(y for _, y in line.box) for line in page.lines]
    assert all(h > w for w, h in zip(widths, heights))


@pytest.mark.parametrize("fill", [0, 255], ids=["black", "white"])
def test_blank_page_gives_zero_lines(engine, fill):
    page = engine.read(np.full((240, 320, 3), fill, np.uint8))
    assert page.lines == ()
    assert page.text == ""
    assert (page.width, page.height) == (320, 240)


# ---------------------------------------------------------------- geometry of results


@needs_latin_font
def test_boxes_lie_inside_the_page_and_cover_the_text(engine):
    lines = ["Invoice 42", "Total 19.10", "Paid by card"]
    image, ink_boxes = render_lines(lines, LATIN_FONT, margin_px=40)
    # Put the text off-centre on a larger page so a box at a wrong offset or scale cannot pass.
    page_img = np.full((image.shape[0] + 200, image.shape[1] + 300, 3), 255, np.uint8)
    page_img[150 : 150 + image.shape[0], 260 : 260 + image.shape[1]] = image
    page = engine.read(page_img)
    assert texts(page) == lines
    height, width = page_img.shape[:2]
    assert (page.width, page.height) == (width, height)
    for line, (x0, y0, x1, y1) in zip(page.lines, ink_boxes):
        quad = np.array(line.box)
        assert quad.shape == (4, 2)
        assert (quad[:, 0] >= 0).all() and (quad[:, 0] <= width - 1).all()
        assert (quad[:, 1] >= 0).all() and (quad[:, 1] <= height - 1).all()
        bx0, by0 = quad.min(axis=0)
        bx1, by1 = quad.max(axis=0)
        ink = (x0 + 260, y0 + 150, x1 + 260, y1 + 150)
        # The box covers the ink (a few px of tolerance) and is not much larger than the line.
        assert bx0 <= ink[0] + 3 and by0 <= ink[1] + 3 and bx1 >= ink[2] - 3 and by1 >= ink[3] - 3
        assert bx0 >= ink[0] - 20 and by0 >= ink[1] - 20 and bx1 <= ink[2] + 20 and by1 <= ink[3] + 20
        # Clockwise from top-left.
        tl, tr, br, bl = quad
        assert tl[0] < tr[0] and bl[0] < br[0] and tl[1] < bl[1] and tr[1] < br[1]


@needs_latin_font
def test_lines_come_in_reading_order(engine):
    lines = ["Total 19.10", "Invoice 42", "Paid by card"]  # not alphabetical: order must come from position
    image, _ = render_lines(lines, LATIN_FONT)
    page = engine.read(image)
    assert texts(page) == lines
    assert page.text == "\n".join(lines)
    tops = [min(y for _, y in line.box) for line in page.lines]
    assert tops == sorted(tops)


@needs_latin_font
def test_two_columns_read_row_by_row(engine):
    left, _ = render_lines(["Invoice 42", "Total 19.10"], LATIN_FONT)
    right, _ = render_lines(["我是中国人", "正品促销"], CJK_FONT, size_px=32)
    h = max(left.shape[0], right.shape[0])
    page_img = np.full((h, left.shape[1] + 120 + right.shape[1], 3), 255, np.uint8)
    page_img[: left.shape[0], : left.shape[1]] = left
    page_img[: right.shape[0], left.shape[1] + 120 :] = right
    page = engine.read(page_img)
    assert texts(page) == ["Invoice 42", "我是中国人", "Total 19.10", "正品促销"]
    assert page.text == "Invoice 42 我是中国人\nTotal 19.10 正品促销"  # one printed row, one line of text


# ---------------------------------------------------------------- contract of the engine object


@needs_latin_font
def test_repeated_reads_are_identical(engine):
    image, _ = render_lines(["Invoice 42", "Total 19.10"], LATIN_FONT)
    first = engine.read(image)
    for _ in range(3):
        again = engine.read(image)
        assert again.lines == first.lines
    assert first.lines  # not trivially equal


def test_read_passes_page_index_and_orientation_through(engine):
    image, _ = render_lines(["正品促销"], CJK_FONT, size_px=36)
    page = engine.read(image, index=3, orientation_applied=90)
    assert (page.index, page.orientation_applied) == (3, 90)
    assert page.timings.detect_ms > 0 and page.timings.recognize_ms > 0


@pytest.mark.parametrize(
    "bad",
    [np.zeros((20, 20), np.uint8), np.zeros((20, 20, 4), np.uint8), np.zeros((20, 20, 3), np.float32)],
    ids=["gray", "bgra", "float"],
)
def test_read_refuses_non_bgr_uint8(engine, bad):
    with pytest.raises(ValueError, match="BGR uint8"):
        engine.read(bad)


def test_describe_lists_model_files_with_sha256(engine: OcrEngine):
    info = engine.describe()
    assert set(info["models"]) == {"det", "cls", "rec"}
    for role, entry in info["models"].items():
        assert entry["file"].endswith(".onnx"), role
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), role
        pinned = {f.role: f.sha256 for f in engine.model_set.files()}[role]
        assert entry["sha256"] == pinned
    assert info["model_set"] == "ppocrv6-small"
    assert info["params"]["det_box_thresh"] == 0.5
    assert info["params"]["cls_enabled"] is True
    assert info["ocrd_version"]


def test_describe_without_classifier_says_so(engine_without_classifier):
    assert engine_without_classifier.describe()["params"]["cls_enabled"] is False
