"""A deterministic stand-in for Azure's content filter, driven by explicit test phrases.

Nothing is classified: a prompt is "filtered" only when it contains a trigger phrase
(``VIZLAB_TEST_FILTER:hate``, ``...:self_harm``, ``...:sexual``, ``...:violence``, or
``...:jailbreak``), so tests walk the content-filter path without offensive text. The answer has
Azure's shape (400, ``content_filter``, per-category results; source in
:mod:`vizlab.local.http.errors`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from vizlab.local.http.errors import CONTENT_FILTER_MESSAGE, AzureError

CATEGORIES = ("hate", "self_harm", "sexual", "violence")
TRIGGER = re.compile(r"VIZLAB_TEST_FILTER:(hate|self_harm|sexual|violence|jailbreak)\b")


def safe_results() -> dict[str, Any]:
    """Per-category results of an unfiltered prompt or completion, as Azure lists them."""
    return {name: {"filtered": False, "severity": "safe"} for name in CATEGORIES}


def completion_results() -> dict[str, Any]:
    """A choice's results: the categories plus the protected-material checks Azure adds to
    completions (``protected_material_code`` / ``protected_material_text``, each ``filtered`` and
    ``detected``: Azure content filtering docs' example bodies; the code one recorded in a
    2026-09 gpt-4.1-mini stream, tests/data/recordings/azure_chat_stream.json)."""
    return {**safe_results(), "protected_material_code": {"filtered": False, "detected": False},
            "protected_material_text": {"filtered": False, "detected": False}}


@dataclass(frozen=True)
class FilterShape:
    """How the prompt filter entry is spelled for a model family on a route, and where it was seen."""

    model_prefix: str  # "" matches every model
    route: str  # "chat" | "responses"
    images: bool | None  # True: only prompts with images; None: any prompt
    shape: str  # "plural" | "singular" | "list"
    source: str


# The shapes as recorded, most specific first. Data, not one rule: a new recording adds a row.
FILTER_SHAPES: tuple[FilterShape, ...] = (
    FilterShape("gpt-5-mini", "chat", True, "singular",
                "two gpt-5-mini chat requests with an image, 2025-11 and 2025-12 (issue 20's replays): "
                "'content_filter_result', no 'jailbreak'"),
    FilterShape("gpt-5.4", "responses", None, "list",
                "a gpt-5.4 Responses recording, 2026-07 (issue 20's replays): a 'content_filters' list"),
    FilterShape("", "chat", None, "plural",
                "gpt-4.1 on Azure, 2025-09 (tests/data/recordings/azure_chat_text.json): "
                "'content_filter_results' with 'jailbreak'"),
)


def filter_shape(model: str, route: str, images: bool) -> FilterShape | None:
    """The recorded shape for ``model`` on ``route`` (None: the route sends no prompt entry)."""
    for row in FILTER_SHAPES:
        if row.route == route and model.startswith(row.model_prefix) and row.images in (None, images):
            return row
    return None


def prompt_filter_results(model: str = "", images: bool = False) -> list[dict[str, Any]]:
    """The Chat ``prompt_filter_results`` entry in the shape recorded for ``model`` (see FILTER_SHAPES)."""
    row = filter_shape(model, "chat", images)
    if row is not None and row.shape == "singular":
        return [{"prompt_index": 0, "content_filter_result": safe_results()}]
    jailbreak = {"jailbreak": {"filtered": False, "detected": False}}
    return [{"prompt_index": 0, "content_filter_results": {**safe_results(), **jailbreak}}]


def responses_filters(model: str, images: bool = False) -> list[dict[str, Any]] | None:
    """The Responses ``content_filters`` list where recorded for ``model`` (else None: no field).
    Only the list's name is recorded here; its entries mirror the Chat results (inferred)."""
    row = filter_shape(model, "responses", images)
    if row is None or row.shape != "list":
        return None
    return [
        {"source_type": "prompt", "blocked": False, "content_filter_results": safe_results()},
        {"source_type": "completion", "blocked": False, "content_filter_results": completion_results()},
    ]


def triggered_categories(texts: Iterable[str]) -> list[str]:
    """The categories whose trigger phrase appears in any of ``texts``, sorted."""
    found: set[str] = set()
    for text in texts:
        if "VIZLAB_TEST_FILTER:" in text:
            found.update(m.group(1) for m in TRIGGER.finditer(text))
    return sorted(found)


def check_prompt(texts: Iterable[str]) -> None:
    """Raise Azure's 400 ``content_filter`` error if a trigger phrase is present."""
    categories = triggered_categories(texts)
    if not categories:
        return
    result: dict[str, Any] = {}
    for name in ("hate", "jailbreak", "self_harm", "sexual", "violence"):
        if name == "jailbreak":
            hit = name in categories
            result[name] = {"filtered": hit, "detected": hit}
        elif name in categories:
            result[name] = {"filtered": True, "severity": "high"}
        else:
            result[name] = {"filtered": False, "severity": "safe"}
    raise AzureError(
        400,
        "content_filter",
        CONTENT_FILTER_MESSAGE,
        param="prompt",
        type=None,
        extra={
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
        },
    )
