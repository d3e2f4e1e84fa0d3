"""Labelled images the experiment benchmarks send: small, distinct, answerable by the analyst."""

from __future__ import annotations

from PIL import Image

from vizlab.datasets import LabelledImage

_PALETTE = [("red", (220, 30, 30)), ("green", (30, 170, 60)), ("blue", (30, 60, 210))]


def colour_items(n: int, size: int = 96) -> list[LabelledImage]:
    """``n`` distinct solid squares (their shade varies a little, so every image is different)."""
    items = []
    for i in range(n):
        name, (r, g, b) = _PALETTE[i % len(_PALETTE)]
        shade = (i // len(_PALETTE)) % 40
        colour = (max(0, r - shade), max(0, g - shade), max(0, b - shade))
        items.append(
            LabelledImage(
                id=f"colour-{i:03d}",
                image=Image.new("RGB", (size, size), colour),
                task="dominant_colour",
                question="What is the dominant colour? One word.",
                answer=name,
            )
        )
    return items
