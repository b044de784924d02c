"""Hand-built results for the output tests: lines with words and character places as the engine gives them, at any turn, and documents around them; no model, no file."""

from __future__ import annotations

import math

from ocrd.engine.results import DocumentResult, PageResult, SourceInfo, TextLine, Word

SHA = "ab" * 32


def turned_line(text: str, x: float, y: float, *, degrees: int, char_w: float = 24, h: float = 40) -> TextLine:
    """A line of `text` whose writing runs `degrees` counter-clockwise from the page's x axis (0, 90, 180,
    270), starting at (x, y) on its baseline; words and character places as the engine gives them."""
    n = len(text)
    length = n * char_w
    rad = math.radians(degrees)
    along = (math.cos(rad), -math.sin(rad))  # page y runs down
    up = (along[1], -along[0])  # a quarter turn counter-clockwise of the writing direction, on screen
    r3 = (x, y)
    r2 = (x + along[0] * length, y + along[1] * length)
    r0 = (x + up[0] * h, y + up[1] * h)
    r1 = (r2[0] + up[0] * h, r2[1] + up[1] * h)
    reading = (r0, r1, r2, r3)
    chars = tuple((i / n, (i + 1) / n) for i in range(n))
    words, offset = [], 0
    for word in text.split(" "):
        start, end = offset / n, (offset + len(word)) / n
        corners = [
            (r0[0] + (r1[0] - r0[0]) * t, r0[1] + (r1[1] - r0[1]) * t) for t in (start, end)
        ] + [(r3[0] + (r2[0] - r3[0]) * t, r3[1] + (r2[1] - r3[1]) * t) for t in (end, start)]
        words.append(Word(word, 0.93, _box(corners)))
        offset += len(word) + 1
    return TextLine(text, 0.93, 0.9, _box(list(reading)), words=tuple(words), reading_quad=reading, chars=chars)


def _box(points) -> tuple:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return ((min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys)))


def make_doc(pages: list[PageResult], rel_path: str = "a/scan.png") -> DocumentResult:
    return DocumentResult(
        job_id="01JOB", created_at="2024-05-01T12:00:00.000Z",
        source=SourceInfo(inbox="scans", rel_path=rel_path, sha256=SHA, bytes=1, format="png", pages=len(pages)),
        engine={"ocrd_version": "0.1.0", "model_set": "ppocrv6-small", "models": {}, "params": {}},
        pages=tuple(pages),
    )  # fmt: skip
