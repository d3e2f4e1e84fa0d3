"""Pictures of what images cost: tile grids, tokens-vs-size curves, cost bars, accuracy vs tokens.

Every function returns the :class:`~matplotlib.figure.Figure` it drew on (on ``ax=`` if given)
and never calls ``plt.show()``. Trade-off: figures are made without pyplot, so nothing is
registered globally (safe in threads, no double display), but ``plt.show()`` and ``plt.gcf()``
do not see them. Token numbers come from :mod:`vizlab.tokens`, so a picture agrees with the
estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import figure as _mpl_figure
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from PIL import Image

if TYPE_CHECKING:
    import pandas as pd

    from vizlab.tokens.image import ImageTokenBreakdown

__all__ = [
    "tile_grid",
    "tile_grid_title",
    "compare_tile_grids",
    "tokens_vs_size",
    "token_dips",
    "cost_bars",
    "cumulative_tokens",
    "accuracy_vs_tokens",
    "accuracy_cost_frontier",
    "accuracy_by_category",
    "detail_wins",
    "pareto_front",
]

class Figure(_mpl_figure.Figure):
    """A matplotlib Figure that shows itself in Jupyter even when pyplot was never imported.

    Figures made without pyplot only display where IPython's inline backend has registered its
    formatter (after ``%matplotlib inline`` or a pyplot import); ``_repr_png_`` makes a returned
    figure show up in a fresh kernel too, once.
    """

    def _repr_png_(self) -> bytes:
        import io

        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


_TILE = 512  # tile side of the tile rule (OpenAI "Images and vision" guide, Calculating costs, 2025-08)
_DETAIL_COLOURS = {"low": "tab:blue", "high": "tab:red", "auto": "tab:purple"}


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[_mpl_figure.Figure, Axes]:
    if ax is not None:
        fig = ax.get_figure(root=True)
        if not isinstance(fig, _mpl_figure.Figure):
            raise ValueError("ax= must belong to a matplotlib Figure")
        return fig, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _as_pil(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    from vizlab.images.encode import open_image

    return open_image(image)


# --- tile grids -------------------------------------------------------------------------------


def tile_grid_title(breakdown: ImageTokenBreakdown) -> str:
    """The one-line title :func:`tile_grid` uses.

    >>> from vizlab.tokens import explain_image_tokens
    >>> tile_grid_title(explain_image_tokens(2048, 4096))
    '768x1536 · 2x3 tiles · 85 + 170x6 = 1105 tokens'
    >>> tile_grid_title(explain_image_tokens(2048, 4096, detail="low"))
    '256x512 · low · 85 tokens'
    """
    b = breakdown
    sw, sh = b.scaled
    if b.patches is not None:
        text = f"{sw}x{sh} · {b.tiles_x}x{b.tiles_y} patches · {b.patches} x {b.multiplier:g} = {b.tokens} tokens"
    elif b.detail_used == "low":
        text = f"{sw}x{sh} · low · {b.tokens} tokens"
    else:
        text = f"{sw}x{sh} · {b.tiles_x}x{b.tiles_y} tiles · {b.base} + {b.per_tile}x{b.tiles} = {b.tokens} tokens"
    if b.detail_requested != b.detail_used:
        text = f"{b.detail_requested}→{b.detail_used} · {text}"
    return text


def tile_grid(image: Any, *, model: str = "gpt-4o", detail: str = "high", ax: Axes | None = None) -> _mpl_figure.Figure:
    """The image as the service scales it, with the 512-px tiles it is billed for drawn over it.

    ``image`` is a PIL image or anything :func:`vizlab.images.open_image` reads. Tile rule at
    high: one rectangle per tile (dashed where a tile runs past the image); at low: the
    512x512-box downscale the model sees, no tiles. Patch rule: the 32-px patch grid as lines.
    The title is :func:`tile_grid_title`, e.g. ``768x1536 · 2x3 tiles · 85 + 170x6 = 1105 tokens``.
    """
    from vizlab.models.types import PatchRule
    from vizlab.tokens.image import explain_image_tokens, rule_for

    pil = _as_pil(image)
    width, height = pil.size
    b = explain_image_tokens(width, height, detail=detail, model=model)
    sw, sh = b.scaled
    shown = pil.convert("RGB").resize((sw, sh), Image.Resampling.LANCZOS) if (sw, sh) != pil.size else pil.convert("RGB")
    fig, ax = _axes(ax, (6, 6 * max(0.4, min(2.5, sh / max(1, sw)))))
    ax.imshow(np.asarray(shown), extent=(0, sw, sh, 0), interpolation="nearest")
    right, bottom = sw, sh
    if b.patches is not None:
        rule = rule_for(model)
        p = rule.patch if isinstance(rule, PatchRule) else 32
        right, bottom = b.tiles_x * p, b.tiles_y * p
        segments = [[(x * p, 0), (x * p, bottom)] for x in range(b.tiles_x + 1)]
        segments += [[(0, y * p), (right, y * p)] for y in range(b.tiles_y + 1)]
        ax.add_collection(LineCollection(segments, colors="white", linewidths=0.4, alpha=0.8))
    elif b.detail_used == "high":
        right, bottom = b.tiles_x * _TILE, b.tiles_y * _TILE
        for ty in range(b.tiles_y):
            for tx in range(b.tiles_x):
                x0, y0 = tx * _TILE, ty * _TILE
                overhang = x0 + _TILE > sw or y0 + _TILE > sh
                ax.add_patch(
                    Rectangle(
                        (x0, y0), _TILE, _TILE, fill=False, edgecolor="red", linewidth=1.5,
                        linestyle="--" if overhang else "-",
                    )
                )
                ax.text(x0 + 8, y0 + 8, f"{tx},{ty}", color="red", fontsize=8, va="top", ha="left")
    ax.set_xlim(0, right)
    ax.set_ylim(bottom, 0)
    ax.set_aspect("equal")
    ax.set_title(tile_grid_title(b), fontsize=10)
    ax.set_xlabel(f"{model} · detail {detail} · {b.rule}", fontsize=8)
    return fig


def compare_tile_grids(image: Any, *, model: str = "gpt-4o", details: Sequence[str] = ("low", "high", "auto")) -> _mpl_figure.Figure:
    """:func:`tile_grid` for low, high and auto side by side, on one figure."""
    pil = _as_pil(image)
    fig = Figure(figsize=(5 * len(details), 5.5), layout="constrained")
    axes = fig.subplots(1, len(details), squeeze=False)[0]
    for ax, detail in zip(axes, details):
        tile_grid(pil, model=model, detail=detail, ax=ax)
    fig.suptitle(f"{pil.size[0]}x{pil.size[1]} on {model}: what each detail costs")
    return fig


# --- tokens vs size ---------------------------------------------------------------------------


def token_dips(xs: Sequence[int], ys: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Places where a bigger image costs fewer tokens: ``(x_before, x_after, y_before, y_after)``.

    >>> token_dips([1, 2, 3, 4], [10, 20, 15, 15])
    [(2, 3, 20, 15)]
    """
    return [(xs[i - 1], xs[i], ys[i - 1], ys[i]) for i in range(1, len(ys)) if ys[i] < ys[i - 1]]


def _sweep_sizes(
    aspect: tuple[int, int], min_side: int, max_side: int, height: int | None, step: int
) -> list[tuple[int, int]]:
    sides = range(min_side, max_side + 1, step)
    if height is not None:
        return [(w, height) for w in sides]
    aw, ah = aspect
    if aw <= 0 or ah <= 0:
        raise ValueError(f"aspect={aspect!r}: give two positive numbers, e.g. (4, 3)")
    if aw >= ah:
        return [(side, max(1, round(side * ah / aw))) for side in sides]
    return [(max(1, round(side * aw / ah)), side) for side in sides]


def tokens_vs_size(
    *,
    models: Sequence[str] = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o1", "gpt-5"),
    detail: str = "high",
    aspect: tuple[int, int] = (4, 3),
    max_side: int = 4096,
    height: int | None = None,
    min_side: int = 1,
    step: int = 1,
    logy: bool | None = None,
    ax: Axes | None = None,
) -> _mpl_figure.Figure:
    """Image tokens against image size, one step curve per model, dips annotated.

    Sweeps the long side from ``min_side`` to ``max_side`` at ``aspect`` (``(1, 1)`` for squares),
    or, with ``height=``, the width at that fixed height (``height=2000, min_side=700,
    max_side=1100`` shows 1000x2000 costing less than 999x2000 on gpt-4o). Each place where a
    bigger image costs fewer tokens is a dip; the largest dip of each model is annotated.
    ``logy`` (default: when the curves span more than 50x, as gpt-4o-mini's do) uses a log y axis.
    """
    from vizlab.tokens.image import image_tokens

    if not 1 <= min_side <= max_side or step < 1:
        raise ValueError(
            f"min_side={min_side!r}, max_side={max_side!r}, step={step!r}: need 1 <= min_side <= max_side, step >= 1"
        )
    sizes = _sweep_sizes(aspect, min_side, max_side, height, step)
    xs = [w if height is not None else max(w, h) for w, h in sizes]
    fig, ax = _axes(ax, (9, 5))
    curves = [(model, [image_tokens(w, h, detail=detail, model=model) for w, h in sizes]) for model in models]
    notes = 0
    for model, ys in curves:
        (line,) = ax.step(xs, ys, where="post", label=model, linewidth=1.4)
        dips = token_dips(xs, ys)
        if not dips:
            continue
        x0, x1, y0, y1 = max(dips, key=lambda d: d[2] - d[3])
        # Notes stack in the lower right, arrows point at the dip: readable however many models dip.
        ax.annotate(
            f"{model}: {_size_label(sizes, xs, x0)} → {_size_label(sizes, xs, x1)}: {y0} → {y1} tokens",
            xy=(x1, y1),
            xytext=(0.98, 0.04 + 0.07 * notes),
            textcoords="axes fraction",
            ha="right",
            fontsize=7,
            color=line.get_color(),
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            arrowprops={"arrowstyle": "->", "color": line.get_color(), "linewidth": 0.8},
        )
        notes += 1
    lows = [min(ys) for _, ys in curves if ys]
    highs = [max(ys) for _, ys in curves if ys]
    if logy is None:
        logy = bool(lows) and min(lows) > 0 and max(highs) / min(lows) > 50
    if logy:
        ax.set_yscale("log")
    if height is not None:
        ax.set_xlabel(f"width (px), height fixed at {height} px")
        sweep = f"height {height}"
    else:
        ax.set_xlabel(f"long side (px), aspect {aspect[0]}:{aspect[1]}")
        sweep = f"aspect {aspect[0]}:{aspect[1]}"
    ax.set_ylabel("image tokens")
    ax.set_title(f"Image tokens vs size (detail {detail}, {sweep})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _size_label(sizes: Sequence[tuple[int, int]], xs: Sequence[int], x: int) -> str:
    w, h = sizes[list(xs).index(x)]
    return f"{w}x{h}"


# --- costs and conversations ------------------------------------------------------------------


def cost_bars(
    df: pd.DataFrame,
    *,
    x: str = "model",
    y: str = "cost_per_1000",
    hue: str | None = "detail",
    ax: Axes | None = None,
) -> _mpl_figure.Figure:
    """Grouped bars of ``y`` per ``x``, one bar per ``hue`` value (means if a pair repeats).

    Bars are labelled with their value; ``cost_per_1000`` and ``cost`` are shown in USD.
    """
    for column in [x, y] + ([hue] if hue else []):
        if column not in df.columns:
            raise KeyError(f"cost_bars: no column {column!r}; the table has {list(df.columns)}")
    fig, ax = _axes(ax, (8, 4.5))
    if hue:
        table = df.pivot_table(index=x, columns=hue, values=y, aggfunc="mean", sort=False)
    else:
        table = df.groupby(x, sort=False)[[y]].mean()
    groups = [str(v) for v in table.index]
    series = list(table.columns)
    width = 0.8 / max(1, len(series))
    money = y in ("cost", "cost_per_1000", "total_cost")
    for i, name in enumerate(series):
        values = table[name].to_numpy(dtype=float)
        positions = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        bars = ax.bar(
            positions, values, width, label=str(name) if hue else None,
            color=_DETAIL_COLOURS.get(str(name)) if hue == "detail" else None,
        )
        ax.bar_label(bars, fmt="$%.2f" if money else "%.3g", fontsize=7, padding=2)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_xlabel(x)
    ax.set_ylabel("USD per 1000 images" if y == "cost_per_1000" else ("USD" if money else y))
    ax.set_title(f"{y} by {x}" + (f" and {hue}" if hue else ""))
    if hue:
        ax.legend(title=hue, fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def cumulative_tokens(
    series: Mapping[str, Sequence[int]], ax: Axes | None = None, *, cumulative: bool = True
) -> _mpl_figure.Figure:
    """One line per retention policy: prompt tokens summed over turns (turn 1, 2, ... on x).

    ``series`` maps a policy name to the prompt tokens of each turn's request; with
    ``cumulative=False`` the values are plotted as given (per turn).

    >>> cumulative_tokens({"keep all": [800, 1600], "last image": [800, 900]}).axes[0].get_title()
    'Cumulative prompt tokens by retention policy'
    """
    fig, ax = _axes(ax, (8, 4.5))
    for name, values in series.items():
        turns = np.arange(1, len(values) + 1)
        ys = np.cumsum(np.asarray(values, dtype=float)) if cumulative else np.asarray(values, dtype=float)
        ax.plot(turns, ys, marker="o", markersize=3, label=name)
    ax.set_xlabel("turn")
    ax.set_ylabel("cumulative prompt tokens" if cumulative else "prompt tokens per turn")
    ax.set_title(
        "Cumulative prompt tokens by retention policy" if cumulative else "Prompt tokens per turn by retention policy"
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    return fig


# --- experiments ------------------------------------------------------------------------------


def _mean_by(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean score and prompt tokens (reported, else estimated) of successful rows per group."""
    import pandas as pd

    ok = df[df["error"].isna()] if "error" in df.columns else df
    tokens = pd.to_numeric(ok["prompt_tokens"], errors="coerce").fillna(
        pd.to_numeric(ok["estimated_prompt_tokens"], errors="coerce")
    )
    work = pd.DataFrame({**{k: ok[k] for k in keys}, "score": pd.to_numeric(ok["score"], errors="coerce"),
                         "prompt_tokens": tokens})  # fmt: skip
    return work.groupby(keys, sort=False, dropna=False).mean().reset_index()


def accuracy_vs_tokens(df: pd.DataFrame, ax: Axes | None = None, *, by_category: bool = True,
                       stamp: str | None = None) -> _mpl_figure.Figure:  # fmt: skip
    """Mean score against mean prompt tokens for each detail, from a
    :func:`~vizlab.experiments.run_experiment` table (``result.table``, ``stamp=result.stamp``).

    One line per category (points ordered by tokens, each labelled with its detail) when
    ``by_category``, plus a bold "all categories" line. Unscored and failed rows are left out.
    """
    fig, ax = _axes(ax, (8, 5))
    scored = df[df["score"].notna()] if "score" in df.columns else df.iloc[0:0]
    if len(scored):
        groups: list[tuple[str, Any]] = []
        if by_category and "category" in scored.columns:
            per_category = _mean_by(scored, ["category", "detail"])
            groups += [(str(category), frame) for category, frame in per_category.groupby("category", sort=False)]
        groups.append(("all categories", _mean_by(scored, ["detail"])))
        for label, frame in groups:
            frame = frame.dropna(subset=["score", "prompt_tokens"]).sort_values("prompt_tokens")
            bold = label == "all categories"
            (line,) = ax.plot(
                frame["prompt_tokens"], frame["score"], marker="o", label=label,
                linewidth=2.5 if bold else 1.2, color="black" if bold else None,
            )
            for _, row in frame.iterrows():
                ax.annotate(
                    str(row["detail"]), (row["prompt_tokens"], row["score"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=7, color=line.get_color(),
                )
        ax.legend(fontsize=8)
    ax.set_xlabel("mean prompt tokens")
    ax.set_ylabel("mean score")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Accuracy vs prompt tokens by detail")
    ax.grid(True, alpha=0.3)
    _stamp(fig, stamp)
    return fig


# --- experiment answers: frontier, categories, where detail matters ---------------------------


def _stamp(fig: _mpl_figure.Figure, stamp: str | None) -> None:
    if stamp:
        fig.text(0.99, 0.01, f"made by the {stamp}", ha="right", va="bottom", fontsize=8, color="tab:red")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and accuracy (higher).

    >>> pareto_front([(1.0, 0.5), (2.0, 0.9), (3.0, 0.8), (0.5, 0.2)])
    [3, 0, 1]
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def accuracy_cost_frontier(summary: pd.DataFrame, ax: Axes | None = None, *, stamp: str | None = None,
                           cost: str = "cost_per_1000") -> _mpl_figure.Figure:  # fmt: skip
    """Arms as points (accuracy with its interval against cost per 1,000 images), the Pareto front
    drawn. ``summary`` is ``ExperimentResult.summary()`` (columns arm, accuracy, ci_low, ci_high
    and ``cost``)."""
    fig, ax = _axes(ax, (8, 5))
    rows = summary.dropna(subset=["accuracy"]).reset_index(drop=True)
    xs = rows[cost].fillna(rows["prompt_tokens"]).to_numpy(dtype=float) if len(rows) else np.array([])
    ys = rows["accuracy"].to_numpy(dtype=float) if len(rows) else np.array([])
    labels: dict[tuple[float, float], list[str]] = {}  # arms on the same point share one label
    for i, row in rows.iterrows():
        colour = _DETAIL_COLOURS.get(str(row.get("detail")), "tab:gray")
        ax.errorbar(xs[i], ys[i], yerr=[[ys[i] - row["ci_low"]], [row["ci_high"] - ys[i]]], fmt="o", color=colour,
                    capsize=4)  # fmt: skip
        labels.setdefault((round(float(xs[i]), 9), round(float(ys[i]), 9)), []).append(str(row["arm"]))
    for (x, y), arms in labels.items():
        ax.annotate(" = ".join(arms), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    if len(rows):
        front = pareto_front(list(zip(xs.tolist(), ys.tolist())))
        ax.plot(xs[front], ys[front], "--", color="black", linewidth=1, label="Pareto front")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("USD per 1,000 images" if cost.startswith("cost") else cost)
    ax.set_ylabel("accuracy (95 % interval)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Accuracy per dollar: each arm, the Pareto front dashed")
    ax.grid(True, alpha=0.3)
    _stamp(fig, stamp)
    return fig


def accuracy_by_category(summary: pd.DataFrame, ax: Axes | None = None, *, stamp: str | None = None) -> _mpl_figure.Figure:
    """Grouped bars: accuracy per category for each arm, with interval whiskers.
    ``summary`` is ``ExperimentResult.summary(by=("category",))``."""
    fig, ax = _axes(ax, (10, 5))
    rows = summary.dropna(subset=["accuracy"])
    categories = list(dict.fromkeys(rows["category"])) if len(rows) else []
    arms = list(dict.fromkeys(rows["arm"])) if len(rows) else []
    width = 0.8 / max(len(arms), 1)
    for j, arm in enumerate(arms):
        sub = rows[rows["arm"] == arm].set_index("category")
        xs = np.arange(len(categories)) + j * width
        acc = np.array([sub["accuracy"].get(c, np.nan) for c in categories], dtype=float)
        low = np.array([sub["ci_low"].get(c, np.nan) for c in categories], dtype=float)
        high = np.array([sub["ci_high"].get(c, np.nan) for c in categories], dtype=float)
        ax.bar(xs, acc, width, label=str(arm))
        ax.errorbar(xs, acc, yerr=[acc - low, high - acc], fmt="none", color="black", capsize=2, linewidth=0.8)
    ax.set_xticks(np.arange(len(categories)) + 0.4 - width / 2)
    ax.set_xticklabels(categories, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (95 % interval)")
    ax.set_title("Accuracy by category")
    ax.legend(fontsize=7, ncol=2)
    _stamp(fig, stamp)
    return fig


def detail_wins(table: pd.DataFrame, images: Mapping[str, Any], *, low: str, high: str, limit: int = 6,
                stamp: str | None = None) -> _mpl_figure.Figure:  # fmt: skip
    """Thumbnails of the images where arm ``low`` fails and ``high`` succeeds, with both answers.

    ``table`` is ``ExperimentResult.table``; ``images`` maps item id to the image (path or PIL).
    """
    ok = table[table["error"].isna() & table["score"].notna()]
    a = ok[ok["arm"] == low].groupby("item_id")["score"].mean()
    b = ok[ok["arm"] == high].groupby("item_id")["score"].mean()
    ids = [i for i in a.index if i in b.index and a[i] < 0.5 <= b[i]][:limit]
    answers = ok.drop_duplicates(["arm", "item_id"]).set_index(["arm", "item_id"])["answer"]
    cols = max(1, min(3, len(ids)))
    nrows = max(1, math.ceil(len(ids) / cols))
    fig = Figure(figsize=(4 * cols, 3.6 * nrows))
    if not ids:
        ax = fig.add_subplot(1, 1, 1)
        ax.axis("off")
        ax.text(0.5, 0.5, f"no image where {low} fails and {high} succeeds", ha="center", va="center")
    for k, item_id in enumerate(ids):
        ax = fig.add_subplot(nrows, cols, k + 1)
        ax.imshow(_as_pil(images[item_id]))
        ax.axis("off")
        short = lambda s: (str(s)[:38] + "...") if len(str(s)) > 40 else str(s)  # noqa: E731
        ax.set_title(f"{item_id}\nlow: {short(answers.get((low, item_id), ''))}\nhigh: "
                     f"{short(answers.get((high, item_id), ''))}", fontsize=7, loc="left")  # fmt: skip
    fig.suptitle(f"Where {low} fails and {high} succeeds")
    _stamp(fig, stamp)
    return fig
