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

from vizlab.local import _deps

__all__ = ["ModelLimits", "MODEL_LIMITS", "DEFAULT_LIMITS", "limits_for"]


@dataclass(frozen=True)
class ModelLimits:
    """Token limits of one model."""

    context: int  # context window: prompt + completion tokens
    max_output: int  # the largest max_tokens / max_completion_tokens accepted
    max_input: int | None = None  # a separate cap on the prompt alone (gpt-5), if any
    verified: bool = True  # False: the figures were not checked against a published source


# Source, unless a line says otherwise: "Azure OpenAI in Microsoft Foundry models"
# (MicrosoftDocs/azure-ai-docs, models-azure-direct-openai include, ms.date 2026-01-14, read
# 2026), columns "Context window / Max output tokens" or "Max request (tokens): Input / Output".
# Names match like vizlab.tokens: exactly, else the longest "name-" prefix ("gpt-4o-2024-08-06"
# -> gpt-4o, "gpt-4.1-mini" -> gpt-4.1, "o3-mini" -> o3).
MODEL_LIMITS: dict[str, ModelLimits] = {
    # gpt-4o (2024-11-20, 2024-08-06) and gpt-4o-mini (2024-07-18): Input 128,000, Output 16,384.
    "gpt-4o": ModelLimits(128_000, 16_384),
    "gpt-4o-mini": ModelLimits(128_000, 16_384),
    # gpt-4o (2024-05-13): Input 128,000, Output 4,096 (same page; the only version that differs).
    "gpt-4o-2024-05-13": ModelLimits(128_000, 4_096),
    # chatgpt-4o-latest: NOT VERIFIED here (not on the Azure page); assumed as gpt-4o.
    "chatgpt-4o-latest": ModelLimits(128_000, 16_384, verified=False),
    # gpt-4.1, -mini, -nano (2025-04-14): 1,047,576 / 32,768. The page adds that standard and
    # provisioned Azure deployments get 128,000 (batch 300,000); we use the model's figure.
    "gpt-4.1": ModelLimits(1_047_576, 32_768),
    # gpt-4.5-preview: NOT VERIFIED here (retired, not on the page); 128,000 / 16,384 assumed.
    "gpt-4.5": ModelLimits(128_000, 16_384, verified=False),
    # gpt-4 turbo-2024-04-09 ("GPT-4 Turbo with Vision", the model named gpt-4 on Azure today,
    # replacing vision-preview / 1106 / 0125): Input 128,000, Output 4,096.
    "gpt-4": ModelLimits(128_000, 4_096),
    "gpt-4-turbo": ModelLimits(128_000, 4_096),
    # gpt-4-vision-preview and vizlab's Azure 2023 preview profile: NOT VERIFIED here (retired);
    # assumed as the turbo-2024-04-09 model that replaced them.
    "gpt-4-vision-preview": ModelLimits(128_000, 4_096, verified=False),
    "azure-gpt-4v-2023-preview": ModelLimits(128_000, 4_096, verified=False),
    # o-series: o1 (2024-12-17), o3-mini, o3, o4-mini, o3-pro, codex-mini: Input 200,000, Output
    # 100,000. o1-preview 128,000 / 32,768 and o1-mini 128,000 / 65,536 (same table).
    "o1": ModelLimits(200_000, 100_000),
    "o1-preview": ModelLimits(128_000, 32_768),
    "o1-mini": ModelLimits(128_000, 65_536),
    # o1-pro: NOT VERIFIED here (not on the Azure page); assumed as o1.
    "o1-pro": ModelLimits(200_000, 100_000, verified=False),
    "o3": ModelLimits(200_000, 100_000),
    "o4-mini": ModelLimits(200_000, 100_000),
    # gpt-5, -mini, -nano (2025-08-07): 400,000 (Input: 272,000, Output: 128,000) / 128,000.
    "gpt-5": ModelLimits(400_000, 128_000, max_input=272_000),
    # gpt-5-chat (2025-08-07, 2025-10-03): 128,000 / 16,384. gpt-5-chat-latest (OpenAI's name,
    # vizlab.tokens knows it) assumed the same: NOT VERIFIED here.
    "gpt-5-chat": ModelLimits(128_000, 16_384),
    "gpt-5-chat-latest": ModelLimits(128_000, 16_384, verified=False),
    # computer-use-preview (2025-03-11): 8,192 / 1,024.
    "computer-use-preview": ModelLimits(8_192, 1_024),
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
    name = _deps.match_model(model, MODEL_LIMITS)
    if name is None:
        return None, DEFAULT_LIMITS
    return name, MODEL_LIMITS[name]
