"""Responses API calls of :class:`~vizlab.client.core.Client` (``Client.respond``).

Sends the same conversation through the Responses API and returns the same
:class:`~vizlab.client.replies.Reply` as ``chat``; chat parts are converted one for one, so the
estimate matches. Trade-off: ``previous_response_id`` saves upload bytes but not tokens: the
stored context is billed again as input (OpenAI "Conversation state" guide, checked 2026).
Details: docs/internals.md#client
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vizlab.client.chat import ChatCalls, is_conversation, request_messages
from vizlab.client.replies import Prepared, Reply, request_id_of, ungrounded_of
from vizlab.errors import redact

if TYPE_CHECKING:
    from vizlab.tokens.pricing import PriceTable


def to_responses_input(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat-format messages as Responses input items.

    >>> to_responses_input([{"role": "user", "content": [{"type": "text", "text": "Hi"},
    ...     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "low"}}]}])
    [{'role': 'user', 'content': [{'type': 'input_text', 'text': 'Hi'}, {'type': 'input_image', 'image_url': 'data:image/png;base64,AA', 'detail': 'low'}]}]
    """
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "assistant":
            text = content if isinstance(content, str) else " ".join(
                p.get("text", "") for p in content or [] if isinstance(p, Mapping)
            )
            items.append({"role": "assistant", "content": text})
            continue
        if isinstance(content, str):
            items.append({"role": role, "content": content})
            continue
        parts: list[dict[str, Any]] = []
        for part in content or []:
            if part.get("type") == "text":
                parts.append({"type": "input_text", "text": part.get("text", "")})
            elif part.get("type") == "image_url":
                spec = part.get("image_url")
                url = spec.get("url") if isinstance(spec, Mapping) else spec
                detail = (spec.get("detail") if isinstance(spec, Mapping) else None) or "auto"
                parts.append({"type": "input_image", "image_url": url, "detail": detail})
            elif part.get("type") == "file":  # a document: Chat's nested file -> Responses' flat input_file
                spec = part.get("file") if isinstance(part.get("file"), Mapping) else {}
                parts.append({"type": "input_file", **{k: v for k, v in spec.items() if v is not None}})
            elif str(part.get("type", "")).startswith("input_"):  # already a Responses part
                parts.append(dict(part))
        items.append({"role": role, "content": parts})
    return items


def _new_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages after the last assistant message (what a follow-up by id sends)."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    return messages[last + 1 :]


class ResponsesCalls:
    """The Responses API part of a client (``respond``); it reuses the chat part's estimate and Reply."""

    def __init__(self, chat: ChatCalls) -> None:
        self.chat = chat

    def respond(
        self,
        conversation_or_messages: Any,
        *,
        detail: str | None,
        max_output_tokens: int | None,
        previous_response_id: str | None,
        instructions: str | None,
        store: bool,
        prices: PriceTable | None,
        params: dict[str, Any],
        stacklevel: int,
    ) -> Reply:
        """``stacklevel``: what warnings.warn would need here to name the user's line."""
        chat = self.chat
        messages = request_messages(conversation_or_messages, detail)
        if previous_response_id is not None:
            messages = _new_turn(messages)
        conversation = conversation_or_messages if is_conversation(conversation_or_messages) else None
        prepared = chat.prepare(
            messages, detail=None, max_tokens=max_output_tokens, prices=prices, params={}, stream=False
        )
        prepared.conversation = conversation
        body: dict[str, Any] = {"model": chat.deployment, "input": to_responses_input(messages), "store": store}
        if max_output_tokens is not None:
            body["max_output_tokens"] = max_output_tokens
        if previous_response_id is not None:
            body["previous_response_id"] = previous_response_id
        if instructions is not None:
            body["instructions"] = instructions
        body.update(chat.state.adapted(params))
        prepared.body = body
        started = time.perf_counter()
        sdk = chat.transport.responses_sdk()
        response = chat.send(lambda b: sdk.responses.with_raw_response.create(**b), prepared, stacklevel=stacklevel + 1)
        with chat.mapper.guard():
            result = response.parse()
        latency = time.perf_counter() - started
        raw = result.model_dump(mode="json", exclude_unset=True)
        reply = self.reply_from_response(raw, prepared, latency, request_id_of(response.headers))
        reply.ungrounded = tuple(ungrounded_of(response.headers))
        return chat.deliver(reply, prepared, stacklevel=stacklevel + 1)

    def reply_from_response(
        self, raw: dict[str, Any], prepared: Prepared, latency_s: float, request_id: str | None
    ) -> Reply:
        from vizlab.tokens.usage import Usage

        chat = self.chat
        model = chat.reported_model(raw, prepared)  # first: it may fill in the estimate
        usage = Usage.from_openai(raw["usage"]) if raw.get("usage") else None
        secrets = chat.transport.secrets()
        return Reply(
            text=output_text(raw),
            finish_reason=finish_of(raw),
            usage=usage,
            estimate=prepared.estimate,
            model=model,
            prompt_filter_results=None,
            content_filter_results=None,
            latency_s=latency_s,
            raw=raw,
            request=prepared.body,
            cost=chat.cost(usage, prepared),
            backend=str(chat.transport.backend),
            deployment=chat.deployment,
            request_id=request_id,
            estimate_error=redact(prepared.estimate_error, secrets) if prepared.estimate_error else None,
            answered_by=prepared.answered_by,
        )


def output_text(raw: Mapping[str, Any]) -> str:
    """The text of a Responses object: every output_text and refusal part, in order."""
    texts: list[str] = []
    for item in raw.get("output") or []:
        for part in item.get("content") or [] if isinstance(item, Mapping) else []:
            if isinstance(part, Mapping) and part.get("type") == "output_text":
                texts.append(str(part.get("text", "")))
            elif isinstance(part, Mapping) and part.get("type") == "refusal":
                texts.append(str(part.get("refusal", "")))
    return "".join(texts)


def finish_of(raw: Mapping[str, Any]) -> str:
    """A Responses object's status as a Chat finish_reason (stop, length, content_filter, tool_calls)."""
    status = raw.get("status")
    incomplete = raw.get("incomplete_details") or {}
    finish = "stop" if status == "completed" else (
        "length" if incomplete.get("reason") == "max_output_tokens" else
        "content_filter" if incomplete.get("reason") == "content_filter" else str(status)
    )
    if any(isinstance(i, Mapping) and i.get("type") == "function_call" for i in raw.get("output") or []):
        finish = "tool_calls"
    return finish
