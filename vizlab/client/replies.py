"""What a call returns: :class:`Reply` (one answer, measured) and :class:`ReplyStream`.

A streamed reply is assembled into the same chat.completion shape as a non-streamed one, so
both give the same :class:`Reply`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from vizlab.conversation.costs import cost_total

if TYPE_CHECKING:
    from vizlab.models.types import Cost
    from vizlab.tokens.pricing import PriceTable
    from vizlab.tokens.request import RequestEstimate
    from vizlab.tokens.usage import Usage

def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The service's request id: Azure's ``apim-request-id``, else OpenAI's ``x-request-id``."""
    return headers.get("apim-request-id") or headers.get("x-request-id")


UNGROUNDED_HEADER = "x-vizlab-ungrounded"


def ungrounded_of(headers: Mapping[str, str]) -> list[str]:
    """The schema fields the built-in backend filled with placeholders (``x-vizlab-ungrounded``).

    >>> ungrounded_of({"x-vizlab-ungrounded": "kind, word_count"})
    ['kind', 'word_count']
    """
    value = headers.get(UNGROUNDED_HEADER) or ""
    return [part.strip() for part in value.split(",") if part.strip()]


def finish_reason_of(choice: Mapping[str, Any]) -> str | None:
    reason = choice.get("finish_reason")
    if isinstance(reason, Mapping):  # the 2023 vision-enhancement shape: {"type": "stop", ...}
        reason = reason.get("type")
    return None if reason is None else str(reason)


@dataclass
class Prepared:
    """Everything fixed before sending: the request body, the estimate and where to append."""

    body: dict[str, Any]
    estimate: RequestEstimate | None
    estimate_error: str | None
    conversation: Any
    prices: PriceTable | None
    started: float = 0.0
    answered_by: str | None = None  # the built-in backend's analyst (x-vizlab-analyst), when it answered
    # (messages, max_tokens) kept when the model was unknown before sending: estimated once a reply names it
    unestimated: tuple[list[dict[str, Any]], int | None] | None = None

def _fmt_int(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


@dataclass(repr=False)
class Reply:
    """One answer from the model, with what was sent, what it cost and how long it took."""

    text: str
    finish_reason: str | None
    usage: Usage | None
    estimate: RequestEstimate | None  # None only when vizlab could not estimate the request
    model: str
    prompt_filter_results: list[Any] | None
    content_filter_results: dict[str, Any] | None
    latency_s: float
    raw: dict[str, Any]
    request: dict[str, Any]
    cost: Cost | None
    backend: str
    deployment: str = ""
    request_id: str | None = None
    estimate_error: str | None = None
    # Fields of a structured reply that hold placeholders, not findings (the built-in backend's
    # x-vizlab-ungrounded header): treat them as missing.
    ungrounded: tuple[str, ...] = ()
    # What produced the text when it is not the model: the built-in backend names its local analyst
    # here (header x-vizlab-analyst), while `model` is the registry model the deployment emulates.
    answered_by: str | None = None

    @property
    def reasoning_tokens(self) -> int:
        """Completion tokens the model spent reasoning (billed as output, not shown); 0 if none reported."""
        return int(self.usage.details.get("reasoning_tokens", 0)) if self.usage is not None else 0

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens served from the prompt cache (billed at the cached-input price); 0 if none."""
        return int(self.usage.details.get("cached_tokens", 0)) if self.usage is not None else 0

    def warnings(self) -> list[str]:
        """Advice about this reply: cut by max_tokens, blocked by the filter, not estimated."""
        notes: list[str] = []
        if self.finish_reason == "length":
            if "max_completion_tokens" in self.request:
                limit = self.request.get("max_completion_tokens")
                notes.append(
                    f"the reply was cut off at max_completion_tokens={limit} (finish_reason 'length'; "
                    f"{self.reasoning_tokens:,} of them spent reasoning): raise max_tokens= (sent as "
                    "max_completion_tokens), lower reasoning_effort, or ask for a shorter answer"
                )
            else:
                limit = self.request.get("max_tokens")
                notes.append(
                    f"the reply was cut off at max_tokens={limit} (finish_reason 'length'): "
                    "raise max_tokens, or ask for a shorter answer"
                )
        elif self.finish_reason == "content_filter":
            flagged = filtered_categories(self.content_filter_results) or ["unknown"]
            notes.append(
                "the content filter omitted part of the reply (finish_reason 'content_filter', "
                f"categories: {', '.join(flagged)}): rephrase the prompt, or check "
                "reply.content_filter_results"
            )
        elif self.finish_reason == "cancelled":
            notes.append("the stream was cancelled: the text is partial and was not added to the conversation")
        if self.estimate_error:
            notes.append(f"no token estimate before sending: {self.estimate_error}")
        if self.ungrounded:
            notes.append(
                f"fields with placeholders, not answers (nothing the built-in analyst found grounds them): "
                f"{', '.join(self.ungrounded)}: treat them as missing"
            )
        return notes

    def summary(self) -> str:
        """One line: prompt tokens (and the estimate), completion tokens, cost, latency, finish."""
        est = getattr(self.estimate, "prompt_tokens", None)
        if self.usage is not None:
            prompt = f"prompt {_fmt_int(self.usage.prompt_tokens)} tokens"
            if est is not None:
                prompt += f" (estimate {_fmt_int(est)})"
            if self.cached_tokens:
                prompt += f", {_fmt_int(self.cached_tokens)} cached"
            completion = f"completion {_fmt_int(self.usage.completion_tokens)}"
            if self.reasoning_tokens:
                completion += f" ({_fmt_int(self.reasoning_tokens)} reasoning)"
        else:
            prompt = f"prompt ~{_fmt_int(est)} tokens (estimate; no usage reported)"
            completion = "completion ?"
        total = cost_total(self.cost)
        cost = "$?" if total is None else f"${total:.4f}"
        return f"{prompt} · {completion} · {cost} · {self.latency_s:.2f} s · finish: {self.finish_reason}"

    def __str__(self) -> str:
        lines = [self.text, "", self.summary()]
        lines += [f"warning: {w}" for w in self.warnings()]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        parts = [self.text or "*(no text)*", "", "---", f"<small>{self.summary()}</small>"]
        parts += [f"> ⚠️ {w}" for w in self.warnings()]
        return "\n".join(parts)

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return (
            f"Reply(text={text!r}, finish_reason={self.finish_reason!r}, model={self.model!r}, "
            f"backend={self.backend!r}, "
            + (f"answered_by={self.answered_by!r}, " if self.answered_by else "")
            + f"latency_s={self.latency_s:.3f})"
        )


def filtered_categories(results: Any) -> list[str]:
    """Names of the categories whose ``filtered`` flag is true in Azure's filter results."""
    if not isinstance(results, Mapping):
        return []
    return [str(k) for k, v in results.items() if isinstance(v, Mapping) and v.get("filtered") is True]



class StreamOwner(Protocol):
    """What a :class:`ReplyStream` needs from the client's chat part that started it."""

    @property
    def deployment(self) -> str: ...

    def build_reply(
        self, raw: dict[str, Any], prepared: Prepared, latency_s: float, request_id: str | None
    ) -> Reply: ...

    def deliver(self, reply: Reply, prepared: Prepared, *, stacklevel: int) -> Reply: ...

    def map_error(self, e: BaseException) -> Any: ...


class ReplyStream:
    """Text chunks as they arrive; afterwards ``.reply`` holds the :class:`Reply` with usage.

    ``cancel()`` stops early: the HTTP stream is closed, the conversation is not appended, and
    ``.reply`` keeps the partial text with ``finish_reason`` "cancelled". Leaving a ``with``
    block before the end cancels.
    """

    def __init__(self, client: StreamOwner, prepared: Prepared, sdk_stream: Any, request_id: str | None) -> None:
        self._client = client
        self._prepared = prepared
        self._sdk_stream = sdk_stream
        self._request_id = request_id
        self._parts: list[str] = []
        self._chunks: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._done = False
        self._cancelled = False
        self.reply: Reply | None = None
        self._iterator = self._events()

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    def __iter__(self) -> Iterator[str]:
        return self._iterator

    def _events(self) -> Generator[str, None, None]:
        import openai

        try:
            for chunk in self._sdk_stream:
                if self._cancelled:
                    return
                data = chunk.model_dump(mode="json", exclude_unset=True)
                self._chunks.append(data)
                for choice in data.get("choices") or []:
                    delta = choice.get("delta") or {}
                    piece = delta.get("content")
                    if choice.get("index", 0) == 0 and isinstance(piece, str) and piece:
                        self._parts.append(piece)
                        yield piece
        except openai.OpenAIError as e:
            if self._cancelled:
                return
            self._done = True
            raise self._client.map_error(e) from e
        except Exception:
            if self._cancelled:  # closing the stream from another thread breaks its read
                return
            raise
        with self._lock:
            if self._cancelled or self._done:
                return
            self._done = True
        latency = time.perf_counter() - self._prepared.started
        reply = self._client.build_reply(self._assemble(), self._prepared, latency, self._request_id)
        self.reply = self._client.deliver(reply, self._prepared, stacklevel=3)  # deliver, here, the user's loop

    def _assemble(self) -> dict[str, Any]:
        """One chat.completion-shaped dict from the chunks (Azure sends prompt filter results
        in a chunk with no choices, and usage in a last chunk with no choices)."""
        raw: dict[str, Any] = {"object": "chat.completion", "choices": []}
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": self.text}}
        prompt_filters: list[Any] = []
        for data in self._chunks:
            for key in ("id", "created", "model", "system_fingerprint"):
                if data.get(key):
                    raw[key] = data[key]
            if data.get("usage"):
                raw["usage"] = data["usage"]
            prompt_filters += data.get("prompt_filter_results") or []
            for ch in data.get("choices") or []:
                if ch.get("index", 0) != 0:
                    continue
                if ch.get("finish_reason") is not None:
                    choice["finish_reason"] = ch["finish_reason"]
                if ch.get("content_filter_results"):
                    choice.setdefault("content_filter_results", {}).update(ch["content_filter_results"])
        choice.setdefault("finish_reason", None)
        raw["choices"] = [choice]
        if prompt_filters:
            raw["prompt_filter_results"] = prompt_filters
        raw["stream_chunks"] = len(self._chunks)
        return raw

    def cancel(self) -> None:
        """Stop now: close the HTTP stream; ``.reply`` gets the partial text, finish "cancelled"."""
        with self._lock:
            if self._done or self._cancelled:
                return
            # The reply is set before the reading thread can notice the cancel and stop, so a
            # reader that ends its loop always finds it.
            latency = time.perf_counter() - self._prepared.started
            raw = self._assemble()
            raw["choices"][0]["finish_reason"] = "cancelled"
            self.reply = self._client.build_reply(raw, self._prepared, latency, self._request_id)
            self._cancelled = True
        self._sdk_stream.close()
        try:
            self._iterator.close()
        except ValueError:  # iterating in another thread right now; it stops at its next read
            pass

    def close(self) -> None:
        """Cancel if not finished; a no-op after the end."""
        self.cancel()

    def __enter__(self) -> ReplyStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "done" if self._done else "streaming"
        return f"<vizlab.ReplyStream {state}, {len(self.text)} chars from {self._client.deployment}>"

