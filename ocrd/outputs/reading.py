"""What the PDF, hOCR and ALTO writers walk alike: a page's lines in reading order, a line's words, where a space belongs, axis-aligned boxes; pure, no output format."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator

from ocrd.engine.results import PageResult, Quad, TextBlock, TextLine, Word


def blocks_in_order(page: PageResult) -> Iterator[tuple[TextBlock, list[TextLine]]]:
    """Each block of the page's layout with its lines, row after row, left to right in a row."""
    for block in page.layout():
        yield block, [page.lines[index] for row in block.rows for index in row]


def reading_order(page: PageResult) -> Iterator[TextLine]:
    """The page's lines block after block, row after row, left to right in a row."""
    for _block, lines in blocks_in_order(page):
        yield from lines


def words_of(line: TextLine) -> tuple[Word, ...]:
    """The line's words; a line built without them is one word with the line's box."""
    if line.words:
        return line.words
    return (Word(line.text, line.confidence, line.box),) if line.text else ()


def is_cjk(ch: str) -> bool:
    """Han ideographs, kana and the CJK symbols and full-width forms: scripts written without spaces."""
    code = ord(ch)
    return (
        0x2E80 <= code <= 0x9FFF  # radicals, CJK punctuation, kana, CJK unified (and extension A)
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # half-width and full-width forms
        or 0x20000 <= code <= 0x3FFFF  # extensions B and later
    ) and not unicodedata.category(ch).startswith("Z")


def space_between(left: str, right: str) -> bool:
    """Whether a space separates two neighbouring words: always, except between two CJK characters."""
    return not (left and right and is_cjk(left[-1]) and is_cjk(right[0]))


def bbox(quad: Quad) -> tuple[int, int, int, int]:
    """The whole pixels covering `quad`: (x0, y0, x1, y1), x1 and y1 exclusive."""
    xs, ys = [x for x, _ in quad], [y for _, y in quad]
    return (math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys)))


def union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def baseline_of(line: TextLine) -> tuple[tuple[float, float], tuple[float, float]]:
    """The line's bottom edge as read (R3 -> R2), in page pixels: where its text stands."""
    reading = line.reading_quad or line.box
    return reading[3], reading[2]


def text_angle(line: TextLine) -> float:
    """The writing direction in degrees counter-clockwise from the page's x axis (upright text: 0)."""
    (x3, y3), (x2, y2) = baseline_of(line)
    return math.degrees(math.atan2(-(y2 - y3), x2 - x3)) % 360


def text_height(line: TextLine) -> float:
    """The line's height across its writing direction (|R3 R0|), in page pixels."""
    reading = line.reading_quad or line.box
    (x0, y0), (x3, y3) = reading[0], reading[3]
    return math.hypot(x0 - x3, y0 - y3)
