"""Reasoning deployments of the built-in backend: the service's parameter refusals, and an
emulated ``completion_tokens_details.reasoning_tokens``.

Which parameters a model refuses is the registry's fact; this module answers them as OpenAI /
Azure do (400, ``unsupported_parameter`` / ``unsupported_value``). The analyst does not reason:
:func:`reasoning_tokens` is the answer's tokens times :data:`EFFORT_FACTORS`, marked emulated,
and counted inside ``completion_tokens`` as the service does. The quoted errors and their
sources: docs/internals.md#local
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vizlab.local.http.errors import bad_request
from vizlab.models.types import ModelInfo

__all__ = ["EFFORT_FACTORS", "ACCEPTED_DEFAULTS", "check_reasoning_params", "reasoning_tokens", "effort_of"]

# vizlab's emulation (no published figure): reasoning tokens per answer token at each effort.
EFFORT_FACTORS: Mapping[str, float] = {
    "none": 0.0, "minimal": 0.0, "low": 0.5, "medium": 1.0, "high": 2.0, "xhigh": 3.0, "max": 4.0,
}  # fmt: skip
# Values of refused sampling parameters the service still accepts: "Only the default (1) value".
# The service's refusals (type invalid_request_error), quoted:
# - max_tokens on a reasoning model: 400 unsupported_parameter, "Unsupported parameter: 'max_tokens'
#   is not supported with this model. Use 'max_completion_tokens' instead." (gpt-5:
#   griptape-ai/ComfyUI-Griptape#312 2025-08-22; o1 / o3-mini: teilomillet/gollm#33 2025-03;
#   gpt-5.1 on Azure: anomalyco/opencode#37964 2026-07).
# - temperature / top_p other than 1 (the values below): unsupported_value, "Unsupported value:
#   'temperature' does not support 0.2 with this model. Only the default (1) value is supported."
#   (o1 / o3 / gpt-5: cline/cline#341 2024-09, BeehiveInnovations/pal-mcp-server#78 2025-06).
# - any other refused parameter: unsupported_parameter, "Unsupported parameter: 'logprobs' is not
#   supported with this model." (pal-mcp-server#78; CherryHQ/cherry-studio#512, 2024-12).
# - reasoning_effort where the model has none or not that value: the same two forms (vizlab's
#   choice by analogy; no quote of that exact error found).
ACCEPTED_DEFAULTS: Mapping[str, float] = {"temperature": 1, "top_p": 1}


def _refuse(code: str, param: str, message: str) -> Exception:
    return bad_request(code, message, param)


def effort_of(params: Mapping[str, Any], info: ModelInfo) -> str | None:
    """The effort this request runs at: the one asked for, else the model's default."""
    effort = _requested_effort(params)
    return effort if isinstance(effort, str) else info.default_effort


def _requested_effort(params: Mapping[str, Any]) -> Any:
    """``reasoning_effort`` (Chat Completions) or ``reasoning.effort`` (Responses API)."""
    if "reasoning_effort" in params:
        return params["reasoning_effort"]
    reasoning = params.get("reasoning")
    return reasoning.get("effort") if isinstance(reasoning, Mapping) else None


def check_reasoning_params(params: Mapping[str, Any], info: ModelInfo | None) -> None:
    """Raise the service's 400 for a parameter ``info``'s model refuses (the forms: docs/internals.md#local)."""
    if info is None:
        return
    effort = _requested_effort(params)
    if not info.reasoning:
        if effort is not None:
            raise _refuse(
                "unsupported_parameter", "reasoning_effort",
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            )
        return
    if effort is not None and effort not in info.efforts:
        if not info.efforts:
            raise _refuse(
                "unsupported_parameter", "reasoning_effort",
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            )
        listed = ", ".join(f"'{e}'" for e in info.efforts)
        raise _refuse(
            "unsupported_value", "reasoning_effort",
            f"Unsupported value: 'reasoning_effort' does not support {effort!r} with this model. "
            f"Supported values are: {listed}.",
        )
    refused = info.rejected_params(effort if effort is not None else None)
    if "max_tokens" in params and "max_tokens" in refused:
        raise _refuse(
            "unsupported_parameter", "max_tokens",
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
        )
    for name in sorted(params):
        if name not in refused or name == "max_tokens":
            continue
        value = params[name]
        if name in ACCEPTED_DEFAULTS:
            if value == ACCEPTED_DEFAULTS[name]:
                continue
            raise _refuse(
                "unsupported_value", name,
                f"Unsupported value: '{name}' does not support {value!r} with this model. "
                "Only the default (1) value is supported.",
            )
        raise _refuse("unsupported_parameter", name, f"Unsupported parameter: '{name}' is not supported with this model.")


def reasoning_tokens(answer_tokens: int, effort: str | None) -> int:
    """The emulated reasoning tokens for an answer of ``answer_tokens`` at ``effort``.

    >>> reasoning_tokens(40, "medium"), reasoning_tokens(40, "high"), reasoning_tokens(40, "none")
    (40, 80, 0)
    """
    factor = EFFORT_FACTORS.get(effort or "medium", 1.0)
    return math.ceil(max(0, answer_tokens) * factor)
