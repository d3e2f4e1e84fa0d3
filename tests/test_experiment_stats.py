"""Each figure of vizlab.experiments.stats against scipy / statsmodels on fixtures, and the scorers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, bootstrap
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from vizlab.experiments import stats
from vizlab.experiments.pacing import Pacer
from vizlab.experiments.scorers import UnknownScorerError, get_scorer


@pytest.mark.parametrize(("k", "n"), [(0, 10), (7, 10), (10, 10), (120, 240)])
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    got = stats.wilson_interval(k, n)
    low, high = proportion_confint(k, n, method="wilson")
    assert (got.low, got.high) == pytest.approx((low, high)) and got.contains(k / n)


def test_mcnemar_exact_is_the_binomial_test_on_discordant_pairs() -> None:
    a = [1] * 20 + [0] * 10 + [1] * 2 + [0] * 8
    b = [1] * 20 + [0] * 10 + [0] * 2 + [1] * 8
    p, (a_only, b_only) = stats.mcnemar_exact(a, b)
    assert (a_only, b_only) == (2, 8)
    assert p == pytest.approx(binomtest(2, 10, 0.5).pvalue)


def test_bootstrap_interval_matches_scipy_with_the_same_seed() -> None:
    values = np.array([0, 0.5, 1, 1, 0.25, 0.75, 1, 0, 0.5, 1.0])
    got = stats.bootstrap_interval(values, seed=7)
    ref = bootstrap((values,), np.mean, n_resamples=stats.BOOTSTRAP_RESAMPLES, method="percentile",
                    random_state=np.random.default_rng(7), vectorized=True).confidence_interval  # fmt: skip
    assert (got.low, got.high) == pytest.approx((ref.low, ref.high)) and got.contains(values.mean())


def test_paired_bootstrap_difference_and_cost_ratio() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 40)
    b = np.clip(a + 0.2, 0, 1)
    paired = stats.paired_bootstrap(a, b, cost_a=[1.0] * 40, cost_b=[9.0] * 40)
    assert paired.difference.estimate == pytest.approx(float(np.mean(b - a)))
    # scipy's paired bootstrap over the images plus the two pseudo-images (differences +1 and -1)
    ref = bootstrap((np.append(a, [0.0, 1.0]), np.append(b, [1.0, 0.0])),
                    lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis), paired=True,
                    n_resamples=stats.BOOTSTRAP_RESAMPLES, method="percentile",
                    random_state=np.random.default_rng(stats.BOOTSTRAP_SEED), vectorized=True).confidence_interval  # fmt: skip
    assert (paired.difference.low, paired.difference.high) == pytest.approx((ref.low, ref.high))
    assert paired.cost_ratio is not None and paired.cost_ratio.estimate == pytest.approx(9.0)
    assert paired.p_value is not None and paired.p_value < 0.01


def test_agresti_min_interval_by_hand_and_never_a_point() -> None:
    # 30 pairs: B right where A wrong 8 times, A right where B wrong 2 times, 20 agree.
    a = np.array([0] * 8 + [1] * 2 + [1] * 12 + [0] * 8, dtype=float)
    b = np.array([1] * 8 + [0] * 2 + [1] * 12 + [0] * 8, dtype=float)
    got = stats.agresti_min_interval(a, b)
    p12, p21, m = 8.5 / 32, 2.5 / 32, 32
    d = p12 - p21
    half = 1.959963984540054 * np.sqrt((p12 + p21 - d * d) / m)
    assert got.estimate == pytest.approx(6 / 30)
    assert (got.low, got.high) == pytest.approx((d - half, d + half))
    # Twelve images on which both arms agree: not [0, 0], but about +/- 14 points (MARGIN is 5).
    same = stats.paired_bootstrap([1.0] * 9 + [0.0] * 3, [1.0] * 9 + [0.0] * 3, binary=True)
    assert same.difference.estimate == 0 and same.difference.low < -0.1 and same.difference.high > 0.1
    partial = stats.paired_bootstrap([0.5] * 12, [0.5] * 12)
    assert partial.difference.low < -0.05 and partial.difference.high > 0.05


@pytest.mark.slow
def test_holm_matches_statsmodels() -> None:
    ps = [0.01, 0.04, 0.03, None, 0.5]
    got = stats.holm(ps)
    ref = multipletests([0.01, 0.04, 0.03, 0.5], method="holm")[1]
    assert got[3] is None
    assert [got[i] for i in (0, 1, 2, 4)] == pytest.approx(list(ref))


def test_items_needed_grows_as_the_difference_shrinks() -> None:
    assert stats.items_needed(0.0, 0.2) is None
    big, small = stats.items_needed(0.2, 0.3), stats.items_needed(0.05, 0.3)
    assert big is not None and small is not None and small > 4 * big


@pytest.mark.parametrize(("spec", "answer", "expected", "value"), [
    ("exact", " K7RF ", "K7RF", 1.0), ("exact", "k7rf", "K7RF", 0.0),
    ("normalised", "k7-rf.", "K7RF", 1.0), ("contains", "The code is K7RF.", "k7rf", 1.0),
    ("numeric", "about 12 apples", "12", 1.0), ("numeric:0.5", "12.4", "12", 1.0), ("numeric:1%", "12.4", "12", 0.0),
    ("numeric", "GPT-4o here: the image is 1600x1200 and I count 3 circles", "3", 1.0),
    ("numeric:0.01", 'Text I can read: "TOTAL $1,023.40".', "1023.4", 1.0), ("numeric", "code K7RF", "7", 0.0),
    ("regex", "total: $12.50", r"\$12\.50", 1.0), ("json:total", '{"total": "12.50"}', "12.50", 1.0),
    ("json:total", "not json", "12.50", 0.0), ("tokens", "K7RF", "K7RF 49XM", 0.5),
])  # fmt: skip
def test_scorers(spec: str, answer: str, expected: str, value: float) -> None:
    score = get_scorer(spec)(answer, expected)
    assert score.value == pytest.approx(value) and score.reason


def test_set_scorer_is_f1_and_unknown_scorers_are_named() -> None:
    assert get_scorer("set")("red, blue, green", "red; blue").value == pytest.approx(0.8)
    with pytest.raises(UnknownScorerError, match="fuzzy"):
        get_scorer("fuzzy")
    assert get_scorer(lambda a, e: (0.5, "half"))("x", "y").value == 0.5


def test_judge_refuses_the_builtin_analyst() -> None:
    from vizlab.client import connect
    from vizlab.experiments.scorers import JudgeRefusedError, LLMJudge

    with pytest.raises(JudgeRefusedError, match="not a vision"):
        LLMJudge(connect(verbose=False), "Is it right?")


def test_pacer_never_admits_more_than_the_quota_in_any_window() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    pacer = Pacer(tpm=1000, window_s=10, clock=lambda: now[0], sleep=sleep)
    admitted = []
    for _ in range(60):
        pacer.acquire(100)
        admitted.append(now[0])
    for t in admitted:
        assert sum(1 for s in admitted if t <= s < t + 10) * 100 <= 1000
    # ... and uses most of it: 60 requests of 100 over 10-s windows of 1,000 take about 6 windows.
    assert admitted[-1] < 10 * 6 * 1.3
    pacer.refused(2.5)
    before = now[0]
    pacer.acquire(1)
    assert now[0] - before >= 2.5


@pytest.mark.parametrize(
    ("headers", "paused"),
    [({"retry-after-ms": "250", "retry-after": "9"}, 0.25), ({"retry-after": "3"}, 3.0), ({}, 1.0),
     ({"retry-after": "inf"}, 1.0), ({"retry-after": "-4"}, 1.0), ({"retry-after": "soon"}, 1.0)],
)
def test_a_429_pauses_the_pacer_for_what_the_service_asked(headers: dict[str, str], paused: float) -> None:
    """The delay is read once, by the client's error mapping (the one retry-after reader); the
    pacer waits a second for a missing, unreadable, negative or infinite one."""
    from vizlab.client.errormap import retry_after_s

    now = [0.0]
    pacer = Pacer(tpm=1000, window_s=10, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    pacer.refused(retry_after_s(headers))
    assert pacer.acquire(1) == pytest.approx(paused)


def _two_arm_table(low_scores: list[float], high_scores: list[float], *, binary: bool = False) -> pd.DataFrame:

    rows = []
    for arm, detail, scores in (("d/low", "low", low_scores), ("d/high", "high", high_scores)):
        for i, score in enumerate(scores):
            rows.append({"item_id": f"i{i}", "arm": arm, "deployment": "d", "detail": detail, "strategy": "whole",
                         "category": "c", "score": score, "binary": binary, "error": None, "cost": 1.0,
                         "batch_cost": 0.5, "prompt_tokens": 100, "estimated_prompt_tokens": 100,
                         "image_tokens": 85 if detail == "low" else 765, "latency_s": 0.1})  # fmt: skip
    return pd.DataFrame(rows)


def test_partial_scores_that_are_all_right_or_wrong_get_a_wilson_interval_not_a_zero_width_one() -> None:
    from vizlab.experiments.report import summarize_arms

    table = _two_arm_table([1.0] * 5, [1.0, 0.5, 1.0, 0.25, 1.0])  # a partial scorer (binary=False)
    summary = summarize_arms(table).set_index("arm")
    low, high = proportion_confint(5, 5, method="wilson")
    # One method per table, chosen by the kind of score (partial), not by the values (issue 22).
    assert set(summary["ci_method"]) == {"Wilson on the score sum"}
    assert (summary.loc["d/low", "ci_low"], summary.loc["d/low", "ci_high"]) == pytest.approx((low, high))
    assert summary.loc["d/low", "ci_low"] < 0.6  # 5 of 5 right is no proof of 100 %
    # The worse cell gets the lower floor (a percentile bootstrap gave it the tighter one).
    assert summary.loc["d/high", "ci_low"] < summary.loc["d/low", "ci_low"]


def test_partial_cells_keep_their_order_5_of_5_versus_one_half() -> None:
    from vizlab.experiments.report import summarize_arms

    table = _two_arm_table([1.0] * 5, [1.0, 1.0, 1.0, 1.0, 0.5])
    summary = summarize_arms(table).set_index("arm")
    assert summary.loc["d/high", "ci_low"] < summary.loc["d/low", "ci_low"] < 0.6


@pytest.mark.slow
def test_a_paired_partial_difference_uses_a_sign_flip_test_with_an_honest_floor() -> None:
    from vizlab.experiments.report import compare_arms
    from vizlab.experiments.stats import paired_bootstrap, sign_flip_test

    # 30 images, every one better in B: no random flip reaches it, so p is a bound, never 0.
    p = paired_bootstrap([0.2] * 30, [0.9] * 30)
    assert p.test.startswith("sign-flip permutation") and p.p_bound and p.p_value == pytest.approx(1 / 2000)
    # Exact on few images: 5 of 5 the same way is 2 of 32 sign vectors.
    assert sign_flip_test([0.5] * 5) == (pytest.approx(0.0625), False, "sign-flip permutation (exact, 32 flips)")
    frame = compare_arms(_two_arm_table([0.2] * 30, [0.9] * 30))
    assert bool(frame["p_bound"].iloc[0]) and frame["p_value"].iloc[0] > 0


def test_recommendation_prints_p_values_and_zero_differences_plainly() -> None:
    from vizlab.experiments.report import recommend

    same = recommend(_two_arm_table([1.0] * 12, [1.0] * 12, binary=True))
    assert "-0.0" not in same and "level with" in same and "p = 1" in same, same
    far = recommend(_two_arm_table([0.0] * 30 + [1.0] * 10, [1.0] * 40, binary=True))
    assert "p < 0.001" in far and "p = <" not in far, far
    assert "30.0 points below" in far or "75.0 points below" in far, far


def test_the_recommendation_is_weighed_in_dollars() -> None:
    from vizlab.experiments.report import recommend

    table = _two_arm_table([0.0] * 30 + [1.0] * 10, [1.0] * 40, binary=True)
    table.loc[table["arm"] == "d/high", "cost"] = 0.009  # $9 per 1,000 against $1
    table.loc[table["arm"] == "d/low", "cost"] = 0.001
    text = recommend(table)
    assert "$1.00 against $9.00 per 1,000 images" in text, text
    assert "high is worth its tokens ($0.107 per 1,000 images for each point gained)" in text, text
    enough = recommend(_two_arm_table([1.0] * 40, [1.0] * 40, binary=True))
    assert "low is enough, and saves $0.00 per 1,000 images" in enough, enough
