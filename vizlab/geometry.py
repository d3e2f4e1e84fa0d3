"""Pure arithmetic on image sizes: fit in a box, short-side scale, tile and patch counts.

The bottom layer (stdlib only): :mod:`vizlab.models` says which box, side, tile and budget a model
uses; this module only computes, and both :mod:`vizlab.images` and :mod:`vizlab.tokens` call it,
so the image sent is the image costed. Rounding is a parameter (``"floor"`` / ``"round"``)
because the published wording moved; the sources are beside :data:`ROUNDINGS`.
Details: docs/internals.md#top-level-modules
"""

from __future__ import annotations

import math

__all__ = [
    "ROUNDINGS",
    "check_size",
    "fit_in_box",
    "scale_short_side",
    "tile_grid",
    "patch_grid",
    "fit_patch_budget",
]

# "floor": OpenAI "Images and vision" guide, newest revision (stored copy read 2026-12): "If the
#   shortest side exceeds 768px, scale it down to 768px and round down the other dimension"
#   (1000x1334 -> 768x1024 -> 4 tiles = 765 tokens on gpt-4o).
# "round": the older wording ("scale so that the shortest side is 768px", 2023-11 .. 2025-08) read
#   as round-to-nearest, which forum measurements on gpt-4.1 matched (2049x513 billed two tile rows,
#   2050x513 one: community.openai.com/t/1262691, 2025). Python's round ties to even; exact .5 ties
#   are unsettled in every source. Fitting into the 2048 box rounds to nearest in both revisions
#   (the same measurements; the newest guide says only "rounding to integer pixels").
ROUNDINGS = ("floor", "round")


def check_size(width: object, height: object) -> None:
    """Raise ``ValueError`` unless both are positive ints (bools refused)."""
    ok = all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in (width, height))
    if not ok:
        raise ValueError(
            f"image size {width!r}x{height!r} is not two positive whole numbers of pixels; "
            "pass the width and height in pixels"
        )


def _apply(value: float, rounding: str) -> int:
    if rounding == "floor":
        return max(1, math.floor(value + 1e-9))  # 1e-9: 1024.0000 computed as 1023.99999 stays 1024
    if rounding == "round":
        return max(1, round(value))
    raise ValueError(f"rounding {rounding!r} is not one of {', '.join(ROUNDINGS)}")


def fit_in_box(width: int, height: int, box_w: int, box_h: int | None = None, *, rounding: str = "round") -> tuple[int, int]:
    """Scale down (never up) to fit ``box_w`` x ``box_h`` (square if ``box_h`` is None).

    >>> fit_in_box(4096, 8192, 2048)
    (1024, 2048)
    >>> fit_in_box(300, 200, 512)
    (300, 200)
    """
    check_size(width, height)
    box_h = box_w if box_h is None else box_h
    scale = min(1.0, box_w / width, box_h / height)
    if scale >= 1.0:
        return width, height
    return _apply(width * scale, rounding), _apply(height * scale, rounding)


def scale_short_side(width: int, height: int, short: int, *, rounding: str = "floor") -> tuple[int, int]:
    """If the short side exceeds ``short``, scale it to exactly ``short``; the other side by ``rounding``.

    >>> scale_short_side(1000, 1334, 768)
    (768, 1024)
    >>> scale_short_side(1000, 1334, 768, rounding="round")
    (768, 1025)
    >>> scale_short_side(700, 2000, 768)
    (700, 2000)
    """
    check_size(width, height)
    low = min(width, height)
    if low <= short:
        return width, height
    scale = short / low
    if width <= height:
        return short, _apply(height * scale, rounding)
    return _apply(width * scale, rounding), short


def tile_grid(width: int, height: int, tile: int = 512) -> tuple[int, int]:
    """Columns and rows of ``tile``-px squares covering the image.

    >>> tile_grid(768, 1024)
    (2, 2)
    """
    check_size(width, height)
    return math.ceil(width / tile), math.ceil(height / tile)


def patch_grid(width: int, height: int, patch: int = 32) -> tuple[int, int]:
    """Columns and rows of ``patch``-px squares covering the image (a patch may overhang).

    >>> patch_grid(1800, 2400)
    (57, 75)
    """
    return tile_grid(width, height, patch)


def fit_patch_budget(width: int, height: int, budget: int | None, patch: int = 32) -> tuple[int, int]:
    """Shrink to at most ``budget`` patches by the guide's formula; unchanged if within (or no budget).

    OpenAI "Images and vision" guide, "Patch-based image tokenization", steps B and C (the same
    formula in the 2025-08 and newest revisions): ``s = sqrt(patch^2 * budget / (w * h))``, adjusted
    by ``min(floor(w*s/patch) / (w*s/patch), floor(h*s/patch) / (h*s/patch))``, then each side
    rounded down to integer pixels.

    >>> fit_patch_budget(1800, 2400, 1536)
    (1056, 1408)
    >>> fit_patch_budget(2048, 2048, 2500)
    (1600, 1600)
    """
    check_size(width, height)
    cols, rows = patch_grid(width, height, patch)
    if budget is None or cols * rows <= budget:
        return width, height
    shrink = math.sqrt(patch * patch * budget / (width * height))
    shrink *= min(
        math.floor(width * shrink / patch) / (width * shrink / patch),
        math.floor(height * shrink / patch) / (height * shrink / patch),
    )
    return _apply(width * shrink, "floor"), _apply(height * shrink, "floor")
