"""Unit tests for ocrd.engine.geometry: quad ordering, unclip, perspective crop, reading order."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ocrd.engine.geometry import (
    crop_quad,
    order_quad,
    page_turn,
    quad_size,
    reading_order,
    reading_rows,
    unclip,
    upright_page_points,
)


def rect_quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Clockwise from top-left, image coordinates (y down)."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def rotated_rect(cx: float, cy: float, w: float, h: float, degrees: float) -> np.ndarray:
    """Corners TL, TR, BR, BL of a w x h box turned clockwise on screen by `degrees` around its centre."""
    t = math.radians(degrees)
    cos, sin = math.cos(t), math.sin(t)
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return np.array([(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in corners], dtype=np.float32)


# ---------------------------------------------------------------- order_quad


@pytest.mark.parametrize("perm", [(0, 1, 2, 3), (2, 0, 3, 1), (3, 2, 1, 0), (1, 3, 0, 2), (2, 3, 0, 1)])
def test_order_quad_axis_aligned_any_input_order(perm):
    quad = rect_quad(10, 20, 110, 50)
    ordered = order_quad(quad[list(perm)])
    np.testing.assert_allclose(ordered, quad)


@pytest.mark.parametrize("degrees", [-30, -10, -3, 3, 10, 30])
@pytest.mark.parametrize("perm", [(0, 1, 2, 3), (3, 1, 0, 2), (2, 0, 1, 3)])
def test_order_quad_rotated_box_clockwise_from_its_top_left(degrees, perm):
    expected = rotated_rect(200, 100, 160, 30, degrees)
    ordered = order_quad(expected[list(perm)])
    np.testing.assert_allclose(ordered, expected, atol=1e-4)


def test_order_quad_result_is_clockwise_on_screen():
    ordered = order_quad(rotated_rect(50, 50, 40, 20, 20)[[2, 0, 3, 1]])
    # Shoelace sum is positive for a clockwise polygon when y points down.
    x, y = ordered[:, 0], ordered[:, 1]
    assert float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)) > 0


def test_order_quad_accepts_flat_and_integer_input():
    ordered = order_quad(np.array([5, 9, 1, 1, 5, 1, 1, 9]))
    assert ordered.dtype == np.float32
    np.testing.assert_allclose(ordered, rect_quad(1, 1, 5, 9))


# ---------------------------------------------------------------- unclip


@pytest.mark.parametrize("ratio", [0.5, 1.5, 2.0])
def test_unclip_grows_rectangle_by_area_ratio_over_perimeter(ratio):
    w, h = 100.0, 20.0
    grown = unclip(rect_quad(50, 40, 50 + w, 40 + h), ratio)
    assert grown is not None and grown.ndim == 2 and grown.shape[1] == 2
    offset = w * h * ratio / (2 * (w + h))
    x0, y0 = grown.min(axis=0)
    x1, y1 = grown.max(axis=0)
    # Rounded joins on an integer grid: within a pixel of the exact offset on every side.
    assert x0 == pytest.approx(50 - offset, abs=1.0)
    assert x1 == pytest.approx(50 + w + offset, abs=1.0)
    assert y0 == pytest.approx(40 - offset, abs=1.0)
    assert y1 == pytest.approx(40 + h + offset, abs=1.0)


def test_unclip_larger_ratio_grows_more():
    quad = rect_quad(0, 0, 60, 12)
    small, large = unclip(quad, 1.0), unclip(quad, 3.0)
    assert np.ptp(large[:, 1]) > np.ptp(small[:, 1]) > 12


@pytest.mark.parametrize(
    "points",
    [
        [[5, 5], [5, 5], [5, 5], [5, 5]],  # a single point: no perimeter
        [[0, 0], [10, 0], [20, 0], [30, 0]],  # collinear: no area
    ],
    ids=["point", "collinear"],
)
def test_unclip_degenerate_input_returns_none(points):
    assert unclip(np.array(points, dtype=np.float32), 1.6) is None


# ---------------------------------------------------------------- crop_quad


def test_crop_quad_output_size_matches_quad():
    image = np.full((100, 200, 3), 255, np.uint8)
    crop = crop_quad(image, rect_quad(20, 30, 140, 60))
    assert crop.shape == (30, 120, 3)


def test_crop_quad_content_is_the_quad_region():
    image = np.full((100, 200, 3), 255, np.uint8)
    image[30:60, 20:80] = 0  # left half of the quad is black
    crop = crop_quad(image, rect_quad(20, 30, 140, 60))
    assert crop[:, 5:55].mean() < 30
    assert crop[:, 65:115].mean() > 225


def test_crop_quad_rotated_quad_is_straightened():
    image = np.full((300, 300, 3), 255, np.uint8)
    quad = rotated_rect(150, 150, 160, 40, 20)
    cv2.fillPoly(image, [quad.round().astype(np.int32)], (0, 0, 0))
    crop = crop_quad(image, quad)
    assert crop.shape[:2] == (40, 160)
    assert crop[3:-3, 3:-3].mean() < 30  # all black inside: the box was followed, not its bounding rect


def test_crop_quad_tall_crop_is_turned_counter_clockwise():
    image = np.full((200, 100, 3), 255, np.uint8)
    image[10:30, 40:60] = 0  # marker at the top of a tall 20 x 100 region
    crop = crop_quad(image, rect_quad(40, 10, 60, 110))
    assert crop.shape[:2] == (20, 100)  # now wide
    # Counter-clockwise: the region's top becomes the crop's left end.
    assert crop[:, :15].mean() < 30
    assert crop[:, 30:].mean() > 225


def test_crop_quad_moderately_tall_crop_is_not_turned():
    image = np.full((200, 200, 3), 255, np.uint8)
    crop = crop_quad(image, rect_quad(10, 10, 50, 60))  # 40 wide, 50 tall: below the 1.5 factor
    assert crop.shape[:2] == (50, 40)


def test_quad_size_of_ordered_rect():
    assert quad_size(rect_quad(0, 0, 30, 10)) == pytest.approx((30.0, 10.0))


# ---------------------------------------------------------------- reading_order


def test_reading_order_empty():
    assert reading_order([]) == []


def test_reading_order_two_columns_several_rows_row_major():
    # Left and right column, three rows each, given shuffled. Rows go top to bottom, left to right inside a row.
    layout = {
        "L1": rect_quad(20, 20, 180, 40),
        "R1": rect_quad(220, 22, 380, 42),
        "L2": rect_quad(20, 70, 160, 90),
        "R2": rect_quad(220, 68, 360, 88),
        "L3": rect_quad(20, 120, 170, 140),
        "R3": rect_quad(220, 121, 300, 141),
    }
    names = ["R3", "L1", "R2", "L3", "R1", "L2"]
    order = reading_order([layout[n] for n in names])
    assert [names[i] for i in order] == ["L1", "R1", "L2", "R2", "L3", "R3"]


def test_reading_order_is_a_permutation():
    rng = np.random.default_rng(3)
    quads = [rect_quad(x, y, x + 50, y + 15) for x, y in rng.integers(0, 500, (25, 2))]
    assert sorted(reading_order(quads)) == list(range(25))


def test_reading_order_slight_downward_skew_keeps_words_in_line_order():
    # Three lines of three words, each word 4 px lower than the previous one (about 1 degree).
    quads, names = [], []
    for line in range(3):
        for word in range(3):
            y = 100 + 50 * line + 4 * word
            quads.append(rect_quad(20 + 120 * word, y, 120 + 120 * word, y + 20))
            names.append(f"{line}.{word}")
    shuffled = [8, 0, 4, 2, 6, 1, 5, 3, 7]
    order = reading_order([quads[i] for i in shuffled])
    assert [names[shuffled[i]] for i in order] == names


def test_reading_rows_group_the_boxes_of_one_printed_row():
    # A receipt: a label and its amount far apart on each row, a heading alone on the first.
    layout = {
        "head": rect_quad(150, 10, 350, 40),
        "label1": rect_quad(20, 60, 120, 80),
        "amount1": rect_quad(400, 61, 460, 81),
        "label2": rect_quad(20, 100, 140, 120),
        "amount2": rect_quad(390, 99, 460, 119),
    }
    names = ["amount2", "label1", "head", "amount1", "label2"]
    rows = reading_rows([layout[n] for n in names])
    assert [[names[i] for i in row] for row in rows] == [["head"], ["label1", "amount1"], ["label2", "amount2"]]
    assert reading_order([layout[n] for n in names]) == [i for row in rows for i in row]


def test_reading_rows_keep_lines_of_different_heights_apart():
    # A tall heading next to the top of a small-print line: centres differ by more than half the smaller height.
    quads = [rect_quad(20, 10, 300, 70), rect_quad(320, 12, 420, 26)]
    assert reading_rows(quads) == [[0], [1]]  # two rows, ordered by their top edge


def test_reading_order_slight_upward_skew_two_words():
    quads = [rect_quad(300, 96, 400, 116), rect_quad(20, 104, 120, 124)]  # right word 8 px higher
    assert reading_order(quads) == [1, 0]


def test_reading_order_upward_skew_long_line_stays_one_row():
    # Five words on one printed line, each 3 px higher than the previous (20 px tall: neighbours overlap 85 %).
    quads = [rect_quad(20 + 110 * i, 112 - 3 * i, 120 + 110 * i, 132 - 3 * i) for i in range(5)]
    assert reading_order(quads) == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------- pages lying turned


@pytest.mark.parametrize(
    ("vertical", "flipped", "turn"),
    [
        ([False, False, True], [False, False, False], 0),  # one vertical stamp on an upright page
        ([False, False, False], [True, True, False], 180),
        ([True, True, False], [False, False, False], 90),  # crops turned counter-clockwise came out upright
        ([True, True, True], [True, True, False], 270),  # ... came out upside down
        ([], [], 0),
    ],
)
def test_page_turn_from_the_lines(vertical, flipped, turn):
    assert page_turn(vertical, flipped) == turn


@pytest.mark.parametrize(
    ("turn", "rotate"),
    [(90, cv2.ROTATE_90_CLOCKWISE), (180, cv2.ROTATE_180), (270, cv2.ROTATE_90_COUNTERCLOCKWISE)],
)
def test_upright_page_points_undo_the_turn(turn, rotate):
    # A mark at the top-left of a 40 x 30 page, and where it lies once the page is turned.
    page = np.zeros((30, 40), np.uint8)
    page[2:6, 3:9] = 255
    shown = cv2.rotate(page, rotate)
    ys, xs = np.nonzero(shown)
    displayed = rect_quad(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    back = upright_page_points(displayed, turn, shown.shape[1], shown.shape[0])
    assert (back[:, 0].min(), back[:, 1].min(), back[:, 0].max(), back[:, 1].max()) == (3, 2, 9, 6)
    assert (upright_page_points(displayed, 0, 1, 1) == displayed).all()


def test_grown_across_makes_a_line_taller_above_and_below_and_keeps_its_length():
    from ocrd.engine.geometry import grown_across, quad_size

    wide = np.array([[10, 50], [210, 40], [211, 60], [11, 70]], dtype=np.float32)  # a slanted line
    grown = grown_across(wide, 0.25)
    assert quad_size(grown)[0] == pytest.approx(quad_size(wide)[0])
    assert quad_size(grown)[1] == pytest.approx(quad_size(wide)[1] * 1.5)
    assert np.allclose(grown.mean(axis=0), wide.mean(axis=0))  # as much above as below
    tall = np.array([[0, 0], [20, 0], [20, 100], [0, 100]], dtype=np.float32)  # a vertical line: text height is x
    assert grown_across(tall, 0.1).tolist() == [[-2, 0], [22, 0], [22, 100], [-2, 100]]
    assert grown_across(wide, 0.0).tolist() == wide.tolist()
