"""PDF/A-2b identification and the document metadata of ocrd's PDFs: the sRGB output intent (an ICC profile generated here), the XMP packet and the document information; never changes a page.

The sRGB profile is built from the colour space's published numbers (ICC v2, a display profile:
the D50-adapted primaries of IEC 61966-2-1 and its tone curve as a 1024-entry table), so nothing is
downloaded or read from another package's data. The XMP says title (the input's file name),
producer (ocrd and its version), creation date and `pdfaid:part=2`, `conformance=B`; the
document information dictionary says the same, as PDF/A asks.
"""

from __future__ import annotations

import functools
import struct
import zlib
from datetime import datetime

import pikepdf

SRGB_NAME = "sRGB IEC61966-2.1"
_D50 = (0.9642, 1.0, 0.8249)
# sRGB primaries adapted to D50 (Bradford), as every sRGB display profile carries them.
_PRIMARIES = {b"rXYZ": (0.4361, 0.2225, 0.0139), b"gXYZ": (0.3851, 0.7169, 0.0971), b"bXYZ": (0.1431, 0.0606, 0.7141)}
_CURVE_POINTS = 1024


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15f16(v) for v in values)


def _srgb_curve() -> bytes:
    def decode(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    points = [round(decode(i / (_CURVE_POINTS - 1)) * 65535) for i in range(_CURVE_POINTS)]
    return b"curv\0\0\0\0" + struct.pack(">I", _CURVE_POINTS) + struct.pack(f">{_CURVE_POINTS}H", *points)


def _description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    # textDescriptionType: ASCII, then empty Unicode and ScriptCode parts (67 bytes of script buffer).
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + struct.pack(">IIHB", 0, 0, 0, 0) + bytes(67)


@functools.cache
def srgb_icc_profile() -> bytes:
    """An ICC v2 sRGB display profile (RGB to XYZ), deterministic."""
    curve = _srgb_curve()
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _description(SRGB_NAME)),
        (b"cprt", b"text\0\0\0\0" + b"No copyright, use freely\0"),
        (b"wtpt", _xyz(_D50)),
        *((sig, _xyz(xyz)) for sig, xyz in _PRIMARIES.items()),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ]  # fmt: skip
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, body, placed = [], b"", {}
    for sig, data in tags:
        if data in placed:  # the three tone curves share one element
            entries.append(struct.pack(">4sII", sig, placed[data], len(data)))
            continue
        padding = (-len(body)) % 4
        body += bytes(padding)
        placed[data] = offset + len(body)
        entries.append(struct.pack(">4sII", sig, offset + len(body), len(data)))
        body += data
    body += bytes((-len(body)) % 4)
    size = 128 + table_size + len(body)
    header = (
        struct.pack(">I4sI4s4s4s", size, b"\0\0\0\0", 0x02100000, b"mntr", b"RGB ", b"XYZ ")
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp" + bytes(4) + struct.pack(">I", 0) + bytes(4) + bytes(4) + bytes(8)
        + struct.pack(">I", 0)  # perceptual
        + b"".join(_s15f16(v) for v in _D50)
        + bytes(4) + bytes(16) + bytes(28)
    )  # fmt: skip
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + body


def add_output_intent(pdf: pikepdf.Pdf) -> None:
    """Give `pdf` the sRGB PDF/A output intent (replacing any it had)."""
    profile = pikepdf.Stream(pdf, b"")
    profile.write(zlib.compress(srgb_icc_profile()), filter=pikepdf.Name.FlateDecode)
    profile.N = 3
    intent = pikepdf.Dictionary(
        Type=pikepdf.Name.OutputIntent,
        S=pikepdf.Name.GTS_PDFA1,
        OutputConditionIdentifier=pikepdf.String(SRGB_NAME),
        Info=pikepdf.String(SRGB_NAME),
        RegistryName=pikepdf.String("http://www.color.org"),
        DestOutputProfile=pdf.make_indirect(profile),
    )
    pdf.Root.OutputIntents = pikepdf.Array([pdf.make_indirect(intent)])


def set_metadata(pdf: pikepdf.Pdf, *, title: str, producer: str, created: datetime, pdfa: bool) -> None:
    """Title, producer and dates in the XMP packet and the document information; with `pdfa`, the
    PDF/A-2b identification and output intent too."""
    stamp = created.isoformat(timespec="seconds")
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=True) as meta:
        meta["dc:title"] = title
        meta["pdf:Producer"] = producer
        meta["xmp:CreatorTool"] = producer
        meta["xmp:CreateDate"] = stamp
        meta["xmp:ModifyDate"] = stamp
        meta["xmp:MetadataDate"] = stamp
        if pdfa:
            meta["pdfaid:part"] = "2"
            meta["pdfaid:conformance"] = "B"
    if pdfa:
        add_output_intent(pdf)


def pdfa_findings(pdf: pikepdf.Pdf) -> list[str]:
    """What pikepdf's PDF/A-2b validator finds against `pdf` as it would be saved (empty: it passes)."""
    from pikepdf import pdfa as validator  # lazy: the validator loads its rule catalogue on import

    report = validator.check(pdf, "2b")
    if report.passed:
        return []
    return [f"{f.rule}: {f.message}" for f in report.findings] or [f"verdict {report.verdict}"]
