"""Benchmark 5: fit="high" on 12 MP phone photos: today's draft-at-the-target against the old path.

The old path (vizlab before issue 14, re-implemented here as the baseline): ``draft()`` asked for
twice the target, which for a 4000x3000 photo sent at 1024x768 means scale 1 (the whole photo is
decoded), then LANCZOS. The new path asks ``draft()`` for the target itself (libjpeg decodes at
1/2 scale, 2000x1500) and finishes with ``Image.thumbnail``'s resize (BICUBIC, reducing_gap 2).
Both end with vizlab's JPEG encode (quality 85). Each round uses a different photo (made like
benchmark 2's: gradient + texture that survives the downscale + sensor-like noise), so nothing is
cached between arms or rounds. The quality check: PSNR of what is sent against a full decode +
LANCZOS resize sent the same way (the JPEG encode is common to both, so this measures the resize).
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Section, fmt_s, load, median, say
from bench_data_urls import make_photo
from PIL import Image, ImageOps

PHOTOS = 6


def old_fit_high(path: Path) -> bytes:
    """vizlab's fit='high' before issue 14: draft at twice the target, LANCZOS, JPEG 85."""
    from vizlab.images import fit_size
    from vizlab.images.encode import JPEG_QUALITY

    with Image.open(path) as im:
        target = fit_size(im.width, im.height, "high")
        if target[0] * 2 <= im.width and target[1] * 2 <= im.height:
            im.draft(im.mode, (target[0] * 2, target[1] * 2))
        im.load()
        frame = ImageOps.exif_transpose(im).resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buf = io.BytesIO()
    frame.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def by_hand(path: Path) -> bytes:
    """The peer a user would write (issue 23): Pillow's draft, exif_transpose, thumbnail, JPEG,
    at the same target size and quality as vizlab."""
    from vizlab.images import fit_size
    from vizlab.images.encode import JPEG_QUALITY

    with Image.open(path) as im:
        target = fit_size(im.width, im.height, "high")
        im.draft("RGB", target)
        frame = ImageOps.exif_transpose(im)
        frame.thumbnail(target)
    buf = io.BytesIO()
    frame.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def _full_quality(path: Path, target: tuple[int, int]) -> Image.Image:
    from vizlab.images.encode import JPEG_QUALITY

    with Image.open(path) as im:
        im.load()
        frame = im.resize(target, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    frame.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _psnr(a: Image.Image, b: Image.Image) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(10 * np.log10(255.0**2 / float((diff**2).mean())))


def run() -> Section:
    from vizlab.images import encode_image, image_size
    from vizlab.tokens import image_tokens

    section = Section('5. fit="high" on 12 MP photos')
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vizlab-bench-fit-") as tmp:
        say(f"  making {PHOTOS} distinct 12 MP photo-like JPEGs ...")
        paths = []
        for k in range(PHOTOS):
            path = Path(tmp) / f"p{k}.jpg"
            make_photo(path, seed=40 + k)
            paths.append(path)
            path.read_bytes()
        old_t: list[float] = []
        new_t: list[float] = []
        hand_t: list[float] = []
        psnrs: list[float] = []
        same_tokens = True
        say("  old path vs new, alternating, one photo per round ...")
        for k, path in enumerate(paths):
            arms = [("old", old_fit_high), ("new", lambda p: encode_image(p, fit="high").data), ("by hand", by_hand)]
            arms = arms[k % 3:] + arms[: k % 3]  # each arm first in turn
            out: dict[str, bytes] = {}
            timings = {"old": old_t, "new": new_t, "by hand": hand_t}
            for name, arm in arms:
                t = time.perf_counter()
                out[name] = arm(path)
                timings[name].append(time.perf_counter() - t)
            w, h = image_size(path)
            sizes = {name: image_size(data) for name, data in out.items()}
            same_tokens &= all(image_tokens(*s, detail="high") == image_tokens(w, h, detail="high") for s in sizes.values())
            sent = Image.open(io.BytesIO(out["new"])).convert("RGB")
            psnrs.append(_psnr(sent, _full_quality(path, sizes["new"])))
    speedup = median([o / n for o, n in zip(old_t, new_t)])
    vs_hand = median([h / n for h, n in zip(hand_t, new_t)])
    worst_psnr = min(psnrs)
    section.add(f"{PHOTOS} distinct 4000x3000 JPEGs (quality 90), each sent once by each path at 1024x768.")
    section.add()
    section.add("| Path | Median time | Tokens at high (gpt-4o) | PSNR vs full-quality resize (worst) |")
    section.add("|---|---|---|---|")
    section.add(f"| old: draft at 2x the target (scale 1), LANCZOS | {fmt_s(median(old_t))} | 765 | (reference decode) |")
    section.add(f"| new: draft at the target (scale 1/2), thumbnail resize | {fmt_s(median(new_t))} | "
                f"{'765, identical' if same_tokens else 'DIFFERENT'} | {worst_psnr:.1f} dB |")
    section.add(f"| peer: Pillow draft + exif_transpose + thumbnail by hand, same size and quality | {fmt_s(median(hand_t))} "
                "| 765 | - |")
    section.add()
    section.add(f"Load while measuring: {load()}. New vs by hand: {vs_hand:.2f}x its speed (median of per-photo ratios).")
    section.add()
    section.add(f"New vs old: **{speedup:.2f}x** faster (median of per-photo ratios). For a user: a phone photo is "
                "shrunk for the service in a fraction of the time, with the same token count and no visible loss.")
    section.target('fit="high" on a 12 MP JPEG >= 2x faster than before', f"{speedup:.2f}x", speedup >= 2.0)
    section.target("fit=\"high\" level with Pillow's draft+thumbnail by hand (>= 0.9x its speed)", f"{vs_hand:.2f}x",
                   vs_hand >= 0.9)
    section.target("tokens identical", "identical" if same_tokens else "different", same_tokens)
    section.target("PSNR >= 35 dB against a full-quality resize (worst photo)", f"{worst_psnr:.1f} dB", worst_psnr >= 35.0)
    section.seconds = time.perf_counter() - started
    return section
