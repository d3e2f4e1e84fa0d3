"""Measure how a live deployment bills a PDF: one wide one-page document, its text measured apart.

:func:`calibrate_documents` sends five small requests: a text-only baseline on each API, the page's text as a
text part (so the text layer's share is measured, not assumed), the PDF as a Chat ``file`` part,
and the PDF as a Responses ``input_file`` at ``detail="high"``. What is left after the text is
the page image; it is compared with the image rule at each candidate dpi. The page is wide
(1000 x 250 pt) so that different dpis give different tile counts. Offline, the built-in backend
bills by vizlab's own rule, so a match there proves the code path, not the rule.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from vizlab import tokens
from vizlab.document_samples import PageSpec, make_pdf
from vizlab.images.documents import file_part
from vizlab.images.pdf import page_pixels
from vizlab.models import documents as document_facts

__all__ = ["CANDIDATE_DPIS", "PROBE_TEXT", "DocumentCalibration", "calibrate_documents", "probe_pdf"]

CANDIDATE_DPIS = (72, 96, 100, 120, 144, 150, 200, 300)
PROBE_TEXT = "Calibration page: invoice 4711, total 99.00"
PROMPT = "Reply with OK."
_SIZE = (1000.0, 250.0)
_MAX_OUTPUT = 16


def probe_pdf() -> bytes:
    """The one-page probe: a wide page with one line of text."""
    return make_pdf([PageSpec(lines=[(36, 120, PROBE_TEXT)], size=_SIZE)], title="vizlab calibration")


@dataclass
class DocumentCalibration:
    """What the probe measured, and which render dpis explain the page image exactly."""

    model: str
    baseline: int
    text_tokens: int  # the page text sent as a text part, over the baseline
    chat_file_tokens: int  # the Chat file part, over the baseline
    high_file_tokens: int | None  # the Responses input_file at detail high, over its baseline
    page_image_tokens: int | None  # high_file_tokens - text_tokens
    dpi_matches: list[int] = field(default_factory=list)
    predicted: dict[int, int] = field(default_factory=dict)  # dpi -> page image tokens at high
    notes: list[str] = field(default_factory=list)

    def explain(self) -> str:
        lines = [
            f"{self.model}: text layer {self.text_tokens} tokens (sent as text); Chat file part {self.chat_file_tokens} "
            f"tokens; input_file at high {self.high_file_tokens} tokens -> page image {self.page_image_tokens} tokens",
            "  predicted page image at high by dpi: " + ", ".join(f"{d}: {t}" for d, t in self.predicted.items()),
            "  dpis that explain it exactly: " + (", ".join(map(str, self.dpi_matches)) or "none (the rule is not "
                                                 "an image at a standard dpi, or the text is billed differently)"),
        ]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def _prompt_tokens(reply: Any) -> int:
    if reply.usage is None:
        raise ValueError("the deployment reported no usage; nothing can be measured")
    return int(reply.usage.prompt_tokens)


def _send(client: Any, extra: dict[str, Any] | None, *, responses: bool) -> int:
    kind = "input_text" if responses else "text"
    content: list[dict[str, Any]] = [{"type": kind, "text": PROMPT}] + ([extra] if extra else [])
    with warnings.catch_warnings():  # a reply cut at the output cap is expected: only usage is read
        warnings.simplefilter("ignore", UserWarning)
        if responses:
            return _prompt_tokens(client.respond([{"role": "user", "content": content}], max_output_tokens=_MAX_OUTPUT))
        return _prompt_tokens(client.chat([{"role": "user", "content": content}], max_tokens=_MAX_OUTPUT))


def calibrate_documents(client: Any, *, verbose: bool = True) -> DocumentCalibration:
    """Send the probe (3 Chat + 2 Responses requests, a few thousand tokens at most) and fit the dpi."""
    model = client.token_model
    pdf = probe_pdf()
    baseline = _send(client, None, responses=False)
    text = _send(client, {"type": "text", "text": PROBE_TEXT}, responses=False) - baseline
    chat_file = _send(client, file_part(pdf, filename="probe.pdf"), responses=False) - baseline
    notes = []
    try:
        base_r = _send(client, None, responses=True)
        high: int | None = _send(client, file_part(pdf, api="responses", detail="high", filename="probe.pdf"),
                                 responses=True) - base_r  # fmt: skip
    except Exception as e:  # a deployment without the Responses API still gives the Chat numbers
        high = None
        notes.append(f"the Responses API probe failed ({type(e).__name__}); no dpi fit")
    predicted = {
        dpi: tokens.explain_image_tokens(*page_pixels(*_SIZE, dpi), detail="high", model=model,
                                         rules=getattr(client, "token_rules", None)).tokens
        for dpi in CANDIDATE_DPIS
    }  # fmt: skip
    page = None if high is None else high - text
    result = DocumentCalibration(model, baseline, text, chat_file, high, page,
                                 [d for d, t in predicted.items() if t == page], predicted, notes)  # fmt: skip
    if not document_facts.FACTS["render_dpi"].verified:
        result.notes.append(f"vizlab assumes {document_facts.RENDER_DPI} dpi (UNVERIFIED); compare dpi_matches")
    if verbose:
        print("vizlab: " + result.explain())
    return result
