"""Reading a request: the key (api-key header or Bearer), the deployment, the body (bounded).

Shared by every route (chat, models, files, batches), so they all refuse the same way.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from vizlab.local.config import BackendConfig
from vizlab.local.http.errors import (
    AZURE_401_MESSAGE,
    AZURE_401_MISSING_MESSAGE,
    AZURE_DEPLOYMENT_NOT_FOUND_MESSAGE,
    AzureError,
    bad_request,
)

__all__ = ["authenticate", "deployment_not_found", "parse_json", "read_body", "read_json", "too_large"]


def authenticate(request: Request, config: BackendConfig) -> None:
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



def deployment_not_found(name: str, config: BackendConfig) -> AzureError:
    shown = name if len(name) <= 80 else name[:77] + "..."
    return AzureError(
        404,
        "DeploymentNotFound",
        f"{AZURE_DEPLOYMENT_NOT_FOUND_MESSAGE} (vizlab local backend: no deployment {shown!r}; "
        f"deployments here: {', '.join(config.deployments)}.)",
        param=None,
        type=None,
    )


def unknown_model(name: str, config: BackendConfig) -> AzureError:
    """Azure v1's answer to a model it has no deployment of: 400 ``unknown_model`` (recorded:
    tests/data/recordings, the v1 exchange with an unknown model; message "Unknown model: x").
    The dated routes keep 404 ``DeploymentNotFound`` (the deployment is in their path)."""
    shown = name if len(name) <= 80 else name[:77] + "..."
    detail = (f"vizlab local backend: no deployment {shown!r}; deployments here: {', '.join(config.deployments)}."
              ).encode("ascii", "backslashreplace").decode("ascii")
    return AzureError(400, "unknown_model", f"Unknown model: {shown}", param="model",
                      headers={"x-vizlab-detail": detail})


def missing_model(path: str, name: str, config: BackendConfig) -> AzureError:
    """Azure v1 (``/openai/v1/...``) answers 400 ``unknown_model``; OpenAI's ``/v1`` keeps the 404."""
    return unknown_model(name, config) if path.startswith("/openai/v1/") else deployment_not_found(name, config)


async def read_body(request: Request, limit: int, too_large: Callable[[int], AzureError]) -> bytes:
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


# Bodies bigger than this are parsed in a worker thread, so the event loop keeps serving others
# (/healthz, small requests) meanwhile. Below it the thread hop costs more than the parse.
THREADED_PARSE_BYTES = 256 * 1024


def parse_json(raw: bytes) -> Any:
    """``json.loads`` without NaN/Infinity (not JSON); raises the service's 400 on bad JSON."""
    try:
        # UTF-8 only, as the service reads bodies (RFC 8259 section 8.1): json.loads would sniff and
        # accept UTF-16/32, which the service answers with this 400.
        return json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as e:
        raise bad_request(
            "BadRequest",
            "We could not parse the JSON body of your request. The API expects a JSON object "
            "(Content-Type: application/json); send it with json=... in requests, or let the openai SDK build it. "
            f"Parser said: {type(e).__name__}.",
        ) from e


async def read_json(request: Request, limit: int, parse: Callable[[bytes], Any] | None = None) -> Any:
    """The JSON body, read up to ``limit`` bytes (413 beyond), parsed off the event loop when big.

    The read is stream-limited (a body over ``limit`` is refused as soon as it gets there, whatever
    Content-Length said). json.loads holds the GIL, so a 60 MB body still slows the loop while it
    is parsed (~0.4 s on the reference machine); in a thread the loop at least gets its turns
    between the other threads' work, and nothing else (filter, tokens, analysis) runs on it.
    """
    raw = await read_body(request, limit, too_large)
    parse = parse or parse_json  # another parser: a seam for tests (BackendState.parse_json)
    if len(raw) > THREADED_PARSE_BYTES:
        return await run_in_threadpool(parse, raw)
    return parse(raw)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def too_large(limit: int) -> AzureError:
    return AzureError(
        413,
        "RequestEntityTooLarge",
        f"The request body is over the local backend's limit of {limit:,} bytes. Send fewer or smaller images.",
        type="invalid_request_error",
    )

