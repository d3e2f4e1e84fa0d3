"""The answer of a run: per-arm accuracy with intervals, paired comparisons, a recommendation.

Accuracy is over images (repeats averaged first), with Wilson or bootstrap intervals; costs per
1,000 and 100,000 images live and by Batch; paired comparisons use McNemar or a paired bootstrap,
Holm-adjusted. :func:`recommend` answers in plain words or says how many more images it needs;
a gain under :data:`MARGIN` is not worth its tokens; it refuses to conclude on an arm whose
reasoning tokens were emulated (the built-in backend). Details: docs/internals.md#experiments
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from vizlab.experiments.stats import (
    Interval,
    Paired,
    holm,
    items_needed,
    paired_bootstrap,
    score_sum_interval,
    wilson_interval,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MARGIN", "MIN_ITEMS", "RunResult", "summarize_arms", "compare_arms", "emulated_reasoning", "recommend",
           "write_outputs", "per_image"]

MARGIN = 0.05
MIN_ITEMS = 10


def _scored(table: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    ok = table[table["error"].isna() & table["score"].notna()].copy()
    ok["score"] = pd.to_numeric(ok["score"])
    return ok


def per_image(table: pd.DataFrame, arm: str, *, category: str | None = None) -> pd.Series:
    """Mean score per image (over repeats) in one arm."""
    ok = _scored(table)
    ok = ok[ok["arm"] == arm]
    if category is not None:
        ok = ok[ok["category"] == category]
    return ok.groupby("item_id", sort=False)["score"].mean()


def _binary(rows: pd.DataFrame) -> bool:
    if not len(rows):
        return False
    one_run = int(rows.groupby("item_id").size().max()) == 1
    return bool(rows["binary"].astype(bool).all()) and one_run


def _interval(rows: pd.DataFrame, binary: bool) -> Interval:
    """One method per table, by the kind of score (``binary``), never by the values."""
    values = rows.groupby("item_id", sort=False)["score"].mean()
    if binary:
        return wilson_interval(int((values >= 0.5).sum()), int(len(values)))
    return score_sum_interval(values.to_numpy())


def _num(series: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.to_numeric(series, errors="coerce")


def summarize_arms(table: pd.DataFrame, *, by: Sequence[str] = (), stamp: str | None = None) -> pd.DataFrame:
    """One row per arm (and per ``by`` column, e.g. ``("category",)``); see docs/internals.md#experiments."""
    import pandas as pd

    keys = ["arm", *by]
    scored_all = _scored(table)
    # The kind of score, for the whole table: binary only if every arm's is.
    binary = bool(len(scored_all)) and all(_binary(rows) for _, rows in scored_all.groupby("arm", sort=False))
    out = []
    for group, rows in table.groupby(keys, sort=False, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        ok = rows[rows["error"].isna()]
        scored = _scored(rows)
        ci = _interval(scored, binary) if len(scored) else None
        tokens = _num(ok["prompt_tokens"]).fillna(_num(ok["estimated_prompt_tokens"]))
        cost, batch_cost = _num(ok["cost"]), _num(ok["batch_cost"])
        latency = _num(ok["latency_s"]).dropna()
        first = rows.iloc[0]
        record: dict[str, Any] = dict(zip(keys, group))
        record.update({
            "deployment": first["deployment"], "detail": first["detail"], "strategy": first["strategy"],
            "images": int(rows["item_id"].nunique()), "scored_images": int(scored["item_id"].nunique()),
            "rows": len(rows), "errors": int(rows["error"].notna().sum()),
            "accuracy": ci.estimate if ci else math.nan, "ci_low": ci.low if ci else math.nan,
            "ci_high": ci.high if ci else math.nan, "ci_method": ci.method if ci else "",
            "prompt_tokens": float(tokens.mean()) if len(tokens) else math.nan,
            "image_tokens": float(_num(ok["image_tokens"]).mean()) if len(ok) else math.nan,
            "cost_per_1000": float(cost.mean() * 1000) if cost.notna().any() else math.nan,
            "cost_per_100000": float(cost.mean() * 100_000) if cost.notna().any() else math.nan,
            "batch_cost_per_1000": float(batch_cost.mean() * 1000) if batch_cost.notna().any() else math.nan,
            "batch_cost_per_100000": float(batch_cost.mean() * 100_000) if batch_cost.notna().any() else math.nan,
            "latency_p50_s": float(np.percentile(latency, 50)) if len(latency) else math.nan,
            "latency_p95_s": float(np.percentile(latency, 95)) if len(latency) else math.nan,
            "made_by": stamp or "",
        })  # fmt: skip
        if _has_efforts(table):
            record.update({"reasoning_effort": first["reasoning_effort"], "reasoning": first["reasoning"],
                           "reasoning_tokens": float(_num(ok["reasoning_tokens"]).mean()) if len(ok) else math.nan})  # fmt: skip
        out.append(record)
    return pd.DataFrame(out)


def _has_efforts(table: pd.DataFrame) -> bool:
    return "reasoning_effort" in table.columns and bool(table["reasoning_effort"].notna().any())


_EFFORT_ORDER = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def _arms(table: pd.DataFrame) -> list[dict[str, Any]]:
    arms = table.drop_duplicates("arm")
    records = arms[["arm", "deployment", "detail", "strategy"]].to_dict(orient="records")
    efforts = arms["reasoning_effort"].tolist() if "reasoning_effort" in arms.columns else [None] * len(records)
    for record, effort in zip(records, efforts):
        record["effort"] = effort if isinstance(effort, str) else None
    return records


def _same(a: dict[str, Any], b: dict[str, Any], *keys: str) -> bool:
    return all(a[k] == b[k] for k in keys)


def _default_pairs(table: pd.DataFrame) -> list[tuple[str, str]]:
    """Low against higher details; the first deployment against the others; whole at high against
    crops at low; a lower reasoning effort against a higher one. Each pair differs in one dimension."""
    arms = _arms(table)
    first = arms[0]["deployment"] if arms else None
    rank = {e: i for i, e in enumerate(_EFFORT_ORDER)}
    rules: list[Callable[[dict[str, Any], dict[str, Any]], bool]] = [
        lambda a, b: (_same(a, b, "deployment", "strategy", "effort") and a["detail"] == "low"
                      and b["detail"] in ("high", "auto", "original")),
        lambda a, b: a["deployment"] == first != b["deployment"] and _same(a, b, "detail", "strategy", "effort"),
        lambda a, b: (a["strategy"] == "whole" != b["strategy"] and _same(a, b, "deployment", "effort")
                      and (a["detail"], b["detail"]) == ("high", "low")),
        lambda a, b: (_same(a, b, "deployment", "detail", "strategy") and bool(a["effort"] and b["effort"])
                      and rank.get(a["effort"], 0) < rank.get(b["effort"], 0)),
    ]  # fmt: skip
    return [(a["arm"], b["arm"]) for rule in rules for a in arms for b in arms if rule(a, b)]


def emulated_reasoning(table: pd.DataFrame, arms: Sequence[str]) -> list[str]:
    """Which of ``arms`` ask a ``reasoning_effort`` whose reasoning tokens were emulated (offline)."""
    if not _has_efforts(table) or "reasoning" not in table.columns:
        return []
    rows = table[table["arm"].isin(list(arms)) & table["reasoning_effort"].notna()]
    return list(dict.fromkeys(rows.loc[rows["reasoning"] == "emulated", "arm"]))


def _paired(table: pd.DataFrame, a: str, b: str, category: str | None = None) -> tuple[Paired, int]:
    sa, sb = per_image(table, a, category=category), per_image(table, b, category=category)
    common = [i for i in sa.index if i in sb.index]
    ok = table[table["error"].isna()]
    cost = ok.groupby(["arm", "item_id"])["cost"].mean()
    ca = [cost.get((a, i), math.nan) for i in common]
    cb = [cost.get((b, i), math.nan) for i in common]
    rows = _scored(table)
    binary = _binary(rows[rows["arm"] == a]) and _binary(rows[rows["arm"] == b])
    paired = paired_bootstrap(sa[common].to_numpy(), sb[common].to_numpy(), cost_a=ca, cost_b=cb,
                                    binary=binary)  # fmt: skip
    return paired, len(set(sa.index) ^ set(sb.index))


def compare_arms(table: pd.DataFrame, *, pairs: Sequence[tuple[str, str]] | None = None,
                 stamp: str | None = None) -> pd.DataFrame:  # fmt: skip
    """B - A for each pair of arms on the images scored in both (see docs/internals.md#experiments)."""
    import pandas as pd

    pairs = list(pairs) if pairs is not None else _default_pairs(table)
    out = []
    for a, b in pairs:
        p, unpaired = _paired(table, a, b)
        ratio = p.cost_ratio
        out.append({
            "a": a, "b": b, "paired_images": p.n, "unpaired_images": unpaired,
            "difference": p.difference.estimate, "diff_low": p.difference.low, "diff_high": p.difference.high,
            "test": p.test, "p_value": p.p_value, "p_bound": p.p_bound,
            "a_only": p.discordant[0] if p.discordant else None, "b_only": p.discordant[1] if p.discordant else None,
            "cost_ratio": ratio.estimate if ratio else math.nan, "cost_ratio_low": ratio.low if ratio else math.nan,
            "cost_ratio_high": ratio.high if ratio else math.nan, "made_by": stamp or "",
        })  # fmt: skip
    frame = pd.DataFrame(out, columns=["a", "b", "paired_images", "unpaired_images", "difference", "diff_low",
                                       "diff_high", "test", "p_value", "p_bound", "a_only", "b_only", "cost_ratio",
                                       "cost_ratio_low", "cost_ratio_high", "made_by"])  # fmt: skip
    frame["p_holm"] = holm(list(frame["p_value"])) if len(frame) else []
    frame.attrs["multiple"] = (
        f"{len(frame)} comparisons: p values adjusted by Holm's method (p_holm)" if len(frame) > 1 else ""
    )
    return frame


def _fmt_p(p: float | None, bound: bool = False) -> str:
    """``"p = 0.21"``, ``"p < 0.0005"`` (a bound: no resample reached the data) or ``"p n/a"``."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p n/a"
    if bound:
        return f"p < {p:.2g}"
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"


def _pts(fraction: float) -> str:
    """Signed points, never "-0.0"."""
    return f"{fraction * 100 + 0.0:+.1f}".replace("-0.0", "+0.0")


def recommend(table: pd.DataFrame, *, low: str | None = None, high: str | None = None,
              stamp: str | None = None) -> str:  # fmt: skip
    """Plain words with their evidence, or a refusal saying how many more images are needed."""
    if low is None or high is None:
        candidates = _candidates(table)
        if not candidates:
            return _stamped("No recommendation: the run has no pair of arms to compare (run details low and high).", stamp)
        low, high = candidates[0]
    suffix = f" (made by the {stamp})" if stamp else ""
    emulated = emulated_reasoning(table, (low, high))
    if emulated:
        return _stamped(f"No recommendation on {low} against {high}: the reasoning tokens of {', '.join(emulated)} "
                        "were emulated by the built-in backend (a fixed factor per effort, no model thinking), so "
                        "neither their cost nor their accuracy says what that effort buys; run the reasoning arms "
                        f"on a real deployment.{suffix}", stamp)  # fmt: skip
    p, _ = _paired(table, low, high)
    if p.n < MIN_ITEMS:
        return _stamped(f"No recommendation: only {p.n} images have a score in both {low} and {high}; at least "
                        f"{MIN_ITEMS} are needed to say anything.{suffix}", stamp)  # fmt: skip
    diff = p.difference
    summary = summarize_arms(table)
    tok = summary.set_index("arm")["image_tokens"]
    ratio_txt = ""
    if tok.get(low) and tok.get(high) and tok[low] > 0:
        ratio_txt = f" at 1/{tok[high] / tok[low]:.1f} of the image tokens"
    dollars = _dollars(summary.set_index("arm")["cost_per_1000"], low, high, diff.estimate * 100)
    ratio_txt += dollars[0]
    points = -diff.estimate * 100  # low minus high, in points
    where = "below" if points < 0 else "above"
    level = f"{abs(points):.1f} points {where}" if round(abs(points), 1) else "level with"
    evidence = (f"on these {p.n} images, {low} is {level} {high} (95 % CI "
                f"{_pts(-diff.high)} to {_pts(-diff.low)}, {p.test} {_fmt_p(p.p_value, p.p_bound)}){ratio_txt}")  # fmt: skip
    if diff.high <= MARGIN:
        exceptions = _exceptions(table, low, high)
        verdict = "low is enough" + (f", except for category {', '.join(repr(c) for c in exceptions)}" if exceptions else "")
        verdict += dollars[1]
        return _stamped(f"{evidence[0].upper()}{evidence[1:]}: {verdict}.{suffix}", stamp)
    if diff.low > 0 and diff.estimate > MARGIN:
        return _stamped(f"{evidence[0].upper()}{evidence[1:]}: high is worth its tokens{dollars[2]}.{suffix}", stamp)
    discordant = p.discordant
    rate = (sum(discordant) / p.n) if discordant else float(np.mean(np.abs(per_image(table, high).reindex(
        per_image(table, low).index).fillna(0).to_numpy() - per_image(table, low).to_numpy()) > 0))  # fmt: skip
    need = items_needed(max(abs(diff.estimate), MARGIN), rate)
    more = f"about {max(need - p.n, 1)} more paired images ({need} in all)" if need else "more paired images"
    return _stamped(f"No recommendation yet: {evidence}; the interval is too wide to tell whether high gains more "
                    f"than {MARGIN * 100:.0f} points. McNemar's sample size for this difference needs {more}."
                    f"{suffix}", stamp)  # fmt: skip


def _candidates(table: pd.DataFrame) -> list[tuple[str, str]]:
    """The default pairs, those of detail low against high first."""
    arms = {a["arm"]: a for a in _arms(table)}
    pairs = _default_pairs(table)
    return [(a, b) for a, b in pairs if arms[a]["detail"] == "low" and arms[b]["detail"] == "high"] or pairs


def _dollars(cost_per_1000: pd.Series, low: str, high: str, points: float) -> tuple[str, str, str]:
    """Phrases: both arms' dollars per 1,000 images, the saving, the price of a point ("" without prices)."""
    c_low, c_high = cost_per_1000.get(low), cost_per_1000.get(high)
    if c_low is None or c_high is None or not (math.isfinite(c_low) and math.isfinite(c_high)):
        return "", "", ""
    extra = c_high - c_low
    price = f" (${extra / points:.3f} per 1,000 images for each point gained)" if points > 0 else ""
    return f" (${c_low:.2f} against ${c_high:.2f} per 1,000 images)", f", and saves ${extra:.2f} per 1,000 images", price


def _exceptions(table: pd.DataFrame, low: str, high: str) -> list[str]:
    found = []
    for category in dict.fromkeys(table["category"].dropna()):
        if not category:
            continue
        p, _ = _paired(table, low, high, category=str(category))
        if p.n >= 5 and p.difference.estimate > MARGIN and p.difference.low > 0:
            found.append(str(category))
    return found


def _stamped(text: str, stamp: str | None) -> str:
    return text if not stamp or stamp in text else f"{text} [{stamp}]"


def _jsonable(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return list(json.loads(frame.to_json(orient="records")))


class RunResult(Protocol):
    """What :func:`write_outputs` reads of a run (:class:`vizlab.experiments.runner.ExperimentResult`);
    a protocol, so this module stays below the runner."""

    table: pd.DataFrame
    manifest: dict[str, Any]
    problems: list[Any]
    counts: dict[str, int]
    estimate_usd: float

    @property
    def stamp(self) -> str | None: ...

    def summary(self, by: Sequence[str] = ()) -> pd.DataFrame: ...

    def compare(self, pairs: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame: ...

    def recommendation(self, low: str | None = None, high: str | None = None) -> str: ...

    def frontier(self, ax: Any = None) -> Any: ...


# Characters that make a spreadsheet read a cell as a formula; such text cells get a leading
# apostrophe, the OWASP "CSV Injection" advice (owasp.org/www-community/attacks/CSV_Injection, 2024).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells starting with = + - @ (tab, CR) begin with ``'``, for CSV files.

    >>> import pandas as pd
    >>> formula_safe(pd.DataFrame({"a": ["=1+1", "ok"], "n": [-1, 2]}))["a"].tolist()
    ["'=1+1", 'ok']
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    safe = table.copy()
    for column in safe.columns:
        if not (is_numeric_dtype(safe[column]) or is_bool_dtype(safe[column])):
            safe[column] = safe[column].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v)
    return safe


def write_outputs(result: RunResult, out: Path) -> dict[str, str]:
    """items.csv (+ items.parquet with pyarrow), summary.json, frontier.png under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    table = result.table
    formula_safe(table).to_csv(out / "items.csv", index=False)
    written["csv"] = str(out / "items.csv")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        table.to_parquet(out / "items.parquet", index=False)
        written["parquet"] = str(out / "items.parquet")
    summary = result.summary()
    comparisons = result.compare() if table["score"].notna().any() else None
    doc = {
        "made_by": result.stamp,
        "manifest": result.manifest,
        "problems": [str(p) for p in result.problems],
        "counts": result.counts,
        "estimate_usd": result.estimate_usd,
        "arms": _jsonable(summary),
        "by_category": _jsonable(result.summary(by=("category",))),
        "comparisons": _jsonable(comparisons) if comparisons is not None else [],
        "multiple_comparisons": comparisons.attrs.get("multiple", "") if comparisons is not None else "",
        "recommendation": result.recommendation() if comparisons is not None else None,
    }
    (out / "summary.json").write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    written["summary"] = str(out / "summary.json")
    if table["score"].notna().any():
        fig = result.frontier()
        fig.savefig(out / "frontier.png", dpi=100)
        written["frontier"] = str(out / "frontier.png")
    return written
