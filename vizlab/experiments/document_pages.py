"""Items per page: a folder of PDFs with a labels file, one row per page instead of per document.

``load_items(folder, unit="page")`` calls :func:`by_page`: each PDF item becomes one item per page
(or the page its labels row names in a ``page`` column), holding that page as a one-page PDF, so
the document arms (text, pages, both), scorers, intervals and paired tests run unchanged. The page
is in the item id (``report-p2``) and in ``meta["page"]``. Trade-off: each page is copied once into
memory at load time (a 100-page PDF of 32 MB can mean tens of MB); a bad PDF is one problem row.
"""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any, Callable

import pypdfium2 as pdfium

from vizlab.errors import VizlabError
from vizlab.images.documents import is_pdf, load_pdf
from vizlab.images.pdf import PDFIUM_LOCK

__all__ = ["UNITS", "by_page", "page_pdf"]

UNITS = ("document", "page")


def page_pdf(data: bytes, number: int) -> bytes:
    """Page ``number`` (1-based) of the PDF ``data`` as a PDF of its own (text layer and images kept)."""
    with PDFIUM_LOCK:  # PDFium is not thread-safe (vizlab.images.pdf)
        source = pdfium.PdfDocument(data)
        single = pdfium.PdfDocument.new()
        try:
            single.import_pages(source, [number - 1])
            out = BytesIO()
            single.save(out)
        finally:
            single.close()
            source.close()
    return out.getvalue()


def _pdf_bytes(item: Any) -> bytes | None:
    image = item.image
    if isinstance(image, (str, Path)) and Path(image).suffix.lower() == ".pdf":
        return Path(image).read_bytes()
    if isinstance(image, (bytes, bytearray)) and is_pdf(bytes(image)):
        return bytes(image)
    return None


def _wanted(item: Any, count: int) -> tuple[list[int], str | None]:
    """The pages to make items of, or a problem naming the labels row's bad ``page``."""
    given = item.meta.get("page")
    if given is None:
        return list(range(1, count + 1)), None
    try:
        number = int(float(str(given)))
    except ValueError:
        return [], f"page {given!r} is not a page number; write a whole number from 1 to {count}"
    if not 1 <= number <= count:
        return [], f"page {number} does not exist: the PDF has pages 1..{count}"
    return [number], None


def by_page(item_set: Any, unit: str, *, problem: Callable[[int | None, str, str], Any]) -> Any:
    """``item_set`` (an :class:`~vizlab.experiments.inputs.ItemSet`) with each PDF item split into one
    item per page (``unit="page"``); other items kept. ``problem(row, file, message)`` makes a
    problem row (inputs.Problem: passed in, so this module does not import its caller).
    """
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {', '.join(map(repr, UNITS))}: 'document' gives one row per "
                         "PDF, 'page' one row per page")  # fmt: skip
    if unit == "document":
        return item_set
    items: list[Any] = []
    problems = list(item_set.problems)
    for item in item_set.items:
        data = _pdf_bytes(item)
        if data is None:
            items.append(item)
            continue
        name = Path(item.image).name if isinstance(item.image, (str, Path)) else f"{item.id}.pdf"
        try:
            _, pdf = load_pdf(data, filename=name, max_pages=None, max_bytes=None)
        except VizlabError as e:  # encrypted, corrupt, empty: this document's row only
            problems.append(problem(item.meta.get("row"), name, str(e)))
            continue
        pages, wrong = _wanted(item, len(pdf.pages))
        if wrong:
            problems.append(problem(item.meta.get("row"), name, wrong))
        for number in pages:
            meta = {**item.meta, "page": number, "document": name, "pages": len(pdf.pages)}
            items.append(replace(item, id=f"{item.id}-p{number}", image=page_pdf(data, number), meta=meta))
    return replace(item_set, items=items, problems=problems)
