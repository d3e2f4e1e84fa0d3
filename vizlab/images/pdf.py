"""Read a PDF with pypdfium2: sniff, open, check, page sizes, the text layer, render pages.

pypdfium2 (BSD-3 / Apache-2.0 wheels with PDFium inside) reads and renders; PyMuPDF would be
AGPL. PDFium is not thread-safe, so every call into it holds one lock: the built-in backend
calls this from a thread pool. :func:`read_pdf` is cached by the bytes' SHA-256 (a handful of
entries), so the estimate, the backend's bill and its answer parse a document once.
Errors are the typed :class:`~vizlab.errors.DocumentError` subclasses, each naming the input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from io import BytesIO

import pypdfium2 as pdfium
from PIL import Image

from vizlab.errors import (
    CorruptDocumentError,
    DocumentBombError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
)
from vizlab.models.documents import MAX_PAGE_PIXELS, RENDER_DPI

__all__ = [
    "PDFIUM_LOCK",
    "PageFacts",
    "PdfFacts",
    "decode_file_data",
    "page_pixels",
    "read_pdf",
    "render_page",
    "sniff_document",
]

PDFIUM_LOCK = threading.RLock()
_CACHE: OrderedDict[str, PdfFacts] = OrderedDict()
_CACHE_SIZE = 16
_ERR_PASSWORD = 4  # FPDF_ERR_PASSWORD (pypdfium2's PdfiumError.err_code)
_ERR_SUCCESS = 0  # PDFium reports "success" when the page tree is empty


@dataclass(frozen=True)
class PageFacts:
    """One page: its size in points (1/72 in, after rotation) and its text layer ('' if none)."""

    number: int  # 1-based
    width_pt: float
    height_pt: float
    text: str

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


@dataclass(frozen=True)
class PdfFacts:
    """What a PDF holds: pages (sizes and text), its size in bytes and SHA-256."""

    name: str
    nbytes: int
    sha256: str
    pages: tuple[PageFacts, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.pages if p.has_text)


def page_pixels(width_pt: float, height_pt: float, dpi: float = RENDER_DPI) -> tuple[int, int]:
    """A page's size in pixels rendered at ``dpi``.

    >>> page_pixels(612, 792, 150)  # US Letter
    (1275, 1650)
    """
    return max(1, math.ceil(width_pt / 72 * dpi - 1e-9)), max(1, math.ceil(height_pt / 72 * dpi - 1e-9))


def sniff_document(data: bytes) -> str | None:
    """The document kind from the bytes alone: "pdf", "docx", "pptx", "xlsx", or None.

    >>> sniff_document(b"%PDF-1.7 ..."), sniff_document(b"hello")
    ('pdf', None)
    """
    head = bytes(data[:1024])
    if head.lstrip(b"\x00\t\n\r ").startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(BytesIO(data)).namelist()
        except (zipfile.BadZipFile, ValueError):
            return None
        for prefix, kind in (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx")):
            if any(n.startswith(prefix) for n in names):
                return kind
    return None


def _empty_page_tree(data: bytes) -> bool:
    """A page tree of /Count 0 and no /Type /Page object (PDFium will not open such a file)."""
    return bool(re.search(rb"/Count\s*0(?![0-9])", data)) and not re.search(rb"/Type\s*/Page(?![a-zA-Z])", data)


def _open(data: bytes, name: str) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        code = getattr(e, "err_code", None)
        if code == _ERR_PASSWORD:
            raise EncryptedDocumentError(
                f"{name} is an encrypted PDF (it needs a password); the service cannot read it either. "
                "Save an unencrypted copy (e.g. `qpdf --decrypt in.pdf out.pdf`) and send that.",
                source=name,
            ) from e
        if code == _ERR_SUCCESS or _empty_page_tree(data):  # PDFium refuses a document with no pages
            raise EmptyDocumentError(
                f"{name} is a PDF with no pages; there is nothing to send. Check that it is the file you meant.",
                source=name,
            ) from e
        raise CorruptDocumentError(
            f"{name} starts like a PDF but cannot be read ({e}); it is truncated or damaged. "
            "Re-download or re-export it, and check it opens in a PDF viewer.",
            source=name,
        ) from e


def _check_page(name: str, number: int, width: float, height: float, dpi: float) -> None:
    w, h = page_pixels(width, height, dpi)
    if w * h > MAX_PAGE_PIXELS or width <= 0 or height <= 0:
        raise DocumentBombError(
            f"{name} page {number} is {width:g} x {height:g} pt: {w} x {h} px at {dpi:g} dpi, over vizlab's "
            f"limit of {MAX_PAGE_PIXELS:,} px per page (a PDF 'bomb', or a poster). Crop or scale the page, "
            "or render fewer pixels with vizlab.page_parts(source, dpi=72).",
            source=name, page=number, pixels=w * h, limit=MAX_PAGE_PIXELS,
        )


def read_pdf(data: bytes, name: str, *, max_pages: int | None = None, dpi: float = RENDER_DPI) -> PdfFacts:
    """Open ``data`` and return its pages (size, text); raise the typed errors for bad PDFs.

    ``max_pages``: refuse a longer document (:class:`DocumentTooLargeError`). Pages are checked
    against the pixel limit at ``dpi`` (:class:`DocumentBombError`).
    """
    digest = hashlib.sha256(data).hexdigest()
    with PDFIUM_LOCK:
        facts = _CACHE.get(digest)
        if facts is None:
            facts = _read_uncached(data, name, digest)
            _CACHE[digest] = facts
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(digest)
    if max_pages is not None and len(facts.pages) > max_pages:
        raise DocumentTooLargeError(
            f"{name} has {len(facts.pages)} pages; the limit is {max_pages}. Split it (e.g. "
            f"`qpdf in.pdf --pages . 1-{max_pages} -- part1.pdf`) or send chosen pages with "
            "vizlab.page_parts(source, pages=[...]).",
            source=name, what="pages", size=len(facts.pages), limit=max_pages,
        )
    for page in facts.pages:
        _check_page(name, page.number, page.width_pt, page.height_pt, dpi)
    return PdfFacts(name, facts.nbytes, facts.sha256, facts.pages)


def _read_uncached(data: bytes, name: str, digest: str) -> PdfFacts:
    doc = _open(data, name)
    try:
        pages = []
        for i in range(len(doc)):
            page = doc[i]
            try:
                width, height = page.get_size()
                textpage = page.get_textpage()
                text = textpage.get_text_range().replace("\r\n", "\n")
                textpage.close()
            finally:
                page.close()
            pages.append(PageFacts(i + 1, float(width), float(height), text))
    except pdfium.PdfiumError as e:
        raise CorruptDocumentError(
            f"{name} opened but a page could not be read ({e}); it is damaged. Re-export it and try again.",
            source=name,
        ) from e
    finally:
        doc.close()
    if not pages:
        raise EmptyDocumentError(
            f"{name} is a PDF with 0 pages; there is nothing to send. Check that it is the file you meant.",
            source=name,
        )
    return PdfFacts(name, len(data), digest, tuple(pages))


def render_page(data: bytes, name: str, number: int, *, dpi: float = RENDER_DPI) -> Image.Image:
    """Page ``number`` (1-based) of the PDF rendered at ``dpi`` as an RGB PIL image."""
    facts = read_pdf(data, name, dpi=dpi)
    if not 1 <= number <= len(facts.pages):
        raise ValueError(f"{name} has pages 1..{len(facts.pages)}; page {number} does not exist")
    with PDFIUM_LOCK:
        doc = _open(data, name)
        try:
            page = doc[number - 1]
            try:
                bitmap = page.render(scale=dpi / 72)
                # PDFium rounds up float noise (792 pt * 150/72 -> 1651 px): trim to page_pixels' size.
                width_pt, height_pt = page.get_size()
                width, height = page_pixels(width_pt, height_pt, dpi)
                image = bitmap.to_pil().convert("RGB").crop((0, 0, width, height))
                bitmap.close()
            finally:
                page.close()
        finally:
            doc.close()
    return image




def decode_file_data(value: str, where: str) -> tuple[str | None, bytes]:
    """A ``file_data`` value as (declared MIME or None, bytes): a ``data:<mime>;base64,`` URL or bare base64.

    The OpenAI guide sends a data URL; the SDK's field is "the base64 encoded file data", so bare
    base64 is taken too. Raises :class:`CorruptDocumentError` naming ``where`` for bad base64.
    """
    mime: str | None = None
    payload = value
    if value.startswith("data:"):
        head, sep, payload = value.partition(",")
        if not sep or not head.endswith(";base64"):
            raise CorruptDocumentError(
                f"{where}: file_data is a data URL without ';base64,' (got {head[:40]!r}); send "
                "'data:application/pdf;base64,<base64>' (vizlab.file_part builds it).",
                source=where,
            )
        mime = head[5:-7] or None
    try:
        return mime, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise CorruptDocumentError(
            f"{where}: file_data is not valid base64 ({e}); send 'data:application/pdf;base64,<base64>' "
            "(vizlab.file_part builds it).",
            source=where,
        ) from e
