"""Documents (PDF) as the service takes them: file parts, page images, facts and the text layer.

Two ways to send a PDF, both first class: :func:`file_part` builds the service's own part (Chat
``file`` / Responses ``input_file``: the service extracts the text and renders each page), and
:func:`page_parts` renders chosen pages to image parts here, at a dpi and detail you choose. The
type comes from the bytes (``%PDF-``), never the name. Limits default to Azure's documented ones
(100 pages, 32 MB; :mod:`vizlab.document_facts`); pass ``max_pages=None`` / ``max_bytes=None`` to
lift them. Bad documents raise :class:`~vizlab.errors.DocumentError` subclasses naming the file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizlab.errors import DocumentTooLargeError, UnsupportedDocumentError
from vizlab.images.dataurl import build_data_url
from vizlab.images.format import sniff_mime
from vizlab.images.pdf import PdfFacts, decode_file_data, read_pdf, render_page, sniff_document
from vizlab.models import documents as facts

if TYPE_CHECKING:
    from PIL import Image

    from vizlab.images.encode import EncodedImage

__all__ = [
    "DocumentInfo",
    "document_info",
    "document_text",
    "encode_document",
    "file_part",
    "is_pdf",
    "load_pdf",
    "page_parts",
    "thumbnail",
]

APIS = ("chat", "responses")
_OFFICE_MIMES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Never read more than this into memory: the OpenAI Files API maximum per file (512 MB; OpenAI
# API reference "Upload file", w3cschool mirror updated 2026-11-10, checked 2026-12-07).
_READ_LIMIT = 512 * 1024 * 1024


@dataclass(frozen=True)
class DocumentInfo:
    """What :func:`document_info` reports: pages, bytes, page sizes and which pages have text."""

    name: str
    pages: int
    nbytes: int
    page_sizes_pt: tuple[tuple[float, float], ...]
    has_text: tuple[bool, ...]
    text_chars: tuple[int, ...]

    def _repr_markdown_(self) -> str:
        rows = [f"**{self.name}**: {self.pages} page(s), {self.nbytes:,} bytes", "",
                "| page | size (pt) | text layer | characters |", "|---:|---|---|---:|"]
        for i, ((w, h), text, chars) in enumerate(zip(self.page_sizes_pt, self.has_text, self.text_chars), 1):
            rows.append(f"| {i} | {w:g} x {h:g} | {'yes' if text else 'no (scanned?)'} | {chars} |")
        return "\n".join(rows)


def _read_path(path: Path, shown: str) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"{shown}: no such file; check the path (relative to {os.getcwd()})")
    if not path.is_file():
        raise IsADirectoryError(f"{shown} is not a regular file; pass the path of one PDF")
    size = path.stat().st_size
    if size > _READ_LIMIT:
        raise DocumentTooLargeError(
            f"{shown} is {size:,} bytes, over {_READ_LIMIT:,}: too large to send; split it.",
            source=shown, what="bytes", size=size, limit=_READ_LIMIT,
        )
    return path.read_bytes()


def _resolve(source: object, filename: str | None) -> tuple[bytes, str]:
    """(bytes, name) of a path, bytes, ipywidgets upload record or ``data:`` URL."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return data, filename or f"<bytes {len(data)} B>"
    if isinstance(source, Mapping):
        if "content" not in source:
            raise TypeError(f"a mapping must be an ipywidgets FileUpload record with 'content'; got keys {sorted(map(str, source))}")
        # The record's 'type' is the browser's guess from the name: ignored, the bytes decide.
        return bytes(source["content"]), filename or str(source.get("name") or "<upload>")
    if isinstance(source, str) and source.startswith("data:"):
        _, data = decode_file_data(source, filename or "data URL")
        return data, filename or f"<data URL {len(data)} B>"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return _read_path(path, os.fspath(source)), filename or path.name
    raise TypeError(f"cannot use a {type(source).__name__} as a document; pass a path, bytes, a FileUpload record or a data: URL")


def is_pdf(data: bytes) -> bool:
    """True if the bytes are a PDF (by their signature, whatever the file is called)."""
    return sniff_document(data) == "pdf"


def _refuse_non_pdf(data: bytes, name: str, provider: str, api: str) -> None:
    kind = sniff_document(data)
    if kind == "pdf":
        return
    if kind is not None:
        where = "Azure OpenAI" if provider == "azure" else f"{provider} {api}"
        taken = facts.accepted_kinds(provider, api)
        hint = ("OpenAI's Responses API takes it as text only (no page images): use api='responses' with "
                "provider='openai'") if provider != "openai" or api != "responses" else ""
        if kind not in taken:
            raise UnsupportedDocumentError(
                f"{name} is a {kind.upper()} file; {where} takes {', '.join(k.upper() for k in taken)} documents "
                f"only. Export it to PDF first (e.g. `soffice --headless --convert-to pdf {name}`)"
                + (f", or {hint}" if hint else "") + ".",
                source=name, kind=kind, provider=provider,
            )
        return
    mime = sniff_mime(data)
    if mime is not None and mime.startswith("image/"):
        raise UnsupportedDocumentError(
            f"{name} is an image ({mime}), not a PDF: send it with vizlab.image_part(source).",
            source=name, kind=mime, provider=provider,
        )
    raise UnsupportedDocumentError(
        f"{name} is not a PDF (its bytes do not start with %PDF-, whatever its name says); pass a PDF file.",
        source=name, kind="unknown", provider=provider,
    )


def _check_bytes(data: bytes, name: str, max_bytes: int | None) -> None:
    if max_bytes is not None and len(data) > max_bytes:
        raise DocumentTooLargeError(
            f"{name} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB per file (Azure: 32 MB). "
            "Split it, compress its images, or send chosen pages with vizlab.page_parts(source, pages=[...]).",
            source=name, what="bytes", size=len(data), limit=max_bytes,
        )


def load_pdf(source: object, *, filename: str | None = None, max_pages: int | None = facts.AZURE_MAX_PAGES,
             max_bytes: int | None = facts.AZURE_MAX_BYTES, provider: str = "azure", api: str = "chat",
             dpi: float = facts.RENDER_DPI) -> tuple[bytes, PdfFacts]:  # fmt: skip
    """The bytes and :class:`~vizlab.document_reader.PdfFacts` of a PDF source, every check applied."""
    data, name = _resolve(source, filename)
    if not data:
        raise UnsupportedDocumentError(f"{name} is empty (0 bytes); pass a PDF file.", source=name, kind="empty")
    _refuse_non_pdf(data, name, provider, api)
    _check_bytes(data, name, max_bytes)
    return data, read_pdf(data, name, max_pages=max_pages, dpi=dpi)


def _check_api(api: str) -> None:
    if api not in APIS:
        raise ValueError(f"api={api!r}: use 'chat' (Chat Completions) or 'responses' (Responses API)")


def file_part(source: object, *, api: str = "chat", filename: str | None = None, detail: str | None = None,
              provider: str = "azure", max_pages: int | None = facts.AZURE_MAX_PAGES,
              max_bytes: int | None = facts.AZURE_MAX_BYTES) -> dict[str, Any]:  # fmt: skip
    """The service's own part for a PDF: Chat ``file`` or Responses ``input_file`` (a data URL inside).

    ``detail`` (auto / low / high) exists on ``input_file`` only: Chat file parts take none
    (OpenAI "File inputs" guide). The service extracts the text and an image of each page.

    >>> from vizlab.document_samples import sample_documents
    >>> part = file_part(sample_documents()[0].data, filename="invoice.pdf")
    >>> part["type"], part["file"]["filename"], part["file"]["file_data"][:28]
    ('file', 'invoice.pdf', 'data:application/pdf;base64,')
    """
    _check_api(api)
    if detail is not None and api == "chat":
        raise ValueError("Chat Completions file parts take no 'detail' (OpenAI 'File inputs' guide); "
                         "use api='responses' for input_file's detail, or vizlab.page_parts(..., detail=...)")
    if detail is not None and detail not in facts.FILE_DETAILS:
        raise ValueError(f"detail={detail!r}: input_file takes {', '.join(facts.FILE_DETAILS)}")
    data, name = _resolve(source, filename)
    kind = sniff_document(data)
    if kind not in (None, "pdf") and kind in facts.accepted_kinds(provider, api):  # OpenAI Responses: text only
        _check_bytes(data, name, max_bytes)
        office = {"type": "input_file", "filename": name, "file_data": build_data_url(_OFFICE_MIMES[kind], data)}
        return office | ({"detail": detail} if detail is not None else {})
    data, pdf = load_pdf(data, filename=name, max_pages=max_pages, max_bytes=max_bytes, provider=provider, api=api)
    url = build_data_url(facts.PDF_MIME, data)
    if api == "chat":
        return {"type": "file", "file": {"filename": pdf.name, "file_data": url}}
    part = {"type": "input_file", "filename": pdf.name, "file_data": url}
    if detail is not None:
        part["detail"] = detail
    return part


def _pick_pages(pages: int | Sequence[int] | None, count: int, name: str) -> list[int]:
    chosen = list(range(1, count + 1)) if pages is None else [pages] if isinstance(pages, int) else list(pages)
    bad = [p for p in chosen if not isinstance(p, int) or not 1 <= p <= count]
    if bad:
        raise ValueError(f"{name} has pages 1..{count}; pages={bad!r} do not exist (pages are numbered from 1)")
    return chosen


def page_parts(source: object, *, pages: int | Sequence[int] | None = None, dpi: float = 150,
               detail: str = "auto", api: str = "chat", image_format: str = "PNG",
               filename: str | None = None, max_pages: int | None = facts.AZURE_MAX_PAGES) -> list[dict[str, Any]]:  # fmt: skip
    """Render chosen pages (1-based; all by default) at ``dpi`` and return one image part per page.

    Chat gets ``image_url`` parts, the Responses API ``input_image`` parts; ``detail`` is the image
    detail (the service then scales each page image by its image rule, vizlab.tokens).
    ``image_format``: "PNG" (sharp text) or "JPEG" (smaller for scans).
    """
    from vizlab.images.encode import image_part

    _check_api(api)
    if image_format not in ("PNG", "JPEG"):
        raise ValueError(f"image_format={image_format!r}: use 'PNG' or 'JPEG'")
    data, pdf = load_pdf(source, filename=filename, max_pages=max_pages, max_bytes=None, dpi=dpi)
    out = []
    for number in _pick_pages(pages, len(pdf.pages), pdf.name):
        buf = io.BytesIO()
        render_page(data, pdf.name, number, dpi=dpi).save(buf, image_format, **({"quality": 90} if image_format == "JPEG" else {}))
        part = image_part(buf.getvalue(), detail=detail)
        if api == "responses":
            part = {"type": "input_image", "image_url": part["image_url"]["url"], "detail": detail}
        out.append(part)
    return out


def document_info(source: object, *, filename: str | None = None) -> DocumentInfo:
    """Pages, bytes, each page's size in points and whether it has a text layer (no limits applied)."""
    _, pdf = load_pdf(source, filename=filename, max_pages=None, max_bytes=None)
    return DocumentInfo(
        name=pdf.name, pages=len(pdf.pages), nbytes=pdf.nbytes,
        page_sizes_pt=tuple((p.width_pt, p.height_pt) for p in pdf.pages),
        has_text=tuple(p.has_text for p in pdf.pages),
        text_chars=tuple(len(p.text.strip()) for p in pdf.pages),
    )


def document_text(source: object, *, pages: int | Sequence[int] | None = None, filename: str | None = None) -> str:
    """The text layer of chosen pages (all by default), pages separated by a blank line; '' for scans."""
    _, pdf = load_pdf(source, filename=filename, max_pages=None, max_bytes=None)
    chosen = _pick_pages(pages, len(pdf.pages), pdf.name)
    return "\n\n".join(pdf.pages[n - 1].text.strip() for n in chosen if pdf.pages[n - 1].has_text)


def _head(source: object) -> bytes:
    """The first bytes of a source (at most 1 KB read from a path), to tell a PDF from an image."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[:1024])
    if isinstance(source, Mapping) and isinstance(source.get("content"), (bytes, bytearray, memoryview)):
        return bytes(source["content"][:1024])
    if isinstance(source, (str, os.PathLike)) and not str(source).startswith(("data:", "http:", "https:")):
        path = Path(source)
        if path.is_file():
            with path.open("rb") as f:
                return f.read(1024)
    return b""


def encode_document(source: object, *, filename: str | None = None) -> EncodedImage | None:
    """A PDF source as an :class:`~vizlab.images.EncodedImage` with MIME ``application/pdf`` (size: page
    1 at the render dpi), so a Conversation stores it once like an image and sends it as a file part;
    None if the source is not a PDF (by its bytes)."""
    from vizlab.images.encode import EncodedImage
    from vizlab.images.pdf import page_pixels

    if sniff_document(_head(source)) != "pdf":
        return None
    data, pdf = load_pdf(source, filename=filename)
    width, height = page_pixels(pdf.pages[0].width_pt, pdf.pages[0].height_pt)
    return EncodedImage(data, facts.PDF_MIME, width, height, pdf.name, width, height)


def thumbnail(source: object, *, page: int = 1, max_size: int = 256, filename: str | None = None) -> Image.Image:
    """A small PIL image of one page (default page 1), within ``max_size`` px: for panels and tables."""
    data, pdf = load_pdf(source, filename=filename, max_pages=None, max_bytes=None)
    (number,) = _pick_pages(page, len(pdf.pages), pdf.name)
    longest = max(pdf.pages[number - 1].width_pt, pdf.pages[number - 1].height_pt)
    return render_page(data, pdf.name, number, dpi=min(150.0, 72 * max_size / longest))
