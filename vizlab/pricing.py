"""Dated, sourced prices per model, and the cost of an estimate or a reported usage.

Prices are USD per 1M tokens at OpenAI's standard tier. Azure OpenAI's Global Standard deployments
list the same figures for these models; regional and data-zone deployments can differ, so set them
with :meth:`PriceTable.set` (``source=`` and ``as_of=`` say where the number came from).

Trade-offs: a price is looked up exactly, else by the longest registered ``name + "-"`` prefix (so
``gpt-4o-2024-08-06`` is priced as gpt-4o, ``gpt-4o-mini-...`` never as gpt-4o). Cached input is
charged at the cached price only when a reported usage says how many tokens were cached. Output of an
estimate is ``max_tokens``: an upper bound, never a forecast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from vizlab.errors import UnknownModelError
from vizlab.tokens import image_tokens, match_model

if TYPE_CHECKING:
    from vizlab.tokens import RequestEstimate, Usage

__all__ = [
    "Price",
    "Cost",
    "PriceTable",
    "BATCH_DISCOUNT",
    "DEFAULT_PRICES",
    "default_prices",
    "cost_per_1000_images",
]

# OpenAI Batch API: "50% cost discount vs. the synchronous APIs" (help.openai.com/en/articles/9197833,
# Batch API FAQ, as read 2025-08); Azure OpenAI Global Batch: 50% less than Global Standard (2025-08).
BATCH_DISCOUNT = 0.5

_PER = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens for one model, with where and when the figure was read."""

    model: str
    input_per_1m: float
    output_per_1m: float
    cached_input_per_1m: float | None
    source: str
    as_of: str


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


_PAGE = "openai.com/api/pricing"
_VERIFIED = _PAGE + " (standard tier; cross-checked 2026 against stored copies of pricing tables)"
_MEMORY = _PAGE + " (as listed 2025-08; not re-verified)"

# model: (input, output, cached input, source). Input/output of gpt-4o, gpt-4o-mini, gpt-4.1(-mini,
# -nano), o3, o4-mini, gpt-5(-mini, -nano) were cross-checked against third-party copies of the
# pricing page; gpt-4-turbo, gpt-4.5-preview, o1 and gpt-4o-2024-05-13 against a forum table
# (community.openai.com/t/1262691, 2025). Cached-input figures are from the page as listed 2025-08
# and were NOT re-verified except gpt-4o (1.25) and gpt-4o-mini (0.075).
_DEFAULTS: dict[str, tuple[float, float, float | None, str]] = {
    "gpt-4o": (2.50, 10.00, 1.25, _VERIFIED),
    "gpt-4o-2024-05-13": (5.00, 15.00, None, _VERIFIED),
    "gpt-4o-mini": (0.15, 0.60, 0.075, _VERIFIED),
    "gpt-4.1": (2.00, 8.00, 0.50, _VERIFIED),
    "gpt-4.1-mini": (0.40, 1.60, 0.10, _VERIFIED),
    "gpt-4.1-nano": (0.10, 0.40, 0.025, _VERIFIED),
    "gpt-4-turbo": (10.00, 30.00, None, _VERIFIED),
    "gpt-4-vision-preview": (10.00, 30.00, None, _MEMORY),
    "gpt-4.5-preview": (75.00, 150.00, 37.50, _VERIFIED),
    "o1": (15.00, 60.00, 7.50, _VERIFIED),
    "o3": (2.00, 8.00, 0.50, _VERIFIED),
    "o4-mini": (1.10, 4.40, 0.275, _VERIFIED),
    "gpt-5": (1.25, 10.00, 0.125, _VERIFIED),
    "gpt-5-mini": (0.25, 2.00, 0.025, _VERIFIED),
    "gpt-5-nano": (0.05, 0.40, 0.005, _VERIFIED),
}
_AS_OF = "2025-08"


def _check_rate(name: str, value: float | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} {value!r} must be a non-negative number of USD per 1M tokens")


class PriceTable:
    """Prices by model name; :meth:`set` overrides or adds one (e.g. an Azure regional price)."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        source = DEFAULT_PRICES._prices if prices is None else prices
        self._prices: dict[str, Price] = {k.strip().lower(): v for k, v in source.items()}

    def __repr__(self) -> str:
        return f"PriceTable({len(self._prices)} models: {', '.join(sorted(self._prices))})"

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and match_model(model, self._prices) is not None

    def models(self) -> list[str]:
        return sorted(self._prices)

    def get(self, model: str) -> Price:
        """The price for ``model``: exact, else the longest ``name-`` prefix."""
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
        source: str = "user override",
        as_of: str = "",
    ) -> None:
        """Add or replace ``model``'s price (USD per 1M tokens)."""
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model {model!r} must be a non-empty name")
        _check_rate("input_per_1m", input_per_1m)
        _check_rate("output_per_1m", output_per_1m)
        _check_rate("cached_input_per_1m", cached_input_per_1m, optional=True)
        key = model.strip().lower()
        self._prices[key] = Price(key, float(input_per_1m), float(output_per_1m),
                                  None if cached_input_per_1m is None else float(cached_input_per_1m),
                                  source, as_of)  # fmt: skip

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int = 0,
        *,
        model: str,
        batch: bool = False,
        cached_tokens: int = 0,
    ) -> Cost:
        """Cost of ``prompt_tokens`` in (``cached_tokens`` of them at the cached price) and ``completion_tokens`` out.

        >>> str(default_prices().cost(765, model="gpt-4o"))
        '$0.0019 (input $0.0019 + output $0.0000)'
        """
        for name, n in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens),
                        ("cached_tokens", cached_tokens)):  # fmt: skip
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"{name} {n!r} must be a non-negative integer")
        if cached_tokens > prompt_tokens:
            raise ValueError(f"cached_tokens {cached_tokens} exceeds prompt_tokens {prompt_tokens}")
        price = self.get(model)
        cached_rate = price.input_per_1m if price.cached_input_per_1m is None else price.cached_input_per_1m
        factor = (1 - BATCH_DISCOUNT) if batch else 1.0
        input_cost = ((prompt_tokens - cached_tokens) * price.input_per_1m + cached_tokens * cached_rate) / _PER
        output_cost = completion_tokens * price.output_per_1m / _PER
        return Cost(input_cost * factor, output_cost * factor, batch, model)

    def cost_of(self, usage: Usage | RequestEstimate | Any, *, model: str, batch: bool = False) -> Cost:
        """Cost of a :class:`~vizlab.tokens.Usage`, a :class:`~vizlab.tokens.RequestEstimate` or the SDK's usage."""
        from vizlab.tokens import RequestEstimate, Usage

        if not isinstance(usage, (Usage, RequestEstimate)):
            usage = Usage.from_openai(usage)
        cached = usage.details.get("cached_tokens", 0) if isinstance(usage, Usage) else 0
        return self.cost(usage.prompt_tokens, usage.completion_tokens, model=model, batch=batch,
                         cached_tokens=cached)  # fmt: skip

    def table(self) -> list[dict[str, Any]]:
        """One dict per model (for ``pandas.DataFrame(prices.table())``), with batch prices too."""
        rows = []
        for name in self.models():
            row = dataclasses.asdict(self._prices[name])
            row["batch_input_per_1m"] = row["input_per_1m"] * (1 - BATCH_DISCOUNT)
            row["batch_output_per_1m"] = row["output_per_1m"] * (1 - BATCH_DISCOUNT)
            rows.append(row)
        return rows

    def copy(self) -> PriceTable:
        return PriceTable(self._prices)


def _build_defaults() -> PriceTable:
    table = PriceTable.__new__(PriceTable)
    table._prices = {
        name: Price(name, inp, out, cached, source, _AS_OF) for name, (inp, out, cached, source) in _DEFAULTS.items()
    }
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
