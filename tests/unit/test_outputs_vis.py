"""The visualization: boxes where the lines are, number tags that hide no text, the size bound."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ocrd.outputs.visualization import PALETTE_BGR, render_visualization
from ocrd.engine.results import PageResult, TextLine

WHITE = [255, 255, 255]


def make_line(text: str, x: float, y: float, w: float, h: float) -> TextLine:
    return TextLine(text=text, confidence=0.9, det_score=0.8, box=((x, y), (x + w, y), (x + w, y + h), (x, y + h)))


def make_page(width: int, height: int, texts: tuple[str, ...]) -> PageResult:
    return PageResult(width=width, height=height, lines=tuple(make_line(t, 100 + 40 * i, 100 + 150 * i, 600, 80) for i, t in enumerate(texts)))


def coloured(pixels: np.ndarray) -> np.ndarray:
    """Mask of pixels that are not white: drawn on, since the test pages are white."""
    return (pixels != 255).any(axis=-1)


def test_render_visualization_draws_boxes_where_they_belong() -> None:
    image = np.full((1000, 2000, 3), 255, np.uint8)
    page = PageResult(width=2000, height=1000, lines=(make_line("x", 400, 400, 1000, 200),))
    vis = render_visualization(image, page, max_side_px=1000)
    assert vis.shape == (500, 1000, 3)
    assert image.min() == 255  # input untouched
    # The box edge at half scale: bottom edge y=300 between x=200..700 is coloured, the interior is not.
    assert vis[300, 450].tolist() != [255, 255, 255]
    assert vis[250, 450].tolist() == [255, 255, 255]


def test_render_visualization_scales_boxes_to_given_image() -> None:
    # The page is described at 2000x1000 but the image handed over is 1000x500.
    image = np.full((500, 1000, 3), 255, np.uint8)
    page = PageResult(width=2000, height=1000, lines=(make_line("x", 400, 400, 1000, 200),))
    vis = render_visualization(image, page, max_side_px=5000)
    assert vis.shape == (500, 1000, 3)
    assert vis[300, 450].tolist() != [255, 255, 255]


def test_render_visualization_accepts_grayscale_and_bgra() -> None:
    page = make_page(120, 90, ("a",))
    assert render_visualization(np.zeros((90, 120), np.uint8), page, 100).shape == (75, 100, 3)
    assert render_visualization(np.zeros((90, 120, 4), np.uint8), page, 500).shape == (90, 120, 3)


def render_sample(max_side_px: int = 900) -> np.ndarray:
    """A page with light and dark halves, tilted boxes and one box at the top edge (also for eyeballing)."""
    rng = np.random.default_rng(7)
    height, width = 1400, 1000
    image = np.full((height, width, 3), 235, np.uint8)
    image[:, width // 2 :] = 40  # dark half: labels must read on both
    lines = []
    for i in range(12):
        x, y = 60 + (i % 2) * 480, 60 + (i // 2) * 210
        cv2.putText(image, f"Line {i + 1}", (x + 10, y + 55), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (200, 120, 60), 3)
        jitter = rng.uniform(-6, 6, size=4)
        lines.append(
            TextLine(
                f"Line {i + 1}",
                0.9,
                0.9,
                ((x, y + jitter[0]), (x + 400, y + jitter[1]), (x + 400, y + 80 + jitter[2]), (x, y + 80 + jitter[3])),
            )
        )
    # One box touching the top edge, where the label has no room above.
    lines.append(TextLine("edge", 0.9, 0.9, ((300, 0), (700, 0), (700, 40), (300, 40))))
    # One starting at the left edge, where the label has no room left of it.
    lines.append(TextLine("left", 0.9, 0.9, ((0, 1330), (300, 1330), (300, 1390), (0, 1390))))
    page = PageResult(width=width, height=height, lines=tuple(lines))
    return render_visualization(image, page, max_side_px=max_side_px)


def test_render_visualization_sample_labels_are_drawn(tmp_path: Path) -> None:
    vis = render_sample(900)
    assert max(vis.shape[:2]) == 900 and vis.shape[1] > round(1000 * 900 / 1400)  # a strip for the edge line
    # Tag of line 1 sits just left of its box's top-left corner (60, 60) at scale 900/1400.
    strip_px = vis.shape[1] - round(1000 * 900 / 1400)
    corner_x, corner_y = strip_px + round(60 * 900 / 1400), round(60 * 900 / 1400)
    tag = vis[corner_y + 2 : corner_y + 8, corner_x - 8 : corner_x - 2]
    assert (tag == PALETTE_BGR[0]).all(axis=-1).any()
    path = tmp_path / "vis_check.png"  # look at it with pytest --basetemp=DIR when changing the drawing
    assert cv2.imwrite(str(path), vis)


def test_a_line_at_the_left_edge_gets_its_tag_in_a_white_strip_not_over_its_text() -> None:
    image = np.full((400, 600, 3), 255, np.uint8)
    page = PageResult(width=600, height=400, lines=(make_line("CASH", 0, 100, 200, 40),))
    vis = render_visualization(image, page, max_side_px=2000)
    strip_px = vis.shape[1] - 600
    assert vis.shape[0] == 400 and strip_px > 0
    # The tag is in the strip, left of the box; the box's interior stays clean.
    assert coloured(vis[100:140, :strip_px]).any()
    assert not coloured(vis[110:130, strip_px + 6 : strip_px + 190]).any()


def test_the_strip_counts_towards_the_size_bound() -> None:
    image = np.full((1000, 2000, 3), 255, np.uint8)
    page = PageResult(width=2000, height=1000, lines=(make_line("x", 0, 400, 1000, 100),))
    vis = render_visualization(image, page, max_side_px=1000)
    assert vis.shape[1] == 1000 and vis.shape[0] < 500
    # The box is drawn where the page part of the canvas has it: its left edge right after the strip.
    page_w = round(2000 * vis.shape[0] / 1000)
    strip_px = vis.shape[1] - page_w
    assert strip_px > 0 and coloured(vis[vis.shape[0] // 2 : vis.shape[0] // 2 + 1, strip_px : strip_px + 3]).any()


def test_a_tag_does_not_cover_the_box_before_it_in_a_row() -> None:
    image = np.full((400, 800, 3), 255, np.uint8)
    # "Date" ends 4 px before "25/12/2018" starts: no room left of the second box.
    page = PageResult(width=800, height=400, lines=(make_line("Date", 100, 200, 200, 40), make_line("25/12/2018", 304, 200, 300, 40)))
    vis = render_visualization(image, page, max_side_px=2000)
    assert vis.shape == (400, 800, 3)
    # Inside the first box nothing is drawn but its own outline (tag 2 went above its box).
    assert not coloured(vis[206:234, 106:294]).any()
    assert coloured(vis[160:198, 300:340]).any()


def test_without_lines_the_page_is_only_scaled() -> None:
    image = np.full((300, 600, 3), 200, np.uint8)
    vis = render_visualization(image, PageResult(width=600, height=300, lines=()), max_side_px=300)
    assert vis.shape == (150, 300, 3) and (vis == 200).all()
