"""vizlab.Table: rows shown as HTML and aligned text, without pandas."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import vizlab
from vizlab.tables import Table

ROWS = [
    {"model": "gpt-4o", "tokens": 765, "cost": 0.00191},
    {"model": "gpt-4o-mini", "tokens": 25501, "cost": 0.0038},
    {"model": "<script>alert(1)</script>", "tokens": None, "cost": 1.5},
]


def test_html_escapes_every_cell_and_header() -> None:
    table = Table([{"<b>": "<script>alert(1)</script>", "n": 1}], index=["a&b"])
    out = table._repr_html_()
    assert "<script>" not in out and "<b>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "&lt;b&gt;" in out and "a&amp;b" in out


def test_html_right_aligns_numbers_only() -> None:
    out = Table(ROWS)._repr_html_()
    assert '<td style="text-align: right">25,501</td>' in out
    assert '<td style="text-align: left">gpt-4o</td>' in out
    assert '<td style="text-align: right">—</td>' in out  # None in a numeric column


def test_text_is_aligned_and_floats_share_decimals() -> None:
    assert repr(Table(ROWS)).splitlines() == [
        "model                       tokens      cost",
        "gpt-4o                         765   0.00191",
        "gpt-4o-mini                 25,501   0.00380",
        "<script>alert(1)</script>        —   1.50000",
    ]


def test_index_as_labels_or_a_column() -> None:
    by_column = Table(ROWS[:2], index="model")
    assert by_column.index == ["gpt-4o", "gpt-4o-mini"] and by_column.columns == ["tokens", "cost"]
    assert repr(by_column).splitlines()[0] == "model         tokens      cost"
    labelled = Table([{"x": 1}, {"x": 2}], index=["first", "second"])
    assert repr(labelled).splitlines() == ["         x", "first    1", "second   2"]
    with pytest.raises(ValueError, match="index has 1 labels for 2 rows"):
        Table([{"x": 1}, {"x": 2}], index=["only one"])


def test_dict_of_columns_lists_or_dicts() -> None:
    assert list(Table({"a": [1, 2], "b": ["x", "y"]})) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    by_label = Table({"prompt": {"hate": "safe"}, "answer": {"hate": "safe", "violence": "low"}})
    assert by_label.index == ["hate", "violence"] and by_label.columns == ["prompt", "answer"]
    assert list(by_label)[1] == {"prompt": None, "answer": "low"}
    with pytest.raises(ValueError, match="different lengths"):
        Table({"a": [1, 2], "b": [1]})


def test_len_iteration_columns_and_column_choice() -> None:
    table = Table(ROWS, columns=["tokens", "model"])
    assert len(table) == 3 and table.columns == ["tokens", "model"]
    assert [row["tokens"] for row in table] == [765, 25501, None]
    assert repr(table).splitlines()[0].split() == ["tokens", "model"]


def test_to_pandas_equals_dataframe() -> None:
    pd.testing.assert_frame_equal(Table(ROWS).to_pandas(), pd.DataFrame(ROWS))
    indexed = Table(ROWS, index="model").to_pandas()
    pd.testing.assert_frame_equal(indexed, pd.DataFrame(ROWS).set_index("model"))


def test_importing_vizlab_table_does_not_import_pandas() -> None:
    code = "import sys, vizlab; repr(vizlab.Table([{'a': 1}])); print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert vizlab.Table is Table


def test_round_rounds_floats_and_keeps_the_rest() -> None:
    rounded = Table(ROWS, index="model").round(2)
    assert [row["cost"] for row in rounded] == [0.0, 0.0, 1.5]
    assert [row["tokens"] for row in rounded] == [765, 25501, None]
    assert rounded.index_name == "model" and rounded.index == ["gpt-4o", "gpt-4o-mini", "<script>alert(1)</script>"]
