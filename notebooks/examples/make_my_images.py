"""Make the example folder notebook 12 works on: 12 small images and their labels.csv.

    python notebooks/examples/make_my_images.py     # rewrites notebooks/examples/my-images/

The folder stands in for "your own images": files of mixed formats and sizes (PNG and JPEG, 480 to
1400 px wide), a labels file in the format `vizlab.experiments.load_items` reads, several
scorers and three categories. Everything is drawn here with Pillow and the DejaVu fonts
matplotlib ships, from fixed values, so the files are the same on every run (the images are
committed; this script says how they were made).
"""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image, ImageDraw

from vizlab.datasets import font_face, shapes_card

OUT = Path(__file__).resolve().parent / "my-images"

# id, file, category, question, expected, scorer
LABELS: list[tuple[str, str, str, str, str, str]] = []


def receipt(name: str, items: list[tuple[str, float]], px: int, width: int) -> float:
    total = round(sum(p for _, p in items), 2)
    lines = [f"{n:<12}{p:>8.2f}" for n, p in items] + ["-" * 20, f"{'TOTAL':<12}{total:>8.2f}"]
    face = font_face("DejaVuSansMono.ttf", px)
    img = Image.new("RGB", (width, 60 + int(len(lines) * px * 1.7)), (250, 247, 238))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((24, 30 + int(i * px * 1.7)), line, font=face, fill=(40, 40, 40))
    img.save(OUT / name, quality=88)
    return total


def total_pattern(total: float) -> str:
    """A regex for the total as a number of its own: "7.85" or "$7.85" matches, "17.85" does not.

    A model asked to "reply with the number" says just that; a chattier answer (or the built-in
    analyst's list of what it read) matches too, as long as the total is in it."""
    return r"(?<![\d.])" + f"{total:.2f}".replace(".", r"\.") + r"(?![\d])"


def sign(name: str, text: str, px: int, size: tuple[int, int], background: tuple[int, int, int]) -> None:
    img = Image.new("RGB", size, (110, 120, 115))
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.rectangle((w // 10, h // 5, w - w // 10, h - h // 5), fill=background)
    face = font_face("DejaVuSans-Bold.ttf", px)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    draw.text(((w - (right - left)) // 2, (h - (bottom - top)) // 2 - top), text, font=face, fill="white")
    img.save(OUT / name, quality=88) if name.endswith(".jpg") else img.save(OUT / name)


def chart(name: str, values: list[int], px: int) -> None:
    img = Image.new("RGB", (720, 440), "white")
    draw = ImageDraw.Draw(img)
    face = font_face("DejaVuSans.ttf", px)
    draw.line((50, 400, 690, 400), fill="black", width=2)
    width = 560 // len(values)
    for i, v in enumerate(values):
        left, top = 80 + i * width, 400 - v * 3
        draw.rectangle((left, top, left + width // 2, 400), fill=((200, 60, 50), (50, 120, 200), (60, 160, 80))[i % 3])
        draw.text((left, top - px - 6), str(v), font=face, fill="black")
    img.save(OUT / name)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    t = receipt("cafe-receipt.jpg", [("FLAT WHITE", 3.40), ("CROISSANT", 2.95), ("WATER", 1.50)], 20, 480)
    LABELS.append(("cafe", "cafe-receipt.jpg", "receipts", "What is the TOTAL on this receipt? Reply with the number.",
                   total_pattern(t), "regex"))
    t = receipt("hardware-receipt.jpg", [("SCREWS M4", 4.99), ("HINGE X2", 11.20), ("GLUE", 6.45), ("TAPE", 3.10)],
                11, 640)
    LABELS.append(("hardware", "hardware-receipt.jpg", "receipts",
                   "What is the TOTAL on this receipt? Reply with the number.", total_pattern(t), "regex"))
    t = receipt("taxi-receipt.png", [("FARE", 18.60), ("TIP", 3.00)], 9, 900)
    LABELS.append(("taxi", "taxi-receipt.png", "receipts", "What is the TOTAL on this receipt? Reply with the number.",
                   total_pattern(t), "regex"))
    sign("platform-sign.png", "PLATFORM 9", 72, (900, 500), (20, 50, 130))
    LABELS.append(("platform", "platform-sign.png", "signs", "What does the sign say? Reply with the text.",
                   "PLATFORM 9", "normalised"))
    sign("exit-sign.jpg", "EXIT B4", 18, (1400, 900), (20, 120, 60))
    LABELS.append(("exit", "exit-sign.jpg", "signs", "What does the sign say? Reply with the text.", "EXIT B4",
                   "contains"))
    sign("gate-sign.png", "GATE 23", 40, (800, 480), (150, 30, 30))
    LABELS.append(("gate", "gate-sign.png", "signs", "What does the sign say? Reply with the text.", "gate 23",
                   "contains"))
    sign("room-sign.png", "ROOM 4.12", 14, (1200, 700), (60, 60, 60))
    LABELS.append(("room", "room-sign.png", "signs", "What does the sign say? Reply with the text.", r"ROOM\s*4\.12",
                   "regex"))
    chart("sales-chart.png", [42, 67, 35], 20)
    LABELS.append(("sales", "sales-chart.png", "charts", "What values are written above the bars, left to right?",
                   "42 67 35", "tokens"))
    chart("visits-chart.png", [18, 91, 56, 73], 11)
    LABELS.append(("visits", "visits-chart.png", "charts", "What values are written above the bars, left to right?",
                   "18 91 56 73", "tokens"))
    shapes_card({"circle": 5, "rectangle": 2}, size=(800, 600), seed=11).save(OUT / "tray-circles.png")
    LABELS.append(("tray", "tray-circles.png", "counting", "How many circles are in this image? Answer with a number.",
                   "5", "numeric"))
    shapes_card({"triangle": 3, "circle": 1}, size=(640, 480), seed=12, min_px=14, max_px=28).save(
        OUT / "small-triangles.png")
    LABELS.append(("triangles", "small-triangles.png", "counting",
                   "How many triangles are in this image? Answer with a number.", "3", "numeric"))
    shapes_card({"rectangle": 4}, size=(720, 540), seed=13).save(OUT / "boxes.png")
    LABELS.append(("boxes", "boxes.png", "counting", "How many rectangles are in this image? Answer with a number.",
                   "4", "numeric"))
    with open(OUT / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "image", "category", "question", "expected", "scorer"])
        writer.writerows(LABELS)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(LABELS)} images and labels.csv to {OUT} ({total / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
