"""The angle classifier's input: a line crop as the model reads it (whole, or by windows when long)."""

from __future__ import annotations

import numpy as np

from ocrd.engine.classify import line_windows


def test_a_long_crop_is_read_as_windows_from_its_start_to_its_end():
    crop = np.zeros((30, 900, 3), np.uint8)  # 30:1 -> 1440 px wide at the input's 48 px height
    crop[:, :6] = 255  # a mark at the very start and one at the very end
    crop[:, -6:] = 255
    windows = line_windows(crop, 48, 192, max_windows=3)
    assert len(windows) == 3 and all(w.shape == (3, 48, 192) for w in windows)
    assert windows[0][0, :, 0].max() > 0.9 and windows[-1][0, :, -1].max() > 0.9  # start and end covered
    assert windows[1].max() < -0.9  # the middle window: the crop's dark middle, not squeezed marks
    (short,) = line_windows(np.zeros((30, 90, 3), np.uint8), 48, 192, max_windows=3)  # fits: read whole
    assert short.shape == (3, 48, 192) and (short[:, :, 144:] == 0).all()  # padded on the right


def test_a_page_lies_the_way_most_of_its_lines_say():
    from ocrd.engine.classify import page_flips

    # Five lines of an upside-down page; the classifier misjudged line 2 (0.6: below thresh).
    assert page_flips([0.97, 0.95, 0.6, 0.99, 0.93], [0] * 5, 0.9, 0.99) == [True] * 5
    # A line the model is sure is upright stays upright even on a turned page.
    assert page_flips([0.97, 0.95, 0.001, 0.99, 0.93], [0] * 5, 0.9, 0.99) == [True, True, False, True, True]


def test_one_line_against_an_upright_page_needs_strong_evidence():
    from ocrd.engine.classify import page_flips

    assert page_flips([0.02, 0.95, 0.01, 0.03], [0] * 4, 0.9, 0.99) == [False] * 4
    assert page_flips([0.02, 0.995, 0.01, 0.03], [0] * 4, 0.9, 0.99) == [False, True, False, False]
    # A lone line is its own page: the usual threshold decides.
    assert page_flips([0.92], [0], 0.9, 0.99) == [True]
    assert page_flips([0.85], [0], 0.9, 0.99) == [False]


def test_unscreened_lines_follow_their_group_and_groups_decide_apart():
    from ocrd.engine.classify import page_flips

    # Screening found no turned line: the unclassified lines stay as they are.
    assert page_flips([0.01, 0.02, None, None], [0] * 4, 0.9, 0.99) == [False] * 4
    # Lines running up the page (group 1) lie turned; the short horizontal ones (group 0) do not.
    probs = [0.95, 0.97, None, 0.05, 0.02]
    assert page_flips(probs, [1, 1, 1, 0, 0], 0.9, 0.99) == [True, True, True, False, False]
    assert page_flips([], [], 0.9, 0.99) == []
