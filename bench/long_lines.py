"""Long-line pages (letters, contracts): CER with the angle classifier on and off, upright and turned.

Usage:
    python bench/long_lines.py [--pages 12] [--seed 5]

Receipts have short lines; a letter's lines are 30-40 times as long as high, which is where the
classifier's 4:1 input matters (see ocrd.engine.classify.line_windows). The pages are rendered here (DejaVu
Sans, 22-34 px, 1-8 lines of 6-18 words from a small office vocabulary), so the words are known
exactly; each is read by `OcrEngine.read` as it is and turned by 180 degrees. CER is the edit distance
over the expected characters, whitespace ignored.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from accuracy import levenshtein  # noqa: E402
from ocrd.config.load import config_from_mapping  # noqa: E402
from ocrd.engine.ocr_engine import OcrEngine  # noqa: E402
from ocrd.engine.int8.cache import prepare_model_set  # noqa: E402
from tests.fonts import latin_font_path, render_lines  # noqa: E402

WORDS = (
    "invoice total amount payment account number customer service delivery address the of and to in "
    "for with on by from order date tax net gross balance due please reference contract agreement terms "
    "conditions within days receipt office"
).split()


def cer(expected: str, read: str) -> float:
    expected, read = "".join(expected.split()), "".join(read.split())
    return levenshtein(expected, read) / max(1, len(expected))


def rendered_pages(count: int, seed: int) -> list[tuple[str, np.ndarray]]:
    rng = random.Random(seed)
    font = latin_font_path()
    if font is None:
        raise SystemExit("no DejaVuSans.ttf: install matplotlib or fonts-dejavu-core")
    pages = []
    for _ in range(count):
        words_per_line = rng.choice((6, 10, 14, 18))
        lines = [" ".join(rng.choice(WORDS) for _ in range(words_per_line)) for _ in range(rng.choice((1, 1, 3, 8)))]
        image, _ = render_lines(lines, font, size_px=rng.choice((22, 28, 34)))
        pages.append(("\n".join(lines), image))
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    pages = rendered_pages(args.pages, args.seed)
    print("| classifier | page | mean CER | pages read exactly |")
    print("|---|---|---:|---:|")
    for enabled in (True, False):
        cfg = config_from_mapping({"classify": {"enabled": enabled}}, REPO_ROOT)
        engine = OcrEngine.from_config(cfg, model_set=prepare_model_set(cfg).model_set)
        for turned in (False, True):
            errors = []
            for expected, image in pages:
                shown = np.ascontiguousarray(cv2.rotate(image, cv2.ROTATE_180)) if turned else image
                errors.append(cer(expected, engine.read(shown).text))
            exact = sum(e == 0 for e in errors)
            print(f"| {'on' if enabled else 'off'} | {'turned' if turned else 'upright'} | "
                  f"{np.mean(errors):.3f} | {exact} / {len(errors)} |")  # fmt: skip


if __name__ == "__main__":
    main()
