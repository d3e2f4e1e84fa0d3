"""What the analyst measures without OCR: size, dominant named colours, simple shapes, brightness.

Colours are named per pixel and counted; shapes are filled blobs on a plain background, classified
by their contour. Blobs under :data:`MIN_SHAPE_AREA` of the view (glyphs, noise) are not shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vizlab.local import _deps

__all__ = ['ImageFacts']

LOW_BOX = _deps.LOW_BOX  # 512: the low-detail view (source in vizlab.images)
TILE = _deps.TILE  # 512: the tile of detail high (source in vizlab.tokens)
MIN_SHAPE_AREA = 0.002  # of the low view's area; smaller blobs (glyphs, noise) are not shapes
COLOUR_SHARE_MIN = 0.03  # colours under 3% of the pixels are not listed


@dataclass
class ImageFacts:
    """What the analyst measured in one image at one detail."""

    width: int
    height: int
    mime: str | None
    detail_used: str  # "low" or "high"
    view_size: tuple[int, int]  # size of the view text was read from
    tiles: int  # 512-px tiles of the high view (0 at low detail)
    text_lines: list[str] = field(default_factory=list)
    text_confidence: list[float] = field(default_factory=list)  # OCR confidence 0..1 of each text line
    colours: list[tuple[str, float]] = field(default_factory=list)  # (name, share 0..1), largest first
    shapes: dict[str, int] = field(default_factory=dict)
    brightness: float = 0.0  # mean luminance 0..1
    background: str | None = None  # named colour of a plain background, if there is one
    text_read: bool = True  # False: OCR was not run (the question needed no text); text_lines is empty

    @property
    def shape_count(self) -> int:
        return sum(self.shapes.values())


# --- colours ----------------------------------------------------------------------------------


def name_colours(rgb: np.ndarray) -> np.ndarray:
    """Name each pixel (H x W x 3 uint8) with one of :data:`COLOUR_NAMES` (indices returned).

    Rules on HSV: dark is black, unsaturated is white or grey, otherwise by hue, with brown for
    dark oranges and pink for light, weakly saturated reds and for magentas.
    """
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(axis=-1)
    mn = x.min(axis=-1)
    c = v - mn
    s = np.where(v > 0, c / np.maximum(v, 1e-6), 0)
    safe_c = np.maximum(c, 1e-6)
    h = np.where(
        v == r,
        ((g - b) / safe_c) % 6,
        np.where(v == g, (b - r) / safe_c + 2, (r - g) / safe_c + 4),
    ) * 60.0
    names = np.full(v.shape, COLOUR_NAMES.index("grey"), dtype=np.int8)
    idx = COLOUR_NAMES.index

    chromatic = (s >= 0.25) & (c >= 0.12)
    hue_bins = [
        (0, 15, "red"), (15, 40, "orange"), (40, 70, "yellow"), (70, 165, "green"),
        (165, 195, "cyan"), (195, 255, "blue"), (255, 290, "purple"), (290, 340, "pink"), (340, 361, "red"),
    ]
    for low, high, name in hue_bins:
        names[chromatic & (h >= low) & (h < high)] = idx(name)
    names[chromatic & (h >= 10) & (h < 45) & (v < 0.6)] = idx("brown")
    names[chromatic & ((h < 15) | (h >= 340)) & (s < 0.5) & (v > 0.8)] = idx("pink")
    grey = ~chromatic
    names[grey & (v >= 0.85)] = idx("white")
    names[grey & (v < 0.85) & (v >= 0.2)] = idx("grey")
    names[v < 0.2] = idx("black")
    return names


COLOUR_NAMES = (
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "grey", "cyan",
)


def dominant_colours(names: np.ndarray) -> list[tuple[str, float]]:
    counts = np.bincount(names.ravel().astype(np.int64), minlength=len(COLOUR_NAMES))
    total = counts.sum()
    shares = [(COLOUR_NAMES[i], counts[i] / total) for i in range(len(COLOUR_NAMES)) if counts[i]]
    shares.sort(key=lambda item: (-item[1], item[0]))
    listed = [(n, float(round(sh, 4))) for n, sh in shares if sh >= COLOUR_SHARE_MIN]
    return listed[:6] or [(shares[0][0], float(round(shares[0][1], 4)))]


# --- shapes -----------------------------------------------------------------------------------


def plain_background(names: np.ndarray) -> int | None:
    """The colour index covering most of the border, if it is a plain background (>= 70%)."""
    border = np.concatenate([names[0, :], names[-1, :], names[:, 0], names[:, -1]])
    counts = np.bincount(border.astype(np.int64), minlength=len(COLOUR_NAMES))
    best = int(counts.argmax())
    if counts[best] < 0.7 * border.size:
        return None
    if (names == best).mean() < 0.3:
        return None
    return best


def count_shapes(names: np.ndarray, background: int | None) -> dict[str, int]:
    """Connected regions of one colour on a plain background, classified by contour geometry."""
    import cv2

    if background is None:
        return {}
    height, width = names.shape
    min_area = max(60.0, MIN_SHAPE_AREA * height * width)
    kernel = np.ones((3, 3), np.uint8)
    shapes: dict[str, int] = {}
    for colour in np.unique(names):
        if colour == background:
            continue
        mask = (names == colour).astype(np.uint8)
        if int(mask.sum()) < min_area:
            continue
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            kind = _classify(contour, min_area)
            if kind:
                shapes[kind] = shapes.get(kind, 0) + 1
    return dict(sorted(shapes.items()))


def _classify(contour: Any, min_area: float) -> str | None:
    import cv2

    area = float(cv2.contourArea(contour))
    if area < min_area:
        return None
    hull_area = float(cv2.contourArea(cv2.convexHull(contour)))
    if hull_area <= 0 or area / hull_area < 0.88:  # glyphs, outlines and blobs are not simple shapes
        return None
    perimeter = float(cv2.arcLength(contour, True))
    approx = cv2.approxPolyDP(contour, 0.04 * perimeter, True)
    corners = len(approx)
    circularity = 4 * math.pi * area / (perimeter * perimeter) if perimeter else 0.0
    if corners == 3:
        return "triangle"
    if corners == 4:
        (_, _), (rw, rh), _ = cv2.minAreaRect(contour)
        if rw * rh > 0 and area / (rw * rh) > 0.85:
            return "rectangle"
    if circularity > 0.78 and corners >= 5:
        return "circle"
    return None
