"""docs/coverage.md maps every seed flow and fact to a notebook and a heading; hold it to that.

Fails when a notebook the table names is missing, when the named heading is gone from it, when a
seed has no rows, and when the facilitator page's cost table no longer matches what the registry
gives (docs/cost_table.py).
"""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COVERAGE = ROOT / "docs" / "coverage.md"
SEEDS = ("01 ", "02 ", "03 ", "04 ", "05 ")
ROW = re.compile(r"^\|(?P<seed>[^|]+)\|(?P<fact>[^|]+)\|(?P<notebook>[^|]+)\|(?P<heading>[^|]+)\|\s*$")
LINK = re.compile(r"\]\((?P<target>[^)]+\.ipynb)\)")


def coverage_rows(text: str) -> list[dict[str, str]]:
    """The table's data rows: seed, fact, notebook (a path relative to docs/) and heading."""
    rows = []
    for line in text.splitlines():
        match = ROW.match(line)
        if not match or set(match["seed"].strip()) <= {"-"} or match["seed"].strip() == "seed":
            continue
        link = LINK.search(match["notebook"])
        rows.append({
            "seed": match["seed"].strip(),
            "fact": match["fact"].strip(),
            "notebook": link["target"] if link else match["notebook"].strip(),
            "heading": match["heading"].strip(),
        })
    return rows


def headings(notebook: Path) -> set[str]:
    """The Markdown headings of a notebook, without their # marks."""
    found = set()
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for line in "".join(cell["source"]).splitlines():
            if re.match(r"^#{1,6} ", line):
                found.add(line.lstrip("#").strip())
    return found


def problem(row: dict[str, str], docs_dir: Path) -> str | None:
    """Why ``row`` does not hold, or None when its notebook exists and has the heading."""
    path = (docs_dir / row["notebook"]).resolve()
    if not path.is_file():
        return f"{row['fact']!r}: notebook {row['notebook']} does not exist"
    if row["heading"] not in headings(path):
        return f"{row['fact']!r}: {path.name} has no heading {row['heading']!r}"
    return None


ROWS = coverage_rows(COVERAGE.read_text())


def test_every_seed_has_rows() -> None:
    for seed in SEEDS:
        assert sum(r["seed"].startswith(seed) for r in ROWS) >= 5, f"seed {seed.strip()} has fewer than 5 rows"


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['notebook'].split('/')[-1]}:{r['heading'][:30]}" for r in ROWS])
def test_row_points_at_a_notebook_heading(row: dict[str, str]) -> None:
    assert problem(row, COVERAGE.parent) is None


def test_the_checker_catches_a_missing_notebook_and_a_renamed_heading(tmp_path: Path) -> None:
    docs, notebooks = tmp_path / "docs", tmp_path / "notebooks"
    docs.mkdir()
    notebooks.mkdir()
    cell = {"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "\n", "## Send it\n"]}
    (notebooks / "02-x.ipynb").write_text(json.dumps({"cells": [cell]}))
    table = (
        "| seed | flow or fact | notebook | heading |\n|---|---|---|---|\n"
        "| 01 a | posts | [02-x](../notebooks/02-x.ipynb) | Send it |\n"
        "| 01 a | renamed | [02-x](../notebooks/02-x.ipynb) | Send it now |\n"
        "| 01 a | gone | [03-y](../notebooks/03-y.ipynb) | Send it |\n"
    )
    rows = coverage_rows(table)
    assert [r["fact"] for r in rows] == ["posts", "renamed", "gone"]
    verdicts = [problem(r, docs) for r in rows]
    assert verdicts[0] is None
    assert verdicts[1] is not None and "no heading 'Send it now'" in verdicts[1]
    assert verdicts[2] is not None and "does not exist" in verdicts[2]


@pytest.mark.slow
def test_the_facilitator_cost_table_is_the_registrys() -> None:
    page = (ROOT / "docs" / "facilitator.md").read_text()
    match = re.search(r"<!-- cost-table:start -->\n(.*?)\n<!-- cost-table:end -->", page, flags=re.S)
    assert match, "docs/facilitator.md lost its cost-table markers"
    expected = runpy.run_path(str(ROOT / "docs" / "cost_table.py"), run_name="cost_table")["table"]()
    assert match.group(1).strip() == expected.strip(), (
        "docs/facilitator.md's cost table is stale: regenerate it with `python docs/cost_table.py`"
    )


@pytest.mark.slow
def test_the_facilitator_tpm_table_is_the_estimators() -> None:
    page = (ROOT / "docs" / "facilitator.md").read_text()
    match = re.search(r"<!-- tpm-table:start -->\n(.*?)\n<!-- tpm-table:end -->", page, flags=re.S)
    assert match, "docs/facilitator.md lost its tpm-table markers"
    expected = runpy.run_path(str(ROOT / "docs" / "cost_table.py"), run_name="cost_table")["tpm_table"]()
    assert match.group(1).strip() == expected.strip(), (
        "docs/facilitator.md's TPM table is stale: regenerate it with `python docs/cost_table.py`"
    )
