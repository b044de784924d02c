"""`workers.alone_threads` for real: a job that has the machine to itself reads through the wider sessions, with the same result."""

from __future__ import annotations

import pytest

from ocrd.config.load import config_from_mapping
from ocrd.engine.ocr_engine import OcrEngine
from tests.fonts import latin_font_path, render_lines


def test_a_page_read_alone_gives_the_same_lines_and_the_engine_goes_back_to_one_thread(prepared_models, tmp_path):
    latin = latin_font_path()
    if latin is None:
        pytest.skip("no DejaVu Sans on this machine")
    lines = ["Minutes of the meeting", "Present: the whole board", "Next meeting: 14 January"]
    image, _ = render_lines(lines, latin, size_px=28)
    cfg = config_from_mapping({}, tmp_path)
    engine = OcrEngine.from_config(cfg, model_set=prepared_models.model_set, intra_op_threads=1, alone_threads=2)
    shared = engine.read(image)
    with engine.running_alone(True):
        assert all(model.alone for model in engine._models)
        alone = engine.read(image)
    assert not any(model.alone for model in engine._models)
    assert [(l.text, l.box) for l in alone.lines] == [(l.text, l.box) for l in shared.lines]
    assert [l.text for l in shared.lines] == lines
    with pytest.raises(ValueError), engine.running_alone(True):
        engine.read(image[:, :, 0])  # a refused image: the flag is still put back
    assert not any(model.alone for model in engine._models)
