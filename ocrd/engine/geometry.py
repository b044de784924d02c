"""Box geometry: quad ordering, polygon unclip, perspective crop (and mapping places along a crop back
to the page), page turn and reading order.

The only importer of pyclipper. Pure functions on numpy arrays; no model code.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pyclipper


def order_quad(points: np.ndarray) -> np.ndarray:
    """Return the four corners clockwise starting at the top-left one (image coordinates, y down).

    Sorting by angle around the centroid is robust for rotated boxes where the
    classic sum/difference trick picks the same corner twice.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    center = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - center[1], pts[:, 0] - center[0])
    pts = pts[np.argsort(angles)]  # clockwise on screen because y points down
    # Start at the corner nearest the top-left: smallest x + y.
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return np.roll(pts, -start, axis=0)


def min_area_quad(contour: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimum-area rectangle around a contour as an ordered quad, plus its shorter side in pixels."""
    rect = cv2.minAreaRect(contour)
    quad = order_quad(cv2.boxPoints(rect))
    return quad, float(min(rect[1]))


def unclip(quad: np.ndarray, ratio: float) -> np.ndarray | None:
    """Grow a polygon by area * ratio / perimeter (the DB paper's offset), or None if it vanishes.

    The detector is trained on shrunk text kernels; this restores the full line extent.
    """
    poly = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
    area = abs(cv2.contourArea(poly.astype(np.float32)))
    perimeter = cv2.arcLength(poly.astype(np.float32), True)
    if perimeter <= 0:
        return None
    distance = area * ratio / perimeter
    offset = pyclipper.PyclipperOffset()
    offset.AddPath([tuple(p) for p in poly.round().astype(np.int64).tolist()], pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    grown = offset.Execute(distance)
    if len(grown) != 1:
        # Zero paths: degenerate input. Several: the offset split the shape; both are unusable.
        return None
    return np.asarray(grown[0], dtype=np.float32)


def quad_size(quad: np.ndarray) -> tuple[float, float]:
    """Width (top edge / bottom edge mean) and height (left / right edge mean) of an ordered quad."""
    q = np.asarray(quad, dtype=np.float32)
    width = (np.linalg.norm(q[0] - q[1]) + np.linalg.norm(q[3] - q[2])) / 2
    height = (np.linalg.norm(q[0] - q[3]) + np.linalg.norm(q[1] - q[2])) / 2
    return float(width), float(height)


def _crop_size(q: np.ndarray) -> tuple[int, int]:
    """(width, height) in whole pixels of the crop `crop_quad` makes of the ordered quad `q`."""
    width_f, height_f = quad_size(q)
    return max(1, int(round(width_f))), max(1, int(round(height_f)))


def _is_tall(width: int, height: int) -> bool:
    # Much taller than wide: a vertical text line, or a quad that started on the wrong corner.
    return height >= width * 1.5


def reads_vertically(quad: np.ndarray) -> bool:
    """True for a quad much taller than wide: `crop_quad` turns its crop by 90 degrees counter-clockwise."""
    return _is_tall(*_crop_size(np.asarray(quad, dtype=np.float32)))


def grown_across(quad: np.ndarray, fraction: float) -> np.ndarray:
    """The ordered quad made taller across its text by `fraction` of the text's height on each side.

    Across means above and below the letters: along the quad's short sides for a line read left
    to right, along its long sides for a tall quad (whose crop `crop_quad` turns). Its length, and
    so every place measured as a fraction along it, is unchanged.
    """
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    if fraction <= 0:
        return q
    width, height = _crop_size(q)
    if _is_tall(width, height):  # the text's height runs along the top and bottom edges
        left, right = q[[0, 3]], q[[1, 2]]
        step = (right - left) * fraction
        return np.stack([q[0] - step[0], q[1] + step[0], q[2] + step[1], q[3] - step[1]]).astype(np.float32)
    top, bottom = q[[0, 1]], q[[3, 2]]
    step = (bottom - top) * fraction
    return np.stack([q[0] - step[0], q[1] - step[1], q[2] + step[1], q[3] + step[0]]).astype(np.float32)


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-crop an ordered quad to an upright rectangle; tall crops are turned to read left to right.

    A crop much taller than wide is almost always a vertical text line or a line
    whose quad started on the wrong corner; the recognizer only reads horizontal
    text, so it is rotated by 90 degrees counter-clockwise.
    """
    q = np.asarray(quad, dtype=np.float32)
    width, height = _crop_size(q)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(q, target)
    crop = cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    if _is_tall(width, height):
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


def reading_quad(quad: np.ndarray, *, tall: bool, flipped: bool) -> np.ndarray:
    """The line quad's corners in the order its crop was read: the crop's top-left, top-right,
    bottom-right and bottom-left as the recognizer saw them, in page pixels.

    `quad` is the ordered quad `crop_quad` cut. A tall crop was turned 90 degrees counter-clockwise
    (`reads_vertically`), so its top-left is quad[1]: rolled by one corner; a crop the classifier
    turned 180 degrees (`flipped`) is rolled by two more. Reading runs from corner 0 to corner 1.
    """
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    return np.roll(q, -(int(tall) + 2 * int(flipped)), axis=0)


def span_quad(reading: np.ndarray, start: float, end: float) -> np.ndarray:
    """The part of a line between fractions `start` and `end` of its reading width, as a box in page pixels
    ordered clockwise from its top-left like line boxes.

    `reading`: the line's `reading_quad` R. The part's corners are lerp(R0, R1, start), lerp(R0, R1, end),
    lerp(R3, R2, end), lerp(R3, R2, start): exact for the rectangles the detector finds.
    """
    r = np.asarray(reading, dtype=np.float64).reshape(4, 2)
    top0, top1 = r[0] + (r[1] - r[0]) * start, r[0] + (r[1] - r[0]) * end
    bottom0, bottom1 = r[3] + (r[2] - r[3]) * start, r[3] + (r[2] - r[3]) * end
    return order_quad(np.stack([top0, top1, bottom1, bottom0]))


def page_turn(vertical: Sequence[bool], flipped: Sequence[bool]) -> int:
    """How far the page lies turned clockwise (0, 90, 180 or 270 degrees), from its lines.

    `vertical[i]`: line i runs up or down the page (`reads_vertically`); `flipped[i]`: the
    classifier turned its crop by 180 degrees. Most lines vertical: the page lies sideways,
    turned clockwise when their crops (turned counter-clockwise by `crop_quad`) came out
    upright, counter-clockwise when most came out upside down. Otherwise it is upside down
    when most lines were flipped.
    """
    count = len(vertical)
    vertical_count = sum(vertical)
    if count and 2 * vertical_count > count:
        flipped_vertical = sum(f for v, f in zip(vertical, flipped) if v)
        return 270 if 2 * flipped_vertical > vertical_count else 90
    return 180 if count and 2 * sum(flipped) > count else 0


def upright_page_points(quad: np.ndarray, turn: int, width: float, height: float) -> np.ndarray:
    """`quad`'s points on a `width` x `height` page lying turned by `turn` degrees, moved to where they lie
    on the page turned upright (for the reading order; the result reports the displayed ones)."""
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    x, y = q[:, 0], q[:, 1]
    if turn == 90:
        return np.stack([y, width - x], axis=1)
    if turn == 180:
        return np.stack([width - x, height - y], axis=1)
    if turn == 270:
        return np.stack([height - y, x], axis=1)
    return q


def reading_rows(quads: Sequence[np.ndarray]) -> list[list[int]]:
    """Indices of quads grouped into printed rows: rows top to bottom, each left to right.

    Two neighbouring boxes share a row when their vertical centres are closer
    than half the smaller box height; rows are then ordered by their top edge.
    """
    if not quads:
        return []
    boxes = [np.asarray(q, dtype=np.float32).reshape(4, 2) for q in quads]
    tops = [float(b[:, 1].min()) for b in boxes]
    bottoms = [float(b[:, 1].max()) for b in boxes]
    centres = [(t + b) / 2 for t, b in zip(tops, bottoms)]
    heights = [max(1.0, b - t) for t, b in zip(tops, bottoms)]
    lefts = [float(b[:, 0].min()) for b in boxes]
    remaining = sorted(range(len(boxes)), key=lambda i: (lefts[i], centres[i]))
    # Rows grow left to right: each box joins the row whose right-most member it
    # continues (vertical centres within half the smaller height), so a line that
    # rises or falls across the page stays one row.
    rows: list[list[int]] = []
    for i in remaining:
        best_row, best_gap = None, None
        for row in rows:
            last = row[-1]
            gap = abs(centres[i] - centres[last])
            if gap <= 0.5 * min(heights[i], heights[last]) and (best_gap is None or gap < best_gap):
                best_row, best_gap = row, gap
        if best_row is None:
            rows.append([i])
        else:
            best_row.append(i)
    rows.sort(key=lambda row: min(tops[i] for i in row))
    return [sorted(row, key=lambda i: lefts[i]) for row in rows]


def reading_order(quads: Sequence[np.ndarray]) -> list[int]:
    """Indices of quads in reading order: the rows of `reading_rows`, one after the other."""
    return [i for row in reading_rows(quads) for i in row]
