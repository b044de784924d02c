"""Integration tests of word boxes with the real engine: each word's box sits on the word as rendered,
on a page read upright, upside down and sideways."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocrd.engine.geometry import span_quad
from ocrd.engine.results import Word
from tests.fonts import CJK_FONT, latin_font_path

LATIN_FONT = latin_font_path()
needs_latin_font = pytest.mark.skipif(
    LATIN_FONT is None,
    reason="no DejaVuSans.ttf found (install matplotlib or the fonts-dejavu-core package) to render Latin text",
)

LINES = ["Invoice 1042 paid 26.95 by card", "Thank you for your order"]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def render_words(lines: list[str], font_path: Path, *, size_px: int = 34, origin: tuple[int, int] = (140, 110),
                 page: tuple[int, int] = (1000, 420)) -> tuple[np.ndarray, list[list[Box]]]:  # fmt: skip
    """Lines of words on a white page at a known place; the page and each word's ink box (PIL's textbbox)."""
    font = ImageFont.truetype(str(font_path), size_px)
    canvas = Image.new("L", page, 255)
    draw = ImageDraw.Draw(canvas)
    truth: list[list[Box]] = []
    for number, text in enumerate(lines):
        x, y = origin[0], origin[1] + number * 2 * size_px
        draw.text((x, y), text, font=font, fill=0)
        boxes, start = [], 0
        for word in text.split(" "):
            start = text.index(word, start)
            boxes.append(draw.textbbox((x + draw.textlength(text[:start], font=font), y), word, font=font))
            start += len(word)
        truth.append(boxes)
    gray = np.asarray(canvas)
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), truth


TURNS = {"180": cv2.ROTATE_180, "cw": cv2.ROTATE_90_CLOCKWISE, "ccw": cv2.ROTATE_90_COUNTERCLOCKWISE}


def turn_box(box: Box, width: int, height: int, turn: str) -> Box:
    """Where an ink box of a `width` x `height` page lies once the page is turned as cv2.rotate does."""
    x0, y0, x1, y1 = box
    return {
        "upright": (x0, y0, x1, y1),
        "180": (width - x1, height - y1, width - x0, height - y0),
        "cw": (height - y1, x0, height - y0, x1),
        "ccw": (y0, width - x1, y1, width - x0),
    }[turn]


def turned(image: np.ndarray, truth: list[list[Box]], turn: str) -> tuple[np.ndarray, list[list[Box]]]:
    """The page turned as cv2.rotate does, with the ink boxes moved along."""
    h, w = image.shape[:2]
    moved = [[turn_box(b, w, h, turn) for b in line] for line in truth]
    return (image if turn == "upright" else np.ascontiguousarray(cv2.rotate(image, TURNS[turn]))), moved


def centre(quad) -> np.ndarray:
    return np.asarray(quad, dtype=np.float64).mean(axis=0)


def assert_on_the_ink(word, ink: Box, slack_px: float = 1.0) -> None:
    cx, cy = centre(word.box)
    x0, y0, x1, y1 = ink
    assert x0 - slack_px <= cx <= x1 + slack_px and y0 - slack_px <= cy <= y1 + slack_px, (word.text, (cx, cy), ink)


@needs_latin_font
@pytest.mark.parametrize("turn", ["upright", "180", "cw", "ccw"])
def test_each_word_box_lies_on_its_word(engine, turn):
    image, truth = turned(*render_words(LINES, LATIN_FONT), turn)
    page = engine.read(image)
    assert [line.text for line in page.lines] == LINES
    for line, inks in zip(page.lines, truth):
        assert [w.text for w in line.words] == line.text.split(" ")
        assert " ".join(w.text for w in line.words) == line.text
        assert len(line.chars) == len(line.text)
        for word, ink in zip(line.words, inks):
            assert_on_the_ink(word, ink)
            assert 0.5 <= word.confidence <= 1.0
            # Inside the line's box, and clockwise from the top-left like it.
            quad = np.asarray(word.box, dtype=np.float32)
            line_quad = np.asarray(line.box, dtype=np.float32).reshape(-1, 1, 2)
            assert all(cv2.pointPolygonTest(line_quad, (float(x), float(y)), True) >= -1 for x, y in quad)
            x, y = quad[:, 0], quad[:, 1]
            assert float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)) > 0
        # Words follow each other the way the line reads on the page as displayed.
        centres = np.array([centre(w.box) for w in line.words])
        along = {"upright": centres[:, 0], "180": -centres[:, 0], "cw": centres[:, 1], "ccw": -centres[:, 1]}[turn]
        assert (np.diff(along) > 0).all()


@needs_latin_font
def test_word_boxes_are_in_the_json(engine):
    image, _ = render_words(LINES[:1], LATIN_FONT)
    (line,) = engine.read(image).lines
    data = line.to_dict()
    assert [w["text"] for w in data["words"]] == LINES[0].split(" ")
    assert all(len(w["box"]) == 4 and all(len(p) == 2 for p in w["box"]) for w in data["words"])


@pytest.mark.parametrize("turn", ["upright", "180"])
def test_a_chinese_line_is_one_word_that_rebuilds_it(engine, turn):
    text = "我是中国人"
    upright, truth = render_words([text], CJK_FONT, size_px=36)
    image, truth = turned(upright, truth, turn)
    (line,) = engine.read(image).lines
    assert line.text == text
    assert [w.text for w in line.words] == [text]
    assert_on_the_ink(line.words[0], truth[0][0])
    # Each character's place (where a PDF text layer puts its glyph) lies on that character.
    assert len(line.chars) == len(text)
    font = ImageFont.truetype(str(CJK_FONT), 36)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    height, width = upright.shape[:2]
    for i, (char, (start, end)) in enumerate(zip(text, line.chars)):
        ink = probe.textbbox((140 + probe.textlength(text[:i], font=font), 110), char, font=font)
        glyph = span_quad(np.asarray(line.reading_quad), start, end)
        assert_on_the_ink(Word(char, 1.0, glyph), turn_box(ink, width, height, turn))
