"""Intervals and paired tests for experiment arms, on top of scipy and statsmodels.

Binary scores: Wilson intervals, McNemar's exact test. Partial scores in [0, 1]: Wilson on the
score sum (conservative, as their variance is at most p(1-p)) and a paired sign-flip permutation
test. The method follows the kind of score, never the values. A paired difference's interval never
collapses to a point (Agresti-Min; pseudo-images for the bootstrap); Holm adjusts many comparisons.
Methods and sources: docs/internals.md#experiments
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Interval",
    "Paired",
    "wilson_interval",
    "bootstrap_interval",
    "mcnemar_exact",
    "paired_bootstrap",
    "score_sum_interval",
    "sign_flip_test",
    "agresti_min_interval",
    "holm",
    "items_needed",
    "BOOTSTRAP_SEED",
    "BOOTSTRAP_RESAMPLES",
]

BOOTSTRAP_SEED = 20240806
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval and how it was made."""

    estimate: float
    low: float
    high: float
    method: str
    n: int

    def contains(self, value: float) -> bool:
        return self.low - 1e-12 <= value <= self.high + 1e-12


@dataclass(frozen=True)
class Paired:
    """B minus A on the same images: difference, its interval, the test and its p value."""

    n: int  # images with a result in both arms
    difference: Interval
    p_value: float | None
    test: str
    discordant: tuple[int, int] | None = None  # (A right B wrong, A wrong B right), binary only
    cost_ratio: Interval | None = None
    p_bound: bool = False  # True: none of the resamples reached the data, p_value is 1/B and p < 1/B


def wilson_interval(successes: int, n: int, *, alpha: float = 0.05) -> Interval:
    """Wilson score interval of ``successes / n``.

    >>> round(wilson_interval(8, 10).low, 4)
    0.4902
    """
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return Interval(math.nan, math.nan, math.nan, "wilson", 0)
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return Interval(successes / n, float(low), float(high), "wilson", n)


def _constant(values: np.ndarray) -> bool:
    return bool(np.all(values == values[0]))


def bootstrap_interval(values: Sequence[float], *, alpha: float = 0.05, seed: int = BOOTSTRAP_SEED,
                       resamples: int = BOOTSTRAP_RESAMPLES) -> Interval:  # fmt: skip
    """Percentile-bootstrap interval of the mean of ``values`` (one value per image)."""
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Interval(math.nan, math.nan, math.nan, "bootstrap", 0)
    mean = float(data.mean())
    if data.size == 1 or _constant(data):
        return Interval(mean, mean, mean, "bootstrap", int(data.size))
    res = bootstrap((data,), np.mean, confidence_level=1 - alpha, n_resamples=resamples, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True)  # fmt: skip
    ci = res.confidence_interval
    return Interval(mean, float(ci.low), float(ci.high), "bootstrap over images", int(data.size))


def score_sum_interval(values: Sequence[float] | np.ndarray, *, alpha: float = 0.05) -> Interval:
    """Interval of the mean of partial scores in [0, 1]: Wilson on the score sum.

    A score in [0, 1] with mean p has variance at most p(1 - p), the binomial's, so Wilson's
    interval on (sum, n) covers at least as well as on right/wrong data, at any n; 5 of 5 at 1.0
    and {1, 1, 1, 1, 0.5} keep their order (the worse cell gets the lower floor).

    >>> i = score_sum_interval([1, 1, 1, 1, 0.5]); round(i.low, 2), round(i.high, 2)
    (0.46, 0.99)
    """
    from statsmodels.stats.proportion import proportion_confint

    data = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
    if data.size == 0:
        return Interval(math.nan, math.nan, math.nan, "Wilson on the score sum", 0)
    total = float(data.sum())
    low, high = proportion_confint(total, int(data.size), alpha=alpha, method="wilson")
    mean = total / data.size
    return Interval(mean, min(float(low), mean), max(float(high), mean), "Wilson on the score sum", int(data.size))


def sign_flip_test(differences: Sequence[float] | np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                   seed: int = BOOTSTRAP_SEED) -> tuple[float, bool, str]:  # fmt: skip
    """Two-sided paired permutation test of mean difference 0: (p, bound, method).

    Exact over all 2^n sign flips when 2^n <= ``resamples``; else ``resamples`` random flips, and when
    none reaches the observed |mean|, p is reported as the bound 1/B (``bound`` True: "p < 1/B").

    >>> sign_flip_test([1, 1, 1, 1, 1])[:2]   # 2 of 32 flips (all +, all -) are as extreme
    (0.0625, False)
    """
    d = np.asarray(differences, dtype=float)
    n = int(d.size)
    observed = abs(float(d.mean())) if n else 0.0
    if n == 0 or observed == 0.0:
        return 1.0, False, "sign-flip permutation"
    tolerance = 1e-12 * max(1.0, observed)
    if 2**n <= resamples:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        means = np.abs((signs * d).mean(axis=1))
        return float(np.mean(means >= observed - tolerance)), False, f"sign-flip permutation (exact, {2**n} flips)"
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(resamples, n))
    hits = int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed - tolerance))
    method = f"sign-flip permutation ({resamples} random flips)"
    return (1.0 / resamples, True, method) if hits == 0 else (hits / resamples, False, method)


def mcnemar_exact(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[float, tuple[int, int]]:
    """McNemar's exact p value for paired binary scores, and the discordant counts (a only, b only)."""
    from statsmodels.stats.contingency_tables import mcnemar

    x, y = np.asarray(a, dtype=float) >= 0.5, np.asarray(b, dtype=float) >= 0.5
    both, a_only = int(np.sum(x & y)), int(np.sum(x & ~y))
    b_only, neither = int(np.sum(~x & y)), int(np.sum(~x & ~y))
    if a_only + b_only == 0:
        return 1.0, (0, 0)
    result = mcnemar([[both, a_only], [b_only, neither]], exact=True)
    return float(result.pvalue), (a_only, b_only)


def _paired_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.mean(y, axis=axis) - np.mean(x, axis=axis))


def _paired_ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.mean(y, axis=axis) / np.mean(x, axis=axis))


def _paired_interval(a: np.ndarray, b: np.ndarray, statistic: object, point: float, *, alpha: float, seed: int,
                     resamples: int, method: str) -> Interval:  # fmt: skip
    from scipy.stats import bootstrap

    if a.size < 2 or (_constant(a) and _constant(b)):
        return Interval(point, point, point, method, int(a.size))
    res = bootstrap((a, b), statistic, paired=True, confidence_level=1 - alpha, n_resamples=resamples,
                    method="percentile", random_state=np.random.default_rng(seed), vectorized=True)  # fmt: skip
    ci = res.confidence_interval
    return Interval(point, float(ci.low), float(ci.high), method, int(a.size))


def agresti_min_interval(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                         alpha: float = 0.05) -> Interval:
    """B - A for paired right/wrong scores: Agresti-Min adjusted Wald interval (0.5 added to each cell).

    The point estimate is the plain difference of the proportions; the interval is centred on the
    adjusted one, clipped to [-1, 1] and widened to contain the point if needed.
    """
    from scipy.stats import norm

    x, y = np.asarray(a, dtype=float) >= 0.5, np.asarray(b, dtype=float) >= 0.5
    n = int(x.size)
    point = float(np.mean(y) - np.mean(x)) if n else math.nan
    if n == 0:
        return Interval(point, point, point, "", 0)
    # 0.5 added to each cell: Agresti & Min 2005, Statistics in Medicine 24:729-740.
    b_only = float(np.sum(y & ~x)) + 0.5  # B right, A wrong
    a_only = float(np.sum(x & ~y)) + 0.5
    m = n + 2.0
    d = (b_only - a_only) / m
    se = math.sqrt(max(((b_only + a_only) / m - d * d) / m, 0.0))
    z = float(norm.ppf(1 - alpha / 2))
    low, high = max(-1.0, d - z * se), min(1.0, d + z * se)
    return Interval(point, min(low, point), max(high, point), "Agresti-Min adjusted Wald (paired)", n)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, cost_a: Sequence[float] | None = None,
                     cost_b: Sequence[float] | None = None, binary: bool = False, alpha: float = 0.05,
                     seed: int = BOOTSTRAP_SEED, resamples: int = BOOTSTRAP_RESAMPLES) -> Paired:  # fmt: skip
    """B - A on paired images: the mean difference with a paired-bootstrap interval, McNemar's exact
    p value when ``binary`` (else a paired sign-flip permutation test, :func:`sign_flip_test`), and
    the interval of the cost ratio B / A."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired_bootstrap: {x.size} and {y.size} scores; give one pair per image")
    n = int(x.size)
    point = float(np.mean(y) - np.mean(x)) if n else math.nan
    if binary:
        diff = agresti_min_interval(x, y, alpha=alpha)
    elif n:
        # Two pseudo-images with differences +1 and -1: an interval that cannot collapse to a point.
        widened = _paired_interval(np.append(x, [0.0, 1.0]), np.append(y, [1.0, 0.0]), _paired_diff, point,
                                   alpha=alpha, seed=seed, resamples=resamples,
                                   method="paired bootstrap over images (+2 pseudo-images)")  # fmt: skip
        diff = Interval(point, min(widened.low, point), max(widened.high, point), widened.method, n)
    else:
        diff = Interval(point, point, point, "", 0)
    discordant = None
    bound = False
    if n == 0:
        p: float | None = None
        test = "none (no paired images)"
    elif binary:
        p, discordant = mcnemar_exact(x, y)
        test = "McNemar exact"
    else:
        p, bound, test = sign_flip_test(y - x, resamples=resamples, seed=seed)
    ratio = None
    if cost_a is not None and cost_b is not None and n:
        ca, cb = np.asarray(cost_a, dtype=float), np.asarray(cost_b, dtype=float)
        if np.all(np.isfinite(ca)) and np.all(np.isfinite(cb)) and float(np.mean(ca)) > 0:
            ratio = _paired_interval(ca, cb, _paired_ratio, float(np.mean(cb) / np.mean(ca)), alpha=alpha, seed=seed,
                                     resamples=resamples, method="paired bootstrap over images")  # fmt: skip
    return Paired(n, diff, p, test, discordant, ratio, bound)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p values (None stays None)."""
    from statsmodels.stats.multitest import multipletests

    present = [(i, p) for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    out: list[float | None] = [None] * len(p_values)
    if present:
        adjusted = multipletests([p for _, p in present], method="holm")[1]
        for (i, _), q in zip(present, adjusted):
            out[i] = float(q)
    return out


# McNemar's approximate sample size: Connor 1987, Biometrics 43:207-211; 80 % power by default.
def items_needed(difference: float, discordant_rate: float, *, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Paired images McNemar's test needs to detect ``difference`` at ``alpha`` with ``power``.

    ``discordant_rate`` is the share of images where the arms disagree. Connor (1987):
    ``n = (z_{1-a/2} sqrt(p_d) + z_{power} sqrt(p_d - d^2))^2 / d^2``. None when the difference is
    0 (no sample size can show a difference that is not there).
    """
    from scipy.stats import norm

    d = abs(difference)
    p_d = max(discordant_rate, d)
    if d == 0 or p_d == 0:
        return None
    z_a, z_b = norm.ppf(1 - alpha / 2), norm.ppf(power)
    n = (z_a * math.sqrt(p_d) + z_b * math.sqrt(max(p_d - d * d, 0.0))) ** 2 / (d * d)
    return int(math.ceil(n))
