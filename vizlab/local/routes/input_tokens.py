"""The Responses token-counting route: ``POST {prefix}/responses/input_tokens`` on /openai/v1 and /v1.

It answers ``{"object": "response.input_tokens", "input_tokens": N}``, the shape of OpenAI's
"Get input token counts" reference (openai-node ``InputTokenCountResponse``, read 2026), with N the
prompt tokens a Responses request with the same body would bill here: the same parsing, images
and counting (:func:`vizlab.local.replies.completion.count_prompt`), no quota and no answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from vizlab.local.http.depends import CHAT_BODY, V1, backend_state
from vizlab.local.http.intake import deployment_not_found
from vizlab.local.replies.completion import count_prompt
from vizlab.local.replies.responses import ResponseStore, parse_responses_request
from vizlab.local.routes.responses import read_file_of
from vizlab.local.requests.validation import parse_chat_request
from vizlab.local.samples import origin_of

__all__ = ["router", "INPUT_TOKENS_OBJECT"]

INPUT_TOKENS_OBJECT = "response.input_tokens"
# Fields of a create-response body that do not change the input (the count ignores them).
_OUTPUT_ONLY = ("max_output_tokens", "stream", "store", "background", "metadata", "user", "service_tier")


router = APIRouter()


async def count_input_tokens(request: Request, version: str | None = Depends(V1), body: Any = Depends(CHAT_BODY)) -> Any:
    state = backend_state(request)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in _OUTPUT_ONLY}
        body["store"] = False  # counting stores nothing
    store: ResponseStore = state.responses if state.responses is not None else ResponseStore()
    parsed = parse_responses_request(body, store, read_file_of(state))
    if parsed.model not in state.config.deployments:
        raise deployment_not_found(parsed.model, state.config)
    chat = parse_chat_request({"messages": parsed.messages}, api_version=None, require_model=False)
    tokens = await count_prompt(state, chat, parsed.model, origin=origin_of(request))
    return JSONResponse({"object": INPUT_TOKENS_OBJECT, "input_tokens": tokens})


for _prefix in ("/openai/v1", "/v1"):
    router.add_api_route(
        f"{_prefix}/responses/input_tokens", count_input_tokens, methods=["POST"],
        summary=f"Count a response's input tokens ({_prefix.strip('/')})",
    )
