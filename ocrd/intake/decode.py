"""Decoding one page with OpenCV under its limits, normalisation to BGR uint8 and EXIF/TIFF orientation; the only cv2 user in intake.

cv2 is imported lazily, inside functions: the worker must put
`decoder_env(cfg)` into os.environ before cv2 is first imported, because
OpenCV reads its decoder limits once at import.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ocrd.errors import InputError, Reason
from ocrd.intake.headers import PageHeader

if TYPE_CHECKING:
    from ocrd.config.schema import IntakeConfig

log = logging.getLogger(__name__)

# Decoding with IMREAD_UNCHANGED (needed for alpha and >8-bit samples) costs
# width*height*samples*bytes_per_sample; above this we let OpenCV decode
# straight to 8-bit BGR instead, so one decode stays well under 600 MB RSS.
_UNCHANGED_BUDGET_BYTES = 160 * 1024 * 1024
# 16-bit data whose peak fits in 12 bits (common for scientific scanners) is
# stretched to full range; dividing by 257 would leave it nearly black.
_LOW_BIT_PEAK = 4096
_COMPOSITE_BAND_ROWS = 256
# OpenCV's TIFF decoder applies the TIFF Orientation tag itself, whatever the
# IMREAD flags (measured with opencv-python-headless 5.0 on all 8 orientations,
# 8/16-bit, RGBA, G4); JPEG/PNG/WebP decoders do not with IMREAD_UNCHANGED or
# IMREAD_IGNORE_ORIENTATION, so we apply those ourselves.
_DECODER_ORIENTS = frozenset({"tiff"})


def decoder_env(cfg: IntakeConfig) -> dict[str, str]:
    """Environment variables that make OpenCV's decoders enforce `cfg`'s limits.

    OpenCV reads OPENCV_IO_MAX_IMAGE_{PIXELS,WIDTH,HEIGHT} once, when cv2 is
    first imported; setting them later has no effect. A worker process must do
    `os.environ.update(decoder_env(cfg))` before anything imports cv2 (this
    module imports cv2 lazily, so importing `ocrd.intake.decode` first is fine). The
    limits back up the header checks for a header that lies.
    """
    return {
        "OPENCV_IO_MAX_IMAGE_PIXELS": str(int(cfg.max_pixels)),
        "OPENCV_IO_MAX_IMAGE_WIDTH": str(int(cfg.max_side_px)),
        "OPENCV_IO_MAX_IMAGE_HEIGHT": str(int(cfg.max_side_px)),
    }


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded page as displayed: BGR uint8 HxWx3, C-contiguous.

    `orientation_applied` is the clockwise rotation in degrees applied after an
    optional horizontal mirror (`mirrored`) to honour EXIF/TIFF orientation.
    """

    index: int
    image: np.ndarray
    orientation_applied: int = 0
    mirrored: bool = False


def decode_page(data: bytes, fmt: str, header: PageHeader, index: int, *, multi: bool) -> Page:
    """Decode page `index` of a raster file and turn it into the displayed BGR page; raises InputError for a bad page."""
    image = _decode(data, header, index if multi else None)
    try:
        # 32-bit BMPs often carry an alpha mask with every alpha byte zero.
        image = normalise(image, empty_alpha_is_opaque=fmt == "bmp")
        if fmt in _DECODER_ORIENTS:
            degrees, mirrored = orientation_turn(header.orientation)
        else:
            image, degrees, mirrored = apply_orientation(image, header.orientation)
    except (ValueError, TypeError, _cv2_error()) as exc:
        # A decoder returned a layout we cannot normalise (odd channel count or dtype).
        raise InputError(Reason.CORRUPT, f"page {index + 1} has an unusable pixel layout ({exc})") from None
    return Page(index, np.ascontiguousarray(image), degrees, mirrored)


def _decode(data: bytes, header: PageHeader, page_index: int | None) -> np.ndarray:
    import cv2  # lazy: the env limits must be in place first (see decoder_env)

    # OpenCV 5.0 returns garbage for >8-bit planar TIFFs with IMREAD_UNCHANGED
    # but decodes them right through its 8-bit path (measured on Pillow's
    # tiff_*_planar_16bit_* samples), so those lose alpha and depth on purpose.
    needs_unchanged = (header.has_alpha or header.bits_per_sample > 8) and not header.planar_separate
    bytes_per_sample = 1 if header.bits_per_sample <= 8 else (2 if header.bits_per_sample <= 16 else 4)
    estimate = header.width_px * header.height_px * max(header.samples, 1) * bytes_per_sample
    if needs_unchanged and estimate <= _UNCHANGED_BUDGET_BYTES:
        # IMREAD_UNCHANGED keeps alpha and depth and never applies EXIF orientation.
        flags = cv2.IMREAD_UNCHANGED
    else:
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    buf = np.frombuffer(data, dtype=np.uint8)
    where = "the image" if page_index is None else f"page {page_index + 1}"
    try:
        if page_index is None:
            image = cv2.imdecode(buf, flags)
        else:
            ok, mats = cv2.imdecodemulti(buf, flags, range=(page_index, page_index + 1))
            image = mats[0] if ok and mats else None
    except cv2.error as exc:
        raise _decode_failed(header, where, f" ({_first_line(exc)})") from None
    except MemoryError:
        raise InputError(Reason.TOO_MANY_PIXELS, f"{where} needs more memory to decode than is available") from None
    if image is None or image.size == 0:
        raise _decode_failed(header, where, "")
    if image.shape[:2] != (header.height_px, header.width_px):
        log.warning(
            "intake_size_disagreed header=%dx%d decoded=%dx%d",
            header.width_px, header.height_px, image.shape[1], image.shape[0],
        )
    return image


def _cv2_error() -> type[Exception]:
    import cv2

    return cv2.error


def _decode_failed(header: PageHeader, where: str, detail: str) -> InputError:
    if header.unsupported:
        return InputError(Reason.UNSUPPORTED_FORMAT, f"{where} uses {header.unsupported}, which cannot be decoded{detail}")
    return InputError(Reason.CORRUPT, f"{where} cannot be decoded: the image data is damaged{detail}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def normalise(image: np.ndarray, *, empty_alpha_is_opaque: bool = False) -> np.ndarray:
    """Any decoded array (8/16-bit/float, gray/GA/BGR/BGRA) to BGR uint8, alpha composited.

    Transparent areas become white, unless the visible content is itself light
    (white text on a transparent background), in which case they become black:
    either way the text keeps its contrast. With `empty_alpha_is_opaque`, an
    alpha channel that is zero everywhere is treated as unused rather than
    making the page blank.
    """
    import cv2

    image = _to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 2:
        gray, alpha = image[:, :, 0], image[:, :, 1]
        color = cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2BGR)
        return _composite(color, alpha, empty_alpha_is_opaque)
    if channels == 3:
        return image
    color = cv2.cvtColor(image[:, :, :4], cv2.COLOR_BGRA2BGR)
    return _composite(color, image[:, :, 3], empty_alpha_is_opaque)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        peak = int(image.max())
        scale = 255.0 / 65535.0 if peak >= _LOW_BIT_PEAK else 255.0 / max(peak, 1)
        return cv2.convertScaleAbs(image, alpha=scale)
    # Float or signed data (rare TIFF flavours): stretch its actual range.
    work = image.astype(np.float32, copy=False)
    finite = np.nan_to_num(work, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.zeros(image.shape, dtype=np.uint8)
    return cv2.convertScaleAbs(finite, alpha=255.0 / (high - low), beta=-low * 255.0 / (high - low))


# Visible content brighter than this (mean gray of opaque pixels) is put on black.
_LIGHT_CONTENT_GRAY = 160



def _content_is_light(color: np.ndarray, alpha: np.ndarray) -> bool:
    """Whether the opaque pixels are mostly light, judged on a sparse sample for speed."""
    step = max(1, int(np.sqrt(alpha.size / 250_000)))
    sample_alpha = alpha[::step, ::step]
    opaque = sample_alpha >= 128
    if not opaque.any() or opaque.all():
        return False  # nothing visible, or nothing transparent: white is the usual paper
    gray = color[::step, ::step].mean(axis=2)
    return float(gray[opaque].mean()) > _LIGHT_CONTENT_GRAY


def _composite(color: np.ndarray, alpha: np.ndarray, empty_alpha_is_opaque: bool) -> np.ndarray:
    import cv2

    if empty_alpha_is_opaque and not alpha.any():
        return color
    if _content_is_light(color, alpha):
        for top in range(0, color.shape[0], _COMPOSITE_BAND_ROWS):
            rows = slice(top, top + _COMPOSITE_BAND_ROWS)
            band_alpha = np.ascontiguousarray(alpha[rows])
            for ch in range(3):
                plane = np.ascontiguousarray(color[rows, :, ch])
                color[rows, :, ch] = cv2.multiply(plane, band_alpha, scale=1 / 255)  # c*a/255 on black
        return color
    # In bands of rows so the uint8 temporaries stay a few MB even for 50 MP.
    for top in range(0, color.shape[0], _COMPOSITE_BAND_ROWS):
        rows = slice(top, top + _COMPOSITE_BAND_ROWS)
        inv_alpha = cv2.bitwise_not(np.ascontiguousarray(alpha[rows]))
        for ch in range(3):
            plane = np.ascontiguousarray(color[rows, :, ch])
            # c*a/255 + 255*(1-a/255) == c + (255-c)*(255-a)/255, all in uint8.
            color[rows, :, ch] = cv2.add(plane, cv2.multiply(cv2.bitwise_not(plane), inv_alpha, scale=1 / 255))
    return color


# EXIF orientation -> (clockwise degrees applied after an optional horizontal mirror, mirrored)
_ORIENTATION = {
    1: (0, False),
    2: (0, True),
    3: (180, False),
    4: (180, True),
    5: (270, True),
    6: (90, False),
    7: (90, True),
    8: (270, False),
}



def orientation_turn(orientation: int) -> tuple[int, bool]:
    """(clockwise degrees, mirrored) that display an image stored with EXIF `orientation`."""
    return _ORIENTATION.get(orientation, (0, False))


def apply_orientation(image: np.ndarray, orientation: int) -> tuple[np.ndarray, int, bool]:
    """Turn a stored image into the displayed one: mirror horizontally if needed, then rotate clockwise."""
    import cv2

    degrees, mirrored = orientation_turn(orientation)
    if mirrored:
        image = cv2.flip(image, 1)
    if degrees == 90:
        image = cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    elif degrees == 180:
        image = cv2.rotate(image, cv2.ROTATE_180)
    elif degrees == 270:
        image = cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image, degrees, mirrored
