"""Server-sent events of a streamed chat completion, in Azure's chunk sequence."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, AsyncIterator

from vizlab.local.config import BackendConfig
from vizlab.local.filters import prompt_filter_results, safe_results
from vizlab.local.validation import ChatRequest

__all__ = ["stream_chat", "stream_pieces", "sse"]


def stream_pieces(text: str, words_per_piece: int = 3) -> list[str]:
    """Split text into small pieces that join back to exactly ``text``."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words_per_piece]) for i in range(0, len(tokens), words_per_piece)]


def sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


async def stream_chat(
    completion_id: str,
    created: int,
    text: str,
    finish_reason: str,
    usage: dict[str, int],
    chat: ChatRequest,
    config: BackendConfig,
) -> AsyncIterator[bytes]:
    # Azure's stream opens with a chunk that carries only the prompt filter results.
    yield sse(
        {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": prompt_filter_results(),
        }
    )

    def chunk(index: int, delta: dict[str, Any], finish: str | None, filters: dict[str, Any]) -> bytes:
        return sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": config.model_name,
                "system_fingerprint": "fp_vizlab_local",
                "choices": [
                    {
                        "index": index,
                        "delta": delta,
                        "finish_reason": finish,
                        "logprobs": None,
                        "content_filter_results": filters,
                    }
                ],
            }
        )

    for index in range(chat.n):
        yield chunk(index, {"role": "assistant", "content": ""}, None, {})
        for piece in stream_pieces(text):
            yield chunk(index, {"content": piece}, None, safe_results())
            await asyncio.sleep(config.stream_chunk_delay_s)
        yield chunk(index, {}, finish_reason, {})
    if chat.include_usage:
        yield sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": config.model_name,
                "system_fingerprint": "fp_vizlab_local",
                "choices": [],
                "usage": usage,
            }
        )
    yield b"data: [DONE]\n\n"

