"""Render the pages ocrd calibrates its INT8 recognizer on (ocrd/engine/int8/calibration/page-*.png).

Usage: python tools/render_calibration_pages.py [--out ocrd/engine/int8/calibration]

Needs Pillow, matplotlib (for its DejaVu fonts) and the WenQuanYi Micro Hei font
(/usr/share/fonts/truetype/wqy/wqy-microhei.ttc, Debian/Ubuntu package fonts-wqy-microhei).
Deterministic: a fixed seed picks every word, size, font and position, so re-running it
gives the same pages. The text is made up here from word lists of everyday office documents
(receipts, invoices, letters, forms) in English and Chinese; no evaluation image is used.
The pages are clean black on white: ocrd adds blur and noise itself when it calibrates.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import matplotlib
from PIL import Image, ImageDraw, ImageFont

PAGES = 12
SEED = 20261122

WORDS = (
    "TOTAL CASH CHANGE QTY ITEM PRICE AMOUNT TAX INVOICE DATE TIME NO Tel Fax Receipt Thank you Please "
    "come again Subtotal Rounding Discount Member Customer Account Order Delivery Address Street Road "
    "Suite Floor Payment Card Visa Balance Due Reference Description Unit Service Charge Signature "
    "Manager Office Department Company Limited Ltd Inc Pty Bhd Meeting Schedule Report Quarter Annual "
    "Review Approved Pending Shipped Returned Serial Model Warranty Contact Email Website Page of "
    "the and for with from this that will be are is to in on at by per net gross"
).split()
CJK_WORDS = (
    "发票 收据 金额 合计 日期 时间 数量 单价 客户 地址 电话 公司 有限 谢谢 光临 现金 找零 会员 "
    "折扣 税额 订单 编号 备注 签名 部门 经理 报告 会议 银行 账户 付款 商品 服务 名称 规格 总计 "
    "中国 北京 上海 广州 深圳 我们 您好 欢迎 请 保留 本 小票 作为 凭证"
).split()


def _fonts() -> list[tuple[str, int]]:
    """(font file, face index) for the Latin faces and the CJK face."""
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    latin = [str(ttf / n) for n in ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf",
                                    "DejaVuSans-Bold.ttf", "DejaVuSansMono-Bold.ttf")]  # fmt: skip
    return [(f, 0) for f in latin]


CJK_FONT = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0)


def _line(rng: random.Random) -> tuple[str, bool]:
    kind = rng.random()
    if kind < 0.2:
        return " ".join(rng.choice(CJK_WORDS) for _ in range(rng.randint(1, 6))), True
    parts = [rng.choice(WORDS) for _ in range(rng.randint(1, 7))]
    if rng.random() < 0.3:
        parts = [p.upper() for p in parts]
    if rng.random() < 0.5:
        parts.append(f"{rng.randint(0, 9999)}.{rng.randint(0, 99):02d}")
    if rng.random() < 0.15:
        parts.insert(0, f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2015, 2026)}")
    if rng.random() < 0.1:
        parts.append(f"#{rng.randint(10000, 99999)}-{rng.choice('ABCDEFGH')}")
    return " ".join(parts), False


def render_page(rng: random.Random) -> Image.Image:
    width = rng.choice([640, 800, 1000, 1240])
    rows: list[tuple[str, ImageFont.FreeTypeFont, int, int]] = []
    latin = _fonts()
    page_font = rng.choice(latin)
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    for _ in range(rng.randint(18, 40)):
        text, cjk = _line(rng)
        face = CJK_FONT if cjk else (page_font if rng.random() < 0.8 else rng.choice(latin))
        size = rng.choice([14, 16, 18, 20, 22, 26, 30, 36])
        font = ImageFont.truetype(face[0], size, index=face[1])
        while size > 14 and measure.textlength(text, font=font) > width - 40:
            size -= 2  # the line must fit the page
            font = ImageFont.truetype(face[0], size, index=face[1])
        while measure.textlength(text, font=font) > width - 40:
            text = text.rsplit(" ", 1)[0]
        rows.append((text, font, size, rng.randint(4, 18)))
    height = 40 + sum(size + gap for _, _, size, gap in rows)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y = 20
    for text, font, size, gap in rows:
        text_w = draw.textlength(text, font=font)
        x = rng.choice([20, 40, int(max(20, (width - text_w) / 2)), int(max(20, width - text_w - 20))])
        draw.text((x, y), text, font=font, fill=rng.choice([0, 0, 0, 40, 70]))
        y += size + gap
    return page


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "ocrd" / "calibration")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    for number in range(PAGES):
        render_page(rng).save(args.out / f"page-{number:02d}.png", optimize=True)


if __name__ == "__main__":
    main()
