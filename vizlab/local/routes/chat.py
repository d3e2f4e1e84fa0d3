"""The Chat Completions routes: the dated deployments route and ``/openai/v1/chat/completions``.

Checks in order, each a dependency (:mod:`vizlab.local.http.depends`): key, api-version, the
deployment in the path (dated route), the body; then the request (:mod:`vizlab.local.requests.validation`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from vizlab.local.http.depends import CHAT_BODY, DATED, V1, backend_state
from vizlab.local.http.intake import deployment_not_found, missing_model
from vizlab.local.replies.completion import complete
from vizlab.local.requests.validation import parse_chat_request
from vizlab.local.samples import origin_of

__all__ = ["CHAT_OPENAPI", "CHAT_REQUEST_SCHEMA", "router"]

# Ranges below as parse_chat_request checks them; sources at that function (vizlab.local.requests.validation).
CHAT_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "model": {"type": "string", "description": "Deployment name (required on /v1 routes)."},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
                    "content": {
                        "oneOf": [
                            {"type": "string"},
                            {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "type": {"type": "string", "enum": ["text", "image_url", "file"]},
                                        "text": {"type": "string"},
                                        "image_url": {
                                            "type": "object",
                                            "required": ["url"],
                                            "properties": {
                                                "url": {"type": "string"},
                                                "detail": {"type": "string", "enum": ["auto", "low", "high"]},
                                            },
                                        },
                                        "file": {  # a document (PDF): vizlab.local.documents
                                            "type": "object",
                                            "properties": {
                                                "filename": {"type": "string"},
                                                "file_data": {"type": "string"},
                                                "file_id": {"type": "string"},
                                            },
                                        },
                                    },
                                },
                            },
                        ]
                    },
                },
            },
        },
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "n": {"type": "integer", "minimum": 1, "maximum": 128},
        "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
    },
}
CHAT_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": CHAT_REQUEST_SCHEMA}}},
    "responses": {
        "400": {"description": "Invalid request (Azure error JSON)"},
        "401": {"description": "Missing or wrong key"},
        "404": {"description": "Unknown deployment or api-version"},
        "429": {"description": "Over the RPM/TPM quota; see retry-after-ms / retry-after"},
    },
}



router = APIRouter()


async def _azure_deployment(request: Request, deployment: str) -> str:
    """The deployment in the path, checked before the body is read (404 ``DeploymentNotFound``)."""
    request.state.vizlab_deployment = deployment  # its quota goes in the x-ratelimit-* headers
    config = backend_state(request).config
    if deployment not in config.deployments:
        raise deployment_not_found(deployment, config)
    return deployment


@router.post(
    "/openai/deployments/{deployment}/chat/completions",
    openapi_extra=CHAT_OPENAPI,
    summary="Create a chat completion (Azure route)",
)
async def azure_chat(
    request: Request,
    version: str = Depends(DATED),
    deployment: str = Depends(_azure_deployment),
    body: Any = Depends(CHAT_BODY),
) -> Response:
    chat = parse_chat_request(body, api_version=version, require_model=False)
    return await complete(backend_state(request), chat, deployment, version, origin=origin_of(request))


async def v1_chat(request: Request, version: str | None = Depends(V1), body: Any = Depends(CHAT_BODY)) -> Response:
    state = backend_state(request)
    chat = parse_chat_request(body, api_version=version, require_model=True)
    assert chat.model is not None
    request.state.vizlab_deployment = chat.model
    if chat.model not in state.config.deployments:
        raise missing_model(request.url.path, chat.model, state.config)
    return await complete(state, chat, chat.model, version or "v1", origin=origin_of(request))


for _prefix in ("/openai/v1", "/v1"):
    router.add_api_route(
        f"{_prefix}/chat/completions", v1_chat, methods=["POST"], openapi_extra=CHAT_OPENAPI,
        summary="Create a chat completion (v1 route)",
    )
