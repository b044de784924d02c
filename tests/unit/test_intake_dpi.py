"""The resolution each header parser reports (JFIF, EXIF, PNG pHYs, TIFF, BMP, WebP) for the PDF's page size; files that state none report None."""

from __future__ import annotations

import pytest
from PIL import Image

from ocrd.intake.formats import parse_header
from tests.corpus import pil_bytes


def dpi_of(data: bytes, fmt: str):
    return parse_header(data, fmt, 10).pages[0].dpi


@pytest.mark.parametrize(("fmt", "dpi"), [("JPEG", 150), ("PNG", 200), ("TIFF", 400), ("BMP", 96)])
def test_the_stated_resolution_is_reported(fmt, dpi):
    data = pil_bytes(Image.new("RGB", (30, 20), "white"), fmt, dpi=(dpi, dpi))
    assert dpi_of(data, fmt.lower()) == pytest.approx((dpi, dpi), abs=0.05)


def test_jpeg_resolution_from_exif_when_jfif_gives_only_an_aspect_ratio():
    exif = Image.Exif()
    exif[0x011A] = 240.0  # XResolution
    exif[0x011B] = 240.0
    exif[0x0128] = 2  # inches
    data = pil_bytes(Image.new("RGB", (30, 20), "white"), "JPEG", exif=exif.tobytes())
    assert dpi_of(data, "jpeg") == (240.0, 240.0)


def test_centimetre_units_are_converted():
    data = pil_bytes(Image.new("L", (30, 20), 255), "TIFF", dpi=(118.11, 118.11))  # Pillow writes inches
    assert dpi_of(data, "tiff") == pytest.approx((118.11, 118.11), abs=0.05)
    exif = Image.Exif()
    exif[0x011A], exif[0x011B], exif[0x0128] = 100.0, 100.0, 3  # per centimetre
    data = pil_bytes(Image.new("RGB", (30, 20), "white"), "WEBP", exif=exif.tobytes())
    assert dpi_of(data, "webp") == (254.0, 254.0)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_no_resolution_is_none(fmt):
    assert dpi_of(pil_bytes(Image.new("RGB", (30, 20), "white"), fmt), fmt.lower()) is None
