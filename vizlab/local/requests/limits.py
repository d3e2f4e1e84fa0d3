"""Per-model token limits of the built-in backend: context window and largest ``max_tokens``.

The figures come from the registry; the service's 400s for ``max_tokens`` over the output limit
and prompts over the context window (or gpt-5's separate input cap) are answered in
:mod:`vizlab.local.replies.completion`. Trade-off: the prompt count is the backend's own
estimate, exact for text, so a request near the limit may be judged differently by the service.
The quoted error texts and their sources: docs/internals.md#local
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vizlab.errors import UnknownModelError
from vizlab.local.http.errors import bad_request
from vizlab.models.registry import families, lookup, snapshots
from vizlab.models.types import ModelInfo

__all__ = ["ModelLimits", "MODEL_LIMITS", "DEFAULT_LIMITS", "limits_for", "check_refused", "image_limit",
           "check_array_length", "check_metadata", "MAX_TOOLS", "MAX_ITEMS"]


@dataclass(frozen=True)
class ModelLimits:
    """Token limits of one model."""

    context: int  # context window: prompt + completion tokens
    max_output: int  # the largest max_tokens / max_completion_tokens accepted
    max_input: int | None = None  # a separate cap on the prompt alone (gpt-5), if any
    verified: bool = True  # False: the figures were not checked against a published source


def _from_registry(info: ModelInfo) -> ModelLimits:
    verified = info.facts["context_window"].verified and info.facts["max_output"].verified
    return ModelLimits(info.context_window, info.max_output, info.max_input, verified)


# The figures and their sources live in the registry (vizlab.models: context_window, max_output,
# max_input, each with its source, mostly "Azure OpenAI in Microsoft Foundry models", ms.date
# 2026-01-14). Names match as there: exactly, by alias or dated snapshot, never by prefix.
# gpt-5's separate cap on the prompt alone (max_input, 272,000 of 400,000) is also quoted from the
# service in community.openai.com/t/1344734, 2025-08.
MODEL_LIMITS: dict[str, ModelLimits] = {
    name: _from_registry(info)
    for name, info in ((n, lookup(n)) for n in families() + snapshots())
    if info.context_window > 0
}

# Any other model: gpt-4-turbo's figures, the smallest of the current vision models, so a
# request that passes here fits every model in the table above.
DEFAULT_LIMITS = ModelLimits(128_000, 4_096, verified=False)


def limits_for(model: str) -> tuple[str | None, ModelLimits]:
    """``(matched name or None, limits)`` for a token model name.

    >>> limits_for("gpt-4o-mini-2024-07-18")
    ('gpt-4o-mini', ModelLimits(context=128000, max_output=16384, max_input=None, verified=True))
    >>> limits_for("my-finetune")[0] is None
    True
    """
    try:
        info = lookup(model)
    except UnknownModelError:
        return None, DEFAULT_LIMITS
    if info.context_window <= 0:  # the registry lists no limits for it (registered rule only)
        return None, DEFAULT_LIMITS
    return info.name, _from_registry(info)


def check_refused(refused: tuple[str, ...]) -> None:
    """400 for an image the model's rule refuses (gpt-5.6 ``original`` over 30,000 patches), with
    the refusal the estimator reports (:attr:`vizlab.tokens.request.RequestEstimate.refused`)."""
    if refused:
        raise bad_request("BadRequest", refused[0], "messages")


# --- request size limits --------------------------------------------------------------------
# At most 128 tools: "Invalid 'tools': array too long. Expected an array with maximum length 128, but
# got an array with length 325 instead.", param "tools", code "array_above_max_length"
# (vishalmysore/Tools4AI#16, 2024-05-15). At most 2048 items: the same validator's text for 'input'
# ("Expected an array with maximum length 2048", quoted in a public test fixture, read 2026-12-07);
# that messages share this bound is inferred. Metadata: "Set of 16 key-value pairs ... Keys are
# strings with a maximum length of 64 characters. Values are strings with a maximum length of 512
# characters." (openai-python 3.63, CompletionCreateParams.metadata); the 400's wording and code
# (object_above_max_properties, string_above_max_length) follow the array one: inferred.
MAX_TOOLS = 128
MAX_ITEMS = 2048
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512


def check_array_length(value: Any, maximum: int, param: str) -> None:
    """The service's 400 for an array over ``maximum`` items (checked before any item is read)."""
    if isinstance(value, list) and len(value) > maximum:
        raise bad_request(
            "array_above_max_length",
            f"Invalid '{param}': array too long. Expected an array with maximum length {maximum}, but got an "
            f"array with length {len(value)} instead.",
            param,
        )


def check_metadata(value: Any, param: str = "metadata") -> None:
    """The service's 400s for metadata over 16 keys, a key over 64 or a value over 512 characters."""
    if not isinstance(value, dict):
        return
    if len(value) > MAX_METADATA_KEYS:
        raise bad_request(
            "object_above_max_properties",
            f"Invalid '{param}': too many properties. Expected an object with at most {MAX_METADATA_KEYS} "
            f"properties, but got an object with {len(value)} properties instead.",
            param,
        )
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY_CHARS:
            raise bad_request(
                "string_above_max_length",
                f"Invalid '{param}': key too long ({len(key)} characters). Expected at most {MAX_METADATA_KEY_CHARS}.",
                param,
            )
        if not isinstance(item, str):
            raise bad_request("invalid_type", f"Invalid type for '{param}.{key[:64]}': expected a string.", f"{param}.{key[:64]}")
        if len(item) > MAX_METADATA_VALUE_CHARS:
            raise bad_request(
                "string_above_max_length",
                f"Invalid '{param}.{key}': string too long. Expected a string with maximum length "
                f"{MAX_METADATA_VALUE_CHARS}, but got a string with length {len(item)} instead.",
                f"{param}.{key}",
            )


def image_limit(configured: int, default: int, info: ModelInfo | None, api: str) -> tuple[int, str]:
    """``(limit, message)``: the images one request may carry, and the service's refusal text.

    The registry's Azure limit for the model and API (10 per chat request; 50 measured on v1
    Responses with gpt-6-astra and gpt-5.6-terra) unless ``max_images`` was set (not ``default``).
    """
    if configured != default or info is None or not info.vision:
        return configured, ""
    limit = info.images_per_request("azure", api)
    if api == "responses" and "azure/responses" in info.image_limits:
        # The service's words (github.com/Azure/azure-rest-api-specs/issues/46145, 2026-09-06).
        return limit, f"Exceeded maximum number of images ({limit}) allowed in the request."
    return limit, ""
