"""The INT8 recognizer and detector built for real: cached and verified, rebuilt byte for byte when damaged, FP32 when impossible."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from ocrd.config.load import config_from_mapping
from ocrd.engine.ocr_engine import OcrEngine
from ocrd.engine.int8.cache import installed_onnxruntime_version, prepare_model_set
from ocrd.engine.int8.recipe import RECIPE, RECIPES
from ocrd.engine.int8.build import MIN_AGREEMENT
from ocrd.engine.models import file_sha256, model_set_from_config
from tests.fonts import CJK_FONT, latin_font_path, render_lines


def _record(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".json").read_text())


INT8 = {"recognize": {"precision": "int8"}}


def test_int8_run_uses_the_verified_copy(prepared_models, session_cache_dir):
    rec = prepared_models.model_set.rec
    assert rec.path.parent == session_cache_dir and RECIPE in rec.path.name
    record = _record(rec.path)
    assert record["fp32_convolutions"]  # the sensitivity analysis left some convolutions in FP32
    assert record["sha256"] == file_sha256(rec.path) == prepared_models.verified["rec"].sha256
    assert record["agreement"] >= MIN_AGREEMENT
    assert record["onnxruntime"] == installed_onnxruntime_version()  # a later upgrade rebuilds it
    shipped = model_set_from_config(config_from_mapping({}, rec.path.parent))
    assert record["source_sha256"] == file_sha256(shipped.rec.path)
    # The classifier is the shipped file; the detector has its own INT8 copy.
    assert prepared_models.model_set.cls == shipped.cls
    det = prepared_models.model_set.det
    assert det.path.parent == session_cache_dir and RECIPES["det"] in det.path.name and det.role == "det"
    det_record = _record(det.path)
    assert det_record["source_sha256"] == file_sha256(shipped.det.path) and det_record["agreement"] >= MIN_AGREEMENT
    assert det_record["sha256"] == prepared_models.verified["det"].sha256
    assert prepared_models.det_precision == "int8" and prepared_models.precisions == "rec int8, det int8"


def test_a_damaged_copy_is_rebuilt_to_the_same_bytes(prepared_models, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(prepared_models.model_set.rec.path.parent, cache)
    damaged = cache / prepared_models.model_set.rec.path.name
    original_sha = _record(damaged)["sha256"]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    older = cache / damaged.name.replace(RECIPE, "older-recipe")
    older.write_bytes(b"a copy an earlier ocrd built")
    other_model = cache / "another-model.0123456789abcdef.older-recipe.int8.onnx"
    other_model.write_bytes(b"another source model's copy")

    prepared = prepare_model_set(config_from_mapping(INT8 | {"cache_dir": str(cache)}, tmp_path))

    assert prepared.precision == "int8" and prepared.model_set.rec.path == damaged
    # Building is deterministic: the same calibration gives the same file.
    assert file_sha256(damaged) == original_sha == prepared.verified["rec"].sha256
    assert not list(cache.glob(".int8-build-*"))
    # The superseded copy of this model goes; another model's copy stays.
    assert not older.exists() and other_model.exists()


def test_an_unusable_cache_falls_back_to_fp32(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cfg = config_from_mapping(INT8 | {"cache_dir": str(blocker / "ocrd")}, tmp_path)

    prepared = prepare_model_set(cfg)

    assert prepared.precision == "fp32"
    assert "not-a-folder" in (prepared.fallback_reason or "")
    assert prepared.model_set.rec == model_set_from_config(cfg).rec


def test_fp32_uses_the_shipped_recognizer(tmp_path, prepared_models):
    cfg = config_from_mapping({"recognize": {"precision": "fp32"}}, tmp_path)
    prepared = prepare_model_set(cfg)
    assert prepared.precision == "fp32" and prepared.fallback_reason is None
    assert prepared.model_set.rec == model_set_from_config(cfg).rec
    assert prepared.model_set.det == prepared_models.model_set.det  # each role follows its own key


def test_fp32_detection_uses_the_shipped_detector(tmp_path, prepared_models):
    cfg = config_from_mapping({"detect": {"precision": "fp32"}}, tmp_path)
    prepared = prepare_model_set(cfg)
    assert prepared.precisions == "rec int8, det fp32" and prepared.fallback_reason is None
    assert prepared.model_set.det == model_set_from_config(cfg).det
    assert prepared.model_set.rec == prepared_models.model_set.rec


def test_the_int8_detector_finds_the_lines_the_shipped_one_finds(prepared_models, tmp_path):
    latin = latin_font_path()
    if latin is None:
        pytest.skip("no DejaVu Sans on this machine")
    lines = ["Quarterly report", "Revenue rose 12 % to 4.1 million", "Contact: office@example.org"]
    image, _ = render_lines(lines, latin, size_px=26)
    cfg = config_from_mapping({}, tmp_path)
    shipped = model_set_from_config(cfg)
    fp32 = OcrEngine.from_config(cfg, model_set=shipped)
    int8_det = OcrEngine.from_config(cfg, model_set=replace(shipped, det=prepared_models.model_set.det))
    assert [line.text for line in fp32.read(image).lines] == lines
    assert [line.text for line in int8_det.read(image).lines] == lines


def test_int8_engine_reads_rendered_english_and_chinese(prepared_models, tmp_path):
    latin = latin_font_path()
    if latin is None:
        pytest.skip("no DejaVu Sans on this machine")
    english = ["INVOICE 2026-0042", "Total due: 1,284.50 EUR", "Thank you for your order"]
    image, _ = render_lines(english, latin, size_px=30)
    chinese, _ = render_lines(["我是中国人", "正品促销"], CJK_FONT, size_px=40)
    engine = OcrEngine.from_config(config_from_mapping(INT8, tmp_path), model_set=prepared_models.model_set)
    assert [line.text for line in engine.read(image).lines] == english
    assert [line.text for line in engine.read(chinese).lines] == ["我是中国人", "正品促销"]
