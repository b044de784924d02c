"""The INT8 cache's rules: where it lives, which file counts as built, and that a changed file is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocrd.config.load import config_from_mapping
from ocrd.errors import ModelError
from ocrd.engine.int8.cache import CacheState, cache_dir_for, cache_state, installed_onnxruntime_version, lookup
from ocrd.engine.int8.recipe import RECIPE, cached_path
from ocrd.engine.int8.build import text_agreement
from ocrd.engine.models import ModelFile, file_sha256

SOURCE_SHA = "ab" * 32


def test_cache_dir_prefers_config_then_systemd_then_xdg_then_home(tmp_path):
    cfg = config_from_mapping({}, tmp_path)
    assert cache_dir_for(cfg, {"CACHE_DIRECTORY": "/var/cache/ocrd:/other", "XDG_CACHE_HOME": "/x"}) == Path(
        "/var/cache/ocrd"
    )
    assert cache_dir_for(cfg, {"XDG_CACHE_HOME": "/x"}) == Path("/x/ocrd")
    assert cache_dir_for(cfg, {}) == Path.home() / ".cache" / "ocrd"
    configured = config_from_mapping({"cache_dir": "models-cache"}, tmp_path)
    assert cache_dir_for(configured, {"CACHE_DIRECTORY": "/var/cache/ocrd"}) == tmp_path / "models-cache"


def test_cache_dir_without_a_home_directory_is_under_state_dir(tmp_path, monkeypatch):
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    cfg = config_from_mapping({}, tmp_path)
    assert cache_dir_for(cfg, {}) == cfg.state_dir / "cache"


def _built(tmp_path: Path, **record_changes) -> tuple[ModelFile, Path]:
    source = ModelFile("rec", tmp_path / "rec.onnx", SOURCE_SHA)
    target = cached_path(tmp_path, source, SOURCE_SHA)
    target.write_bytes(b"quantized model bytes")
    record = {"recipe": RECIPE, "sha256": file_sha256(target), "source_sha256": SOURCE_SHA, "onnxruntime": "1.20.1"}
    record |= record_changes
    target.with_name(target.name + ".json").write_text(json.dumps(record))
    return source, target


def test_lookup_returns_the_copy_with_its_recorded_digest(tmp_path):
    source, target = _built(tmp_path)
    found = lookup(tmp_path, source, SOURCE_SHA)
    assert found is not None and found.path == target and found.sha256 == file_sha256(target)
    found.verify()


def test_lookup_ignores_a_copy_of_another_recipe_or_source(tmp_path):
    source, _ = _built(tmp_path, recipe="older-recipe")
    assert lookup(tmp_path, source, SOURCE_SHA) is None
    source, _ = _built(tmp_path, source_sha256="cd" * 32)
    assert lookup(tmp_path, source, SOURCE_SHA) is None


def test_lookup_ignores_a_copy_built_by_another_onnxruntime_version(tmp_path):
    source, target = _built(tmp_path)
    assert lookup(tmp_path, source, SOURCE_SHA, "1.20.1").path == target
    assert lookup(tmp_path, source, SOURCE_SHA, "1.21.0") is None  # upgraded since: build and check again
    source, _ = _built(tmp_path, onnxruntime=None)  # a record that does not say
    assert lookup(tmp_path, source, SOURCE_SHA, "1.20.1") is None


def test_the_cache_state_of_a_copy_from_before_an_onnxruntime_upgrade_is_missing(tmp_path):
    source, _ = _built(tmp_path, onnxruntime=installed_onnxruntime_version())
    assert cache_state(tmp_path, source, SOURCE_SHA)[0] is CacheState.READY
    source, _ = _built(tmp_path, onnxruntime="1.0.0")
    assert cache_state(tmp_path, source, SOURCE_SHA)[:2] == (CacheState.MISSING, None)


def test_the_installed_onnxruntime_version_is_the_librarys():
    import onnxruntime  # ocrd.engine.int8.cache reads the metadata only; the test loads the library to compare

    assert installed_onnxruntime_version() == onnxruntime.__version__


def test_lookup_without_a_record_finds_nothing(tmp_path):
    source, target = _built(tmp_path)
    target.with_name(target.name + ".json").unlink()
    assert lookup(tmp_path, source, SOURCE_SHA) is None


def test_a_changed_copy_fails_verification(tmp_path):
    source, target = _built(tmp_path)
    target.write_bytes(b"quantized model bytes, truncated or tampered with")
    found = lookup(tmp_path, source, SOURCE_SHA)
    assert found is not None
    with pytest.raises(ModelError, match="sha256"):
        found.verify()


def test_text_agreement():
    assert text_agreement(["TOTAL 12.50", "CASH"], ["TOTAL 12.50", "CASH"]) == 1.0
    assert 0.8 < text_agreement(["TOTAL 12.50", "CASH"], ["TOTAL 12.58", "CASH"]) < 1.0
    assert text_agreement(["TOTAL 12.50"], ["zzzz"]) < 0.2
