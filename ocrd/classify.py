"""Text-line angle classification (0 or 180 degrees) on line crops; owns flipping upside-down crops."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ocrd.runtime import OnnxModel


@dataclass(frozen=True, slots=True)
class ClassifyParams:
    thresh: float = 0.9
    batch_size: int = 6
    screen_lines: int = 0  # 0: classify every line
    input_width_px: int = 192
    input_height_px: int = 48


def _line_tensor(crop: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    """Resize keeping aspect ratio into a height x width canvas, padded with zeros on the right."""
    h, w = crop.shape[:2]
    target_w = min(width_px, max(1, int(np.ceil(height_px * w / max(1, h)))))
    resized = cv2.resize(crop, (target_w, height_px), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    canvas = np.zeros((3, height_px, width_px), dtype=np.float32)
    canvas[:, :, :target_w] = (resized.transpose(2, 0, 1) / 127.5) - 1.0
    return canvas


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
        """Classify crops[indices] in batches; rotate (in `out`) and mark the upside-down ones; True if any."""
        p = self._params
        found = False
        for start in range(0, len(indices), p.batch_size):
            chunk = indices[start : start + p.batch_size]
            batch = np.stack([_line_tensor(crops[i], p.input_height_px, p.input_width_px) for i in chunk])
            probs = self._model.run(batch)
            for index, row in zip(chunk, probs):
                if int(np.argmax(row)) == 1 and float(row[1]) >= p.thresh:
                    out[index] = cv2.rotate(crops[index], cv2.ROTATE_180)
                    flipped[index] = True
                    found = True
        return found
