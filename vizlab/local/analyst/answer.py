"""The local backend's "model": a deterministic vision analyst, honest about what it is.

No vision-language model's weights ship in a package that installs here, so the backend answers
from facts it can measure: size, dominant named colours, simple filled shapes on a plain
background, brightness, and text read by OCR (PP-OCR ONNX models inside rapidocr-onnxruntime).

It is detail-aware the way the service is:

* ``low``: it sees only the image fitted into 512x512, and reads text at that resolution.
* ``high``: it also sees the image scaled as the service scales it for tiles
  (``vizlab.tokens.scale_for_high``: fit 2048x2048, short side 768) and reads text there. Small
  text that ``low`` cannot read, ``high`` reads.
* ``auto``: resolved by ``vizlab.tokens.resolve_detail`` (the estimator's stated policy).

Trade-offs:

* OCR runs on the whole scaled view, cropped to its non-background content, not tile by tile:
  same pixels, same resolution as the tiles, but no word is cut at a tile edge, and one
  detector pass over the content is faster than one per tile. The detector never upscales
  (``det_limit_type="max"``), so the low view cannot read more than its pixels hold.
* OCR lines under :data:`TEXT_SCORE` confidence are dropped: a smudge read as "XIA794" at low
  detail is worse than "no text I can read".
* The OCR engine is loaded once, lazily, and calls are serialised with a lock: RapidOCR's
  ``__call__`` mutates instance state (``text_score`` and friends), so it is not thread-safe.
* Facts are cached per (pixels, detail) so a notebook asking five questions about one image
  pays for OCR once.
* Answers use only the messages sent: the Chat Completions API is stateless, and this analyst
  makes that visible ("I don't see an image in this conversation...").
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PIL import Image

from vizlab.local import _deps

__all__ = ["ImageFacts", "Analyst", "IDENTITY", "NO_IMAGE_ANSWER", "ocr_plan", "read_text_lines"]

IDENTITY = "I am vizlab's local analyst, not GPT-4o."
NO_IMAGE_ANSWER = (
    "I don't see an image in this conversation. The Chat Completions API is stateless: "
    "send the image again with your question."
)
LOW_BOX = _deps.LOW_BOX  # 512: the low-detail view (source in vizlab.images)
TILE = _deps.TILE  # 512: the tile of detail high (source in vizlab.tokens)
TEXT_SCORE = 0.7  # minimum OCR confidence for a line to be reported
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
    colours: list[tuple[str, float]] = field(default_factory=list)  # (name, share 0..1), largest first
    shapes: dict[str, int] = field(default_factory=dict)
    brightness: float = 0.0  # mean luminance 0..1
    background: str | None = None  # named colour of a plain background, if there is one
    text_read: bool = True  # False: OCR was not run (the question needed no text); text_lines is empty

    @property
    def shape_count(self) -> int:
        return sum(self.shapes.values())


# --- colours ----------------------------------------------------------------------------------


def _name_colours(rgb: np.ndarray) -> np.ndarray:
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


def _dominant_colours(names: np.ndarray) -> list[tuple[str, float]]:
    counts = np.bincount(names.ravel().astype(np.int64), minlength=len(COLOUR_NAMES))
    total = counts.sum()
    shares = [(COLOUR_NAMES[i], counts[i] / total) for i in range(len(COLOUR_NAMES)) if counts[i]]
    shares.sort(key=lambda item: (-item[1], item[0]))
    listed = [(n, float(round(sh, 4))) for n, sh in shares if sh >= COLOUR_SHARE_MIN]
    return listed[:6] or [(shares[0][0], float(round(shares[0][1], 4)))]


# --- shapes -----------------------------------------------------------------------------------


def _background(names: np.ndarray) -> int | None:
    """The colour index covering most of the border, if it is a plain background (>= 70%)."""
    border = np.concatenate([names[0, :], names[-1, :], names[:, 0], names[:, -1]])
    counts = np.bincount(border.astype(np.int64), minlength=len(COLOUR_NAMES))
    best = int(counts.argmax())
    if counts[best] < 0.7 * border.size:
        return None
    if (names == best).mean() < 0.3:
        return None
    return best


def _count_shapes(names: np.ndarray, background: int | None) -> dict[str, int]:
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
    """(top, left, text) of each confident line in ``view``.

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
            lines.append((float(min(p[1] for p in box)), float(min(p[0] for p in box)), text))
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
    return _read_text(view, background_rgb, split=split)


def _read_text(view: Image.Image, background_rgb: np.ndarray | None, *, split: bool = True) -> list[str]:
    box = _content_box(view, background_rgb)
    if box is None:
        return []
    crop = view.crop(box) if box != (0, 0, view.width, view.height) else view
    if crop.width < 32 or crop.height < 32:  # pad tiny crops rather than let OCR upscale them
        padded = Image.new("RGB", (max(32, crop.width), max(32, crop.height)), (255, 255, 255))
        padded.paste(crop, (0, 0))
        crop = padded
    lines = sorted(_ocr(crop, split=split), key=lambda item: (round(item[0] / 8), item[1]))
    seen: set[str] = set()
    ordered = []
    for _, _, text in lines:
        if text not in seen:
            seen.add(text)
            ordered.append(text)
    return ordered


# --- intents ----------------------------------------------------------------------------------

_INTENTS = (
    ("compare", re.compile(r"\b(compare|comparison|differen\w*|differ|same|similar|versus|vs\.?|both)\b")),
    ("read", re.compile(r"\b(read|say|says|said|text|ocr|written|write|words?|transcribe|label|sign|caption|title)\b")),
    ("colours", re.compile(r"\b(colou?rs?|hue|shade)\b")),
    ("count", re.compile(r"\b(how many|count|number of)\b")),
    ("size", re.compile(r"\b(size|dimensions?|resolution|how big|how large|pixels?|width|height|wide|tall)\b")),
)
_SHAPE_WORDS = {"circle": "circle", "circles": "circle", "round": "circle", "dot": "circle", "dots": "circle",
                "rectangle": "rectangle", "rectangles": "rectangle", "square": "rectangle", "squares": "rectangle",
                "box": "rectangle", "boxes": "rectangle", "triangle": "triangle", "triangles": "triangle"}


# The answers that quote the text read (describe, read, compare); colours, counts and sizes do not.
INTENTS_NEEDING_TEXT = frozenset({"describe", "read", "compare"})


def detect_intent(question: str) -> str:
    """``describe`` unless the question asks to compare, read, name colours, count or measure.

    >>> detect_intent("What does the sign say?")
    'read'
    """
    q = question.lower()
    for name, pattern in _INTENTS:
        if pattern.search(q):
            return name
    return "describe"


# --- prose helpers ----------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _colours_text(facts: ImageFacts) -> str:
    return ", ".join(f"{name} ({round(share * 100)}%)" for name, share in facts.colours)


def _shapes_text(facts: ImageFacts) -> str:
    if facts.background is None:
        return "It has no plain background, so I do not count shapes in it."
    n = facts.shape_count
    if n == 0:
        return f"I see no simple shapes on its {facts.background} background."
    parts = [_plural(count, kind) for kind, count in facts.shapes.items()]
    return f"It shows {_plural(n, 'shape')}: {_join(parts)}."


def _text_text(facts: ImageFacts) -> str:
    if facts.text_lines:
        quoted = " / ".join(facts.text_lines)
        return f'Text I can read: "{quoted}".'
    if facts.detail_used == "low":
        return 'I can read no text at low detail (small text may need detail "high").'
    return "I can read no text."


def _seen_text(facts: ImageFacts) -> str:
    if facts.detail_used == "high":
        return f"seen at high detail, {facts.view_size[0]}x{facts.view_size[1]} in {_plural(facts.tiles, 'tile')}"
    return f"seen at low detail, {facts.view_size[0]}x{facts.view_size[1]}"


def _brightness_text(facts: ImageFacts) -> str:
    b = facts.brightness
    word = "dark" if b < 0.3 else "bright" if b > 0.7 else "medium-bright"
    return f"Overall it is {word} (mean brightness {round(b * 100)}%)."


# --- the analyst ------------------------------------------------------------------------------


class Analyst:
    """Looks at images and answers the last user message about them, deterministically."""

    def __init__(self, *, token_model: str = "gpt-4o", cache_size: int = 32) -> None:
        self.token_model = token_model
        self._cache: OrderedDict[tuple[str, str], ImageFacts] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    # -- looking --

    def look(self, image: Image.Image, *, detail: str, mime: str | None = None, need_text: bool = True) -> ImageFacts:
        """Measure ``image`` as the service would see it at ``detail`` (low, high or auto).

        ``need_text=False`` skips OCR (the costly part on dense images) when the question needs
        no text; a later question that does reads it then, once, and the cache keeps it.
        """
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        width, height = rgb.size
        used = _deps.resolve_detail(detail, width, height, self.token_model)
        key = (hashlib.sha1(rgb.tobytes() + f"{width}x{height}".encode()).hexdigest(), used)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None and (cached.text_read or not need_text):
            return ImageFacts(**{**cached.__dict__, "mime": mime or cached.mime})
        if cached is not None:  # measured before without text: read it now, keep the rest
            facts = ImageFacts(**{**cached.__dict__, "mime": mime or cached.mime})
            facts.text_lines = self._text(rgb, used)
            facts.text_read = True
        else:
            facts = self._measure(rgb, used, mime, need_text=need_text)
        with self._cache_lock:
            self._cache[key] = facts
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return facts

    def _text(self, rgb: Image.Image, detail: str) -> list[str]:
        view, bg_rgb = self._text_view(rgb, detail)
        return _read_text(view, bg_rgb)

    def _text_view(self, rgb: Image.Image, detail: str) -> tuple[Image.Image, np.ndarray | None]:
        """The view OCR reads at ``detail`` and the background colour its crop is cut against."""
        width, height = rgb.size
        low_w, low_h = _fit_within(width, height, LOW_BOX)
        low = rgb if (low_w, low_h) == (width, height) else rgb.resize((low_w, low_h), Image.Resampling.LANCZOS)
        names = _name_colours(np.asarray(low))
        background = _background(names)
        bg_rgb = None if background is None else np.median(np.asarray(low)[names == background], axis=0)
        if detail != "high":
            return low, bg_rgb
        high_w, high_h = _deps.scale_for_high(width, height)
        high = rgb if (high_w, high_h) == (width, height) else rgb.resize((high_w, high_h), Image.Resampling.LANCZOS)
        return high, bg_rgb

    def _measure(self, rgb: Image.Image, detail: str, mime: str | None, *, need_text: bool = True) -> ImageFacts:
        width, height = rgb.size
        low_w, low_h = _fit_within(width, height, LOW_BOX)
        low = rgb if (low_w, low_h) == (width, height) else rgb.resize((low_w, low_h), Image.Resampling.LANCZOS)
        names = _name_colours(np.asarray(low))
        background = _background(names)
        bg_rgb = None
        if background is not None:
            bg_rgb = np.median(np.asarray(low)[names == background], axis=0)
        luminance = np.asarray(low.convert("L"), dtype=np.float32)
        facts = ImageFacts(
            width=width,
            height=height,
            mime=mime,
            detail_used=detail,
            view_size=(low_w, low_h),
            tiles=0,
            colours=_dominant_colours(names),
            shapes=_count_shapes(names, background),
            brightness=float(round(luminance.mean() / 255.0, 4)),
            background=None if background is None else COLOUR_NAMES[background],
        )
        if detail == "high":
            high_w, high_h = _deps.scale_for_high(width, height)
            facts.view_size = (high_w, high_h)
            facts.tiles = math.ceil(high_w / TILE) * math.ceil(high_h / TILE)
            if need_text:
                high = rgb
                if (high_w, high_h) != (width, height):
                    high = rgb.resize((high_w, high_h), Image.Resampling.LANCZOS)
                facts.text_lines = _read_text(high, bg_rgb)
        elif need_text:
            facts.text_lines = _read_text(low, bg_rgb)
        facts.text_read = need_text
        return facts

    # -- answering --

    def answer(
        self,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int | None = None,
        decoded: Sequence[Image.Image] | None = None,
    ) -> str:
        """Answer the last user message from the most recent user turn that carries images.

        ``decoded``: the request's images already decoded, in order of appearance (the server
        passes them so nothing is decoded twice); otherwise data URLs are decoded here.
        ``max_tokens`` does not change the answer; the server cuts it to length.
        """
        question = _last_user_text(messages)
        found = _latest_images(messages, decoded)
        if not found:
            return NO_IMAGE_ANSWER
        intent = detect_intent(question)
        need_text = intent in INTENTS_NEEDING_TEXT
        facts = [self.look(img, detail=detail, mime=mime, need_text=need_text) for img, detail, mime in found]
        if intent == "compare" and len(facts) >= 2:
            return self._compare(facts)
        if len(facts) == 1:
            return f"{IDENTITY} {self._about(facts[0], intent, question)}"
        parts = [f"Image {i}: {self._about(f, intent, question)}" for i, f in enumerate(facts, 1)]
        return f"{IDENTITY} I see {len(facts)} images. " + " ".join(parts)

    def findings(
        self,
        messages: list[dict[str, Any]],
        *,
        decoded: Sequence[Image.Image] | None = None,
        need_text: bool = True,
    ) -> list[ImageFacts]:
        """The facts of the images :meth:`answer` answers about (the latest user turn with images),
        for replies in a requested shape (vizlab.local.structured). Cached like :meth:`look`.

        The server calls this only when the reply is filled from the facts (a response format or
        tool call), which may need the text, so OCR runs unless ``need_text=False``; a plain
        answer (:meth:`answer`) reads text only when its question needs it.
        """
        return [
            self.look(img, detail=detail, mime=mime, need_text=need_text)
            for img, detail, mime in _latest_images(messages, decoded)
        ]

    def _about(self, facts: ImageFacts, intent: str, question: str) -> str:
        size = f"The image is {facts.width}x{facts.height} ({_seen_text(facts)})."
        if intent == "read":
            return _text_text(facts)
        if intent == "colours":
            return f"Dominant colours: {_colours_text(facts)}."
        if intent == "count":
            return self._count(facts, question)
        if intent == "size":
            mime = f" {facts.mime}" if facts.mime else ""
            high = _deps.scale_for_high(facts.width, facts.height)
            low_w, low_h = _fit_within(facts.width, facts.height, LOW_BOX)
            tiles = math.ceil(high[0] / TILE) * math.ceil(high[1] / TILE)
            return (
                f"The image is {facts.width}x{facts.height} pixels{mime}. At detail \"low\" the service sees "
                f"{low_w}x{low_h}; "
                f"at \"high\" it scales it to {high[0]}x{high[1]}, {_plural(tiles, 'tile')} of 512 px."
            )
        colours = f"Dominant colours: {_colours_text(facts)}."
        return " ".join([size, _shapes_text(facts), colours, _text_text(facts), _brightness_text(facts)])

    def _count(self, facts: ImageFacts, question: str) -> str:
        asked = {_SHAPE_WORDS[w] for w in re.findall(r"[a-z]+", question.lower()) if w in _SHAPE_WORDS}
        if facts.background is None:
            return "I can only count simple shapes on a plain background, and this image has none."
        if asked:
            counts = [_plural(facts.shapes.get(kind, 0), kind) for kind in sorted(asked)]
            return f"I count {_join(counts)}."
        if re.search(r"\bshapes?\b|\bobjects?\b|\bthings?\b|\bitems?\b", question.lower()):
            return _shapes_text(facts).replace("It shows", "I count", 1)
        return "I can only count simple shapes (circles, rectangles, triangles). " + _shapes_text(facts)

    def _compare(self, facts: list[ImageFacts]) -> str:
        lines = [f"{IDENTITY} Comparing {len(facts)} images."]
        for i, f in enumerate(facts, 1):
            top = ", ".join(name for name, _ in f.colours[:3])
            shapes = _join([_plural(c, k) for k, c in f.shapes.items()]) or "no simple shapes"
            text = f'text "{" / ".join(f.text_lines)}"' if f.text_lines else "no readable text"
            lines.append(f"Image {i}: {f.width}x{f.height}, mostly {top}; {shapes}; {text}.")
        sizes = {(f.width, f.height) for f in facts}
        lines.append("They are the same size." if len(sizes) == 1 else "They differ in size.")
        main = {f.colours[0][0] for f in facts}
        lines.append(
            f"They share the main colour {main.pop()}." if len(main) == 1 else "Their main colours differ."
        )
        shape_sets = {tuple(sorted(f.shapes.items())) for f in facts}
        lines.append("They have the same shapes." if len(shape_sets) == 1 else "Their shapes differ.")
        texts = {tuple(f.text_lines) for f in facts}
        if any(f.text_lines for f in facts):
            lines.append("Their text is the same." if len(texts) == 1 else "Their text differs.")
        return " ".join(lines)


def _fit_within(width: int, height: int, box: int) -> tuple[int, int]:
    """Scale down (never up) to fit a box x box square, rounding each side like vizlab.tokens."""
    scale = min(1.0, box / max(width, height))
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return " ".join(texts)
    return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _image_parts(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return []
    return [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]


def _latest_images(
    messages: list[dict[str, Any]], decoded: Sequence[Image.Image] | None
) -> list[tuple[Image.Image, str, str | None]]:
    """(image, detail, mime) of the most recent user message that has images."""
    position = 0
    latest: list[tuple[int, dict[str, Any]]] = []
    for message in messages:
        parts = _image_parts(message.get("content"))
        if message.get("role") == "user" and parts:
            latest = [(position + k, p) for k, p in enumerate(parts)]
        position += len(parts)
    found = []
    for index, part in latest:
        spec = part.get("image_url") or {}
        url = spec.get("url", "") if isinstance(spec, dict) else ""
        detail = spec.get("detail") or "auto" if isinstance(spec, dict) else "auto"
        mime = _deps.mime_of_data_url(url)
        if decoded is not None and index < len(decoded):
            image = decoded[index]
        else:
            data, _ = _deps.decode_data_url(url)
            image, mime = _deps.open_checked(data, max_bytes=1 << 62)
        found.append((image, str(detail), mime))
    return found
