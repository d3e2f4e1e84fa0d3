"""The ASGI app of the built-in backend: error handlers, health check, the stores and the routers.

Each resource has its own ``APIRouter`` module under :mod:`vizlab.local.routes` (chat, models,
files, batches, responses, input_tokens), its shared checks (key, api-version, body) being
dependencies (:mod:`vizlab.local.http.depends`); the routers reach the state through the request.
A new API is a new router, included below.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from vizlab.local.analyst.answer import Analyst
from vizlab.local.config import BackendConfig
from vizlab.local.state import BackendState
from vizlab.local.http.errors import AzureError, bad_request
from vizlab.local.http.gateway import GatewayMiddleware
from vizlab.local.http.lifecycle import InFlight, StopMiddleware
from vizlab.local.http.openapi import install as install_openapi
from vizlab.local.http.ratelimit import SlidingWindowLimiter
from vizlab.local.replies.batch_store import BatchStore
from vizlab.local.replies.responses import ResponseStore
from vizlab.local import samples
from vizlab.local.routes import batches, chat, counting, files, input_tokens, models, responses

__all__ = ["create_app"]


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
    state = BackendState(config=config, limiters=limiters, analyst=Analyst(token_model=config.token_model))
    app.state.vizlab = state
    inflight = InFlight()  # LocalBackend.stop() ends these requests after a grace period
    app.state.vizlab_inflight = inflight
    app.add_middleware(StopMiddleware, inflight=inflight)
    # Added last, so outermost: it sees every response, the 503s of a stop included.
    app.add_middleware(GatewayMiddleware, state=state)

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
        # The pid lets a kernel check that a recorded shared backend is still this process.
        return {"status": "ok", "model": config.model_name, "deployments": list(config.deployments), "pid": os.getpid()}

    # The stores the routers share, also on app.state (LocalBackend.stop() ends the batch workers).
    state.files = app.state.vizlab_batches = BatchStore(state)
    state.responses = app.state.vizlab_responses = ResponseStore()
    routers = (chat.router, models.router, files.router, batches.router, responses.router, input_tokens.router,
               samples.router, counting.router)  # fmt: skip
    for router in routers:
        app.include_router(router)
    install_openapi(app)  # every status each route can answer (vizlab.local.http.openapi)
    return app
