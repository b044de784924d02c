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


class AngleClassifier:
    """Decide per crop whether it is upside down; flip those that are, confidently."""

    def __init__(self, model: OnnxModel, params: ClassifyParams):
        self._model = model
        self._params = params

    def upright(self, crops: list[np.ndarray]) -> tuple[list[np.ndarray], list[bool]]:
        """Return the crops with upside-down ones rotated by 180 degrees, and which were flipped.

        With `screen_lines`, the widest lines (the most text, the surest answer) are classified first
        and the others only when one of those is upside down: a scanned page is turned as a whole.
        """
        flipped = [False] * len(crops)
        out = list(crops)
        p = self._params
        if 0 < p.screen_lines < len(crops):
            by_width = sorted(range(len(crops)), key=lambda i: -crops[i].shape[1] / max(1, crops[i].shape[0]))
            if not self._classify(crops, by_width[: p.screen_lines], out, flipped):
                return out, flipped
            self._classify(crops, by_width[p.screen_lines :], out, flipped)
        else:
            self._classify(crops, list(range(len(crops))), out, flipped)
        return out, flipped

    def _classify(self, crops: list[np.ndarray], indices: list[int], out: list[np.ndarray], flipped: list[bool]) -> bool:
        """Classify crops[indices] in batches; rotate (in `out`) and mark the upside-down ones; True if any.

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
        found = False
        for index in indices:
            mean = sums[index] / window_counts[index]
            if int(np.argmax(mean)) == 1 and float(mean[1]) >= p.thresh:
                out[index] = cv2.rotate(crops[index], cv2.ROTATE_180)
                flipped[index] = True
                found = True
        return found
