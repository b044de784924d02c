"""Office pages with known text (letters, newsletters in columns, receipts), rendered by this module.

Nothing here is a real scan: every page is drawn with PIL in DejaVu Sans (the font `tests.fonts` finds)
from a small made-up office vocabulary of real English words, seeded and deterministic. A page comes
with its expected reading-order text: `blocks` holds each block's lines (joined by newlines) in the
order a reader takes them (full-width headings where they stand, then column by column, top to
bottom; a receipt's label and amount form one line), and `text` is the blocks joined by a blank line.
A paragraph that runs on into the next column is two blocks, as a reader of the page sees it.
Sizes are in points and inches and scale with `dpi` (Letter 8.5 x 11 in, A4 for three columns).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tests.fonts import latin_font_path

KINDS = (
    "one_column",
    "two_columns",
    "three_columns",
    "heading_two_columns_footer",
    "figure_gap",
    "letter_two_column_lower",
    "receipt_table",
)

_NOUNS = (
    "office team report budget meeting client invoice order schedule project contract supplier delivery "
    "account quarter department manager policy payment review proposal training customer warehouse shipment "
    "agenda committee employee document request estimate audit printer building parking calendar survey "
    "vendor system network package catalogue forecast inventory workshop visitor"
).split()
_VERBS = (
    "approved reviewed prepared received confirmed updated scheduled delivered signed requested discussed "
    "shared planned completed checked moved answered changed"
).split()
_ADJECTIVES = (
    "new annual monthly final revised quarterly regional internal early current weekly detailed local main "
    "small second careful complete"
).split()
_PREPOSITIONS = "for with before after during from about within without".split()
_DETERMINERS = "the our each this every their".split()
_TAILS = (
    "", "", "", " last week", " next month", " on Monday", " by Friday", " in March", " this year",
    " as planned", " on time", " in 2024",
)
_ITEMS = (
    "Printer paper A4", "Toner cartridge", "Desk lamp", "Coffee beans 1 kg", "Stapler", "Envelopes C5",
    "Whiteboard markers", "Binder clips", "Notebooks", "Label tape", "Folders blue", "Cable ties",
    "Glue sticks", "Shipping boxes", "Packing tape", "Highlighters",
)


@dataclass(frozen=True)
class RenderedPage:
    image: np.ndarray  # BGR uint8, black text on white
    text: str  # the blocks in reading order, separated by a blank line
    blocks: list[str] = field(default_factory=list)  # each block's lines joined by newlines


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_DETERMINERS), rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice(_VERBS)]
    words += [rng.choice(_DETERMINERS), rng.choice(_NOUNS), rng.choice(_PREPOSITIONS), rng.choice(_DETERMINERS)]
    if rng.random() < 0.5:
        words.append(rng.choice(_ADJECTIVES))
    words.append(rng.choice(_NOUNS))
    text = " ".join(words) + rng.choice(_TAILS)
    if rng.random() < 0.4:
        text += f", and {rng.choice(_DETERMINERS)} {rng.choice(_NOUNS)} {rng.choice(_VERBS)} {rng.choice(_NOUNS)} plans"
    return text[0].upper() + text[1:] + "."


def _paragraph(rng: random.Random, sentences: tuple[int, int] = (3, 5)) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(*sentences)))


class _Page:
    """A white page being drawn on; remembers the blocks of text in the order they are added."""

    def __init__(self, width_in: float, height_in: float, dpi: int) -> None:
        self.dpi = dpi
        self.image = Image.new("L", (self.px(width_in), self.px(height_in)), 255)
        self.draw = ImageDraw.Draw(self.image)
        self.blocks: list[list[str]] = []
        font = latin_font_path()
        if font is None:
            raise RuntimeError("no DejaVuSans.ttf: install matplotlib or fonts-dejavu-core")
        bold = font.parent / "DejaVuSans-Bold.ttf"
        self._paths = {False: font, True: bold if bold.is_file() else font}

    def px(self, inches: float) -> int:
        return int(round(inches * self.dpi))

    def font(self, points: float, bold: bool = False) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(self._paths[bold]), int(round(points * self.dpi / 72)))

    @staticmethod
    def pitch(font: ImageFont.FreeTypeFont) -> int:
        return int(round(font.size * 1.3))  # single spacing of office documents: about 1.2-1.35 em

    def line(self, x: int, y: int, text: str, font, *, width: int = 0, align: str = "left") -> None:
        length = font.getlength(text)
        if align == "center":
            x += int((width - length) / 2)
        elif align == "right":
            x += int(width - length)
        self.draw.text((x, y), text, font=font, fill=0)

    def justified(self, x: int, y: int, words: list[str], font, width: int) -> None:
        lengths = [font.getlength(w) for w in words]
        gap = (width - sum(lengths)) / max(1, len(words) - 1)
        position = float(x)
        for word, length in zip(words, lengths):
            self.draw.text((int(round(position)), y), word, font=font, fill=0)
            position += length + gap

    def wrap(self, text: str, font, width: int) -> list[list[str]]:
        lines: list[list[str]] = [[]]
        space = font.getlength(" ")
        used = 0.0
        for word in text.split():
            length = font.getlength(word)
            if lines[-1] and used + space + length > width:
                lines.append([])
                used = 0.0
            used += (space if lines[-1] else 0.0) + length
            lines[-1].append(word)
        return lines

    def text_block(self, x: int, y: int, lines: list[str], font, *, width: int = 0, align: str = "left") -> int:
        """Lines as one block; returns the y below the block."""
        for text in lines:
            self.line(x, y, text, font, width=width, align=align)
            y += self.pitch(font)
        self.blocks.append(list(lines))
        return y

    def flow(self, items: list, columns: list[tuple[int, int]], top: int, bottom: int, font, *, justify: bool) -> int:
        """Paragraphs (str) and figures ((height_px, caption)) poured column after column; returns the last y.

        Each column's share of a paragraph is a block of its own; a figure that does not fit moves on.
        What does not fit into the last column is left out (a paragraph there is not cut off).
        """
        pitch, column, y = self.pitch(font), 0, top
        caption_font = self.font(8.5)
        for item in items:
            x, width = columns[column]
            if isinstance(item, tuple):
                height, caption = item
                if y + height + 2 * self.pitch(caption_font) > bottom:
                    if column + 1 == len(columns):
                        break
                    column, y = column + 1, top
                    x, width = columns[column]
                self.draw.rectangle((x, y, x + width, y + height), fill=205)
                self.draw.ellipse((x + width // 4, y + height // 5, x + 3 * width // 4, y + 4 * height // 5), fill=160)
                y += height + pitch // 2
                y = self.text_block(x, y, [caption], caption_font) + pitch
                continue
            wrapped = self.wrap(item, font, width)
            room = (bottom - y) // pitch + (len(columns) - column - 1) * ((bottom - top) // pitch)
            if len(wrapped) > room:
                break
            block: list[str] = []
            for number, words in enumerate(wrapped):
                if y + pitch > bottom:
                    self.blocks.append(block)
                    block, column, y = [], column + 1, top
                    x, width = columns[column]
                if justify and number < len(wrapped) - 1 and len(words) > 1:
                    self.justified(x, y, words, font, width)
                else:
                    self.line(x, y, " ".join(words), font)
                block.append(" ".join(words))
                y += pitch
            self.blocks.append(block)
            y += pitch // 2  # paragraph spacing: half a line
        return y

    def columns(self, left: int, right: int, count: int, gutter_in: float) -> list[tuple[int, int]]:
        gutter = self.px(gutter_in)
        width = (right - left - (count - 1) * gutter) // count
        return [(left + k * (width + gutter), width) for k in range(count)]


def _letter_head(page: _Page, rng: random.Random, left: int) -> int:
    y = page.px(0.7)
    y = page.text_block(left, y, ["Northfield Supply Company"], page.font(18, bold=True))
    small = page.font(9)
    y = page.text_block(left, y, ["14 Market Street, Springfield, Phone 555 0143"], small) + page.px(0.35)
    body = page.font(10.5)
    y = page.text_block(left, y, [f"{rng.randint(1, 28)} March 2024"], body) + page.px(0.25)
    name = rng.choice(("Ms Laura Carter", "Mr David Moore", "Ms Anna Fischer"))
    y = page.text_block(left, y, [name, "Riverside Office Services", "220 Harbour Road", "Lakewood"], body)
    y += page.px(0.3)
    return page.text_block(left, y, [f"Dear {name.split()[0]} {name.split()[-1]},"], body) + page.pitch(body) // 2


def _signature(page: _Page, left: int, y: int) -> int:
    body = page.font(10.5)
    y = page.text_block(left, y, ["Kind regards,"], body) + page.px(0.45)
    return page.text_block(left, y, ["Jane Doe", "Office Manager"], body)


def _one_column(page: _Page, rng: random.Random) -> None:
    left = page.px(1.0)
    width = page.image.width - 2 * left
    y = _letter_head(page, rng, left)
    y = page.flow([_paragraph(rng) for _ in range(4)], [(left, width)], y, page.image.height - page.px(1.0),
                  page.font(10.5), justify=False)
    _signature(page, left, y + page.px(0.1))


def _columns_page(page: _Page, rng: random.Random, count: int, *, heading: bool, figure: bool) -> None:
    left, right = page.px(0.75), page.image.width - page.px(0.75)
    top, bottom = page.px(0.75), page.image.height - page.px(0.75)
    if heading:
        title = page.font(22, bold=True)
        top = page.text_block(left, top, ["Northfield Quarterly Staff Newsletter"], title, width=right - left,
                              align="center")
        top = page.text_block(left, top, ["News from the warehouse, the office and our customers"], page.font(12),
                              width=right - left, align="center") + page.px(0.3)
        bottom -= page.px(0.6)  # room for the footer line
    body = page.font(10.5 if count < 3 else 10)
    items: list = [_paragraph(rng, (3, 6)) for _ in range(14 if count < 3 else 16)]
    if figure:
        items.insert(1, (page.px(1.8), "Figure 1. Monthly deliveries from the regional warehouse"))
    page.flow(items, page.columns(left, right, count, 0.3 if count < 3 else 0.25), top, bottom, body,
              justify=count != 3)
    if heading:
        footer = page.font(9)
        page.text_block(left, page.image.height - page.px(0.75) - page.pitch(footer),
                        ["Northfield Supply Company - Internal newsletter - Page 1 of 2"], footer,
                        width=right - left, align="center")


def _letter_two_column_lower(page: _Page, rng: random.Random) -> None:
    left, right = page.px(1.0), page.image.width - page.px(1.0)
    y = _letter_head(page, rng, left)
    body = page.font(10.5)
    y = page.flow([_paragraph(rng, (3, 4)) for _ in range(2)], [(left, right - left)], y, page.image.height, body,
                  justify=False) + page.px(0.2)
    columns = page.columns(left, right, 2, 0.35)
    heading = page.font(11, bold=True)
    bottom = page.image.height - page.px(1.8)
    ends = []
    for (x, width), title in zip(columns, ("Delivery terms", "Payment terms")):
        start = page.text_block(x, y, [title], heading) + page.pitch(body) // 3
        ends.append(page.flow([_paragraph(rng, (2, 4)) for _ in range(3)], [(x, width)], start, bottom, body,
                              justify=True))
    _signature(page, left, max(ends) + page.px(0.35))


def _receipt(page: _Page, rng: random.Random) -> None:
    width = page.px(3.6)
    left = (page.image.width - width) // 2
    y = page.px(1.0)
    big, body = page.font(14, bold=True), page.font(10.5)
    # The centred header is one block: name, address and number set close together.
    header = ["NORTHFIELD OFFICE SUPPLY", "14 Market Street, Springfield", f"Receipt {rng.randint(10000, 99999)}"]
    for number, text in enumerate(header):
        page.line(left, y, text, big if number == 0 else body, width=width, align="center")
        y += page.pitch(big if number == 0 else body)
    page.blocks.append(header)
    y += page.px(0.35)
    total = 0.0
    for rows in (rng.sample(_ITEMS, rng.randint(6, 9)), None):
        if rows is None:
            tax = round(total * 0.08, 2)
            pairs = [("Subtotal", total), ("Tax 8%", tax), ("Total", total + tax)]
        else:
            pairs = [(label, rng.randint(150, 4999) / 100) for label in rows]
            total = sum(amount for _, amount in pairs)
        lines = []
        for label, amount in pairs:
            money = f"{amount:.2f}"
            page.line(left, y, label, body)
            page.line(left, y, money, body, width=width, align="right")
            lines.append(f"{label} {money}")
            y += page.pitch(body)
        page.blocks.append(lines)
        y += page.px(0.3)
    page.text_block(left, y + page.px(0.1), ["Thank you for your purchase"], body, width=width, align="center")


def render_page(kind: str, *, dpi: int = 300, seed: int = 0, scan: bool = False) -> RenderedPage:
    """One office page of `kind` (see KINDS); `scan=True` adds a slight blur and seeded grain like a copier."""
    if kind not in KINDS:
        raise ValueError(f"unknown page kind {kind!r}; one of {', '.join(KINDS)}")
    rng = random.Random(f"{kind}/{seed}")
    page = _Page(8.27, 11.69, dpi) if kind == "three_columns" else _Page(8.5, 11.0, dpi)
    if kind == "one_column":
        _one_column(page, rng)
    elif kind == "letter_two_column_lower":
        _letter_two_column_lower(page, rng)
    elif kind == "receipt_table":
        _receipt(page, rng)
    else:
        count = 3 if kind == "three_columns" else 2
        _columns_page(page, rng, count, heading=kind == "heading_two_columns_footer", figure=kind == "figure_gap")
    image = page.image
    gray = np.asarray(image, dtype=np.uint8)
    if scan:
        blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(0.7 * dpi / 300)), dtype=np.float32)
        grain = np.random.default_rng(seed).normal(0.0, 9.0, blurred.shape)
        gray = np.clip(blurred + grain, 0, 255).astype(np.uint8)
    blocks = ["\n".join(lines) for lines in page.blocks if lines]
    bgr = np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    return RenderedPage(image=bgr, text="\n\n".join(blocks), blocks=blocks)


def turn(image: np.ndarray, degrees: int) -> np.ndarray:
    """The image turned clockwise by 0, 90, 180 or 270 degrees (as a page fed sideways or upside down)."""
    if degrees % 90:
        raise ValueError(f"turn by a multiple of 90 degrees, not {degrees}")
    return np.ascontiguousarray(np.rot90(image, k=-(degrees // 90) % 4))
