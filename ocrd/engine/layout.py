"""Page layout: the blocks (columns, paragraphs, headings, tables) of a page's lines and their reading order.

Pure geometry on the line quads of a page already turned upright; no model, no pixels, no cv2. Every
threshold is a multiple of the page's median line height `h`, never pixels, so a 300-dpi scan and a
phone photo read alike. Worst case O(n^2) per region for n lines (a dense page: well under 0.1 s).

How: a recursive X-Y cut driven by gutters rather than by whitespace alone.

1. The quads are deskewed by the page's dominant line angle (length-weighted median over long
   boxes), so a page scanned a few degrees off lies straight; a line's height is its quad's side,
   not its bounding box, and the page's pitch is the median step to the next line below.
2. Candidate gutters are x-intervals at least `GUTTER_MIN_H` wide that no line crosses among the
   lines with a neighbour beside them (overlapping it vertically across such a gap). Full-width
   lines (a letter's body above a two-column lower half, a title, a footer) have no neighbour, so
   however many they are they cannot hide a gutter; they are the lines that cross it (S).
3. At a candidate, S lines stand where they are and cut the region into bands. In a band the lines
   left (L) and right (R) of it form vertical runs, cut at a section-sized gap or a marked change of
   line height (a header or footer pair, a title set over one column, a section break); runs that
   overlap in y form side-by-side sections. A section is columns when both sides hold two rows or
   more and it is not table-like. Table-like: most rows of the side with fewer rows, and some of the
   other side's, have a partner across (centres within half a line) and the narrower side is short
   next to the gap (amounts, cells, form values; measured on the row's stretch next to the gap, so
   a table of many columns does not look like long text). That keeps a receipt's label and amount in
   one printed row, and two text columns apart even when their baselines align. The candidate with
   the most rows side by side is the gutter (ties: the leftmost); none with a columns section: no
   gutter. Consecutive columns sections merge (paragraph breaks that coincide across the columns do
   not cut the page into stripes); what lies between them (S lines, one-sided or table-like
   sections) is read in place as one region, segmented again.
4. Columns are read left side then right side, each segmented again (a third column is a gutter
   found inside one side). A region without a gutter becomes paragraph blocks between its rows
   (`geometry.reading_rows`): where the step to the next row exceeds the usual one by
   `PARAGRAPH_GAP_H` (the usual one is the page's pitch, scaled up for larger type and widened to the
   neighbouring steps in a block set in 1.5 spacing), where the line height changes markedly (a
   heading over body text) and where two rows do not overlap in x.
A large empty area (a figure) inside one column only cuts that column's run; the other column still
holds the section together, so the column order is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ocrd.engine.geometry import reading_rows

GUTTER_MIN_H = 1.2  # narrowest column gutter; a wide word space in justified text is below it
CROSS_TOL_H = 0.25  # a line crosses a gutter when it reaches this far past its centre on both sides
SIDE_OVERLAP_H = 0.25  # lines stand side by side when their vertical extents overlap by this much
PARTNER_DY_H = 0.5  # two rows are one printed row across a gap: centres this close (as reading_rows)
TABLE_SHORT_H = 8.0  # rows of a table's narrow side (amounts, values) are shorter than this
TABLE_FEW_PARTNERED = 0.6  # share of the smaller side's rows with a partner across, for a table
TABLE_MANY_PARTNERED = 0.3  # ... and of the larger side's rows (a sidebar beside long text is not one)
SECTION_GAP_H = 1.5  # empty space beyond the usual line gap that ends a run of one side
# Beyond the usual step, a new paragraph block: paragraph spacing is often half a line, and the DB
# detector's boxes of one paragraph step within ~0.2 h of each other (with or without descenders).
PARAGRAPH_GAP_H = 0.3
HEIGHT_CHANGE = 1.4  # height ratio that starts a block or run; one type size's boxes vary up to ~1.3
COVERED_SHARE = 0.05  # a gutter may be crossed by this share of the lines beside others (a merged box)


@dataclass(frozen=True, slots=True)
class Block:
    rows: tuple[tuple[int, ...], ...]  # printed rows top to bottom; each row's line indices left to right

    @property
    def lines(self) -> tuple[int, ...]:
        """The rows concatenated: the block's lines in reading order."""
        return tuple(i for row in self.rows for i in row)


@dataclass(frozen=True, slots=True)
class _Page:
    quads: list[np.ndarray]  # deskewed
    x0: np.ndarray
    x1: np.ndarray
    yc: np.ndarray
    top: np.ndarray  # yc -/+ half the quad's own height: a skewed box's bounding box would be taller
    bottom: np.ndarray
    height: np.ndarray
    h: float  # median line height
    pitch: float  # typical vertical step from a line to the next one below it


def _edge_pairs(q: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(direction of the line, its length, its height) from whichever pair of opposite sides runs more
    horizontally: the point order of a quad turned upright by `upright_page_points` is not known."""
    a = (q[1] - q[0] + q[2] - q[3]) / 2
    b = (q[2] - q[1] + q[3] - q[0]) / 2
    if abs(a[1]) * np.hypot(*b) > abs(b[1]) * np.hypot(*a):
        a, b = b, a
    if a[0] < 0:
        a = -a
    return a, float(np.hypot(*a)), float(np.hypot(*b))


def _page(quads: Sequence[np.ndarray]) -> _Page:
    """The measures every step uses, once per page."""
    pts = [np.asarray(q, dtype=np.float64).reshape(4, 2) for q in quads]
    edges = [_edge_pairs(q) for q in pts]
    heights = np.array([max(1.0, e[2]) for e in edges])
    # Skew from the long boxes (a short word's angle is noise), weighted by length.
    angles = [(float(np.arctan2(d[1], d[0])), w) for d, w, hh in edges if w >= 3 * hh]
    skew = 0.0
    if angles:
        angles.sort()
        cumulative = np.cumsum([w for _, w in angles])
        skew = angles[int(np.searchsorted(cumulative, cumulative[-1] / 2))][0]
    cos, sin = np.cos(skew), np.sin(skew)
    turn = np.array([[cos, -sin], [sin, cos]])  # row vectors times this rotate by -skew
    centre = np.mean(np.concatenate(pts), axis=0)
    straight = [(q - centre) @ turn + centre for q in pts]
    x0 = np.array([q[:, 0].min() for q in straight])
    x1 = np.array([q[:, 0].max() for q in straight])
    yc = np.array([q[:, 1].mean() for q in straight])
    top, bottom = yc - heights / 2, yc + heights / 2
    h = float(np.median(heights))
    # The line pitch: from each line to the nearest line below it that it overlaps in x.
    below = (top[None, :] > yc[:, None]) & (np.minimum(x1[:, None], x1[None, :]) > np.maximum(x0[:, None], x0[None, :]))
    # Measured from the nearer of the next line's top and bottom edges: a line without descenders (or
    # ascenders) has a box that ends higher (starts lower), and that must not read as paragraph spacing.
    step = np.minimum(top[None, :] - top[:, None], bottom[None, :] - bottom[:, None])
    steps = np.where(below, step, np.inf).min(axis=1)
    steps = steps[np.isfinite(steps)]
    pitch = float(np.clip(np.median(steps), h, 2.5 * h)) if steps.size else 1.3 * h
    return _Page([q.astype(np.float32) for q in straight], x0, x1, yc, top, bottom, heights, h, pitch)


def _height_changes(a: float, b: float) -> bool:
    return max(a, b) > HEIGHT_CHANGE * min(a, b)


def _rows(page: _Page, idx: Sequence[int]) -> list[list[int]]:
    """`geometry.reading_rows` on a subset, in the page's line indices."""
    idx = list(idx)
    return [[idx[k] for k in row] for row in reading_rows([page.quads[i] for i in idx])]


def page_blocks(quads: Sequence[np.ndarray]) -> list[Block]:
    """Blocks in reading order for line quads (4x2 points each) given on the page turned upright."""
    if len(quads) == 0:
        return []
    page = _page(quads)
    return _segment(page, list(range(len(quads))))


def _segment(page: _Page, idx: list[int]) -> list[Block]:
    """The region's blocks in reading order. Recursion only goes into strict subsets: a plan holds a
    columns section, so neither a side nor what is read in place is the whole region."""
    split = _find_gutter(page, idx)
    if split is None:
        return _paragraphs(page, idx)
    blocks: list[Block] = []
    for left, right in split:
        blocks += _segment(page, left) if not right else _segment(page, left) + _segment(page, right)
    return blocks


def _paragraphs(page: _Page, idx: list[int]) -> list[Block]:
    """A region without a gutter as paragraph blocks, each a run of rows."""
    rows = _rows(page, idx)
    heights = [float(np.median(page.height[r])) for r in rows]
    steps = [
        min(page.top[r].min() - page.top[p].min(), page.bottom[r].max() - page.bottom[p].max())
        for p, r in zip(rows, rows[1:])
    ]
    blocks: list[list[int]] = [[0]] if rows else []  # row numbers
    for k in range(1, len(rows)):
        # The usual step is the page's (in proportion for larger type: a two-line title), or the
        # neighbouring steps' when both are wider (a block set in 1.5 spacing): a paragraph break
        # stands out from the steps on either side of it.
        around = steps[max(0, k - 2) : k - 1] + steps[k : k + 1]
        usual = page.pitch * max(1.0, min(heights[k - 1], heights[k]) / page.h)
        usual = max(usual, min(around)) if around else usual
        block_height = float(np.median([heights[j] for j in blocks[-1]]))
        p, r = rows[k - 1], rows[k]
        if (
            steps[k - 1] > usual + PARAGRAPH_GAP_H * page.h
            or _height_changes(heights[k], block_height)
            or page.x1[r].max() < page.x0[p].min()  # rows that do not overlap in x: side by side
            or page.x1[p].max() < page.x0[r].min()
        ):
            blocks.append([])
        blocks[-1].append(k)
    return [Block(rows=tuple(tuple(rows[j]) for j in block)) for block in blocks]


def _find_gutter(page: _Page, idx: list[int]) -> list[tuple[list[int], list[int]]] | None:
    """The region's reading plan at its best gutter: (left, right) for a columns section, (lines, [])
    for what is read in place; None when the region has no column gutter."""
    if len(idx) < 4:
        return None
    ids = np.asarray(idx)
    x0, x1, top, bottom = page.x0[ids], page.x1[ids], page.top[ids], page.bottom[ids]
    min_gutter = GUTTER_MIN_H * page.h
    overlap = np.minimum(bottom[:, None], bottom[None, :]) - np.maximum(top[:, None], top[None, :])
    beside = overlap > SIDE_OVERLAP_H * np.minimum(page.height[ids][:, None], page.height[ids][None, :])
    apart = (x0[None, :] - x1[:, None] >= min_gutter) | (x0[:, None] - x1[None, :] >= min_gutter)
    has_neighbour = (beside & apart).any(axis=1)
    if has_neighbour.sum() < 4:
        return None
    # Coverage of the x axis by lines with a neighbour beside them, between consecutive line edges.
    px0, px1 = x0[has_neighbour], x1[has_neighbour]
    edges = np.unique(np.concatenate([px0, px1]))
    lo, hi = edges[:-1], edges[1:]
    coverage = ((px0[:, None] <= lo[None, :]) & (px1[:, None] >= hi[None, :])).sum(axis=0)
    allowed = int(COVERED_SHARE * len(px0))
    best: tuple[int, list[tuple[list[int], list[int]]]] | None = None
    start = None
    for k in range(len(lo) + 1):
        if k < len(lo) and coverage[k] <= allowed:
            start = lo[k] if start is None else start
            continue
        if start is not None and hi[k - 1] - start >= min_gutter:
            plan = _plan_at(page, idx, float(start + hi[k - 1]) / 2)
            if plan is not None and (best is None or plan[0] > best[0]):
                best = plan
        start = None
    return None if best is None else best[1]


def _plan_at(page: _Page, idx: list[int], cut: float) -> tuple[int, list[tuple[list[int], list[int]]]] | None:
    """(rows side by side, reading plan) for a gutter at x = `cut`, or None when it separates no columns."""
    tol = CROSS_TOL_H * page.h
    crossing = {i for i in idx if page.x0[i] < cut - tol and page.x1[i] > cut + tol}
    left = {i for i in idx if i not in crossing and page.x0[i] + page.x1[i] < 2 * cut}
    if len(left) < 2 or len(idx) - len(crossing) - len(left) < 2:
        return None
    # Sections in reading order: crossing lines stand alone, between them the two sides' runs.
    sections: list[tuple[list[int], list[int]]] = []
    band: list[int] = []
    for i in sorted(idx, key=lambda i: page.yc[i]) + [-1]:
        if i in crossing or i < 0:
            sections += _band_sections(page, band, left)
            band = []
            if i >= 0:
                sections.append(([i], []))
        else:
            band.append(i)
    # Merge neighbours of one kind: consecutive columns sections, and everything read in place.
    plan: list[tuple[list[int], list[int]]] = []
    score = 0
    for lines, right in sections:
        if plan and bool(plan[-1][1]) == bool(right):
            plan[-1] = (plan[-1][0] + lines, plan[-1][1] + right)
        else:
            plan.append((lines, right))
    for lines, right in plan:
        if right:
            score += min(len(_rows(page, lines)), len(_rows(page, right)))
    return (score, plan) if score else None


def _band_sections(page: _Page, band: list[int], left: set[int]) -> list[tuple[list[int], list[int]]]:
    """A band's side-by-side sections top to bottom: (left lines, right lines) when they are columns,
    (all lines, []) for what is read in place (one side alone, or a table-like section)."""
    if not band:
        return []
    runs: list[tuple[float, float, list[int]]] = []
    for side in ([i for i in band if i in left], [i for i in band if i not in left]):
        for run in _runs(page, side):
            runs.append((float(page.top[run].min()), float(page.bottom[run].max()), run))
    runs.sort(key=lambda r: r[0])
    groups: list[tuple[float, list[int]]] = []  # (bottom, lines) of runs chained by vertical overlap
    for run_top, run_bottom, run in runs:
        if groups and run_top < groups[-1][0]:
            groups[-1] = (max(groups[-1][0], run_bottom), groups[-1][1] + run)
        else:
            groups.append((run_bottom, run))
    sections = []
    for _, lines in groups:
        lhs = [i for i in lines if i in left]
        rhs = [i for i in lines if i not in left]
        if lhs and rhs and _are_columns(page, _rows(page, lhs), _rows(page, rhs)):
            sections.append((lhs, rhs))
        else:
            sections.append((sorted(lines, key=lambda i: page.yc[i]), []))
    return sections


def _runs(page: _Page, side: list[int]) -> list[list[int]]:
    """One side's lines top to bottom, cut where the vertical gap is section-sized or the line height
    changes markedly: a title set large on one side of the gutter is not the first line of a column."""
    runs: list[list[int]] = []
    reach = -np.inf
    for i in sorted(side, key=lambda i: page.yc[i]):
        if (
            not runs
            or page.top[i] - reach > page.pitch - page.h + SECTION_GAP_H * page.h
            or _height_changes(page.height[i], page.height[runs[-1][-1]])
        ):
            runs.append([])
        runs[-1].append(i)
        reach = max(reach, float(page.bottom[i]))
    return runs


def _are_columns(page: _Page, lhs: list[list[int]], rhs: list[list[int]]) -> bool:
    """Two sides that stand side by side are columns unless they pair up row by row as a table."""
    if len(lhs) < 2 or len(rhs) < 2:
        return False
    centres = [np.array([float(np.mean(page.yc[r])) for r in rows]) for rows in (lhs, rhs)]
    near = np.abs(centres[0][:, None] - centres[1][None, :]) <= PARTNER_DY_H * page.h
    shares = sorted(((len(lhs), near.any(axis=1).mean()), (len(rhs), near.any(axis=0).mean())))
    widths = [np.median([_width_at_gutter(page, r, gutter_right) for r in rows]) for rows, gutter_right in
              ((lhs, True), (rhs, False))]
    table = (
        shares[0][1] >= TABLE_FEW_PARTNERED
        and shares[1][1] >= TABLE_MANY_PARTNERED
        and min(widths) < TABLE_SHORT_H * page.h
    )
    return not table


def _width_at_gutter(page: _Page, row: list[int], gutter_right: bool) -> float:
    """Width of the row's stretch next to the gutter: its boxes back to the first gap as wide as a
    gutter. A text line split at a word space stays whole; a table row's other cells do not count,
    or a table of many columns would look like wide text on the side holding several of them."""
    boxes = sorted(row, key=lambda i: page.x0[i], reverse=gutter_right)
    lo, hi = float(page.x0[boxes[0]]), float(page.x1[boxes[0]])
    for i in boxes[1:]:
        if (lo - page.x1[i] if gutter_right else page.x0[i] - hi) >= GUTTER_MIN_H * page.h:
            break
        lo, hi = min(lo, float(page.x0[i])), max(hi, float(page.x1[i]))
    return hi - lo
