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
