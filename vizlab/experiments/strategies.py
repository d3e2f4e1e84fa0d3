"""How an image is sent: whole, fitted to a box, or cut into crops sent together.

``whole``, ``fit`` / ``fit:WxH`` (a smaller upload, the same bill), ``crops:N`` (a grid, each
crop at the arm's detail: at ``low`` the cheap alternative to ``high``) and ``text-crops:N``
(crops around detected text). Every strategy is costed by :func:`vizlab.tokens.estimate_request`
over the images it actually sends. Details: docs/internals.md#experiments
"""

from __future__ import annotations

import math
import re
from typing import Any

from vizlab.experiments.document_arms import check_document_strategy, document_images
from vizlab.experiments.regions import text_regions
from vizlab.images.encode import EncodedImage, encode_image, open_image

__all__ = ["STRATEGIES", "check_strategy", "grid_shape", "strategy_images"]

STRATEGIES = ("whole", "fit", "fit:WxH", "crops:N", "text-crops:N")


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of an n-crop grid, as square as possible: 4 -> (2, 2), 6 -> (2, 3).

    >>> grid_shape(4), grid_shape(6), grid_shape(3)
    ((2, 2), (2, 3), (1, 3))
    """
    rows = int(math.isqrt(n))
    while n % rows:
        rows -= 1
    return rows, n // rows


def check_strategy(strategy: str, *, max_images: int | None = None) -> str:
    """``strategy`` if valid, else a ValueError saying what is accepted."""
    s = str(strategy).strip()
    if s.startswith("document:"):  # PDFs as text, pages or file part (vizlab.experiments.document_arms)
        return check_document_strategy(s)
    if s in ("whole", "fit"):
        return s
    if re.fullmatch(r"fit:\d+x\d+", s):
        return s
    m = re.fullmatch(r"(?:text-)?crops:(\d+)", s)
    if m and int(m.group(1)) >= 1:
        n = int(m.group(1))
        if max_images is not None and n > max_images:
            kind = s.split(":", 1)[0]
            raise ValueError(f"strategy {s!r}: {n} crops in one request, but the deployment takes at most "
                             f"{max_images} images per request; use {kind}:{max_images} or fewer")  # fmt: skip
        return s
    raise ValueError(f"strategy {strategy!r}: use one of whole, fit, fit:WxH (e.g. fit:1024x1024), crops:N (e.g. crops:4), text-crops:N (e.g. text-crops:3)")


def strategy_images(image: Any, strategy: str, detail: str, *, name: str) -> list[EncodedImage]:
    """The encoded image(s) one request sends under ``strategy`` at ``detail``."""
    if strategy.startswith("document:"):
        return document_images(image, strategy, name=name)
    if strategy == "whole":
        return [encode_image(image, name=name)]
    if strategy == "fit":
        return [encode_image(image, name=name, fit="low" if detail == "low" else "high")]
    if strategy.startswith("fit:"):
        w, h = (int(x) for x in strategy[4:].split("x"))
        return [encode_image(image, name=name, fit=(w, h))]
    n = int(strategy.split(":", 1)[1])
    full = open_image(image).convert("RGB")
    if strategy.startswith("text-crops:"):
        regions = text_regions(full, n)
        if not regions:
            return [encode_image(full, name=name)]
        return [encode_image(full.crop(box), name=f"{name}[{i}]") for i, box in enumerate(regions)]
    rows, cols = grid_shape(n)
    width, height = full.size
    crops = []
    for r in range(rows):
        for c in range(cols):
            box = (c * width // cols, r * height // rows, (c + 1) * width // cols, (r + 1) * height // rows)
            crops.append(encode_image(full.crop(box), name=f"{name}[{r},{c}]"))
    return crops
