"""The analyst's answer in the shape a request asked for: text, JSON, a tool call or a refusal.

One function, :func:`shape_reply`, used by both APIs (Chat Completions and Responses): it takes
the analyst's prose answer and its findings and returns a :class:`ShapedReply` that knows its
Chat message, its streamed deltas and which features it emulated (for ``x-vizlab-emulated``).
Order of precedence, as the service behaves: a forced/required tool call wins over a response
format; logprobs describe whatever text is sent. A strict schema's content always validates and a
forced tool is always called: placeholders are listed in ``ungrounded`` (``x-vizlab-ungrounded``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from vizlab.local.replies.structured import (
    Findings,
    Ungrounded,
    dumps,
    fill,
    findings_object,
)
from vizlab.local.requests.schemas import SchemaFormat
from vizlab.local.replies.tools import (
    AUTO_NOTE,
    ToolSpec,
    logprob_entries,
    make_tool_calls,
    tool_results_text,
)

__all__ = ["ReplyOptions", "ShapedReply", "shape_reply"]


@dataclass
class ReplyOptions:
    """What a request asked of the reply's shape (parsed by the validators)."""

    format_type: str = "text"  # "text" | "json_object" | "json_schema"
    schema: SchemaFormat | None = None
    tools: ToolSpec | None = None
    logprobs: bool = False
    top_logprobs: int = 0


@dataclass
class ShapedReply:
    content: str | None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str = "stop"
    logprobs: dict[str, Any] | None = None
    emulated: list[str] = field(default_factory=list)
    ungrounded: list[str] = field(default_factory=list)  # fields holding placeholders, not findings

    @property
    def billed_text(self) -> str:
        """The text the completion tokens count: content, refusal or the calls' arguments."""
        if self.tool_calls:
            return "".join(c["function"]["name"] + c["function"]["arguments"] for c in self.tool_calls)
        return self.content or self.refusal or ""

    def message(self) -> dict[str, Any]:
        """The Chat Completions ``choices[i].message``."""
        # annotations: [] as in every recorded Azure and OpenAI chat message since 2025 (tests/data/recordings).
        out: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": self.refusal,
                               "annotations": []}
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out

    def stream_deltas(self, pieces: Callable[[str], list[str]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(delta, logprobs) of each content chunk after the role chunk, in the service's order."""
        out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        if self.tool_calls:
            for index, call in enumerate(self.tool_calls):
                head = {"index": index, "id": call["id"], "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""}}
                out.append(({"tool_calls": [head]}, None))
                for piece in pieces(call["function"]["arguments"]) or [""]:
                    out.append(({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None))
            return out
        key = "refusal" if self.refusal is not None else "content"
        text = self.refusal if self.refusal is not None else (self.content or "")
        entries = list((self.logprobs or {}).get(key) or [])
        ends, total = [], 0
        for entry in entries:
            total += len(entry["token"])
            ends.append(total)
        done, offset, taken_upto = 0, 0, 0
        chunks = pieces(text)
        for n, piece in enumerate(chunks):
            offset += len(piece)
            chunk_logprobs = None
            if self.logprobs is not None:
                while taken_upto < len(entries) and (ends[taken_upto] <= offset or n == len(chunks) - 1):
                    taken_upto += 1
                taken = entries[done:taken_upto]
                done = taken_upto
                chunk_logprobs = {"content": taken if key == "content" else None,
                                  "refusal": taken if key == "refusal" else None}
            out.append(({key: piece}, chunk_logprobs))
        return out


def shape_reply(
    options: ReplyOptions,
    answer: str,
    findings: Findings,
    messages: list[dict[str, Any]],
    token_model: str,
    cut: Callable[[str], tuple[str, str]],
) -> ShapedReply:
    """Shape ``answer`` as ``options`` ask. ``cut`` applies stop sequences and max_tokens to
    text content (returning ``(text, finish_reason)``), as the server does for plain answers."""
    tool_text = tool_results_text(messages)
    if tool_text:
        answer = f"{answer} {tool_text}"
    spec = options.tools
    reply: ShapedReply
    if spec is not None and spec.calls_wanted:
        try:
            calls, ungrounded = make_tool_calls(spec, findings)
            reply = ShapedReply(content=None, tool_calls=calls, finish_reason="tool_calls", emulated=["tools"],
                                ungrounded=ungrounded)
        except Ungrounded as e:
            reply = ShapedReply(content=None, refusal=e.refusal(), emulated=["tools"])
        return _with_logprobs(reply, options, token_model)
    emulated: list[str] = []
    if spec is not None and spec.tools and spec.choice == "auto" and not tool_text:
        answer = f"{answer} {AUTO_NOTE}"
        emulated.append("tools")
    if options.format_type == "json_schema" and options.schema is not None:
        emulated.append("json_schema")
        try:
            done = fill(options.schema.schema, findings)
        except Ungrounded as e:
            return _with_logprobs(ShapedReply(content=None, refusal=e.refusal(), emulated=emulated), options, token_model)
        text, finish = cut(dumps(done.value))
        reply = ShapedReply(content=text, finish_reason=finish, emulated=emulated, ungrounded=done.ungrounded)
    elif options.format_type == "json_object":
        emulated.append("json_object")
        reply = _json_object(messages, findings, cut, emulated)
    else:
        text, finish = cut(answer)
        reply = ShapedReply(content=text, finish_reason=finish, emulated=emulated)
    return _with_logprobs(reply, options, token_model)


def _json_object(
    messages: list[dict[str, Any]], findings: Findings, cut: Callable[[str], tuple[str, str]], emulated: list[str]
) -> ShapedReply:
    """A json_object reply: filled from a JSON schema written in the prompt when there is one
    (instructor's ``Mode.JSON``, "...match the following json_schema: {...}"), else the findings."""
    schema = schema_in_prompt(messages)
    if schema is not None:
        try:
            done = fill(schema, findings)
            text, finish = cut(dumps(done.value))
            return ShapedReply(content=text, finish_reason=finish, emulated=emulated, ungrounded=done.ungrounded)
        except Ungrounded:
            pass  # a schema the analyst cannot satisfy: the findings, as without one
    text, finish = cut(dumps(findings_object(findings)))
    return ShapedReply(content=text, finish_reason=finish, emulated=emulated)


def schema_in_prompt(messages: list[dict[str, Any]], limit: int = 100_000, tries: int = 64) -> dict[str, Any] | None:
    """The last JSON schema (an object with ``properties``) written in the messages' text, or None.

    >>> schema_in_prompt([{"role": "system", "content": 'Match this json_schema: {"type": "object", '
    ...     '"properties": {"total": {"type": "number"}}} Thanks.'}])
    {'type': 'object', 'properties': {'total': {'type': 'number'}}}
    """
    decoder = json.JSONDecoder()
    found = None
    for message in messages:
        content = message.get("content")
        texts = [content] if isinstance(content, str) else [
            p.get("text", "") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
        ] if isinstance(content, list) else []
        for text in texts:
            text = text[:limit]
            if '"properties"' not in text:
                continue
            start = text.find("{")
            while start != -1 and tries > 0:
                tries -= 1  # bounded: a text of nested braces cannot make this quadratic
                try:
                    value, end = decoder.raw_decode(text, start)
                except ValueError:
                    start = text.find("{", start + 1)
                    continue
                if isinstance(value, dict) and isinstance(value.get("properties"), dict):
                    found = value
                start = text.find("{", end)
    return found


def _with_logprobs(reply: ShapedReply, options: ReplyOptions, token_model: str) -> ShapedReply:
    if not options.logprobs:
        return reply
    reply.emulated.append("logprobs")
    if reply.tool_calls:
        reply.logprobs = {"content": [], "refusal": None}
    elif reply.refusal is not None:
        reply.logprobs = {"content": None, "refusal": logprob_entries(reply.refusal, token_model, options.top_logprobs)}
    else:
        reply.logprobs = {"content": logprob_entries(reply.content or "", token_model, options.top_logprobs), "refusal": None}
    return reply
