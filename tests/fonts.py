"""Fonts and text rendering for tests: finds DejaVu Sans on the machine, ships a CJK subset; never downloads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FIXTURE_FONTS = Path(__file__).parent / "fixtures" / "fonts"
# Only the characters listed in fixtures/fonts/README.md are in this subset.
CJK_FONT = FIXTURE_FONTS / "wqy-microhei-subset.ttf"
CJK_CHARS = frozenset("我是中国人正品促销")

_SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


def latin_font_path() -> Path | None:
    """DejaVuSans.ttf from matplotlib's mpl-data if matplotlib is installed, else from the system fonts."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
            if candidate.is_file():
                return candidate
    for root in _SYSTEM_FONT_DIRS:
        if root.is_dir():
            for candidate in sorted(root.rglob("DejaVuSans.ttf")):
                return candidate
    return None


def render_lines(
    lines: list[str],
    font_path: Path,
    *,
    size_px: int = 32,
    margin_px: int = 24,
    line_gap_px: int = 24,
    width_px: int | None = None,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Black text on white, one line per entry; returns the BGR image and each line's ink box (x0, y0, x1, y1)."""
    font = ImageFont.truetype(str(font_path), size_px)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    extents = [probe.textbbox((0, 0), text, font=font) for text in lines]
    text_w = max(right for _, _, right, _ in extents)
    line_h = size_px + line_gap_px
    width = width_px or text_w + 2 * margin_px
    height = 2 * margin_px + line_h * len(lines) - line_gap_px
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    ink_boxes = []
    for number, (text, (left, top, right, bottom)) in enumerate(zip(lines, extents)):
        origin = (margin_px, margin_px + number * line_h)
        draw.text(origin, text, font=font, fill=0)
        ink_boxes.append((origin[0] + left, origin[1] + top, origin[0] + right, origin[1] + bottom))
    gray = np.asarray(canvas)
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), ink_boxes
