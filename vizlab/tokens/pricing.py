"""Prices per model from the registry, and the cost of an estimate or a reported usage.

Prices are USD per 1M tokens, standard tier, from :mod:`vizlab.models` (each with its source and
date; :data:`PRICES_REVISION`); set others with :meth:`PriceTable.set`. Trade-offs: a model is
priced exactly, by alias or dated snapshot, never by prefix; cached input is priced only when a
usage reports it; an estimate's output is its bound, never a forecast.
Details: docs/internals.md#tokens
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from vizlab.errors import UnknownModelError
from vizlab.models.registry import families, lookup, snapshots
from vizlab.models.types import Cost, Prices
from vizlab.tokens.image import image_tokens, match_model
from vizlab.tokens.request import RequestEstimate
from vizlab.tokens.usage import Usage

__all__ = [
    "Price",
    "PriceTable",
    "BATCH_DISCOUNT",
    "PRICES_REVISION",
    "DEFAULT_PRICES",
    "default_prices",
    "cost_per_1000_images",
]

# OpenAI Batch API: "50% cost discount vs. the synchronous APIs" (help.openai.com/en/articles/9197833,
# Batch API FAQ, as read 2025-08); Azure OpenAI Global Batch: 50% less than Global Standard (2025-08).
BATCH_DISCOUNT = 0.5
# The revision of the default table: the registry's prices as read on this date (per-entry dates in
# each Price.as_of, the oldest 2023-11, the newest 2026-06-27).
PRICES_REVISION = "vizlab.models registry, read 2026-12-02"


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens for one model, with where and when the figure was read."""

    model: str
    input_per_1m: float
    output_per_1m: float
    cached_input_per_1m: float | None
    source: str
    as_of: str
    batch_input_per_1m: float | None = None
    batch_output_per_1m: float | None = None
    cache_write_per_1m: float | None = None
    verified: bool = True

    def as_prices(self) -> Prices:
        batch_in = self.input_per_1m * (1 - BATCH_DISCOUNT) if self.batch_input_per_1m is None else self.batch_input_per_1m
        batch_out = (self.output_per_1m * (1 - BATCH_DISCOUNT) if self.batch_output_per_1m is None
                     else self.batch_output_per_1m)  # fmt: skip
        return Prices(self.input_per_1m, self.output_per_1m, self.cached_input_per_1m, batch_in, batch_out,
                             self.cache_write_per_1m, self.source, self.as_of, self.verified)  # fmt: skip


def _from_registry(name: str, p: Prices) -> Price:
    return Price(name, p.input, p.output, p.cached_input, p.source, p.as_of, p.batch_input, p.batch_output,
                 p.cache_write, p.verified)  # fmt: skip


def _check_rate(name: str, value: float | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} {value!r} must be a non-negative number of USD per 1M tokens")


class PriceTable:
    """Prices by model name; :meth:`set` overrides or adds one (e.g. an Azure regional price)."""

    revision = PRICES_REVISION

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        source = DEFAULT_PRICES._prices if prices is None else prices
        self._prices: dict[str, Price] = {k.strip().lower(): v for k, v in source.items()}

    def __repr__(self) -> str:
        return f"PriceTable({len(self._prices)} models, {self.revision}: {', '.join(sorted(self._prices))})"

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and match_model(model, self._prices) is not None

    def models(self) -> list[str]:
        return sorted(self._prices)

    def get(self, model: str) -> Price:
        """The price for ``model``: exact, alias, or dated snapshot; never a bare prefix."""
        name = match_model(model, self._prices) if isinstance(model, str) else None
        if name is None:
            raise UnknownModelError(
                f"no price for model {model!r}. Known: {', '.join(self.models())}. Use one of these, "
                f"or set one: prices.set({model!r}, input_per_1m=..., output_per_1m=..., source=..., as_of=...)",
                model=str(model),
                known=self._prices,
            )
        return self._prices[name]

    def set(
        self,
        model: str,
        *,
        input_per_1m: float,
        output_per_1m: float,
        cached_input_per_1m: float | None = None,
        cache_write_per_1m: float | None = None,
        source: str = "user override",
        as_of: str = "",
    ) -> None:
        """Add or replace ``model``'s price (USD per 1M tokens); batch is half of it."""
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model {model!r} must be a non-empty name")
        _check_rate("input_per_1m", input_per_1m)
        _check_rate("output_per_1m", output_per_1m)
        _check_rate("cached_input_per_1m", cached_input_per_1m, optional=True)
        _check_rate("cache_write_per_1m", cache_write_per_1m, optional=True)
        key = model.strip().lower()
        self._prices[key] = Price(
            key, float(input_per_1m), float(output_per_1m),
            None if cached_input_per_1m is None else float(cached_input_per_1m), source, as_of,
            cache_write_per_1m=None if cache_write_per_1m is None else float(cache_write_per_1m),
        )  # fmt: skip

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int = 0,
        *,
        model: str,
        batch: bool = False,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Cost:
        """Cost of ``prompt_tokens`` in (``cached_tokens`` of them at the cached price, ``cache_write_tokens``
        at the cache-write price) and ``completion_tokens`` out.

        >>> str(default_prices().cost(765, model="gpt-4o"))
        '$0.0019 (input $0.0019 + output $0.0000)'
        """
        price = self.get(model)
        return price.as_prices().cost(prompt_tokens, completion_tokens, model=model, batch=batch,
                                      cached_tokens=cached_tokens, cache_write_tokens=cache_write_tokens)  # fmt: skip

    def cost_of(self, usage: Usage | RequestEstimate | Any, *, model: str, batch: bool = False) -> Cost:
        """Cost of a :class:`~vizlab.tokens.Usage`, a :class:`~vizlab.tokens.RequestEstimate` or the SDK's usage.

        Reasoning tokens are part of ``completion_tokens`` and cost output; ``cached_tokens`` cost the
        cached price; ``cache_write_tokens`` (or ``cache_creation_tokens``) the write price.
        """
        if isinstance(usage, RequestEstimate):
            return self.cost(usage.prompt_tokens, usage.completion_tokens, model=model, batch=batch,
                             cache_write_tokens=usage.cache_write_tokens)  # fmt: skip
        if not isinstance(usage, Usage):
            usage = Usage.from_openai(usage)
        cached = usage.details.get("cached_tokens", 0)
        writes = usage.details.get("cache_write_tokens", usage.details.get("cache_creation_tokens", 0))
        return self.cost(usage.prompt_tokens, usage.completion_tokens, model=model, batch=batch,
                         cached_tokens=cached, cache_write_tokens=writes)  # fmt: skip

    def table(self) -> list[dict[str, Any]]:
        """One dict per model (for ``pandas.DataFrame(prices.table())``), batch prices and revision too."""
        rows = []
        for name in self.models():
            price = self._prices[name]
            row = dataclasses.asdict(price)
            full = price.as_prices()
            row["batch_input_per_1m"], row["batch_output_per_1m"] = full.batch_input, full.batch_output
            row["revision"] = self.revision
            rows.append(row)
        return rows

    def copy(self) -> PriceTable:
        return PriceTable(self._prices)


def _build_defaults() -> PriceTable:
    table = PriceTable.__new__(PriceTable)
    table._prices = {name: _from_registry(name, lookup(name).prices) for name in families()}
    table._prices.update({name: _from_registry(name, lookup(name).prices) for name in snapshots()})
    return table


DEFAULT_PRICES: PriceTable = _build_defaults()


def default_prices() -> PriceTable:
    """A fresh copy of :data:`DEFAULT_PRICES`, safe to :meth:`~PriceTable.set` on."""
    return DEFAULT_PRICES.copy()


def cost_per_1000_images(
    width: int,
    height: int,
    *,
    model: str,
    detail: str,
    prices: PriceTable | None = None,
    batch: bool = False,
) -> float:
    """Input cost in USD of 1000 images of this size (image tokens only, no text or overhead).

    >>> round(cost_per_1000_images(1024, 1024, model="gpt-4o", detail="high"), 4)
    1.9125
    """
    tokens = image_tokens(width, height, detail=detail, model=model)
    table = DEFAULT_PRICES if prices is None else prices
    return table.cost(tokens * 1000, model=model, batch=batch).input
