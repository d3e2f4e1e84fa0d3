"""vizlab.plots: every function returns a Figure with the expected title, lines and tiles."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

from vizlab import plots  # noqa: E402
from vizlab.tokens import explain_image_tokens  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _rectangles(fig: Figure, index: int = 0) -> list[Rectangle]:
    return [p for p in fig.axes[index].patches if isinstance(p, Rectangle)]


def _blank(w: int, h: int) -> Image.Image:
    return Image.new("RGB", (w, h), (240, 240, 240))


# --- tile grids -------------------------------------------------------------------------------


@pytest.mark.slow
def test_tile_grid_title_matches_the_published_example() -> None:
    # OpenAI vision guide (2025-08): a 2048x4096 image at high is 768x1536, 6 tiles, 1105 tokens.
    fig = plots.tile_grid(_blank(2048, 4096))
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_title() == "768x1536 · 2x3 tiles · 85 + 170x6 = 1105 tokens"
    assert len(_rectangles(fig)) == 6
    assert fig.axes[0].get_images()[0].get_array().shape[:2] == (1536, 768)


@pytest.mark.slow
@pytest.mark.parametrize(
    "size", [(1, 1), (512, 512), (513, 513), (1024, 1024), (1600, 1200), (700, 2000), (1000, 2000), (4000, 300)]
)
@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "o1"])
def test_tile_grid_draws_one_rectangle_per_tile(size: tuple[int, int], model: str) -> None:
    b = explain_image_tokens(*size, detail="high", model=model)
    fig = plots.tile_grid(_blank(*size), model=model)
    assert len(_rectangles(fig)) == b.tiles == b.tiles_x * b.tiles_y
    assert fig.axes[0].get_title().endswith(f"= {b.tokens} tokens")


def test_tile_grid_low_shows_the_512_downscale() -> None:
    fig = plots.tile_grid(_blank(1600, 1200), detail="low")
    ax = fig.axes[0]
    assert ax.get_title() == "512x384 · low · 85 tokens"
    assert _rectangles(fig) == []
    assert ax.get_images()[0].get_array().shape[:2] == (384, 512)


def test_tile_grid_patch_model_draws_the_patch_grid() -> None:
    b = explain_image_tokens(1024, 768, model="gpt-4.1-mini")
    fig = plots.tile_grid(_blank(1024, 768), model="gpt-4.1-mini")
    ax = fig.axes[0]
    assert ax.get_title() == f"1024x768 · 32x24 patches · 768 x {b.multiplier:g} = {b.tokens} tokens"
    (grid,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(grid.get_segments()) == (32 + 1) + (24 + 1)


def test_tile_grid_accepts_paths_and_an_axes(tmp_path: object, image_file: object) -> None:
    path = image_file("a.png", 300, 200)  # type: ignore[operator]
    fig, ax = plt.subplots()
    assert plots.tile_grid(path, ax=ax) is fig
    assert ax.get_title() == "300x200 · 1x1 tiles · 85 + 170x1 = 255 tokens"


def test_compare_tile_grids_low_high_auto() -> None:
    fig = plots.compare_tile_grids(_blank(1024, 1024))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "512x512 · low · 85 tokens",
        "768x768 · 2x2 tiles · 85 + 170x4 = 765 tokens",
        "auto→high · 768x768 · 2x2 tiles · 85 + 170x4 = 765 tokens",
    ]
    assert [len(_rectangles(fig, i)) for i in range(3)] == [0, 4, 4]
    assert "1024x1024" in fig.get_suptitle()


def test_figures_are_not_registered_with_pyplot() -> None:
    plt.close("all")
    plots.tile_grid(_blank(64, 64))
    plots.cumulative_tokens({"a": [1, 2]})
    assert plt.get_fignums() == []


# --- tokens vs size ---------------------------------------------------------------------------


def test_tokens_vs_size_one_step_line_per_model() -> None:
    models = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o1", "gpt-5")
    fig = plots.tokens_vs_size(max_side=1500, step=4)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == list(models)
    assert ax.get_title() == "Image tokens vs size (detail high, aspect 4:3)"
    assert ax.get_yscale() == "log"  # gpt-4o-mini's tiles dwarf the others


def test_tokens_vs_size_annotates_the_1000x2000_dip() -> None:
    fig = plots.tokens_vs_size(models=("gpt-4o",), height=2000, min_side=700, max_side=1100)
    ax = fig.axes[0]
    notes = [t.get_text() for t in ax.texts]
    # 999x2000 is kept (8 tiles, 1445); 1000x2000 is scaled to 768x1536 (6 tiles, 1105).
    assert notes == ["gpt-4o: 999x2000 → 1000x2000: 1445 → 1105 tokens"]
    assert ax.get_yscale() == "linear"
    assert "height 2000" in ax.get_title()


def test_tokens_vs_size_monotonic_sweep_has_no_notes() -> None:
    fig = plots.tokens_vs_size(models=("gpt-4o", "o1"), aspect=(1, 1), max_side=2048, step=8)
    assert len(fig.axes[0].texts) == 0


def test_token_dips() -> None:
    assert plots.token_dips([1, 2, 3], [5, 5, 5]) == []
    assert plots.token_dips([1, 2, 3, 4], [5, 9, 3, 4]) == [(2, 3, 9, 3)]


# --- costs, conversations, experiments --------------------------------------------------------


def test_cost_bars_grouped() -> None:
    df = pd.DataFrame(
        {
            "model": ["gpt-4o", "gpt-4o", "o1", "o1"],
            "detail": ["low", "high", "low", "high"],
            "cost_per_1000": [0.21, 1.9, 1.1, 12.0],
        }
    )
    fig = plots.cost_bars(df)
    ax = fig.axes[0]
    assert ax.get_title() == "cost_per_1000 by model and detail"
    assert ax.get_ylabel() == "USD per 1000 images"
    bars = _rectangles(fig)
    assert len(bars) == 4
    assert sorted(round(b.get_height(), 2) for b in bars) == [0.21, 1.1, 1.9, 12.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gpt-4o", "o1"]
    with pytest.raises(KeyError, match="no column 'price'"):
        plots.cost_bars(df, y="price")


def test_cost_bars_without_hue() -> None:
    df = pd.DataFrame({"model": ["a", "b"], "cost_per_1000": [1.0, 2.0]})
    assert len(_rectangles(plots.cost_bars(df, hue=None))) == 2


def test_cumulative_tokens_lines_per_policy() -> None:
    fig = plots.cumulative_tokens({"keep all": [800, 900, 1000], "last image only": [800, 100, 100]})
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["keep all", "last image only"]
    assert list(lines[0].get_ydata()) == [800, 1700, 2700]
    assert list(lines[0].get_xdata()) == [1, 2, 3]
    assert ax.get_xlabel() == "turn"
    per_turn = plots.cumulative_tokens({"a": [5, 6]}, cumulative=False)
    assert list(per_turn.axes[0].get_lines()[0].get_ydata()) == [5, 6]


def _experiment_table() -> pd.DataFrame:
    rows = []
    for category, low_acc, high_acc in [("signs", 0.0, 1.0), ("counting", 1.0, 1.0)]:
        for detail, acc, tokens in [("low", low_acc, 100), ("high", high_acc, 800)]:
            rows.append(
                {
                    "category": category, "detail": detail, "score": acc, "prompt_tokens": tokens,
                    "estimated_prompt_tokens": tokens, "image_tokens": tokens - 20, "cost": tokens * 2.5e-6,
                    "latency_s": 0.1, "error": None,
                }
            )  # fmt: skip
    rows.append({**rows[0], "category": "unlabelled", "score": None})
    return pd.DataFrame(rows)


def test_accuracy_vs_tokens_line_per_category_plus_all() -> None:
    fig = plots.accuracy_vs_tokens(_experiment_table(), stamp="local analyst (OCR), not a vision model")
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["signs", "counting", "all categories"]  # unlabelled rows have no score
    assert any("local analyst" in t.get_text() for t in fig.texts)
    everything = ax.get_lines()[-1]
    assert list(everything.get_xdata()) == [100, 800]
    assert list(everything.get_ydata()) == [0.5, 1.0]
    assert ax.get_title() == "Accuracy vs prompt tokens by detail"
    assert len(plots.accuracy_vs_tokens(_experiment_table(), by_category=False).axes[0].get_lines()) == 1


def test_accuracy_vs_tokens_empty_table() -> None:
    fig = plots.accuracy_vs_tokens(pd.DataFrame({"score": [], "detail": [], "category": []}))
    assert fig.axes[0].get_lines() == []


@pytest.mark.slow
def test_returned_figures_render_as_png_without_pyplot() -> None:
    from PIL import Image as _Image

    fig = plots.tile_grid(_Image.new("RGB", (1024, 1024), "white"))
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert repr(fig).startswith("<Figure size")  # notebooks' text/plain outputs stay stable


def test_frontier_labels_arms_on_the_same_point_once() -> None:
    summary = pd.DataFrame({
        "arm": ["d/low", "d/high", "d/auto"], "detail": ["low", "high", "auto"], "accuracy": [0.7, 0.9, 0.9],
        "ci_low": [0.6, 0.8, 0.8], "ci_high": [0.8, 1.0, 1.0], "cost_per_1000": [1.0, 2.0, 2.0],
        "prompt_tokens": [100.0, 600.0, 600.0],
    })  # fmt: skip
    fig = plots.accuracy_cost_frontier(summary, stamp="local analyst (OCR), not a vision model")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["d/high = d/auto", "d/low"]
    assert any("local analyst" in t.get_text() for t in fig.texts)
