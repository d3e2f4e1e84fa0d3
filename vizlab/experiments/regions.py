"""Where the text is: regions for the ``text-crops:N`` strategy, from a local text detector.

RapidOCR's detection model (weights shipped in ``rapidocr_onnxruntime``; nothing downloaded)
finds line boxes; they are grown by a margin, merged where they overlap, then merged by least
added area down to ``n`` regions, top to bottom. Trade-off: printed text only; an image where
nothing is found is sent whole. Details: docs/internals.md#experiments
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["Box", "merge_regions", "text_boxes", "text_regions"]

Box = tuple[int, int, int, int]  # left, top, right, bottom (PIL's crop order)

_lock = threading.Lock()
_engine: Any = None


def _detector() -> Any:
    global _engine
    with _lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR(use_cls=False, det_limit_type="max", det_limit_side_len=2048,
                               intra_op_num_threads=1, inter_op_num_threads=1)  # fmt: skip
        return _engine


def text_boxes(image: Image.Image) -> list[Box]:
    """Axis-aligned boxes of the text lines the detector finds in ``image`` (pixel coordinates)."""
    engine = _detector()
    with _lock:  # one ONNX session, used by one thread at a time
        found, _ = engine(np.asarray(image.convert("RGB")), use_cls=False, use_rec=False)
    boxes: list[Box] = []
    for quad in found or []:
        xs = [p[0] for p in quad]
        ys = [p[1] for p in quad]
        box = (int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1)
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(box)
    return boxes


def _area(b: Box) -> int:
    return max(0, b[2] - b[0]) * max(0, b[3] - b[1])


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def merge_regions(boxes: list[Box], n: int, size: tuple[int, int]) -> list[Box]:
    """At most ``n`` regions covering every box, grown by a margin and clipped to ``size``.

    >>> merge_regions([(10, 10, 60, 30), (10, 34, 60, 54), (200, 200, 260, 220)], 4, (300, 300))
    [(2, 2, 68, 62), (192, 192, 268, 228)]
    >>> merge_regions([(10, 10, 60, 30), (200, 200, 260, 220)], 1, (300, 300))
    [(2, 2, 268, 228)]
    """
    if n < 1:
        raise ValueError(f"merge_regions: n={n}; need at least one region")
    width, height = size
    grown: list[Box] = []
    for left, top, right, bottom in boxes:
        m = max(8, (bottom - top) // 4)
        grown.append((max(0, left - m), max(0, top - m), min(width, right + m), min(height, bottom + m)))
    regions: list[Box] = []
    for box in sorted(grown, key=lambda b: (b[1], b[0])):
        merged = True
        while merged:  # absorb every region this box now touches
            merged = False
            for i, r in enumerate(regions):
                if _overlap(r, box):
                    box = _union(r, box)
                    del regions[i]
                    merged = True
                    break
        regions.append(box)
    while len(regions) > n:
        best: tuple[int, int, int] | None = None
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                u = _union(regions[i], regions[j])
                waste = _area(u) - _area(regions[i]) - _area(regions[j])
                if best is None or waste < best[0]:
                    best = (waste, i, j)
        assert best is not None
        _, i, j = best
        u = _union(regions[i], regions[j])
        regions = [r for k, r in enumerate(regions) if k not in (i, j)] + [u]
    return sorted(regions, key=lambda b: (b[1], b[0]))


def text_regions(image: Image.Image, n: int) -> list[Box]:
    """At most ``n`` regions around the text the detector finds in ``image`` ([] if none)."""
    return merge_regions(text_boxes(image), n, image.size)
