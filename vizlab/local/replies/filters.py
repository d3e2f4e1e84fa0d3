"""A deterministic stand-in for Azure's content filter, driven by explicit test phrases.

Nothing is classified: a prompt is "filtered" only when it contains a trigger phrase
(``VIZLAB_TEST_FILTER:hate``, ``...:self_harm``, ``...:sexual``, ``...:violence``, or
``...:jailbreak``), so tests walk the content-filter path without offensive text. The answer has
Azure's shape (400, ``content_filter``, per-category results; source in
:mod:`vizlab.local.http.errors`).
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from vizlab.local.http.errors import CONTENT_FILTER_MESSAGE, AzureError

CATEGORIES = ("hate", "self_harm", "sexual", "violence")
TRIGGER = re.compile(r"VIZLAB_TEST_FILTER:(hate|self_harm|sexual|violence|jailbreak)\b")


def safe_results() -> dict[str, Any]:
    """Per-category results of an unfiltered prompt or completion, as Azure lists them."""
    return {name: {"filtered": False, "severity": "safe"} for name in CATEGORIES}


def prompt_filter_results() -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": safe_results()}]


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
