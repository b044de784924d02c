"""Unit tests of words with boxes: character positions from the CTC decode, the crop-to-page mapping,
the engine's line assembly and the words' JSON (no model)."""

from __future__ import annotations

import json
import math

import cv2
import jsonschema
import numpy as np
import pytest

from ocrd.engine.detect import DetectedBox
from ocrd.engine.geometry import crop_quad, order_quad, reading_quad, reads_vertically, span_quad
from ocrd.engine.ocr_engine import _text_line
from ocrd.engine.recognize import Recognition, ctc_greedy_decode, word_spans
from ocrd.engine.results import TextLine, Word
from ocrd.outputs.writers import load_result_schema, result_json_text

CHARSET = ["a", "b", "c", " ", "\u3000"]  # class 0 is the CTC blank; class i is CHARSET[i - 1]
A, B, C, SPACE, IDEO_SPACE = 1, 2, 3, 4, 5


def probs_for(frames: int, marks: dict[int, int], classes: int = len(CHARSET) + 1, p: float = 0.9) -> np.ndarray:
    """(T, C): frame t puts `p` on class marks[t] (blank where unmarked) and spreads the rest evenly."""
    out = np.full((frames, classes), (1 - p) / (classes - 1), dtype=np.float32)
    for t in range(frames):
        out[t, marks.get(t, 0)] = p
    return out


def decode(frames: int, marks: dict[int, int], extent: float = 1.0, **kw) -> Recognition:
    (rec,) = ctc_greedy_decode(probs_for(frames, marks, **kw)[np.newaxis], CHARSET, [extent])
    return rec


def spans(rec: Recognition) -> np.ndarray:
    return np.array(rec.spans)


# ---------------------------------------------------------------- positions from the decode


def test_letters_meet_halfway_and_ends_reach_half_a_pitch():
    rec = decode(10, {1: A, 3: B})  # run centres 0.15 and 0.35 of the crop, pitch 0.2
    assert rec.text == "ab"
    np.testing.assert_allclose(spans(rec), [[0.05, 0.25], [0.25, 0.45]], atol=1e-9)


def test_a_repeated_run_is_one_character_centred_on_the_run():
    rec = decode(10, {1: A, 2: A, 5: B})  # a: frames 1-2 (centre 0.2), b: frame 5 (centre 0.55)
    assert rec.text == "ab"
    np.testing.assert_allclose(spans(rec), [[0.025, 0.375], [0.375, 0.725]], atol=1e-9)


def test_a_repeat_split_by_a_blank_is_two_characters():
    rec = decode(10, {1: A, 3: A, 5: B})
    assert rec.text == "aab"
    np.testing.assert_allclose(spans(rec), [[0.05, 0.25], [0.25, 0.45], [0.45, 0.65]], atol=1e-9)


def test_a_space_spans_the_gap_and_does_not_place_the_letters():
    rec = decode(10, {1: A, 3: B, 5: SPACE, 8: C})  # centres a .15, b .35, c .85; pitch inside "ab" .2
    assert rec.text == "ab c"
    np.testing.assert_allclose(spans(rec), [[0.05, 0.25], [0.25, 0.45], [0.45, 0.75], [0.75, 0.95]], atol=1e-9)
    words = word_spans(rec)
    assert [(w.text, round(w.start, 9), round(w.end, 9)) for w in words] == [("ab", 0.05, 0.45), ("c", 0.75, 0.95)]
    # Where in the gap the space was emitted does not matter.
    moved = decode(10, {1: A, 3: B, 7: SPACE, 8: C})
    assert moved.text == "ab c" and [(w.start, w.end) for w in word_spans(moved)] == [(w.start, w.end) for w in words]


def test_a_narrow_gap_is_not_crossed():
    rec = decode(10, {1: A, 2: SPACE, 3: B, 5: C})  # "a bc": a and b only 0.2 apart across the space
    assert rec.text == "a bc"
    a, space, b, _ = rec.spans
    assert a[1] <= 0.25 + 1e-9 <= b[0] + 1e-9  # neither word reaches past halfway
    assert space == (a[1], b[0])


def test_leading_and_trailing_spaces_are_stripped_with_their_positions():
    plain = decode(10, {2: A, 4: B})
    padded = decode(10, {0: SPACE, 2: A, 4: B, 7: SPACE})
    assert padded.text == plain.text == "ab"
    assert padded.spans == plain.spans and len(padded.probs) == 2
    # The line's confidence still counts every kept character, as before.
    assert padded.confidence == pytest.approx(0.9)


def test_whitespace_runs_collapse_to_one_space():
    rec = decode(10, {1: A, 3: SPACE, 5: IDEO_SPACE, 8: B})
    assert rec.text == "a b"
    assert len(rec.spans) == len(rec.probs) == 3
    a, space, b = rec.spans
    assert space == (a[1], b[0]) and a[1] < b[0]
    assert [w.text for w in word_spans(rec)] == ["a", "b"]


def test_one_letter_words_use_the_pitch_across_spaces():
    rec = decode(20, {2: A, 5: SPACE, 8: B})  # centres 0.125 and 0.425: one step across a space
    a, _, b = rec.spans
    half_pitch = 0.3 / 4
    np.testing.assert_allclose([a, b], [[0.125 - half_pitch, 0.125 + half_pitch], [0.425 - half_pitch, 0.425 + half_pitch]])


def test_a_lone_character_spans_the_crop():
    rec = decode(10, {4: C})
    assert rec.text == "c" and rec.spans == ((0.0, 1.0),)


def test_ends_are_clamped_to_the_crop():
    rec = decode(4, {0: A, 3: B})  # centres 0.125 and 0.875: half a pitch (0.375) beyond them is outside
    np.testing.assert_allclose(spans(rec), [[0.0, 0.5], [0.5, 1.0]])


def test_empty_decode_has_no_positions():
    rec = decode(6, {})
    assert (rec.text, rec.spans, rec.probs, rec.confidence) == ("", (), (), 0.0)
    assert word_spans(rec) == []
    only_spaces = decode(6, {1: SPACE, 3: SPACE})
    assert (only_spaces.text, only_spaces.spans) == ("", ())


def test_positions_are_fractions_of_the_crop_not_of_the_padded_batch():
    # The crop fills half the batch input; the frames after it read padding.
    rec = decode(10, {1: A, 3: B}, extent=0.5)
    np.testing.assert_allclose(spans(rec), [[0.1, 0.5], [0.5, 0.9]], atol=1e-9)


def test_a_class_beyond_the_charset_places_nothing():
    rec = decode(10, {1: A, 3: len(CHARSET) + 1, 5: B}, classes=len(CHARSET) + 2)
    assert rec.text == "ab" and len(rec.spans) == 2


def test_word_confidence_is_the_mean_of_its_characters():
    probs = probs_for(10, {1: A, 3: B, 5: SPACE, 7: C})
    probs[1, A], probs[3, B], probs[7, C] = 0.9, 0.5, 0.8
    (rec,) = ctc_greedy_decode(probs[np.newaxis], CHARSET)
    assert [(w.text, round(w.confidence, 6)) for w in word_spans(rec)] == [("ab", 0.7), ("c", 0.8)]


def test_batch_rows_get_their_own_extents():
    batch = np.stack([probs_for(10, {1: A, 3: B}), probs_for(10, {1: A, 3: B})])
    wide, narrow = ctc_greedy_decode(batch, CHARSET, [1.0, 0.5])
    assert narrow.spans[1][1] == pytest.approx(2 * wide.spans[1][1])


# ---------------------------------------------------------------- crop to page


def rect_quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def rotated_rect(cx: float, cy: float, w: float, h: float, degrees: float) -> np.ndarray:
    t = math.radians(degrees)
    cos, sin = math.cos(t), math.sin(t)
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return np.array([(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in corners], dtype=np.float32)


def test_axis_aligned_span():
    reading = reading_quad(rect_quad(100, 50, 300, 80), tall=False, flipped=False)
    np.testing.assert_allclose(span_quad(reading, 0.25, 0.5), rect_quad(150, 50, 200, 80))


def test_skewed_span_follows_the_line():
    quad = rotated_rect(200, 150, 200, 30, 20)
    box = span_quad(reading_quad(quad, tall=False, flipped=False), 0.25, 0.5)
    np.testing.assert_allclose(box, order_quad(box), atol=1e-4)  # clockwise from its top-left
    t = math.radians(20)
    np.testing.assert_allclose(box.mean(axis=0), [200 - 0.125 * 200 * math.cos(t), 150 - 0.125 * 200 * math.sin(t)], atol=1e-3)
    np.testing.assert_allclose(box[1] - box[0], [50 * math.cos(t), 50 * math.sin(t)], atol=1e-3)  # top edge along the line


def test_tall_crop_reads_from_the_quads_second_corner():
    quad = rect_quad(100, 0, 130, 300)  # a line running down the page (page turned clockwise)
    assert reads_vertically(quad)
    np.testing.assert_allclose(reading_quad(quad, tall=True, flipped=False), quad[[1, 2, 3, 0]])
    # The first quarter of the reading is the top quarter of the column.
    np.testing.assert_allclose(span_quad(reading_quad(quad, tall=True, flipped=False), 0, 0.25), rect_quad(100, 0, 130, 75))
    # Turned 180 as well (the page turned counter-clockwise): it starts at the bottom.
    np.testing.assert_allclose(span_quad(reading_quad(quad, tall=True, flipped=True), 0, 0.25), rect_quad(100, 225, 130, 300))


def test_flipped_line_reads_from_the_right():
    quad = rect_quad(100, 50, 300, 80)
    np.testing.assert_allclose(reading_quad(quad, tall=False, flipped=True), quad[[2, 3, 0, 1]])
    np.testing.assert_allclose(span_quad(reading_quad(quad, tall=False, flipped=True), 0, 0.25), rect_quad(250, 50, 300, 80))


CASES = {
    "axis-aligned": (rect_quad(60, 80, 360, 120), False),
    "skewed-20": (rotated_rect(220, 200, 300, 40, 20), False),
    "tall": (rect_quad(200, 40, 240, 380), False),
    "flipped": (rect_quad(60, 80, 360, 120), True),
    "tall-flipped": (rect_quad(200, 40, 240, 380), True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("along", [0.15, 0.5, 0.8])
def test_a_mark_found_in_the_crop_maps_back_onto_itself(case, along):
    """The mapping agrees with the crop the recognizer reads: crop_quad, then the classifier's 180 turn."""
    quad, flipped = CASES[case]
    reading_order_quad = order_quad(quad)
    tall = reads_vertically(reading_order_quad)
    assert tall == case.startswith("tall")
    # A dot on the line's centre line, `along` of the way in page terms from the quad's first corner.
    q = reading_order_quad
    dot = q[0] + (q[1] - q[0]) * along + (q[3] - q[0]) * 0.5
    if tall:
        dot = q[0] + (q[3] - q[0]) * along + (q[1] - q[0]) * 0.5
    image = np.full((420, 420, 3), 255, np.uint8)
    cv2.circle(image, tuple(int(round(v)) for v in dot), 4, (0, 0, 0), -1)
    crop = crop_quad(image, reading_order_quad)
    if flipped:
        crop = cv2.rotate(crop, cv2.ROTATE_180)
    columns = np.flatnonzero(crop.min(axis=(0, 2)) < 128)
    fraction = (columns.mean() + 0.5) / crop.shape[1]
    box = span_quad(reading_quad(reading_order_quad, tall=tall, flipped=flipped), fraction - 0.01, fraction + 0.01)
    assert cv2.pointPolygonTest(box.astype(np.float32).reshape(-1, 1, 2), tuple(float(v) for v in dot), True) >= -1.0


# ---------------------------------------------------------------- the engine's lines


def recognition(text: str) -> Recognition:
    """`text` with evenly spread characters."""
    n = len(text)
    return Recognition(text=text, confidence=0.9, spans=tuple((i / n, (i + 1) / n) for i in range(n)), probs=(0.9,) * n)


def test_words_of_a_line_rebuild_its_text_and_carry_boxes():
    box = DetectedBox(quad=rect_quad(100, 50, 400, 80), score=0.8)
    line = _text_line(box, recognition("Invoice 42 total"), tall=False, flipped=False)
    assert " ".join(w.text for w in line.words) == line.text == "Invoice 42 total"
    assert line.words[0].box == ((100.0, 50.0), (100 + 300 * 7 / 16, 50.0), (100 + 300 * 7 / 16, 80.0), (100.0, 80.0))
    assert line.box == tuple(map(tuple, rect_quad(100, 50, 400, 80).tolist()))
    assert len(line.chars) == len(line.text)
    assert line.reading_quad == line.box


def test_first_word_of_a_flipped_line_lies_at_the_right_end():
    box = DetectedBox(quad=rect_quad(100, 50, 400, 80), score=0.8)
    line = _text_line(box, recognition("ab cd"), tall=False, flipped=True)
    first, second = (np.array(w.box) for w in line.words)
    assert first[:, 0].min() >= 250 and second[:, 0].max() <= 250
    np.testing.assert_allclose(first, rect_quad(280, 50, 400, 80))  # still clockwise from the displayed top-left
    assert line.reading_quad[0] == (400.0, 80.0)  # the text's own top-left is the displayed bottom-right


def test_text_line_json_keeps_its_keys_and_adds_words_after_box():
    word = Word(text="Invoice", confidence=0.987654, box=((1.04, 2.06), (3.0, 2.0), (3.0, 4.0), (1.0, 4.0)))
    line = TextLine("Invoice", 0.9, 0.8, ((1, 2), (3, 2), (3, 4), (1, 4)), words=(word,), chars=((0.0, 1.0),) * 7)
    data = line.to_dict()
    assert list(data) == ["text", "confidence", "det_score", "box", "words"]
    assert data["words"] == [{"text": "Invoice", "box": [[1.0, 2.1], [3.0, 2.0], [3.0, 4.0], [1.0, 4.0]], "confidence": 0.9877}]
    assert "chars" not in data and "reading_quad" not in data
    assert TextLine("x", 0.9, 0.8, ((1, 2), (3, 2), (3, 4), (1, 4))).to_dict()["words"] == []


def page_json(words: list[dict]) -> dict:
    line = {"text": "a b", "confidence": 0.9, "det_score": 0.8, "box": [[0, 0], [9, 0], [9, 3], [0, 3]], "words": words}
    return {
        "schema": "ocrd/result/v1", "job_id": "J", "created_at": "2024-05-01T12:00:00Z",
        "source": {"inbox": None, "rel_path": "a.png", "sha256": "ab" * 32, "bytes": 1, "format": "png", "pages": 1},
        "engine": {"ocrd_version": "0", "model_set": "m", "models": {"det": {"file": "d", "sha256": "ab" * 32},
                   "rec": {"file": "r", "sha256": "ab" * 32}}, "params": {}},
        "pages": [{"index": 0, "width": 10, "height": 4, "orientation_applied": 0, "lines": [line],
                   "blocks": [{"box": [[0, 0], [9, 0], [9, 3], [0, 3]], "lines": [0]}], "text": "a b"}],
        "timings_ms": {"decode": 0, "detect": 0, "classify": 0, "recognize": 0, "total": 0},
    }  # fmt: skip


WORDS = [
    {"text": "a", "box": [[0, 0], [3, 0], [3, 3], [0, 3]], "confidence": 0.9},
    {"text": "b", "box": [[6, 0], [9, 0], [9, 3], [6, 3]], "confidence": 0.8},
]


def test_schema_accepts_words():
    jsonschema.validate(page_json(WORDS), load_result_schema(), cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d["pages"][0]["lines"][0].pop("words"), "line without words"),
        (lambda d: d["pages"][0]["lines"][0]["words"][0].pop("box"), "word without box"),
        (lambda d: d["pages"][0]["lines"][0]["words"][0]["box"].pop(), "word box with three points"),
        (lambda d: d["pages"][0]["lines"][0]["words"][0].update(confidence=1.2), "word confidence above 1"),
        (lambda d: d["pages"][0]["lines"][0]["words"][0].update(chars=[]), "unknown word field"),
        (lambda d: d["pages"][0]["lines"][0]["words"][0].update(text=""), "empty word"),
        (lambda d: d["pages"][0].pop("blocks"), "page without blocks"),
        (lambda d: d["pages"][0]["blocks"][0].update(lines=[]), "empty block"),
    ],
)
def test_schema_rejects_bad_words(mutate, why):
    data = page_json(json.loads(json.dumps(WORDS)))
    mutate(data)
    assert not jsonschema.Draft202012Validator(load_result_schema()).is_valid(data), why


def test_json_text_keeps_a_text_line_on_one_row_with_its_words_below():
    data = page_json(WORDS)
    text = result_json_text(data)
    assert json.loads(text) == data
    rows = text.splitlines()
    (line_row,) = [r for r in rows if '"text": "a b"' in r and '"det_score"' in r]
    assert line_row.rstrip().endswith('"words": [') and '"box": [[' in line_row
    first = rows.index(line_row)
    assert rows[first + 1].strip() == json.dumps(WORDS[0], separators=(", ", ": ")) + ","
    assert rows[first + 3].strip().startswith("]}")
