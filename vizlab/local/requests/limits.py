"""Per-model token limits of the built-in backend: context window and largest ``max_tokens``.

The figures come from the registry; the service's 400s for ``max_tokens`` over the output limit
and prompts over the context window (or gpt-5's separate input cap) are answered in
:mod:`vizlab.local.replies.completion`. Trade-off: the prompt count is the backend's own
estimate, exact for text, so a request near the limit may be judged differently by the service.
The quoted error texts and their sources: docs/internals.md#local
"""

from __future__ import annotations

from dataclasses import dataclass

from vizlab.errors import UnknownModelError
from vizlab.local.http.errors import bad_request
from vizlab.models.registry import families, lookup, snapshots
from vizlab.models.types import ModelInfo

__all__ = ["ModelLimits", "MODEL_LIMITS", "DEFAULT_LIMITS", "limits_for", "check_refused", "image_limit"]


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
