"""ALTO 4.4 XML of a document: Description (pixel units, source image, processing step with ocrd's version and model set) and Layout/Page/PrintSpace/TextBlock/TextLine/String with SP between words; builds markup only.

Valid against the ALTO 4.4 schema (the tests check it with the XSD). Positions are whole page
pixels as displayed (HPOS/VPOS/WIDTH/HEIGHT of each element's axis-aligned box); a line that does
not run along the page keeps its quad as a Shape polygon, its baseline as BASELINE and its block's
ROTATION says how it is turned. WC is the word's confidence (0..1). IDs start with a letter.
The processing step is ALTO 4's `Processing` (its `OCRProcessing` is deprecated).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ocrd.engine.results import DocumentResult, PageResult, TextLine
from ocrd.outputs.reading import baseline_of, bbox, blocks_in_order, space_between, text_angle, union, words_of

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{ALTO_NS} http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"
PROCESSING_ID = "ocrd_processing"
_UPRIGHT_DEGREES = 10.0  # a line within this of horizontal is written without Shape and ROTATION


def alto_text(doc: DocumentResult) -> str:
    """The ALTO 4.4 document of `doc`, as text (UTF-8, with its XML declaration)."""
    a = f"{{{ALTO_NS}}}"
    root = ET.Element(f"{a}alto", {f"{{{XSI_NS}}}schemaLocation": SCHEMA_LOCATION, "SCHEMAVERSION": "4.4"})
    description = ET.SubElement(root, f"{a}Description")
    ET.SubElement(description, f"{a}MeasurementUnit").text = "pixel"
    source = ET.SubElement(description, f"{a}sourceImageInformation")
    ET.SubElement(source, f"{a}fileName").text = doc.source.rel_path
    processing = ET.SubElement(description, f"{a}Processing", {"ID": PROCESSING_ID})
    ET.SubElement(processing, f"{a}processingCategory").text = "contentGeneration"
    ET.SubElement(processing, f"{a}processingDateTime").text = doc.created_at
    ET.SubElement(processing, f"{a}processingStepSettings").text = f"model set: {doc.engine.get('model_set', '')}"
    software = ET.SubElement(processing, f"{a}processingSoftware")
    ET.SubElement(software, f"{a}softwareName").text = "ocrd"
    ET.SubElement(software, f"{a}softwareVersion").text = str(doc.engine.get("ocrd_version", ""))
    layout = ET.SubElement(root, f"{a}Layout")
    for number, page in enumerate(doc.pages, 1):
        _page(layout, page, number)
    ET.indent(root, space=" ")  # safe: no ALTO element here holds text and children both
    ET.register_namespace("", ALTO_NS)
    ET.register_namespace("xsi", XSI_NS)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _position(box: tuple[int, int, int, int]) -> dict[str, str]:
    x0, y0, x1, y1 = box
    return {"HPOS": str(x0), "VPOS": str(y0), "WIDTH": str(x1 - x0), "HEIGHT": str(y1 - y0)}


def _page(layout: ET.Element, page: PageResult, number: int) -> None:
    a = f"{{{ALTO_NS}}}"
    element = ET.SubElement(layout, f"{a}Page", {
        "ID": f"page_{number}", "PHYSICAL_IMG_NR": str(page.index + 1),
        "WIDTH": str(page.width), "HEIGHT": str(page.height), "PROCESSING": PROCESSING_ID,
    })  # fmt: skip
    space = ET.SubElement(element, f"{a}PrintSpace", _position((0, 0, page.width, page.height)))
    line_number = word_number = 0
    for block_number, (_block, lines) in enumerate(blocks_in_order(page), 1):
        lines = [line for line in lines if words_of(line)]
        if not lines:
            continue
        attributes = {"ID": f"block_{number}_{block_number}", **_position(union([bbox(line.box) for line in lines]))}
        angle = _rotation(lines[0])
        if angle is not None:
            attributes["ROTATION"] = f"{angle:.1f}"
        block = ET.SubElement(space, f"{a}TextBlock", attributes)
        for line in lines:
            line_number += 1
            word_number = _line(block, line, f"{number}_{line_number}", word_number)


def _line(block: ET.Element, line: TextLine, key: str, word_number: int) -> int:
    a = f"{{{ALTO_NS}}}"
    (x3, y3), (x2, y2) = baseline_of(line)
    element = ET.SubElement(block, f"{a}TextLine", {
        "ID": f"line_{key}", **_position(bbox(line.box)), "BASELINE": f"{x3:.0f},{y3:.0f} {x2:.0f},{y2:.0f}",
    })  # fmt: skip
    if _rotation(line) is not None:
        shape = ET.SubElement(element, f"{a}Shape")
        ET.SubElement(shape, f"{a}Polygon", {"POINTS": " ".join(f"{x:.0f},{y:.0f}" for x, y in line.box)})
    previous, previous_box = "", (0, 0, 0, 0)
    for word in words_of(line):
        word_number += 1
        box = bbox(word.box)
        if previous and space_between(previous, word.text):
            ET.SubElement(element, f"{a}SP", {
                "ID": f"space_{key}_{word_number}", "HPOS": str(previous_box[2]), "VPOS": str(previous_box[1]),
                "WIDTH": str(max(0, box[0] - previous_box[2])),
            })  # fmt: skip
        ET.SubElement(element, f"{a}String", {
            "ID": f"string_{key}_{word_number}", "CONTENT": word.text, **_position(box),
            "WC": f"{max(0.0, min(1.0, float(word.confidence))):.4f}",
        })  # fmt: skip
        previous, previous_box = word.text, box
    return word_number


def _rotation(line: TextLine) -> float | None:
    """Degrees counter-clockwise the line is turned, or None for a line along the page."""
    angle = text_angle(line)
    return None if min(angle, 360 - angle) <= _UPRIGHT_DEGREES else angle
