"""Drawing a page's visualization (line boxes and their numbers) for people to look at; never writes a file.

Every box is drawn first, then every number tag on top, so no outline crosses a
tag. A tag goes to the first free spot of: left of the box's top-left corner
(top-aligned), above the box (left-aligned), right of the box's end, inside the
corner. "Free" means it covers no other box and no tag placed before it; on a
page where every spot is taken the left one is used. When a box starts so close to the page's left edge
that its tag would not fit left of it, a white strip is added on the left of the
canvas instead of letting the tag cover the line's first characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ocrd.engine.results import PageResult

MIN_LABEL_FONT_SCALE = 0.5  # Hershey simplex at 0.5 is ~11 px tall: the smallest still readable
_STRIP_BGR = (255, 255, 255)

# Distinct, saturated colours (BGR) that stay visible on both white paper and dark photos.
PALETTE_BGR: tuple[tuple[int, int, int], ...] = (
    (40, 39, 214),  # red
    (180, 119, 31),  # blue
    (44, 160, 44),  # green
    (14, 127, 255),  # orange
    (189, 103, 148),  # purple
    (194, 119, 227),  # pink
    (34, 189, 188),  # olive
    (207, 190, 23),  # cyan
    (75, 86, 140),  # brown
)


@dataclass(frozen=True)
class _LabelStyle:
    font_scale: float
    font_thickness_px: int
    pad_px: int
    gap_px: int  # between a tag and its box's outline
    line_thickness_px: int


def visualization_copy(image: np.ndarray, max_side_px: int) -> np.ndarray:
    """A copy small enough for the visualization, so large pages are not all held until the end."""
    import cv2

    h, w = image.shape[:2]
    scale = max_side_px / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def render_visualization(image: np.ndarray, page: PageResult, max_side_px: int) -> np.ndarray:
    """The page downscaled to ``max_side_px`` (longer side) with each line's box and 1-based number.

    Boxes are in the page's pixel coordinates (``page.width`` × ``page.height``); they
    are scaled to the image actually given, so a differently sized rendering still
    lines up. The input image is not modified. A left strip for the tags of lines
    at the left edge is included in the ``max_side_px`` bound.
    """
    import cv2

    canvas = _to_bgr(image)
    height_px, width_px = canvas.shape[:2]
    scale = min(1.0, max_side_px / max(height_px, width_px))
    quads = _page_quads(page, width_px * scale, height_px * scale, scale)
    style = _label_style(max(height_px, width_px) * scale, quads)
    labels = [str(number) for number in range(1, len(quads) + 1)]
    sizes = [_tag_size(label, style) for label in labels]
    strip_px = _left_strip_px(quads, sizes, style)
    if strip_px and round(width_px * scale) + strip_px > max_side_px:
        # The strip counts towards the bound: shrink the page so both fit. Shrinking moves
        # the boxes nearer the edge, so the strip is measured again (and capped by the bound).
        scale = max(1, max_side_px - strip_px) / width_px
        quads = _page_quads(page, width_px * scale, height_px * scale, scale)
        strip_px = min(_left_strip_px(quads, sizes, style), max(0, max_side_px - round(width_px * scale)))
    if scale < 1.0:
        size = (max(1, round(width_px * scale)), max(1, round(height_px * scale)))
        canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
    if strip_px:
        canvas = cv2.copyMakeBorder(canvas, 0, 0, strip_px, 0, cv2.BORDER_CONSTANT, value=_STRIP_BGR)
        for quad in quads:
            quad[:, 0] += strip_px
    elif canvas is image:
        canvas = canvas.copy()

    for number, quad in enumerate(quads, start=1):
        points = np.round(quad).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(
            canvas, [points], isClosed=True, color=_colour(number), thickness=style.line_thickness_px, lineType=cv2.LINE_AA
        )
    _draw_tags(canvas, quads, labels, sizes, style)
    return canvas


def _page_quads(page: PageResult, out_w: float, out_h: float, scale: float) -> list[np.ndarray]:
    """The lines' boxes on an `out_w` x `out_h` canvas (`scale`: the image's, for a page without a size)."""
    scale_x = round(out_w) / page.width if page.width else scale
    scale_y = round(out_h) / page.height if page.height else scale
    return [np.array([[x * scale_x, y * scale_y] for x, y in line.box], dtype=np.float64) for line in page.lines]


def _label_style(long_side_px: float, quads: list[np.ndarray]) -> _LabelStyle:
    # Sizes grow with the output so labels stay legible at 600 px and at 3000 px, but
    # on a dense page a tag taller than a text line would cover the line above it.
    line_thickness_px = max(2, round(long_side_px / 800))
    font_scale = long_side_px / 1200
    if quads:
        median_line_h_px = float(np.median([_quad_height(q) for q in quads]))
        font_scale = min(font_scale, median_line_h_px / 40)
    font_scale = max(MIN_LABEL_FONT_SCALE, font_scale)
    return _LabelStyle(
        font_scale=font_scale,
        font_thickness_px=max(1, round(font_scale * 1.8)),
        pad_px=max(2, round(font_scale * 4)),
        gap_px=(line_thickness_px + 1) // 2,
        line_thickness_px=line_thickness_px,
    )


def _quad_height(quad: np.ndarray) -> float:
    # Mean of the left and right edges: the text height for a clockwise quad from top-left.
    return float((np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2)


def _tag_size(label: str, style: _LabelStyle) -> tuple[int, int, int]:
    """(tag width, tag height, text height) in pixels."""
    import cv2

    (text_w, text_h), _baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, style.font_scale, style.font_thickness_px)
    # Digits have no descenders, so the baseline margin is left out to keep the tag small.
    return text_w + 2 * style.pad_px, text_h + 2 * style.pad_px, text_h


def _left_strip_px(quads: list[np.ndarray], sizes: list[tuple[int, int, int]], style: _LabelStyle) -> int:
    """How far the widest overhang of a left tag reaches past the page's left edge (0: none does)."""
    # A corner left of the page (a box drawn past its edge) needs no more than a corner on the edge.
    overhang = [tag_w + style.gap_px - max(0, int(round(quad[0][0]))) for quad, (tag_w, _h, _t) in zip(quads, sizes)]
    return max([0, *overhang])


def _draw_tags(
    canvas: np.ndarray,
    quads: list[np.ndarray],
    labels: list[str],
    sizes: list[tuple[int, int, int]],
    style: _LabelStyle,
) -> None:
    import cv2

    out_h, out_w = canvas.shape[:2]
    # Obstacles as (x0, y0, x1, y1) rows: every box's bounding rectangle, then a row per tag
    # once placed (NaN until then: it overlaps nothing). A tag may cover its own box only.
    count = len(quads)
    obstacles = np.full((2 * count, 4), np.nan)
    for row, quad in enumerate(quads):
        obstacles[row] = (quad[:, 0].min(), quad[:, 1].min(), quad[:, 0].max(), quad[:, 1].max())
    for index, (quad, label, (tag_w, tag_h, text_h)) in enumerate(zip(quads, labels, sizes)):
        corner_x, corner_y = int(round(quad[0][0])), int(round(quad[0][1]))
        end_x, end_y = int(round(quad[1][0])), int(round(quad[1][1]))
        gap = style.gap_px
        spots = [
            (corner_x - gap - tag_w, corner_y - gap),  # left, top-aligned
            (corner_x - gap, corner_y - gap - tag_h),  # above, left-aligned
            (end_x + gap, end_y - gap),  # right of the line's end, top-aligned
            (corner_x, corner_y),  # inside the corner: over the line's own first characters
        ]
        inside = [(x, y) for x, y in spots if x >= 0 and y >= 0 and x + tag_w <= out_w and y + tag_h <= out_h]
        free = next((spot for spot in inside if not _overlaps_other(spot, tag_w, tag_h, obstacles, index)), None)
        x0, y0 = free or (inside or spots)[0]
        x0 = min(max(0, x0), max(0, out_w - tag_w))
        y0 = min(max(0, y0), max(0, out_h - tag_h))
        obstacles[count + index] = (x0, y0, x0 + tag_w, y0 + tag_h)
        colour = _colour(index + 1)
        cv2.rectangle(canvas, (x0, y0), (x0 + tag_w - 1, y0 + tag_h - 1), colour, thickness=cv2.FILLED)
        # White or black text, whichever contrasts with the tag: readable on any background.
        blue, green, red = colour
        luma = 0.299 * red + 0.587 * green + 0.114 * blue
        text_colour = (0, 0, 0) if luma > 150 else (255, 255, 255)
        origin = (x0 + style.pad_px, y0 + style.pad_px + text_h)
        cv2.putText(
            canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, style.font_scale, text_colour, style.font_thickness_px, cv2.LINE_AA
        )


def _overlaps_other(spot: tuple[int, int], tag_w: int, tag_h: int, obstacles: np.ndarray, own_row: int) -> bool:
    x0, y0 = spot
    hits = (
        (obstacles[:, 0] < x0 + tag_w) & (obstacles[:, 2] > x0) & (obstacles[:, 1] < y0 + tag_h) & (obstacles[:, 3] > y0)
    )
    hits[own_row] = False
    return bool(hits.any())


def _colour(number: int) -> tuple[int, int, int]:
    return PALETTE_BGR[(number - 1) % len(PALETTE_BGR)]


def _to_bgr(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.dtype != np.uint8:
        raise ValueError(f"visualization needs a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"visualization needs a BGR or grayscale image, got shape {image.shape}")
