"""The committed notebooks and the notebook run: markers nbval honours, timeouts that agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# nbval honours a marker only when the comment is exactly the marker (nbval/plugin.py, 0.11).
MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP",
           "PYTEST_VALIDATE_IGNORE_OUTPUT"}


def _bad_markers(source: str) -> list[str]:
    bad = []
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("#") and "NBVAL" in text and text.lstrip("#").strip() not in MARKERS:
            bad.append(text)
    return bad


def test_the_marker_check_catches_trailing_words() -> None:
    assert _bad_markers("# NBVAL_IGNORE_OUTPUT  (a live progress bar)\nx = 1")
    assert not _bad_markers("# NBVAL_IGNORE_OUTPUT\n# (a live progress bar)\nx = 1")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_nbval_comment_is_a_marker_nbval_recognises(path: Path) -> None:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    bad = [(i, line) for i, cell in enumerate(cells) if cell["cell_type"] == "code"
           for line in _bad_markers("".join(cell["source"]))]
    assert not bad, f"{path.name}: comments nbval would not honour (the marker must be the whole comment): {bad}"


def test_pytest_timeout_never_cuts_a_cell_the_cell_timeout_allows() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    cell = int(re.search(r"^NB_TIMEOUT \?= (\d+)", makefile, re.M).group(1))
    margin = int(re.search(r"^NB_ITEM_TIMEOUT = \$\(shell expr \$\(NB_TIMEOUT\) \+ (\d+)\)", makefile, re.M).group(1))
    recipe = re.search(r"^notebooks:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "--nbval-cell-timeout=$(NB_TIMEOUT)" in recipe
    assert "--timeout=$(NB_ITEM_TIMEOUT)" in recipe, "pyproject's 300 s default would cut a 600 s cell"
    assert cell + margin > cell and margin >= 60
