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


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    confidence: float  # mean per-character probability of the recognizer, 0..1
    det_score: float  # mean text probability inside the detected box, 0..1
    box: Quad

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(float(self.confidence), 4),
            "det_score": round(float(self.det_score), 4),
            "box": [[round(float(x), 1), round(float(y), 1)] for x, y in self.box],
        }


@dataclass(frozen=True, slots=True)
class PageTimings:
    detect_ms: float = 0.0
    classify_ms: float = 0.0
    recognize_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class PageResult:
    width: int
    height: int
    lines: tuple[TextLine, ...]
    orientation_applied: int = 0  # degrees clockwise the source was rotated by EXIF handling
    timings: PageTimings = field(default_factory=PageTimings)
    index: int = 0
    # The printed row of each line, counted top to bottom (lines of one row share a number); empty:
    # every line is a row of its own. A receipt's "Total" and its amount are two boxes on one row.
    rows: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        """The page's lines in reading order: the boxes of one printed row joined by a space, rows by newlines."""
        if len(self.rows) != len(self.lines):
            return "\n".join(line.text for line in self.lines)
        out: list[str] = []
        for i, line in enumerate(self.lines):
            if i and self.rows[i] == self.rows[i - 1]:
                out[-1] += " " + line.text
            else:
                out.append(line.text)
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "width": self.width,
            "height": self.height,
            "orientation_applied": self.orientation_applied,
            "lines": [line.to_dict() for line in self.lines],
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
