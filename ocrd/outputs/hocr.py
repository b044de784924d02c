"""hOCR 1.2 of a document: one XHTML file with ocr_page, ocr_carea/ocr_par per block, ocr_line and ocrx_word elements carrying bbox, baseline or textangle and x_wconf; builds markup only.

Coordinates are the result's (page pixels as displayed). A line that runs along the page gets its
`baseline` (slope, and offset from the bbox's bottom-left corner); a sideways or upside-down one
gets its `textangle` (degrees counter-clockwise). Words are separated by a space, except between
two CJK characters, so the text content reads as the page does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import PurePosixPath

from ocrd.engine.results import DocumentResult, PageResult, TextLine
from ocrd.outputs.reading import baseline_of, bbox, blocks_in_order, space_between, text_angle, text_height, union, words_of

XHTML = "http://www.w3.org/1999/xhtml"
CAPABILITIES = "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf"
_UPRIGHT_DEGREES = 10.0  # a line within this of horizontal has a baseline; others a textangle


def hocr_text(doc: DocumentResult) -> str:
    """The hOCR document of `doc`, as text (UTF-8 XHTML, with its XML declaration)."""
    ns = f"{{{XHTML}}}"
    html = ET.Element(f"{ns}html", {"lang": "en", "{http://www.w3.org/XML/1998/namespace}lang": "en"})
    head = ET.SubElement(html, f"{ns}head")
    ET.SubElement(head, f"{ns}title").text = PurePosixPath(doc.source.rel_path).name
    ET.SubElement(head, f"{ns}meta", {"http-equiv": "Content-Type", "content": "text/html; charset=utf-8"})
    system = f"ocrd {doc.engine.get('ocrd_version', '')}".strip()
    ET.SubElement(head, f"{ns}meta", {"name": "ocr-system", "content": system})
    ET.SubElement(head, f"{ns}meta", {"name": "ocr-capabilities", "content": CAPABILITIES})
    ET.SubElement(head, f"{ns}meta", {"name": "ocr-number-of-pages", "content": str(len(doc.pages))})
    head.text = head.tail = "\n"
    for element in head:
        element.tail = "\n"
    body = ET.SubElement(html, f"{ns}body")
    body.text = "\n"
    for number, page in enumerate(doc.pages, 1):
        _page(body, page, number, doc.source.rel_path)
    ET.register_namespace("", XHTML)
    markup = ET.tostring(html, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n' + markup + "\n"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _box(box: tuple[int, int, int, int]) -> str:
    return "bbox {} {} {} {}".format(*box)


def _page(body: ET.Element, page: PageResult, number: int, rel_path: str) -> None:
    ns = f"{{{XHTML}}}"
    title = f"image {_quoted(rel_path)}; bbox 0 0 {page.width} {page.height}; ppageno {page.index}"
    div = ET.SubElement(body, f"{ns}div", {"class": "ocr_page", "id": f"page_{number}", "title": title})
    # Newlines between blocks and lines only: inside a line, whitespace is the text's own spaces.
    div.text = div.tail = "\n"
    line_number = word_number = 0
    for block_number, (_block, lines) in enumerate(blocks_in_order(page), 1):
        lines = [line for line in lines if words_of(line)]
        if not lines:
            continue
        box = _box(union([bbox(line.box) for line in lines]))
        area = ET.SubElement(div, f"{ns}div", {"class": "ocr_carea", "id": f"block_{number}_{block_number}", "title": box})
        par = ET.SubElement(area, f"{ns}p", {"class": "ocr_par", "id": f"par_{number}_{block_number}", "title": box})
        area.text = area.tail = par.text = par.tail = "\n"
        for line in lines:
            line_number += 1
            span = ET.SubElement(par, f"{ns}span", {"class": "ocr_line", "id": f"line_{number}_{line_number}",
                                                    "title": _line_title(line)})  # fmt: skip
            span.tail = "\n"
            previous: ET.Element | None = None
            previous_text = ""
            for word in words_of(line):
                word_number += 1
                if previous is not None and space_between(previous_text, word.text):
                    previous.tail = " "
                wconf = max(0, min(100, round(word.confidence * 100)))
                previous = ET.SubElement(span, f"{ns}span", {
                    "class": "ocrx_word", "id": f"word_{number}_{word_number}",
                    "title": f"{_box(bbox(word.box))}; x_wconf {wconf}",
                })  # fmt: skip
                previous.text = word.text
                previous_text = word.text


def _line_title(line: TextLine) -> str:
    box = bbox(line.box)
    angle = text_angle(line)
    height = round(text_height(line))
    if min(angle, 360 - angle) <= _UPRIGHT_DEGREES:
        (x3, y3), (x2, y2) = baseline_of(line)
        slope = (y2 - y3) / (x2 - x3) if x2 != x3 else 0.0
        offset = (y3 + slope * (box[0] - x3)) - box[3]
        return f"{_box(box)}; baseline {slope:.4f} {offset:.0f}; x_size {height}"
    return f"{_box(box)}; textangle {round(angle) % 360}; x_size {height}"
