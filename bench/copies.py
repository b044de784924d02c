"""Distinct copies of JPEG images: same pixels, different bytes (so sha256 differs and the daemon's
duplicate check does not skip them). A few random bytes are appended after the JPEG EOI marker, which
decoders ignore and ocrd's intake accepts.

Usage: python bench/copies.py SRC_DIR DEST_DIR COUNT     (DEST_DIR must be outside the repository)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def make_copies(src_dir: Path, dest: Path, count: int, prefix: str = "r") -> list[Path]:
    sources = sorted(p for p in Path(src_dir).iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not sources:
        raise SystemExit(f"no JPEG files in {src_dir}")
    dest.mkdir(parents=True, exist_ok=True)
    blobs = [p.read_bytes() for p in sources]
    out = []
    for i in range(count):
        data = blobs[i % len(blobs)]
        path = dest / f"{prefix}{i:05d}_{sources[i % len(sources)].stem}.jpg"
        path.write_bytes(data + os.urandom(8) + i.to_bytes(4, "big"))
        out.append(path)
    return out


def stage_copies(src_dir: Path, dest: Path, count: int, prefix: str = "r") -> list[Path]:
    """Write the copies into a hidden staging folder next to `dest`, then rename them in (atomic per file)."""
    stage = dest.parent / f".stage-{dest.name}"
    files = make_copies(src_dir, stage, count, prefix)
    dest.mkdir(parents=True, exist_ok=True)
    return [f.rename(dest / f.name) for f in files]


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    made = make_copies(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
    print(f"{len(made)} files in {sys.argv[2]}")
