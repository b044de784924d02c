"""atheris harness for the intake gate's pure checks: `sniff_format`, `parse_header` and the EXIF reader.

These run on untrusted bytes before any decoder does. Contract: for any input they return or raise
`InputError` (a refusal with a reason code); any other exception is a crash. Also fed to every
header parser whatever the magic bytes say, so each parser sees every kind of garbage.

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python fuzz/fuzz_intake.py --make-seeds fuzz/seeds      # seed corpus from tests/corpus.py
    .venv/bin/python fuzz/fuzz_intake.py fuzz/corpus fuzz/seeds -max_total_time=120 -timeout=5

The first directory given to libFuzzer collects new interesting inputs; more in fuzz/README.md.
`check_one` is also exercised without atheris by tests/unit/test_intake_fuzz.py.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from ocrd.errors import InputError  # noqa: E402
from ocrd.intake.formats import parse_header, sniff_format  # noqa: E402
from ocrd.intake.tiff import parse_exif_orientation  # noqa: E402

MAX_PAGES = 50
PARSED_FORMATS = ("jpeg", "png", "tiff", "bmp", "webp")


def check_one(data: bytes) -> None:
    """One fuzz input through the checks; raises only for a crash (anything but InputError)."""
    try:
        fmt = sniff_format(data[:4096])
    except InputError:
        fmt = None
    if fmt is not None and fmt != "pdf":
        try:
            parse_header(data, fmt, MAX_PAGES)
        except InputError:
            pass
    for other in PARSED_FORMATS:  # every parser on every input, not only the sniffed one
        if other == fmt:
            continue
        try:
            parse_header(data, other, MAX_PAGES)
        except InputError:
            pass
    try:
        orientation = parse_exif_orientation(data)
    except InputError:
        return
    if not isinstance(orientation, int):
        raise TypeError(f"parse_exif_orientation returned {orientation!r}")


# ----------------------------------------------------------------------------- seeds and mutations


def seed_inputs() -> dict[str, bytes]:
    """Valid and hostile files from the test corpus builders (tests/corpus.py): one per format and trick."""
    import numpy as np
    from PIL import Image

    from tests import corpus

    gray = Image.new("L", (24, 16), 200)
    rgba = Image.new("RGBA", (20, 12), (10, 20, 30, 128))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90
    seeds = {
        "jpeg.jpg": corpus.jpeg_bytes(32, 24),
        "jpeg_exif.jpg": corpus.pil_bytes(Image.new("RGB", (16, 8), (255, 255, 255)), "JPEG", exif=exif.tobytes()),
        "png.png": corpus.png_bytes(corpus.marker_image(24, 12)),
        "png_rgba.png": corpus.pil_bytes(rgba, "PNG"),
        "png_palette.png": corpus.pil_bytes(gray.convert("P"), "PNG"),
        "png_header_only.png": corpus.png_header_only(40_000, 40_000),
        "tiff_pages.tif": corpus.tiff_pages_bytes([0, 128, 255], width=8, height=4),
        "tiff_chain.tif": corpus.tiff_ifd_chain(3),
        "tiff_loop.tif": corpus.tiff_ifd_chain(2, loop=True),
        "tiff_be.tif": corpus.tiff_ifd_chain(1, big_endian=True),
        "bigtiff.tif": corpus.bigtiff_header(10, 10),
        "tiff_planar16.tif": corpus.planar_tiff_16bit_rgb(2, 2, (1000, 2000, 3000)),
        "tiff_exif.tif": corpus.pil_bytes(gray, "TIFF", exif=exif.tobytes()),
        "bmp.bmp": corpus.pil_bytes(gray.convert("RGB"), "BMP"),
        "bmp_rgba.bmp": corpus.pil_bytes(rgba, "BMP"),
        "webp_lossy.webp": corpus.pil_bytes(gray.convert("RGB"), "WEBP", quality=50),
        "webp_lossless.webp": corpus.pil_bytes(rgba, "WEBP", lossless=True),
        "pdf.pdf": corpus.pdf_bytes([(72, 72, corpus.black_box(10, 10))]),
        "pdf_encrypted.pdf": corpus.pdf_bytes([(72, 72, "")], encrypt=True),
        "text.txt": b"Meeting notes, not a picture at all.\n" * 4,
        "noise.bin": np.random.default_rng(1).integers(0, 256, 256, dtype=np.uint8).tobytes(),
    }
    # Half files: what a reader sees when it is too early.
    for name in ("jpeg.jpg", "png.png", "tiff_pages.tif", "bmp.bmp", "webp_lossy.webp"):
        seeds["half_" + name] = seeds[name][: len(seeds[name]) // 2]
    return seeds


_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF)
_INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x10000)


def mutate(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """A few random edits of the kinds libFuzzer makes: flips, interesting values, cuts, splices."""
    buf = bytearray(data or b"\0")
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[pos] = rng.choice(_INTERESTING)
        elif op == 2 and len(buf) >= 4:
            pos = min(pos, len(buf) - 4)
            order = rng.choice(("little", "big"))
            buf[pos : pos + 4] = rng.choice(_INTERESTING_32).to_bytes(4, order)
        elif op == 3:
            del buf[rng.randrange(len(buf) + 1) :]  # truncate
        elif op == 4 and buf:
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 5:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            buf = buf[:pos] + bytearray(other[cut:])  # splice the tail of another seed
    return bytes(buf)


def write_seeds(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seed_inputs().items():
        (folder / name).write_bytes(data)
    return len(seed_inputs())


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--make-seeds":
        print(f"{write_seeds(Path(argv[2]))} seed files in {argv[2]}")
        return
    import atheris  # optional: pip install -e '.[fuzz]'

    atheris.instrument_all()
    atheris.Setup(argv, check_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
