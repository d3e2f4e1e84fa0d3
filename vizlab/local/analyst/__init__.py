"""The built-in backend's "model": a deterministic local vision analyst (OCR, colours, shapes).
"""

from __future__ import annotations

from vizlab.local.analyst.answer import IDENTITY, NO_IMAGE_ANSWER, Analyst
from vizlab.local.analyst.ocr import ocr_plan, read_text_lines
from vizlab.local.analyst.vision import ImageFacts

__all__ = [
    "ImageFacts",
    "Analyst",
    "IDENTITY",
    "NO_IMAGE_ANSWER",
    "ocr_plan",
    "read_text_lines",
]
