"""Saved notebooks read as run: every widget output carries its static snapshot (text/html), no
figure is saved as a bare ``<Figure ...>`` repr, no notebook stores widget state (GitHub and
nbconvert would try to load a widget manager from a CDN). Reads the committed files; runs nothing.
Also: a ComparePanel shown after ``panel.state.run()`` shows those answers, not "press Compare"."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import ipywidgets as W
import pytest
from conftest import LOCAL_API_KEY, make_image_bytes

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
BARE_FIGURE = re.compile(r"^<(matplotlib\.figure\.)?Figure size \d+x\d+ with \d+ Axes>$")


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def problems_in(nb: dict[str, Any]) -> list[str]:
    """What a reader of the saved notebook would see wrong, one line per problem."""
    found = []
    if "widgets" in nb.get("metadata", {}):
        found.append("notebook metadata stores widget state (save with store_widget_state=False)")
    for n, cell in enumerate(nb.get("cells", []), start=1):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data and "text/html" not in data:
                found.append(f"cell {n}: a widget output with no text/html snapshot ({_text(data.get('text/plain'))[:60]!r})")
            plain = _text(data.get("text/plain")).strip()
            if BARE_FIGURE.match(plain) and "image/png" not in data:
                found.append(f"cell {n}: a figure saved as its repr {plain!r}, not an image")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_reads_as_run(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert problems_in(nb) == [], f"{path.name}: " + "; ".join(problems_in(nb))


def test_the_check_finds_each_problem() -> None:
    bad = {
        "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {}}},
        "cells": [
            {"cell_type": "code", "outputs": [{"output_type": "execute_result",
             "data": {WIDGET_VIEW: {"model_id": "x"}, "text/plain": "VBox(children=(HBox(…"}}]},
            {"cell_type": "code", "outputs": [{"output_type": "execute_result",
             "data": {"text/plain": "<Figure size 1300x620 with 12 Axes>"}}]},
        ],
    }  # fmt: skip
    assert len(problems_in(bad)) == 3
    good = {"metadata": {}, "cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data",
            "data": {WIDGET_VIEW: {"model_id": "x"}, "text/html": "<div>snapshot</div>", "text/plain": "<vizlab>"}}]}]}  # fmt: skip
    assert problems_in(good) == []


@pytest.mark.slow
def test_a_compare_panel_shown_after_state_run_shows_the_answers(local_backend: Any) -> None:
    from vizlab.client import connect
    from vizlab.widgets import ComparePanel

    client = connect(backend="azure", endpoint=local_backend.url, api_key=LOCAL_API_KEY, env_file=None, verbose=False)
    panel = ComparePanel(client, make_image_bytes(600, 400), "What colour is it?")
    panel.state.run()
    before = [v.stats.value for v in panel.column_views.values()]
    assert all("press Compare to ask" in s for s in before)  # the views do not know yet
    panel._ipython_display_()  # what IPython calls for a cell ending in `panel`
    shown = [v.stats.value + v.answer.value for v in panel.column_views.values()]
    assert not any("press Compare to ask" in s for s in shown)
    assert all("local analyst" in v.answer.value for v in panel.column_views.values())
    assert "local analyst" in panel.snapshot_html()
    client.close()
    W.Widget.close_all()
