"""Text read by OCR: PP-OCR ONNX models inside rapidocr-onnxruntime, loaded once, pooled.

OCR runs on the scaled view cropped to its content, not tile by tile (same pixels, no word cut at a
tile edge). Lines under :data:`TEXT_SCORE` confidence are dropped: a smudge read as "XIA794" is
worse than "no text I can read". Engines are not thread-safe, so each call takes one from a pool
sized by the cores and memory; with two free, a tall view is cut at a blank row into two bands,
each detected and recognised by its own engine on its own core.
"""

from __future__ import annotations

import collections
import enum
import os
import threading
from typing import Any

import numpy as np
from PIL import Image

__all__ = ['Memory', 'ocr_plan', 'usable_cores', 'read_text_boxes', 'read_text_lines', 'read_text', 'read_text_scored']

TEXT_SCORE = 0.7  # minimum OCR confidence for a line to be reported


# --- OCR --------------------------------------------------------------------------------------

# One RapidOCR engine per session; engines are not thread-safe (``__call__`` mutates instance
# state), so each is used by one thread at a time, taken from a pool. With two engines a dense
# image's recognition is split across both (each on its own core) and two clients are served
# at once; with one, requests queue for it.
SESSION_MEMORY = 512 * 1024 * 1024  # RSS one PP-OCR engine may reach on a dense 768-px view (measured ~300 MB)
# Recognition one line at a time: a batch pads every line to its widest, and costs more CPU per
# line (batches of 6, RapidOCR's default: 1.4x the CPU-seconds of 1 on bench 4's dense image).
REC_BATCH = 1
# Each line crop padded above and below by this share of its height before recognition: the
# recogniser scales every line to 48 px high, so a taller crop is a narrower input (0.7x the
# CPU-seconds at 0.2 on bench 4's dense images, with as many words read). Only long lines, where
# the CPU goes: a short word in tiny type reads worse smaller ("quiethabor").
REC_PAD = 0.2
REC_PAD_MIN_RATIO = 8.0  # width / height from which a line crop is padded


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it)."""
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


class Memory(enum.Enum):
    """How :func:`ocr_plan` learns the memory available: ``MEASURE`` (its default) reads it now
    (``MemAvailable`` in /proc/meminfo; unknown where the OS does not say)."""

    MEASURE = "measure"


def ocr_plan(cores: int | None = None, memory: int | None | Memory = Memory.MEASURE) -> tuple[int, int]:
    """(engines, ONNX intra-op threads per engine) for this machine (or for ``cores`` and
    ``memory`` bytes available, None: unknown; :attr:`Memory.MEASURE`: read it now).

    ``VIZLAB_OCR_SESSIONS`` overrides the engine count. Otherwise two engines when there are
    two or more cores and memory for both (one otherwise), and the cores shared out between them.

    >>> ocr_plan(cores=8, memory=None) if not os.environ.get("VIZLAB_OCR_SESSIONS") else (2, 4)
    (2, 4)
    """
    cores = usable_cores() if cores is None else cores
    wanted = os.environ.get("VIZLAB_OCR_SESSIONS", "").strip()
    if wanted.isdigit() and int(wanted) >= 1:
        engines = int(wanted)
    else:
        if memory is Memory.MEASURE:
            memory = _available_memory()
        elif memory is not None and (isinstance(memory, bool) or not isinstance(memory, int)):
            raise TypeError(f"ocr_plan(memory={memory!r:.40}): give the bytes available (an int), None "
                            "(unknown) or Memory.MEASURE (read it now)")
        engines = 2 if cores >= 2 and (memory is None or memory >= 2 * SESSION_MEMORY) else 1
    return engines, max(1, cores // engines)


class OcrPool:
    """Engines created lazily, handed out one thread at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[Any] = []
        self._made = 0
        self._plan: tuple[int, int] | None = None
        self._spares = 0  # engines being built in the background
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
                    first = self._made == 1
                    break
                if not wait and not self._spares:  # a spare being built is worth the wait
                    return None
                self._available.wait()
        try:
            engine = self._new_engine(threads)  # built outside the lock: the first load takes seconds
        except BaseException:
            with self._available:
                self._made -= 1
                self._available.notify()
            raise
        if first and engines > 1:  # the others in the background, ready for the first dense image
            threading.Thread(target=self._build_spare, args=(threads,), daemon=True).start()
        return engine

    def _build_spare(self, threads: int) -> None:
        while True:
            with self._available:
                if self._plan is None or self._made >= self._plan[0]:
                    return
                self._made += 1
                self._spares += 1
            try:
                engine = self._new_engine(threads)
            except Exception:  # acquire() builds it later, and raises there
                with self._available:
                    self._made -= 1
                    self._spares -= 1
                    self._available.notify_all()
                return
            with self._available:
                self._spares -= 1
                self._free.append(engine)
                self._available.notify_all()

    def release(self, engine: Any) -> None:
        with self._available:
            self._free.append(engine)
            self._available.notify()


_pool = OcrPool()

# The number of lines in each recognition batch, newest last: a diagnostic (tests read it to see
# how the lines were shared between engines).
RECOGNISED: collections.deque[int] = collections.deque(maxlen=1024)


# A recognised line: its text, confidence, and each character's column in the recogniser's
# output (None when unknown) out of the columns that cover the crop.
Reading = tuple[str, float, list[int] | None, float]


def _recognise(engine: Any, crops: list[np.ndarray]) -> list[Reading]:
    RECOGNISED.append(len(crops))
    result, _ = engine.text_rec(crops, True)  # True: also the decoding column of every character
    out: list[Reading] = []
    for r in result:
        text, score = str(r[0]), float(r[1])
        cols: list[int] | None = None
        span = 0.0
        if len(r) > 2 and r[2]:
            span = float(r[2][0])
            cols = [int(c) for word in r[2][2] for c in word]
            if len(cols) != len(text):
                cols = None
        out.append((text, score, cols, span))
    return out


def _ocr(
    view: Image.Image, *, split: bool = True, spaced: bool = True, pool: OcrPool | None = None
) -> list[tuple[float, float, str]]:
    """(top, left, text) of each confident line in ``view``.

    RapidOCR's own pipeline (``RapidOCR.__call__``, 1.4.4) step by step, so that recognition, 97%
    of the time on a dense image, can be split across two engines: lines are recognised one at a
    time (:data:`REC_BATCH`), so a line reads the same whichever engine reads it.
    ``spaced``: put back the spaces the recogniser drops, from the gaps in each line's pixels
    (:func:`word_gap_threshold`); ``False`` gives the recogniser's text as it is. ``pool``: the
    engines to use (default: the process's own).
    """
    boxes = _ocr_boxes(view, split=split, spaced=spaced, pool=pool)
    return [(top, left, text) for top, left, _, _, text, _ in boxes]


Box = tuple[float, float, float, float, str, float]  # top, left, bottom, right, text, OCR confidence


def _ocr_boxes(view: Image.Image, *, split: bool, spaced: bool, pool: OcrPool | None = None) -> list[Box]:
    """(top, left, bottom, right, text, confidence) of each confident line box in ``view``.

    With two engines free and a blank row between lines near the middle of the ink
    (:func:`band_cut`), each engine detects and recognises one band on its own core, so
    detection runs in parallel too; otherwise one engine detects and both recognise.
    """
    pool = _pool if pool is None else pool
    engine: Any = pool.acquire()
    helper = None
    try:
        if split:
            helper = pool.acquire(wait=False)
        rgb = np.asarray(view.convert("RGB"))
        cut = band_cut(rgb) if helper is not None else None
        if cut is None:
            crops, readings, origin = _read_band(engine, rgb, helper=helper)
        else:
            below: list[tuple[list[np.ndarray], list[Reading], list[np.ndarray]]] = []
            worker = threading.Thread(target=lambda: below.append(_read_band(helper, rgb, band=(cut, None))), daemon=True)
            worker.start()
            crops, readings, origin = _read_band(engine, rgb, band=(None, cut))
            worker.join()
            if not below:
                raise RuntimeError("OCR of the lower band failed in the helper engine")
            crops, readings, origin = crops + below[0][0], readings + below[0][1], origin + below[0][2]
    finally:
        if helper is not None:
            pool.release(helper)
        pool.release(engine)
    texts = [r[0] for r in readings]
    if spaced:
        texts = respace(crops, readings)
    lines = []
    for box, text, (_, score, _, _) in zip(origin, texts, readings):
        text = text.strip()
        if text and score >= TEXT_SCORE:
            ys = [float(p[1]) for p in box]
            xs = [float(p[0]) for p in box]
            lines.append((min(ys), min(xs), max(ys), max(xs), text, float(score)))
    return lines


BAND_OVERLAP = 16  # px each band sees past its cut, so a line beside the cut is cropped whole
BAND_MIN_HEIGHT = 256  # a shorter view is read as one band
BAND_BALANCE = (0.3, 0.7)  # the cut leaves between these shares of the ink rows above it


def band_cut(rgb: np.ndarray) -> int | None:
    """The row at which to cut ``rgb`` into two bands of about equal ink, in a run of blank rows
    (no line crosses it), or None when there is no such row near the middle of the ink.

    >>> page = np.full((300, 40, 3), 255, np.uint8); page[20:60] = 0; page[170:200] = 0; page[240:280] = 0
    >>> band_cut(page)
    115
    """
    height = rgb.shape[0]
    if height < BAND_MIN_HEIGHT:
        return None
    grey = rgb.astype(np.int16)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    inked = (np.abs(grey - np.median(border, axis=0)).max(axis=2) > 40).sum(axis=1)
    total = float(inked.sum())
    if total == 0:
        return None
    share = np.cumsum(inked) / total
    blank = np.flatnonzero(inked == 0)
    runs = np.split(blank, np.flatnonzero(np.diff(blank) != 1) + 1) if blank.size else []
    centres = [int(r[len(r) // 2]) for r in runs if r.size and share[r[0]] > 0]
    usable = [c for c in centres if BAND_BALANCE[0] <= share[c] <= BAND_BALANCE[1]]
    if not usable:
        return None
    return min(usable, key=lambda c: abs(float(share[c]) - 0.5))


def _read_band(
    engine: Any, rgb: np.ndarray, *, band: tuple[int | None, int | None] = (None, None), helper: Any | None = None
) -> tuple[list[np.ndarray], list[Reading], list[np.ndarray]]:
    """(crops, readings, box corners in ``rgb``'s coordinates) of the lines whose middle lies in
    rows ``band`` of ``rgb``. RapidOCR's own pipeline (``RapidOCR.__call__``, 1.4.4) step by step;
    ``helper``: a second engine that recognises about half the lines (cut by total width)."""
    height = rgb.shape[0]
    # Each band's height a multiple of 32, as the detector takes it, so no band is rescaled
    # (a rescaled band would place its boxes, and so read its lines, differently).
    top = 0 if band[0] is None else max(0, height - _round_up(height - band[0] + BAND_OVERLAP, 32))
    bottom = height if band[1] is None else min(height, _round_up(band[1] + BAND_OVERLAP, 32))
    chunk = rgb[top:bottom]
    # Padded (edge rows and columns, the content crop's margin) rather than rescaled to 32s.
    chunk = np.pad(chunk, ((0, -chunk.shape[0] % 32), (0, -chunk.shape[1] % 32), (0, 0)), mode="edge")
    arr = engine.load_img(np.ascontiguousarray(chunk))
    raw_h, raw_w = arr.shape[:2]
    img, ratio_h, ratio_w = engine.preprocess(arr)
    record: dict[str, Any] = {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}}
    img, record = engine.maybe_add_letterbox(img, record)
    boxes, _ = engine.auto_text_det(img)
    if boxes is None or len(boxes) == 0:
        return [], [], []
    origin = engine._get_origin_points(boxes, record, raw_h, raw_w)
    origin[..., 1] += top
    middles = origin[..., 1].mean(axis=1)
    keep = [i for i, m in enumerate(middles)
            if (band[0] is None or m >= band[0]) and (band[1] is None or m < band[1])]
    crops = engine.get_crop_img_list(img, [boxes[i] for i in keep])
    return crops, _recognise_split(engine, helper, crops), [origin[i] for i in keep]


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def _recognise_split(engine: Any, helper: Any | None, crops: list[np.ndarray]) -> list[Reading]:
    """Each crop's reading, in order: lines one at a time (:data:`REC_BATCH`), so a line reads the
    same whichever engine reads it; narrow to wide, cut between ``engine`` and ``helper``."""
    padded = [_pad(c) for c in crops]
    order = np.argsort(np.array([c.shape[1] / float(c.shape[0]) for c in padded]), kind="stable")
    ordered = [padded[i] for i in order]
    if helper is None or len(ordered) < 2:
        results = _recognise(engine, ordered)
    else:
        cut = _balanced_cut(ordered)
        second: list[Reading] = []
        worker = threading.Thread(target=lambda: second.extend(_recognise(helper, ordered[cut:])), daemon=True)
        worker.start()
        first = _recognise(engine, ordered[:cut])
        worker.join()
        if len(second) != len(ordered) - cut:
            raise RuntimeError("OCR recognition failed in the helper engine")
        results = first + second
    readings: list[Reading] = [("", 0.0, None, 0.0)] * len(crops)
    for position, index in enumerate(order):
        readings[int(index)] = results[position]
    return readings


def _pad(crop: np.ndarray) -> np.ndarray:
    """``crop`` with :data:`REC_PAD` of its height added above and below, in its edge colour,
    when it is a long line (at least :data:`REC_PAD_MIN_RATIO` times as wide as high)."""
    extra = round(crop.shape[0] * REC_PAD)
    if extra == 0 or crop.ndim != 3 or crop.shape[1] < REC_PAD_MIN_RATIO * crop.shape[0]:
        return crop
    edge = np.median(np.concatenate([crop[0], crop[-1]]), axis=0).astype(crop.dtype)
    out = np.empty((crop.shape[0] + 2 * extra, crop.shape[1], crop.shape[2]), crop.dtype)
    out[:] = edge
    out[extra:extra + crop.shape[0]] = crop
    return out


def _balanced_cut(crops: list[np.ndarray]) -> int:
    """Where to split ``crops`` between two engines so both recognise about as wide an input
    (the cost of a line grows with its width at the recogniser's 48-px height).

    >>> _balanced_cut([np.zeros((10, w, 3)) for w in (10, 10, 10, 30)])
    3
    """
    widths = np.cumsum([c.shape[1] / c.shape[0] for c in crops])
    cut = int(np.searchsorted(widths, widths[-1] / 2)) + 1
    return min(max(cut, 1), len(crops) - 1)


# --- words from the pixels ---------------------------------------------------------------------
# The recogniser often drops the space between words in small text ("VYVVXJHXWHEVN" for three
# words), though it knows where each character sits. The crop's column projection shows where the
# ink stops: gaps between words are wider than gaps between letters. The threshold between the two
# is learned per image (all its lines share a font size), relative to the line height.

MIN_WORD_GAP_RATIO = 1.8  # word gaps at least this many times the letter gaps, or no split at all
MIN_GAPS = 20  # fewer gaps in the whole image than this: too few to learn from, no split
MIN_WORD_GAP_PX = 3  # a narrower gap is never a word gap (tiny text: leave the recogniser's text)


def ink_gaps(crop: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of ink-free columns between the first and last inked column.

    Only the line's own band of rows counts (the run of inked rows with the most ink), so a
    neighbouring line's descenders that the crop caught do not fill a gap.

    >>> crop = np.full((10, 12, 3), 255, np.uint8); crop[2:8, 2:4] = 0; crop[2:8, 8:10] = 0
    >>> ink_gaps(crop)
    [(4, 8)]
    """
    grey = crop.astype(np.float32).mean(axis=2) if crop.ndim == 3 else crop.astype(np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    diff = np.abs(grey - float(np.median(border)))
    contrast = float(diff.max()) if diff.size else 0.0
    if contrast < 40:
        return []
    ink = diff > max(25.0, 0.45 * contrast)
    per_row = ink.sum(axis=1)
    band, best, start = (0, 0), -1, None
    for y in range(len(per_row) + 1):
        if y < len(per_row) and per_row[y] > 0:
            start = y if start is None else start
        elif start is not None:
            total = int(per_row[start:y].sum())
            if total > best:
                band, best = (start, y), total
            start = None
    core = ink[band[0]:band[1]]
    inked = core.any(axis=0)
    cols = np.flatnonzero(inked)
    if cols.size < 2:
        return []
    gaps = []
    start = None
    for x in range(int(cols[0]), int(cols[-1]) + 1):
        if not inked[x] and start is None:
            start = x
        elif inked[x] and start is not None:
            gaps.append((start, x))
            start = None
    return gaps


def word_gap_threshold(widths: list[float]) -> float | None:
    """The gap width (relative to line height) above which a gap separates words, or None.

    Two classes by Otsu's rule over every gap in the image; None when there are too few gaps or
    the wide ones are not clearly wider than the narrow ones (then no space is added).

    >>> round(word_gap_threshold([0.06, 0.1, 0.06, 0.35, 0.12, 0.06, 0.3, 0.1] * 3), 2)
    0.21
    """
    values = np.sort(np.asarray(widths, dtype=np.float64))
    if values.size < MIN_GAPS:
        return None
    best, best_cut = -1.0, None
    for k in range(1, values.size):
        if values[k] == values[k - 1]:
            continue
        low, high = values[:k], values[k:]
        between = low.size * high.size * (high.mean() - low.mean()) ** 2
        if between > best:
            best, best_cut = between, k
    if best_cut is None:
        return None
    low, high = values[:best_cut], values[best_cut:]
    if high.mean() < MIN_WORD_GAP_RATIO * low.mean():
        return None
    return float((low[-1] + high[0]) / 2)


def respace(crops: list[np.ndarray], readings: list[Reading]) -> list[str]:
    """Each reading's text with a space put back wherever a word gap lies between two characters."""
    gaps = [ink_gaps(c) for c in crops]
    threshold = word_gap_threshold([(e - s) / c.shape[0] for c, g in zip(crops, gaps) for s, e in g])
    out = []
    for crop, line_gaps, (text, _, cols, span) in zip(crops, gaps, readings):
        if threshold is None or cols is None or span <= 0 or not text:
            out.append(text)
            continue
        scale = crop.shape[1] / span  # crop pixels per decoding column
        wide = [(s + e) / 2 for s, e in line_gaps if (e - s) / crop.shape[0] > threshold and e - s >= MIN_WORD_GAP_PX]
        out.append(_insert_spaces(text, [(c + 0.5) * scale for c in cols], wide))
    return out


def _insert_spaces(text: str, xs: list[float], gap_centres: list[float]) -> str:
    """``text`` with a space between two neighbouring characters that a gap centre falls between.

    >>> _insert_spaces("ABCD", [2, 6, 14, 18], [10.0])
    'AB CD'
    """
    chars = [text[0]]
    for i in range(1, len(text)):
        if text[i] != " " and text[i - 1] != " " and any(xs[i - 1] < g < xs[i] for g in gap_centres):
            chars.append(" ")
        chars.append(text[i])
    return "".join(chars)


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
    seen: set[str] = set()
    ordered = []
    for text, score in _rows(read_text_boxes(view, background_rgb, split=split)):
        if text not in seen:
            seen.add(text)
            ordered.append((text, round(score, 4)))
    return ordered


def read_text_boxes(view: Image.Image, background_rgb: np.ndarray | None = None, *, split: bool = True) -> list[Box]:
    """(top, left, bottom, right, text, confidence) of each confident text box, in ``view``'s pixels.

    OCR reads the view cropped to its content (pixels unlike ``background_rgb``), never its margins.
    """
    box = _content_box(view, background_rgb)
    if box is None:
        return []
    crop = view.crop(box) if box != (0, 0, view.width, view.height) else view
    if crop.width < 32 or crop.height < 32:  # pad tiny crops rather than let OCR upscale them
        padded = Image.new("RGB", (max(32, crop.width), max(32, crop.height)), (255, 255, 255))
        padded.paste(crop, (0, 0))
        crop = padded
    left, top = box[0], box[1]
    return [(t + top, x + left, b + top, r + left, text, score)
            for t, x, b, r, text, score in _ocr_boxes(crop, split=split, spaced=True)]


def _rows(boxes: list[Box]) -> list[tuple[str, float]]:
    """Line texts top to bottom: boxes whose middles share a row are one line, left to right,
    when they sit close (less than two line heights apart); far apart, they stay separate.

    A joined line's confidence is its least confident part's.

    >>> _rows([(0, 60, 20, 100, "world", 0.9), (2, 0, 21, 50, "hello", 0.8), (30, 0, 50, 40, "next", 1.0)])
    [('hello world', 0.8), ('next', 1.0)]
    """
    rows: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: ((b[0] + b[2]) / 2, b[1])):
        middle = (box[0] + box[2]) / 2
        if rows and rows[-1][0][0] <= middle <= rows[-1][0][2]:
            rows[-1].append(box)
        else:
            rows.append([box])
    texts = []
    for row in rows:
        row.sort(key=lambda b: b[1])
        parts = [row[0]]
        for box in row[1:]:
            last = parts[-1]
            if box[1] - last[3] < 2 * (last[2] - last[0]):
                parts[-1] = (min(last[0], box[0]), last[1], max(last[2], box[2]), box[3], f"{last[4]} {box[4]}",
                             min(last[5], box[5]))
            else:
                parts.append(box)
        texts += [(p[4], p[5]) for p in parts]
    return texts
