"""The pure job function (issue 17): bytes in, the encoded output set out, nothing written; written by the
daemon's `write_encoded`, it gives the files a local worker's `process_file` writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import pytest

from ocrd.config.load import config_from_mapping
from ocrd.errors import InputError, Reason
from ocrd.intake.gate import read_input
from ocrd.jobs.ids import new_job_id
from ocrd.service.executor import write_encoded
from ocrd.service.pipeline import Job, encode_job, process_file
from tests.fonts import latin_font_path, render_lines


@pytest.fixture
def scan(tmp_path) -> Path:
    font = latin_font_path()
    if font is None:
        pytest.skip("no TrueType font found to render a test page")
    image, _ = render_lines(["Invoice 4711", "Total 12.50 EUR"], font, size_px=36)
    path = tmp_path / "in" / "scan.png"
    path.parent.mkdir()
    assert cv2.imwrite(str(path), image)
    return path


def _job(path: Path, out_dir: Path) -> Job:
    return Job(job_id=new_job_id(), path=path, rel_path=path.name, out_dir=out_dir, stem=path.stem, inbox="scans")


def _without_run_details(data: bytes) -> dict:
    doc = json.loads(data)
    for key in ("job_id", "created_at", "timings_ms"):
        doc.pop(key)
    return doc


def test_encode_job_writes_nothing_and_write_encoded_gives_the_local_files(engine, scan, tmp_path):
    cfg = config_from_mapping({}, tmp_path)
    data, mtime_s = read_input(scan, cfg.intake)
    pure_dir, local_dir = tmp_path / "pure", tmp_path / "local"
    encoded = encode_job(_job(scan, pure_dir), data, engine, cfg, mtime_s=mtime_s)
    assert not pure_dir.exists()  # pure: the output folder is not even created
    assert [name for name, _ in encoded.files] == ["scan.vis.jpg", "scan.pdf", "scan.txt", "scan.json"]  # JSON last
    assert encoded.outcome.outputs == () and encoded.outcome.lines == 2

    outcome = write_encoded(_job(scan, pure_dir), encoded)
    local = process_file(_job(scan, local_dir), engine, cfg)
    assert [Path(p).name for p in outcome.outputs] == [Path(p).name for p in local.outputs]
    for name in ("scan.txt", "scan.vis.jpg"):
        assert (pure_dir / name).read_bytes() == (local_dir / name).read_bytes()
    ours, theirs = (pure_dir / "scan.json").read_bytes(), (local_dir / "scan.json").read_bytes()
    assert _without_run_details(ours) == _without_run_details(theirs)
    assert sorted(os.listdir(pure_dir)) == sorted(os.listdir(local_dir))  # no temp file left beside them


def test_the_pure_function_refuses_what_the_gate_refuses(engine, tmp_path):
    cfg = config_from_mapping({"intake": {"max_bytes": 64}}, tmp_path)
    job = _job(tmp_path / "x.png", tmp_path / "out")
    with pytest.raises(InputError) as caught:
        encode_job(job, b"", engine, cfg, mtime_s=0.0)
    assert caught.value.reason is Reason.EMPTY_FILE
    with pytest.raises(InputError) as caught:
        encode_job(job, b"\x89PNG" + b"\0" * 100, engine, cfg, mtime_s=0.0)  # bytes from another host: checked again
    assert caught.value.reason is Reason.TOO_LARGE_BYTES


def test_write_encoded_refuses_a_name_outside_the_job_folder(engine, scan, tmp_path):
    cfg = config_from_mapping({}, tmp_path)
    data, mtime_s = read_input(scan, cfg.intake)
    encoded = encode_job(_job(scan, tmp_path / "out"), data, engine, cfg, mtime_s=mtime_s)
    from dataclasses import replace

    bad = replace(encoded, files=(("../evil.txt", b"x"), *encoded.files))
    with pytest.raises(ValueError, match="refused output name"):
        write_encoded(_job(scan, tmp_path / "out"), bad)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()
