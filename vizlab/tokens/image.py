"""Image tokens by the registry's rules: tile rules, patch rules, detail, upper bounds.

Rules are dated profiles (``rules=None`` is the newest guide revision). Trade-offs: ``auto`` follows
:data:`AUTO_POLICY` (by default what the guide states per family); images are never upscaled (the
guide says so); an image of unknown size counts at the family's upper bound and says so. More
pixels can cost fewer tokens: 700x2000 is 8 tiles (1445 on gpt-4o), 1000x2000 only 6 (1105).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Mapping, TypedDict

from vizlab import geometry, models
from vizlab.errors import ImageError, UnknownDetailError, VizlabError
from vizlab.models.types import ImageRule, PatchLimit, PatchRule, TileRule
from vizlab.tokens.text import ENCODINGS

__all__ = ['AUTO_POLICY', 'AUTO_POLICIES', 'DETAILS', 'register_model', 'known_models', 'match_model', 'rule_for', 'set_auto_policy', 'scale_for_high', 'resolve_detail', 'image_tokens', 'image_token_bound', 'ImageTokenBreakdown', 'explain_image_tokens']

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


def set_auto_policy(policy: str) -> str:
    """Set the global :data:`AUTO_POLICY` (``"guide"``, ``"high"``, ``"by_size"``, ``"low"``); return the old one."""
    global AUTO_POLICY
    check_policy(policy)
    old, AUTO_POLICY = AUTO_POLICY, policy
    return old


def check_policy(policy: str) -> None:
    if policy not in AUTO_POLICIES:
        raise UnknownDetailError(
            f"auto_policy {policy!r} is not one of {', '.join(AUTO_POLICIES)}; 'guide' sizes auto as the "
            "guide states per family, 'high' as high, 'by_size' as low when the image fits 512x512",
            detail=policy,
        )


# --- scaling ----------------------------------------------------------------------------------


def check_size(width: int, height: int) -> None:
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
    check_size(width, height)
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
    return _rule_and_detail(width, height, detail, model, auto_policy, rules)[1]


def _rule_and_detail(
    width: int, height: int, detail: object, model: str, auto_policy: str | None, rules: str | None
) -> tuple[ImageRule, str]:
    """The rule for ``model`` and the detail a ``width`` x ``height`` image is sized as: the one
    place :func:`resolve_detail` and :func:`explain_image_tokens` start from."""
    check_size(width, height)
    rule = rule_for(model, rules)  # unknown models fail here, with the list of known ones
    return rule, _resolve(rule, model, detail, auto_policy, (width, height))


def _resolve(rule: ImageRule, model: str, detail: object, auto_policy: str | None, size: tuple[int, int] | None) -> str:
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
    check_policy(policy)
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
    refused: str = ""  # the service refuses this image: its message (e.g. over gpt-5.6's 30,000 patches)
    disputed: str = ""  # the sources disagree on this family's rule: both, with their dates

    def explain(self) -> str:
        """Human-readable lines, e.g. ``1024x1024 -> fits 2048 box -> short side 768: 768x768 -> ...``."""
        w, h = self.original
        head = f"{self.model} ({self.rule}, rules {self.revision}), detail {self.detail_requested}"
        if self.detail_requested != self.detail_used:
            head += f" counted as {self.detail_used}"
        if self.unverified:
            head += " [UNVERIFIED rule: see vizlab.models.lookup(model).explain()]"
        if self.disputed:
            head += f"\n  rule {self.disputed}"
        if self.refused:
            head += f"\n  REFUSED by the service: {self.refused}"
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
            extra = self.tokens - _patch_tokens(self.patches, self.multiplier or 0)  # the rule's per_image
            line = (
                f"{w}x{h} -> {fit}{step} -> {self.tiles_x}x{self.tiles_y} = {self.patches} patches"
                f" -> {self.patches} x {self.multiplier:g}" + (f", rounded up, + {extra} per image (measured)"
                                                                if extra else "") + f" = {self.tokens} tokens"
                + ("" if extra else " (rounded up)")
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
        notes = "".join(f"\n\n{line.strip()}" for line in lines[1:-1])  # disputed / refused, if any
        return f"**{lines[0]}**{notes}\n\n`{lines[-1]}`"


def _disputed(model: str) -> str:
    dispute = models.lookup(model).disputes.get("image_rule")
    return str(dispute) if dispute is not None and dispute.disputed else ""


class _Provenance(TypedDict):
    """Where a breakdown's rule comes from: the fields every :class:`ImageTokenBreakdown` states."""

    revision: str
    source: str
    unverified: bool
    disputed: str


def _provenance(rule: ImageRule, model: str, rules: str | None) -> _Provenance:
    return _Provenance(revision=rule.revision, source=str(rule.source), unverified=_rule_unverified(rule),
                       disputed=_disputed(model) if rules is None else "")  # fmt: skip


def _refusal(limit: PatchLimit, patches: int) -> str:
    if limit.reject_over is None or patches <= limit.reject_over:
        return ""
    return f"{limit.reject_message} ({patches:,} patches > {limit.reject_over:,})"


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
    rule, used = _rule_and_detail(width, height, detail, model, auto_policy, rules)
    common = _provenance(rule, model, rules)
    if isinstance(rule, PatchRule):
        limit = rule.limits[used]
        fitted = geometry.fit_in_box(width, height, limit.box)
        scaled = geometry.fit_patch_budget(*fitted, limit.budget, rule.patch)
        px, py = geometry.patch_grid(*scaled, rule.patch)
        patches = px * py
        tokens = _patch_tokens(patches, rule.multiplier) + rule.per_image
        return ImageTokenBreakdown(
            model, rule.name, detail, used, (width, height), fitted, scaled,
            px, py, patches, 0, 0, patches, rule.multiplier, tokens,
            box=limit.box, budget=limit.budget, refused=_refusal(limit, patches), **common,
        )  # fmt: skip
    fitted = geometry.fit_in_box(width, height, rule.box)
    if used == "low":
        seen = geometry.fit_in_box(width, height, rule.low_box)
        return ImageTokenBreakdown(
            model, rule.name, detail, used, (width, height), fitted, seen,
            0, 0, 0, rule.base, rule.per_tile, None, None, rule.base,
            box=rule.low_box, **common,
        )  # fmt: skip
    scaled = geometry.scale_short_side(*fitted, rule.short_side, rounding=rule.short_rounding)
    tx, ty = geometry.tile_grid(*scaled, rule.tile)
    return ImageTokenBreakdown(
        model, rule.name, detail, used, (width, height), fitted, scaled,
        tx, ty, tx * ty, rule.base, rule.per_tile, None, None, rule.base + rule.per_tile * tx * ty,
        box=rule.box, **common,
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
    Patch rule: the detail's patch budget, or the patches of a full box where there is none, at
    most the patches past which the service refuses the image (gpt-5.6 original: 30,000 -> 36,000).

    >>> image_token_bound(model="gpt-4o").tokens
    1445
    >>> image_token_bound(model="gpt-5.4", detail="high").tokens
    3000
    """
    rule = rule_for(model, rules)
    used = _resolve(rule, model, detail, auto_policy, None)
    common = _provenance(rule, model, rules)
    if isinstance(rule, PatchRule):
        limit = rule.limits[used]
        side = math.ceil(limit.box / rule.patch)
        patches = side * side if limit.budget is None else min(side * side, limit.budget)
        if limit.reject_over is not None:  # larger images are refused, so the bound is the largest accepted one
            patches = min(patches, limit.reject_over)
        return ImageTokenBreakdown(
            model, rule.name, detail, used, (0, 0), (0, 0), (0, 0), 0, 0, patches, 0, 0, patches,
            rule.multiplier, _patch_tokens(patches, rule.multiplier) + rule.per_image, box=limit.box,
            budget=limit.budget, bound=True, url=url, **common,
        )  # fmt: skip
    if used == "low":
        tiles, tokens = 0, rule.base
    else:
        tiles = math.ceil(rule.short_side / rule.tile) * math.ceil(rule.box / rule.tile)
        tokens = rule.base + rule.per_tile * tiles
    return ImageTokenBreakdown(
        model, rule.name, detail, used, (0, 0), (0, 0), (0, 0), 0, 0, tiles, rule.base, rule.per_tile,
        None, None, tokens, box=rule.box, bound=True, url=url, **common,
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
