"""A small table for notebooks: rows of dicts shown as HTML in Jupyter and as aligned text.

It stands in for ``pandas.DataFrame`` where a notebook only displays a few rows, so a kernel
need not import pandas (~43 MiB). It computes nothing: filter and sort the rows in Python, then
show them. ``to_pandas()`` hands the same data to pandas (imported only then) for analysis.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["Table"]

_MISSING = "—"


class Table:
    """Rows of dicts (or a dict of columns, each a list or a dict keyed by row label), displayed.

    ``index`` is a list of row labels, or the name of a column to use as the labels;
    ``columns`` picks and orders the columns shown (default: every key, first seen first).

    >>> Table([{"model": "gpt-4o", "tokens": 765}], index="model")
    model    tokens
    gpt-4o      765
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
                 index: str | Sequence[Any] | None = None, columns: Sequence[str] | None = None) -> None:
        if isinstance(rows, Mapping):
            rows, labels = _rows_from_columns(rows)
            index = labels if index is None else index
        self._rows = [dict(row) for row in rows]
        self.index_name = ""
        if isinstance(index, str):
            self.index_name = index
            index = [row.pop(index, None) for row in self._rows]
        if index is not None and len(index) != len(self._rows):
            raise ValueError(f"Table: index has {len(index)} labels for {len(self._rows)} rows; "
                             "give one label per row")
        self.index: list[Any] | None = None if index is None else list(index)
        self.columns: list[str] = list(columns) if columns is not None else _keys(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (dict(row) for row in self._rows)

    def round(self, decimals: int) -> Table:
        """A copy with every float rounded to ``decimals`` places (as ``DataFrame.round``)."""
        rows = [{k: round(v, decimals) if isinstance(v, float) else v for k, v in row.items()} for row in self._rows]
        table = Table(rows, index=self.index, columns=self.columns)
        table.index_name = self.index_name
        return table

    def to_pandas(self) -> Any:
        """The same data as a ``pandas.DataFrame`` (imports pandas now)."""
        import pandas as pd

        frame = pd.DataFrame(self._rows, columns=self.columns, index=self.index)
        if self.index_name:
            frame.index.name = self.index_name
        return frame

    def _cells(self) -> tuple[list[str], list[list[str]], list[bool]]:
        """Header, formatted body rows (index first when there is one), and which columns are numeric."""
        columns = [[row.get(name) for row in self._rows] for name in self.columns]
        texts = [_format_column(values) for values in columns]
        numeric = [all(_is_number(v) or v is None for v in values) and any(map(_is_number, values))
                   for values in columns]
        header = list(self.columns)
        if self.index is not None:
            header, numeric = [self.index_name, *header], [False, *numeric]
            texts = [[_MISSING if v is None else str(v) for v in self.index], *texts]
        return header, [list(cells) for cells in zip(*texts)], numeric

    def __repr__(self) -> str:
        header, body, numeric = self._cells()
        widths = [max(len(cell) for cell in column) for column in zip(header, *body)]

        def line(cells: list[str]) -> str:
            padded = (c.rjust(w) if right else c.ljust(w) for c, w, right in zip(cells, widths, numeric))
            return "   ".join(padded).rstrip()

        return "\n".join([line(header), *(line(cells) for cells in body)])

    def _repr_html_(self) -> str:
        header, body, numeric = self._cells()
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
        rows = "".join("<tr>" + "".join(_td(c, right, i == 0 and self.index is not None)
                                        for i, (c, right) in enumerate(zip(cells, numeric))) + "</tr>"
                       for cells in body)
        return f'<table class="vizlab-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _td(text: str, right: bool, is_label: bool) -> str:
    tag = "th" if is_label else "td"
    style = ' style="text-align: right"' if right else ' style="text-align: left"'
    return f"<{tag}{style}>{html.escape(text)}</{tag}>"


def _rows_from_columns(columns: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """A dict of columns as rows; columns that are dicts give the row labels (first seen first)."""
    if all(isinstance(values, Mapping) for values in columns.values()):
        labels = _keys(list(columns.values()))
        return [{name: values.get(label) for name, values in columns.items()} for label in labels], labels
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"Table: columns have different lengths {sorted(lengths)}; give equal-length lists")
    count = lengths.pop() if lengths else 0
    return [{name: values[i] for name, values in columns.items()} for i in range(count)], None


def _keys(mappings: Sequence[Mapping[Any, Any]]) -> list[Any]:
    return list(dict.fromkeys(key for mapping in mappings for key in mapping))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _decimals(value: float) -> int:
    """Decimals ``value`` needs, at most 6: 0.25 -> 2, 3.0 -> 1."""
    if not math.isfinite(value):
        return 0
    return max(1, len(f"{value:.6f}".rstrip("0").split(".")[1]))


def _format_column(values: list[Any]) -> list[str]:
    """Cells as text: ints with thousands separators, floats to a shared number of decimals."""
    floats = [v for v in values if isinstance(v, float)]
    places = max(map(_decimals, floats), default=0)
    return [_MISSING if v is None else f"{v:,.{places}f}" if isinstance(v, float)
            else f"{v:,}" if _is_number(v) else str(v) for v in values]
