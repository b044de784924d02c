"""Intake: every generated file is either decoded to the expected pixels or refused with the expected reason."""

from __future__ import annotations

import logging
import os
import signal
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ocrd.config.schema import IntakeConfig
from ocrd.errors import InputError, Reason
from ocrd.intake.decode import apply_orientation, decoder_env, normalise
from ocrd.intake.formats import sniff_format
from ocrd.intake.gate import open_document
from ocrd.intake.jpeg import parse_jpeg
from ocrd.intake.raster import parse_bmp, parse_png, parse_webp
from ocrd.intake.tiff import parse_exif_orientation, parse_tiff
from tests import corpus

CFG = IntakeConfig()
NOW_S = 1_000_000_000.0


def write(tmp_path: Path, name: str, data: bytes, *, age_s: float = 3600) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    os.utime(path, (NOW_S - age_s, NOW_S - age_s))
    return path


def refuse(path: Path, cfg: IntakeConfig = CFG) -> InputError:
    """Open and decode every page; return the InputError (the test fails if there is none)."""
    with pytest.raises(InputError) as info:
        doc = open_document(path, cfg, now_s=NOW_S)
        for _ in doc.pages():
            pass
    return info.value


def read_pages(path: Path, cfg: IntakeConfig = CFG) -> list:
    doc = open_document(path, cfg, now_s=NOW_S)
    pages = list(doc.pages())
    assert len(pages) == doc.page_count
    for page in pages:
        assert page.image.dtype == np.uint8
        assert page.image.ndim == 3 and page.image.shape[2] == 3
        assert page.image.flags["C_CONTIGUOUS"]
    return pages


# ---------------------------------------------------------------- gate


def test_zero_bytes_is_empty_file(tmp_path):
    assert refuse(write(tmp_path, "a.jpg", b"")).reason is Reason.EMPTY_FILE


def test_too_large_bytes(tmp_path):
    path = write(tmp_path, "a.jpg", corpus.jpeg_bytes())
    err = refuse(path, replace(CFG, max_bytes=100))
    assert err.reason is Reason.TOO_LARGE_BYTES
    assert "MiB" in err.message


def test_wrong_magic_is_unsupported(tmp_path):
    err = refuse(write(tmp_path, "a.png", bytes(range(7, 200))))
    assert err.reason is Reason.UNSUPPORTED_FORMAT
    assert "magic bytes" in err.message


def test_text_file_named_jpg_says_it_is_text(tmp_path):
    err = refuse(write(tmp_path, "notes.jpg", b"Dear scanner,\nthis is not a picture.\n" * 5))
    assert err.reason is Reason.UNSUPPORTED_FORMAT
    assert "plain-text" in err.message


def test_gif_is_named_in_the_refusal(tmp_path):
    err = refuse(write(tmp_path, "a.gif", corpus.pil_bytes(Image.new("P", (4, 4)), "GIF")))
    assert err.reason is Reason.UNSUPPORTED_FORMAT
    assert "GIF" in err.message


def test_symlink_pointing_outside_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = write(outside, "secret.png", corpus.png_bytes(corpus.marker_image()))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    link = inbox / "scan.png"
    link.symlink_to(target)
    assert refuse(link).reason is Reason.NOT_REGULAR_FILE


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    # If the gate ever blocked on the FIFO, the alarm turns the hang into a failure.
    old = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("open_document blocked on a FIFO"))
    signal.alarm(5)
    try:
        assert refuse(fifo).reason is Reason.NOT_REGULAR_FILE
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_directory_is_refused(tmp_path):
    (tmp_path / "d.jpg").mkdir()
    assert refuse(tmp_path / "d.jpg").reason is Reason.NOT_REGULAR_FILE


def test_missing_file_is_not_found(tmp_path):
    assert refuse(tmp_path / "gone.jpg").reason is Reason.NOT_FOUND


def test_extension_mismatch_is_logged_not_trusted(tmp_path, caplog):
    path = write(tmp_path, "photo.jpg", corpus.png_bytes(corpus.marker_image()))
    with caplog.at_level(logging.WARNING, logger="ocrd.intake"):
        doc = open_document(path, CFG, now_s=NOW_S)
    assert doc.format == "png"
    assert "intake_extension_mismatched" in caplog.text


def test_document_metadata(tmp_path):
    data = corpus.png_bytes(corpus.marker_image())
    doc = open_document(write(tmp_path, "a.png", data), CFG, now_s=NOW_S)
    import hashlib

    assert (doc.format, doc.size_bytes, doc.page_count) == ("png", len(data), 1)
    assert doc.sha256 == hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- truncation


@pytest.mark.parametrize(
    "name, data",
    [
        ("half.jpg", corpus.jpeg_bytes(200, 150)),
        ("half.png", corpus.png_bytes(np.random.default_rng(1).integers(0, 255, (80, 80, 3), dtype=np.uint8))),
        ("half.tif", corpus.pil_bytes(Image.new("RGB", (80, 60), (10, 200, 30)), "TIFF")),
        ("half.webp", corpus.pil_bytes(Image.new("RGB", (80, 60), (10, 200, 30)), "WEBP")),
        ("half.bmp", corpus.pil_bytes(Image.new("RGB", (80, 60), (10, 200, 30)), "BMP")),
        ("half.pdf", corpus.pdf_bytes([(200, 100, corpus.black_box(10, 10))])),
    ],
)
def test_truncated_files_are_truncated(tmp_path, name, data):
    err = refuse(write(tmp_path, name, data[: len(data) // 2]))
    assert err.reason is Reason.TRUNCATED


def test_jpeg_without_eoi_is_truncated_even_if_decoder_would_cope(tmp_path):
    data = corpus.jpeg_bytes()
    assert data.endswith(b"\xff\xd9")
    assert refuse(write(tmp_path, "a.jpg", data[:-2])).reason is Reason.TRUNCATED


def test_young_truncated_may_still_be_copying(tmp_path):
    data = corpus.jpeg_bytes()
    young = refuse(write(tmp_path, "young.jpg", data[: len(data) // 2], age_s=5))
    old = refuse(write(tmp_path, "old.jpg", data[: len(data) // 2], age_s=3600))
    assert young.reason is old.reason is Reason.TRUNCATED
    assert "may still be copying" in young.message
    assert "may still be copying" not in old.message
    assert "not still copying" in old.message


def test_garbage_after_jpeg_eoi_is_accepted(tmp_path):
    data = corpus.jpeg_bytes() + b"trailing junk from a camera" * 10
    (page,) = read_pages(write(tmp_path, "a.jpg", data))
    assert page.image.shape == (48, 64, 3)


def test_png_garbage_after_valid_header_is_corrupt(tmp_path):
    # Valid IHDR and chunk structure, but the compressed pixel data is garbage.
    garbage = np.random.default_rng(2).integers(0, 256, 500, dtype=np.uint8).tobytes()
    data = corpus.png_header_only(64, 64, idat=garbage)
    assert refuse(write(tmp_path, "a.png", data)).reason is Reason.CORRUPT


def test_png_random_bytes_after_header_is_refused_cheaply(tmp_path):
    header = corpus.png_header_only(64, 64)[:33]  # signature + IHDR
    garbage = b"\x7f" + np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    err = refuse(write(tmp_path, "a.png", header + garbage))
    assert err.reason is Reason.CORRUPT  # not TRUNCATED: no copy in progress looks like this
    assert "chunk" in err.message


def test_jpeg_header_then_garbage_is_truncated(tmp_path):
    data = corpus.jpeg_bytes()
    sos = data.index(b"\xff\xda")
    garbage = np.random.default_rng(4).integers(0, 255, 3000, dtype=np.uint8).tobytes()
    err = refuse(write(tmp_path, "a.jpg", data[: sos + 14] + garbage.replace(b"\xff", b"\x00")))
    assert err.reason is Reason.TRUNCATED


# ---------------------------------------------------------------- limits


def test_png_40000_square_header_is_too_many_pixels(tmp_path):
    path = write(tmp_path, "bomb.png", corpus.png_header_only(40000, 40000))
    assert path.stat().st_size < 200
    err = refuse(path)
    assert err.reason is Reason.TOO_MANY_PIXELS
    assert "40000x40000" in err.message


def test_png_pixel_count_over_limit(tmp_path):
    err = refuse(write(tmp_path, "wide.png", corpus.png_header_only(10000, 6000)))
    assert err.reason is Reason.TOO_MANY_PIXELS
    assert "megapixels" in err.message


def test_tiff_with_thousands_of_pages_is_refused_cheaply(tmp_path):
    err = refuse(write(tmp_path, "many.tif", corpus.tiff_ifd_chain(5000)))
    assert err.reason is Reason.TOO_MANY_PAGES
    assert "100" in err.message


def test_tiff_ifd_loop_is_corrupt(tmp_path):
    err = refuse(write(tmp_path, "loop.tif", corpus.tiff_ifd_chain(3, loop=True)))
    assert err.reason is Reason.CORRUPT
    assert "loops" in err.message


def test_tiff_pages_at_the_limit_are_read(tmp_path):
    pages = read_pages(write(tmp_path, "ok.tif", corpus.tiff_ifd_chain(4, big_endian=True)), replace(CFG, max_pages=4))
    assert len(pages) == 4


def test_pdf_over_page_limit(tmp_path):
    data = corpus.pdf_bytes([(100, 100, "")] * 3)
    assert refuse(write(tmp_path, "a.pdf", data), replace(CFG, max_pages=2)).reason is Reason.TOO_MANY_PAGES


# ---------------------------------------------------------------- normalisation


def test_cmyk_jpeg_colours_are_right(tmp_path):
    rgb = Image.new("RGB", (64, 32), (255, 0, 0))
    rgb.paste((0, 0, 255), (32, 0, 64, 32))
    data = corpus.pil_bytes(rgb.convert("CMYK"), "JPEG", quality=95)
    (page,) = read_pages(write(tmp_path, "cmyk.jpg", data))
    left, right = page.image[16, 8].astype(int), page.image[16, 56].astype(int)
    assert np.abs(left - [0, 0, 255]).max() < 30  # red in BGR
    assert np.abs(right - [255, 0, 0]).max() < 30  # blue in BGR


def test_16bit_png_scaled_to_8bit(tmp_path):
    image = np.zeros((10, 20), np.uint16)
    image[:, :10] = 65535
    image[:, 10:] = 32768
    (page,) = read_pages(write(tmp_path, "deep.png", corpus.png_bytes(image)))
    assert page.image[0, 0].tolist() == [255, 255, 255]
    assert abs(int(page.image[0, 15, 0]) - 128) <= 1


def test_12bit_data_in_16bit_png_is_stretched(tmp_path):
    image = np.zeros((10, 20), np.uint16)
    image[:, :10] = 4000
    (page,) = read_pages(write(tmp_path, "deep.png", corpus.png_bytes(image)))
    assert page.image[0, 0].tolist() == [255, 255, 255]
    assert page.image[0, 15].tolist() == [0, 0, 0]


def test_16bit_planar_tiff_colours_are_right(tmp_path):
    data = corpus.planar_tiff_16bit_rgb(6, 4, (65535, 32768, 0))
    (page,) = read_pages(write(tmp_path, "planar.tif", data))
    assert np.abs(page.image[2, 3].astype(int) - [0, 128, 255]).max() <= 1


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((10, 30, 4), np.uint8)  # BGRA for cv2
    rgba[:, 10:20] = (0, 0, 255, 255)  # opaque red
    rgba[:, 20:] = (0, 0, 255, 128)  # half-transparent red
    (page,) = read_pages(write(tmp_path, "a.png", corpus.png_bytes(rgba)))
    assert page.image[5, 5].tolist() == [255, 255, 255]  # fully transparent -> white
    assert page.image[5, 15].tolist() == [0, 0, 255]
    assert np.abs(page.image[5, 25].astype(int) - [127, 127, 255]).max() <= 2


def test_light_content_on_transparent_is_composited_on_black(tmp_path):
    # White text on a transparent background: on white paper it would vanish.
    rgba = np.zeros((20, 60, 4), np.uint8)
    rgba[5:15, 10:50] = (255, 255, 255, 255)  # opaque white "text"
    (page,) = read_pages(write(tmp_path, "white.png", corpus.png_bytes(rgba)))
    assert page.image[1, 1].tolist() == [0, 0, 0]
    assert page.image[10, 30].tolist() == [255, 255, 255]


def test_gray_alpha_png_is_composited(tmp_path):
    data = corpus.pil_bytes(Image.new("LA", (8, 8), (0, 0)), "PNG")
    (page,) = read_pages(write(tmp_path, "la.png", data))
    assert page.image[0, 0].tolist() == [255, 255, 255]


def test_palette_png(tmp_path):
    image = Image.new("P", (20, 10), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (10, 0, 20, 10))
    (page,) = read_pages(write(tmp_path, "pal.png", corpus.pil_bytes(image, "PNG")))
    assert page.image[5, 2].tolist() == [0, 0, 255]
    assert page.image[5, 15].tolist() == [255, 0, 0]


def test_grayscale_becomes_bgr(tmp_path):
    gray = np.full((10, 10), 77, np.uint8)
    (page,) = read_pages(write(tmp_path, "g.png", corpus.png_bytes(gray)))
    assert page.image[0, 0].tolist() == [77, 77, 77]


def test_zero_alpha_channel_is_ignored_only_when_asked():
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., :3] = 40
    assert normalise(bgra.copy(), empty_alpha_is_opaque=True)[0, 0].tolist() == [40, 40, 40]
    assert normalise(bgra.copy())[0, 0].tolist() == [255, 255, 255]


# ---------------------------------------------------------------- orientation

# Pillow's names for what a viewer does to the stored image for each EXIF orientation.
_VIEWER_OP = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_INVERSE_OP = {**_VIEWER_OP, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
_EXPECTED_TURN = {2: (0, True), 3: (180, False), 4: (180, True), 5: (270, True), 6: (90, False), 7: (90, True), 8: (270, False)}


def _stored_with_orientation(orientation: int) -> Image.Image:
    displayed = Image.fromarray(corpus.marker_image()[:, :, ::-1])
    stored = displayed.transpose(_INVERSE_OP[orientation])
    # The corpus must mean what we think: a viewer turns `stored` back into `displayed`.
    assert np.array_equal(np.asarray(stored.transpose(_VIEWER_OP[orientation])), np.asarray(displayed))
    return stored


def _assert_marker_top_left(image: np.ndarray) -> None:
    assert image.shape == (30, 60, 3)
    corners = [image[:6, :6], image[:6, -6:], image[-6:, :6], image[-6:, -6:]]
    means = [float(c.mean()) for c in corners]
    assert means[0] < 60 and min(means[1:]) > 200, means


@pytest.mark.parametrize("orientation", range(2, 9))
@pytest.mark.parametrize("fmt, ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif")])
def test_exif_orientation_applied(tmp_path, orientation, fmt, ext):
    exif = Image.Exif()
    exif[0x0112] = orientation
    params = {"exif": exif.tobytes()}
    if fmt == "WEBP":
        params["lossless"] = True
    if fmt == "TIFF":
        params = {"tiffinfo": {0x0112: orientation}}
    data = corpus.pil_bytes(_stored_with_orientation(orientation), fmt, **params)
    (page,) = read_pages(write(tmp_path, f"o{orientation}.{ext}", data))
    _assert_marker_top_left(page.image)
    assert (page.orientation_applied, page.mirrored) == _EXPECTED_TURN[orientation]


@pytest.mark.parametrize("orientation", [2, 6, 7])
def test_tiff_16bit_orientation_applied(tmp_path, orientation):
    stored = np.asarray(_stored_with_orientation(orientation).convert("L")).astype(np.uint16) * 257
    data = corpus.pil_bytes(Image.fromarray(stored), "TIFF", tiffinfo={0x0112: orientation})
    (page,) = read_pages(write(tmp_path, "deep.tif", data))
    _assert_marker_top_left(page.image)


def test_orientation_table_matches_pillow():
    stored = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for orientation, op in _VIEWER_OP.items():
        expected = np.asarray(Image.fromarray(stored).transpose(op))
        got, _, _ = apply_orientation(stored, orientation)
        assert np.array_equal(got, expected), orientation


# ---------------------------------------------------------------- multi-page


def test_multipage_tiff_pages_in_order(tmp_path):
    pages = read_pages(write(tmp_path, "three.tif", corpus.tiff_pages_bytes([10, 120, 240])))
    assert [p.index for p in pages] == [0, 1, 2]
    assert [int(p.image[0, 0, 0]) for p in pages] == [10, 120, 240]
    assert [p.image.shape[1] for p in pages] == [40, 41, 42]


def test_multipage_pdf_rendered_at_dpi(tmp_path):
    data = corpus.pdf_bytes(
        [
            (612, 792, corpus.black_box(0, 792 - 36)),  # box top-left
            (300, 200, corpus.black_box(300 - 36, 0)),  # box bottom-right
        ]
    )
    doc = open_document(write(tmp_path, "two.pdf", data), CFG, now_s=NOW_S)
    assert (doc.format, doc.page_count) == ("pdf", 2)
    pages = list(doc.pages())
    assert pages[0].image.shape == (2200, 1700, 3)  # US Letter at 200 dpi
    height, width = pages[1].image.shape[:2]
    assert abs(width - 300 * 200 / 72) <= 1 and abs(height - 200 * 200 / 72) <= 1
    first, second = pages[0].image, pages[1].image
    assert first[10, 10].tolist() == [0, 0, 0] and first[-10, -10].tolist() == [255, 255, 255]
    assert second[-10, -10].tolist() == [0, 0, 0] and second[10, 10].tolist() == [255, 255, 255]


def test_huge_pdf_page_is_scaled_down_not_refused(tmp_path):
    inches = 100
    data = corpus.pdf_bytes([(inches * 72, inches * 72, corpus.black_box(0, 0))])
    (page,) = read_pages(write(tmp_path, "poster.pdf", data), replace(CFG, max_pixels=4_000_000))
    height, width = page.image.shape[:2]
    assert width * height <= 4_000_000
    assert width > 1900


def test_encrypted_pdf(tmp_path):
    data = corpus.pdf_bytes([(200, 100, "")], encrypt=True)
    err = refuse(write(tmp_path, "locked.pdf", data))
    assert err.reason is Reason.ENCRYPTED_PDF
    assert "password" in err.message


def test_pdf_header_after_junk_within_1024_bytes(tmp_path):
    data = b"junk before header\n" + corpus.pdf_bytes([(72, 72, "")])
    doc = open_document(write(tmp_path, "a.pdf", data), CFG, now_s=NOW_S)
    assert doc.format == "pdf"


def test_corrupt_pdf(tmp_path):
    data = b"%PDF-1.4\nthis is not really a pdf\n%%EOF\n"
    assert refuse(write(tmp_path, "a.pdf", data)).reason is Reason.CORRUPT


# ---------------------------------------------------------------- decode failures


def test_bmp_with_header_lies_is_refused(tmp_path):
    data = bytearray(corpus.pil_bytes(Image.new("RGB", (8, 8)), "BMP"))
    struct.pack_into("<H", data, 28, 7)  # bits per pixel 7 does not exist
    assert refuse(write(tmp_path, "a.bmp", bytes(data))).reason is Reason.CORRUPT


# ---------------------------------------------------------------- header parsers (unit)


def test_sniff_each_format():
    assert sniff_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_format(b"\x89PNG\r\n\x1a\n") == "png"
    assert sniff_format(b"II*\x00") == sniff_format(b"MM\x00*") == "tiff"
    assert sniff_format(b"II+\x00") == sniff_format(b"MM\x00+") == "tiff"
    assert sniff_format(b"BM\x00\x00") == "bmp"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_format(b"\x00" * 500 + b"%PDF-1.7") == "pdf"
    with pytest.raises(InputError):
        sniff_format(b"\x00" * 1100 + b"%PDF-1.7")
    with pytest.raises(InputError):
        sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ")


def test_parse_jpeg_reads_size_and_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = corpus.pil_bytes(Image.new("RGB", (33, 17)), "JPEG", exif=exif.tobytes())
    (page,) = parse_jpeg(data).pages
    assert (page.width_px, page.height_px, page.orientation) == (33, 17, 6)


def test_parse_progressive_jpeg():
    data = corpus.pil_bytes(Image.new("RGB", (50, 40), (9, 9, 9)), "JPEG", progressive=True)
    (page,) = parse_jpeg(data).pages
    assert (page.width_px, page.height_px) == (50, 40)


def test_parse_png_header():
    data = corpus.png_bytes(np.zeros((7, 9, 4), np.uint8))
    (page,) = parse_png(data).pages
    assert (page.width_px, page.height_px, page.has_alpha, page.samples) == (9, 7, True, 4)


def test_parse_png_bad_ihdr_crc_is_corrupt():
    data = bytearray(corpus.png_header_only(10, 10))
    data[29] ^= 0xFF
    with pytest.raises(InputError) as info:
        parse_png(bytes(data))
    assert info.value.reason is Reason.CORRUPT


def test_parse_bigtiff():
    (page,) = parse_tiff(corpus.bigtiff_header(123, 45), max_pages=10).pages
    assert (page.width_px, page.height_px) == (123, 45)


def test_parse_tiff_strip_past_end_is_truncated():
    data = corpus.tiff_ifd_chain(1)[:-1]  # drop the one strip byte
    with pytest.raises(InputError) as info:
        parse_tiff(data, max_pages=10)
    assert info.value.reason is Reason.TRUNCATED


@pytest.mark.parametrize("lossless", [True, False])
def test_parse_webp_sizes(lossless):
    data = corpus.pil_bytes(Image.new("RGBA", (21, 13), (1, 2, 3, 4)), "WEBP", lossless=lossless)
    (page,) = parse_webp(data).pages
    assert (page.width_px, page.height_px) == (21, 13)


def test_parse_bmp_os2_header():
    header = b"BM" + struct.pack("<IHHI", 26 + 3 * 4 * 2, 0, 0, 26) + struct.pack("<IHHHH", 12, 3, 2, 1, 24)
    data = header + b"\x00" * (12 * 2)
    (page,) = parse_bmp(data).pages
    assert (page.width_px, page.height_px) == (3, 2)


def test_exif_orientation_parser_tolerates_junk():
    assert parse_exif_orientation(b"") == 1
    assert parse_exif_orientation(b"Exif\x00\x00II*\x00\xff\xff\xff\x7f") == 1
    blob = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 8, 0)
    assert parse_exif_orientation(blob) == 8
    assert parse_exif_orientation(b"Exif\x00\x00" + blob) == 8


def test_decoder_env_names_opencv_limits():
    env = decoder_env(replace(CFG, max_pixels=1234, max_side_px=99))
    assert env == {
        "OPENCV_IO_MAX_IMAGE_PIXELS": "1234",
        "OPENCV_IO_MAX_IMAGE_WIDTH": "99",
        "OPENCV_IO_MAX_IMAGE_HEIGHT": "99",
    }


def test_png_crc_helper_consistent():
    # Guards the corpus builder the bomb test relies on.
    chunk = corpus.png_chunk(b"IEND", b"")
    assert struct.unpack(">I", chunk[-4:])[0] == zlib.crc32(b"IEND")
    assert cv2.imdecode(np.frombuffer(corpus.png_bytes(corpus.marker_image()), np.uint8), cv2.IMREAD_COLOR) is not None
