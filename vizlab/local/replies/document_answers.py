"""The analyst's answer about documents (PDF): the text layer first, OCR of page images only where needed.

A page is OCR'd when it has no text layer, or when the question asks about layout (columns, tables,
rows, left/right, top/bottom, where on the page), which a text layer does not keep. OCR costs
seconds a dense page, so at most ``OCR_PAGE_CAP`` pages (5, vizlab.local.config) are
OCR'd per request, pages the question names first: a 100-page PDF is answered from its text layer.
The answer says which pages it read and how (text layer / OCR), so a caller can check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from vizlab.images.pdf import decode_file_data, read_pdf, render_page
from vizlab.local.config import OCR_PAGE_CAP
from vizlab.models import documents as facts

__all__ = ["answer_documents", "needs_layout"]

_ANSWER_CHARS = 1200
_LAYOUT_BOXES = 24  # text boxes quoted with their place, per page
_STOP = frozenset(["what", "which", "where", "when", "who", "whose", "how", "does", "this", "that", "from", "with",
                   "into", "about", "there", "their", "have", "document", "documents", "file", "page", "pages",
                   "please", "tell", "show", "give", "find", "read", "text", "the", "and", "are", "for"])
# Questions about where things sit, which the text layer's reading order does not answer.
_LAYOUT = re.compile(
    r"\b(columns?|tables?|tabular|rows?|cells?|layout|laid out|arranged|arrangement|left|right|top|bottom|"
    r"corner|margins?|header|footer|side by side|next to|above|below|positions?|positioned)\b"
    r"|\bwhere\b.*\bon the page\b|\bwhere on\b"
)
_PAGE_NUMBER = re.compile(r"\b(?:page|p\.)\s*(\d{1,4})\b")


def needs_layout(question: str) -> bool:
    """Whether ``question`` asks where things are on the page (so page images are OCR'd).

    >>> needs_layout("Which column holds Q2?"), needs_layout("What is the invoice total?")
    (True, False)
    """
    return bool(_LAYOUT.search(question.lower()))


def _latest_document_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The file parts of the latest user turn carrying documents, if no later user turn carries images."""
    for message in reversed(messages):
        if message.get("role") != "user" or not isinstance(message.get("content"), list):
            continue
        parts = [p for p in message["content"] if isinstance(p, dict)]
        docs = [p for p in parts if p.get("type") == "file"]
        if docs:
            return docs
        if any(p.get("type") == "image_url" for p in parts):
            return None
    return None


def _question(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")
    return ""


class _Reading:
    """What one document's pages gave, and how each was read."""

    def __init__(self) -> None:
        self.texts: dict[int, str] = {}
        self.layouts: dict[int, list[tuple[str, str]]] = {}
        self.text_layer: list[int] = []
        self.ocr_no_text: list[int] = []
        self.ocr_layout: list[int] = []
        self.not_read: list[int] = []
        self.layout_skipped: list[int] = []


def _ocr_order(pages: Sequence[Any], layout: bool, named: set[int]) -> list[int]:
    """Page numbers to OCR, most wanted first: pages the question names, then in page order."""
    wanted = [p.number for p in pages if not p.has_text or layout]
    return sorted(wanted, key=lambda n: (n not in named, n))


def _read_document(analyst: Any, part: dict[str, Any], budget: list[int], token_model: str, question: str
                   ) -> tuple[_Reading, str, str]:
    """(what was read, detail used, label) of one internal file part."""
    inner = part["file"]
    name = inner.get("filename") or "file.pdf"
    _, data = decode_file_data(inner["file_data"], name)
    pdf = read_pdf(data, name)
    detail = inner.get("detail") or "auto"
    used = facts.auto_detail_for(token_model) if detail == "auto" else detail
    layout = needs_layout(question)
    named = {int(n) for n in _PAGE_NUMBER.findall(question.lower())}
    reading = _Reading()
    for number in _ocr_order(pdf.pages, layout, named):
        page = pdf.pages[number - 1]
        if budget[0] <= 0:
            (reading.layout_skipped if page.has_text else reading.not_read).append(number)
            continue
        budget[0] -= 1
        image = render_page(data, name, number, dpi=facts.RENDER_DPI)
        if not layout:  # a page without a text layer, read line by line
            reading.texts[number] = "\n".join(analyst.look(image, detail=used, mime="image/png").text_lines)
            reading.ocr_no_text.append(number)
            continue
        reading.layouts[number] = analyst.layout(image, detail=used)
        reading.ocr_layout.append(number)
        if not page.has_text:
            reading.texts[number] = "\n".join(text for _, text in reading.layouts[number])
    for page in pdf.pages:
        if page.has_text:
            reading.texts[page.number] = page.text.strip()
            reading.text_layer.append(page.number)
    return reading, used, f"{name} ({len(pdf.pages)} page(s))"


def _how(reading: _Reading, used: str, cap: int) -> list[str]:
    how = []
    if reading.text_layer:
        how.append(f"page(s) {_ranges(reading.text_layer)} from the text layer")
    if reading.ocr_no_text:
        how.append(f"page(s) {_ranges(sorted(reading.ocr_no_text))} by OCR of the page image at detail {used} "
                   "(no text layer)")
    if reading.ocr_layout:
        how.append(f"page(s) {_ranges(sorted(reading.ocr_layout))} by OCR of the page image at detail {used} "
                   "(the question asks about layout)")
    if reading.not_read:
        how.append(f"page(s) {_ranges(sorted(reading.not_read))} not read (no text layer; OCR is capped at "
                   f"{cap} pages per request)")
    if reading.layout_skipped:
        how.append(f"page(s) {_ranges(sorted(reading.layout_skipped))} from the text layer only (OCR for layout "
                   f"is capped at {cap} pages per request)")
    return how


def _ranges(numbers: list[int]) -> str:
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _layout_text(layouts: dict[int, list[tuple[str, str]]]) -> str:
    parts = []
    for number in sorted(layouts):
        boxes = layouts[number]
        shown = "; ".join(f"{where}: {text}" for where, text in boxes[:_LAYOUT_BOXES])
        more = f" (and {len(boxes) - _LAYOUT_BOXES} more)" if len(boxes) > _LAYOUT_BOXES else ""
        parts.append(f" Layout of page {number} (OCR, by thirds of the page): {shown or 'no text found'}{more}.")
    return "".join(parts)


def answer_documents(analyst: Any, messages: list[dict[str, Any]], identity: str, token_model: str,
                     ocr_page_cap: int | None = None) -> str | None:
    """The analyst's answer from the latest documents (None if the latest turn is about images or
    text), OCR-ing at most ``ocr_page_cap`` pages (default: ``vizlab.local.config.OCR_PAGE_CAP``)."""
    docs = _latest_document_turn(messages)
    if not docs:
        return None
    question = _question(messages)
    words = {w for w in re.findall(r"[a-z0-9]{3,}", question.lower()) if w not in _STOP}
    cap = OCR_PAGE_CAP if ocr_page_cap is None else ocr_page_cap
    budget = [cap]
    pieces = []
    for part in docs:
        reading, used, label = _read_document(analyst, part, budget, token_model, question)
        text = "\n".join(reading.texts[n] for n in sorted(reading.texts) if reading.texts[n])
        matches = [line.strip() for line in text.splitlines() if words & set(re.findall(r"[a-z0-9]{3,}", line.lower()))]
        said = f"From {label}, I read {'; '.join(_how(reading, used, cap))}."
        if matches:
            said += " Lines that match your question: " + " | ".join(matches[:8]) + "."
        said += _layout_text(reading.layouts)
        body = re.sub(r"\s*\n\s*", " / ", text.strip())
        said += f" Text: {body[:_ANSWER_CHARS]}" + ("..." if len(body) > _ANSWER_CHARS else "") if body else " No text found."
        pieces.append(said)
    return f"{identity} " + " ".join(pieces)
