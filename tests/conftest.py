"""Session-wide test environment: a cache directory of the session's own, so every run builds the INT8
recognizer once from scratch (as a fresh install does) and never touches the user's ~/.cache/ocrd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def session_cache_dir(tmp_path_factory) -> Path:
    """$XDG_CACHE_HOME for this process and every ocrd it starts (daemons and commands inherit it)."""
    saved = {key: os.environ.get(key) for key in ("XDG_CACHE_HOME", "CACHE_DIRECTORY")}
    cache_home = tmp_path_factory.mktemp("xdg-cache")
    os.environ["XDG_CACHE_HOME"] = str(cache_home)
    os.environ.pop("CACHE_DIRECTORY", None)
    yield cache_home / "ocrd"
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def prepared_models(session_cache_dir, tmp_path_factory):
    """The default models as `ocrd run` prepares them: builds the INT8 recognizer and detector into the session cache."""
    from ocrd.config.load import config_from_mapping
    from ocrd.engine.int8.cache import prepare_model_set

    cfg = config_from_mapping({"recognize": {"precision": "int8"}}, Path(tmp_path_factory.mktemp("prepare")))
    prepared = prepare_model_set(cfg)
    assert prepared.precisions == "rec int8, det int8", prepared.fallback_reason
    return prepared
