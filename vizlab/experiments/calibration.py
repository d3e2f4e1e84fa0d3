"""Which image rule a live deployment bills by, measured from a few reported usages.

:func:`calibrate` sends a text-only baseline and a few small synthetic images and compares the
reported tokens with every rule profile of the model's family; :func:`fit` does it offline from
measurements you have. Trade-offs: exact or nothing (never the nearest profile); probes are
chosen to separate profiles; the cost is stated before sending and capped, and the result is
cached per deployment and model version. Details: docs/internals.md#experiments
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from vizlab import tokens
from vizlab.conversation.storage import atomic_write_text
from vizlab.errors import VizlabError
from vizlab.experiments.document_calibration import DocumentCalibration
from vizlab.models.registry import lookup
from vizlab.models.types import RULE_PROFILES

if TYPE_CHECKING:
    from vizlab.client.core import Client

__all__ = [
    "MIN_SEPARATION",
    "MAX_OVERHEAD",
    "DEFAULT_COST_CAP",
    "Probe",
    "Measurement",
    "ProfileFit",
    "Plan",
    "Calibration",
    "CalibrationError",
    "plan",
    "fit",
    "calibrate",
]

MIN_SEPARATION = 20  # tokens: probes must tell candidate profiles apart by at least this much
MAX_OVERHEAD = 40  # tokens: the largest text overhead accepted when the baseline is unknown
DEFAULT_COST_CAP = 0.05  # USD: "a few cents"
MAX_PROBES = 5
PROMPT = "Calibration probe: reply with the single word OK."
MAX_OUTPUT = 16  # tokens per probe reply; the answer is not read
CACHE_ENV = "VIZLAB_CACHE_DIR"

# The pool: small sizes that exercise each rule feature (worked examples of the guide among them).
POOL_SIZES: tuple[tuple[int, int], ...] = (
    (128, 64),  # the forum's measured image (one tile; base vs per-tile at low/high)
    (512, 512), (513, 513),  # one tile vs four; 16 x 16 vs 17 x 17 patches
    (1000, 1334),  # the 768 step's rounding: 765 (round down) vs 1105 on gpt-4o
    (700, 2000),  # short side under 768: no step
    (1800, 2400),  # the patch guide's example (1452 patches)
    (2049, 513), (2050, 513),  # box-fit rounding (community.openai.com/t/1281361)
    (4000, 1474),  # over the 1,536-patch budget (the gpt-4.1-mini bill)
)  # fmt: skip


class CalibrationError(VizlabError):
    """Calibration could not run: over the cost cap, an unknown model, or no usage reported."""


@dataclass(frozen=True)
class Probe:
    """One synthetic image: ``width`` x ``height`` pixels sent at ``detail``."""

    width: int
    height: int
    detail: str

    def __str__(self) -> str:
        return f"{self.width}x{self.height} {self.detail}"

    def png(self) -> bytes:
        """A PNG of exactly this size: a pale field with a dark diagonal (compresses small)."""
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (self.width, self.height), (235, 235, 225))
        ImageDraw.Draw(img).line((0, 0, self.width - 1, self.height - 1), fill=(20, 20, 60), width=3)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=False, compress_level=6)
        return buf.getvalue()


@dataclass(frozen=True)
class Measurement:
    """A reported ``prompt_tokens`` for ``probe`` (``None``: the text-only baseline itself)."""

    probe: Probe
    prompt_tokens: int
    source: str = ""


@dataclass
class ProfileFit:
    """How one rule profile explains the measurements: predicted image tokens and residuals."""

    profile: str
    predicted: list[int]
    residuals: list[int]  # measured image tokens - predicted, per probe
    offset: int | None  # the text baseline used (measured, or solved when unknown)
    fits: bool


@dataclass
class Plan:
    """What :func:`calibrate` will send: requests, tokens and cost, stated before sending."""

    model: str
    probes: list[Probe]
    candidates: list[str]
    requests: int
    prompt_tokens: int  # the most it can be, over the candidate profiles
    output_tokens: int
    cost: float | None  # USD at the model's list price, None when unpriced
    indistinguishable: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        cost = "unpriced" if self.cost is None else f"about ${self.cost:.4f}"
        same = (
            "; indistinguishable on every probe: " + ", ".join(f"{a} = {b}" for a, b in self.indistinguishable)
            if self.indistinguishable else ""
        )
        return (
            f"calibration of {self.model}: {self.requests} requests (1 text-only baseline + {len(self.probes)} "
            f"probes: {', '.join(map(str, self.probes))}), at most {self.prompt_tokens:,} prompt + "
            f"{self.output_tokens:,} output tokens, {cost}; candidates {', '.join(self.candidates)}{same}"
        )


@dataclass
class Calibration:
    """The verdict: the fitting profile (or None), every profile's residuals, the evidence."""

    model: str
    profile: str | None  # the newest profile that explains every probe exactly, else None
    consistent: list[str]  # every profile that does (indistinguishable ones together)
    fits: list[ProfileFit]
    measurements: list[Measurement]
    baseline_tokens: int | None
    fitted: dict[str, float] | None  # numbers that explain every probe exactly, if they solve
    endpoint: str = ""
    deployment: str = ""
    model_version: str = ""
    requests: int = 0
    prompt_tokens_spent: int = 0
    cost: float | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.profile is not None

    def explain(self) -> str:
        """Every probe, the measured image tokens and each profile's prediction and residual."""
        if self.baseline_tokens is None:
            offsets = ", ".join(f"{f.profile} {f.offset}" for f in self.fits)
            base = f"text-only baseline: not measured; the text offset each profile needs: {offsets}"
        else:
            base = f"text-only baseline: {self.baseline_tokens} prompt tokens"
        lines = [self.summary(), base]
        for i, m in enumerate(self.measurements):
            cells = [
                f"{f.profile} {f.predicted[i]} ({f.residuals[i]:+d})" for f in self.fits
            ]
            lines.append(f"  {m.probe}: reported {m.prompt_tokens} prompt tokens; " + "; ".join(cells))
        if self.fitted:
            lines.append("  numbers that explain every probe: " + ", ".join(f"{k}={v:g}" for k, v in self.fitted.items()))
        return "\n".join(lines)

    def summary(self) -> str:
        where = f" ({self.deployment} at {self.endpoint}, model {self.model_version})" if self.deployment else ""
        spent = f"; {self.requests} requests, {self.prompt_tokens_spent:,} prompt tokens" if self.requests else ""
        cache = " [cached result]" if self.cached else ""
        if self.profile is not None:
            also = [p for p in self.consistent if p != self.profile]
            same = f" (equally: {', '.join(also)})" if also else ""
            return f"{self.model}{where} bills images by profile {self.profile}{same}{spent}{cache}"
        residuals = "; ".join(f"{f.profile} residuals {f.residuals}" for f in self.fits)
        fitted = f"; fitted numbers {self.fitted}" if self.fitted else ""
        return f"{self.model}{where}: no profile fits ({residuals}){fitted}{spent}{cache}"

    __str__ = summary

    def _repr_markdown_(self) -> str:
        return "```\n" + self.explain() + "\n```"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        measurements = [Measurement(Probe(**m["probe"]), m["prompt_tokens"], m.get("source", "")) for m in data["measurements"]]
        fits = [ProfileFit(**f) for f in data["fits"]]
        rest = {k: v for k, v in data.items() if k not in ("measurements", "fits")}
        return cls(fits=fits, measurements=measurements, **rest)


# --- choosing probes -------------------------------------------------------------------------


def _candidates(model: str, candidates: list[str] | None) -> list[str]:
    info = lookup(model)
    if not info.vision:
        raise CalibrationError(f"{info.name} takes no image input (registry: vision=False): nothing to calibrate")
    names = list(candidates) if candidates is not None else list(RULE_PROFILES)
    usable = []
    for name in names:
        try:
            info.image_rule(name)
        except VizlabError:
            continue
        usable.append(name)
    if not usable:
        raise CalibrationError(f"none of the profiles {names} has an image rule for {info.name}")
    return usable


def _predict(probe: Probe, model: str, profile: str) -> int | None:
    try:
        return int(tokens.image_tokens(probe.width, probe.height, detail=probe.detail, model=model, rules=profile))
    except VizlabError:  # the detail is not accepted by that profile
        return None


def _pool(model: str, profiles: list[str]) -> list[Probe]:
    details = ["low", "high"]
    if any("original" in lookup(model).image_rule(p).details for p in profiles):
        details.append("original")
    return [Probe(w, h, d) for (w, h) in POOL_SIZES for d in details]


def _choose(model: str, profiles: list[str]) -> tuple[list[Probe], list[tuple[str, str]]]:
    """The fewest probes that tell every pair of candidate profiles apart, and the pairs none can."""
    pool = [p for p in _pool(model, profiles) if all(_predict(p, model, c) is not None for c in profiles)]
    pairs = {(i, j) for i in range(len(profiles)) for j in range(i + 1, len(profiles))}
    separates = _separations(model, profiles, pool, pairs)
    chosen = _greedy(pool, separates)
    # Made-up numbers show up on any probe, but base and per-tile (or the multiplier and the
    # budget) only together: keep at least one low and one high probe, the smallest that qualify.
    for detail in ("low", "high"):
        if not any(p.detail == detail for p in chosen):
            options = [p for p in pool if p.detail == detail and (separates[p] or not pairs)]
            options = options or [p for p in pool if p.detail == detail]
            if options:
                chosen.append(min(options, key=lambda p: p.width * p.height))
    told = set().union(*separates.values()) if separates else set()
    same = [(profiles[i], profiles[j]) for (i, j) in sorted(pairs) if (i, j) not in told]
    return chosen, same


def _separations(model: str, profiles: list[str], pool: list[Probe],
                 pairs: set[tuple[int, int]]) -> dict[Probe, set[tuple[int, int]]]:  # fmt: skip
    """For each probe, the pairs of profiles whose predictions it tells apart."""
    out = {}
    for probe in pool:
        row = [_predict(probe, model, c) or 0 for c in profiles]
        out[probe] = {(i, j) for (i, j) in pairs if abs(row[i] - row[j]) >= MIN_SEPARATION}
    return out


def _greedy(pool: list[Probe], separates: dict[Probe, set[tuple[int, int]]]) -> list[Probe]:
    """Probes picked one by one, each telling apart the most pairs still open (the smaller on a tie)."""
    chosen: list[Probe] = []
    open_pairs = set().union(*separates.values()) if separates else set()
    while open_pairs and len(chosen) < MAX_PROBES:
        best = max(pool, key=lambda p: (len(separates[p] & open_pairs), -p.width * p.height))
        if not separates[best] & open_pairs:
            break
        chosen.append(best)
        open_pairs -= separates[best]
    return chosen


def plan(model: str, *, candidates: list[str] | None = None, prices: Any = None) -> Plan:
    """The probes, requests, tokens and cost a calibration of ``model`` will spend."""
    profiles = _candidates(model, candidates)
    probes, same = _choose(model, profiles)
    text = tokens.estimate_request([{"role": "user", "content": PROMPT}], model=model).prompt_tokens
    worst = sum(max(_predict(p, model, c) or 0 for c in profiles) + text for p in probes) + text
    requests = 1 + len(probes)
    output = requests * MAX_OUTPUT
    cost: float | None
    try:
        from vizlab.tokens.pricing import default_prices

        table = prices if prices is not None else default_prices()
        cost = float(table.cost(worst, output, model=model).total)
    except VizlabError:
        cost = None
    return Plan(lookup(model).name, probes, profiles, requests, worst, output, cost, same)


# --- fitting ---------------------------------------------------------------------------------


def _simplest_multiplier(points: list[tuple[int, int]]) -> float | None:
    """The multiplier with the fewest decimals (up to 3) such that ceil(patches x m) = tokens for
    every point: each point allows m in ((tokens - 1) / patches, tokens / patches].

    >>> _simplest_multiplier([(1452, 1888), (256, 333)])
    1.3
    """
    if not points:
        return None
    low = max(Fraction(t - 1, p) for p, t in points)
    high = min(Fraction(t, p) for p, t in points)
    if low >= high:
        return None
    for digits in (1, 2, 3):
        scale = 10**digits
        candidate = Fraction(int(low * scale) + 1, scale)  # the first step above low
        if candidate <= high:
            return float(candidate)
    return None


def _solve_numbers(model: str, image_tokens: list[tuple[Probe, int]], profiles: list[str]) -> dict[str, float] | None:
    """Numbers of the family's rule kind that explain every probe exactly, or None."""
    for profile in profiles:
        rule = lookup(model).image_rule(profile)
        parts = [(tokens.explain_image_tokens(p.width, p.height, detail=p.detail, model=model, rules=profile), t)
                 for p, t in image_tokens]  # fmt: skip
        if rule.kind == "patch":
            multiplier = _simplest_multiplier([(b.patches, t) for b, t in parts if b.patches])
            if multiplier is not None:
                return {"multiplier": multiplier}
            continue
        lows = {t for b, t in parts if b.detail_used == "low"}
        if len(lows) > 1:
            continue
        base = lows.pop() if lows else None
        per_tile: set[Fraction] = set()
        for b, t in parts:
            if b.detail_used != "low" and b.tiles and base is not None:
                per_tile.add(Fraction(t - base, b.tiles))
        if base is not None and len(per_tile) == 1:
            value = per_tile.pop()
            if value.denominator == 1 and value >= 0:
                return {"base": float(base), "per_tile": float(value)}
    return None


def fit(
    measurements: list[Measurement],
    model: str,
    *,
    baseline_tokens: int | None = None,
    candidates: list[str] | None = None,
) -> Calibration:
    """Which profile explains ``measurements`` (reported prompt tokens of one text + one image).

    ``baseline_tokens``: the same request's prompt tokens without the image; None solves it as
    one offset, equal for every probe and within 0..:data:`MAX_OVERHEAD`.

    >>> forum = [Measurement(Probe(128, 64, "high"), 267), Measurement(Probe(128, 64, "low"), 97)]
    >>> fit(forum, "gpt-4o").baseline_tokens is None
    True
    """
    if not measurements:
        raise CalibrationError("fit() needs at least one measurement (a probe and its reported prompt_tokens)")
    profiles = _candidates(model, candidates)
    fits: list[ProfileFit] = []
    for profile in profiles:
        predicted = [_predict(m.probe, model, profile) for m in measurements]
        if any(p is None for p in predicted):
            continue
        pred = [int(p) for p in predicted if p is not None]
        if baseline_tokens is not None:
            offset: int | None = baseline_tokens
        else:
            offsets = {m.prompt_tokens - p for m, p in zip(measurements, pred)}
            offset = offsets.pop() if len(offsets) == 1 else min(offsets)
        residuals = [m.prompt_tokens - (offset or 0) - p for m, p in zip(measurements, pred)]
        ok = all(r == 0 for r in residuals)
        if baseline_tokens is None and offset is not None and not 0 <= offset <= MAX_OVERHEAD:
            ok = False
        fits.append(ProfileFit(profile, pred, residuals, offset, ok))
    consistent = [f.profile for f in fits if f.fits]
    # RULE_PROFILES lists the newest first: the first consistent one is the newest.
    best = consistent[0] if consistent else None
    fitted = None
    if best is None and baseline_tokens is not None:
        fitted = _solve_numbers(model, [(m.probe, m.prompt_tokens - baseline_tokens) for m in measurements], profiles)
    return Calibration(lookup(model).name, best, consistent, fits, list(measurements), baseline_tokens, fitted)


# --- against a live deployment ---------------------------------------------------------------


def _cache_file(cache: str | os.PathLike[str] | None | bool) -> Path | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "vizlab")
        return Path(root) / "calibration.json"
    path = Path(cache)
    return path / "calibration.json" if path.suffix != ".json" else path


def _read_cache(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # a damaged cache is a miss, not an error
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path | None, key: str, result: Calibration) -> None:
    if path is None:
        return
    data = _read_cache(path)
    data[key] = result.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


def _send(client: Client, probe: Probe | None) -> tuple[int, str]:
    from vizlab.images.encode import to_data_url

    content: list[dict[str, Any]] = [{"type": "text", "text": PROMPT}]
    if probe is not None:
        url = to_data_url(probe.png())
        content.append({"type": "image_url", "image_url": {"url": url, "detail": probe.detail}})
    import warnings

    with warnings.catch_warnings():  # a reply cut at MAX_OUTPUT is expected: only usage is read
        warnings.simplefilter("ignore", UserWarning)
        reply = client.chat([{"role": "user", "content": content}], max_tokens=MAX_OUTPUT)
    if reply.usage is None:
        raise CalibrationError(
            f"{client.deployment} at {client.endpoint} reported no usage, so nothing can be measured"
        )
    return reply.usage.prompt_tokens, reply.model


@overload
def calibrate(
    client: Client, *, cost_cap: float = ..., candidates: list[str] | None = ...,
    cache: str | os.PathLike[str] | bool | None = ..., apply: bool = ..., verbose: bool = ...,
    documents: Literal[False] = ...,
) -> Calibration: ...  # fmt: skip


@overload
def calibrate(
    client: Client, *, cost_cap: float = ..., candidates: list[str] | None = ...,
    cache: str | os.PathLike[str] | bool | None = ..., apply: bool = ..., verbose: bool = ...,
    documents: Literal[True],
) -> DocumentCalibration: ...  # fmt: skip


def calibrate(
    client: Client,
    *,
    cost_cap: float = DEFAULT_COST_CAP,
    candidates: list[str] | None = None,
    cache: str | os.PathLike[str] | bool | None = True,
    apply: bool = True,
    verbose: bool = True,
    documents: bool = False,
) -> Calibration | DocumentCalibration:
    """Measure which rule profile ``client``'s deployment bills images by.

    States the plan (requests, tokens, cost) first, refuses when the cost is over ``cost_cap``
    (USD), sends the text-only baseline, returns the cached result for this endpoint +
    deployment + model version if there is one (``cache=True``: ``$VIZLAB_CACHE_DIR`` or
    ``~/.cache/vizlab``; a path; or None), else sends the probes and fits. With ``apply`` the
    client then estimates by the profile found (``client.token_rules``).

    ``documents=True`` instead probes how a PDF is billed (text layer + page image, and which
    render dpi explains it): :func:`vizlab.document_calibration.calibrate_documents`.

    >>> result = vizlab.calibrate(vizlab.connect())   # doctest: +SKIP
    """
    if documents:
        from vizlab.experiments.document_calibration import calibrate_documents

        return calibrate_documents(client, verbose=verbose)
    if isinstance(cost_cap, bool) or not isinstance(cost_cap, (int, float)) or not 0 <= cost_cap < math.inf:
        raise CalibrationError(
            f"cost_cap={cost_cap!r} must be a finite number of US dollars >= 0 (e.g. 0.05): a NaN or infinite cap "
            "would never refuse, so nothing was sent"
        )
    model = client.model_info.name if client.model_info is not None else client.token_model
    the_plan = plan(model, candidates=candidates)
    if verbose:
        print(f"vizlab: {the_plan}")
    if the_plan.cost is not None and the_plan.cost > cost_cap:
        raise CalibrationError(
            f"calibrating {model} would cost about ${the_plan.cost:.4f}, over cost_cap=${cost_cap:g}: raise "
            "cost_cap, or pass fewer candidates="
        )
    baseline, version = _send(client, None)
    key = json.dumps([client.endpoint, client.deployment, version, the_plan.candidates])
    path = _cache_file(cache)
    hit = _read_cache(path).get(key)
    if isinstance(hit, dict):
        try:
            result = Calibration.from_json(hit)
        except (TypeError, KeyError):
            result = None
        if result is not None:
            result.cached = True
            if verbose:
                print(f"vizlab: {result.summary()}")
            return _applied(client, result, apply)
    measurements = []
    spent = baseline
    for probe in the_plan.probes:
        prompt_tokens, _ = _send(client, probe)
        spent += prompt_tokens
        measurements.append(Measurement(probe, prompt_tokens, "measured"))
    result = fit(measurements, model, baseline_tokens=baseline, candidates=the_plan.candidates)
    result.endpoint, result.deployment, result.model_version = client.endpoint, client.deployment, version
    result.requests, result.prompt_tokens_spent = the_plan.requests, spent
    try:
        from vizlab.tokens.pricing import default_prices

        result.cost = float(default_prices().cost(spent, the_plan.output_tokens, model=model).total)
    except VizlabError:
        result.cost = None
    _write_cache(path, key, result)
    if verbose:
        print(f"vizlab: {result.summary()}")
    return _applied(client, result, apply)


def _applied(client: Client, result: Calibration, apply: bool) -> Calibration:
    if apply and result.profile is not None:
        client.token_rules = result.profile
    return result
