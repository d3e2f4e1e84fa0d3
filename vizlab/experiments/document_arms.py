"""The document strategies: send a PDF as its text, as page images, or as the service's file part.

* ``document:text``: the text layer alone, as a text part (the cheapest; a scan sends nothing).
* ``document:pages``: each page rendered at :data:`PAGES_DPI` and sent as an image at the arm's detail.
* ``document:both``: the Chat ``file`` part as the service takes it (text + page images; no detail).

Each arm is a list of :class:`~vizlab.images.EncodedImage` like the image strategies; a text arm
holds one ``text/plain`` entry and a file arm one ``application/pdf`` entry, and :func:`part_for`
turns each into its content part. The runner's estimate is ``estimate_request`` over those parts.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from vizlab.images.documents import encode_document, load_pdf
from vizlab.images.encode import EncodedImage, encode_image
from vizlab.images.pdf import render_page
from vizlab.models.documents import PDF_MIME

__all__ = ["DOCUMENT_STRATEGIES", "PAGES_DPI", "check_document_strategy", "document_images", "part_for"]

DOCUMENT_STRATEGIES = ("document:text", "document:pages", "document:both")
PAGES_DPI = 150


def check_document_strategy(strategy: str) -> str:
    if strategy not in DOCUMENT_STRATEGIES:
        raise ValueError(f"strategy {strategy!r}: use one of {', '.join(DOCUMENT_STRATEGIES)} (or document='text' / "
                         "'pages' / 'both' in run_experiment)")  # fmt: skip
    return strategy


def document_images(source: Any, strategy: str, *, name: str) -> list[EncodedImage]:
    """What one request sends for a PDF under ``strategy`` (typed errors name the file)."""
    filename = Path(source).name if isinstance(source, (str, os.PathLike)) else f"{name}.pdf"
    if strategy == "document:both":
        doc = encode_document(source, filename=filename)
        if doc is None:
            raise ValueError(f"{filename}: not a PDF (by its bytes); the document strategies take PDFs")
        return [doc]
    data, pdf = load_pdf(source, filename=filename)
    if strategy == "document:text":
        text = pdf.text.strip() or "(the document has no text layer)"
        return [EncodedImage(text.encode("utf-8"), "text/plain", 0, 0, name, 0, 0)]
    pages = []
    for page in pdf.pages:
        buf = io.BytesIO()
        render_page(data, pdf.name, page.number, dpi=PAGES_DPI).save(buf, "PNG")
        pages.append(encode_image(buf.getvalue(), name=f"{name}[p{page.number}]"))
    return pages


def part_for(image: EncodedImage, detail: str) -> dict[str, Any]:
    """The content part of one entry: a text part, a Chat file part, or the image part at ``detail``."""
    if image.mime == "text/plain":
        return {"type": "text", "text": "Document text:\n" + image.data.decode("utf-8")}
    if image.mime == PDF_MIME:
        return {"type": "file", "file": {"filename": image.name, "file_data": image.data_url}}
    return image.part(detail)
