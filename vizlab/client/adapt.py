"""Adapting a request to a deployment whose model the client did not know.

On the service's 400 ``unsupported_parameter`` / ``unsupported_value`` the client changes the body
once (``max_tokens`` -> ``max_completion_tokens``; a refused sampling parameter dropped), retries
once, warns once per deployment and parameter, and remembers the change for that deployment.
Anything else it refuses (``reasoning_effort``, ``messages``...) is raised as the service said.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ParameterAdaptedWarning", "DROPPABLE", "apply_adaptations", "adaptation_for", "describe_adaptation"]

# Sampling and scoring parameters a reasoning model refuses and a request can do without: the
# refusals quoted in vizlab/local/requests/reasoning.py (temperature, top_p: unsupported_value;
# logprobs and the penalties: unsupported_parameter).
DROPPABLE = frozenset({
    "temperature", "top_p", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias",
})  # fmt: skip
RENAMED: Mapping[str, str] = {"max_tokens": "max_completion_tokens"}


class ParameterAdaptedWarning(UserWarning):
    """The client changed a refused parameter and retried once (said once per deployment)."""


def adaptation_for(body: Mapping[str, Any], param: str | None) -> tuple[str, str | None] | None:
    """``(param, replacement)`` for a refused ``param`` of ``body`` (replacement None: drop it),
    or None when vizlab does not adapt that parameter.

    >>> adaptation_for({"max_tokens": 5}, "max_tokens"), adaptation_for({"temperature": 0}, "temperature")
    (('max_tokens', 'max_completion_tokens'), ('temperature', None))
    """
    if not param or param not in body:
        return None
    if param in RENAMED:
        return param, RENAMED[param]
    if param in DROPPABLE:
        return param, None
    return None


def apply_adaptations(body: Mapping[str, Any], changes: Mapping[str, str | None]) -> dict[str, Any]:
    """A copy of ``body`` with the remembered ``changes`` applied (rename, or drop when None).

    >>> apply_adaptations({"max_tokens": 5, "top_p": 0.5}, {"max_tokens": "max_completion_tokens", "top_p": None})
    {'max_completion_tokens': 5}
    """
    out = dict(body)
    for param, replacement in changes.items():
        if param not in out:
            continue
        value = out.pop(param)
        if replacement is not None and replacement not in out:
            out[replacement] = value
    return out


def describe_adaptation(deployment: str, param: str, replacement: str | None, code: str) -> str:
    """The one warning the client gives when it adapts ``param`` for ``deployment``.

    >>> describe_adaptation("vision", "max_tokens", "max_completion_tokens", "unsupported_parameter")[:60]
    'deployment vision refused max_tokens (unsupported_parameter)'
    """
    change = f"sent {replacement} instead of {param}" if replacement else f"dropped {param}"
    return (
        f"deployment {deployment} refused {param} ({code}); vizlab {change} and retried once, "
        "and will do so for this deployment from now on. Name the model (connect(model=...) or "
        "AZURE_OPENAI_MODEL) to send the right parameters from the first request."
    )
