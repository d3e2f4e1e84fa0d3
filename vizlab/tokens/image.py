"""Token counts for images, text and whole requests, computed offline by the registry's rules.

Every model fact (image rule, encoding, caching rule, limits) comes from :mod:`vizlab.models`, which
cites its source and date for each; the arithmetic on sizes is :mod:`vizlab.geometry`. This module
applies them. Rule revisions are dated profiles (``rules=None``: the newest guide revision,
:data:`vizlab.models.NEWEST`; ``rules="2025-08"``; ``rules="azure-2023-preview"``).

* **Tile rule** (gpt-4o, gpt-4.1, gpt-4o-mini, gpt-5, gpt-5.1, o1, o3...). ``low`` costs ``base``.
  ``high`` (and ``auto``): fit 2048x2048, scale the short side down to 768 and **round down the
  other dimension** (newest revision; 1000x1334 -> 768x1024 -> 4 tiles = 765 on gpt-4o; the 2025-08
  profile rounds to nearest: 768x1025 -> 6 tiles = 1105), then ``base + per_tile * tiles``.
* **Patch rule** (gpt-4.1-mini, gpt-5.2, gpt-5.4 (+ -mini/-nano), gpt-5.5, gpt-5.6, gpt-5-mini...).
  Fit the detail's box, shrink to the detail's patch budget by the guide's formula, count 32-px
  patches, multiply and round up. Budgets are per detail (gpt-5.4: low 6,144, high 2,500,
  original 10,000); ``auto`` sizes as the family's table says (gpt-5.4: as high; gpt-5.5: as original).

**More pixels can cost fewer tokens.** A 700x2000 image keeps its size (2x4 = 8 tiles = 1445 tokens
on gpt-4o) while a 1000x2000 image shrinks to 768x1536 (2x3 = 6 tiles = 1105 tokens).

Trade-offs this module makes, on purpose:

* ``detail="auto"`` follows :data:`AUTO_POLICY`, by default ``"guide"``: what the guide states per
  family (tile models: as high; patch models: their table's ``auto`` row). ``"high"``, ``"low"`` and
  ``"by_size"`` (low when the image fits 512x512) stay available per call or globally.
* Never upscaling: the guide says so ("Smaller images are not enlarged"); a forum measurement (128x64
  on gpt-4o: high 267 vs low 97 prompt tokens, one 170-token tile apart) agrees.
* An http(s) image URL has no size offline: it is counted at the family's **upper bound** for its
  detail and flagged (:attr:`RequestEstimate.bounded`, ``explain()``), unless ``image_sizes`` says
  its size. An estimate never undercounts silently.
* Prompt caching: the estimate reports how many prompt tokens the family's caching rule could cache
  (:attr:`RequestEstimate.cacheable_tokens`) and its cost assumes no cache hit; on families that
  bill cache writes (gpt-5.6) that prefix is priced at the write rate. Caching never makes the
  estimate low.
* Request overhead follows the OpenAI cookbook ("How to count tokens with tiktoken", 2024-2025):
  3 tokens per message, 1 per name, 3 priming the reply; this reproduces the forum's gpt-4o
  measurements exactly (see tests). Non-string message fields other than ``content`` are not counted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol

import tiktoken

from vizlab import geometry, models
from vizlab.errors import (
    ConversationError,
    DataURLError,
    ImageError,
    UnknownDetailError,
    UnknownModelError,
    URLSchemeError,
    VizlabError,
)
from vizlab.models import Cost, ImageRule, PatchRule, TileRule
from vizlab.textcount import ENCODINGS, build_encoding
from vizlab.usage import Usage, field_of

__all__ = [
    "TileRule",
    "PatchRule",
    "ImageRule",
    "AUTO_POLICY",
    "AUTO_POLICIES",
    "DETAILS",
    "register_model",
    "known_models",
    "match_model",
    "rule_for",
    "encoding_name_for",
    "set_auto_policy",
    "scale_for_high",
    "resolve_detail",
    "image_tokens",
    "image_token_bound",
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

# The tile rule's sizes (every tile family states the same; vizlab.models holds them per rule).
MAX_BOX = 2048
SHORT_SIDE = 768
TILE = 512

DETAILS = models.DETAILS
AUTO_POLICIES = ("guide", "high", "by_size", "low")
# "guide": auto resolved as the registry states per family (the guide's table). Settable.
AUTO_POLICY = "guide"
# The "by_size" policy's threshold: the low-detail image is 512x512 (OpenAI vision guide).
BY_SIZE_LOW_MAX = 512
_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")


def register_model(name: str, rule: ImageRule, *, encoding: str = "o200k_base") -> None:
    """Add (or replace) a model counted like gpt-4o but with ``rule`` and ``encoding``.

    ``register_model("my-vision-deployment", rule_for("gpt-4o"))`` makes an Azure deployment name
    count like gpt-4o. For every other fact too, use ``vizlab.models.register(name, like="gpt-4o")``.
    """
    if not isinstance(rule, (TileRule, PatchRule)):
        raise TypeError(f"rule for {name!r} must be a TileRule or PatchRule, not {type(rule).__name__}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding {encoding!r} for {name!r} is not one of {sorted(ENCODINGS)}")
    base = models.lookup("gpt-4o")
    # Only the image rule and encoding are stated: limits 0 = "not listed" (the backend then uses
    # its defaults and says so); prices stay gpt-4o's (set others with PriceTable.set).
    models.register(name, info=replace(base, encoding=encoding, rules={models.NEWEST: rule}, aliases=(),
                                       context_window=0, max_output=0, max_input=None))  # fmt: skip


def known_models() -> list[str]:
    """Every model name the registry knows (families and aliases), sorted."""
    return models.known_names()


def match_model(model: str, names: Mapping[str, object] | list[str]) -> str | None:
    """The entry of ``names`` that ``model`` names: exact, as a dated snapshot, or via its family.

    Never a bare prefix (``o1-pro`` does not match ``o1``).

    >>> match_model("gpt-4o-mini-2024-07-18", ["gpt-4o", "gpt-4o-mini"])
    'gpt-4o-mini'
    >>> match_model("o1-pro", ["o1"]) is None
    True
    """
    if not isinstance(model, str):
        return None
    key = model.strip().lower()
    if key in names:
        return key
    snap = _SNAPSHOT.match(key)
    if snap and snap.group("base") in names:
        return snap.group("base")
    family = models.canonical_name(key)
    return family if family is not None and family in names else None


def rule_for(model: str, rules: str | None = None) -> ImageRule:
    """The image rule for ``model`` in revision ``rules`` (None: newest), from the registry.

    >>> rule_for("gpt-4o-2024-08-06").per_tile
    170
    """
    return models.lookup(model).image_rule(rules)


def encoding_name_for(model: str) -> str:
    """``"o200k_base"`` or ``"cl100k_base"``: the text encoding ``model`` counts with."""
    return models.lookup(model).encoding


def set_auto_policy(policy: str) -> str:
    """Set the global :data:`AUTO_POLICY` (``"guide"``, ``"high"``, ``"by_size"``, ``"low"``); return the old one."""
    global AUTO_POLICY
    _check_policy(policy)
    old, AUTO_POLICY = AUTO_POLICY, policy
    return old


def _check_policy(policy: str) -> None:
    if policy not in AUTO_POLICIES:
        raise UnknownDetailError(
            f"auto_policy {policy!r} is not one of {', '.join(AUTO_POLICIES)}; 'guide' sizes auto as the "
            "guide states per family, 'high' as high, 'by_size' as low when the image fits 512x512",
            detail=policy,
        )


# --- scaling ----------------------------------------------------------------------------------


def _check_size(width: int, height: int) -> None:
    try:
        geometry.check_size(width, height)
    except ValueError as e:
        raise ImageError(str(e), source=f"{width!r}x{height!r}") from e


def _tile_rule(rule: ImageRule, model: str) -> TileRule:
    if not isinstance(rule, TileRule):
        raise VizlabError(f"model {model!r} uses a patch rule; it has no tile scaling")
    return rule


def scale_for_high(width: int, height: int, *, model: str = "gpt-4o", rules: str | None = None) -> tuple[int, int]:
    """The size a tile-rule model tiles at ``detail="high"``. Never upscales.

    Fit in 2048x2048 (round to nearest), then, if the short side is over 768, scale it to 768 and
    round the other side as the revision says (newest: down).

    >>> scale_for_high(1000, 1334)
    (768, 1024)
    >>> scale_for_high(1000, 1334, rules="2025-08")
    (768, 1025)
    >>> scale_for_high(512, 512)
    (512, 512)
    """
    _check_size(width, height)
    rule = _tile_rule(rule_for(model, rules), model)
    fw, fh = geometry.fit_in_box(width, height, rule.box)
    return geometry.scale_short_side(fw, fh, rule.short_side, rounding=rule.short_rounding)


def resolve_detail(
    width: int,
    height: int,
    detail: str = "auto",
    *,
    model: str = "gpt-4o",
    auto_policy: str | None = None,
    rules: str | None = None,
) -> str:
    """``"low"``, ``"high"`` or ``"original"``: the detail vizlab sizes a requested ``detail`` as.

    ``auto`` follows ``auto_policy`` if given, else :data:`AUTO_POLICY` (default: the family's own
    auto row in the guide). ``original`` only where the family supports it.

    >>> resolve_detail(400, 300, "auto", auto_policy="by_size")
    'low'
    >>> resolve_detail(4000, 3000, "auto", model="gpt-5.5")
    'original'
    """
    _check_size(width, height)
    rule = rule_for(model, rules)  # unknown models fail here, with the list of known ones
    return _resolve(rule, model, detail, auto_policy, (width, height))


def _resolve(rule: ImageRule, model: str, detail: Any, auto_policy: str | None, size: tuple[int, int] | None) -> str:
    if detail not in DETAILS:
        raise UnknownDetailError(
            f"detail {detail!r} is not one of {', '.join(repr(d) for d in rule.details)} (for {model}); "
            "pass one of these (the service default is 'auto')",
            detail=detail,
        )
    if detail not in rule.details:
        raise UnknownDetailError(
            f"detail {detail!r} is not supported by {model} ({rule.name}); it takes "
            f"{', '.join(repr(d) for d in rule.details)} (OpenAI 'Images and vision' guide, Model sizing behavior)",
            detail=detail,
        )
    if detail != "auto":
        return str(detail)
    policy = AUTO_POLICY if auto_policy is None else auto_policy
    _check_policy(policy)
    if policy == "guide":
        return rule.auto_as
    if policy == "by_size":
        if size is None:  # size unknown: the larger of the two
            return "high"
        return "low" if max(size) <= BY_SIZE_LOW_MAX else "high"
    return policy


# --- image tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageTokenBreakdown:
    """How one image's token count was reached, step by step.

    For the patch rule, ``tiles_x`` x ``tiles_y`` is the 32-px patch grid, ``tiles == patches`` and
    ``base == per_tile == 0``. At ``detail="low"`` (tile rule) ``scaled`` is the 512x512-box
    version the model sees and no tiles are counted. ``bound=True``: the size was unknown (an
    http(s) URL) and ``tokens`` is the family's upper bound for that detail.
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
    revision: str = models.NEWEST
    bound: bool = False
    box: int = MAX_BOX
    budget: int | None = None
    source: str = ""
    unverified: bool = False
    url: str = ""

    def explain(self) -> str:
        """Human-readable lines, e.g. ``1024x1024 -> fits 2048 box -> short side 768: 768x768 -> ...``."""
        w, h = self.original
        head = f"{self.model} ({self.rule}, rules {self.revision}), detail {self.detail_requested}"
        if self.detail_requested != self.detail_used:
            head += f" counted as {self.detail_used}"
        if self.unverified:
            head += " [UNVERIFIED rule: see vizlab.models.lookup(model).explain()]"
        if self.bound:
            what = f"{self.url}: size unknown offline" if self.url else "size unknown"
            line = (f"{what} -> UPPER BOUND for detail {self.detail_used}: {self.tokens} tokens "
                    "(pass image_sizes={url: (w, h)} for the exact count)")  # fmt: skip
            return head + "\n" + line
        box = f"{self.box} box"
        fit = f"fits {box}" if self.fitted == self.original else "fit {}: {}x{}".format(box, *self.fitted)
        if self.patches is not None:
            step = ""
            if self.scaled != self.fitted:
                cols, rows = geometry.patch_grid(*self.fitted)
                step = " -> {} patches over the {}-patch budget, shrink: {}x{}".format(
                    cols * rows, self.budget, *self.scaled
                )
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
        short = "short side <= 768, kept" if self.scaled == self.fitted else "short side 768"
        line = (
            f"{w}x{h} -> {fit} -> {short}: {self.scaled[0]}x{self.scaled[1]} -> "
            f"{self.tiles_x}x{self.tiles_y} tiles -> {self.base} + {self.per_tile}x{self.tiles}"
            f" = {self.tokens} tokens"
        )
        return head + "\n" + line

    def _repr_markdown_(self) -> str:
        lines = self.explain().splitlines()
        return f"**{lines[0]}**\n\n`{lines[1]}`"


def _rule_unverified(rule: ImageRule) -> bool:
    if not rule.source.verified:
        return True
    return isinstance(rule, PatchRule) and not all(lim.verified for lim in rule.limits.values())


def _patch_tokens(patches: int, multiplier: float) -> int:
    # round(.., 6): 2500 x 1.2 must be 3000, not ceil(3000.0000000000005) = 3001.
    return math.ceil(round(patches * multiplier, 6))


def explain_image_tokens(
    width: int,
    height: int,
    *,
    detail: str = "high",
    model: str = "gpt-4o",
    auto_policy: str | None = None,
    rules: str | None = None,
) -> ImageTokenBreakdown:
    """The full :class:`ImageTokenBreakdown` for one image.

    >>> explain_image_tokens(1024, 1024).tokens
    765
    >>> explain_image_tokens(1800, 2400, model="gpt-4.1-mini", rules="2025-08").patches
    1452
    """
    _check_size(width, height)
    rule = rule_for(model, rules)
    used = _resolve(rule, model, detail, auto_policy, (width, height))
    common = dict(revision=rule.revision, source=str(rule.source), unverified=_rule_unverified(rule))
    if isinstance(rule, PatchRule):
        limit = rule.limits[used]
        fitted = geometry.fit_in_box(width, height, limit.box)
        scaled = geometry.fit_patch_budget(*fitted, limit.budget, rule.patch)
        px, py = geometry.patch_grid(*scaled, rule.patch)
        patches = px * py
        tokens = _patch_tokens(patches, rule.multiplier)
        return ImageTokenBreakdown(
            model, rule.name, detail, used, (width, height), fitted, scaled,
            px, py, patches, 0, 0, patches, rule.multiplier, tokens,
            box=limit.box, budget=limit.budget, **common,  # type: ignore[arg-type]
        )  # fmt: skip
    fitted = geometry.fit_in_box(width, height, rule.box)
    if used == "low":
        seen = geometry.fit_in_box(width, height, rule.low_box)
        return ImageTokenBreakdown(
            model, rule.name, detail, used, (width, height), fitted, seen,
            0, 0, 0, rule.base, rule.per_tile, None, None, rule.base,
            box=rule.low_box, **common,  # type: ignore[arg-type]
        )  # fmt: skip
    scaled = geometry.scale_short_side(*fitted, rule.short_side, rounding=rule.short_rounding)
    tx, ty = geometry.tile_grid(*scaled, rule.tile)
    return ImageTokenBreakdown(
        model, rule.name, detail, used, (width, height), fitted, scaled,
        tx, ty, tx * ty, rule.base, rule.per_tile, None, None, rule.base + rule.per_tile * tx * ty,
        box=rule.box, **common,  # type: ignore[arg-type]
    )  # fmt: skip


def image_token_bound(
    *,
    detail: str = "high",
    model: str = "gpt-4o",
    auto_policy: str | None = None,
    rules: str | None = None,
    url: str = "",
) -> ImageTokenBreakdown:
    """The most tokens any image can cost on ``model`` at ``detail``: for an image of unknown size.

    Tile rule at high: the short side at most 768 and the long at most 2048, so at most 2 x 4 tiles.
    Patch rule: the detail's patch budget, or the patches of a full box where there is none.

    >>> image_token_bound(model="gpt-4o").tokens
    1445
    >>> image_token_bound(model="gpt-5.4", detail="high").tokens
    3000
    """
    rule = rule_for(model, rules)
    used = _resolve(rule, model, detail, auto_policy, None)
    common = dict(revision=rule.revision, source=str(rule.source), unverified=_rule_unverified(rule),
                  bound=True, url=url)  # fmt: skip
    if isinstance(rule, PatchRule):
        limit = rule.limits[used]
        side = math.ceil(limit.box / rule.patch)
        patches = side * side if limit.budget is None else min(side * side, limit.budget)
        return ImageTokenBreakdown(
            model, rule.name, detail, used, (0, 0), (0, 0), (0, 0), 0, 0, patches, 0, 0, patches,
            rule.multiplier, _patch_tokens(patches, rule.multiplier), box=limit.box, budget=limit.budget,
            **common,  # type: ignore[arg-type]
        )  # fmt: skip
    if used == "low":
        tiles, tokens = 0, rule.base
    else:
        tiles = math.ceil(rule.short_side / rule.tile) * math.ceil(rule.box / rule.tile)
        tokens = rule.base + rule.per_tile * tiles
    return ImageTokenBreakdown(
        model, rule.name, detail, used, (0, 0), (0, 0), (0, 0), 0, 0, tiles, rule.base, rule.per_tile,
        None, None, tokens, box=rule.box, **common,  # type: ignore[arg-type]
    )  # fmt: skip


def image_tokens(
    width: int,
    height: int,
    *,
    detail: str = "high",
    model: str = "gpt-4o",
    auto_policy: str | None = None,
    rules: str | None = None,
) -> int:
    """Tokens one ``width`` x ``height`` image costs on ``model``.

    >>> image_tokens(2048, 4096)
    1105
    >>> image_tokens(1000, 1334)
    765
    """
    return explain_image_tokens(
        width, height, detail=detail, model=model, auto_policy=auto_policy, rules=rules
    ).tokens


# --- text tokens ------------------------------------------------------------------------------


def encoding_for(model: str) -> tiktoken.Encoding:
    """The tiktoken Encoding ``model`` counts text with, built offline and cached."""
    return build_encoding(encoding_name_for(model))


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


class _Pricer(Protocol):
    """What :func:`estimate_request` needs of a price table (:class:`vizlab.pricing.PriceTable`)."""

    def cost(self, prompt_tokens: int, completion_tokens: int = 0, *, model: str, batch: bool = False,
             cached_tokens: int = 0, cache_write_tokens: int = 0) -> Cost: ...  # fmt: skip


@dataclass
class RequestEstimate:
    """vizlab's count of a request before sending it, shaped to sit beside the reported usage.

    ``completion_tokens`` is ``max_completion_tokens`` / ``max_tokens`` (an upper bound) or 0.
    ``unsized_images`` lists http(s) image URLs (query string dropped) whose size is unknown offline;
    each is counted at the family's upper bound for its detail, so ``bounded`` is True and the
    prompt count is an upper bound, not an exact figure. ``cacheable_tokens``: how much of the
    prompt the family's caching rule could serve from the cache on a repeat (0 below its minimum);
    ``cost`` assumes no hit (and, where writes are billed, a write of that prefix).
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
    rules: str = models.NEWEST
    cacheable_tokens: int = 0
    cache_write_tokens: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def bounded(self) -> bool:
        """True if some image was counted at an upper bound (its size was unknown)."""
        return bool(self.unsized_images)

    def as_usage(self) -> Usage:
        details = {"image_tokens": self.image_tokens, "text_tokens": self.text_tokens}
        return Usage(self.prompt_tokens, self.completion_tokens, self.total_tokens, details)

    def explain(self) -> str:
        """The estimate line by line: text, each image, overhead, output bound, caching, cost."""
        kind = "UPPER BOUND" if self.bounded else "estimate"
        lines = [
            f"{self.model} (rules {self.rules}): {self.prompt_tokens} prompt tokens ({kind}) = "
            f"{self.text_tokens} text + {self.image_tokens} image + {self.overhead_tokens} overhead"
        ]
        lines += ["  " + b.explain().replace("\n", "\n    ") for b in self.images]
        if self.completion_tokens:
            lines.append(f"  output bound: {self.completion_tokens} tokens (max_completion_tokens / max_tokens)")
        if self.cacheable_tokens:
            lines.append(
                f"  caching: up to {self.cacheable_tokens} prompt tokens cacheable on a repeat; the cost assumes "
                + ("a cache write of them (billed on this family)" if self.cache_write_tokens else "no cache hit")
            )
        lines += [f"  note: {n}" for n in self.notes]
        if self.cost is not None:
            lines.append(f"  cost: {self.cost}")
        return "\n".join(lines)


def _image_size(data: bytes, source: str) -> tuple[int, int]:
    """Width and height as displayed, from the header only: :func:`vizlab.images.image_size`,
    the one place vizlab reads image sizes (it refuses what the encoder refuses)."""
    from vizlab.images import image_size

    return image_size(data, name=f"image in {source}")


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]  # query strings can carry SAS tokens


class _Counter:
    """Walks messages once, adding text, image and overhead tokens."""

    def __init__(self, model: str, auto_policy: str | None, rules: str | None,
                 image_sizes: Mapping[str, tuple[int, int]]) -> None:  # fmt: skip
        self.model = model
        self.info = models.lookup(model)
        self.rules = rules
        self.encoding = encoding_for(model)
        self.auto_policy = auto_policy
        self.sizes = {_strip_query(k): v for k, v in image_sizes.items()}
        self.text = 0
        self.images: list[ImageTokenBreakdown] = []
        self.image_total = 0
        self.unsized: list[str] = []

    def count_text(self, text: str) -> None:
        self.text += len(self.encoding.encode_ordinary(text))

    def add_image(self, where: str, data: bytes | None, url: str | None, detail: Any) -> None:
        detail = "auto" if detail is None else detail
        if not self.info.vision:
            raise ConversationError(
                f"{where}: {self.info.name} takes no image input (no vision); remove the image or use a vision "
                "model such as 'gpt-4o' (vizlab.models.lookup(name).vision says which do)"
            )
        if data is None:
            assert url is not None
            key = _strip_query(url)
            if key in self.sizes:
                width, height = self.sizes[key]
            else:
                bound = image_token_bound(detail=detail, model=self.model, auto_policy=self.auto_policy,
                                          rules=self.rules, url=key)  # fmt: skip
                self.unsized.append(key)
                self.images.append(bound)
                self.image_total += bound.tokens
                return
        else:
            width, height = _image_size(data, where)
        try:
            breakdown = explain_image_tokens(width, height, detail=detail, model=self.model,
                                             auto_policy=self.auto_policy, rules=self.rules)  # fmt: skip
        except UnknownDetailError as e:
            raise UnknownDetailError(f"{where}: {e}", detail=detail) from e
        self.images.append(breakdown)
        self.image_total += breakdown.tokens

    def image_url(self, where: str, url: Any, detail: Any) -> None:
        if not isinstance(url, str):
            raise ConversationError(f"{where}: an image needs a 'url' / 'image_url' string, got {url!r:.80}")
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
            kind = part.get("type") if isinstance(part, Mapping) else None
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
            elif kind in ("text", "input_text", "output_text"):  # Chat and Responses text parts
                if not isinstance(part.get("text"), str):
                    raise ConversationError(f"{here}: a {kind} part needs a 'text' string")
                self.count_text(part["text"])
            elif kind == "image_url":
                spec = part.get("image_url")
                url, detail = (spec, None) if isinstance(spec, str) else (field_of(spec, "url"), field_of(spec, "detail"))
                self.image_url(here, url, detail)
            elif kind == "input_image":  # Responses API: {"type": "input_image", "image_url": ..., "detail": ...}
                if part.get("image_url") is None and isinstance(part.get("file_id"), str):
                    # A Files API id: size unknown offline, counted at the bound like an https URL.
                    self.add_image(here, None, f"file:{part['file_id']}", part.get("detail"))
                else:
                    self.image_url(here, part.get("image_url"), part.get("detail"))
            else:
                raise ConversationError(
                    f"{here}: part type {kind!r} is not 'text', 'image_url', 'input_text' or 'input_image'; "
                    "vizlab estimates text and image parts only"
                )


def _cacheable(prompt: int, rule: models.CachingRule) -> int:
    """Prompt tokens the caching rule could serve on a repeat: the minimum prefix plus whole steps."""
    if not rule.supported or prompt < rule.min_prefix:
        return 0
    return rule.min_prefix + (prompt - rule.min_prefix) // rule.step * rule.step


def _bound(name: str, value: int | None) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} {value!r} must be a non-negative integer or None")
    return value


def estimate_request(
    messages: list[dict[str, Any]] | str,
    *,
    model: str = "gpt-4o",
    max_tokens: int | None = None,
    max_completion_tokens: int | None = None,
    prices: _Pricer | None = None,
    auto_policy: str | None = None,
    rules: str | None = None,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> RequestEstimate:
    """Count a Chat Completions or Responses request offline: text, images, overhead, plus its cost.

    ``messages``: chat messages (text / image_url parts, or a string content), Responses input items
    (``input_text`` / ``input_image`` parts; a plain string is one user message), or the 2023
    preview format (strings and ``{"image": "<base64>"}``). ``image_sizes={url: (w, h)}`` gives the
    size of http(s) images (otherwise counted at the family's upper bound, and flagged). The output
    bound is ``max_completion_tokens`` (what reasoning models take), else ``max_tokens``.
    ``prices``: a :class:`vizlab.pricing.PriceTable`; default the registry's prices.

    >>> estimate_request([{"role": "user", "content": "hi"}]).prompt_tokens
    8
    """
    if auto_policy is not None:
        _check_policy(auto_policy)
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list):
        raise ConversationError(f"messages must be a list of dicts (or a string), not {type(messages).__name__}")
    sizes = {} if image_sizes is None else image_sizes
    if not isinstance(sizes, Mapping):
        raise TypeError(f"image_sizes must be a dict of url -> (width, height), not {type(sizes).__name__}")
    for url, size in sizes.items():
        if not (isinstance(size, tuple) and len(size) == 2):
            raise ValueError(f"image_sizes[{url!r}] = {size!r} must be a (width, height) tuple")
        _check_size(*size)
    counter = _Counter(model, auto_policy, rules, sizes)
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
            elif key == "type" and value == "message":  # Responses input item wrapper
                continue
            elif isinstance(value, str):
                counter.count_text(value)
                if key == "name":
                    overhead += TOKENS_PER_NAME
    completion = _bound("max_tokens", max_tokens)
    if max_completion_tokens is not None:
        completion = _bound("max_completion_tokens", max_completion_tokens)
    prompt = counter.text + counter.image_total + overhead
    info = counter.info
    cacheable = _cacheable(prompt, info.caching)
    writes = cacheable if info.caching.writes_billed else 0
    notes = []
    if counter.unsized:
        notes.append(
            f"{len(counter.unsized)} image(s) of unknown size counted at the upper bound: "
            "pass image_sizes={url: (width, height)} for an exact count"
        )
    if info.reasoning and max_tokens is not None and max_completion_tokens is None:
        notes.append(f"{info.name} refuses max_tokens: send max_completion_tokens (counted as the output bound here)")
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
        rules=rules or models.NEWEST,
        cacheable_tokens=cacheable,
        cache_write_tokens=writes,
        notes=notes,
    )
    try:
        if prices is None:
            estimate.cost = info.prices.cost(prompt, completion, model=model, cache_write_tokens=writes)
        else:
            estimate.cost = prices.cost(prompt, completion, model=model, cache_write_tokens=writes)
    except UnknownModelError:
        estimate.cost = None
    return estimate
