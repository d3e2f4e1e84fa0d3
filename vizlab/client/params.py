"""Per-model request parameters: ``max_completion_tokens``, ``reasoning_effort``, refused sampling.

Which parameters a model takes is the registry's fact (:func:`vizlab.models.lookup`); this module
applies it to a body before sending, so a refusal costs no request and names parameter and model.
Trade-off: the rules apply only to Azure, OpenAI and the built-in backend; OpenAI-compatible
servers get ``max_tokens`` whatever the model, so the output stays bounded there.
Details: docs/internals.md#client
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from vizlab import errors
from vizlab.client.targets import BackendKind
from vizlab.models.registry import canonical_name, lookup
from vizlab.models.types import ModelInfo

__all__ = ["ACCEPTED_DEFAULTS", "applies_registry", "model_info_for", "apply_model_params"]

# Values of refused sampling parameters that reasoning models still accept (see the docstring).
# Reasoning models accept only the default 1 for temperature / top_p: "Unsupported value:
# 'temperature' does not support 0.2 with this model. Only the default (1) value is supported."
# (code unsupported_value, o1 / o3 / gpt-5; github.com/cline/cline/issues/341 2024-09,
# BeehiveInnovations/pal-mcp-server/issues/78 2025-06).
ACCEPTED_DEFAULTS: Mapping[str, float] = {"temperature": 1, "top_p": 1}

# Hosts of services that follow the registry's parameter rules (OpenAI and Azure OpenAI / Foundry).
_SERVICE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


def applies_registry(backend: BackendKind | str, endpoint: str) -> bool:
    """True where the registry's parameter rules hold: Azure, the built-in backend, OpenAI.

    >>> applies_registry("openai", "http://localhost:11434/v1")
    False
    >>> applies_registry("openai", "https://res.openai.azure.com/openai/v1")
    True
    """
    if BackendKind(backend) in (BackendKind.AZURE, BackendKind.LOCAL):
        return True
    host = (urlsplit(endpoint).hostname or "").lower()
    return host == "api.openai.com" or host.endswith(_SERVICE_HOST_SUFFIXES)


def model_info_for(names: list[str | None]) -> ModelInfo | None:
    """The registry entry of the first name it knows (exact, alias or dated snapshot), else None."""
    for name in names:
        if name and canonical_name(name) is not None:
            return lookup(name)
    return None


def apply_model_params(
    body: dict[str, Any],
    *,
    info: ModelInfo | None,
    max_tokens: int | None,
    params: Mapping[str, Any],
    registry_applies: bool,
) -> None:
    """Put the output bound and ``params`` into ``body`` as ``info``'s model takes them.

    Raises :class:`~vizlab.errors.UnsupportedParameterError` for a parameter the model refuses
    at the requested (or default) ``reasoning_effort``.
    """
    if not registry_applies or info is None:
        if max_tokens is not None and "max_completion_tokens" not in params:
            body["max_tokens"] = max_tokens
        body.update(params)
        return
    effort = params.get("reasoning_effort")
    if not info.reasoning:
        if effort is not None:
            raise errors.UnsupportedParameterError(
                f"reasoning_effort={effort!r}: {info.name} is not a reasoning model and takes no "
                "reasoning_effort (the service refuses it); drop reasoning_effort, or connect to a "
                "reasoning deployment (o-series, gpt-5.x)",
                param="reasoning_effort", model=info.name, effort=None,
            )
        if max_tokens is not None and "max_completion_tokens" not in params:
            body["max_tokens"] = max_tokens
        body.update(params)
        return
    if effort is not None and effort not in info.efforts:
        choices = ", ".join(repr(e) for e in info.efforts)
        raise errors.UnsupportedParameterError(
            f"reasoning_effort={effort!r} is not accepted by {info.name}: use one of {choices}",
            param="reasoning_effort", model=info.name, effort=str(effort),
        )
    refused = info.rejected_params(effort)
    at = f" at reasoning_effort {effort or info.default_effort!r}" if info.efforts else ""
    for name, value in params.items():
        if name not in refused:
            continue
        if name in ACCEPTED_DEFAULTS and value == ACCEPTED_DEFAULTS[name]:
            continue
        hint = "use max_tokens= of chat() (sent as max_completion_tokens)" if name == "max_tokens" else f"drop {name}"
        accepted_somewhere = [e for e in info.efforts if name not in info.rejected_params(e)]
        if accepted_somewhere:
            hint += f", or set reasoning_effort to {' / '.join(repr(e) for e in accepted_somewhere)}"
        raise errors.UnsupportedParameterError(
            f"{name}={value!r}: {info.name} is a reasoning model and refuses {name}{at} (the service "
            f"answers 400); {hint}",
            param=name, model=info.name, effort=effort,
        )
    if max_tokens is not None and "max_completion_tokens" not in params:
        body["max_completion_tokens"] = max_tokens
    body.update(params)
