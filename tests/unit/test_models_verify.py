"""ModelFile.verify_once: the main process's verification is reused by workers only while the file is unchanged."""

from __future__ import annotations

import hashlib
import os

import pytest

from ocrd.errors import ModelError
from ocrd.engine.models import ModelFile


def _model(tmp_path, data: bytes) -> ModelFile:
    path = tmp_path / "rec.onnx"
    path.write_bytes(data)
    return ModelFile("rec", path, hashlib.sha256(data).hexdigest())


def test_an_unchanged_file_is_not_hashed_again(tmp_path, monkeypatch):
    model = _model(tmp_path, b"weights v1")
    first = model.verify_once()
    assert first.sha256 == model.sha256 and first.size == len(b"weights v1")

    monkeypatch.setattr("ocrd.engine.models.file_sha256", lambda path: pytest.fail("hashed again"))
    assert model.verify_once(first) is first


def test_a_file_changed_since_is_hashed_and_refused(tmp_path):
    model = _model(tmp_path, b"weights v1")
    first = model.verify_once()
    model.path.write_bytes(b"weights v2, from another package version")
    os.utime(model.path, ns=(first.mtime_ns + 10**9, first.mtime_ns + 10**9))
    with pytest.raises(ModelError, match="expected"):
        model.verify_once(first)


def test_a_missing_file_is_reported_even_with_an_earlier_verification(tmp_path):
    model = _model(tmp_path, b"weights v1")
    first = model.verify_once()
    model.path.unlink()
    with pytest.raises(ModelError, match="not found"):
        model.verify_once(first)
