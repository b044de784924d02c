"""The text layer's glyphless font: a TrueType program built with fontTools whose cmap gives every character the layer shows an empty glyph of its own, and its PDF font objects (Type0, Identity-H, ToUnicode); it draws nothing and places no text.

One font per PDF, holding just the characters its pages show (any script: Latin, CJK, beyond the
BMP), so copy/paste and search map every glyph back to its character: through the ToUnicode CMap
(what viewers use) and through the program's own Unicode cmap. Every glyph is its own box, half an em
wide (never painted: the layer is invisible); `ocrd.outputs.pdf_text` stretches each word to its box with the text matrix, so the
widths only have to agree between the font dictionary and the program (PDF/A asks for that).
Ascent + descent is one em, so a font size equal to the box height spans the box and a viewer's
selection covers the word. The same characters give the same bytes (no timestamps).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import pikepdf

UNITS_PER_EM = 1000
ADVANCE = 500  # every glyph's width in font units
ASCENT = 800
DESCENT = -200  # ASCENT - DESCENT == UNITS_PER_EM: a glyph box is exactly one em tall
FONT_NAME = "OcrdGlyphless"
_BFCHAR_CHUNK = 100  # a CMap's beginbfchar block holds at most 100 entries
_FIXED_TIMESTAMP = 3_786_912_000  # 2024-01-01 in seconds since 1904 (TrueType time): no clock in the bytes


@dataclass(frozen=True, slots=True)
class GlyphlessFont:
    """The font program and which glyph (= CID, the font is Identity-H encoded) shows each character."""

    program: bytes  # the TrueType file
    gids: dict[str, int]

    def encode(self, text: str) -> bytes:
        """`text` as the two-byte CIDs a Tj operand holds; every character must be in the font."""
        return b"".join(self.gids[ch].to_bytes(2, "big") for ch in text)

    def to_unicode_cmap(self) -> bytes:
        """The ToUnicode CMap: each CID back to its character (UTF-16BE, surrogate pairs beyond the BMP)."""
        entries = sorted((gid, ch) for ch, gid in self.gids.items())
        body = []
        for start in range(0, len(entries), _BFCHAR_CHUNK):
            chunk = entries[start : start + _BFCHAR_CHUNK]
            body.append(f"{len(chunk)} beginbfchar")
            body.extend(f"<{gid:04X}> <{ch.encode('utf-16-be').hex().upper()}>" for gid, ch in chunk)
            body.append("endbfchar")
        lines = [
            "/CIDInit /ProcSet findresource begin",
            "12 dict begin",
            "begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            "/CMapName /Adobe-Identity-UCS def",
            "/CMapType 2 def",
            "1 begincodespacerange",
            "<0000> <FFFF>",
            "endcodespacerange",
            *body,
            "endcmap",
            "CMapName currentdict /CMap defineresource pop",
            "end",
            "end",
        ]
        return ("\n".join(lines) + "\n").encode("ascii")


def font_characters(texts: Iterable[str]) -> set[str]:
    """The characters a font must hold to show `texts` (a space always: words are separated by one).

    Surrogates and other code points a cmap cannot hold are left out; `ocrd.outputs.pdf_text` drops them.
    """
    chars = {" "}
    for text in texts:
        chars.update(text)
    return {ch for ch in chars if showable(ch)}


def showable(ch: str) -> bool:
    """Whether the font can hold `ch`: a Unicode scalar value that is not a control character."""
    code = ord(ch)
    return code >= 0x20 and not 0xD800 <= code <= 0xDFFF and code not in (0x7F, 0xFFFE, 0xFFFF)


def build_font(chars: Iterable[str]) -> GlyphlessFont:
    """A glyphless TrueType font with one empty glyph per character of `chars` (glyph 0 is .notdef, never shown)."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    ordered = sorted(ch for ch in set(chars) if showable(ch))
    if len(ordered) >= 0xFFFF:
        raise ValueError(f"{len(ordered)} different characters do not fit one font")
    names = [".notdef", *(_glyph_name(ch) for ch in ordered)]
    builder = FontBuilder(UNITS_PER_EM, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({ord(ch): name for ch, name in zip(ordered, names[1:])})
    builder.setupGlyf({name: _box_glyph(TTGlyphPen(None)) for name in names})
    builder.setupHorizontalMetrics({name: (ADVANCE, 0) for name in names})
    builder.setupHorizontalHeader(ascent=ASCENT, descent=DESCENT)
    builder.setupNameTable({"familyName": FONT_NAME, "styleName": "Regular", "psName": FONT_NAME})
    builder.setupOS2(
        sTypoAscender=ASCENT, sTypoDescender=DESCENT, sTypoLineGap=0, usWinAscent=ASCENT, usWinDescent=-DESCENT,
        fsType=0,  # installable: the font may be embedded and extracted freely
    )  # fmt: skip
    builder.setupPost()
    builder.font.recalcTimestamp = False  # same characters, same bytes
    builder.font["head"].created = builder.font["head"].modified = _FIXED_TIMESTAMP
    out = io.BytesIO()
    builder.save(out)
    return GlyphlessFont(program=out.getvalue(), gids={ch: gid for gid, ch in enumerate(ordered, 1)})


def _box_glyph(pen):
    """A glyph outlined by its own box (advance x ascent to descent). Never painted (render mode 3), but
    text extractors such as PDFium take a character's box from its glyph's: an empty outline would give
    every character a box of no height, and turned lines none at all."""
    pen.moveTo((0, DESCENT))
    pen.lineTo((0, ASCENT))
    pen.lineTo((ADVANCE, ASCENT))
    pen.lineTo((ADVANCE, DESCENT))
    pen.closePath()
    return pen.glyph()


def _glyph_name(ch: str) -> str:
    code = ord(ch)
    return f"uni{code:04X}" if code < 0x10000 else f"u{code:05X}"


def font_object(pdf: pikepdf.Pdf, font: GlyphlessFont) -> pikepdf.Object:
    """The Type0 font dictionary (indirect) of `font` in `pdf`: the program embedded, widths and ToUnicode."""
    program = pikepdf.Stream(pdf, b"")
    program.write(zlib.compress(font.program), filter=pikepdf.Name.FlateDecode)
    program.Length1 = len(font.program)
    descriptor = pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor,
        FontName=pikepdf.Name("/" + FONT_NAME),
        Flags=4,  # symbolic: its glyphs are not the standard Latin set
        FontBBox=[0, DESCENT, ADVANCE, ASCENT],
        ItalicAngle=0,
        Ascent=ASCENT,
        Descent=DESCENT,
        CapHeight=ASCENT,
        StemV=80,
        FontFile2=program,
    )
    cid_font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font,
        Subtype=pikepdf.Name.CIDFontType2,
        BaseFont=pikepdf.Name("/" + FONT_NAME),
        CIDSystemInfo=pikepdf.Dictionary(Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"), Supplement=0),
        FontDescriptor=pdf.make_indirect(descriptor),
        DW=ADVANCE,
        CIDToGIDMap=pikepdf.Name.Identity,
    )
    to_unicode = pikepdf.Stream(pdf, b"")
    to_unicode.write(zlib.compress(font.to_unicode_cmap()), filter=pikepdf.Name.FlateDecode)
    type0 = pikepdf.Dictionary(
        Type=pikepdf.Name.Font,
        Subtype=pikepdf.Name.Type0,
        BaseFont=pikepdf.Name("/" + FONT_NAME),
        Encoding=pikepdf.Name("/Identity-H"),
        DescendantFonts=[pdf.make_indirect(cid_font)],
        ToUnicode=to_unicode,
    )
    return pdf.make_indirect(type0)
