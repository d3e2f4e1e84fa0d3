"""The built-in backend: Azure OpenAI's Chat Completions wire protocol on a loopback port.

What it emulates (routes, api-version, api-key / Bearer auth, validation and Azure error JSON,
content-filter fields, usage, streaming, RPM/TPM quotas) follows the service; what answers is
:class:`vizlab.local.analyst.Analyst`, a deterministic local vision analyst that names itself
``vizlab-local-analyst`` and never claims to be GPT-4o.

Design choices, each a trade-off:

* The JSON body is parsed and validated by hand (:mod:`vizlab.local.validation`), so every
  malformed body gets the service's status and message instead of a pydantic error. The OpenAPI
  document still describes the body (``openapi_extra``) so fuzzers can target it.
* ``api-version`` is required on the deployment route. Accepted: any well-formed
  ``YYYY-MM-DD`` or ``YYYY-MM-DD-preview`` that is a real date on or after 2023-03-15 (the first
  Chat Completions version). Anything else gets **404 "Resource not found"**, the status Azure
  gives for an unknown version, so a client's error mapping is exercised as it would be against
  Azure, but with a message that says what was wrong and lists known versions.
* CPU work (image decoding, token estimates, OCR) runs in the threadpool; simulated latency is
  ``asyncio.sleep``; so concurrent clients are served while one image is being read.
* Each deployment's token model (:meth:`BackendConfig.token_model_for`) has the service's limits
  (:mod:`vizlab.local.limits`): ``max_tokens`` over its output limit and prompts over its context
  window get the service's 400s. The prompt is counted once; that count is also ``usage``.
* A client that hangs up mid-upload ends its request quietly, and :meth:`LocalBackend.stop` is
  orderly (:mod:`vizlab.local.lifecycle`): a grace period, then 503s, no tracebacks in the log.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hmac
import ipaddress
import json
import math
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Any, AsyncIterator, Callable

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from vizlab.errors import VizlabError
from vizlab.local import _deps, samples
from vizlab.local.analyst import Analyst
from vizlab.local.errors import (
    AZURE_401_MESSAGE,
    AZURE_401_MISSING_MESSAGE,
    AZURE_DEPLOYMENT_NOT_FOUND_MESSAGE,
    AzureError,
    bad_request,
)
from vizlab.local.filters import check_prompt, prompt_filter_results, safe_results
from vizlab.local.lifecycle import InFlight, StopMiddleware
from vizlab.local.limits import DEFAULT_LIMITS, ModelLimits, limits_for
from vizlab.local.ratelimit import SlidingWindowLimiter, retry_headers
from vizlab.local.validation import ChatRequest, ImageRef, parse_chat_request

__all__ = ["BackendConfig", "create_app", "LocalBackend", "KNOWN_API_VERSIONS"]

# Versions documented for Azure OpenAI data-plane inference (Azure OpenAI API version lifecycle
# page, learn.microsoft.com, checked 2025); the seeds use 2023-08-01-preview, 2023-12-01-preview
# and 2024-02-15-preview. Other well-formed dates from EARLIEST_API_VERSION on are accepted too.
KNOWN_API_VERSIONS = (
    "2023-05-15",
    "2023-06-01-preview",
    "2023-07-01-preview",
    "2023-08-01-preview",
    "2023-09-01-preview",
    "2023-12-01-preview",
    "2024-02-01",
    "2024-02-15-preview",
    "2024-03-01-preview",
    "2024-04-01-preview",
    "2024-05-01-preview",
    "2024-06-01",
    "2024-07-01-preview",
    "2024-08-01-preview",
    "2024-09-01-preview",
    "2024-10-01-preview",
    "2024-10-21",
    "2024-12-01-preview",
    "2025-01-01-preview",
    "2025-02-01-preview",
    "2025-03-01-preview",
    "2025-04-01-preview",
)
# 2023-03-15-preview: the first api-version with chat completions; the only older data-plane one,
# 2022-12-01, has no chat (betalgo/openai wiki "Azure OpenAI", 2023-05-11). Earlier dates are
# refused as unknown.
EARLIEST_API_VERSION = dt.date(2023, 3, 15)
_API_VERSION = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(-preview)?$")
# The /openai/v1 routes take no dated version; Azure's v1 API accepts these or none at all.
V1_API_VERSIONS = ("v1", "preview", "latest")

# Ranges below as parse_chat_request checks them; sources at that function (vizlab.local.validation).
_DEFAULT_SCHEMA: dict[str, Any] = {
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
                                        "type": {"type": "string", "enum": ["text", "image_url"]},
                                        "text": {"type": "string"},
                                        "image_url": {
                                            "type": "object",
                                            "required": ["url"],
                                            "properties": {
                                                "url": {"type": "string"},
                                                "detail": {"type": "string", "enum": ["auto", "low", "high"]},
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
_CHAT_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _DEFAULT_SCHEMA}}},
    "responses": {
        "400": {"description": "Invalid request (Azure error JSON)"},
        "401": {"description": "Missing or wrong key"},
        "404": {"description": "Unknown deployment or api-version"},
        "429": {"description": "Over the RPM/TPM quota; see retry-after-ms / retry-after"},
    },
}


@dataclass
class BackendConfig:
    """Settings of one local backend. ``api_key=None`` accepts any non-empty key."""

    api_key: str | None = field(default=None, repr=False)  # a key never shows in a repr
    deployments: tuple[str, ...] = ("gpt-4o",)
    # Model whose token rules produce usage on deployments not named after a known model
    # (see token_model_for).
    token_model: str = "gpt-4o"
    latency_s: float = 0.0  # simulated extra latency per request, before the answer
    rpm: int | None = None  # requests-per-minute quota
    tpm: int | None = None  # tokens-per-minute quota (prompt estimate + max_tokens)
    # Azure seeds (03, 2024-08-21): "When uploading images, there is a limit of 10 images per chat request."
    max_images: int = 10
    # OpenAI vision guide (checked 2025): "up to 20MB per image".
    max_image_bytes: int = 20 * 1024 * 1024
    model_name: str = "vizlab-local-analyst"
    # Extras beyond the published API: window of the RPM/TPM quotas (tests shorten it), pause
    # between streamed chunks (so streaming is visible), and the largest body accepted.
    # 60 s: the "per minute" of RPM/TPM. Azure itself resets its TPM count every minute but checks
    # RPM over 1- or 10-s slices ("Understanding rate limits", Azure OpenAI quotas page, as quoted in
    # Microsoft Q&A 1336515, 2023-08, and MicrosoftDocs/azure-docs commit 3d19c32); one 60-s sliding
    # window for both is vizlab's simplification: a burst the service would refuse may pass here.
    rate_window_s: float = 60.0
    stream_chunk_delay_s: float = 0.01
    max_body_bytes: int | None = None  # None: room for max_images images of max_image_bytes
    # Pause between the lines of a batch (vizlab.local.batches), so progress shows and tests can
    # restart a client mid-run.
    batch_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.deployments, str):
            self.deployments = (self.deployments,)
        self.deployments = tuple(self.deployments)
        if not self.deployments:
            raise ValueError("BackendConfig.deployments must name at least one deployment, e.g. ('gpt-4o',)")
        if self.api_key is not None and not self.api_key:
            raise ValueError("BackendConfig.api_key must be None (accept any key) or a non-empty string")
        if not all(isinstance(d, str) and d for d in self.deployments):
            raise ValueError(f"BackendConfig.deployments must be non-empty strings, got {list(self.deployments)!r:.80}")
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"BackendConfig.{name} must be None or a whole number >= 1, got {value!r}")
        for name in ("latency_s", "stream_chunk_delay_s", "batch_delay_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"BackendConfig.{name} must be a number of seconds >= 0, got {value!r}")
        if isinstance(self.rate_window_s, bool) or not isinstance(self.rate_window_s, (int, float)) or not (
            0 < self.rate_window_s < math.inf
        ):
            raise ValueError(f"BackendConfig.rate_window_s must be a positive number of seconds, got {self.rate_window_s!r}")
        for name in ("max_images", "max_image_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BackendConfig.{name} must be a whole number >= 1, got {value!r}")

    def token_model_for(self, deployment: str) -> str:
        """The model whose token rules count usage on ``deployment``: the deployment's own name
        when vizlab.tokens has a rule for it (``gpt-4o-mini``, ``gpt-4o-2024-08-06``...), as a
        deployment named after its model is on Azure; else :attr:`token_model`.

        >>> BackendConfig(deployments=("gpt-4o-mini", "team-a")).token_model_for("gpt-4o-mini")
        'gpt-4o-mini'
        >>> BackendConfig(token_model="gpt-4.1").token_model_for("team-a")
        'gpt-4.1'
        """
        return deployment if _deps.has_token_rule(deployment) else self.token_model

    @property
    def body_limit(self) -> int:
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        # base64 grows data by 4/3; allow 1 MiB of text and JSON around the images.
        return math.ceil(self.max_images * self.max_image_bytes * 4 / 3) + 1024 * 1024


@dataclass
class _State:
    config: BackendConfig
    limiters: dict[str, SlidingWindowLimiter]
    analyst: Analyst


# --- app --------------------------------------------------------------------------------------


def create_app(config: BackendConfig | None = None) -> FastAPI:
    """The ASGI app of the local backend (serve it with uvicorn, or use :class:`LocalBackend`)."""
    config = config or BackendConfig()
    app = FastAPI(
        title="vizlab local backend",
        version="1",
        description=(
            "Azure OpenAI Chat Completions wire protocol, served offline. The model is "
            f"{config.model_name}, a deterministic local vision analyst (OCR, colours, shapes)."
        ),
        docs_url="/docs",
        redoc_url=None,
    )
    limiters = {
        name: SlidingWindowLimiter(rpm=config.rpm, tpm=config.tpm, window_s=config.rate_window_s)
        for name in config.deployments
    }
    state = _State(config=config, limiters=limiters, analyst=Analyst(token_model=config.token_model))
    app.state.vizlab = state
    inflight = InFlight()  # LocalBackend.stop() ends these requests after a grace period
    app.state.vizlab_inflight = inflight
    app.add_middleware(StopMiddleware, inflight=inflight)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up while its body was being read (request.stream()): the connection is
        # gone and there is nobody to answer. Without this handler the exception reaches the
        # catch-all below, which re-raises it and uvicorn logs "Exception in ASGI application".
        return Response(status_code=400)  # uvicorn drops it: the connection is closed

    @app.exception_handler(AzureError)
    async def _azure_error(request: Request, exc: AzureError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "header", "path"))
        message = f"Invalid request: {first.get('msg', 'validation failed')}" + (f" at '{loc}'" if loc else "")
        return bad_request("invalid_request_error", message, loc or None).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = "Resource not found"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        else:
            message = str(exc.detail)
        return AzureError(exc.status_code, str(exc.status_code), message, type=None).response()

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        # Only a bug gets here: validation is total. Say so, without echoing request data.
        return AzureError(
            500,
            "InternalServerError",
            f"The vizlab local backend hit an internal error ({type(exc).__name__}). This is a bug in vizlab; "
            "please report it with the request that caused it.",
            type="server_error",
        ).response()

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": config.model_name, "deployments": list(config.deployments)}

    @app.post(
        "/openai/deployments/{deployment}/chat/completions",
        openapi_extra=_CHAT_OPENAPI,
        summary="Create a chat completion (Azure route)",
    )
    async def azure_chat(
        request: Request,
        deployment: str,
        api_version: str | None = Query(None, alias="api-version"),
    ) -> Response:
        _authenticate(request, config)
        version = _check_api_version(api_version)
        if deployment not in config.deployments:
            raise _deployment_not_found(deployment, config)
        body = await _read_json(request, config.body_limit)
        chat = parse_chat_request(body, api_version=version, require_model=False)
        return await _complete(state, chat, deployment, version, origin=samples.origin_of(request))

    for prefix in ("/openai/v1", "/v1"):

        @app.post(
            f"{prefix}/chat/completions", openapi_extra=_CHAT_OPENAPI, summary="Create a chat completion (v1 route)"
        )
        async def v1_chat(
            request: Request, api_version: str | None = Query(None, alias="api-version")
        ) -> Response:
            _authenticate(request, config)
            version = _check_v1_api_version(api_version)
            body = await _read_json(request, config.body_limit)
            chat = parse_chat_request(body, api_version=version, require_model=True)
            assert chat.model is not None
            if chat.model not in config.deployments:
                raise _deployment_not_found(chat.model, config)
            return await _complete(state, chat, chat.model, version or "v1", origin=samples.origin_of(request))

        @app.get(f"{prefix}/models", summary="List deployments")
        async def list_models(request: Request) -> dict[str, Any]:
            _authenticate(request, config)
            return {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "vizlab-local"}
                    for name in config.deployments
                ],
            }

    from vizlab.local.batches import add_batch_routes  # here: batches imports this module

    add_batch_routes(app, state)
    samples.add_sample_routes(app)
    return app


# --- request checks ---------------------------------------------------------------------------


def _authenticate(request: Request, config: BackendConfig) -> None:
    key = request.headers.get("api-key")
    if not key:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer":
            key = token.strip()
    if not key:
        raise AzureError(401, "401", AZURE_401_MISSING_MESSAGE, type=None)
    if config.api_key is not None and not hmac.compare_digest(
        key.encode("utf-8", "surrogateescape"), config.api_key.encode("utf-8")
    ):
        raise AzureError(401, "401", AZURE_401_MESSAGE, type=None)


def _version_ok(version: str) -> bool:
    match = _API_VERSION.match(version)
    if not match:
        return False
    try:
        day = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return day >= EARLIEST_API_VERSION


def _check_api_version(version: str | None) -> str:
    if version and _version_ok(version):
        return version
    what = "is missing" if not version else f"{version[:40]!r} is not supported"
    raise AzureError(
        404,
        "404",
        f"Resource not found: the 'api-version' query parameter {what}. Use a dated version such as "
        f"2024-10-21 (GA) or 2025-01-01-preview; 2023-*-preview versions also accept the 2023 content "
        f"format. Known versions: {', '.join(KNOWN_API_VERSIONS)}.",
        param="api-version",
        type=None,
    )


def _check_v1_api_version(version: str | None) -> str | None:
    if version is None or version in V1_API_VERSIONS:
        return None
    return _check_api_version(version)


def _deployment_not_found(name: str, config: BackendConfig) -> AzureError:
    shown = name if len(name) <= 80 else name[:77] + "..."
    return AzureError(
        404,
        "DeploymentNotFound",
        f"{AZURE_DEPLOYMENT_NOT_FOUND_MESSAGE} (vizlab local backend: no deployment {shown!r}; "
        f"deployments here: {', '.join(config.deployments)}.)",
        param=None,
        type=None,
    )


async def _read_body(request: Request, limit: int, too_large: Callable[[int], AzureError]) -> bytes:
    """The raw body, read up to ``limit`` bytes (``too_large(limit)``, a 413, beyond). A client
    that hangs up meanwhile raises starlette's ClientDisconnect, which create_app's handler ends
    quietly (no traceback)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_json(request: Request, limit: int) -> Any:
    """The JSON body, read up to ``limit`` bytes (413 beyond)."""
    raw = await _read_body(request, limit, _too_large)
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as e:
        raise bad_request(
            "BadRequest",
            "We could not parse the JSON body of your request. The API expects a JSON object "
            "(Content-Type: application/json); send it with json=... in requests, or let the openai SDK build it. "
            f"Parser said: {type(e).__name__}.",
        ) from e


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_large(limit: int) -> AzureError:
    return AzureError(
        413,
        "RequestEntityTooLarge",
        f"The request body is over the local backend's limit of {limit:,} bytes. Send fewer or smaller images.",
        type="invalid_request_error",
    )


# --- images -----------------------------------------------------------------------------------

_IMAGE_ERROR_CODES = {
    "data_url": "invalid_image_url",
    "not_image": "invalid_image_format",
    "unsupported": "invalid_image_format",
    "corrupt": "invalid_image",
    "bomb": "invalid_image",
    "too_large": "image_too_large",
}
_FORMATS_HINT = "Send one of the supported formats: ['png', 'jpeg', 'gif', 'webp']."


def _load_images(chat: ChatRequest, config: BackendConfig, origin: str | None = None) -> list[Image.Image]:
    """Decode every image part (in order) or raise the 400 the service would send. ``origin`` is
    this backend's own address: image URLs of its samples there are accepted (vizlab.local.samples)."""
    decoded: list[Image.Image] = []
    for ref in chat.images:
        sample = None if ref.legacy_base64 else samples.sample_name(ref.url, origin, ref.param)
        data = samples.sample_bytes(sample) if sample else _image_bytes(ref)
        try:
            image, mime = _deps.open_checked(data, max_bytes=config.max_image_bytes)
        except _deps.ImageProblem as e:
            hint = _FORMATS_HINT if e.kind in ("not_image", "unsupported", "corrupt") else ""
            raise bad_request(
                _IMAGE_ERROR_CODES.get(e.kind, "invalid_image"),
                f"Invalid image at '{ref.param}': {e.message.rstrip('. ')}. {hint}".strip(),
                ref.param,
            ) from e
        if ref.legacy_base64:
            ref.url = f"data:{mime};base64,{''.join(ref.url.split())}"
        elif sample:  # counted as the downloaded image, as the service counts a fetched URL
            ref.url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        decoded.append(image)
    return decoded


def _image_bytes(ref: ImageRef) -> bytes:
    url = ref.url
    try:
        if ref.legacy_base64:
            return _deps.b64decode_legacy(url)
        head = url[:16].lower()
        if head.startswith(("http://", "https://")):
            raise bad_request(
                "invalid_image_url",
                f"Cannot fetch http(s) images at '{ref.param}': the built-in backend has no internet. "
                "Send a data URL instead (vizlab.to_data_url(...)), or the URL of one of its own sample "
                f"images ({samples.PREFIX}NAME.jpg on its own address; GET {samples.PREFIX} lists them).",
                ref.param,
            )
        if not head.startswith("data:"):
            raise bad_request(
                "invalid_image_url",
                f"Invalid image URL at '{ref.param}': expected a data URL ('data:image/png;base64,...') "
                "or an http(s) URL.",
                ref.param,
            )
        data, declared = _deps.decode_data_url(url)
    except _deps.ImageProblem as e:
        raise bad_request(
            "invalid_image_url", f"Invalid image URL at '{ref.param}': {e.message.rstrip('. ')}.", ref.param
        ) from e
    if not declared.startswith("image/"):
        raise bad_request(
            "invalid_image_format",
            f"Invalid MIME type {declared[:40]!r} at '{ref.param}': only image types are supported. {_FORMATS_HINT}",
            ref.param,
        )
    return data


def _clean_messages(chat: ChatRequest) -> list[dict[str, Any]]:
    """Messages in the current format with data URLs, without our bookkeeping keys."""
    cleaned: list[dict[str, Any]] = []
    for message in chat.messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if "_ref" in part:
                    ref = chat.images[part["_ref"]]
                    parts.append({"type": "image_url", "image_url": {"url": ref.url, "detail": ref.detail}})
                else:
                    parts.append(part)
            message = {**message, "content": parts}
        cleaned.append(message)
    return cleaned


# --- the completion ---------------------------------------------------------------------------


async def _complete(
    state: _State, chat: ChatRequest, deployment: str, api_version: str, *, origin: str | None = None
) -> Response:
    config = state.config
    if len(chat.images) > config.max_images:
        raise bad_request(
            "BadRequest",
            f"Too many images in request: {len(chat.images)} images were provided, but the limit is "
            f"{config.max_images} images per chat request. Send fewer images or split the request.",
            "messages",
        )
    token_model = config.token_model_for(deployment)
    limits_name, limits = limits_for(token_model)
    _check_max_tokens(chat, token_model, limits_name, limits)
    check_prompt(chat.texts)
    decoded = await run_in_threadpool(_load_images, chat, config, origin) if chat.images else []
    messages = _clean_messages(chat)
    try:
        # Counted once: this count is both the context-window check and usage.prompt_tokens.
        prompt_tokens = await run_in_threadpool(_deps.prompt_tokens, messages, token_model)
    except VizlabError as e:  # validation should have caught it; answer 400, not 500
        raise bad_request("BadRequest", f"The request could not be counted: {e}", "messages") from e
    _check_context(prompt_tokens, chat, token_model, limits_name, limits)

    cost = prompt_tokens + (chat.max_tokens or 0)
    admission = state.limiters[deployment].admit(cost)
    if not admission.allowed:
        seconds = max(1, math.ceil(admission.retry_after_s))
        which = "call" if admission.limit_kind == "requests" else "token"
        raise AzureError(
            429,
            "429",
            f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {api_version} "
            f"have exceeded {which} rate limit of your current vizlab local backend quota for deployment "
            f"{deployment!r} (rpm={config.rpm}, tpm={config.tpm}, window {config.rate_window_s:g} s). "
            f"Please retry after {seconds} seconds."
            + (
                f" This request alone needs {cost} tokens (prompt + max_tokens), more than the tpm quota: "
                "lower max_tokens or send a smaller image."
                if config.tpm is not None and cost > config.tpm
                else ""
            ),
            type=None,
            headers=retry_headers(admission.retry_after_s),
        )
    if config.latency_s > 0:
        await asyncio.sleep(config.latency_s)

    text = await run_in_threadpool(state.analyst.answer, messages, max_tokens=chat.max_tokens, decoded=decoded)
    text, finish_reason = _apply_limits(text, chat, token_model)
    completion_tokens = await run_in_threadpool(_deps.text_tokens, text, token_model)
    usage = {  # n choices are n completions
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens * chat.n,
        "total_tokens": prompt_tokens + completion_tokens * chat.n,
    }
    headers = {"x-request-id": str(uuid.uuid4())}
    headers["apim-request-id"] = headers["x-request-id"]
    if admission.remaining_requests is not None:
        headers["x-ratelimit-remaining-requests"] = str(admission.remaining_requests)
    if admission.remaining_tokens is not None:
        headers["x-ratelimit-remaining-tokens"] = str(admission.remaining_tokens)
    # The service's id shape: "chatcmpl-" + 29 characters (e.g. "chatcmpl-9G3RjWu79ipgraHFsTFS9XD1zgjgI"
    # in an Azure response shown in Jayanthkcai/Artificial-Intelligence RESTAPI.md, 2024-04).
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:29]
    created = int(time.time())
    if chat.stream:
        return StreamingResponse(
            _stream(completion_id, created, text, finish_reason, usage, chat, config),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": config.model_name,
        "system_fingerprint": "fp_vizlab_local",
        "prompt_filter_results": prompt_filter_results(),
        "choices": [
            {
                "index": i,
                "finish_reason": finish_reason,
                "logprobs": None,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "content_filter_results": safe_results(),
            }
            for i in range(chat.n)
        ],
        "usage": usage,
    }
    return JSONResponse(body, headers=headers)


def _unlisted_note(token_model: str, limits_name: str | None) -> str:
    """A note for models without published limits here (empty for the listed ones)."""
    if limits_name is not None:
        return ""
    return (
        f" (vizlab local backend: no limits are listed for token model {token_model[:60]!r}; the default "
        f"{DEFAULT_LIMITS.context} context / {DEFAULT_LIMITS.max_output} completion tokens apply.)"
    )


def _check_max_tokens(chat: ChatRequest, token_model: str, limits_name: str | None, limits: ModelLimits) -> None:
    """400 ``invalid_value`` for max_tokens over the model's output limit (vizlab.local.limits)."""
    if chat.max_tokens is None or chat.max_tokens <= limits.max_output:
        return
    name = chat.max_tokens_param
    raise bad_request(
        "invalid_value",
        f"{name} is too large: {chat.max_tokens}. This model supports at most {limits.max_output} completion "
        f"tokens, whereas you provided {chat.max_tokens}." + _unlisted_note(token_model, limits_name),
        name,
    )


def _check_context(
    prompt_tokens: int, chat: ChatRequest, token_model: str, limits_name: str | None, limits: ModelLimits
) -> None:
    """400 ``context_length_exceeded`` when the prompt (plus max_tokens) does not fit the window."""
    note = _unlisted_note(token_model, limits_name)
    if limits.max_input is not None and prompt_tokens > limits.max_input:
        raise bad_request(
            "context_length_exceeded",
            f"Input tokens exceed the configured limit of {limits.max_input:,} tokens. Your messages resulted in "
            f"{prompt_tokens:,} tokens. Please reduce the length of the messages." + note,
            "messages",
        )
    if prompt_tokens > limits.context:
        raise bad_request(
            "context_length_exceeded",
            f"This model's maximum context length is {limits.context} tokens. However, your messages resulted in "
            f"{prompt_tokens} tokens. Please reduce the length of the messages." + note,
            "messages",
        )
    if chat.max_tokens is not None and prompt_tokens + chat.max_tokens > limits.context:
        raise bad_request(
            "context_length_exceeded",
            f"This model's maximum context length is {limits.context} tokens. However, you requested "
            f"{prompt_tokens + chat.max_tokens} tokens ({prompt_tokens} in the messages, {chat.max_tokens} in the "
            "completion). Please reduce the length of the messages or completion." + note,
            "messages",
        )


def _apply_limits(text: str, chat: ChatRequest, model: str) -> tuple[str, str]:
    """Cut at the first stop sequence, then at max_tokens; return (text, finish_reason)."""
    for stop in chat.stop:
        at = text.find(stop)
        if at >= 0:
            text = text[:at]
    if chat.max_tokens is not None:
        cut = _deps.truncate_to_tokens(text, chat.max_tokens, model)
        if cut != text:
            return cut, "length"
    return text, "stop"


def _stream_pieces(text: str, words_per_piece: int = 3) -> list[str]:
    """Split text into small pieces that join back to exactly ``text``."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words_per_piece]) for i in range(0, len(tokens), words_per_piece)]


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


async def _stream(
    completion_id: str,
    created: int,
    text: str,
    finish_reason: str,
    usage: dict[str, int],
    chat: ChatRequest,
    config: BackendConfig,
) -> AsyncIterator[bytes]:
    # Azure's stream opens with a chunk that carries only the prompt filter results.
    yield _sse(
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
        return _sse(
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
        for piece in _stream_pieces(text):
            yield chunk(index, {"content": piece}, None, safe_results())
            await asyncio.sleep(config.stream_chunk_delay_s)
        yield chunk(index, {}, finish_reason, {})
    if chat.include_usage:
        yield _sse(
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


# --- running it -------------------------------------------------------------------------------


def require_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address (or 'localhost'); refuse anything else."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(
        f"The vizlab local backend binds loopback addresses only (127.0.0.1, ::1, localhost), not {host!r}: "
        "it accepts any key by default and is meant for this machine alone."
    )


# Seconds LocalBackend.stop() lets requests in flight finish before answering them 503.
STOP_GRACE_S = 1.0


class LocalBackend:
    """The local backend on a loopback port, served by uvicorn in a daemon thread.

    >>> with LocalBackend(api_key="k") as backend:       # doctest: +SKIP
    ...     print(backend.url)
    http://127.0.0.1:54321
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **config_fields: Any) -> None:
        known = {f.name for f in fields(BackendConfig)}
        unknown = sorted(set(config_fields) - known)
        if unknown:
            raise TypeError(f"LocalBackend got unknown settings {unknown}; known: {sorted(known)}")
        self._host = require_loopback(host)
        self._port = int(port)
        self._config = BackendConfig(**config_fields)
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._app: FastAPI | None = None
        self._lock = threading.Lock()

    @property
    def config(self) -> BackendConfig:
        return self._config

    @property
    def port(self) -> int:
        """The port served on. With ``port=0`` the first read reserves a free port (the socket
        that ``start()`` then serves on); once known it is only reported, so reading ``url``
        after :meth:`stop` does not bind a socket that nothing would close."""
        with self._lock:
            if self._port:
                return self._port
            return self._bind().getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    def _bind(self) -> socket.socket:
        if self._sock is None:
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self._host, self._port))
            except OSError:
                sock.close()
                raise
            self._sock = sock
            self._port = sock.getsockname()[1]  # a restart after stop() reuses the same port
        return self._sock

    def start(self) -> "LocalBackend":
        """Serve in a daemon thread; return once connections are accepted. Idempotent."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            sock = self._bind()
            app = create_app(self._config)
            uv_config = uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ws="none",
                # A backstop only: stop() ends requests itself after STOP_GRACE_S (see stop()).
                timeout_graceful_shutdown=math.ceil(STOP_GRACE_S) + 10,
            )
            server = uvicorn.Server(uv_config)
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name=f"vizlab-local-{self._port}", daemon=True
            )
            thread.start()
            deadline = time.monotonic() + 15
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    server.should_exit = True
                    self._close_socket()
                    raise RuntimeError(f"the vizlab local backend did not start on {self._host}:{self._port}")
                time.sleep(0.005)
            self._server, self._thread, self._app = server, thread, app
            return self

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop serving, end the batch workers and release the port. Safe to call twice.

        New connections are refused at once; requests in flight get ``grace_s`` seconds to
        finish, then are answered 503 (a stream is ended) without an error in the log; batch
        workers are stopped (their batches end as cancelled, completed lines kept). Returns in
        about ``grace_s`` seconds plus the time a request busy in a worker thread needs.
        """
        with self._lock:
            server, thread, app = self._server, self._thread, self._app
            self._server = self._thread = self._app = None
            inflight: InFlight | None = getattr(app.state, "vizlab_inflight", None) if app is not None else None
            if inflight is not None:
                inflight.stopping.set()
            if server is not None:
                # uvicorn's own timeout (it logs an ERROR when it fires) must not come first.
                server.config.timeout_graceful_shutdown = math.ceil(max(0.0, grace_s)) + 10
                server.should_exit = True
            if thread is not None:
                # uvicorn checks should_exit every 0.1 s, then waits for open requests.
                thread.join(timeout=max(0.0, grace_s) + 0.2)
                if thread.is_alive() and inflight is not None:
                    inflight.cancel_all()
                thread.join(timeout=math.ceil(max(0.0, grace_s)) + 15)
            store = getattr(app.state, "vizlab_batches", None) if app is not None else None
            if store is not None:
                store.stop(timeout=10)
            self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "LocalBackend":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"LocalBackend({self._host}:{self._port}, {state}, deployments={list(self._config.deployments)})"
