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
from vizlab.client.targets import v1_sdk
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


class ResponsesCalls(ChatCalls):
    """Mixin: the Responses API calls (``respond``); reuses the chat path's estimate and Reply."""

    _target: Any
    timeout: float
    max_retries: int
    _responses_client: Any = None

    @property
    def responses_sdk(self) -> Any:
        """The official openai client this Client sends Responses API calls through (see below)."""
        return self._responses_sdk()

    def _responses_sdk(self) -> Any:
        """The SDK client for the Responses API. On Azure (and the built-in backend) that is the
        v1 route, ``OpenAI(base_url=f"{endpoint}/openai/v1/")``: dated api-versions before
        2025-03-01-preview have no Responses API, and the v1 API needs none (Azure OpenAI
        "Responses API" how-to, 2026). Elsewhere it is the chat client itself."""
        t = self._target
        if t.backend not in ("azure", "local") or t.v1:
            return self._sdk
        if self._responses_client is None:
            self._responses_client = v1_sdk(t, asynchronous=False, timeout=self.timeout, max_retries=self.max_retries)
        return self._responses_client

    def respond(
        self,
        conversation_or_messages: Any,
        *,
        detail: str | None = None,
        max_output_tokens: int | None = 1000,
        previous_response_id: str | None = None,
        instructions: str | None = None,
        store: bool = True,
        prices: PriceTable | None = None,
        **params: Any,
    ) -> Reply:
        """Send through the Responses API and return the :class:`Reply` (same object as
        :meth:`chat`). With ``previous_response_id`` only the new turn is sent and the service
        answers from its stored context; ``reply.raw["id"]`` is this response's id."""
        messages = request_messages(conversation_or_messages, detail)
        if previous_response_id is not None:
            messages = _new_turn(messages)
        conversation = conversation_or_messages if is_conversation(conversation_or_messages) else None
        prepared = self._prepare(
            messages, detail=None, max_tokens=max_output_tokens, prices=prices, params={}, stream=False
        )
        prepared.conversation = conversation
        body: dict[str, Any] = {"model": self.deployment, "input": to_responses_input(messages), "store": store}
        if max_output_tokens is not None:
            body["max_output_tokens"] = max_output_tokens
        if previous_response_id is not None:
            body["previous_response_id"] = previous_response_id
        if instructions is not None:
            body["instructions"] = instructions
        body.update(self.adapted(params))
        prepared.body = body
        started = time.perf_counter()
        response = self._send(lambda b: self._responses_sdk().responses.with_raw_response.create(**b), prepared)
        with self._sdk_errors():
            result = response.parse()
        latency = time.perf_counter() - started
        raw = result.model_dump(mode="json", exclude_unset=True)
        reply = self._reply_from_response(raw, prepared, latency, request_id_of(response.headers))
        reply.ungrounded = tuple(ungrounded_of(response.headers))
        return self._deliver(reply, prepared, stacklevel=2)

    def _reply_from_response(
        self, raw: dict[str, Any], prepared: Prepared, latency_s: float, request_id: str | None
    ) -> Reply:
        from vizlab.tokens.usage import Usage

        model = self._reported_model(raw, prepared)  # first: it may fill in the estimate
        texts: list[str] = []
        for item in raw.get("output") or []:
            for part in item.get("content") or [] if isinstance(item, Mapping) else []:
                if isinstance(part, Mapping) and part.get("type") == "output_text":
                    texts.append(str(part.get("text", "")))
                elif isinstance(part, Mapping) and part.get("type") == "refusal":
                    texts.append(str(part.get("refusal", "")))
        status = raw.get("status")
        incomplete = raw.get("incomplete_details") or {}
        finish = "stop" if status == "completed" else (
            "length" if incomplete.get("reason") == "max_output_tokens" else
            "content_filter" if incomplete.get("reason") == "content_filter" else str(status)
        )
        if any(isinstance(i, Mapping) and i.get("type") == "function_call" for i in raw.get("output") or []):
            finish = "tool_calls"
        usage = Usage.from_openai(raw["usage"]) if raw.get("usage") else None
        return Reply(
            text="".join(texts),
            finish_reason=finish,
            usage=usage,
            estimate=prepared.estimate,
            model=model,
            prompt_filter_results=None,
            content_filter_results=None,
            latency_s=latency_s,
            raw=raw,
            request=prepared.body,
            cost=self._cost(usage, prepared),
            backend=self.backend,
            deployment=self.deployment,
            request_id=request_id,
            estimate_error=redact(prepared.estimate_error, self._secrets()) if prepared.estimate_error else None,
            answered_by=prepared.answered_by,
        )
