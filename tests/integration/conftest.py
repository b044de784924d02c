"""Shared fixtures for integration tests: one real OcrEngine per session (loading models is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocrd.config.load import config_from_mapping
from ocrd.engine.ocr_engine import OcrEngine


@pytest.fixture(scope="session", autouse=True)
def _models_ready(prepared_models):
    """Build the INT8 recognizer before the first test, not inside one test's timeout."""


@pytest.fixture(scope="session")
def engine(tmp_path_factory, prepared_models) -> OcrEngine:
    """The default models (INT8 recognizer) with the angle classifier on, one intra-op thread (the machine is shared)."""
    cfg = config_from_mapping({}, Path(tmp_path_factory.mktemp("engine")))
    return OcrEngine.from_config(cfg, model_set=prepared_models.model_set, intra_op_threads=1)


@pytest.fixture(scope="session")
def engine_without_classifier(tmp_path_factory, prepared_models) -> OcrEngine:
    cfg = config_from_mapping({"classify": {"enabled": False}}, Path(tmp_path_factory.mktemp("engine")))
    return OcrEngine.from_config(cfg, model_set=prepared_models.model_set, intra_op_threads=1)
