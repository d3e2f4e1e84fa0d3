"""Per-model token limits of the built-in backend: context window and largest ``max_tokens``.

The service refuses, with a 400, a request that does not fit the deployment's model:

* ``max_tokens`` (or ``max_completion_tokens``) over the model's output limit:
  ``{"code": "invalid_value", "param": "max_tokens", "message": "max_tokens is too large: 20480.
  This model supports at most 16384 completion tokens, whereas you provided 20480."}``
  (gpt-4o, tailcallhq/forgecode#1185, 2025-07-22; the same text with ``code: null`` in 2023,
  ChatGPTNextWeb/NextChat#3195, 2023-11-08). For ``max_completion_tokens`` we name that
  parameter in the message and ``param`` (our choice: no public quote found).
* prompt over the context window: ``{"code": "context_length_exceeded", "param": "messages",
  "message": "This model's maximum context length is 4097 tokens. However, your messages
  resulted in 4294 tokens. Please reduce the length of the messages."}`` (chathub-dev/chathub#126,
  2023-03-20; the Azure models page quotes the same form for gpt-4.1, read 2026).
* prompt + ``max_tokens`` over it: "... However, you requested 8256 tokens (64 in the messages,
  8192 in the completion). Please reduce the length of the messages or completion."
  (same code and param; NextChat#3195, 2023-11-08).
* gpt-5 (not gpt-5-chat) also caps the prompt alone at 272,000 of its 400,000: "Input tokens
  exceed the configured limit of 272,000 tokens. Your messages resulted in 297,006 tokens."
  (community.openai.com/t/1344734, 2025-08). That error's ``code`` was not quoted; we send
  ``context_length_exceeded``.

The prompt count is the backend's own estimate (the one usage reports), so a request near the
limit may be judged differently by the service; the estimate is exact for text.
"""

from __future__ import annotations

from dataclasses import dataclass

from vizlab.errors import UnknownModelError
from vizlab.models.registry import families, lookup, snapshots
from vizlab.models.types import ModelInfo

__all__ = ["ModelLimits", "MODEL_LIMITS", "DEFAULT_LIMITS", "limits_for"]


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
