"""Text detection with a DB (differentiable binarization) model: resize policy, model call, box post-processing.

Owns turning a BGR page into scored text quads in page pixels. Knows nothing
about recognition, files or outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ocrd.engine.geometry import min_area_quad, unclip
from ocrd.engine.models import Normalization
from ocrd.engine.runtime import OnnxModel

# DB models downsample by 32; inputs must be multiples of it.
_STRIDE_PX = 32


@dataclass(frozen=True, slots=True)
class DetectParams:
    limit_side_px: int = 960
    limit_type: str = "max"  # max: fit the longer side to the limit; min: grow so the shorter side >= limit
    # With limit_type max, small pages are enlarged toward the limit by at most this
    # factor: DB misses small glyphs (a trailing comma, a thin dash) at low resolution.
    max_upscale: float = 2.0
    max_side_px: int = 4000  # hard cap for limit_type=min so a huge page cannot blow up the detector
    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    max_candidates: int = 1000
    min_size_px: int = 3
    dilate: bool = False


@dataclass(frozen=True, slots=True)
class DetectedBox:
    quad: np.ndarray  # (4, 2) float32, clockwise from top-left, page pixels
    score: float


def detector_input_size(height_px: int, width_px: int, params: DetectParams) -> tuple[int, int]:
    """(height, width) the page is resized to before detection, multiples of 32."""
    if params.limit_type == "min":
        cap_px = params.max_side_px
        ratio = max(1.0, params.limit_side_px / max(1, min(height_px, width_px)))
    else:
        cap_px = params.limit_side_px
        ratio = params.max_upscale
    ratio = min(ratio, cap_px / max(1, max(height_px, width_px)))

    def fit(side_px: int) -> int:
        # Nearest multiple of 32, but never past the cap (round down there).
        size = max(_STRIDE_PX, int(round(side_px * ratio / _STRIDE_PX)) * _STRIDE_PX)
        if size > cap_px:
            size = max(_STRIDE_PX, (cap_px // _STRIDE_PX) * _STRIDE_PX)
        return size

    return fit(height_px), fit(width_px)


def _box_score(prob: np.ndarray, quad: np.ndarray) -> float:
    """Mean text probability inside the quad (evaluated on its bounding box only, for speed)."""
    h, w = prob.shape
    x0 = int(np.clip(np.floor(quad[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(quad[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(quad[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(quad[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    shifted = (quad - np.array([x0, y0], dtype=np.float32)).round().astype(np.int32)
    cv2.fillPoly(mask, [shifted], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def boxes_from_probability_map(
    prob: np.ndarray, page_height_px: int, page_width_px: int, params: DetectParams
) -> list[DetectedBox]:
    """DB post-processing: threshold, contours, score, unclip, rescale to page pixels.

    Pure function of the probability map; unit-tested on synthetic maps.
    """
    map_h, map_w = prob.shape
    bitmap = (prob > params.thresh).astype(np.uint8)
    if params.dilate:
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), dtype=np.uint8))
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    scale_x = page_width_px / map_w
    scale_y = page_height_px / map_h
    boxes: list[DetectedBox] = []
    for contour in contours[: params.max_candidates]:
        if len(contour) < 3:
            continue
        quad, short_side = min_area_quad(contour)
        if short_side < params.min_size_px:
            continue
        score = _box_score(prob, quad)
        if score < params.box_thresh:
            continue
        grown = unclip(quad, params.unclip_ratio)
        if grown is None:
            continue
        quad, short_side = min_area_quad(grown.reshape(-1, 1, 2))
        if short_side < params.min_size_px + 2:
            continue
        quad[:, 0] = np.clip(quad[:, 0] * scale_x, 0, page_width_px - 1)
        quad[:, 1] = np.clip(quad[:, 1] * scale_y, 0, page_height_px - 1)
        width = np.linalg.norm(quad[0] - quad[1])
        height = np.linalg.norm(quad[0] - quad[3])
        if width <= 3 or height <= 3:
            continue
        boxes.append(DetectedBox(quad=quad.astype(np.float32), score=score))
    return boxes


class TextDetector:
    """Pre-process a page, run the DB model once, and post-process its probability map."""

    def __init__(self, model: OnnxModel, norm: Normalization, params: DetectParams):
        self._model = model
        self._params = params
        # Fold 1/255, mean and std into one multiply-add per channel.
        std = np.asarray(norm.std, dtype=np.float32)
        self._scale = (1.0 / (255.0 * std)).reshape(1, 1, 3)
        self._offset = (-np.asarray(norm.mean, dtype=np.float32) / std).reshape(1, 1, 3)

    @property
    def params(self) -> DetectParams:
        return self._params

    def input_batch(self, image: np.ndarray) -> np.ndarray:
        """The model's input for a BGR page: resized by the policy, normalised, NCHW float32."""
        page_h, page_w = image.shape[:2]
        in_h, in_w = detector_input_size(page_h, page_w, self._params)
        interpolation = cv2.INTER_AREA if in_h * in_w < page_h * page_w else cv2.INTER_LINEAR
        resized = cv2.resize(image, (in_w, in_h), interpolation=interpolation)
        tensor = resized.astype(np.float32)
        tensor *= self._scale
        tensor += self._offset
        return np.ascontiguousarray(tensor.transpose(2, 0, 1)[np.newaxis])

    def detect(self, image: np.ndarray) -> list[DetectedBox]:
        page_h, page_w = image.shape[:2]
        prob = self._model.run(self.input_batch(image))[0, 0]
        return boxes_from_probability_map(prob, page_h, page_w, self._params)
