"""A folder of 300-dpi office pages with known text, laid out like an eval set, and their page CER in reading order.

Usage:
    python bench/rendered_pages.py make OUT [--seeds 2] [--dpi 300]
    python bench/rendered_pages.py cer OUT PRED_DIR [PRED_DIR ...]

`make` renders every kind of `tests/documents.py` (one column, two and three columns, a heading over
two columns with a footer, a figure gap, a letter with a two-column lower half, a receipt-like
table; Letter, A4 for three columns) with `scan=True` (slight blur and grain, like a copier) for
each seed, and writes `OUT/rendered-300/img/<kind>-<seed>.jpg` (JPEG quality 90, 300 dpi in JFIF,
as an office scanner saves) and `OUT/rendered-300/box/<kind>-<seed>.csv` in the scorer's format.
The pages' truth is text, not boxes: each row of the CSV is one line of the page with the page's
own rectangle, so the scorer's `word_f1` (order-free words) is meaningful and its detection figures
are not. Also `OUT/rendered-300/text/<stem>.txt`: the page's text in reading order.

Then `bench/peers.py --eval OUT --set rendered-300 --scorer ../shared/eval/score.py` compares the
systems on it. `cer` prints each prediction folder's page CER in reading order (whitespace
collapsed to single spaces): the `<stem>.txt` an ocrd run wrote, or else the lines of `<stem>.json`
in the order the system returned them (a peer has no layout).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
from rapidfuzz.distance import Levenshtein

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SET_NAME = "rendered-300"
JPEG_QUALITY = 90


def make(out: Path, seeds: int, dpi: int) -> None:
    from tests.documents import KINDS, render_page

    root = out / SET_NAME
    for sub in ("img", "box", "text"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        for seed in range(seeds):
            page = render_page(kind, dpi=dpi, seed=seed, scan=True)
            stem = f"{kind}-{seed}"
            ok, jpeg = cv2.imencode(".jpg", page.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            assert ok
            (root / "img" / f"{stem}.jpg").write_bytes(_with_jfif_dpi(jpeg.tobytes(), dpi))
            height, width = page.image.shape[:2]
            corners = [0, 0, width, 0, width, height, 0, height]
            with open(root / "box" / f"{stem}.csv", "w", encoding="utf-8") as fh:
                for line in page.text.splitlines():
                    if line.strip():  # the scorer splits on the first 8 commas: the text may hold commas
                        fh.write(",".join(str(v) for v in corners) + "," + line + "\n")
            (root / "text" / f"{stem}.txt").write_text(page.text, encoding="utf-8")
            print(f"{stem}: {width}x{height}", file=sys.stderr)


def _with_jfif_dpi(jpeg: bytes, dpi: int) -> bytes:
    """OpenCV writes a JFIF APP0 with density 1:1 and no unit; set the unit to dots per inch."""
    app0 = jpeg.find(b"JFIF\x00")
    if app0 < 0:
        return jpeg
    units = app0 + 7  # after "JFIF\0" and the two version bytes
    return jpeg[:units] + bytes([1]) + dpi.to_bytes(2, "big") * 2 + jpeg[units + 5:]


def _flat(text: str) -> str:
    return " ".join(text.split())


def page_text(pred: Path, stem: str) -> str:
    txt = pred / f"{stem}.txt"
    if txt.is_file():
        return txt.read_text(encoding="utf-8")
    data = json.loads((pred / f"{stem}.json").read_text(encoding="utf-8"))
    if isinstance(data, dict):  # an ocrd result without its .txt
        return "\n".join(line["text"] for page in data["pages"] for line in page["lines"])
    return "\n".join(item["text"] for item in data)


def cer(out: Path, preds: list[Path]) -> None:
    truth = {p.stem: _flat(p.read_text(encoding="utf-8")) for p in sorted((out / SET_NAME / "text").glob("*.txt"))}
    print("| predictions | page CER in reading order (mean) | worst page |")
    print("|---|---:|---|")
    for pred in preds:
        per_page = {stem: Levenshtein.distance(want, _flat(page_text(pred, stem))) / max(1, len(want))
                    for stem, want in truth.items()}  # fmt: skip
        worst = max(per_page, key=per_page.get)
        print(f"| {pred} | {sum(per_page.values()) / len(per_page):.4f} | {worst} {per_page[worst]:.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("out", type=Path)
    m.add_argument("--seeds", type=int, default=2)
    m.add_argument("--dpi", type=int, default=300)
    c = sub.add_parser("cer")
    c.add_argument("out", type=Path)
    c.add_argument("preds", type=Path, nargs="+")
    args = ap.parse_args()
    if args.command == "make":
        make(args.out, args.seeds, args.dpi)
    else:
        cer(args.out, args.preds)


if __name__ == "__main__":
    main()
