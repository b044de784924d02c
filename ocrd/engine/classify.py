"""Text-line angle classification (0 or 180 degrees) on line crops; owns flipping upside-down crops."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from ocrd.engine.runtime import OnnxModel


@dataclass(frozen=True, slots=True)
class ClassifyParams:
    thresh: float = 0.9
    batch_size: int = 6
    screen_lines: int = 0  # 0: classify every line
    input_width_px: int = 192
    input_height_px: int = 48
    max_windows: int = 3  # windows of a line longer than the input's aspect ratio (see line_windows)
    # A line is turned against its page's majority only when the model is at least this sure: one
    # misjudged line must not be read upside down on a page whose other lines say otherwise.
    minority_thresh: float = 0.99


def _normalised(resized: np.ndarray, width_px: int) -> np.ndarray:
    """CHW float tensor in [-1, 1], padded with zeros on the right to `width_px`."""
    height_px, w = resized.shape[:2]
    canvas = np.zeros((3, height_px, width_px), dtype=np.float32)
    canvas[:, :, :w] = (resized.astype(np.float32).transpose(2, 0, 1) / 127.5) - 1.0
    return canvas


def line_windows(crop: np.ndarray, height_px: int, width_px: int, max_windows: int) -> list[np.ndarray]:
    """What the classifier reads of one crop: the crop itself when it fits the input at its own aspect ratio,
    else up to `max_windows` input-sized windows of it at that scale (from its start to its end).

    Why windows: squeezing a line of 30 times its height into the 4:1 input turns letters into strokes
    the model cannot tell upright from turned, and it then "turns" upright lines of long-line documents.
    """
    h, w = crop.shape[:2]
    scaled_w = max(1, int(np.ceil(height_px * w / max(1, h))))
    resized = cv2.resize(crop, (scaled_w, height_px), interpolation=cv2.INTER_LINEAR)
    if scaled_w <= width_px:
        return [_normalised(resized, width_px)]
    count = min(max_windows, int(np.ceil(scaled_w / width_px)))
    starts = np.linspace(0, scaled_w - width_px, count).round().astype(int)
    return [_normalised(resized[:, start : start + width_px], width_px) for start in starts]


def page_flips(turned_prob: list[float | None], groups: list[int], thresh: float, minority_thresh: float) -> list[bool]:
    """Which lines to turn by 180 degrees, decided per page: the majority of each group of lines says
    which way the page lies, and a line against it needs `minority_thresh`.

    `turned_prob[i]`: the classifier's probability that line i is upside down (None: not classified,
    which only happens on a page whose screened lines were all upright). `groups[i]`: lines that
    share a direction on the page (along it, or up/down it on a page fed sideways) form one group.
    A group lies turned when more of its classified lines are turned (probability >= `thresh`) than
    not; then every line in it is turned unless the model is `minority_thresh` sure it is upright.
    """
    flips = [False] * len(turned_prob)
    for group in set(groups):
        members = [i for i, g in enumerate(groups) if g == group]
        known = [turned_prob[i] for i in members if turned_prob[i] is not None]
        turned_votes = sum(1 for p in known if p >= thresh)
        group_turned = 2 * turned_votes > len(known)
        for i in members:
            p = turned_prob[i]
            if group_turned:
                flips[i] = p is None or p > 1.0 - minority_thresh
            else:
                flips[i] = p is not None and p >= minority_thresh
    return flips


class AngleClassifier:
    """Decide per crop whether it is upside down; flip those that are, confidently."""

    def __init__(self, model: OnnxModel, params: ClassifyParams):
        self._model = model
        self._params = params

    def upright(self, crops: list[np.ndarray], groups: list[int] | None = None) -> tuple[list[np.ndarray], list[bool]]:
        """Return the crops with upside-down ones rotated by 180 degrees, and which were flipped.

        With `screen_lines`, the widest lines (the most text, the surest answer) are classified first
        and the others only when one of those is upside down: a scanned page is turned as a whole.
        Which lines turn is decided per page (`page_flips`) within each of `groups` (default: one).
        """
        p = self._params
        turned_prob: list[float | None] = [None] * len(crops)
        if 0 < p.screen_lines < len(crops):
            by_width = sorted(range(len(crops)), key=lambda i: -crops[i].shape[1] / max(1, crops[i].shape[0]))
            self._classify(crops, by_width[: p.screen_lines], turned_prob)
            if any(prob is not None and prob >= p.thresh for prob in turned_prob):
                self._classify(crops, by_width[p.screen_lines :], turned_prob)
        else:
            self._classify(crops, list(range(len(crops))), turned_prob)
        flipped = page_flips(turned_prob, groups or [0] * len(crops), p.thresh, p.minority_thresh)
        out = [cv2.rotate(crop, cv2.ROTATE_180) if flip else crop for crop, flip in zip(crops, flipped)]
        return out, flipped

    def _classify(self, crops: list[np.ndarray], indices: list[int], turned_prob: list[float | None]) -> None:
        """Classify crops[indices] in batches; store each one's probability of being upside down.

        A long line is read as several windows; its answer is their mean, so one window of blank
        space or a stray mark cannot turn it alone.
        """
        p = self._params
        owners: list[int] = []  # crop index of each window
        windows: list[np.ndarray] = []
        for index in indices:
            parts = line_windows(crops[index], p.input_height_px, p.input_width_px, p.max_windows)
            owners += [index] * len(parts)
            windows += parts
        sums: dict[int, np.ndarray] = {}
        for start in range(0, len(windows), p.batch_size):
            probs = self._model.run(np.stack(windows[start : start + p.batch_size]))
            for index, row in zip(owners[start : start + p.batch_size], probs):
                sums[index] = sums.get(index, 0) + np.asarray(row, dtype=np.float64)
        window_counts = Counter(owners)
        for index in indices:
            mean = sums[index] / window_counts[index]
            turned_prob[index] = float(mean[1])  # class 1: rotated by 180 degrees
