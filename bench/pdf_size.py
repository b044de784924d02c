"""The searchable PDF's size rule over a folder of JPEGs: each PDF at most the JPEG's size + 10 % + 20 KB.

Usage:
    python bench/pdf_size.py FOLDER [--out /tmp/ocrd-bench/pdf-size] [--pdfa]

Runs the real `ocrd process` on the folder's JPEGs (the default config, `outputs.pdfa` when asked;
no visualization, to save time), then prints one row per image: its bytes, the PDF's, the growth
and the allowed maximum, and exits 1 when any PDF breaks the rule. The JPEG goes into the PDF byte
for byte, so what it adds is the text layer (content stream, glyphless font) and the PDF's own
structure (and the ICC profile and XMP for PDF/A).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ALLOWED_GROWTH = 0.10
ALLOWED_EXTRA_BYTES = 20_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ocrd-bench/pdf-size"), help="work folder (outside the repo)")
    ap.add_argument("--pdfa", action="store_true", help="measure PDF/A-2b files")
    args = ap.parse_args()
    images = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not images:
        print(f"no JPEG files in {args.folder}", file=sys.stderr)
        return 2
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    cfg = args.out / "config.yaml"
    cfg.write_text(f"outputs: {{visualization: false, pdf: true, pdfa: {str(args.pdfa).lower()}}}\n")
    results = args.out / "out"
    cmd = [sys.executable, "-m", "ocrd", "process", "-c", str(cfg), "-o", str(results), *map(str, images)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"{'image':<24} {'jpeg B':>9} {'pdf B':>9} {'growth':>8} {'allowed B':>10}  ok")
    broken, total_in, total_out = 0, 0, 0
    for image in images:
        pdf = results / f"{image.stem}.pdf"
        size_in = image.stat().st_size
        size_out = pdf.stat().st_size if pdf.exists() else -1
        allowed = size_in * (1 + ALLOWED_GROWTH) + ALLOWED_EXTRA_BYTES
        ok = 0 <= size_out <= allowed
        broken += not ok
        total_in, total_out = total_in + size_in, total_out + max(size_out, 0)
        growth = f"{(size_out - size_in) / size_in:+.1%}" if size_out >= 0 else "missing"
        print(f"{image.name:<24} {size_in:>9} {size_out:>9} {growth:>8} {allowed:>10.0f}  {'yes' if ok else 'NO'}")
    print(f"{len(images)} JPEGs: {total_in} B in, {total_out} B of PDF ({(total_out - total_in) / total_in:+.1%}); "
          f"{len(images) - broken} within the rule, {broken} not")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
