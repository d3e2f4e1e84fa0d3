"""What the services document about documents (PDF) as input, each fact with its source and date.

A fact the stored guides do not state is kept with ``verified=False`` and prints as UNVERIFIED:
the render resolution of page images, how the extracted text is billed, whether Azure's Chat
Completions takes ``file`` parts. Code that uses an unverified fact says so in what it prints.
Nothing here imports another vizlab module: it is data (it will become ``vizlab/models/documents.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AZURE_MAX_BYTES",
    "AZURE_MAX_PAGES",
    "CHAT_PART_TYPES",
    "FACTS",
    "FILE_DETAILS",
    "FILE_PURPOSE",
    "MAX_PAGE_PIXELS",
    "OPENAI_RESPONSES_TEXT_ONLY",
    "PDF_MIME",
    "RENDER_DPI",
    "RESPONSES_PART_TYPES",
    "Fact",
    "accepted_kinds",
    "auto_detail_for",
    "facts_table",
]

PDF_MIME = "application/pdf"


@dataclass(frozen=True)
class Fact:
    """One documented (or assumed) rule: its value, where it was read and when."""

    name: str
    value: Any
    source: str
    checked: str
    verified: bool = True

    def __str__(self) -> str:
        flag = "" if self.verified else "UNVERIFIED: "
        return f"{self.name} = {self.value!r} ({flag}{self.source}; checked {self.checked})"


_FILE_INPUTS = "OpenAI 'File inputs' guide, developers.openai.com/api/docs/guides/file-inputs"
_SDK = "openai-python 3.63.0 types (ResponseInputFileParam.detail, ChatCompletionContentPartParam.File)"
_CHECKED = "2026-12-07"

FACTS: dict[str, Fact] = {f.name: f for f in (
    Fact("chat_file_part", {"type": "file", "file": ["filename", "file_data", "file_id"]},
         f"{_FILE_INPUTS} (Chat Completions takes PDF only, as file_data or file_id; file_url not supported); {_SDK}",
         _CHECKED),
    Fact("chat_file_detail", None, f"{_FILE_INPUTS}: 'Chat Completions file inputs do not support detail'", _CHECKED),
    Fact("responses_input_file", {"type": "input_file", "fields": ["filename", "file_data", "file_id", "file_url", "detail"]},
         f"{_FILE_INPUTS}; {_SDK}", _CHECKED),
    Fact("file_detail_values", ("auto", "low", "high"), f"{_SDK}; Azure AI Projects InputContentInputFileContent reference", _CHECKED),
    Fact("auto_detail", "high on GPT-5.6 and later, low before",
         f"{_SDK} ('for GPT-5.6 and later models, auto uses high-quality rendering'); the file-inputs guide "
         "(w3cschool mirror updated 2026-11-06) says earlier models use low", _CHECKED),
    Fact("pdf_content", "extracted text + an image of each page (vision models)",
         "OpenAI 'File inputs' / 'PDF files' guide, developers.openai.com/docs/guides/pdf-files", _CHECKED),
    Fact("openai_responses_text_only", ("docx", "pptx", "txt", "xlsx"),
         f"{_FILE_INPUTS}: non-PDF documents are text only; spreadsheets get a spreadsheet flow", _CHECKED),
    Fact("azure_pdf_only", True,
         "Microsoft Q&A 5807901 (2026-03-04, Microsoft staff answer): PDF is the only documented file type "
         "for Responses file input on Azure", _CHECKED),
    Fact("azure_file_purpose", "assistants", "Microsoft Q&A 5807901 (2026-03-04) and 12548455 (2026-01-27)", _CHECKED),
    Fact("azure_file_url_error", "Error while downloading <url>.",
         "Microsoft Q&A 12548455 (2026-01-27): file_url / image_url on Azure Responses answer 400 invalid_value",
         _CHECKED),
    Fact("azure_max_pages", 100,
         "issue 24, quoting the Azure Responses how-to; the page text was not in the stored corpus", _CHECKED,
         verified=False),
    Fact("azure_max_bytes", 32 * 1024 * 1024,
         "issue 24, quoting the Azure Responses how-to (32 MB); the page text was not in the stored corpus", _CHECKED,
         verified=False),
    Fact("azure_chat_file_parts", "unknown",
         "no stored Azure guide documents file parts on Chat Completions; the built-in backend accepts them", _CHECKED,
         verified=False),
    Fact("render_dpi", 150, "undocumented: the service does not say at what resolution it renders pages; "
         "150 dpi is vizlab's assumption until vizlab.calibrate(client, documents=True) measures it", _CHECKED,
         verified=False),
    Fact("text_billing", "the text layer's tokens, counted as plain text",
         "undocumented: the guides say the text is put into context, not how it is wrapped", _CHECKED,
         verified=False),
    Fact("responses_part_types", ("input_text", "input_image", "input_file", "scoped_content"),
         "the service's 400 quoted in linanwx/nagobot#27 (2026-03-14, gpt-5.4)", _CHECKED),
    Fact("chat_part_types", ("text", "image_url", "input_audio", "file"),
         f"{_SDK}: the user content part union", _CHECKED),
)}

CHAT_PART_TYPES: tuple[str, ...] = FACTS["chat_part_types"].value
RESPONSES_PART_TYPES: tuple[str, ...] = FACTS["responses_part_types"].value
FILE_DETAILS: tuple[str, ...] = FACTS["file_detail_values"].value
OPENAI_RESPONSES_TEXT_ONLY: tuple[str, ...] = FACTS["openai_responses_text_only"].value
AZURE_MAX_PAGES: int = FACTS["azure_max_pages"].value
AZURE_MAX_BYTES: int = FACTS["azure_max_bytes"].value
FILE_PURPOSE: str = FACTS["azure_file_purpose"].value
RENDER_DPI: int = FACTS["render_dpi"].value
# A page over this many pixels at the render dpi is refused as a "bomb" (vizlab's own safety
# limit, the same order as Pillow's 89.5 MP decompression-bomb warning).
MAX_PAGE_PIXELS = 90_000_000

_GPT = re.compile(r"gpt-(\d+)(?:\.(\d+))?")


def auto_detail_for(model: str) -> str:
    """What ``detail="auto"`` means for a file on ``model``: "high" on GPT-5.6 and later, else "low".

    >>> auto_detail_for("gpt-5.6"), auto_detail_for("gpt-4o"), auto_detail_for("gpt-6")
    ('high', 'low', 'high')
    """
    match = _GPT.search(model.lower())
    if not match:
        return "low"
    version = (int(match.group(1)), int(match.group(2) or 0))
    return "high" if version >= (5, 6) else "low"


def accepted_kinds(provider: str, api: str) -> tuple[str, ...]:
    """Document kinds a provider takes on an API: Azure and Chat take PDF only (documented);
    OpenAI's Responses API also takes DOCX, PPTX, TXT, XLSX as text only."""
    if provider == "openai" and api == "responses":
        return ("pdf", *OPENAI_RESPONSES_TEXT_ONLY)
    return ("pdf",)


def facts_table() -> list[dict[str, Any]]:
    """The facts as rows (for a DataFrame or a notebook table)."""
    return [
        {"fact": f.name, "value": f.value, "verified": f.verified, "source": f.source, "checked": f.checked}
        for f in FACTS.values()
    ]
