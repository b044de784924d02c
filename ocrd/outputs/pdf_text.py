"""The invisible text layer of one PDF page: a content stream that shows each line's words where the page shows them; it builds no PDF objects and knows no image or input format.

Render mode 3 (neither fill nor stroke): the text is there for search, copy and selection, never
seen. One text object per line, lines in the reading order of the page's blocks. Each word gets a
text matrix that puts its glyph run on the word's box as read: origin on the box's bottom edge at
the word's start, the run stretched along the writing direction to the word's width and one em
tall across it, so sideways, upside-down and slanted lines lie as printed. Between two words a real
space character spans the gap (extractors see a word break), except between two CJK characters,
which are written without spaces.

Coordinates come in page pixels as displayed (the result JSON's); `to_pdf`, an affine map, takes
them to the page's PDF user space (the image's placement, or a PDF page's crop box and /Rotate).
"""

from __future__ import annotations

from collections.abc import Iterator

from ocrd.engine.results import PageResult, Quad, TextLine
from ocrd.outputs.pdf_font import ADVANCE, ASCENT, DESCENT, UNITS_PER_EM, GlyphlessFont
from ocrd.outputs.reading import reading_order, space_between

# (a, b, c, d, e, f): pixel (x, y) -> (a*x + c*y + e, b*x + d*y + f), as a PDF matrix.
Affine = tuple[float, float, float, float, float, float]
Point = tuple[float, float]
_MIN_SIDE_PT = 0.01  # a box thinner than this has no direction to place text along
_SPACE_SHARE = 0.25  # a space squeezed between touching words still gets this much of a line height


def layer_content(page: PageResult, to_pdf: Affine, font: GlyphlessFont, font_name: str) -> bytes:
    """The content stream drawing `page`'s text invisibly with `font` (a resource named `font_name`)."""
    out: list[str] = []
    for line in reading_order(page):
        shown = [piece for piece in _pieces(line, font) if piece[0]]
        placed = [(text, _matrix(quad, len(text), to_pdf)) for text, quad in shown]
        placed = [(text, matrix) for text, matrix in placed if matrix is not None]
        if not placed:
            continue
        out.append(f"BT /{font_name} 1 Tf 3 Tr")
        out.extend(f"{' '.join(pdf_number(v) for v in matrix)} Tm <{font.encode(text).hex().upper()}> Tj" for text, matrix in placed)
        out.append("ET")
    return ("\n".join(out) + "\n").encode("ascii") if out else b""


def layer_texts(page: PageResult) -> Iterator[str]:
    """Every text the layer of `page` shows (for the font's character set)."""
    for line in page.lines:
        yield line.text


def _pieces(line: TextLine, font: GlyphlessFont) -> Iterator[tuple[str, Quad]]:
    """(text, quad as read) for each word of `line` and each space between two words."""
    reading = line.reading_quad or line.box
    words = _word_spans(line, reading)
    for k, (text, start, end) in enumerate(words):
        yield "".join(ch for ch in text if ch in font.gids), _part(reading, start, end)
        if k + 1 < len(words):
            following, next_start = words[k + 1][0], words[k + 1][1]
            if not space_between(text, following):
                continue
            gap_start, gap_end = end, next_start
            minimum = _SPACE_SHARE * _height(reading) / max(_length(reading), 1e-9)
            if gap_end - gap_start < minimum:  # touching or overlapping boxes: a narrow space at the join
                middle = (gap_start + gap_end) / 2
                gap_start, gap_end = middle - minimum / 2, middle + minimum / 2
            yield " ", _part(reading, gap_start, gap_end)


def _word_spans(line: TextLine, reading: Quad) -> list[tuple[str, float, float]]:
    """(text, start, end) per word as fractions of the reading width: from the characters' places when
    known, else from the word boxes projected on the writing direction, else shared out by length."""
    if line.words and len(line.chars) == len(line.text):
        spans, offset = [], 0
        for word in line.words:
            first = line.text.find(word.text, offset)
            if first < 0:
                break
            last = first + len(word.text) - 1
            spans.append((word.text, line.chars[first][0], line.chars[last][1]))
            offset = last + 1
        else:
            return spans
    if line.words:
        return [(w.text, *_projected(reading, w.box)) for w in line.words]
    words = [w for w in line.text.split(" ") if w]
    total = sum(len(w) for w in words) + max(len(words) - 1, 0)
    spans, offset = [], 0
    for word in words:
        spans.append((word, offset / max(total, 1), (offset + len(word)) / max(total, 1)))
        offset += len(word) + 1
    return spans


def _projected(reading: Quad, box: Quad) -> tuple[float, float]:
    """The span of `box` along the reading quad's bottom edge (R3 -> R2), as fractions of its length."""
    (x3, y3), (x2, y2) = reading[3], reading[2]
    dx, dy = x2 - x3, y2 - y3
    norm = dx * dx + dy * dy or 1e-9
    ts = [((x - x3) * dx + (y - y3) * dy) / norm for x, y in box]
    return min(ts), max(ts)


def _part(reading: Quad, start: float, end: float) -> Quad:
    """The part of the reading quad between `start` and `end`, in the same corner order (as read)."""
    r0, r1, r2, r3 = reading
    return (_lerp(r0, r1, start), _lerp(r0, r1, end), _lerp(r3, r2, end), _lerp(r3, r2, start))


def _matrix(quad: Quad, glyphs: int, to_pdf: Affine) -> tuple[float, ...] | None:
    """The text matrix that lays `glyphs` glyphs of size 1 on `quad` (as read), or None for a degenerate box."""
    top_left, _, bottom_right, bottom_left = (_apply(to_pdf, p) for p in quad)
    along = (bottom_right[0] - bottom_left[0], bottom_right[1] - bottom_left[1])
    up = (top_left[0] - bottom_left[0], top_left[1] - bottom_left[1])
    if glyphs == 0 or min(abs(along[0]) + abs(along[1]), abs(up[0]) + abs(up[1])) < _MIN_SIDE_PT:
        return None
    run = glyphs * ADVANCE / UNITS_PER_EM  # the run's width in text space at font size 1
    em = (ASCENT - DESCENT) / UNITS_PER_EM
    baseline = -DESCENT / UNITS_PER_EM  # the baseline sits this far up the box: descenders fill the rest
    return (
        along[0] / run, along[1] / run, up[0] / em, up[1] / em,
        bottom_left[0] + up[0] * baseline, bottom_left[1] + up[1] * baseline,
    )  # fmt: skip


def _apply(m: Affine, p: Point) -> Point:
    return (m[0] * p[0] + m[2] * p[1] + m[4], m[1] * p[0] + m[3] * p[1] + m[5])


def _lerp(p: Point, q: Point, t: float) -> Point:
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def _length(q: Quad) -> float:
    (x3, y3), (x2, y2) = q[3], q[2]
    return ((x2 - x3) ** 2 + (y2 - y3) ** 2) ** 0.5


def _height(q: Quad) -> float:
    (x3, y3), (x0, y0) = q[3], q[0]
    return ((x0 - x3) ** 2 + (y0 - y3) ** 2) ** 0.5


def pdf_number(value: float) -> str:
    """A PDF number: fixed point (PDF has no exponents), at most 4 decimals, no -0."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text

