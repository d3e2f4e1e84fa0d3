"""Text read by OCR: PP-OCR ONNX models inside rapidocr-onnxruntime, loaded once, pooled.

OCR runs on the scaled view cropped to its content, not tile by tile (same pixels, no word cut at a
tile edge). Lines under :data:`TEXT_SCORE` confidence are dropped: a smudge read as "XIA794" is
worse than "no text I can read". Engines are not thread-safe, so each call takes one from a pool
sized by the cores and memory.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
from PIL import Image

__all__ = ['ocr_plan', 'read_text_lines', 'read_text', 'read_text_scored']

TEXT_SCORE = 0.7  # minimum OCR confidence for a line to be reported


# --- OCR --------------------------------------------------------------------------------------

# One RapidOCR engine per session; engines are not thread-safe (``__call__`` mutates instance
# state), so each is used by one thread at a time, taken from a pool. With two engines a dense
# image's recognition is split across both (each on its own core) and two clients are served
# at once; with one, requests queue for it.
SESSION_MEMORY = 512 * 1024 * 1024  # RSS one PP-OCR engine may reach on a dense 768-px view (measured ~300 MB)
REC_BATCH = 6  # RapidOCR 1.4.4's rec_batch_num: recognition runs in batches of this many lines


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def ocr_plan() -> tuple[int, int]:
    """(engines, ONNX intra-op threads per engine) for this machine.

    ``VIZLAB_OCR_SESSIONS`` overrides the engine count. Otherwise two engines when there are
    two or more cores and memory for both (one otherwise), and the cores shared out between them.
    """
    cores = _usable_cores()
    wanted = os.environ.get("VIZLAB_OCR_SESSIONS", "").strip()
    if wanted.isdigit() and int(wanted) >= 1:
        engines = int(wanted)
    else:
        memory = _available_memory()
        engines = 2 if cores >= 2 and (memory is None or memory >= 2 * SESSION_MEMORY) else 1
    return engines, max(1, cores // engines)


class _OcrPool:
    """Engines created lazily, handed out one thread at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[Any] = []
        self._made = 0
        self._plan: tuple[int, int] | None = None
        self._available = threading.Condition(self._lock)

    def _new_engine(self, threads: int) -> Any:
        from rapidocr_onnxruntime import RapidOCR

        # Never upscale before detection: the view's own resolution decides what is legible.
        return RapidOCR(
            use_cls=False,
            det_limit_type="max",
            det_limit_side_len=2048,
            rec_batch_num=REC_BATCH,
            intra_op_num_threads=threads,
            inter_op_num_threads=1,
        )

    def acquire(self, *, wait: bool = True) -> Any | None:
        with self._available:
            if self._plan is None:
                self._plan = ocr_plan()
            engines, threads = self._plan
            while True:
                if self._free:
                    return self._free.pop()
                if self._made < engines:
                    self._made += 1
                    break
                if not wait:
                    return None
                self._available.wait()
        try:
            return self._new_engine(threads)  # built outside the lock: the first load takes seconds
        except BaseException:
            with self._available:
                self._made -= 1
                self._available.notify()
            raise

    def release(self, engine: Any) -> None:
        with self._available:
            self._free.append(engine)
            self._available.notify()


_pool = _OcrPool()


def _recognise(engine: Any, crops: list[np.ndarray]) -> list[tuple[str, float]]:
    result, _ = engine.text_rec(crops, False)
    return [(str(r[0]), float(r[1])) for r in result]


def _ocr(view: Image.Image, *, split: bool = True) -> list[tuple[float, float, str]]:
    """(top, left, text) of each confident line in ``view`` (:func:`_ocr_scored` without scores)."""
    return [(top, left, text) for top, left, text, _ in _ocr_scored(view, split=split)]


def _ocr_scored(view: Image.Image, *, split: bool = True) -> list[tuple[float, float, str, float]]:
    """(top, left, text, confidence) of each confident line in ``view``.

    RapidOCR's own pipeline (``RapidOCR.__call__``, 1.4.4) step by step, so that recognition, 97%
    of the time on a dense image, can be split across two engines: the lines are sorted by
    aspect ratio as its recogniser sorts them, and split at batch boundaries, so every batch
    (and so every line's padding, and so every text read) is exactly what one engine would read.
    """
    engine: Any = _pool.acquire()
    helper = None
    try:
        arr = engine.load_img(np.asarray(view.convert("RGB")))
        raw_h, raw_w = arr.shape[:2]
        img, ratio_h, ratio_w = engine.preprocess(arr)
        record: dict[str, Any] = {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}}
        img, record = engine.maybe_add_letterbox(img, record)
        boxes, _ = engine.auto_text_det(img)
        if boxes is None:
            return []
        crops = engine.get_crop_img_list(img, boxes)
        order = np.argsort(np.array([c.shape[1] / float(c.shape[0]) for c in crops]))
        ordered = [crops[i] for i in order]
        batches = (len(ordered) + REC_BATCH - 1) // REC_BATCH
        if batches >= 2 and split:
            helper = _pool.acquire(wait=False)
        if helper is None:
            results = _recognise(engine, ordered)
        else:
            cut = REC_BATCH * (batches // 2)
            second: list[Any] = []
            worker = threading.Thread(target=lambda: second.extend(_recognise(helper, ordered[cut:])), daemon=True)
            worker.start()
            first = _recognise(engine, ordered[:cut])
            worker.join()
            if len(second) != len(ordered) - cut:
                raise RuntimeError("OCR recognition failed in the helper engine")
            results = first + second
        texts: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for position, index in enumerate(order):
            texts[int(index)] = results[position]
        origin = engine._get_origin_points(boxes, record, raw_h, raw_w)
    finally:
        if helper is not None:
            _pool.release(helper)
        _pool.release(engine)
    lines = []
    for box, (text, score) in zip(origin, texts):
        text = text.strip()
        if text and score >= TEXT_SCORE:
            lines.append((float(min(p[1] for p in box)), float(min(p[0] for p in box)), text, float(score)))
    return lines


def _content_box(
    view: Image.Image, background_rgb: np.ndarray | None, margin: int = 16
) -> tuple[int, int, int, int] | None:
    """Bounding box of pixels that differ from the background (None if the view is uniform)."""
    arr = np.asarray(view, dtype=np.int16)
    if background_rgb is None:
        if float(arr.std()) < 2.0:
            return None
        return (0, 0, view.width, view.height)
    diff = np.abs(arr - background_rgb.astype(np.int16)).max(axis=-1) > 40
    rows = np.flatnonzero(diff.any(axis=1))
    cols = np.flatnonzero(diff.any(axis=0))
    if rows.size == 0:
        return None
    left = max(0, int(cols[0]) - margin)
    top = max(0, int(rows[0]) - margin)
    right = min(view.width, int(cols[-1]) + 1 + margin)
    bottom = min(view.height, int(rows[-1]) + 1 + margin)
    return left, top, right, bottom


def read_text_lines(view: Image.Image, background_rgb: np.ndarray | None = None, *, split: bool = True) -> list[str]:
    """The confident text lines of ``view``, top to bottom, as the analyst reads them.

    ``split=False`` recognises every line on one engine (bench 4 checks both read the same).
    """
    return read_text(view, background_rgb, split=split)


def read_text(view: Image.Image, background_rgb: np.ndarray | None, *, split: bool = True) -> list[str]:
    return [text for text, _ in read_text_scored(view, background_rgb, split=split)]


def read_text_scored(
    view: Image.Image, background_rgb: np.ndarray | None, *, split: bool = True
) -> list[tuple[str, float]]:
    """(line, OCR confidence 0..1) of each confident line, top to bottom, each text once."""
    box = _content_box(view, background_rgb)
    if box is None:
        return []
    crop = view.crop(box) if box != (0, 0, view.width, view.height) else view
    if crop.width < 32 or crop.height < 32:  # pad tiny crops rather than let OCR upscale them
        padded = Image.new("RGB", (max(32, crop.width), max(32, crop.height)), (255, 255, 255))
        padded.paste(crop, (0, 0))
        crop = padded
    lines = sorted(_ocr_scored(crop, split=split), key=lambda item: (round(item[0] / 8), item[1]))
    seen: set[str] = set()
    ordered = []
    for _, _, text, score in lines:
        if text not in seen:
            seen.add(text)
            ordered.append((text, round(score, 4)))
    return ordered
