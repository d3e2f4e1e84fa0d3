"""The analyst's answer: the question's intent, the facts it needs, and honest wording.

Detail-aware as the service is: ``low`` sees the 512x512 view, ``high`` the view scaled as the
service scales it for tiles, so small text only ``high`` can read. Answers use only the messages
sent (the API is stateless) and say they come from vizlab's local analyst, never from the deployment's model.
Facts are cached per (pixels, detail): five questions about one image pay for OCR once.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
from PIL import Image

from vizlab.geometry import fit_in_box
from vizlab.local import _deps
from vizlab.local.analyst.ocr import read_text_boxes, read_text_scored
from vizlab.local.analyst.vision import (
    COLOUR_NAMES,
    LOW_BOX,
    TILE,
    ImageFacts,
    count_shapes,
    dominant_colours,
    name_colours,
    plain_background,
)

__all__ = ['Analyst', 'IDENTITY', 'NO_IMAGE_ANSWER']

IDENTITY = "I am vizlab's built-in local analyst, not the deployment's model."
NO_IMAGE_ANSWER = (
    "I don't see an image in this conversation. The Chat Completions API is stateless: "
    "send the image again with your question."
)


# --- intents ----------------------------------------------------------------------------------

# Checked in order; colours and counts come before reading, so "What colour is the sign? One
# word." asks for a colour, and the answer-format instructions are cut off before matching.
_INTENTS = (
    ("compare", re.compile(r"\b(compare|comparison|differen\w*|differ|same|similar|versus|vs\.?|both)\b")),
    ("colours", re.compile(r"\b(colou?rs?|colou?red|hues?|shades?|tints?)\b")),
    ("count_text", re.compile(r"\b(how many|count|number of)\b.*\b(words?|lines?|letters?|characters?)\b")),
    ("count", re.compile(r"\b(how many|count|number of)\b")),
    ("read", re.compile(r"\b(read|reads|say|says|said|text|ocr|written|write|words?|transcribe|label\w*|signs?|"
                        r"caption|title|headline|heading|letters?|spell\w*)\b")),
    ("size", re.compile(r"\b(size|dimensions?|resolution|how big|how large|pixels?|width|height|wide|tall)\b")),
)
# How to answer, not what about: "One word.", "in a few words", "answer with a single word",
# "say yes or no", "reply in one sentence". Cut before the intents are matched.
_ANSWER_FORMAT = re.compile(
    r"\b(?:(?:answer|reply|respond)(?: \w+)?\s+)?(?:in |with |using )?(?:just |only )?(?:one|a|an|single|few|two|three|"
    r"four|five|\d+)(?: single| few)? (?:word|words|sentence|sentences|line|lines)\b(?: or (?:less|fewer))?"
    r"|\b(?:say|answer|reply) (?:yes or no|only|just)\b"
)
_SHAPE_WORDS = {"circle": "circle", "circles": "circle", "round": "circle", "dot": "circle", "dots": "circle",
                "rectangle": "rectangle", "rectangles": "rectangle", "square": "rectangle", "squares": "rectangle",
                "box": "rectangle", "boxes": "rectangle", "triangle": "triangle", "triangles": "triangle"}


# The answers that quote the text read (describe, read, compare); colours, counts and sizes do not.
INTENTS_NEEDING_TEXT = frozenset({"describe", "read", "compare", "count_text"})


def detect_intent(question: str) -> str:
    """``describe`` unless the question asks to compare, read, name colours, count or measure.

    >>> detect_intent("What does the sign say?")
    'read'
    """
    q = _ANSWER_FORMAT.sub(" ", question.lower())
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


def _where(box: tuple[float, float, float, float, str, float], width: int, height: int) -> str:
    """Which third of the view, down and across, a box's middle falls in.

    >>> _where((10, 400, 30, 500, "x", 1.0), 600, 900)
    'top right'
    """
    row = ("top", "middle", "bottom")[min(2, int(3 * (box[0] + box[2]) / 2 / max(1, height)))]
    column = ("left", "centre", "right")[min(2, int(3 * (box[1] + box[3]) / 2 / max(1, width)))]
    return f"{row} {column}"


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
            self._set_text(facts, self._text(rgb, used))
            facts.text_read = True
        else:
            facts = self._measure(rgb, used, mime, need_text=need_text)
        with self._cache_lock:
            self._cache[key] = facts
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return facts

    def layout(self, image: Image.Image, *, detail: str) -> list[tuple[str, str]]:
        """(where, text) of each text box OCR finds in ``image`` at ``detail``, top to bottom: where
        is "top left", "middle centre", "bottom right", ... (thirds of the view, by the box's middle).
        """
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        used = _deps.resolve_detail(detail, rgb.width, rgb.height, self.token_model)
        view, bg_rgb = self._text_view(rgb, used)
        boxes = sorted(read_text_boxes(view, bg_rgb), key=lambda b: (round((b[0] + b[2]) / 2 / 8), b[1]))
        return [(_where(b, view.width, view.height), b[4]) for b in boxes]

    def _text(self, rgb: Image.Image, detail: str) -> list[tuple[str, float]]:
        view, bg_rgb = self._text_view(rgb, detail)
        return read_text_scored(view, bg_rgb)

    @staticmethod
    def _set_text(facts: ImageFacts, scored: list[tuple[str, float]]) -> None:
        facts.text_lines = [text for text, _ in scored]
        facts.text_confidence = [score for _, score in scored]

    def _text_view(self, rgb: Image.Image, detail: str) -> tuple[Image.Image, np.ndarray | None]:
        """The view OCR reads at ``detail`` and the background colour its crop is cut against."""
        width, height = rgb.size
        low_w, low_h = fit_in_box(width, height, LOW_BOX)
        low = rgb if (low_w, low_h) == (width, height) else rgb.resize((low_w, low_h), Image.Resampling.LANCZOS)
        names = name_colours(np.asarray(low))
        background = plain_background(names)
        bg_rgb = None if background is None else np.median(np.asarray(low)[names == background], axis=0)
        if detail not in ("high", "original"):  # original is read like high (the analyst's own view)
            return low, bg_rgb
        high_w, high_h = _deps.scale_for_high(width, height)
        high = rgb if (high_w, high_h) == (width, height) else rgb.resize((high_w, high_h), Image.Resampling.LANCZOS)
        return high, bg_rgb

    def _measure(self, rgb: Image.Image, detail: str, mime: str | None, *, need_text: bool = True) -> ImageFacts:
        width, height = rgb.size
        low_w, low_h = fit_in_box(width, height, LOW_BOX)
        low = rgb if (low_w, low_h) == (width, height) else rgb.resize((low_w, low_h), Image.Resampling.LANCZOS)
        names = name_colours(np.asarray(low))
        background = plain_background(names)
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
            colours=dominant_colours(names),
            shapes=count_shapes(names, background),
            brightness=float(round(luminance.mean() / 255.0, 4)),
            background=None if background is None else COLOUR_NAMES[background],
        )
        if detail in ("high", "original"):
            high_w, high_h = _deps.scale_for_high(width, height)
            facts.view_size = (high_w, high_h)
            facts.tiles = math.ceil(high_w / TILE) * math.ceil(high_h / TILE)
            if need_text:
                high = rgb
                if (high_w, high_h) != (width, height):
                    high = rgb.resize((high_w, high_h), Image.Resampling.LANCZOS)
                self._set_text(facts, read_text_scored(high, bg_rgb))
        elif need_text:
            self._set_text(facts, read_text_scored(low, bg_rgb))
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
        for replies in a requested shape (vizlab.local.replies.structured). Cached like :meth:`look`.

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
        if intent == "count_text":
            words = sum(len(line.split()) for line in facts.text_lines)
            return f"I read {_plural(words, 'word')} in {_plural(len(facts.text_lines), 'line')}. {_text_text(facts)}"
        if intent == "size":
            mime = f" {facts.mime}" if facts.mime else ""
            high = _deps.scale_for_high(facts.width, facts.height)
            low_w, low_h = fit_in_box(facts.width, facts.height, LOW_BOX)
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
