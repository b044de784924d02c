"""Unit tests for DB post-processing (`boxes_from_probability_map`) and the detector's resize policy."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from ocrd.engine.detect import DetectParams, boxes_from_probability_map, detector_input_size

PARAMS = DetectParams()  # thresh 0.3, box_thresh 0.5, unclip 1.6, min_size 3


def prob_map(height: int, width: int, blobs: list[tuple[int, int, int, int, float]]) -> np.ndarray:
    """Float32 map of zeros with rectangles (x0, y0, x1, y1 exclusive, value)."""
    prob = np.zeros((height, width), dtype=np.float32)
    for x0, y0, x1, y1, value in blobs:
        prob[y0:y1, x0:x1] = value
    return prob


def bounds(quad: np.ndarray) -> tuple[float, float, float, float]:
    return float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max())


def test_one_rectangle_gives_one_grown_box_at_its_place():
    prob = prob_map(100, 200, [(40, 30, 140, 50, 0.9)])  # 100 x 20 kernel
    boxes = boxes_from_probability_map(prob, 100, 200, PARAMS)
    assert len(boxes) == 1
    box = boxes[0]
    assert box.score == pytest.approx(0.9, abs=0.02)
    assert box.quad.shape == (4, 2) and box.quad.dtype == np.float32
    x0, y0, x1, y1 = bounds(box.quad)
    # Contour through pixel centres: 99 x 19; unclip offset = area * ratio / perimeter.
    offset = 99 * 19 * PARAMS.unclip_ratio / (2 * (99 + 19))
    assert x0 == pytest.approx(40 - offset, abs=1.5)
    assert x1 == pytest.approx(139 + offset, abs=1.5)
    assert y0 == pytest.approx(30 - offset, abs=1.5)
    assert y1 == pytest.approx(49 + offset, abs=1.5)


def test_box_is_ordered_clockwise_from_top_left():
    prob = prob_map(100, 200, [(40, 30, 140, 50, 0.9)])
    quad = boxes_from_probability_map(prob, 100, 200, PARAMS)[0].quad
    tl, tr, br, bl = quad
    assert tl[0] < tr[0] and bl[0] < br[0]
    assert tl[1] < bl[1] and tr[1] < br[1]


def test_boxes_are_rescaled_to_page_size():
    prob = prob_map(100, 200, [(40, 30, 140, 50, 0.9)])
    on_map = bounds(boxes_from_probability_map(prob, 100, 200, PARAMS)[0].quad)
    on_page = bounds(boxes_from_probability_map(prob, 300, 500, PARAMS)[0].quad)  # x * 2.5, y * 3
    assert on_page == pytest.approx((on_map[0] * 2.5, on_map[1] * 3, on_map[2] * 2.5, on_map[3] * 3), abs=0.01)


def test_boxes_are_clipped_to_the_page():
    prob = prob_map(64, 128, [(0, 0, 60, 12, 0.95)])  # touching the top-left corner
    (box,) = boxes_from_probability_map(prob, 640, 1280, PARAMS)
    assert box.quad.min() >= 0
    assert box.quad[:, 0].max() <= 1279 and box.quad[:, 1].max() <= 639


def test_weak_blob_below_box_thresh_is_dropped():
    # 0.4 passes the pixel threshold (0.3) but its mean score is under box_thresh (0.5).
    prob = prob_map(100, 200, [(20, 10, 120, 30, 0.9), (20, 60, 120, 80, 0.4)])
    boxes = boxes_from_probability_map(prob, 100, 200, PARAMS)
    assert len(boxes) == 1
    assert bounds(boxes[0].quad)[1] < 30
    assert len(boxes_from_probability_map(prob, 100, 200, replace(PARAMS, box_thresh=0.35))) == 2


def test_pixels_at_or_below_thresh_are_background():
    prob = prob_map(100, 200, [(20, 10, 120, 30, 0.3)])
    assert boxes_from_probability_map(prob, 100, 200, PARAMS) == []


def test_tiny_blob_below_min_size_is_dropped():
    prob = prob_map(100, 200, [(20, 10, 120, 30, 0.9), (160, 70, 162, 72, 0.9)])  # a 2 x 2 speck
    boxes = boxes_from_probability_map(prob, 100, 200, PARAMS)
    assert len(boxes) == 1
    assert bounds(boxes[0].quad)[2] < 150


def test_min_size_applies_to_the_short_side():
    prob = prob_map(100, 200, [(20, 40, 180, 43, 0.9)])  # long but only 3 px tall: short side 2 px
    assert boxes_from_probability_map(prob, 100, 200, PARAMS) == []
    assert len(boxes_from_probability_map(prob, 100, 200, replace(PARAMS, min_size_px=1))) == 1


def test_max_candidates_limits_the_contours_considered():
    blobs = [(10, 10 + 18 * i, 150, 22 + 18 * i, 0.9) for i in range(5)]
    prob = prob_map(120, 200, blobs)
    assert len(boxes_from_probability_map(prob, 120, 200, PARAMS)) == 5
    assert len(boxes_from_probability_map(prob, 120, 200, replace(PARAMS, max_candidates=2))) == 2


def test_two_separate_lines_give_two_boxes():
    prob = prob_map(120, 240, [(20, 20, 200, 36, 0.8), (20, 70, 160, 86, 0.85)])
    boxes = boxes_from_probability_map(prob, 120, 240, PARAMS)
    assert len(boxes) == 2
    tops = sorted(bounds(b.quad)[1] for b in boxes)
    assert tops[0] < 20 and 45 < tops[1] < 70
    for box in boxes:
        assert 0.75 < box.score < 0.9


def test_empty_map_gives_no_boxes():
    assert boxes_from_probability_map(np.zeros((64, 64), np.float32), 640, 640, PARAMS) == []


def test_rotated_blob_gives_rotated_box():
    prob = np.zeros((200, 200), np.float32)
    rect = ((100.0, 100.0), (120.0, 20.0), 15.0)
    cv2.fillPoly(prob, [cv2.boxPoints(rect).round().astype(np.int32)], 0.9)
    (box,) = boxes_from_probability_map(prob, 200, 200, PARAMS)
    tl, tr = box.quad[0], box.quad[1]
    angle = np.degrees(np.arctan2(tr[1] - tl[1], tr[0] - tl[0]))
    assert angle == pytest.approx(15, abs=2)


# ---------------------------------------------------------------- detector_input_size


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ((1000, 2000), (480, 960)),  # shrunk: longer side = limit
        ((2000, 1000), (960, 480)),
        ((100, 50), (192, 96)),  # small pages grow by at most max_upscale (2x); multiples of 32
        ((600, 300), (960, 480)),  # grows only until the longer side meets the limit (1.6x)
        ((10, 10), (32, 32)),  # at least one stride
        ((5, 3000), (32, 960)),
    ],
)
def test_input_size_max_policy(page, expected):
    assert detector_input_size(*page, DetectParams(limit_side_px=960, limit_type="max")) == expected


def test_input_size_max_upscale_one_never_enlarges():
    assert detector_input_size(100, 50, DetectParams(limit_side_px=960, max_upscale=1.0)) == (96, 64)


@pytest.mark.parametrize(("h", "w"), [(1, 1), (37, 1001), (480, 640), (2339, 1654), (4000, 100), (777, 333)])
@pytest.mark.parametrize("limit_type", ["max", "min"])
def test_input_size_is_multiple_of_32(h, w, limit_type):
    out_h, out_w = detector_input_size(h, w, DetectParams(limit_type=limit_type, limit_side_px=736))
    assert out_h % 32 == 0 and out_w % 32 == 0
    assert out_h >= 32 and out_w >= 32


def test_input_size_min_policy_grows_short_side_to_limit():
    params = DetectParams(limit_side_px=736, limit_type="min", max_side_px=4000)
    assert detector_input_size(100, 200, params) == (736, 1472)
    assert detector_input_size(1000, 1500, params) == (992, 1504)  # already large enough: not shrunk


def test_input_size_min_policy_is_capped_by_max_side():
    params = DetectParams(limit_side_px=960, limit_type="min", max_side_px=4000)
    out_h, out_w = detector_input_size(100, 2000, params)
    assert out_w == 4000 and out_h == 192  # ratio capped at 4000 / 2000 instead of 9.6
    assert max(detector_input_size(50, 3000, params)) <= 4000


def test_input_size_never_exceeds_a_cap_that_is_not_a_multiple_of_32():
    assert max(detector_input_size(100, 2000, DetectParams(limit_type="min", max_side_px=1010))) <= 1010
    assert max(detector_input_size(500, 1010, DetectParams(limit_type="max", limit_side_px=1010))) <= 1010
