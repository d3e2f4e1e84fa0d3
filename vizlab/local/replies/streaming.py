"""Server-sent events of a streamed chat completion, in Azure's chunk sequence.

As recorded (gpt-4.1-mini on Azure, 2026-09, tests/data/recordings/azure_chat_stream.json): a
prompt-filter chunk first; then every chunk carries ``obfuscation`` (a random pad), the role chunk
``{"content": "", "refusal": null, "role": "assistant"}``, and with ``include_usage`` every chunk
before the usage one has ``usage: null``.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from typing import Any, AsyncIterator

from vizlab.local.config import BackendConfig
from vizlab.local.replies.filters import safe_results
from vizlab.local.replies.shaping import ShapedReply
from vizlab.local.requests.validation import ChatRequest

__all__ = ["stream_chat", "stream_pieces", "sse", "sse_event"]


def stream_pieces(text: str, words_per_piece: int = 3) -> list[str]:
    """Split text into small pieces that join back to exactly ``text``."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words_per_piece]) for i in range(0, len(tokens), words_per_piece)]


def sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def sse_event(name: str, payload: dict[str, Any]) -> bytes:
    """A named event (``event:`` line, then ``data:``), as the Responses API streams them."""
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


async def stream_chat(
    completion_id: str,
    created: int,
    shaped: ShapedReply,
    usage: dict[str, int],
    chat: ChatRequest,
    config: BackendConfig,
    prompt_filters: list[dict[str, Any]],
    deployment: str,
) -> AsyncIterator[bytes]:
    model = config.reported_model(deployment)
    # Azure's stream opens with a chunk that carries only the prompt filter results.
    yield sse(
        {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": prompt_filters,
        }
    )

    def chunk(
        index: int, delta: dict[str, Any], finish: str | None, filters: dict[str, Any], logprobs: Any = None
    ) -> bytes:
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_vizlab_local",
            "obfuscation": _obfuscation(),
            "choices": [
                {
                    "index": index,
                    "delta": delta,
                    "finish_reason": finish,
                    "logprobs": logprobs,
                    "content_filter_results": filters,
                }
            ],
        }
        if chat.include_usage:
            payload["usage"] = None
        return sse(payload)

    deltas = shaped.stream_deltas(stream_pieces)
    opening: dict[str, Any] = {"role": "assistant", "content": None if shaped.tool_calls else "", "refusal": None}
    if shaped.refusal is not None:
        opening = {"role": "assistant", "content": None, "refusal": ""}
    for index in range(chat.n):
        yield chunk(index, opening, None, {})
        for delta, logprobs in deltas:
            yield chunk(index, delta, None, safe_results(), logprobs)
            await asyncio.sleep(config.stream_chunk_delay_s)
        yield chunk(index, {}, shaped.finish_reason, {})
    if chat.include_usage:
        yield sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_vizlab_local",
                "obfuscation": "",
                "choices": [],
                "usage": usage,
            }
        )
    yield b"data: [DONE]\n\n"


def _obfuscation() -> str:
    """A random pad like the service's (it evens out chunk sizes against length side channels)."""
    return secrets.token_urlsafe(8)[: 1 + secrets.randbelow(10)]
