"""Result value objects (TextLine, PageResult, DocumentResult) and their ocrd/result/v1 JSON form.

Coordinate convention: absolute pixels of the page as displayed (after EXIF
orientation), each box four [x, y] points clockwise from the top-left corner,
lines in reading order. Pure data: no I/O, no model code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_ID = "ocrd/result/v1"

Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


def _rounded_box(box: Quad) -> list[list[float]]:
    return [[round(float(x), 1), round(float(y), 1)] for x, y in box]


@dataclass(frozen=True, slots=True)
class Word:
    """A run of a line's text between spaces, with its own box (same convention as a line's box)."""

    text: str
    confidence: float  # mean probability of its characters, 0..1
    box: Quad

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "box": _rounded_box(self.box), "confidence": round(float(self.confidence), 4)}


@dataclass(frozen=True, slots=True)
class TextLine:
    """One detected and recognised line.

    `words` joined by single spaces are `text`. Where each character lies (for a PDF text layer;
    not in the JSON): `reading_quad` is the line's box starting at the corner where its text starts,
    as read: R0 the text's top-left, R1 its top-right, R2 its bottom-right, R3 its bottom-left (for
    a line printed upside down or sideways these are not the page's top-left etc.), so R3 -> R2 (the
    box's bottom edge under the text) is the writing direction and R3 -> R0 "up" for the glyphs.
    `chars[i]` is the (start, end) of `text[i]` (spaces included) as fractions of the way from R0
    to R1 (and R3 to R2): glyph i sits in the quad lerp(R0, R1, start), lerp(R0, R1, end),
    lerp(R3, R2, end), lerp(R3, R2, start) (`ocrd.engine.geometry.span_quad` gives it ordered like
    a box). None and () when unknown.
    """

    text: str
    confidence: float  # mean per-character probability of the recognizer, 0..1
    det_score: float  # mean text probability inside the detected box, 0..1
    box: Quad
    words: tuple[Word, ...] = ()
    reading_quad: Quad | None = None
    chars: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(float(self.confidence), 4),
            "det_score": round(float(self.det_score), 4),
            "box": _rounded_box(self.box),
            "words": [word.to_dict() for word in self.words],
        }


@dataclass(frozen=True, slots=True)
class PageTimings:
    detect_ms: float = 0.0
    classify_ms: float = 0.0
    recognize_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class TextBlock:
    """A block of the page's layout (a paragraph, a heading, a column's table, a footer): its printed rows.

    `rows[r]` are indices into the page's `lines`, left to right; rows top to bottom on the page as
    read (turned upright). A receipt's "Total" and its amount are two lines of one row.
    """

    rows: tuple[tuple[int, ...], ...]
    box: Quad  # axis-aligned around its lines, page pixels as displayed

    @property
    def lines(self) -> tuple[int, ...]:
        return tuple(i for row in self.rows for i in row)

    def to_dict(self) -> dict[str, Any]:
        return {"box": _rounded_box(self.box), "lines": list(self.lines)}


def block_around(rows: tuple[tuple[int, ...], ...], lines: tuple[TextLine, ...]) -> TextBlock:
    """The block of `rows` with its box: the axis-aligned rectangle around its lines' boxes."""
    xs = [x for row in rows for i in row for x, _ in lines[i].box]
    ys = [y for row in rows for i in row for _, y in lines[i].box]
    x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    return TextBlock(rows=rows, box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


@dataclass(frozen=True, slots=True)
class PageResult:
    width: int
    height: int
    lines: tuple[TextLine, ...]  # in reading order: block after block
    orientation_applied: int = 0  # degrees clockwise the source was rotated by EXIF handling
    timings: PageTimings = field(default_factory=PageTimings)
    index: int = 0
    # The layout: blocks in reading order, covering every line once. Empty (a page built without
    # layout): each line is a row of its own in one block.
    blocks: tuple[TextBlock, ...] = ()

    def layout(self) -> tuple[TextBlock, ...]:
        if self.blocks or not self.lines:
            return self.blocks
        return (block_around(tuple((i,) for i in range(len(self.lines))), self.lines),)

    @property
    def text(self) -> str:
        """The page's text in reading order: a printed row's lines joined by a space, rows by a newline,
        blocks by a blank line."""
        return "\n\n".join(
            "\n".join(" ".join(self.lines[i].text for i in row) for row in block.rows) for block in self.layout()
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "width": self.width,
            "height": self.height,
            "orientation_applied": self.orientation_applied,
            "lines": [line.to_dict() for line in self.lines],
            "blocks": [block.to_dict() for block in self.layout()],
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class SourceInfo:
    inbox: str | None
    rel_path: str
    sha256: str
    bytes: int
    format: str
    pages: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "inbox": self.inbox,
            "rel_path": self.rel_path,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "format": self.format,
            "pages": self.pages,
        }


@dataclass(frozen=True, slots=True)
class DocumentResult:
    job_id: str
    created_at: str  # ISO 8601 UTC
    source: SourceInfo
    engine: dict[str, Any]  # ocrd_version, model_set, models{det,cls,rec: {file, sha256}}, params
    pages: tuple[PageResult, ...]
    decode_ms: float = 0.0
    total_ms: float = 0.0

    @property
    def text(self) -> str:
        """All page texts in reading order, pages separated by a form feed."""
        return "\f".join(page.text for page in self.pages)

    @property
    def line_count(self) -> int:
        return sum(len(page.lines) for page in self.pages)

    @property
    def mean_confidence(self) -> float | None:
        confs = [line.confidence for page in self.pages for line in page.lines]
        return sum(confs) / len(confs) if confs else None

    def timings_ms(self) -> dict[str, float]:
        return {
            "decode": round(self.decode_ms, 1),
            "detect": round(sum(p.timings.detect_ms for p in self.pages), 1),
            "classify": round(sum(p.timings.classify_ms for p in self.pages), 1),
            "recognize": round(sum(p.timings.recognize_ms for p in self.pages), 1),
            "total": round(self.total_ms, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_ID,
            "job_id": self.job_id,
            "created_at": self.created_at,
            "source": self.source.to_dict(),
            "engine": self.engine,
            "pages": [page.to_dict() for page in self.pages],
            "timings_ms": self.timings_ms(),
        }
