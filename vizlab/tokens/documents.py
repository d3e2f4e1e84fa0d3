"""The tokens of a document part: its text layer plus each page as an image, by the registry's rule.

A PDF sent as a Chat ``file`` / Responses ``input_file`` part puts the extracted text and an image
of each page into context (OpenAI "File inputs" guide). How it is billed is not documented: here
the text counts as plain text, and each page as one image rendered at
:data:`~vizlab.document_facts.RENDER_DPI` (an assumption) and scaled by the model's image rule at
the file's detail (``auto`` = high on GPT-5.6 and later, low before). So every page estimate
says UNVERIFIED until :func:`vizlab.calibrate` has measured it on a live deployment. The token
rules are passed in by :mod:`vizlab.tokens` (this module never imports it back).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vizlab.errors import ConversationError, UnknownDetailError, UnsupportedDocumentError
from vizlab.images.pdf import decode_file_data, page_pixels, read_pdf, sniff_document
from vizlab.models import documents as facts

__all__ = ["DocumentTokenBreakdown", "PageTokens", "count_document", "count_part", "file_detail", "part_fields"]


@dataclass(frozen=True)
class PageTokens:
    """One page's share: its text-layer tokens and its image's tokens at the render size."""

    number: int
    width_px: int
    height_px: int
    has_text: bool
    text_tokens: int
    image_tokens: int


@dataclass
class DocumentTokenBreakdown:
    """How a document part's tokens were reached, page by page (every page rule UNVERIFIED)."""

    where: str
    filename: str
    part_type: str  # "file" (Chat) or "input_file" (Responses)
    model: str
    detail_requested: str
    detail_used: str
    dpi: float
    pages: list[PageTokens]
    verified: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def text_tokens(self) -> int:
        return sum(p.text_tokens for p in self.pages)

    @property
    def image_tokens(self) -> int:
        return sum(p.image_tokens for p in self.pages)

    @property
    def tokens(self) -> int:
        return self.text_tokens + self.image_tokens

    def explain(self) -> str:
        flag = "" if self.verified else " UNVERIFIED"
        lines = [
            f"document {self.filename} ({self.part_type} part, {len(self.pages)} page(s)): {self.tokens} tokens = "
            f"{self.text_tokens} text layer + {self.image_tokens} page images; detail {self.detail_requested} -> "
            f"{self.detail_used}, pages rendered at {self.dpi:g} dpi{flag}"
        ]
        for p in self.pages:
            text = f"{p.text_tokens} text" if p.has_text else "no text layer"
            lines.append(f"  page {p.number}: {text} + {p.image_tokens} image ({p.width_px}x{p.height_px} px){flag}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def file_detail(part_type: str, detail: Any, model: str) -> tuple[str, str]:
    """(requested, used) detail of a file part on ``model``. Chat file parts take no detail: they
    are counted like ``auto`` (UNVERIFIED)."""
    requested = "auto" if detail is None else detail
    if requested not in facts.FILE_DETAILS:
        raise UnknownDetailError(f"file detail {detail!r} is not one of {', '.join(facts.FILE_DETAILS)}", detail=detail)
    used = facts.auto_detail_for(model) if requested == "auto" else requested
    return requested, used


def part_fields(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The fields of a Chat ``file`` part (nested under "file") or a Responses ``input_file`` (flat)."""
    if part.get("type") == "file":
        inner = part.get("file")
        if not isinstance(inner, Mapping):
            raise ConversationError(f"{where}: a file part needs a 'file' object with 'file_data' or 'file_id'")
        return {"filename": inner.get("filename"), "file_data": inner.get("file_data"),
                "file_id": inner.get("file_id"), "file_url": None, "detail": inner.get("detail")}
    return {k: part.get(k) for k in ("filename", "file_data", "file_id", "file_url", "detail")}


def count_document(
    data: bytes, where: str, *, filename: str, part_type: str, detail: Any, model: str, vision: bool,
    text_tokens: Callable[[str], int], page_image_tokens: Callable[[int, int, str], int],
    dpi: float = facts.RENDER_DPI,
) -> DocumentTokenBreakdown:  # fmt: skip
    """Count one PDF: each page's text-layer tokens, plus its image at ``dpi`` by ``page_image_tokens``."""
    requested, used = file_detail(part_type, detail, model)
    pdf = read_pdf(data, filename, dpi=dpi)
    pages = []
    for page in pdf.pages:
        w, h = page_pixels(page.width_pt, page.height_pt, dpi)
        image = page_image_tokens(w, h, used) if vision else 0
        pages.append(PageTokens(page.number, w, h, page.has_text, text_tokens(page.text) if page.has_text else 0, image))
    notes = [] if vision else [f"{model} has no vision: counted the text layer only (UNVERIFIED)"]
    return DocumentTokenBreakdown(where, filename, part_type, model, requested, used, dpi, pages, notes=notes)


def count_part(
    part: Mapping[str, Any], where: str, *, model: str, vision: bool,
    text_tokens: Callable[[str], int], page_image_tokens: Callable[[int, int, str], int],
) -> DocumentTokenBreakdown | None:  # fmt: skip
    """Count a ``file`` / ``input_file`` part carrying ``file_data``; None for a ``file_id`` / ``file_url``
    (its bytes are not here) or a DOCX / PPTX / XLSX (text vizlab does not extract): the caller notes it."""
    fields = part_fields(part, where)
    value = fields["file_data"]
    if value is None:
        if fields["file_id"] is None and fields["file_url"] is None:
            raise ConversationError(f"{where}: a {part.get('type')} part needs 'file_data', 'file_id' or 'file_url'")
        file_detail(str(part.get("type")), fields["detail"], model)  # still refuse a bad detail
        return None
    if not isinstance(value, str):
        raise ConversationError(f"{where}: file_data must be a string (a data URL), not {type(value).__name__}")
    _, data = decode_file_data(value, where)
    name = fields["filename"] if isinstance(fields["filename"], str) and fields["filename"] else where
    kind = sniff_document(data)
    if kind in facts.OPENAI_RESPONSES_TEXT_ONLY:  # text only on OpenAI's Responses API; not extracted here
        return None
    if kind != "pdf":
        raise UnsupportedDocumentError(f"{where} ({name}): file_data is not a PDF (its bytes do not start with %PDF-); "
                                       "send a PDF with vizlab.file_part(path)", source=name, kind="unknown")
    return count_document(data, where, filename=name, part_type=str(part.get("type")), detail=fields["detail"],
                          model=model, vision=vision, text_tokens=text_tokens, page_image_tokens=page_image_tokens)
