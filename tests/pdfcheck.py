"""Reading PDFs back for the output tests: text and word boxes from poppler's pdftotext and from PDFium, rendering, search, PDF/A structure; must not write outside the test's tmp dir.

pdftotext is Debian's poppler-utils (installed by .ci/run); a test that needs it skips with the
reason when it is absent. Word boxes come back in PDF points of the page as displayed, top-left
origin (pdftotext -bbox's convention); `to_pixels` scales them to the result JSON's pixels.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest

_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')
_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">')


@dataclass(frozen=True)
class PdfWord:
    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1: points from the displayed page's top-left


def require_pdftotext() -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.skip("pdftotext (Debian's poppler-utils) is not installed; .ci/run installs it as root")
    return tool


def pdftotext_words(pdf: bytes) -> list[tuple[tuple[float, float], list[PdfWord]]]:
    """Per page: (displayed page size in points, its words with boxes) as poppler reads them (crop box,
    turned by /Rotate: the page as a viewer shows it)."""
    tool = require_pdftotext()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.pdf"
        path.write_bytes(pdf)
        html = subprocess.run([tool, "-bbox", "-cropbox", str(path), "-"], capture_output=True, check=True, text=True).stdout
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        turned = [int(page.obj.get("/Rotate", 0)) % 180 == 90 for page in doc.pages]
    pages = []
    for chunk, sideways in zip(html.split("<page ")[1:], turned):
        size = _PAGE.search("<page " + chunk)
        assert size is not None
        words = [PdfWord(unescape(m[5]), (float(m[1]), float(m[2]), float(m[3]), float(m[4]))) for m in _WORD.finditer(chunk)]
        width, height = float(size[1]), float(size[2])  # pdftotext gives the box's size before /Rotate
        pages.append(((height, width) if sideways else (width, height), words))
    return pages


def pdftotext_text(pdf: bytes) -> str:
    tool = require_pdftotext()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.pdf"
        path.write_bytes(pdf)
        return subprocess.run([tool, "-layout", str(path), "-"], capture_output=True, check=True, text=True).stdout


def pdfium_text(pdf: bytes, index: int = 0) -> str:
    """The page's text as PDFium extracts it (what a Chromium viewer copies)."""
    doc = pdfium.PdfDocument(pdf)
    try:
        textpage = doc[index].get_textpage()
        return textpage.get_text_range()
    finally:
        doc.close()


def pdfium_finds(pdf: bytes, phrase: str, index: int = 0) -> bool:
    """Whether PDFium's text search (a viewer's Ctrl-F) finds `phrase` on the page."""
    doc = pdfium.PdfDocument(pdf)
    try:
        searcher = doc[index].get_textpage().search(phrase, match_case=False)
        return searcher.get_next() is not None
    finally:
        doc.close()


def render(pdf: bytes, index: int = 0, *, scale: float = 1.0) -> np.ndarray:
    """The page rendered by PDFium as gray uint8 (white paper)."""
    doc = pdfium.PdfDocument(pdf)
    try:
        bitmap = doc[index].render(scale=scale, fill_color=(255, 255, 255, 255), grayscale=True)
        pixels = bitmap.to_numpy()
        return np.array(pixels[:, :, 0] if pixels.ndim == 3 else pixels, copy=True)
    finally:
        doc.close()


def page_count(pdf: bytes) -> int:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return len(doc.pages)


def words_of_page(page: dict) -> list[str]:
    """The result JSON page's words in reading order (blocks, then the lines they list)."""
    order = [i for block in page["blocks"] for i in block["lines"]]
    return [word["text"] for i in order for word in page["lines"][i]["words"]]


def json_word_boxes(page: dict) -> list[tuple[str, tuple[float, float, float, float]]]:
    out = []
    for line in page["lines"]:
        for word in line["words"]:
            xs, ys = [p[0] for p in word["box"]], [p[1] for p in word["box"]]
            out.append((word["text"], (min(xs), min(ys), max(xs), max(ys))))
    return out


def assert_words_placed(page: dict, size_pt: tuple[float, float], words: list[PdfWord]) -> None:
    """Every JSON word is found in the PDF within one word height of its box (pixels scaled to points)."""
    sx, sy = size_pt[0] / page["width"], size_pt[1] / page["height"]
    pool = list(words)
    for text, (x0, y0, x1, y1) in json_word_boxes(page):
        box = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
        sides = (box[2] - box[0], box[3] - box[1])
        height = min(sides) if len(text) > 1 else max(sides)  # a word is longer than tall, whichever way it runs
        matches = [w for w in pool if w.text == text]
        assert matches, f"word {text!r} is not in the PDF's text: {[w.text for w in pool][:40]}"
        best = min(matches, key=lambda w: max(abs(a - b) for a, b in zip(w.box, box)))
        error = max(abs(a - b) for a, b in zip(best.box, box))
        assert error <= height, f"{text!r} lies {error:.1f} pt from its box {box} (word height {height:.1f}): {best.box}"
        pool.remove(best)


def pdfa_structure(pdf: bytes) -> dict:
    """The PDF/A-2b essentials, read structurally: output intent with an ICC profile, XMP identification,
    fonts embedded, no encryption, no transparency group on a page."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        intents = doc.Root.get("/OutputIntents", [])
        profile = intents[0].DestOutputProfile.read_bytes() if len(intents) else b""
        meta = doc.open_metadata()
        fonts_embedded = True
        for page in doc.pages:
            for _name, font in _fonts(page):
                for descendant in font.get("/DescendantFonts", [font]):
                    descriptor = descendant.get("/FontDescriptor")
                    if descriptor is None or not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                        fonts_embedded = False
        return {
            "icc_colour_space": profile[16:20],
            "icc_class": profile[12:16],
            "part": meta.get("pdfaid:part"),
            "conformance": meta.get("pdfaid:conformance"),
            "title": meta.get("dc:title"),
            "producer": meta.get("pdf:Producer"),
            "created": meta.get("xmp:CreateDate"),
            "fonts_embedded": fonts_embedded,
            "encrypted": doc.is_encrypted,
            "page_groups": any("/Group" in page.obj for page in doc.pages),
        }


def _fonts(page: pikepdf.Page):
    seen = []
    stack = [page.obj.get("/Resources")]
    while stack:
        resources = stack.pop()
        if not isinstance(resources, pikepdf.Dictionary):
            continue
        for name, font in resources.get("/Font", pikepdf.Dictionary()).items():
            seen.append((name, font))
        for _name, xobject in resources.get("/XObject", pikepdf.Dictionary()).items():
            if xobject.get("/Subtype") == pikepdf.Name.Form:
                stack.append(xobject.get("/Resources"))
    return seen
