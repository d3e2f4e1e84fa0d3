"""The Responses token-counting route: ``POST {prefix}/responses/input_tokens`` on /openai/v1 and /v1.

It answers ``{"object": "response.input_tokens", "input_tokens": N}``, the shape of OpenAI's
"Get input token counts" reference (openai-node ``InputTokenCountResponse``, read 2026), with N the
prompt tokens a Responses request with the same body would bill here: the same parsing, images
and counting (:func:`vizlab.local.replies.completion.count_prompt`), no quota and no answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from vizlab.local.config import BackendState
from vizlab.local.http.apiversion import check_v1_api_version
from vizlab.local.http.intake import authenticate, deployment_not_found, read_json
from vizlab.local.replies.completion import count_prompt
from vizlab.local.replies.responses import ResponseStore, not_found, parse_responses_request
from vizlab.local.requests.validation import parse_chat_request
from vizlab.local.samples import origin_of

__all__ = ["add_input_tokens_routes", "INPUT_TOKENS_OBJECT"]

INPUT_TOKENS_OBJECT = "response.input_tokens"
# Fields of a create-response body that do not change the input (the count ignores them).
_OUTPUT_ONLY = ("max_output_tokens", "stream", "store", "background", "metadata", "user", "service_tier")


def add_input_tokens_routes(app: FastAPI, state: BackendState) -> None:
    """Mount ``POST /openai/v1/responses/input_tokens`` and ``/v1/responses/input_tokens``."""
    config = state.config

    def read_file(file_id: str) -> tuple[bytes, str]:
        files = getattr(app.state, "vizlab_batches", None)
        if files is None:
            raise not_found(file_id, "file_id")
        record = files.get_file(file_id)
        return record.data, record.filename

    async def count(request: Request) -> Response:
        body = await read_json(request, config.body_limit)
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in _OUTPUT_ONLY}
            body["store"] = False  # counting stores nothing
        store: ResponseStore = getattr(app.state, "vizlab_responses", None) or ResponseStore()
        parsed = parse_responses_request(body, store, read_file)
        if parsed.model not in config.deployments:
            raise deployment_not_found(parsed.model, config)
        chat = parse_chat_request({"messages": parsed.messages}, api_version=None, require_model=False)
        tokens = await count_prompt(state, chat, parsed.model, origin=origin_of(request))
        return JSONResponse({"object": INPUT_TOKENS_OBJECT, "input_tokens": tokens})

    for prefix in ("/openai/v1", "/v1"):

        @app.post(f"{prefix}/responses/input_tokens", summary=f"Count a response's input tokens ({prefix.strip('/')})")
        async def count_input_tokens(
            request: Request, api_version: str | None = Query(None, alias="api-version")
        ) -> Any:
            authenticate(request, config)
            check_v1_api_version(api_version)
            return await count(request)
