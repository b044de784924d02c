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
        """Return the crops with upside-down ones rotated by 180 degrees, and which were flipped."""
        flipped = [False] * len(crops)
        out = list(crops)
        p = self._params
        for start in range(0, len(crops), p.batch_size):
            chunk = crops[start : start + p.batch_size]
            batch = np.stack([_line_tensor(c, p.input_height_px, p.input_width_px) for c in chunk])
            probs = self._model.run(batch)
            for offset, row in enumerate(probs):
                if int(np.argmax(row)) == 1 and float(row[1]) >= p.thresh:
                    index = start + offset
                    out[index] = cv2.rotate(crops[index], cv2.ROTATE_180)
                    flipped[index] = True
        return out, flipped
