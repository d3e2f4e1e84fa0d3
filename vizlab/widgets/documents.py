"""PDFs in the panels: page 1's thumbnail, the page count and the estimate; sent as a file or as pages.

A PDF attached to a panel is kept whole, as an ``EncodedImage`` with MIME ``application/pdf``
(:func:`vizlab.images.documents.encode_document`): a Conversation stores it once and sends it as
a Chat ``file`` part. Sent ``"pages"``, each page goes as a PNG image part instead
(:func:`vizlab.page_parts`, 150 dpi), rendered once per document and kept. The estimate shown is
:func:`vizlab.tokens.estimate_request`'s for the parts that would go, so it moves with the choice.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vizlab.conversation.storage import human_bytes

if TYPE_CHECKING:
    from vizlab.images.encode import EncodedImage

__all__ = ["PDF_MODES", "DocumentRow", "PageImages", "document_part", "document_row", "document_thumbnail_png",
           "encode_attachment", "is_document"]  # fmt: skip

PDF_MIME = "application/pdf"
PDF_MODES = ("file", "pages")  # a Chat file part (text layer plus page images, the service's way), or page images
PAGE_DPI = 150  # vizlab.page_parts' default: small text stays legible


def is_document(item: Any) -> bool:
    """True for a PDF kept whole (an EncodedImage whose MIME is application/pdf)."""
    return getattr(item, "mime", "") == PDF_MIME


def encode_attachment(source: Any, name: str | None = None) -> EncodedImage:
    """An image as :func:`vizlab.images.encode_image` reads it, or a PDF (told by its bytes) kept whole."""
    from vizlab.images.documents import encode_document
    from vizlab.images.encode import encode_image

    document = encode_document(source, filename=name)
    if document is not None:
        return document
    return encode_image(source, name=name) if name else encode_image(source)


def document_part(document: EncodedImage) -> dict[str, Any]:
    """The Chat ``file`` part a Conversation sends for ``document`` (the same shape, built the same way)."""
    return {"type": "file", "file": {"filename": document.name, "file_data": document.data_url}}


def document_thumbnail_png(document: EncodedImage, box: tuple[int, int] = (96, 96)) -> bytes:
    """Page 1 of ``document`` as a small PNG within ``box`` (:func:`vizlab.images.documents.thumbnail`)."""
    from vizlab.images.documents import thumbnail

    image = thumbnail(document.data, filename=document.name, max_size=max(box))
    image.thumbnail(box)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


class PageImages:
    """Each document's pages as PNG images, rendered once per document (by its bytes)."""

    def __init__(self) -> None:
        self._pages: dict[str, list[EncodedImage]] = {}

    def of(self, document: EncodedImage) -> list[EncodedImage]:
        from vizlab.images.documents import page_parts
        from vizlab.images.encode import encode_image

        if document.sha256 not in self._pages:
            stem = document.name.rsplit(".", 1)[0] if "." in document.name else document.name
            parts = page_parts(document.data, filename=document.name, dpi=PAGE_DPI)
            self._pages[document.sha256] = [
                encode_image(p["image_url"]["url"], name=f"{stem}-page-{n}.png") for n, p in enumerate(parts, start=1)
            ]
        return list(self._pages[document.sha256])

    def expand(self, items: Sequence[EncodedImage], mode: str) -> list[EncodedImage]:
        """``items`` with each document replaced by its page images when ``mode`` is ``"pages"``."""
        if mode not in PDF_MODES:
            raise ValueError(f"PDFs go as {' or '.join(map(repr, PDF_MODES))}, not {mode!r}")
        out: list[EncodedImage] = []
        for item in items:
            out.extend(self.of(item) if mode == "pages" and is_document(item) else [item])
        return out


@dataclass(frozen=True)
class DocumentRow:
    """What a panel shows for one PDF: its pages and size, and the tokens it costs sent each way."""

    name: str
    pages: int
    nbytes: int
    mode: str
    tokens: int
    explanation: str

    def line(self) -> str:
        how = "as a file part (text layer + page images)" if self.mode == "file" else "as page images"
        return (f"PDF · {self.pages} page{'s' * (self.pages != 1)} · {human_bytes(self.nbytes)} · "
                f"~{self.tokens:,} tokens sent {how}")  # fmt: skip


def document_row(document: EncodedImage, *, model: str, mode: str = "file", detail: str = "auto",
                 pages: PageImages | None = None) -> DocumentRow:  # fmt: skip
    """The estimate for ``document`` sent ``mode``-wise on ``model``: the file part's document count
    (vizlab.tokens.documents), or the page images' tokens at ``detail``."""
    from vizlab.images.documents import document_info
    from vizlab.tokens.request import estimate_request

    info = document_info(document.data, filename=document.name)
    if mode == "file":
        est = estimate_request([{"role": "user", "content": [document_part(document)]}], model=model)
        counted = est.documents[0] if est.documents else None
        tokens = counted.tokens if counted is not None else est.prompt_tokens
        explanation = counted.explain().splitlines()[0] if counted is not None else "; ".join(est.notes)
    else:
        images = (pages or PageImages()).expand([document], "pages")
        est = estimate_request([{"role": "user", "content": [i.part(detail) for i in images]}], model=model)
        tokens = est.image_tokens
        explanation = f"{len(images)} page image(s) at {PAGE_DPI} dpi, detail {detail}: {tokens:,} image tokens on {model}"
    return DocumentRow(document.name, info.pages, document.nbytes, mode, tokens, explanation)
