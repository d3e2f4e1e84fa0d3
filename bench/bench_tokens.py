"""Benchmark 1: token estimates for a folder of 1,000 images, header-only vs decoding.

How the folder is made quickly: ten distinct images (five JPEG, five PNG, 0.8 to 12 MP) are
encoded once and each is written under 100 names. The JPEGs are smooth gradients with shapes
(about 0.1-0.3 MB; one carries EXIF orientation 6, so its size must be swapped); the PNGs are
mostly flat colour with shapes, like screenshots, so they compress to a few KB but still decode
to full-size pixel buffers. Decoding cost depends on pixel count, not on which name a file has,
so 100 copies of 10 images cost what 1,000 distinct images of those sizes would.

Both contestants read the same files from the page cache (the folder is read once before timing)
and end with the same number: the folder's total image tokens at detail "high" on gpt-4o.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from _common import Section, fmt_bytes, fmt_s, median, say

COPIES = 100
JPEG_SIZES = [(4000, 3000), (3264, 2448), (2592, 1944), (1920, 1080), (1024, 768)]
PNG_SIZES = [(4000, 3000), (3840, 2160), (2560, 1440), (1920, 1080), (1280, 720)]


def _gradient(width: int, height: int) -> Image.Image:
    # Image.linear_gradient is 256x256; resizing it is much faster than filling 12 MP in Python.
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.linear_gradient("L").rotate(90).resize((width, height))
    blue = Image.new("L", (width, height), 128)
    img = Image.merge("RGB", (red, green, blue))
    _shapes(img)
    return img


def _shapes(img: Image.Image) -> None:
    draw = ImageDraw.Draw(img)
    w, h = img.size
    draw.ellipse((w // 8, h // 8, w // 3, h // 3), fill=(250, 220, 30))
    draw.rectangle((w // 2, h // 2, w * 7 // 8, h * 7 // 8), fill=(20, 20, 160))
    draw.line((0, h - 1, w - 1, 0), fill=(0, 0, 0), width=max(2, w // 400))


def make_folder(root: Path) -> tuple[list[Path], int]:
    """Write 1,000 images under ``root``; return their paths and total bytes."""
    distinct: list[tuple[str, bytes]] = []
    for i, (w, h) in enumerate(JPEG_SIZES):
        buf = io.BytesIO()
        img = _gradient(w, h)
        if i == 1:  # a portrait phone photo stored landscape with an orientation tag
            exif = Image.Exif()
            exif[0x0112] = 6
            img.save(buf, format="JPEG", quality=85, exif=exif.tobytes())
        else:
            img.save(buf, format="JPEG", quality=85)
        distinct.append(("jpg", buf.getvalue()))
    for w, h in PNG_SIZES:
        img = Image.new("RGB", (w, h), (235, 235, 240))
        _shapes(img)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        distinct.append(("png", buf.getvalue()))
    paths: list[Path] = []
    total = 0
    for copy in range(COPIES):
        for k, (ext, data) in enumerate(distinct):
            path = root / f"img_{copy:03d}_{k}.{ext}"
            path.write_bytes(data)
            paths.append(path)
            total += len(data)
    return paths, total


def header_arm(paths: list[Path]) -> int:
    from vizlab.images import image_size
    from vizlab.tokens import image_tokens

    total = 0
    for path in paths:
        width, height = image_size(path)
        total += image_tokens(width, height, detail="high")
    return total


def decode_arm(paths: list[Path], progress: bool = True) -> int:
    from vizlab.tokens import image_tokens

    total = 0
    for n, path in enumerate(paths, 1):
        with Image.open(path) as im:
            im.load()  # every pixel decoded
            width, height = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation: a quarter turn
                width, height = height, width
        total += image_tokens(width, height, detail="high")
        if progress and n % 200 == 0:
            say(f"    decoded {n}/{len(paths)}")
    return total


def run() -> Section:
    section = Section("1. Token estimates for a 1,000-image folder")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vizlab-bench-folder-") as tmp:
        say("  making 1,000 images (10 distinct, 0.8-12 MP, JPEG and PNG) ...")
        t = time.perf_counter()
        paths, total_bytes = make_folder(Path(tmp))
        made = time.perf_counter() - t
        for path in paths:  # page cache: both arms read from memory
            path.read_bytes()
        say(f"  made in {made:.1f} s ({fmt_bytes(total_bytes)}); header-only arm x3 ...")
        header_times = []
        for _ in range(3):
            t = time.perf_counter()
            tokens_header = header_arm(paths)
            header_times.append(time.perf_counter() - t)
        say("  decoding arm (every pixel of every image) ...")
        t = time.perf_counter()
        tokens_decode = decode_arm(paths)
        decode_time = time.perf_counter() - t
    header_time = median(header_times)
    ratio = decode_time / header_time
    section.add(
        f"Folder: {len(paths):,} files ({COPIES} copies each of JPEG "
        + ", ".join(f"{w}x{h}" for w, h in JPEG_SIZES)
        + " and PNG "
        + ", ".join(f"{w}x{h}" for w, h in PNG_SIZES)
        + f"), {fmt_bytes(total_bytes)} on disk, read from the page cache."
    )
    section.add()
    section.add("| Method | Time for the folder | Per image | Total tokens (high, gpt-4o) |")
    section.add("|---|---|---|---|")
    section.add(f"| `vizlab.images.image_size` (header only), median of 3 | {fmt_s(header_time)} | "
                f"{fmt_s(header_time / len(paths))} | {tokens_header:,} |")
    section.add(f"| PIL `Image.open(...).load()` (decode every pixel), once | {fmt_s(decode_time)} | "
                f"{fmt_s(decode_time / len(paths))} | {tokens_decode:,} |")
    section.add()
    section.add(f"Header-only is **{ratio:.0f}x** faster than decoding. Both give the same total: "
                f"{'yes' if tokens_header == tokens_decode else 'NO'}.")
    section.target("header-only >= 20x faster than decoding", f"{ratio:.0f}x", ratio >= 20)
    section.target("header-only under 1 s for 1,000 images", fmt_s(header_time), header_time < 1.0)
    section.target("same token total both ways", f"{tokens_header:,} vs {tokens_decode:,}",
                   tokens_header == tokens_decode)
    section.seconds = time.perf_counter() - started
    return section
