"""Unit tests for CTC greedy decoding, the recognizer's charset rule and its width-sorted batching (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from ocrd.config.load import config_from_mapping
from ocrd.engine.ocr_engine import settings_from_config
from ocrd.engine.recognize import RecognizeParams, TextRecognizer, ctc_greedy_decode

CHARSET = ["a", "b", "c", " "]  # class 0 is the CTC blank; class i is CHARSET[i - 1]


def probs_for(steps: list[tuple[int, float]], classes: int = len(CHARSET) + 1) -> np.ndarray:
    """A (T, C) row where step t puts probability p on class k and spreads the rest evenly."""
    out = np.zeros((len(steps), classes), dtype=np.float32)
    for t, (k, p) in enumerate(steps):
        out[t, :] = (1 - p) / (classes - 1)
        out[t, k] = p
    return out


def decode_one(steps: list[tuple[int, float]]):
    (rec,) = ctc_greedy_decode(probs_for(steps)[np.newaxis], CHARSET)
    return rec


def test_blanks_are_dropped():
    rec = decode_one([(0, 0.9), (1, 0.8), (0, 0.9), (2, 0.6), (0, 0.9)])
    assert rec.text == "ab"


def test_repeats_are_merged():
    assert decode_one([(1, 0.9), (1, 0.9), (1, 0.9), (2, 0.9), (2, 0.9)]).text == "ab"


def test_repeat_separated_by_blank_is_kept_twice():
    assert decode_one([(1, 0.9), (0, 0.9), (1, 0.9), (1, 0.9), (0, 0.9), (3, 0.9)]).text == "aac"


def test_confidence_is_mean_of_kept_characters_only():
    # Kept: a (0.8) and b (0.6); the blank (0.99) and the merged repeat of a (0.2) do not count.
    rec = decode_one([(1, 0.8), (1, 0.4), (0, 0.99), (2, 0.6)])
    assert rec.text == "ab"
    assert rec.confidence == pytest.approx(0.7, abs=1e-6)


def test_all_blank_gives_empty_text_and_zero_confidence():
    rec = decode_one([(0, 0.99)] * 6)
    assert rec.text == ""
    assert rec.confidence == 0.0


def test_batch_rows_are_decoded_independently():
    batch = np.stack([probs_for([(1, 0.9), (0, 0.9), (2, 0.9)]), probs_for([(3, 0.9), (3, 0.9), (0, 0.9)])])
    assert [r.text for r in ctc_greedy_decode(batch, CHARSET)] == ["ab", "c"]


def test_space_inside_text_is_kept_and_outer_spaces_stripped():
    rec = decode_one([(4, 0.9), (1, 0.9), (4, 0.9), (2, 0.9), (4, 0.9)])
    assert rec.text == "a b"


def test_decode_does_not_depend_on_step_padding():
    # Trailing blank steps, as produced by zero padding of a short crop in a wide batch, change nothing.
    short = decode_one([(1, 0.9), (2, 0.8)])
    padded = decode_one([(1, 0.9), (2, 0.8), (0, 0.99), (0, 0.99), (0, 0.99)])
    assert (padded.text, padded.confidence) == (short.text, pytest.approx(short.confidence))


# ---------------------------------------------------------------- charset_for


def test_charset_gets_space_class_when_model_has_two_extra_classes():
    chars = ["x", "y", "z"]
    assert TextRecognizer.charset_for(5, chars) == ["x", "y", "z", " "]  # blank + 3 + space


def test_charset_unchanged_when_model_has_only_the_blank_extra():
    chars = ["x", "y", "z"]
    assert TextRecognizer.charset_for(4, chars) == chars


def test_charset_for_does_not_mutate_its_input():
    chars = ["x"]
    TextRecognizer.charset_for(3, chars)
    assert chars == ["x"]


# ---------------------------------------------------------------- batching


def recognizer(**params) -> TextRecognizer:
    return TextRecognizer(model=None, charset=CHARSET, params=RecognizeParams(**params))  # type: ignore[arg-type]


def sorted_order(widths: list[int]) -> list[int]:
    return sorted(range(len(widths)), key=lambda i: widths[i])


def test_batches_honour_batch_size():
    widths = [100, 40, 300, 120, 60, 80, 90]
    batches = recognizer(batch_size=3)._batches(sorted_order(widths), widths)
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [i for b in batches for i in b] == sorted_order(widths)  # consecutive in width order


def test_batches_without_max_stretch_only_split_on_size():
    widths = [32, 3200, 64]
    assert recognizer(batch_size=6, max_stretch=0.0)._batches(sorted_order(widths), widths) == [[0, 2, 1]]


def test_batches_honour_max_stretch():
    widths = [100, 110, 125, 160, 170, 400]
    batches = recognizer(batch_size=6, max_stretch=0.25)._batches(sorted_order(widths), widths)
    assert batches == [[0, 1, 2], [3, 4], [5]]
    for batch in batches:
        assert max(widths[i] for i in batch) <= widths[batch[0]] * 1.25


def test_batches_with_stretch_still_honour_batch_size():
    widths = [100] * 5
    assert recognizer(batch_size=2, max_stretch=0.5)._batches(list(range(5)), widths) == [[0, 1], [2, 3], [4]]


def test_target_width_keeps_aspect_within_limits():
    rec = recognizer(input_height_px=48, min_width_px=32, max_width_px=480)
    assert rec._target_width(np.zeros((24, 100, 3), np.uint8)) == 200
    assert rec._target_width(np.zeros((48, 10, 3), np.uint8)) == 32
    assert rec._target_width(np.zeros((10, 1000, 3), np.uint8)) == 480


def test_recognize_config_reaches_the_recognizer_params(tmp_path):
    cfg = config_from_mapping({"recognize": {"batch_size": 9, "max_width_px": 999, "input_height_px": 40}}, base_dir=tmp_path)
    params = settings_from_config(cfg).recognize
    assert (params.batch_size, params.max_width_px, params.input_height_px) == (9, 999, 40)


def test_recognize_max_stretch_config_reaches_the_recognizer(tmp_path):
    cfg = config_from_mapping({"recognize": {"max_stretch": 0.25}}, base_dir=tmp_path)
    assert settings_from_config(cfg).recognize.max_stretch == 0.25


def test_a_short_crop_is_padded_to_two_heights_not_stretched():
    # A 48 x 40 crop (a unit such as "mm") keeps its own 40 columns; the rest of the 96-wide
    # input is the normalised zero padding the models were trained with.
    crop = np.full((48, 40, 3), 255, np.uint8)
    crop[:, 10:20] = 0
    rec = recognizer(input_height_px=48, min_width_px=8, max_stretch=0.05)
    ((chunk, batch, extents),) = list(rec._prepared_batches([crop]))
    assert chunk == [0] and batch.shape == (1, 3, 48, 96)
    assert extents == [40 / 96]
    assert np.allclose(batch[0, :, :, :10], 1.0) and np.allclose(batch[0, :, :, 10:20], -1.0)
    assert np.all(batch[0, :, :, 40:] == 0.0)


def test_a_crop_wider_than_two_heights_fills_its_input():
    crop = np.full((24, 100, 3), 255, np.uint8)  # 200 px wide at height 48
    ((_, batch, extents),) = list(recognizer(input_height_px=48)._prepared_batches([crop]))
    assert batch.shape == (1, 3, 48, 200) and extents == [1.0]


def test_min_batch_width_off_keeps_the_crop_width():
    crop = np.full((48, 40, 3), 255, np.uint8)
    ((_, batch, extents),) = list(recognizer(input_height_px=48, min_batch_width_h=0.0)._prepared_batches([crop]))
    assert batch.shape == (1, 3, 48, 40) and extents == [1.0]


def test_min_batch_width_config_reaches_the_recognizer(tmp_path):
    assert settings_from_config(config_from_mapping({}, base_dir=tmp_path)).recognize.min_batch_width_h == 2.0
    cfg = config_from_mapping({"recognize": {"min_batch_width_h": 0}}, base_dir=tmp_path)
    assert settings_from_config(cfg).recognize.min_batch_width_h == 0.0
