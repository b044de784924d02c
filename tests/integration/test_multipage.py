"""Multi-page TIFF and PDF end to end: one `pages[]` entry per page, each with its own text, one visualization per page."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

from ocrd.config.load import config_from_mapping
from ocrd.jobs.ids import new_job_id
from ocrd.outputs.writers import load_result_schema
from ocrd.service.pipeline import Job, process_file
from tests.fonts import latin_font_path, render_lines

PAGE_TEXTS = ["Invoice 4711", "Delivery note 815", "Receipt 2026"]


@pytest.fixture(scope="module")
def page_images() -> list[Image.Image]:
    font = latin_font_path()
    if font is None:
        pytest.skip("no TrueType font found to render test pages")
    return [Image.fromarray(render_lines([text], font, size_px=40)[0]).convert("L") for text in PAGE_TEXTS]


def _run(engine, tmp_path: Path, source: Path):
    cfg = config_from_mapping({}, tmp_path)
    job = Job(job_id=new_job_id(), path=source, rel_path=source.name, out_dir=tmp_path / "out", stem=source.stem)
    outcome = process_file(job, engine, cfg)
    result = json.loads((tmp_path / "out" / f"{source.stem}.json").read_text(encoding="utf-8"))
    jsonschema.validate(result, load_result_schema())
    return outcome, result


def _assert_pages(result: dict, tmp_path: Path, stem: str) -> None:
    assert result["source"]["pages"] == len(PAGE_TEXTS)
    assert [page["index"] for page in result["pages"]] == list(range(len(PAGE_TEXTS)))
    for page, text in zip(result["pages"], PAGE_TEXTS):
        assert page["text"] == text
    plain = (tmp_path / "out" / f"{stem}.txt").read_text(encoding="utf-8")
    assert plain.rstrip("\n").split("\f") == PAGE_TEXTS
    for number in range(1, len(PAGE_TEXTS) + 1):
        assert (tmp_path / "out" / f"{stem}.p{number:03d}.vis.jpg").is_file()


def test_multipage_tiff(engine, tmp_path, page_images):
    source = tmp_path / "scan.tiff"
    page_images[0].save(source, save_all=True, append_images=page_images[1:], compression="tiff_lzw")
    outcome, result = _run(engine, tmp_path, source)
    assert result["source"]["format"] == "tiff" and outcome.pages == len(PAGE_TEXTS)
    _assert_pages(result, tmp_path, "scan")


def test_multipage_pdf(engine, tmp_path, page_images):
    source = tmp_path / "letter.pdf"
    # A raster PDF at 100 dpi; intake renders it again at intake.pdf_dpi (200 by default).
    page_images[0].save(source, save_all=True, append_images=page_images[1:], resolution=100.0)
    outcome, result = _run(engine, tmp_path, source)
    assert result["source"]["format"] == "pdf" and outcome.pages == len(PAGE_TEXTS)
    width_pt = page_images[0].width * 72 / 100
    assert result["pages"][0]["width"] == pytest.approx(width_pt * 200 / 72, abs=2)
    _assert_pages(result, tmp_path, "letter")
