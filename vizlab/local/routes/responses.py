"""The Responses API routes of the built-in backend (objects, store, events:
:mod:`vizlab.local.replies.responses`).

``POST /openai/v1/responses`` and ``/v1/responses`` (no api-version), Azure's dated
``POST /openai/responses?api-version=`` (2025-03-01 and later), and on each prefix ``GET`` /
``DELETE`` ``responses/{id}`` and ``GET responses/{id}/input_items``. A request is answered by the
Chat Completions pipeline (:func:`vizlab.local.replies.completion.run_completion`), then written as a
response.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from vizlab.local.state import BackendState
from vizlab.local.http.apiversion import check_api_version
from vizlab.local.http.depends import (
    CHAT_BODY,
    Page,
    api_access,
    backend_state,
    checked_page,
    checked_version,
    mount,
    paged_access,
    v1_version,
)
from vizlab.local.http.errors import AzureError
from vizlab.local.http.intake import missing_model
from vizlab.local.replies.completion import run_completion
from vizlab.local.replies.filters import responses_filters
from vizlab.local.replies.responses import (
    NO_IMAGE_ANSWER,
    StoredResponse,
    context_after,
    new_response_id,
    not_found,
    output_items,
    parse_responses_request,
    response_object,
    stream_events,
    usage_object,
)
from vizlab.local.replies.streaming import sse_event, stream_pieces
from vizlab.local.requests.fields import RESPONSES_FIELDS
from vizlab.local.requests.validation import parse_chat_request
from vizlab.local.samples import origin_of

__all__ = ["router", "read_file_of", "RESPONSES_EARLIEST_API_VERSION"]


_RESPONSES_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "input"],
                    "properties": {
                        "model": {"type": "string"},
                        "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
                        "instructions": {"type": "string"},
                        "max_output_tokens": {"type": "integer", "minimum": 16},
                        "previous_response_id": {"type": "string"},
                        "store": {"type": "boolean"},
                        "stream": {"type": "boolean"},
                    },
                }
            }
        },
    },
    "responses": {
        "400": {"description": "Invalid request (Azure error JSON)"},
        "401": {"description": "Missing or wrong key"},
        "404": {"description": "Unknown deployment or api-version"},
        "413": {"description": "Body over the backend's limit"},
        "429": {"description": "Over the RPM/TPM quota"},
    },
}
_ID_OPENAPI: dict[str, Any] = {
    "responses": {
        "400": {"description": "Invalid query parameter (Azure error JSON)"},
        "401": {"description": "Missing or wrong key"},
        "404": {"description": "No such response (or unknown api-version)"},
    }
}


router = APIRouter()


def read_file_of(state: BackendState) -> Callable[[str], tuple[bytes, str]]:
    """``read_file(file_id) -> (bytes, filename)`` over the Files store (404 for an unknown id)."""

    def read_file(file_id: str) -> tuple[bytes, str]:
        if state.files is None:
            raise not_found(file_id, "file_id")
        record = state.files.get_file(file_id)
        return record.data, record.filename

    return read_file


async def create_response(request: Request, version: str = Depends(checked_version),
                          body: Any = Depends(CHAT_BODY)) -> Response:  # fmt: skip
    state = backend_state(request)
    config, store = state.config, state.responses
    parsed = parse_responses_request(body, store, read_file_of(state))
    request.state.vizlab_deployment = parsed.model  # its quota goes in the x-ratelimit-* headers
    if parsed.model not in config.deployments:
        raise missing_model(request.url.path, parsed.model, config)
    chat_body: dict[str, Any] = {"messages": parsed.messages}
    if parsed.max_output_tokens is not None:
        chat_body["max_completion_tokens"] = parsed.max_output_tokens
    chat = parse_chat_request(chat_body, api_version=None, require_model=False)
    # Image errors name the Responses path of the image, not the Chat one it became.
    new_refs = chat.images[len(chat.images) - len(parsed.image_params):] if parsed.image_params else []
    for ref, param in zip(new_refs, parsed.image_params):
        ref.param = param
    chat.options = parsed.options
    chat.body = body
    done = await run_completion(
        state, chat, parsed.model, version, origin=origin_of(request), fields=RESPONSES_FIELDS,
        operation="Responses_Create",
        no_image_answer=NO_IMAGE_ANSWER,
    )
    status = "incomplete" if done.shaped.finish_reason == "length" else "completed"
    response_id = new_response_id()
    final = response_object(
        parsed,
        response_id=response_id,
        created_at=int(time.time()),
        model_name=config.reported_model(parsed.model),
        status=status,
        output=output_items(done.shaped, status),
        usage=usage_object(done.prompt_tokens, done.completion_tokens, done.cached_tokens, done.reasoning_tokens),
    )
    filters = responses_filters(config.token_model_for(parsed.model), bool(chat.images))
    if filters is not None:  # the filter shape is data, keyed by model and route (vizlab.local.replies.filters)
        final["content_filters"] = filters
    if parsed.store:
        store.put(StoredResponse(final, context_after(parsed, done.shaped), parsed.new_items))
    if parsed.stream:
        async def events() -> AsyncIterator[bytes]:
            for event in stream_events(final, done.shaped, stream_pieces):
                yield sse_event(event["type"], event)
                if event["type"].endswith(".delta"):
                    await asyncio.sleep(config.stream_chunk_delay_s)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={**done.headers, "cache-control": "no-cache"}
        )
    return JSONResponse(final, headers=done.headers)


async def get_response(request: Request, response_id: str) -> Response:
    return JSONResponse(backend_state(request).responses.get(response_id).body)


async def delete_response(request: Request, response_id: str) -> Response:
    backend_state(request).responses.delete(response_id)
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


async def list_input_items(request: Request, response_id: str, page: Page | None = Depends(checked_page)) -> Response:
    assert page is not None  # set by paged_access, which ran first
    items = list(backend_state(request).responses.get(response_id).input_items)
    if page.order == "desc":  # the service lists newest first by default
        items.reverse()
    items = items[: max(1, min(page.limit, 100))]
    return JSONResponse(
        {
            "object": "list",
            "data": items,
            "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None,
            "has_more": False,
        }
    )


# Azure's Responses API arrived with api-version 2025-03-01-preview on the dated routes (Azure OpenAI
# "Responses API" how-to, 2025-03, as recalled: not verified against a stored copy); the v1 routes
# need no version ("The v1 API is required to access the latest features", same page, 2026).
RESPONSES_EARLIEST_API_VERSION = "2025-03-01"


def _responses_version(api_version: str | None) -> str:
    version = check_api_version(api_version)
    if version[:10] < RESPONSES_EARLIEST_API_VERSION:
        # The service answers 400 here, not 404 (issue 20's replayed recordings): "Azure OpenAI Responses
        # API is enabled only for api-version 2025-03-01-preview and later" (Azure's message as quoted in
        # client issues, 2025; vizlab's advice appended).
        raise AzureError(
            400,
            "BadRequest",
            "Azure OpenAI Responses API is enabled only for api-version 2025-03-01-preview and later (not "
            f"{version}; or use the v1 route /openai/v1/responses, no api-version).",
            param="api-version",
            type=None,
        )
    return version


_ROUTES = (
    ("POST", "/responses", create_response, "Create a response"),
    ("GET", "/responses/{response_id}", get_response, "Retrieve a response"),
    ("DELETE", "/responses/{response_id}", delete_response, "Delete a response"),
)
_EXTRA = {"/responses": {"openapi_extra": _RESPONSES_OPENAPI}, "/responses/{response_id}": {"openapi_extra": _ID_OPENAPI},
          "/responses/{response_id}/input_items": {"openapi_extra": _ID_OPENAPI}}  # fmt: skip
for _prefix, _version_of, _tag in (("/openai/v1", v1_version, "openai/v1"), ("/v1", v1_version, "v1"),
                                   ("/openai", _responses_version, "Azure")):  # fmt: skip
    mount(router, _prefix, api_access(_version_of), _tag, _ROUTES, **_EXTRA)
    mount(router, _prefix, paged_access(_version_of), _tag,
          (("GET", "/responses/{response_id}/input_items", list_input_items, "List a response's input items"),), **_EXTRA)
