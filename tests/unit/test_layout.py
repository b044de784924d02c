"""Unit tests for ocrd.engine.layout: columns, paragraphs, headings, tables and their reading order.

Pages are synthetic line boxes (no model, no pixels) at the scale of a 300-dpi scan: body lines 44 px
high on a 57 px pitch. The boxes are handed to `page_blocks` shuffled, so an order that merely follows
the input order cannot pass; results are mapped back to the order the lines were built in.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from ocrd.engine.layout import Block, page_blocks

H = 44  # body line height, px
PITCH = 57  # single spacing
PARAGRAPH = 28  # extra space between paragraphs: half a line


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


class Sheet:
    """Line boxes added in reading order; `blocks()` runs the layout on them shuffled."""

    def __init__(self) -> None:
        self.quads: list[np.ndarray] = []

    def line(self, x0: float, y0: float, width: float, height: float = H) -> int:
        self.quads.append(rect(x0, y0, x0 + width, y0 + height))
        return len(self.quads) - 1

    def paragraphs(self, x0: float, y0: float, width: float, sizes: list[int], *, pitch: float = PITCH,
                   ragged: bool = True) -> tuple[list[list[int]], float]:
        """Paragraphs of `sizes` lines in a column; returns each paragraph's lines and the y below."""
        result, y = [], y0
        for size in sizes:
            lines = []
            for k in range(size):
                last = k == size - 1
                short = ((len(self.quads) * 7) % 5) * 0.04 * width if ragged else 0.0
                lines.append(self.line(x0, y, 0.45 * width if last else width - short))
                y += pitch
            result.append(lines)
            y += PARAGRAPH
        return result, y

    def blocks(self, *, seed: int = 0) -> list[list[int]]:
        order = list(range(len(self.quads)))
        random.Random(seed).shuffle(order)
        found = page_blocks([self.quads[i] for i in order])
        blocks = [[order[i] for i in block.lines] for block in found]
        assert sorted(i for b in blocks for i in b) == list(range(len(self.quads))), "each line exactly once"
        return blocks

    def rows(self, *, seed: int = 0) -> list[list[list[int]]]:
        order = list(range(len(self.quads)))
        random.Random(seed).shuffle(order)
        found = page_blocks([self.quads[i] for i in order])
        rows = [[[order[i] for i in row] for row in block.rows] for block in found]
        assert sorted(i for b in rows for r in b for i in r) == list(range(len(self.quads))), "each line exactly once"
        return rows


def flat(groups) -> list[int]:
    return [i for g in groups for i in g]


def two_columns(sheet: Sheet, y0: float = 300, *, offset: float = 0.0, sizes=((9, 7, 6), (5, 8, 9))):
    left, _ = sheet.paragraphs(225, y0, 1000, list(sizes[0]))
    right, _ = sheet.paragraphs(1315, y0 + offset, 1000, list(sizes[1]))
    return left, right


# ---------------------------------------------------------------- basics


def test_empty_page_has_no_blocks():
    assert page_blocks([]) == []


def test_one_line_is_one_block():
    assert page_blocks([rect(10, 10, 400, 54)]) == [Block(rows=((0,),))]


@pytest.mark.parametrize("seed", range(40))
def test_every_line_lands_in_exactly_one_block_on_random_pages(seed):
    rng = random.Random(seed)
    quads = []
    for _ in range(rng.randint(1, 150)):
        x0, y0 = rng.uniform(0, 2400), rng.uniform(0, 3200)
        width = rng.choice([0.0, rng.uniform(1, 300), rng.uniform(300, 2000)])
        height = rng.choice([0.0, rng.uniform(20, 60), rng.uniform(60, 150)])
        quads.append(rect(x0, y0, x0 + width, y0 + height))
    if seed % 5 == 0:
        quads = quads[:1] * len(quads)  # all boxes on top of each other
    blocks = page_blocks(quads)
    assert sorted(i for block in blocks for i in block.lines) == list(range(len(quads)))
    assert all(block.rows and all(block.rows) for block in blocks)


def test_block_lines_are_its_rows_concatenated():
    assert Block(rows=((3, 1), (0,), (2, 4))).lines == (3, 1, 0, 2, 4)


def test_one_column_splits_into_paragraphs_in_order():
    sheet = Sheet()
    paragraphs, _ = sheet.paragraphs(300, 400, 1900, [5, 4, 6])
    assert sheet.blocks() == paragraphs


def test_a_block_set_in_one_and_a_half_spacing_stays_one_paragraph():
    sheet = Sheet()
    paragraphs, _ = sheet.paragraphs(300, 400, 1900, [6, 5], pitch=1.5 * PITCH)
    assert sheet.blocks() == paragraphs


def test_heading_above_body_is_its_own_block_by_height():
    sheet = Sheet()
    heading = sheet.line(300, 300, 900, height=78)
    body, _ = sheet.paragraphs(300, 300 + 95, 1900, [5])  # no extra space: only the height tells
    assert sheet.blocks() == [[heading], body[0]]


# ---------------------------------------------------------------- columns


@pytest.mark.parametrize("offset", [0.0, 23.0], ids=["aligned_baselines", "unaligned"])
def test_two_columns_read_left_column_fully_before_right(offset):
    sheet = Sheet()
    left, right = two_columns(sheet, offset=offset)
    assert sheet.blocks() == left + right


def test_two_columns_with_coinciding_paragraph_breaks_are_not_cut_into_stripes():
    sheet = Sheet()
    left, right = two_columns(sheet, sizes=((8, 8, 8), (8, 8, 8)))
    assert sheet.blocks() == left + right


def test_three_columns_read_one_after_another():
    sheet = Sheet()
    columns = [sheet.paragraphs(x, 300, 640, [10, 12, 9])[0] for x in (220, 920, 1620)]
    assert sheet.blocks() == flat(columns)


def test_full_width_heading_above_two_columns_and_footer_below():
    sheet = Sheet()
    title = [sheet.line(420, 200, 1700, height=80), sheet.line(420, 290, 1700, height=80)]
    left, right = two_columns(sheet, y0=450)
    footer = sheet.line(700, 3050, 1150, height=38)
    assert sheet.blocks() == [title] + left + right + [[footer]]


def test_header_and_footer_pairs_stand_above_and_below_the_columns():
    sheet = Sheet()
    header = [sheet.line(225, 150, 500), sheet.line(1915, 150, 400)]
    left, right = two_columns(sheet, y0=330)
    footer = [sheet.line(225, 3100, 600), sheet.line(2115, 3100, 200)]
    assert sheet.rows() == [[header]] + [[[i] for i in b] for b in left + right] + [[footer]]


def test_large_title_on_one_side_of_the_gutter_is_read_before_both_columns():
    sheet = Sheet()
    title = sheet.line(1315, 220, 880, height=80)  # over the right column only, set on single spacing
    left, right = two_columns(sheet, y0=330)
    assert sheet.blocks() == [[title]] + left + right


def test_article_heading_between_two_column_sections_stands_between_them():
    sheet = Sheet()
    first_left, y_left = sheet.paragraphs(225, 300, 1000, [8, 6])
    first_right, y_right = sheet.paragraphs(1315, 300, 1000, [7, 7])
    y = max(y_left, y_right) + PITCH
    heading = sheet.line(225, y, 700, height=70)
    second_left, _ = sheet.paragraphs(225, y + 110, 1000, [9, 5])
    second_right, _ = sheet.paragraphs(1315, y + 110, 1000, [6, 8])
    assert sheet.blocks() == first_left + first_right + [[heading]] + second_left + second_right


def test_column_heading_stays_inside_its_column():
    sheet = Sheet()
    top, y = sheet.paragraphs(225, 300, 1000, [8, 6])
    heading = sheet.line(225, y + PITCH, 420)
    rest, _ = sheet.paragraphs(225, y + PITCH + 80, 1000, [7])
    right, _ = sheet.paragraphs(1315, 300, 1000, [10, 9, 8])
    assert sheet.blocks() == top + [[heading]] + rest + right


def test_figure_gap_inside_a_column_keeps_the_column_order():
    sheet = Sheet()
    above, y = sheet.paragraphs(225, 300, 1000, [8])
    caption = sheet.line(225, y + 600, 900, height=34)
    below, _ = sheet.paragraphs(225, y + 600 + 80, 1000, [6, 7])
    right, _ = sheet.paragraphs(1315, 300, 1000, [12, 10, 9])
    assert sheet.blocks() == above + [[caption]] + below + right


def test_letter_with_two_column_lower_half():
    sheet = Sheet()
    head = [sheet.line(300, 200, 700, height=70)]
    address, y = sheet.paragraphs(300, 400, 500, [4], ragged=False)
    body, y = sheet.paragraphs(300, y + 60, 1950, [6, 5, 4])  # full width: crosses the lower gutter
    left, y_left = sheet.paragraphs(300, y + 80, 900, [7, 6])
    right, y_right = sheet.paragraphs(1350, y + 80, 900, [9])
    closing = sheet.line(300, max(y_left, y_right) + 150, 330)
    blocks = sheet.blocks()
    assert flat(blocks) == head[:1] + flat(address) + flat(body) + flat(left) + flat(right) + [closing]
    assert blocks[-1] == [closing] and left[0] in blocks and right[0] in blocks


# ---------------------------------------------------------------- tables and rows


def test_receipt_keeps_label_and_amount_in_one_row():
    sheet = Sheet()
    header = [sheet.line(860, 300, 830, height=58), sheet.line(900, 370, 750)]
    items = []
    for k in range(8):
        y = 520 + k * PITCH
        label = sheet.line(720, y, 260 + (k * 97) % 300)
        width = 110 + (k % 3) * 25
        items.append([label, sheet.line(1830 - width, y, width)])
    totals = []
    for k in range(3):
        y = 520 + 8 * PITCH + 90 + k * PITCH
        totals.append([sheet.line(720, y, 200), sheet.line(1700, y, 130)])
    thanks = sheet.line(900, 520 + 11 * PITCH + 200, 750)
    assert sheet.rows() == [[[i] for i in header], items, totals, [[thanks]]]


def test_form_key_value_rows_are_joined():
    sheet = Sheet()
    rows = []
    for k in range(7):
        y = 400 + k * 70
        rows.append([sheet.line(300, y, 180 + (k * 53) % 160), sheet.line(820, y, 250 + (k * 131) % 400)])
    assert sheet.rows() == [rows]


def test_table_of_many_columns_is_one_block_of_whole_rows():
    # Several cells on one side of a gap must not add up to one long "text line".
    sheet = Sheet()
    rows = [
        [sheet.line(200 + c * 420, 400 + r * PITCH, 150 + (r * 31 + c * 17) % 140) for c in range(5)]
        for r in range(12)
    ]
    assert sheet.rows() == [rows]


def test_two_text_columns_with_aligned_rows_are_still_columns():
    # Long lines on both sides: baselines that happen to align do not make a table.
    sheet = Sheet()
    left, right = two_columns(sheet, sizes=((6,), (6,)))
    assert flat(sheet.blocks()) == flat(left) + flat(right)


def test_line_split_at_a_wide_space_stays_one_row():
    sheet = Sheet()
    first = [sheet.line(300, 400 + k * PITCH, 1900) for k in range(3)]
    y = 400 + 3 * PITCH
    parts = [sheet.line(300, y, 800), sheet.line(300 + 800 + 75, y, 1025)]  # 1.7 h apart
    rest = [sheet.line(300, 400 + k * PITCH, 1900) for k in range(4, 7)]
    assert sheet.rows() == [[[i] for i in first] + [parts] + [[i] for i in rest]]


def test_boxes_split_within_columns_do_not_change_the_layout():
    whole, split = Sheet(), Sheet()
    left, right = two_columns(whole)
    owner = []  # the line of `whole` each box of `split` belongs to
    for number, quad in enumerate(whole.quads):
        x0, y0, x1, _ = (float(v) for v in (*quad[0], *quad[2]))
        if number % 3 == 0 and x1 - x0 > 600:  # every third line detected as two boxes
            cut = x0 + (x1 - x0) * (0.3 + 0.1 * (number % 4))
            split.line(x0, y0, cut - x0 - 30)
            split.line(cut + 30, y0, x1 - cut - 30)
            owner += [number, number]
        else:
            split.line(x0, y0, x1 - x0)
            owner.append(number)
    assert len(split.quads) > len(whole.quads) + 10
    mapped = [list(dict.fromkeys(owner[i] for i in block)) for block in split.blocks()]
    assert mapped == left + right


# ---------------------------------------------------------------- skew and point order


def turned(quad: np.ndarray, degrees: float, centre=(1275.0, 1650.0)) -> np.ndarray:
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return ((quad - centre) @ rot.T + centre).astype(np.float32)


@pytest.mark.parametrize("degrees", [5.0, -5.0])
def test_two_columns_scanned_five_degrees_off(degrees):
    sheet = Sheet()
    left, right = two_columns(sheet, sizes=((10, 9), (8, 11)))
    sheet.quads = [turned(q, degrees) for q in sheet.quads]
    assert sheet.blocks() == left + right


def test_point_order_of_a_quad_does_not_matter():
    # Quads turned upright by upright_page_points keep their points, so any corner may come first.
    sheet = Sheet()
    left, right = two_columns(sheet)
    sheet.quads = [np.roll(q, n % 4, axis=0) for n, q in enumerate(sheet.quads)]
    assert sheet.blocks() == left + right
