"""Integration tests of short line crops with the real engine: a line narrower than two input heights is
padded (`recognize.min_batch_width_h`), and its text and word boxes still come from its own pixels."""

from __future__ import annotations

import pytest

from tests.fonts import latin_font_path
from tests.integration.test_engine_words import assert_on_the_ink, render_words

LATIN_FONT = latin_font_path()
needs_latin_font = pytest.mark.skipif(LATIN_FONT is None, reason="no DejaVuSans.ttf found to render Latin text")

# Short field values of a form, each its own line far from the others: every crop is under 96 px at
# height 48, so each batch is padded (2 x 48) rather than read filling the input.
SHORT = ["No 7", "mm", "12 kg", "Yes"]


@needs_latin_font
def test_short_lines_are_read_and_their_words_lie_on_the_ink(engine):
    image, truth = render_words(SHORT, LATIN_FONT, size_px=22, origin=(120, 60), page=(600, 320))
    page = engine.read(image)
    assert sorted(line.text for line in page.lines) == sorted(SHORT)
    by_text = {line.text: line for line in page.lines}
    for text, inks in zip(SHORT, truth):
        line = by_text[text]
        assert [w.text for w in line.words] == text.split(" ")
        for word, ink in zip(line.words, inks):
            # The padding lies right of the crop: a word mapped over the padded width would drift right.
            assert_on_the_ink(word, ink)
