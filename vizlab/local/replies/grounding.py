"""What the text the analyst read holds: key-value pairs, amounts, numbers, dates, the kind of image.

Pure functions over OCR lines, used to ground schema fields (vizlab.local.replies.structured).
Trade-off: simple patterns (``Total: 12.40``, ``$3.50``, ``2026-12-07``), no layout model, so a
value is found only when it is written on one line with its key.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

__all__ = ["field_key", "key_values", "amounts", "numbers", "dates", "content_kind", "KIND_WORDS"]

_KV = re.compile(r"^\s*([A-Za-z][A-Za-z .#&/-]{0,40}?)\s*[:=]\s*(.+?)\s*$")
_KV_TRAILING_AMOUNT = re.compile(r"^\s*([A-Za-z][A-Za-z .#&/-]{0,40}?)\s+([-+]?[$€£¥]?\s?\d[\d,]*(?:\.\d+)?)\s*$")
_MONEY = re.compile(r"(?:[$€£¥]\s?(\d[\d,]*(?:\.\d{1,2})?))|(\b\d[\d,]*\.\d{2}\b)")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)?(?![\w])")
_DATE = re.compile(
    r"\b(\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}|"
    r"\d{1,2}\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{4}|"
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4})\b",
    re.IGNORECASE,
)
# The kinds of image the analyst tells apart, with words a schema's enum may use for each.
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "text": ("text", "document", "sign", "words", "writing", "receipt"),
    "shape": ("shape", "shapes", "diagram", "drawing", "geometry"),
    "colour": ("colour", "color", "solid", "plain", "swatch"),
    "photo": ("photo", "photograph", "picture", "image", "scene"),
}


def field_key(name: str) -> str:
    """A key or field name folded for matching: lower case, words joined by ``_``.

    >>> field_key("Sub-Total"), field_key("subTotal"), field_key("Invoice No.")
    ('sub_total', 'sub_total', 'invoice_no')
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return "_".join(re.findall(r"[a-z0-9]+", spaced.lower()))


def key_values(lines: Sequence[str]) -> dict[str, str]:
    """``Key: value`` pairs (and ``Total 12.40``) read from lines, keys folded, first one kept.

    >>> key_values(["ACME STORE", "Total: 12.40", "Date = 2026-12-07", "TAX 1.10"])
    {'total': '12.40', 'date': '2026-12-07', 'tax': '1.10'}
    """
    out: dict[str, str] = {}
    for line in lines:
        match = _KV.match(line) or _KV_TRAILING_AMOUNT.match(line)
        if match:
            key = field_key(match.group(1))
            if key and key not in out:
                out[key] = match.group(2).strip()
    return out


def to_number(text: str) -> float | None:
    """The number a cell holds (``$1,234.50`` -> 1234.5), or None.

    >>> to_number("$1,234.50"), to_number("abc")
    (1234.5, None)
    """
    match = re.search(r"[-+]?\d[\d,]*(?:\.\d+)?", text)
    if not match:
        return None
    try:
        return float(match.group(0).replace(",", ""))
    except ValueError:
        return None


def amounts(lines: Sequence[str]) -> list[float]:
    """Money amounts in reading order (a currency sign, or two decimals).

    >>> amounts(["Coffee $3.50", "Total 12.40", "Table 4"])
    [3.5, 12.4]
    """
    out = []
    for line in lines:
        for match in _MONEY.finditer(line):
            out.append(float((match.group(1) or match.group(2)).replace(",", "")))
    return out


def numbers(lines: Sequence[str]) -> list[float]:
    """Every number in reading order.

    >>> numbers(["OPEN 9-5", "Table 4"])
    [9.0, 5.0, 4.0]
    """
    out = []
    for line in lines:
        for match in _NUMBER.finditer(line.replace("-", " ")):
            out.append(float(match.group(0).replace(",", ".")))
    return out


def dates(lines: Sequence[str]) -> list[str]:
    """Dates as written, in reading order.

    >>> dates(["Paid 07/12/2026", "due 2027-01-05"])
    ['07/12/2026', '2027-01-05']
    """
    return [m.group(1) for line in lines for m in _DATE.finditer(line)]


def content_kind(text_lines: Sequence[str], shapes: dict[str, int], colours: Sequence[Any], images: int) -> str | None:
    """What the image mostly is: ``text``, ``shape``, ``colour`` (one plain colour) or ``photo``.

    >>> content_kind(["HELLO"], {}, ["white", "black"], 1), content_kind([], {}, ["red"], 1)
    ('text', 'colour')
    """
    if not images:
        return None
    if text_lines:
        return "text"
    if shapes:
        return "shape"
    return "colour" if len(colours) <= 2 else "photo"
