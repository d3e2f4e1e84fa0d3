"""What a run asks: :class:`RunSpec` (the grid, the request, the run's limits) and :class:`Arm`.

A RunSpec is frozen and checks itself when made, so a bad argument fails before an image is read,
with a message naming it. An arm is one cell of the grid: deployment x detail x strategy x
``reasoning_effort``; whether a deployment's model takes an effort is checked against the model
registry when the run is planned (the spec alone does not know the models behind deployments).
Details: docs/experiments.md#reasoning-effort-as-an-arm
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vizlab.errors import UnknownDetailError, VizlabError
from vizlab.experiments.document_arms import DOCUMENT_STRATEGIES
from vizlab.experiments.strategies import check_strategy
from vizlab.models.registry import families, lookup
from vizlab.tokens.image import DETAILS

__all__ = ["Arm", "RunSpec", "check_effort", "effort_names"]


def effort_names() -> tuple[str, ...]:
    """Every ``reasoning_effort`` some model in the registry accepts (none of them is a model's promise).

    >>> {"low", "medium", "high"} <= set(effort_names())
    True
    """
    return tuple(sorted({e for name in families() for e in lookup(name).efforts}))


@dataclass(frozen=True)
class Arm:
    """One way of asking: a deployment, a detail, an image strategy and (optionally) a reasoning effort.

    >>> Arm("gpt-5.5", "high", reasoning_effort="low").label
    'gpt-5.5/high/effort=low'
    """

    deployment: str
    detail: str
    strategy: str = "whole"
    reasoning_effort: str | None = None

    @property
    def label(self) -> str:
        strategy = "" if self.strategy == "whole" else f"/{self.strategy}"
        effort = "" if self.reasoning_effort is None else f"/effort={self.reasoning_effort}"
        return f"{self.deployment}/{self.detail}{strategy}{effort}"


def _tuple(name: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, str) or value is None:
        return (value,)
    if not isinstance(value, Iterable):
        raise TypeError(f"{name}={value!r}: give a sequence, e.g. {name}=('low', 'high')")
    return tuple(value)


def _whole(name: str, value: Any, *, minimum: int, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r}: use a whole number >= {minimum}" + (", or None" if none_ok else ""))


def _positive(name: str, value: Any, *, none_ok: bool = False, hint: str = "") -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name}={value!r}: give a positive number{hint}" + (", or None" if none_ok else ""))


@dataclass(frozen=True)
class RunSpec:
    """Everything :func:`~vizlab.experiments.run_experiment` takes besides the client and the items.

    The grid is ``deployments`` (None: the client's) x ``details`` x ``strategies`` (or ``document``
    for PDFs) x ``reasoning_efforts`` (``(None,)``: the model's default, no arm per effort).
    ``labels``, ``prompt``, ``scorer`` and ``judges`` go to :func:`~vizlab.experiments.load_items`.

    >>> RunSpec(details=("low", "high"), reasoning_efforts=("low", "high")).efforts
    ('low', 'high')
    >>> RunSpec(repeats=0)
    Traceback (most recent call last):
    ...
    ValueError: repeats=0: use a whole number >= 1
    """

    deployments: tuple[str, ...] | None = None
    details: tuple[str, ...] = ("low", "high")
    strategies: tuple[str, ...] = ("whole",)
    document: tuple[str, ...] | None = None
    reasoning_efforts: tuple[str | None, ...] = (None,)
    repeats: int = 1
    labels: str | os.PathLike[str] | None = None
    prompt: str | None = None
    system: str | None = None
    response_format: Mapping[str, Any] | None = None
    scorer: Any = None
    judges: Mapping[str, Any] | None = None
    max_tokens: int | None = 300
    temperature: float | None = None
    seed: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    cache_dir: str | os.PathLike[str] = ".vizlab-cache/experiments"
    concurrency: int = 4
    max_usd: float | None = None
    dry_run: bool = False
    tpm: int | None = None
    rpm: int | None = None
    rate_window_s: float = 60.0
    rate_limit_timeout_s: float = 600.0
    check_version: bool = False
    batch: bool = False
    batch_dir: str | os.PathLike[str] | None = None
    progress: bool = True
    resend_unknown: bool = False

    def __post_init__(self) -> None:
        self._normalise()
        self._check_grid()
        self._check_request()
        self._check_limits()

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # frozen: normalised once, here

    def _normalise(self) -> None:
        if self.deployments is not None:
            deployments = _tuple("deployments", self.deployments)
            self._set("deployments", deployments or None)
        self._set("details", _tuple("details", self.details))
        self._set("strategies", _tuple("strategies", self.strategies))
        if self.document is not None:
            self._set("document", _tuple("document", self.document))
        efforts = _tuple("reasoning_efforts", self.reasoning_efforts)
        self._set("reasoning_efforts", efforts or (None,))
        self._set("params", dict(self.params or {}))

    def _check_grid(self) -> None:
        bad = [d for d in self.details if d not in DETAILS]
        if bad or not self.details:
            raise UnknownDetailError(f"details={self.details!r}: each must be one of {', '.join(DETAILS)}",
                                     detail=bad[0] if bad else None)  # fmt: skip
        if self.deployments is not None and not all(isinstance(d, str) and d for d in self.deployments):
            raise ValueError(f"deployments={self.deployments!r}: each must be a deployment's name (a non-empty string)")
        for s in self.strategies:
            check_strategy(s)
        for d in self.document or ():
            if f"document:{d}" not in DOCUMENT_STRATEGIES:
                raise ValueError(f"document={self.document!r}: each must be 'text', 'pages' or 'both'")
        known = effort_names()
        for e in self.reasoning_efforts:
            if e is not None and e not in known:
                raise ValueError(f"reasoning_efforts={self.reasoning_efforts!r}: {e!r} is no model's reasoning effort; "
                                 f"use some of {', '.join(known)} (or None for the model's default)")  # fmt: skip
        if len(set(self.reasoning_efforts)) != len(self.reasoning_efforts):
            raise ValueError(f"reasoning_efforts={self.reasoning_efforts!r}: name each effort once")
        if "reasoning_effort" in self.params and self.reasoning_efforts != (None,):
            raise ValueError("params={'reasoning_effort': ...} and reasoning_efforts= both set the effort: "
                             "use reasoning_efforts= alone (one arm per effort)")  # fmt: skip
        _whole("repeats", self.repeats, minimum=1)

    def _check_request(self) -> None:
        _whole("max_tokens", self.max_tokens, minimum=1, none_ok=True)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed={self.seed!r}: use a whole number, or None")
        if self.temperature is not None and not (isinstance(self.temperature, (int, float)) and 0 <= self.temperature <= 2):
            raise ValueError(f"temperature={self.temperature!r}: give a number from 0 to 2, or None")
        if self.response_format is not None and not isinstance(self.response_format, Mapping):
            raise TypeError(f"response_format={self.response_format!r:.60}: give a dict (a JSON schema format)")
        for name in ("messages", "model"):
            if name in self.params:
                raise ValueError(f"params={{{name!r}: ...}}: {name} is set by the runner; leave it out of params")

    def _check_limits(self) -> None:
        _whole("concurrency", self.concurrency, minimum=1)
        _positive("max_usd", self.max_usd, none_ok=True, hint=" of US dollars (the run's cap)")
        _whole("tpm", self.tpm, minimum=1, none_ok=True)
        _whole("rpm", self.rpm, minimum=1, none_ok=True)
        _positive("rate_window_s", self.rate_window_s, hint=" of seconds")
        _positive("rate_limit_timeout_s", self.rate_limit_timeout_s, hint=" of seconds")

    # -- what the grid is made of --

    @property
    def efforts(self) -> tuple[str | None, ...]:
        return self.reasoning_efforts

    @property
    def arm_strategies(self) -> tuple[str, ...]:
        """``strategies``, or one ``document:...`` strategy per ``document`` form for PDFs."""
        if self.document is not None:
            return tuple(f"document:{d}" for d in self.document)
        return self.strategies

    def arms(self, deployments: Sequence[str]) -> list[Arm]:
        """Every arm of the grid, deployment by deployment, in a stable order."""
        return [Arm(d, detail, s, e) for d in deployments for detail in self.details for s in self.arm_strategies
                for e in self.reasoning_efforts]  # fmt: skip


def check_effort(arm: Arm, info: Any, *, model_known: bool) -> None:
    """Refuse an arm's ``reasoning_effort`` its deployment's model does not take (by the registry)."""
    effort = arm.reasoning_effort
    if effort is None:
        return
    if not model_known or info is None:
        raise VizlabError(f"arm {arm.label!r}: the model behind deployment {arm.deployment!r} is unknown, so vizlab "
                          "cannot tell whether it takes reasoning_effort; name it with connect(model=...) or "
                          "AZURE_OPENAI_MODEL, or drop reasoning_efforts")  # fmt: skip
    if not info.reasoning:
        raise VizlabError(f"arm {arm.label!r}: deployment {arm.deployment!r} runs {info.name}, which is not a "
                          "reasoning model and takes no reasoning_effort; drop reasoning_efforts for it, or run a "
                          "reasoning deployment (gpt-5.x, o-series)")  # fmt: skip
    if effort not in info.efforts:
        raise VizlabError(f"arm {arm.label!r}: {info.name} does not take reasoning_effort={effort!r}; use some of "
                          f"{', '.join(info.efforts)}")  # fmt: skip
