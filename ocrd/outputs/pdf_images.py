"""The page images of a PDF made from image inputs: each page's picture as a PDF image (a JPEG as it is, other pages lossless), its page size from the resolution, and its placement; never decodes a file or runs a model.

A JPEG input goes in byte for byte (DCTDecode): no quality lost, no size added, its EXIF
orientation applied by the placement matrix (a mirrored orientation too, which /Rotate cannot
express). A JPEG a PDF reader may not decode (arithmetic coding, lossless or 12-bit) and any other
input page are embedded from the decoded page, losslessly: PNG-encoded rows as FlateDecode with the
PNG predictor, one gray channel when the page is gray, one bit per pixel when it is black and white.
Pictures are encoded as soon as a page is decoded (`pixels_picture`), so the pipeline holds a
compressed copy per page, not the page.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import pikepdf

from ocrd.outputs.pdf_text import Affine

DEFAULT_DPI = 300.0
_PLAUSIBLE_DPI = (50.0, 4800.0)  # outside this a resolution field is a placeholder, not a scan's
_MAX_PAGE_PT = 14_400.0  # the largest page PDF readers (and PDF/A) accept: 200 inches
_PT_PER_INCH = 72.0
# SOF markers PDF readers' DCT decoders take: baseline, extended and progressive Huffman.
_DCT_SOF = {0xC0, 0xC1, 0xC2}
_ALL_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_COMPRESSION = 6  # zlib level of the lossless pages: near level 9's size, a fraction of its time


@dataclass(frozen=True, slots=True)
class PagePicture:
    """One page's image as it goes into the PDF: stored size, encoding, the turn that displays it, resolution."""

    width_px: int  # as stored (before `turn_degrees`)
    height_px: int
    color_space: str  # DeviceGray | DeviceRGB | DeviceCMYK
    bits: int
    filter: str  # DCTDecode | FlateDecode
    data: bytes = b""
    predictor_colors: int = 0  # FlateDecode: the PNG predictor's colours per pixel
    inverted_cmyk: bool = False  # an Adobe CMYK JPEG stores its samples inverted
    turn_degrees: int = 0  # clockwise, after `mirrored`: what displays the stored image
    mirrored: bool = False
    dpi: tuple[float, float] = (DEFAULT_DPI, DEFAULT_DPI)  # along the stored x and y

    @property
    def is_jpeg(self) -> bool:
        return self.filter == "DCTDecode"


def plausible_dpi(dpi: tuple[float, float] | None, width_px: int, height_px: int) -> tuple[float, float]:
    """The resolution a page is laid out at: the file's own when plausible, else 300 dpi; raised where
    the page would exceed 200 inches."""
    low, high = _PLAUSIBLE_DPI
    if dpi is None or not all(low <= d <= high for d in dpi) or max(dpi) > 4 * min(dpi):
        dpi = (DEFAULT_DPI, DEFAULT_DPI)
    x_dpi = max(dpi[0], width_px * _PT_PER_INCH / _MAX_PAGE_PT)
    y_dpi = max(dpi[1], height_px * _PT_PER_INCH / _MAX_PAGE_PT)
    return (x_dpi, y_dpi)


def jpeg_picture(
    data: bytes, *, turn_degrees: int, mirrored: bool, dpi: tuple[float, float] | None, allow_cmyk: bool = True
) -> PagePicture | None:
    """The JPEG file `data` as a picture embedded as it is, or None when PDF readers might not decode it
    (or it is CMYK and `allow_cmyk` is off: PDF/A with an sRGB intent has no room for CMYK)."""
    frame = _jpeg_frame(data)
    if frame is None:
        return None
    marker, bits, height, width, components, adobe = frame
    spaces = {1: "DeviceGray", 3: "DeviceRGB", 4: "DeviceCMYK"}
    if marker not in _DCT_SOF or bits != 8 or components not in spaces or (components == 4 and not allow_cmyk):
        return None
    return PagePicture(
        width_px=width, height_px=height, color_space=spaces[components], bits=8, filter="DCTDecode", data=data,
        inverted_cmyk=components == 4 and adobe, turn_degrees=turn_degrees % 360, mirrored=mirrored,
        dpi=plausible_dpi(dpi, width, height),
    )  # fmt: skip


def _jpeg_frame(data: bytes) -> tuple[int, int, int, int, int, bool] | None:
    """(SOF marker, bits, height, width, components, has an Adobe APP14 segment) from the header segments."""
    pos, adobe = 2, False
    try:
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:
                pos += 1  # fill byte
                continue
            (length,) = struct.unpack_from(">H", data, pos + 2)
            if marker == 0xEE and data[pos + 4 : pos + 9] == b"Adobe":
                adobe = True
            if marker in _ALL_SOF:
                bits, height, width, components = struct.unpack_from(">BHHB", data, pos + 4)
                return marker, bits, height, width, components, adobe
            if marker == 0xDA:
                return None
            pos += 2 + length
    except struct.error:
        return None
    return None


def pixels_picture(image: np.ndarray, dpi: tuple[float, float] | None) -> PagePicture:
    """A displayed page (BGR uint8) as a lossless picture: 1-bit for black and white, gray, or RGB."""
    import cv2  # lazy, like every OpenCV use in outputs

    height, width = image.shape[:2]
    params = [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESSION]
    if _is_gray(image):
        pixels = np.ascontiguousarray(image[:, :, 0])
        bilevel = not np.any((pixels != 0) & (pixels != 255))
        if bilevel:
            params += [cv2.IMWRITE_PNG_BILEVEL, 1]
        space, colors, bits = "DeviceGray", 1, 1 if bilevel else 8
    else:
        pixels, space, colors, bits = image, "DeviceRGB", 3, 8
    ok, encoded = cv2.imencode(".png", pixels, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} page as PNG")
    data, png_bits, png_colors = _png_rows(encoded.tobytes())
    if (png_bits, png_colors) != (bits, colors):
        raise ValueError(f"the PNG encoder wrote {png_bits}-bit x {png_colors}, not {bits}-bit x {colors}")
    return PagePicture(
        width_px=width, height_px=height, color_space=space, bits=bits, filter="FlateDecode", data=data,
        predictor_colors=colors, dpi=plausible_dpi(dpi, width, height),
    )  # fmt: skip


def _is_gray(image: np.ndarray) -> bool:
    if image.ndim == 2:
        return True
    blue = image[:, :, 0]
    return bool(np.array_equal(blue, image[:, :, 1]) and np.array_equal(blue, image[:, :, 2]))


def _png_rows(png: bytes) -> tuple[bytes, int, int]:
    """The zlib stream of a PNG written by OpenCV (its IDAT chunks joined), its bit depth and colours."""
    pos, idat, bits, colors = 8, [], 0, 0
    while pos + 8 <= len(png):
        length, ctype = struct.unpack_from(">I4s", png, pos)
        body = png[pos + 8 : pos + 8 + length]
        if ctype == b"IHDR":
            bits, color_type, interlace = body[8], body[9], body[12]
            colors = {0: 1, 2: 3}.get(color_type, 0)
            if interlace:
                raise ValueError("an interlaced PNG cannot be embedded row by row")
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
        pos += 12 + length
    return b"".join(idat), bits, colors


def image_xobject(pdf: pikepdf.Pdf, picture: PagePicture) -> pikepdf.Stream:
    """The image XObject of `picture`; its data goes in as it is (already encoded)."""
    stream = pikepdf.Stream(pdf, b"")
    parms = None
    if picture.filter == "FlateDecode":
        parms = pikepdf.Dictionary(
            Predictor=15, Colors=picture.predictor_colors, BitsPerComponent=picture.bits, Columns=picture.width_px
        )
    stream.write(picture.data, filter=pikepdf.Name("/" + picture.filter), decode_parms=parms)
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width = picture.width_px
    stream.Height = picture.height_px
    stream.ColorSpace = pikepdf.Name("/" + picture.color_space)
    stream.BitsPerComponent = picture.bits
    if picture.inverted_cmyk:
        stream.Decode = [1, 0, 1, 0, 1, 0, 1, 0]
    return stream


def page_geometry(picture: PagePicture, page_width_px: int, page_height_px: int) -> tuple[float, float, Affine, Affine]:
    """(page width pt, page height pt, the image's placement matrix, displayed pixel -> page point).

    The placement maps the image's unit square so that the stored image, mirrored and turned as its
    orientation says, fills the page as displayed; `page_*_px` are the displayed page's pixel size
    (the result's), which the text layer's coordinates are in.
    """
    turned = picture.turn_degrees in (90, 270)
    x_dpi, y_dpi = (picture.dpi[1], picture.dpi[0]) if turned else picture.dpi
    shown_w, shown_h = (picture.height_px, picture.width_px) if turned else (picture.width_px, picture.height_px)
    width_pt, height_pt = shown_w * _PT_PER_INCH / x_dpi, shown_h * _PT_PER_INCH / y_dpi

    def shown(u: float, v: float) -> tuple[float, float]:
        """Stored fractions (u right, v down) -> the page point where that part of the image shows."""
        if picture.mirrored:
            u = 1 - u
        p, q = {0: (u, v), 90: (1 - v, u), 180: (1 - u, 1 - v), 270: (v, 1 - u)}[picture.turn_degrees]
        return p * width_pt, (1 - q) * height_pt

    # Image space (0, 0) is the stored image's bottom-left corner, (1, 1) its top-right.
    origin, right, up = shown(0, 1), shown(1, 1), shown(0, 0)
    placement = (right[0] - origin[0], right[1] - origin[1], up[0] - origin[0], up[1] - origin[1], origin[0], origin[1])
    to_pdf = (width_pt / max(page_width_px, 1), 0.0, 0.0, -height_pt / max(page_height_px, 1), 0.0, height_pt)
    return width_pt, height_pt, placement, to_pdf
