"""The registry's record types: a model's image rule, prices, caching, parameter rules, lifecycle.

Each fact carries its :class:`Source` (text and date); a fact no source states is ``verified=False``
and shows as UNVERIFIED in :meth:`ModelInfo.explain`. Bottom layer: stdlib and vizlab.errors only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from vizlab.errors import VizlabError

__all__ = ['Source', 'Claim', 'Disputed', 'Lifecycle', 'Prices', 'Cost', 'TileRule', 'PatchLimit', 'PatchRule', 'ImageRule', 'CachingRule', 'ModelInfo', 'NEWEST', 'RULE_PROFILES', 'DETAILS', 'PROVIDERS', 'APIS', 'REASONING_REJECTED']

NEWEST = "2026-06"
RULE_PROFILES = (NEWEST, "2025-08", "azure-2023-preview")
DETAILS = ("low", "high", "original", "auto")
PROVIDERS = ("azure", "openai")
APIS = ("chat", "responses")

# Sampling parameters reasoning models refuse (OpenAI reasoning guide, "limitations", 2025; the
# service answers 400 unsupported_parameter / unsupported_value). temperature=1 (the default) is
# accepted as a value; any other value is refused, so vizlab treats the parameter as refused.
REASONING_REJECTED = frozenset(
    {"temperature", "top_p", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty",
     "logit_bias", "max_tokens"}
)  # fmt: skip


@dataclass(frozen=True)
class Source:
    """Where a fact comes from and when it was read; ``verified=False`` when no source states it."""

    text: str
    as_of: str
    verified: bool = True
    note: str = ""

    def __str__(self) -> str:
        flag = "" if self.verified else "UNVERIFIED: "
        note = f" ({self.note})" if self.note else ""
        return f"{flag}{self.text}, {self.as_of}{note}"


@dataclass(frozen=True)
class Claim:
    """One source's value for a fact: ``value`` as ``source`` states it (on ``source.as_of``)."""

    value: object
    source: Source

    def __str__(self) -> str:
        return f"{self.value} ({self.source})"


@dataclass(frozen=True)
class Disputed:
    """A fact the sources disagree on: ``default`` (the newest source) and the ``alternatives``.

    With no alternatives it is a plain sourced fact; ``str()`` says DISPUTED when there are some.

    >>> d = Disputed(Claim("2027-04-14", Source("post B", "2026-10")), (Claim("2026-10-01", Source("post A", "2026-06")),))
    >>> d.value, d.disputed
    ('2027-04-14', True)
    """

    default: Claim
    alternatives: tuple[Claim, ...] = ()

    @property
    def value(self) -> object:
        return self.default.value

    @property
    def disputed(self) -> bool:
        return any(c.value != self.default.value for c in self.alternatives)

    @property
    def claims(self) -> tuple[Claim, ...]:
        return (self.default, *self.alternatives)

    def __str__(self) -> str:
        if not self.disputed:
            return str(self.default)
        others = "; ".join(str(c) for c in self.alternatives)
        return f"DISPUTED: {self.default} [default: newest source]; also {others}"


@dataclass(frozen=True)
class Lifecycle:
    """A model's life on one provider: ``status``, ``since`` (release there), ``retires`` (a
    :class:`Disputed` ISO date: deprecation-to-shutdown as the provider words it), ``replacement``."""

    provider: str
    status: str  # "preview" | "generally-available" | "deprecated" | "retired"
    source: Source
    since: str | None = None
    retires: Disputed | None = None
    replacement: str | None = None
    note: str = ""

    def __str__(self) -> str:
        parts = [f"{self.provider}: {self.status}"]
        if self.since:
            parts.append(f"since {self.since}")
        if self.retires is not None:
            parts.append(f"retires {self.retires}")
        if self.replacement:
            parts.append(f"replacement {self.replacement}")
        return ", ".join(parts) + f" -- {self.source}" + (f" ({self.note})" if self.note else "")


AZURE_2023 = Source(
    "Azure OpenAI 'How to use GPT-4 with Vision' (learn.microsoft.com, ms.date 2023-11-06; seeds/02)", "2023-11-06"
)


@dataclass(frozen=True)
class Prices:
    """USD per 1M tokens, standard tier; ``None`` where the item is not billed (or not offered)."""

    input: float
    output: float
    cached_input: float | None
    batch_input: float | None
    batch_output: float | None
    cache_write: float | None
    source: str
    as_of: str
    verified: bool = True
    note: str = ""


    def cost(self, prompt_tokens: int, completion_tokens: int = 0, *, model: str = "", batch: bool = False,
             cached_tokens: int = 0, cache_write_tokens: int = 0) -> Cost:  # fmt: skip
        """Cost of ``prompt_tokens`` in (``cached_tokens`` read from and ``cache_write_tokens`` written to
        the cache, both part of ``prompt_tokens``) and ``completion_tokens`` out (reasoning included)."""
        for label, n in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens),
                         ("cached_tokens", cached_tokens), ("cache_write_tokens", cache_write_tokens)):  # fmt: skip
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"{label} {n!r} must be a non-negative integer")
        if cached_tokens + cache_write_tokens > prompt_tokens:
            raise ValueError(
                f"cached_tokens {cached_tokens} + cache_write_tokens {cache_write_tokens} exceed prompt_tokens {prompt_tokens}"
            )
        cached_rate = self.input if self.cached_input is None else self.cached_input
        write_rate = self.input if self.cache_write is None else self.cache_write
        plain = prompt_tokens - cached_tokens - cache_write_tokens
        # Batch rates scale every input rate alike; no batch price listed: standard (never an undercount).
        scale_in = self.batch_input / self.input if batch and self.batch_input is not None and self.input else 1.0
        scale_out = self.batch_output / self.output if batch and self.batch_output is not None and self.output else 1.0
        input_cost = (plain * self.input + cached_tokens * cached_rate + cache_write_tokens * write_rate) * scale_in
        return Cost(input_cost / 1_000_000, completion_tokens * self.output * scale_out / 1_000_000, batch, model)


@dataclass(frozen=True)
class Cost:
    """Cost in USD of one request: input and output parts."""

    input: float
    output: float
    batch: bool
    model: str

    @property
    def total(self) -> float:
        return self.input + self.output

    def __str__(self) -> str:
        return f"${self.total:.4f} (input ${self.input:.4f} + output ${self.output:.4f})"


@dataclass(frozen=True)
class TileRule:
    """``base`` tokens, plus ``per_tile`` per ``tile``-px square at high (and auto): the tile rule.

    High: fit in ``box`` x ``box`` (round to nearest), then if the short side exceeds ``short_side``
    scale it to ``short_side``, the other side rounded by ``short_rounding`` ("floor" in the newest
    guide, "round" in older profiles). Low: ``base`` tokens, the model sees a ``low_box`` square.
    """

    name: str
    base: int
    per_tile: int
    revision: str
    source: Source
    box: int = 2048
    short_side: int = 768
    tile: int = 512
    low_box: int = 512
    short_rounding: str = "floor"
    details: tuple[str, ...] = ("low", "high", "auto")
    auto_as: str = "high"
    note: str = ""

    kind = "tile"


@dataclass(frozen=True)
class PatchLimit:
    """One detail level's limits on a patch model: fit ``box`` x ``box``, then at most ``budget`` patches."""

    box: int
    budget: int | None
    verified: bool = True
    note: str = ""
    reject_over: int | None = None  # the service refuses images of more patches (no budget to shrink to)
    reject_message: str = ""


@dataclass(frozen=True)
class PatchRule:
    """``ceil(patches * multiplier) + per_image`` over 32-px patches, with per-detail limits.

    ``limits`` maps each accepted explicit detail (low / high / original) to its :class:`PatchLimit`;
    ``auto_as`` names the detail ``auto`` sizes like (the guide's table, per family). ``per_image``:
    tokens billed per image beyond the guide's formula, as measured (``per_image_source`` says where).
    """

    name: str
    multiplier: float
    limits: Mapping[str, PatchLimit]
    auto_as: str
    revision: str
    source: Source
    patch: int = 32
    note: str = ""
    per_image: int = 0
    per_image_source: Source | None = None

    kind = "patch"

    @property
    def details(self) -> tuple[str, ...]:
        return tuple(d for d in DETAILS if d in self.limits) + ("auto",)


ImageRule = TileRule | PatchRule


@dataclass(frozen=True)
class CachingRule:
    """The documented prompt-caching rule: cached from ``min_prefix`` tokens, in ``step`` increments."""

    supported: bool
    min_prefix: int
    step: int
    retention: tuple[str, ...]
    writes_billed: bool
    source: Source
    note: str = ""


@dataclass(frozen=True)
class ParamRules:
    """Which request parameters a model refuses, per reasoning effort."""

    reasoning: bool
    efforts: tuple[str, ...]
    default_effort: str | None
    refused: frozenset[str]
    accepted_at: Mapping[str, frozenset[str]]
    source: Source


@dataclass(frozen=True)
class ModelInfo:
    """Everything vizlab knows about one model family. Read it with :func:`lookup`."""

    name: str
    vision: bool
    encoding: str
    context_window: int
    max_output: int
    prices: Prices
    lifecycle: str
    retires: str | None
    params: ParamRules
    caching: CachingRule
    rules: Mapping[str, ImageRule]
    images: Mapping[str, int]
    facts: Mapping[str, Source]
    aliases: tuple[str, ...] = ()
    note: str = ""
    max_input: int | None = None  # a separate cap on the prompt alone (gpt-5: 272,000 of 400,000)
    lifecycles: Mapping[str, Lifecycle] = field(default_factory=lambda: MappingProxyType({}))
    disputes: Mapping[str, Disputed] = field(default_factory=lambda: MappingProxyType({}))
    image_limits: Mapping[str, Disputed] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def reasoning(self) -> bool:
        return self.params.reasoning

    @property
    def efforts(self) -> tuple[str, ...]:
        return self.params.efforts

    @property
    def default_effort(self) -> str | None:
        return self.params.default_effort

    def rejected_params(self, effort: str | None = None) -> frozenset[str]:
        """Sampling parameters this model refuses at ``effort`` (None: its default effort).

        >>> from vizlab.models import lookup
        >>> sorted(lookup("gpt-5.1").rejected_params("none"))
        ['frequency_penalty', 'logit_bias', 'max_tokens', 'presence_penalty', 'top_logprobs']
        """
        p = self.params
        if not p.reasoning:
            if effort is not None:
                raise VizlabError(
                    f"model {self.name!r} is not a reasoning model and takes no reasoning_effort "
                    f"(got {effort!r}); leave reasoning_effort unset"
                )
            return frozenset()
        if effort is None:
            effort = p.default_effort
        elif effort not in p.efforts:
            choices = ", ".join(repr(e) for e in p.efforts) or "none (it takes no reasoning_effort)"
            raise VizlabError(f"reasoning_effort {effort!r} is not accepted by {self.name!r}; use one of {choices}")
        return p.refused - p.accepted_at.get(effort or "", frozenset())

    def images_per_request(self, provider: str, api: str = "chat") -> int:
        """Most images one request may carry on ``provider`` ("azure" or "openai") through ``api``
        ("chat" or "responses"); 0 without vision. Sources: :meth:`image_limit`."""
        return int(self.image_limit(provider, api).value) if self.vision else 0  # type: ignore[call-overload]

    def image_limit(self, provider: str, api: str = "chat") -> Disputed:
        """The images-per-request limit on ``provider`` and ``api`` with its source(s)."""
        if provider not in PROVIDERS:
            raise ValueError(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
        if api not in APIS:
            raise ValueError(f"api {api!r} is not one of {', '.join(APIS)}")
        key = f"{provider}/{api}"
        if key in self.image_limits:
            return self.image_limits[key]
        return Disputed(Claim(self.images.get(provider, 0), self.facts.get("images", Source("not stated", ""))))

    def lifecycle_on(self, provider: str) -> Lifecycle | None:
        """The model's :class:`Lifecycle` on ``provider``, or None where no source states one."""
        return self.lifecycles.get(provider)

    def disputed(self) -> list[str]:
        """Names of the facts the sources disagree on (each kept with every source's value)."""
        out = [k for k, d in self.disputes.items() if d.disputed]
        out += [f"retires.{p}" for p, lc in self.lifecycles.items() if lc.retires is not None and lc.retires.disputed]
        out += [f"images.{k}" for k, d in self.image_limits.items() if d.disputed]
        return out

    def image_rule(self, rules: str | None = None) -> ImageRule:
        """The image rule of revision ``rules`` (default :data:`NEWEST`).

        A family the newest guide no longer lists keeps the rule of the newest revision that did.
        """
        if not self.vision:
            raise VizlabError(
                f"model {self.name!r} does not accept image input (no vision), so it has no image rule; "
                "use a vision model such as 'gpt-4o' or 'gpt-4.1-mini'"
            )
        profile = NEWEST if rules is None else rules
        if profile not in RULE_PROFILES:
            raise VizlabError(f"rules {rules!r} is not one of {', '.join(RULE_PROFILES)}")
        if profile in self.rules:
            return self.rules[profile]
        if profile == NEWEST:  # not restated by the newest revision: its last stated rule
            for older in RULE_PROFILES[1:]:
                if older in self.rules:
                    return self.rules[older]
        if profile == "azure-2023-preview" and isinstance(self.image_rule(), TileRule):
            return AZURE_PREVIEW_RULE  # Azure's 2023 wording, for any tile-rule family
        raise VizlabError(
            f"model {self.name!r} has no image rule in the {profile!r} revision (it was not listed then); "
            f"use rules=None (newest) or one of {', '.join(sorted(self.rules))}"
        )

    def source(self, fact: str) -> Source:
        """The :class:`Source` of one fact (``"prices"``, ``"context_window"``, ``"image_rule"``...)."""
        if fact == "prices":
            return Source(self.prices.source, self.prices.as_of, self.prices.verified, self.prices.note)
        if fact == "image_rule":
            rule = self.image_rule()
            return rule.source
        if fact in ("params", "efforts", "rejected_params"):
            return self.params.source
        if fact == "caching":
            return self.caching.source
        if fact in self.facts:
            return self.facts[fact]
        raise KeyError(f"no source recorded for fact {fact!r} of {self.name!r}")

    def unverified(self) -> list[str]:
        """Names of the facts no source we could read states."""
        out = [k for k, s in self.facts.items() if not s.verified]
        if not self.prices.verified:
            out.append("prices")
        if self.vision:
            rule = self.image_rule()
            if not rule.source.verified or (isinstance(rule, PatchRule) and not all(
                    lim.verified for lim in rule.limits.values())):  # fmt: skip
                out.append("image_rule")
        if not self.params.source.verified:
            out.append("params")
        if not self.caching.source.verified:
            out.append("caching")
        return out

    def explain(self) -> str:
        """Every fact with its source and date; unverified ones marked UNVERIFIED."""
        lines = [f"{self.name} ({self.lifecycle}{', retires ' + self.retires if self.retires else ''})"]
        if self.aliases:
            lines.append(f"  aliases: {', '.join(self.aliases)}")
        if self.vision:
            rule = self.image_rule()
            if isinstance(rule, TileRule):
                desc = f"tile rule {rule.base} + {rule.per_tile}/tile, short side {rule.short_side} ({rule.short_rounding})"
            else:
                lims = ", ".join(
                    f"{d}: {lim.box}px/{lim.budget if lim.budget else 'no'} patch budget"
                    + ("" if lim.verified else " UNVERIFIED") for d, lim in rule.limits.items()
                )  # fmt: skip
                desc = f"patch rule x{rule.multiplier:g}; {lims}; auto as {rule.auto_as}"
            lines.append(f"  image: {desc} [{rule.revision}] -- {rule.source}")
            if rule.note:
                lines.append(f"    note: {rule.note}")
        else:
            lines.append("  image: no vision (text only)")
        for key, src in self.facts.items():
            value = getattr(self, key, None)
            if key == "images":
                value = dict(self.images)
            lines.append(f"  {key}: {value} -- {src}")
        lines += [f"  images per request ({k}): {d}" for k, d in self.image_limits.items()]
        lines += [f"  lifecycle {lc}" for lc in self.lifecycles.values()]
        lines += [f"  {k}: {d}" for k, d in self.disputes.items()]
        p = self.prices
        lines.append(
            f"  prices (USD/1M): input {p.input}, cached {p.cached_input}, output {p.output}, batch in/out "
            f"{p.batch_input}/{p.batch_output}, cache write {p.cache_write} -- "
            f"{'' if p.verified else 'UNVERIFIED: '}{p.source}, {p.as_of}{' (' + p.note + ')' if p.note else ''}"
        )
        if self.reasoning:
            lines.append(
                f"  reasoning: efforts {self.efforts or '(none accepted)'}, default {self.default_effort}; "
                f"refuses {', '.join(sorted(self.rejected_params()))} at the default -- {self.params.source}"
            )
        else:
            lines.append("  reasoning: no (takes max_tokens and sampling parameters)")
        c = self.caching
        if c.supported:
            lines.append(
                f"  caching: from {c.min_prefix} tokens in {c.step}-token steps, retention {', '.join(c.retention)}, "
                f"writes {'billed' if c.writes_billed else 'free'} -- {c.source}{' (' + c.note + ')' if c.note else ''}"
            )
        else:
            lines.append(f"  caching: none ({c.note})")
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)


# --- image rules ------------------------------------------------------------------------------

AZURE_PREVIEW_RULE = TileRule(
    "azure 2023 preview crops", 65, 129, "azure-2023-preview", AZURE_2023, short_rounding="round",
    note="low = 65 tokens; high = 65 + 129 per 512-px crop (Azure's 2023 GPT-4 Turbo with Vision wording)",
)  # fmt: skip
