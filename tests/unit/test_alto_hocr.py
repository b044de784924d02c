"""ALTO 4.4 and hOCR 1.2 of hand-built results: ALTO valid against the shipped XSD (tests/fixtures/standards), hOCR parsed and nested, both reading back the words, boxes and confidences."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from ocrd.engine.results import PageResult, TextBlock
from ocrd.outputs.alto import ALTO_NS, alto_text
from ocrd.outputs.hocr import XHTML, hocr_text
from tests.results import make_doc, turned_line

STANDARDS = Path(__file__).parent.parent / "fixtures" / "standards"
NS = {"a": ALTO_NS, "h": XHTML}


@pytest.fixture(scope="module")
def alto_schema() -> etree.XMLSchema:
    # The local copy imports xlink.xsd from beside it: no network is needed (or allowed) to build it.
    return etree.XMLSchema(etree.parse(str(STANDARDS / "alto-4-4.local.xsd")))


def doc_of_two_pages():
    lines = (
        turned_line("Invoice 42 <paid> & \"due\"", 100, 120, degrees=0),
        turned_line("Total 19.10", 100, 220, degrees=0),
        turned_line("正品 促销", 100, 320, degrees=0),
        turned_line("Written upwards", 60, 900, degrees=90),
        turned_line("Upside down", 900, 600, degrees=180),
    )
    first = PageResult(1000, 1000, lines, index=0, blocks=(
        TextBlock(rows=((0,), (1,)), box=((100, 80), (700, 80), (700, 220), (100, 220))),
        TextBlock(rows=((2,),), box=((100, 280), (400, 280), (400, 320), (100, 320))),
        TextBlock(rows=((3,), (4,)), box=((20, 300), (900, 300), (900, 900), (20, 900))),
    ))  # fmt: skip
    second = PageResult(800, 600, (turned_line("Second page", 50, 100, degrees=0),), index=1)
    return make_doc([first, second], "in/a&b.tif")


def test_alto_validates_against_the_alto_4_4_schema(alto_schema):
    document = etree.fromstring(alto_text(doc_of_two_pages()).encode("utf-8"))
    alto_schema.assertValid(document)


def test_alto_reads_back_the_words_boxes_and_confidences():
    doc = doc_of_two_pages()
    root = etree.fromstring(alto_text(doc).encode("utf-8"))
    assert root.findtext("a:Description/a:MeasurementUnit", namespaces=NS) == "pixel"
    assert root.findtext("a:Description/a:sourceImageInformation/a:fileName", namespaces=NS) == "in/a&b.tif"
    step = root.find("a:Description/a:Processing", namespaces=NS)
    assert step.findtext("a:processingSoftware/a:softwareName", namespaces=NS) == "ocrd"
    assert step.findtext("a:processingSoftware/a:softwareVersion", namespaces=NS) == "0.1.0"
    assert "ppocrv6-small" in step.findtext("a:processingStepSettings", namespaces=NS)
    pages = root.findall("a:Layout/a:Page", namespaces=NS)
    assert [(p.get("WIDTH"), p.get("HEIGHT"), p.get("PHYSICAL_IMG_NR")) for p in pages] == [("1000", "1000", "1"), ("800", "600", "2")]
    for page, result in zip(pages, doc.pages):
        expected = [w for block in result.layout() for row in block.rows for i in row for w in result.lines[i].words]
        strings = page.findall(".//a:String", namespaces=NS)
        assert [s.get("CONTENT") for s in strings] == [w.text for w in expected]
        for string, word in zip(strings, expected):
            xs, ys = [x for x, _ in word.box], [y for _, y in word.box]
            assert abs(float(string.get("HPOS")) - min(xs)) <= 1 and abs(float(string.get("VPOS")) - min(ys)) <= 1
            assert abs(float(string.get("WIDTH")) - (max(xs) - min(xs))) <= 2
            assert 0 <= float(string.get("WC")) <= 1
    ids = [element.get("ID") for element in root.iter() if element.get("ID")]
    assert len(ids) == len(set(ids)) and not any(i[0].isdigit() for i in ids)


def test_alto_puts_sp_between_words_but_not_between_chinese_ones():
    root = etree.fromstring(alto_text(doc_of_two_pages()).encode("utf-8"))
    lines = root.findall(".//a:TextLine", namespaces=NS)

    def spelled(line) -> str:
        return "".join(" " if el.tag.endswith("SP") else el.get("CONTENT", "") for el in line if not el.tag.endswith("Shape"))

    assert [spelled(line) for line in lines][:3] == ['Invoice 42 <paid> & "due"', "Total 19.10", "正品促销"]
    turned = [line for line in lines if line.find("a:Shape", namespaces=NS) is not None]
    assert len(turned) == 2  # the two turned lines keep their quads


def test_hocr_parses_and_nests_page_area_paragraph_line_word():
    doc = doc_of_two_pages()
    root = etree.fromstring(hocr_text(doc).encode("utf-8"))
    metas = {m.get("name"): m.get("content") for m in root.iterfind(".//h:meta", namespaces=NS) if m.get("name")}
    assert metas["ocr-system"] == "ocrd 0.1.0"
    assert set(metas["ocr-capabilities"].split()) >= {"ocr_page", "ocr_carea", "ocr_par", "ocr_line", "ocrx_word"}
    classes = {"ocr_page": None, "ocr_carea": "ocr_page", "ocr_par": "ocr_carea", "ocr_line": "ocr_par", "ocrx_word": "ocr_line"}
    for element in root.iter():
        kind = element.get("class")
        if kind in classes and classes[kind] is not None:
            assert element.getparent().get("class") == classes[kind], f"{kind} inside {element.getparent().get('class')}"
            assert _bbox(element) is not None
            assert _inside(_bbox(element), _bbox(element.getparent())), f"{element.get('id')} outside its parent"
    pages = root.findall(".//h:div[@class='ocr_page']", namespaces=NS)
    assert [_props(p)["ppageno"] for p in pages] == ["0", "1"]
    assert _props(pages[0])["image"] == '"in/a&b.tif"' and _bbox(pages[0]) == (0, 0, 1000, 1000)
    assert len(pages[0].findall("h:div[@class='ocr_carea']", namespaces=NS)) == 3


def test_hocr_reads_back_the_text_words_confidences_and_line_angles():
    root = etree.fromstring(hocr_text(doc_of_two_pages()).encode("utf-8"))
    lines = root.findall(".//h:span[@class='ocr_line']", namespaces=NS)
    texts = ["".join(line.itertext()) for line in lines]
    assert texts == ['Invoice 42 <paid> & "due"', "Total 19.10", "正品促销", "Written upwards", "Upside down", "Second page"]
    words = root.findall(".//h:span[@class='ocrx_word']", namespaces=NS)
    assert all(_props(w)["x_wconf"] == "93" for w in words)
    assert "baseline" in _props(lines[0]) and "textangle" not in _props(lines[0])
    assert _props(lines[3])["textangle"] == "90" and _props(lines[4])["textangle"] == "180"


def _props(element) -> dict[str, str]:
    out = {}
    for part in element.get("title", "").split(";"):
        key, _, value = part.strip().partition(" ")
        out[key] = value
    return out


def _bbox(element) -> tuple[int, ...] | None:
    box = _props(element).get("bbox")
    return tuple(int(v) for v in re.split(r"\s+", box)) if box else None


def _inside(inner, outer) -> bool:
    return outer is None or (inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2] and inner[3] <= outer[3])
