"""Rendered 300-dpi office pages read by the real engine: the page text follows the layout (columns, headings,
footers, a figure, a receipt-like table), within a small CER, and the same for each of the four turns."""

from __future__ import annotations

import pytest

from tests.documents import KINDS, render_page, turn
from tests.fonts import latin_font_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(latin_font_path() is None, reason="no DejaVuSans.ttf to render pages with (install matplotlib)"),
]

MAX_PAGE_CER = 0.03


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def words(text: str) -> str:
    """The text as one line of single-spaced words: line breaks inside a block are the detector's business."""
    return " ".join(text.split())


def page_cer(expected: str, read: str) -> float:
    return levenshtein(words(expected), words(read)) / max(1, len(words(expected)))


@pytest.fixture(scope="module")
def pages():
    return {kind: render_page(kind) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_a_page_reads_in_layout_order(engine, pages, kind):
    page = pages[kind]
    result = engine.read(page.image)
    assert page_cer(page.text, result.text) <= MAX_PAGE_CER, result.text
    # Every line in exactly one block; lines are listed in the blocks' order.
    listed = [i for block in result.blocks for i in block.lines]
    assert listed == list(range(len(result.lines)))


def test_columns_are_blocks_of_their_own(engine, pages):
    page = pages["heading_two_columns_footer"]
    result = engine.read(page.image)
    blocks = [" ".join(" ".join(result.lines[i].text for i in row) for row in block.rows) for block in result.blocks]
    # The title is the first block, the footer the last; the only blocks across the gutter are the
    # headings on top and the footer below: between them, each block is one column's.
    assert words(blocks[0]) == words(page.blocks[0])
    assert words(blocks[-1]) == words(page.blocks[-1])
    middle = page.image.shape[1] / 2
    across = [block.box[0][0] < middle < block.box[1][0] for block in result.blocks]
    body = across.index(False)
    assert body >= 1 and not any(across[body:-1]) and across[-1], across
    # Column by column: once a block of the right column is read, no left-column block follows.
    sides = [block.box[0][0] > middle for block in result.blocks[body:-1]]
    assert sides == sorted(sides) and sides[0] is False and sides[-1] is True


@pytest.mark.parametrize("kind", ["heading_two_columns_footer", "letter_two_column_lower", "receipt_table"])
@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_turned_page_reads_like_the_upright_one(engine, pages, kind, degrees):
    page = pages[kind]
    result = engine.read(turn(page.image, degrees))
    assert page_cer(page.text, result.text) <= MAX_PAGE_CER, result.text
