"""Token usage as the service reports it (Chat Completions and Responses API shapes), and the
shape estimates are compared in.

Zero-valued details are dropped, so two usages compare equal whether or not the service sent the
zeros; completion details keep their names, prefixed ``completion_`` only where a prompt detail
has the same name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from vizlab.errors import VizlabError

__all__ = ["Usage", "field_of", "int_details"]


def field_of(obj: Any, key: str) -> Any:
    """``obj[key]`` for a mapping, ``obj.key`` for an object (the SDK's models), else None."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def int_details(obj: Any) -> dict[str, int]:
    """The non-zero integer fields of a usage details object or dict."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        items: Any = obj.items()
    elif hasattr(obj, "model_dump"):  # the SDK's pydantic models
        items = obj.model_dump().items()
    else:
        items = vars(obj).items() if hasattr(obj, "__dict__") else ()
    return {k: v for k, v in items if isinstance(v, int) and not isinstance(v, bool) and v}


@dataclass
class Usage:
    """Token usage as the service reports it; also the shape of an estimate. Zero details dropped."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    details: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.details = {k: v for k, v in self.details.items() if v}

    @classmethod
    def from_openai(cls, usage: Any) -> Usage:
        """From the SDK's ``CompletionUsage`` (or ``ResponseUsage``) or the same as a dict.

        ``prompt_tokens_details`` entries keep their names (``cached_tokens``...); completion ones too
        (``reasoning_tokens``...), prefixed ``completion_`` only where a name is on both sides.
        """
        if usage is None:
            raise VizlabError("usage is None: the reply carried no usage; nothing to convert")
        prompt = field_of(usage, "prompt_tokens")
        completion = field_of(usage, "completion_tokens")
        prompt_details = field_of(usage, "prompt_tokens_details")
        completion_details = field_of(usage, "completion_tokens_details")
        if prompt is None and field_of(usage, "input_tokens") is not None:  # Responses API shape
            prompt = field_of(usage, "input_tokens")
            completion = field_of(usage, "output_tokens")
            prompt_details = field_of(usage, "input_tokens_details")
            completion_details = field_of(usage, "output_tokens_details")
        if not isinstance(prompt, int):
            raise VizlabError(
                f"usage {usage!r} has no integer prompt_tokens; pass response.usage or its dict"
            )
        completion = completion if isinstance(completion, int) else 0
        total = field_of(usage, "total_tokens")
        total = total if isinstance(total, int) else prompt + completion
        details = int_details(prompt_details)
        for k, v in int_details(completion_details).items():
            details["completion_" + k if k in details else k] = v
        return cls(prompt, completion, total, details)
