"""Benchmark 1: image sizes for token estimates: vizlab's header parser against four baselines.

The folder: 1,000 distinct files (no file is a copy of another, so no cache of any kind can
answer for one): 100 each of JPEG photos (crops and resizes of matplotlib's grace_hopper.jpg,
a third with an EXIF rotation that swaps width and height, a third with a 20-60 KB APP segment
before the frame header as cameras write), progressive JPEG, PNG screenshots, GIF (some
animated), WEBP lossy, WEBP lossless, WEBP animated, BMP and TIFF, 0.04-1 MP each.

Contestants, each over every file, from the page cache (the folder is read once first):

* ``vizlab.images.image_size(path)``: what the token estimator calls.
* ``PIL.Image.open(path).size``: Pillow's bare lazy open (no orientation, so it is checked on
  stored sizes; vizlab used it, plus an EXIF read, before); the target is to be at least as fast
  on every format.
* ``imagesize.get(path)``: a pure-Python header parser from PyPI (no EXIF orientation).
* a bare 4 KB read (open, read 4096 bytes, close): the floor for anything that opens the file;
  the target is to be within 3x of it.
* a full decode (``Image.open(path).load()`` + orientation): the cost header parsing avoids.

Every arm must give the same (width, height) as the full decode (imagesize ignores orientation,
so it is compared on stored sizes). Ratios are per format from interleaved rounds.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from _common import Section, fmt_s, load, median, say
from PIL import Image, ImageDraw, ImageOps

PER_FORMAT = int(os.environ.get("VIZLAB_BENCH_PER_FORMAT", "100"))
ROUNDS = 7
FORMATS = ["JPEG", "JPEG progressive", "PNG", "PNG matplotlib", "PNG screenshot+text", "GIF", "WEBP lossy",
           "WEBP lossless", "WEBP XMP+EXIF", "WEBP animated", "BMP", "TIFF"]
# The realistic kinds (issue 23): every matplotlib savefig has tEXt chunks; a macOS screenshot has
# an iTXt XMP packet (and pHYs); phone and editor WEBPs carry XMP and EXIF in a VP8X container.
_XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:PixelXDimension="{w}" '
        'exif:PixelYDimension="{h}" exif:UserComment="Screenshot"/></rdf:RDF></x:xmpmeta>')


def _matplotlib_png(rng: random.Random, n: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(rng.uniform(3, 8), rng.uniform(2, 6)), dpi=rng.choice([72, 100]))
    ax.plot([rng.random() for _ in range(20)])
    ax.set_title(f"figure {n}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _screenshot_png(img: Image.Image) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", _XMP.format(w=img.width, h=img.height), zip=False)
    info.add_text("Software", "Screenshot")
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info, dpi=(144, 144))
    return buf.getvalue()


def _photo() -> Image.Image:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return Image.open(io.BytesIO(fh.read())).convert("RGB")


def _distinct(photo: Image.Image, rng: random.Random, n: int) -> Image.Image:
    """A crop of the photo at a random box, resized to a random size: no two alike."""
    w, h = photo.size
    left, top = rng.randint(0, w // 3), rng.randint(0, h // 3)
    box = (left, top, rng.randint(left + w // 3, w), rng.randint(top + h // 3, h))
    side = rng.randint(200, 1000)
    aspect = rng.uniform(0.5, 2.0)
    img = photo.crop(box).resize((max(16, int(side * aspect ** 0.5)), max(16, int(side / aspect ** 0.5))))
    ImageDraw.Draw(img).text((8, 8), f"#{n}", fill=(255, 255, 0))
    return img


def _screenshot(rng: random.Random, n: int) -> Image.Image:
    img = Image.new("RGB", (rng.randint(300, 1200), rng.randint(200, 900)), (235, 235, 240))
    draw = ImageDraw.Draw(img)
    for k in range(12):
        y = 20 + 28 * k
        draw.rectangle((20, y, 20 + rng.randint(60, img.width - 40), y + 16), fill=(rng.randint(0, 255), 90, 160))
    draw.text((10, img.height - 20), f"window {n}", fill=(0, 0, 0))
    return img


def make_folder(root: Path) -> list[tuple[str, Path]]:
    rng = random.Random(14)
    photo = _photo()
    files: list[tuple[str, Path]] = []
    n = 0
    for fmt in FORMATS:
        for k in range(PER_FORMAT):
            n += 1
            path = root / f"f{n:04d}.{fmt.split()[0].lower()}"
            if fmt == "PNG matplotlib":
                path.write_bytes(_matplotlib_png(rng, n))
                files.append((fmt, path))
                continue
            if fmt == "PNG screenshot+text":
                path.write_bytes(_screenshot_png(_screenshot(rng, n)))
                files.append((fmt, path))
                continue
            img = _screenshot(rng, n) if fmt in ("PNG", "GIF", "BMP", "TIFF") and k % 2 else _distinct(photo, rng, n)
            buf = io.BytesIO()
            kw: dict[str, Any] = {}
            if fmt.startswith("JPEG") or fmt.startswith("WEBP") or fmt == "TIFF":
                if k % 3 == 1:
                    exif = Image.Exif()
                    exif[0x0112] = rng.choice([5, 6, 7, 8, 2, 3])
                    kw["exif"] = exif.tobytes()
            if fmt.startswith("JPEG"):
                if k % 3 == 2:
                    kw["comment"] = bytes(rng.randint(20_000, 60_000))
                img.save(buf, "JPEG", quality=85, progressive=fmt.endswith("progressive"), **kw)
            elif fmt == "WEBP lossy":
                img.save(buf, "WEBP", quality=80, **kw)
            elif fmt == "WEBP XMP+EXIF":
                exif = Image.Exif()
                exif[0x0112] = rng.choice([1, 3, 6, 8])
                img.save(buf, "WEBP", quality=80, exif=exif.tobytes(),
                         xmp=_XMP.format(w=img.width, h=img.height).encode())  # fmt: skip
            elif fmt == "WEBP lossless":
                img.save(buf, "WEBP", lossless=True, method=0, **kw)
            elif fmt == "WEBP animated":
                second = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                img.save(buf, "WEBP", save_all=True, append_images=[second], quality=60, **kw)
            elif fmt == "GIF" and k % 4 == 0:
                img.save(buf, "GIF", save_all=True, append_images=[img.rotate(180)])
            else:
                img.save(buf, fmt, **kw)
            path.write_bytes(buf.getvalue())
            files.append((fmt, path))
    return files




def vizlab_arm(path: Path) -> tuple[int, int]:
    from vizlab.images import image_size

    return image_size(path)


def pillow_lazy_arm(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:  # the bare lazy open: no orientation (that would load a PNG)
        return im.size


def imagesize_arm(path: Path) -> tuple[int, int]:
    import imagesize

    w, h = imagesize.get(path)
    return int(w), int(h)


def read4k_arm(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(4096)


def decode_arm(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        return ImageOps.exif_transpose(im).size


def _stored(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        return im.size


def _time(arm: Callable[[Path], Any], paths: list[Path]) -> float:
    t = time.perf_counter()
    for p in paths:
        arm(p)
    return (time.perf_counter() - t) / len(paths)


def run() -> Section:
    section = Section("1. Image sizes for token estimates")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vizlab-bench-sizes-") as tmp:
        say(f"  making {PER_FORMAT * len(FORMATS):,} distinct images ({len(FORMATS)} kinds) ...")
        files = make_folder(Path(tmp))
        for _, p in files:
            p.read_bytes()  # page cache: every arm reads from memory
        by_format = {fmt: [p for f, p in files if f == fmt] for fmt in FORMATS}
        say("  checking every arm's sizes against a full decode ...")
        wrong = {"vizlab": 0, "Pillow lazy": 0, "imagesize": 0}
        for _, p in files:
            truth = decode_arm(p)
            wrong["vizlab"] += vizlab_arm(p) != truth
            wrong["Pillow lazy"] += pillow_lazy_arm(p) != _stored(p)
            wrong["imagesize"] += imagesize_arm(p) != _stored(p)
        arms: dict[str, Callable[[Path], Any]] = {
            "vizlab": vizlab_arm, "Pillow lazy": pillow_lazy_arm, "imagesize": imagesize_arm, "4 KB read": read4k_arm,
        }
        say(f"  timing, {ROUNDS} interleaved rounds per format ...")
        per: dict[str, dict[str, float]] = {}
        for fmt, paths in by_format.items():
            samples: dict[str, list[float]] = {name: [] for name in arms}
            for _ in range(ROUNDS):
                for name, arm in arms.items():
                    samples[name].append(_time(arm, paths))
            # Median round per arm (issue 23: not the fastest); rounds interleave the arms.
            per[fmt] = {name: median(v) for name, v in samples.items()}
            per[fmt]["full decode"] = _time(decode_arm, paths[:25])
    section.add(f"{len(files):,} distinct files, {PER_FORMAT} per kind (crops and resizes of matplotlib's grace_hopper.jpg "
                "and screenshot-like graphics; a third of the JPEG/WEBP/TIFF files carry an EXIF rotation, a third of the "
                f"JPEGs a 20-60 KB APP segment); per-file time, the median of {ROUNDS} interleaved rounds (full decode: "
                "one round over 25 files). Baselines:")
    section.add()
    section.add("- **Pillow lazy open**: `PIL.Image.open(p).size`, what most code (and vizlab before) calls; it reads "
                "the whole file for WEBP and parses far more than the header for TIFF and progressive JPEG.")
    section.add("- **imagesize**: the PyPI header parser (`imagesize.get`), pure Python, no EXIF orientation.")
    section.add("- **4 KB read**: open, read 4,096 bytes, close: the floor for anything that opens each file.")
    section.add("- **full decode**: `Image.open(p).load()` + `ImageOps.exif_transpose`: the size as displayed, "
                "the reference every arm is checked against.")
    section.add()
    section.add("| Kind | vizlab | Pillow lazy open | imagesize | 4 KB read | full decode | Pillow / vizlab | vizlab / 4 KB |")
    section.add("|---|---|---|---|---|---|---|---|")
    slowest_vs_pillow = min(per[f]["Pillow lazy"] / per[f]["vizlab"] for f in FORMATS)
    worst_vs_read = max(per[f]["vizlab"] / per[f]["4 KB read"] for f in FORMATS)
    for fmt in FORMATS:
        t = per[fmt]
        section.add(f"| {fmt} | {fmt_s(t['vizlab'])} | {fmt_s(t['Pillow lazy'])} | {fmt_s(t['imagesize'])} | "
                    f"{fmt_s(t['4 KB read'])} | {fmt_s(t['full decode'])} | {t['Pillow lazy'] / t['vizlab']:.2f}x | "
                    f"{t['vizlab'] / t['4 KB read']:.2f}x |")
    total = {name: sum(per[f][name] for f in FORMATS) / len(FORMATS) for name in (*arms, "full decode")}
    section.add()
    section.add(f"Load while measuring: {load()}.")
    section.add()
    section.add(f"Over the whole folder vizlab is {total['Pillow lazy'] / total['vizlab']:.1f}x Pillow's lazy open, "
                f"{total['imagesize'] / total['vizlab']:.2f}x imagesize's speed, {total['vizlab'] / total['4 KB read']:.2f}x "
                f"the bare 4 KB read and {total['full decode'] / total['vizlab']:.0f}x faster than decoding. Sizes that "
                f"differ from the full decode: vizlab {wrong['vizlab']}; stored sizes that differ: Pillow lazy "
                f"{wrong['Pillow lazy']}, imagesize {wrong['imagesize']}.")
    section.add()
    section.add("What it means for a user: estimating the tokens of a folder costs about what opening each file "
                "costs; WEBP and TIFF, which Pillow reads much more of, are no slower than the rest.")
    section.target("at least as fast as Pillow's lazy open on every kind (slowest kind)",
                   f"{slowest_vs_pillow:.2f}x", slowest_vs_pillow >= 1.0)
    section.target("within 3x of a bare 4 KB read on every kind (worst kind)", f"{worst_vs_read:.2f}x", worst_vs_read <= 3.0)
    section.target(f"identical sizes to a full decode on all {len(files):,} files", f"{wrong['vizlab']} differ",
                   wrong["vizlab"] == 0)
    realistic = ["JPEG", "PNG matplotlib", "PNG screenshot+text", "WEBP XMP+EXIF"]
    vs_imagesize = sum(per[f]["imagesize"] for f in realistic) / sum(per[f]["vizlab"] for f in realistic)
    section.target("at or faster than imagesize on the realistic mix (JPEG, matplotlib PNG, screenshot PNG, WEBP "
                   "XMP+EXIF; median rounds)", f"{vs_imagesize:.2f}x imagesize's speed", vs_imagesize >= 1.0)
    section.target("vs imagesize (info)", f"{total['imagesize'] / total['vizlab']:.2f}x imagesize's speed", None)
    section.seconds = time.perf_counter() - started
    return section
