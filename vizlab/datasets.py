"""Labelled images made on the fly, plus the sample photos that matplotlib ships.

Offline and deterministic: cards drawn with PIL from a seed in matplotlib's DejaVu Sans, so the
same seed gives the same pixel bytes. Trade-offs: the cards are synthetic so that each answer is
known by construction and scored without a human (they say nothing about real photos); text
codes avoid look-alike glyphs; scoring is strict and mechanical.
Details and an example: docs/internals.md#top-level-modules
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "LabelledImage",
    "COLOURS",
    "SHAPE_KINDS",
    "TASKS",
    "font",
    "text_card",
    "random_code",
    "shapes_card",
    "place_shapes",
    "colour_card",
    "sample_photo",
    "sample_photo_names",
    "sample_path",
    "detail_benchmark",
    "builtin_set",
    "font_face",
    "BUILTIN_CATEGORIES",
]

TASKS = ("read_text", "count_shapes", "dominant_colour", "describe")
SHAPE_KINDS = ("circle", "rectangle", "triangle")

# Named colours as CSS defines them (W3C CSS Color Module Level 3, Recommendation 2011-06-07,
# "extended color keywords"; unchanged in Level 4), so a name means the same RGB to anyone.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
    "pink": (255, 192, 203),
    "brown": (165, 42, 42),
    "grey": (128, 128, 128),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
}
# Spellings a reply may use for the same colour, for scoring.
_COLOUR_SYNONYMS = {"gray": "grey", "violet": "purple", "magenta": "purple"}

# Code alphabet without look-alike glyphs: no B/8, D/O/Q/0, I/L/1, S/5, Z/2, and no G (kept 6).
_CODE_LETTERS = "ACEFHJKMNPRTUVWXY"
_CODE_DIGITS = "34679"

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}

_SAMPLE_DATA = "sample_data"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


# --- the labelled image -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LabelledImage:
    """One image, one question about it, and the answer known by construction."""

    id: str
    image: Image.Image
    task: str  # one of TASKS
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"LabelledImage {self.id!r}: task {self.task!r} is not one of {TASKS}")

    @property
    def scored(self) -> bool:
        """Whether :meth:`score` gives a number for this task (``describe`` is not scored)."""
        return self.task != "describe"

    def score(self, reply_text: str | None) -> float | None:
        """How well ``reply_text`` answers the question: a float in [0, 1], or None if unscored.

        * ``read_text``: anchored and order-aware. The share of the expected tokens that the
          reply gives as whole tokens, in the expected order (longest common subsequence),
          compared case-insensitively without punctuation (``"k7rf-49xm"`` finds ``"K7RF 49XM"``:
          1.0; one of two tokens: 0.5; ``"1127.47"`` does not contain ``127.47``); for a
          numeric answer, times found / (found + other numbers in the reply), so a dump of every
          number on a receipt is not an answer.
        * ``count_shapes``: 1.0 if the number the reply gives is the expected count, else 0.0.
          The number is the one written just before the shape word (``"3 circles"``,
          ``"three red triangles"``); failing that, the first number in the reply. Digits and
          the words zero..twenty count.
        * ``dominant_colour``: 1.0 if the first colour name in the reply (see :data:`COLOURS`,
          with gray/violet/magenta as synonyms) is the expected one, else 0.0.
        * ``describe``: None. Photos carry a reference description in ``answer`` for people to
          read, but no mechanical score; experiment summaries leave them out of accuracy.

        An empty or missing reply scores 0.0 (None for ``describe``).

        >>> item = LabelledImage("t", Image.new("RGB", (8, 8)), "read_text", "?", "K7RF 49XM")
        >>> item.score("The text reads: k7rf, 49-XM."), item.score("K7RF"), item.score("")
        (1.0, 0.5, 0.0)
        """
        if self.task == "describe":
            return None
        if not reply_text:
            return 0.0
        if self.task == "read_text":
            return _score_text(self.answer, reply_text)
        if self.task == "count_shapes":
            got = _count_in_reply(reply_text, str(self.meta.get("kind", "")))
            return 1.0 if got is not None and str(got) == self.answer.strip() else 0.0
        first = _first_colour(reply_text)
        return 1.0 if first == self.answer.strip().lower() else 0.0


def _normalise(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def _join_spaced(tokens: list[str], expected: list[str]) -> list[str]:
    """Consecutive reply tokens that spell one expected token (``4 9 X M`` for ``49XM``) joined."""
    wanted = set(expected)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        joined, k = tokens[i], i + 1
        while joined not in wanted and k < len(tokens) and any(w.startswith(joined + tokens[k]) for w in wanted):
            joined += tokens[k]
            k += 1
        if joined in wanted and k > i + 1:
            out.append(joined)
            i = k
        else:
            out.append(tokens[i])
            i += 1
    return out


def _reply_tokens(reply: str, expected: list[str]) -> list[str]:
    """The reply's whole tokens, normalised; one that joins consecutive expected tokens
    (``"k7rf-49xm"`` for ``K7RF 49XM``) is split back into them, spaced-out letters joined."""
    out: list[str] = []
    raws = [t for t in (_normalise(raw) for raw in re.split(r"[\s,;|/]+", reply)) if t]
    for token in _join_spaced(raws, expected):
        for start in range(len(expected)):
            joined, end = "", start
            while end < len(expected) and len(joined) < len(token):
                joined += expected[end]
                end += 1
            if end - start > 1 and joined == token:
                out += expected[start:end]
                break
        else:
            out.append(token)
    return out


def _in_order(expected: list[str], got: list[str]) -> int:
    """Length of the longest common subsequence: expected tokens found whole and in order."""
    row = [0] * (len(got) + 1)
    for want in expected:
        prev_diag = 0
        for j, token in enumerate(got, 1):
            keep = row[j]
            row[j] = prev_diag + 1 if want == token else max(row[j], row[j - 1])
            prev_diag = keep
    return row[-1]


def _score_text(expected: str, reply: str) -> float:
    """Anchored, order-aware: whole tokens (68 is not in 1968, 127.47 not in 1127.47), in the
    order asked, and a numeric answer padded with other numbers (every number on a receipt)
    loses in proportion.

    >>> _score_text("127.47", "The total is 1127.47"), _score_text("68 86", "1968 and 1986")
    (0.0, 0.0)
    >>> _score_text("127.47", "12.00 3.50 127.47 8.97 115.00"), _score_text("76 27 13", "13 27 76")
    (0.2, 0.3333333333333333)
    """
    tokens = [t for t in (_normalise(tok) for tok in expected.split()) if t]
    if not tokens:
        return 0.0
    got = _reply_tokens(reply, tokens)
    found = _in_order(tokens, got)
    wanted = set(tokens)
    # Other numbers count against an answer that is numbers (a total, chart values, a table).
    extras = sum(1 for t in got if t not in wanted and t.isdigit()) if any(t.isdigit() for t in tokens) else 0
    return found / len(tokens) * (found / (found + extras) if found else 0.0)


_NUMBER = r"(\d+|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"


def _as_int(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _count_in_reply(reply: str, kind: str) -> int | None:
    text = reply.casefold()
    if kind:
        # "3 circles", "three red circles", "3 filled circle(s)": up to two words in between.
        near = re.search(rf"\b{_NUMBER}\s+(?:[a-z\-]+\s+){{0,2}}?{re.escape(kind)}", text)
        if near:
            return _as_int(near.group(1))
    first = re.search(rf"\b{_NUMBER}\b", text)
    return _as_int(first.group(1)) if first else None


def _first_colour(reply: str) -> str | None:
    names = sorted(set(COLOURS) | set(_COLOUR_SYNONYMS), key=len, reverse=True)
    match = re.search(r"\b(" + "|".join(names) + r")\b", reply.casefold())
    if match is None:
        return None
    word = match.group(1)
    return _COLOUR_SYNONYMS.get(word, word)


# --- fonts and text ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mpl_data_dir() -> str:
    """matplotlib's ``mpl-data`` folder, found from its import spec without importing it (~26 MiB)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "vizlab.datasets: matplotlib is not installed, and its mpl-data folder holds the DejaVu "
            "fonts and sample photos vizlab uses; install it with `pip install matplotlib`",
            name="matplotlib",
        )
    return os.path.join(os.path.dirname(spec.origin), "mpl-data")


def _mpl_data_path(*parts: str) -> str:
    return os.path.join(_mpl_data_dir(), *parts)


@functools.lru_cache(maxsize=64)
def font(px: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (shipped by matplotlib) at a size of ``px`` pixels per em.

    A ``px``-pixel font has capitals about 0.73 x ``px`` tall (measured: "H" at 100 px is 73 px
    of ink), so a 12 px font writes 9 px capitals.
    """
    if px < 1:
        raise ValueError(f"font size {px!r} px: give a positive number of pixels")
    return ImageFont.truetype(_mpl_data_path("fonts", "ttf", "DejaVuSans.ttf"), size=px)


def random_code(rng: random.Random, length: int = 4) -> str:
    """A code of uppercase letters and digits, with at least one of each: ``"K7RF"``-like."""
    if length < 2:
        raise ValueError(f"code length {length}: need at least 2 (one letter, one digit)")
    chars = [rng.choice(_CODE_LETTERS), rng.choice(_CODE_DIGITS)]
    chars += [rng.choice(_CODE_LETTERS + _CODE_DIGITS) for _ in range(length - 2)]
    rng.shuffle(chars)
    return "".join(chars)


def text_card(
    text: str,
    *,
    font_px: int,
    size: tuple[int, int] = (1600, 1200),
    origin: tuple[int, int] = (80, 80),
    line_spacing: float = 2.0,
    background: str | tuple[int, int, int] = "white",
    colour: str | tuple[int, int, int] = "black",
) -> Image.Image:
    """``text`` (lines split on ``\\n``) in DejaVu Sans at ``font_px`` px on a plain RGB card.

    Lines start at ``origin`` (top-left, in pixels) and are ``line_spacing x font_px`` apart.
    The default origin keeps short lines inside the first 512-px tile of the image as the
    service scales it, so a result measures font size, not a word cut by a tile edge.

    >>> text_card("K7RF 49XM", font_px=12).size
    (1600, 1200)
    """
    width, height = size
    img = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(img)
    face = font(font_px)
    x, y = origin
    for i, line in enumerate(text.split("\n")):
        top = y + round(i * line_spacing * font_px)
        left, _, right, bottom = draw.textbbox((x, top), line, font=face)
        if right > width or bottom > height:
            raise ValueError(
                f"text_card: line {line!r} at {font_px} px ends at ({right}, {bottom}), outside "
                f"the {width}x{height} card; use a bigger size, a smaller font or shorter lines"
            )
        draw.text((x, top), line, font=face, fill=colour)
    return img


# --- shapes and colours -----------------------------------------------------------------------

# Fill colours for shapes: strong and far from the white background.
_SHAPE_FILLS = ("red", "green", "blue", "orange", "purple", "black", "brown")


def place_shapes(
    counts: dict[str, int],
    *,
    size: tuple[int, int] = (1024, 768),
    seed: int = 0,
    min_px: int | None = None,
    max_px: int | None = None,
    gap: int = 16,
) -> list[dict[str, Any]]:
    """Where :func:`shapes_card` draws each shape: ``[{"kind", "box", "fill"}, ...]``.

    Boxes are (left, top, right, bottom), kept ``gap`` px from each other and from the edges,
    so no two shapes overlap or touch. Placement is rejection sampling from ``seed``.
    """
    unknown = set(counts) - set(SHAPE_KINDS)
    if unknown:
        raise ValueError(f"shapes_card: unknown shape kind(s) {sorted(unknown)}; use {SHAPE_KINDS}")
    if any(n < 0 for n in counts.values()):
        raise ValueError(f"shapes_card: counts must be >= 0, got {counts}")
    width, height = size
    short = min(width, height)
    lo = min_px if min_px is not None else max(12, short // 12)
    hi = max_px if max_px is not None else max(lo, short // 6)
    rng = random.Random(seed)
    kinds = [kind for kind in SHAPE_KINDS for _ in range(counts.get(kind, 0))]
    rng.shuffle(kinds)
    placed: list[dict[str, Any]] = []
    for kind in kinds:
        for _ in range(5000):
            w = rng.randint(lo, hi)
            h = w if kind == "circle" else rng.randint(max(lo, int(w * 0.6)), max(lo, min(hi, int(w * 1.4))))
            if w + 2 * gap > width or h + 2 * gap > height:
                continue
            left = rng.randint(gap, width - gap - w)
            top = rng.randint(gap, height - gap - h)
            box = (left, top, left + w, top + h)
            if all(_apart(box, other["box"], gap) for other in placed):
                placed.append({"kind": kind, "box": box, "fill": rng.choice(_SHAPE_FILLS)})
                break
        else:
            raise ValueError(
                f"shapes_card: could not fit {sum(counts.values())} shapes without overlap on a "
                f"{width}x{height} card; use fewer shapes, a bigger card or a smaller max_px"
            )
    return placed


def _apart(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], fill: Any) -> None:
    left, top, right, bottom = box
    if kind == "circle":
        draw.ellipse(box, fill=fill)
    elif kind == "rectangle":
        draw.rectangle(box, fill=fill)
    else:  # an upward triangle filling its box
        draw.polygon([((left + right) / 2, top), (right, bottom), (left, bottom)], fill=fill)


def shapes_card(
    counts: dict[str, int],
    *,
    size: tuple[int, int] = (1024, 768),
    seed: int = 0,
    min_px: int | None = None,
    max_px: int | None = None,
    background: str = "white",
) -> Image.Image:
    """Non-overlapping filled circles, rectangles and triangles on a plain card.

    ``counts`` says how many of each kind (``{"circle": 3, "triangle": 2}``); the shapes are
    placed and coloured from ``seed`` (see :func:`place_shapes`), so the count is a label by
    construction.

    >>> shapes_card({"circle": 2}, size=(200, 150), seed=1).size
    (200, 150)
    """
    img = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    for shape in place_shapes(counts, size=size, seed=seed, min_px=min_px, max_px=max_px):
        _draw_shape(draw, shape["kind"], shape["box"], COLOURS[shape["fill"]])
    return img


def colour_card(
    colour: str,
    *,
    size: tuple[int, int] = (1024, 768),
    seed: int = 0,
    distractors: int = 6,
    distractor_fraction: float = 0.1,
) -> Image.Image:
    """A card filled with the named ``colour``, with small shapes of other colours on it.

    The distractors together cover about ``distractor_fraction`` of the card at most, so the
    named colour stays dominant by a wide margin.

    >>> colour_card("red", size=(64, 48)).getpixel((0, 0))
    (255, 0, 0)
    """
    key = colour.strip().lower()
    key = _COLOUR_SYNONYMS.get(key, key)
    if key not in COLOURS:
        raise ValueError(f"colour_card: unknown colour {colour!r}; use one of {sorted(COLOURS)}")
    img = Image.new("RGB", size, COLOURS[key])
    if distractors <= 0:
        return img
    width, height = size
    # Each distractor's box is at most distractor_fraction / distractors of the card.
    side = max(2, int(math.sqrt(width * height * distractor_fraction / distractors)))
    rng = random.Random(seed)
    others = [name for name in COLOURS if name != key]
    kinds = {kind: 0 for kind in SHAPE_KINDS}
    for _ in range(distractors):
        kinds[rng.choice(SHAPE_KINDS)] += 1
    draw = ImageDraw.Draw(img)
    try:
        shapes = place_shapes(
            kinds, size=size, seed=seed, min_px=max(2, side // 2), max_px=side, gap=max(2, side // 8)
        )
    except ValueError:
        return img  # too small a card for distractors: the plain colour is still a valid card
    for shape in shapes:
        _draw_shape(draw, shape["kind"], shape["box"], COLOURS[rng.choice(others)])
    return img


# --- sample photos ----------------------------------------------------------------------------


def sample_photo_names() -> list[str]:
    """Names of the images in matplotlib's bundled sample data (``grace_hopper.jpg``, ...)."""
    folder = _mpl_data_path(_SAMPLE_DATA)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if n.lower().endswith(_IMAGE_SUFFIXES))


def sample_path(name: str) -> Path:
    """The path of a sample file matplotlib ships in ``mpl-data/sample_data``, without importing it.

    >>> sample_path("grace_hopper.jpg").name
    'grace_hopper.jpg'
    """
    folder = _mpl_data_path(_SAMPLE_DATA)
    path = Path(folder, name)
    if os.path.basename(name) != name or not path.is_file():
        try:
            available = sorted(os.listdir(folder))
        except OSError:
            available = []
        raise FileNotFoundError(
            f"sample_path: no sample file {name!r} in {folder}; available: "
            f"{', '.join(available) or '(none: the folder is missing)'}. Give one of those names, "
            "or reinstall matplotlib (`pip install --force-reinstall matplotlib`) if the folder is empty"
        )
    return path


def sample_photo(name: str = "grace_hopper.jpg") -> Image.Image:
    """A sample image that matplotlib ships (offline), decoded and loaded, in RGB.

    Transparent images are flattened onto white. Unknown names raise ``FileNotFoundError``
    listing the names that exist.

    >>> sample_photo().size
    (512, 600)
    """
    names = sample_photo_names()
    if name not in names:
        raise FileNotFoundError(
            f"sample_photo: no sample image {name!r} in matplotlib's sample data; "
            f"available: {', '.join(names) or '(none found)'}"
        )
    with Image.open(_mpl_data_path(_SAMPLE_DATA, name)) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "P"):
            rgba = img.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return img.convert("RGB")


# Reference descriptions for the photos the benchmark uses (not scored; for people to read).
_PHOTO_DESCRIPTIONS = {
    "grace_hopper.jpg": "a head-and-shoulders portrait of a woman (Grace Hopper) in a naval uniform",
}


# --- the benchmark ----------------------------------------------------------------------------

# A 1600x1200 card is 1024x768 at detail high (two by two 512-px tiles, scale 0.64) and
# 512x384 at low (scale 0.32). Measured on the built-in backend's analyst (seed 0): 12 px text
# is unreadable at low and read in full at high; 16 px is partly read at low; 24 and 48 px are
# read at both; 8 px (5 px after scaling) is mostly lost even at high: high has limits too.
_TEXT_CARD_SIZE = (1600, 1200)
_SHAPE_COUNTS = (
    {"circle": 3, "rectangle": 2},
    {"triangle": 4, "circle": 1},
    {"rectangle": 5, "triangle": 2, "circle": 2},
)
_BENCH_COLOURS = ("red", "blue", "green")


def detail_benchmark(
    *,
    font_sizes: tuple[int, ...] = (8, 12, 16, 24, 48),
    seed: int = 0,
    include_photos: bool = True,
    cards_per_size: int = 1,
    lines: int = 3,
    include_shapes: bool = True,
    include_colours: bool = True,
) -> list[LabelledImage]:
    """Labelled images that separate ``detail: low`` from ``high``, deterministic in ``seed``.

    * ``read_text``: for each font size, ``cards_per_size`` 1600x1200 cards with ``lines``
      lines of two random 4-character codes each (``"K7RF 49XM"``); the answer is all codes in
      reading order, scored by the fraction found. 12-16 px need ``high``; 8 px defeats even
      ``high`` on the local analyst; 24 px and up need neither.
    * ``count_shapes``: three 1024x768 cards of large shapes; the question asks for one kind.
      Large shapes are countable at ``low``: a control where ``high`` should not help.
    * ``dominant_colour``: three colour cards, another control.
    * ``describe`` (``include_photos``): matplotlib's ``grace_hopper.jpg`` with a reference
      description that is not scored (accuracy is NaN for it in experiment tables).

    >>> [x.id for x in detail_benchmark(font_sizes=(8,), include_photos=False)][:2]
    ['text-08px-0', 'shapes-0']
    """
    rng = random.Random(seed)
    items: list[LabelledImage] = []
    for px in font_sizes:
        for n in range(cards_per_size):
            rows = [f"{random_code(rng)} {random_code(rng)}" for _ in range(lines)]
            text = "\n".join(rows)
            items.append(
                LabelledImage(
                    id=f"text-{px:02d}px-{n}",
                    image=text_card(text, font_px=px, size=_TEXT_CARD_SIZE),
                    task="read_text",
                    question="What text is written in this image? Reply with the text exactly.",
                    answer=" ".join(rows),
                    meta={"font_px": px, "lines": lines, "size": _TEXT_CARD_SIZE},
                )
            )
    if include_shapes:
        for n, counts in enumerate(_SHAPE_COUNTS):
            kind = next(iter(counts))
            shape_seed = seed * 1000 + n
            items.append(
                LabelledImage(
                    id=f"shapes-{n}",
                    image=shapes_card(counts, seed=shape_seed),
                    task="count_shapes",
                    question=f"How many {kind}s are in this image? Answer with a number.",
                    answer=str(counts[kind]),
                    meta={"kind": kind, "counts": dict(counts), "size": (1024, 768), "seed": shape_seed},
                )
            )
    if include_colours:
        for n, name in enumerate(_BENCH_COLOURS):
            colour_seed = seed * 1000 + n
            items.append(
                LabelledImage(
                    id=f"colour-{name}",
                    image=colour_card(name, seed=colour_seed),
                    task="dominant_colour",
                    question="What is the dominant colour of this image? Answer with one colour name.",
                    answer=name,
                    meta={"rgb": COLOURS[name], "size": (1024, 768), "seed": colour_seed},
                )
            )
    if include_photos:
        for name, description in _PHOTO_DESCRIPTIONS.items():
            photo = sample_photo(name)
            items.append(
                LabelledImage(
                    id=f"photo-{name.rsplit('.', 1)[0]}",
                    image=photo,
                    task="describe",
                    question="Describe this image in one sentence.",
                    answer=description,
                    meta={"source": f"matplotlib sample_data/{name}", "size": photo.size},
                )
            )
    return items


# --- the built-in set: >= 200 labelled items in categories -------------------------------------

_FACES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")
BUILTIN_CATEGORIES = ("receipts", "signs", "screenshots", "tables", "charts", "counting", "colours", "photos")


@functools.lru_cache(maxsize=256)
def font_face(name: str, px: int) -> ImageFont.FreeTypeFont:
    """One of the DejaVu faces matplotlib ships (``DejaVuSerif.ttf``...) at ``px`` pixels per em."""
    return ImageFont.truetype(_mpl_data_path("fonts", "ttf", name), size=px)


def _grey(level: int) -> tuple[int, int, int]:
    return (level, level, level)


def _text_item(item_id: str, img: Image.Image, question: str, answer: str, category: str,
               **meta: Any) -> LabelledImage:  # fmt: skip
    return LabelledImage(item_id, img, "read_text", question, answer, {"category": category, **meta})


def _receipt(rng: random.Random, n: int) -> LabelledImage:
    px = rng.choice((10, 12, 14, 16, 20))
    face = font_face("DejaVuSansMono.ttf", px)
    lines, total = [], 0
    for _ in range(rng.randint(3, 6)):
        cents = rng.randint(100, 4999)
        total += cents
        lines.append(f"{random_code(rng, 4):<10}{cents / 100:>8.2f}")
    total_text = f"{total / 100:.2f}"
    lines += ["-" * 18, f"{'TOTAL':<10}{total_text:>8}"]
    ink = rng.choice((0, 60, 110))
    img = Image.new("RGB", (520, 80 + int(len(lines) * px * 1.8)), (250, 248, 240))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((30, 30 + int(i * px * 1.8)), line, font=face, fill=_grey(ink))
    return _text_item(f"receipt-{n:03d}", img, "What is the TOTAL on this receipt? Reply with the number.", total_text,
                      "receipts", font_px=px, ink=ink)  # fmt: skip


def _sign(rng: random.Random, n: int) -> LabelledImage:
    px = rng.choice((14, 20, 28, 40, 64))
    face = font_face(rng.choice(_FACES), px)
    words = f"{random_code(rng)} {random_code(rng)}"
    background = rng.choice(((30, 90, 40), (20, 40, 120), (200, 200, 200), (250, 250, 250)))
    contrast = rng.choice(("high", "low"))
    light = sum(background) > 450
    ink = (0, 0, 0) if light else (255, 255, 255)
    if contrast == "low":
        ink = tuple(int(b * 0.6 + i * 0.4) for b, i in zip(background, ink))  # type: ignore[assignment]
    img = Image.new("RGB", (900, 420), (120, 120, 120))
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 60, 860, 360), fill=background)
    draw.text((80, 210 - px // 2), words, font=face, fill=ink)
    return _text_item(f"sign-{n:03d}", img, "What does the sign say? Reply with the text exactly.", words, "signs",
                      font_px=px, contrast=contrast)  # fmt: skip


def _screenshot(rng: random.Random, n: int) -> LabelledImage:
    px = rng.choice((9, 11, 13, 16))
    face = font_face("DejaVuSans.ttf", px)
    img = Image.new("RGB", (1280, 800), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 1280, 36), fill=(50, 50, 60))
    draw.text((14, 10), "Orders - Admin console", font=font_face("DejaVuSans.ttf", 14), fill=(230, 230, 230))
    for i, word in enumerate(("File", "Edit", "View", "Help")):
        draw.text((14 + i * 70, 48), word, font=face, fill=(40, 40, 40))
    code = random_code(rng, 6)
    y = rng.randint(120, 700)
    x = rng.randint(40, 900)
    draw.text((x, y), f"Order ID: {code}", font=face, fill=(20, 20, 20))
    for _ in range(6):
        left, top = rng.randint(0, 1100), rng.randint(90, 760)
        draw.rectangle((left, top, left + 120, top + 20), outline=(200, 200, 210))
    return _text_item(f"screenshot-{n:03d}", img, "What is the Order ID shown on this screen? Reply with it.", code,
                      "screenshots", font_px=px)  # fmt: skip


def _table(rng: random.Random, n: int) -> LabelledImage:
    px = rng.choice((11, 13, 16, 20))
    face = font_face(rng.choice(("DejaVuSans.ttf", "DejaVuSansMono.ttf")), px)
    rows, cols = 3, 3
    values = [[str(rng.randint(10, 9999)) for _ in range(cols)] for _ in range(rows)]
    cell_w, cell_h = px * 6, px * 2
    img = Image.new("RGB", (60 + cols * cell_w, 60 + rows * cell_h), "white")
    draw = ImageDraw.Draw(img)
    for r in range(rows):
        for c in range(cols):
            box = (30 + c * cell_w, 30 + r * cell_h, 30 + (c + 1) * cell_w, 30 + (r + 1) * cell_h)
            draw.rectangle(box, outline=(120, 120, 120))
            draw.text((box[0] + px // 2, box[1] + px // 2), values[r][c], font=face, fill="black")
    answer = " ".join(v for row in values for v in row)
    return _text_item(f"table-{n:03d}", img, "Read every number in this table, row by row.", answer, "tables",
                      font_px=px)  # fmt: skip


def _chart(rng: random.Random, n: int) -> LabelledImage:
    px = rng.choice((10, 12, 16, 22))
    face = font_face("DejaVuSans.ttf", px)
    bars = [rng.randint(5, 95) for _ in range(rng.randint(3, 5))]
    img = Image.new("RGB", (800, 500), "white")
    draw = ImageDraw.Draw(img)
    draw.line((60, 440, 760, 440), fill="black", width=2)
    width = 600 // len(bars)
    for i, value in enumerate(bars):
        left = 90 + i * width
        top = 440 - value * 4
        draw.rectangle((left, top, left + width // 2, 440), fill=COLOURS[_SHAPE_FILLS[i % len(_SHAPE_FILLS)]])
        draw.text((left, top - px - 6), str(value), font=face, fill="black")
    return _text_item(f"chart-{n:03d}", img, "What values are written above the bars, left to right?",
                      " ".join(str(v) for v in bars), "charts", font_px=px)  # fmt: skip


def _counting(rng: random.Random, n: int) -> LabelledImage:
    kind = SHAPE_KINDS[n % len(SHAPE_KINDS)]
    count = rng.randint(1, 9)
    others = {k: rng.randint(0, 3) for k in SHAPE_KINDS if k != kind}
    small = n % 2 == 1  # half the cards have small shapes: a reason to look closer
    size = (1024, 768)
    seed = 5000 + n
    counts = {kind: count, **others}
    img = shapes_card(counts, size=size, seed=seed, min_px=14 if small else None, max_px=30 if small else None)
    return LabelledImage(f"count-{n:03d}", img, "count_shapes", f"How many {kind}s are in this image? Answer with a number.",
                         str(count), {"kind": kind, "counts": counts, "category": "counting", "small": small})  # fmt: skip


def _colour(rng: random.Random, n: int) -> LabelledImage:
    names = [c for c in COLOURS if c not in ("white",)]
    name = names[n % len(names)]
    img = colour_card(name, size=(640, 480), seed=7000 + n, distractors=rng.randint(0, 8))
    return LabelledImage(f"colour-{n:03d}", img, "dominant_colour",
                         "What is the dominant colour of this image? Answer with one colour name.", name,
                         {"category": "colours", "rgb": COLOURS[name]})  # fmt: skip


def _photo_text(rng: random.Random, n: int, photos: list[Image.Image]) -> LabelledImage:
    base = photos[n % len(photos)].copy()
    px = rng.choice((12, 16, 24, 36))
    face = font_face("DejaVuSans-Bold.ttf", px)
    code = random_code(rng)
    draw = ImageDraw.Draw(base)
    w, h = base.size
    x, y = rng.randint(5, max(6, w - px * 4)), rng.randint(5, max(6, h - px * 2))
    left, top, right, bottom = draw.textbbox((x, y), code, font=face)
    draw.rectangle((left - 4, top - 4, right + 4, bottom + 4), fill="white")
    draw.text((x, y), code, font=face, fill="black")
    return _text_item(f"photo-{n:03d}", base, "What is written on the label in this photo?", code, "photos",
                      font_px=px)  # fmt: skip


def builtin_set(*, per_category: int = 25, seed: int = 0, categories: tuple[str, ...] = BUILTIN_CATEGORIES) -> list[LabelledImage]:
    """The built-in labelled set: ``per_category`` items in each of :data:`BUILTIN_CATEGORIES`
    (8 x 25 = 200 by default), drawn on the fly and deterministic in ``seed``.

    Text at many sizes (9-64 px), four DejaVu faces and two contrasts (receipts, signs,
    screenshots, tables with numbers, bar charts with their values written on); shapes to count
    (half of them small); dominant colours with distractors; and labels placed on the real photos
    matplotlib ships. Text is scored by whole expected tokens found in order (partial; see
    :meth:`LabelledImage.score`); counts
    and colours are right or wrong (binary). Every item's ``meta["category"]`` names its category.

    >>> items = builtin_set(per_category=2)
    >>> len(items), sorted({i.meta["category"] for i in items})[:3]
    (16, ['charts', 'colours', 'counting'])
    """
    unknown = set(categories) - set(BUILTIN_CATEGORIES)
    if unknown:
        raise ValueError(f"builtin_set: unknown categories {sorted(unknown)}; use {BUILTIN_CATEGORIES}")
    if per_category < 1:
        raise ValueError(f"builtin_set: per_category={per_category} must be >= 1")
    makers: dict[str, Any] = {"receipts": _receipt, "signs": _sign, "screenshots": _screenshot, "tables": _table,
                              "charts": _chart, "counting": _counting, "colours": _colour}  # fmt: skip
    items: list[LabelledImage] = []
    for category in categories:
        rng = random.Random(f"{seed}-{category}")
        if category == "photos":
            photos = [sample_photo(p) for p in sample_photo_names() if p.endswith((".jpg", ".png"))]
            photos = [p for p in photos if min(p.size) >= 300] or [sample_photo()]
            items += [_photo_text(rng, n, photos) for n in range(per_category)]
        else:
            items += [makers[category](rng, n) for n in range(per_category)]
    return items
