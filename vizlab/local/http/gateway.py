"""What Azure's gateway does around every route: request ids, quota headers, Host check, pacing.

One pure ASGI middleware, outermost, so it sees every response (errors included): it adds request
ids and ``x-ratelimit-*`` headers, refuses a foreign ``Host`` with 421 (DNS rebinding), and with
``max_concurrency`` answers excess chat requests at once with Azure's 429. Trade-off: one counter
in the event loop (no lock), and the 429 is decided before the body is read.
Details: docs/internals.md#local
"""

from __future__ import annotations

import ipaddress
import math
import time
import uuid
from typing import Any, MutableMapping

from vizlab.local.analyst.ocr import usable_cores
from vizlab.local.config import BackendConfig
from vizlab.local.state import BackendState
from vizlab.local.http.errors import AzureError
from vizlab.local.http.ratelimit import retry_headers

__all__ = ["GatewayMiddleware", "host_allowed", "is_inference", "DEPLOYMENT_STATE_KEY", "ANALYST_HEADER"]

# Key in the ASGI scope's "state" (request.state) where a route records its deployment.
DEPLOYMENT_STATE_KEY = "vizlab_deployment"
ANALYST_HEADER = "x-vizlab-analyst"

# 421 Misdirected Request: RFC 9110 section 15.5.20, "the server is not able to produce a response
# for the target URI"; sent for a Host that is not loopback or allowed (DNS rebinding).
MISDIRECTED_MESSAGE = (
    "Misdirected request: Host {host!r} is not this backend. The vizlab local backend answers only "
    "requests addressed to a loopback address or localhost (a guard against DNS rebinding from web "
    "pages). Use http://127.0.0.1:PORT, or start it with --allowed-host NAME for a name of your own."
)


def _host_name(value: str) -> str:
    """The host part of a Host header value: '[::1]:8000' -> '::1', 'a.b:80' -> 'a.b'."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        return value.rsplit(":", 1)[0]
    return value


def host_allowed(value: str | None, allowed: tuple[str, ...] = ()) -> bool:
    """True for a missing Host, a loopback address, ``localhost`` or one of ``allowed``.

    >>> host_allowed("127.0.0.1:8000"), host_allowed("[::1]:80"), host_allowed("localhost")
    (True, True, True)
    >>> host_allowed("rebind.example.com:8000"), host_allowed("myhost:80", ("myhost",))
    (False, True)
    """
    if value is None:
        return True
    name = _host_name(value).lower().rstrip(".")
    if name == "localhost" or name in {a.lower().strip("[]") for a in allowed}:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_inference(method: str, path: str) -> bool:
    """A request that runs the model: chat completions or a new response (paced and quota'd)."""
    return method == "POST" and (path.endswith("/chat/completions") or path.endswith("/responses"))


def _operation(path: str) -> str:
    # "ChatCompletions_Create" is the operation id Azure's 429 names (vizlab.local.http.ratelimit). The
    # Responses one is not quoted in any source we read; named after the same pattern.
    return "ChatCompletions_Create" if path.endswith("/chat/completions") else "Responses_Create"


_CORES = usable_cores()

class GatewayMiddleware:
    """Pure ASGI middleware: ids and quota headers on every response, Host check, concurrency limit."""

    def __init__(self, app: Any, state: BackendState) -> None:
        self.app = app
        self.state = state
        self.active = 0  # inference requests in flight (event-loop only)
        self._mean_s = 1.0  # running mean of inference request durations, for retry-after
        self._finished = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config: BackendConfig = self.state.config
        request_id = str(uuid.uuid4())
        started = False

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": self._headers(scope, message.get("headers", []), request_id)}
            await send(message)

        host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
        if not host_allowed(host, config.allowed_hosts):
            shown = (host or "")[:80]
            error = AzureError(421, "421", MISDIRECTED_MESSAGE.format(host=shown), type=None)
            await error.response()(scope, receive, send_with_headers)
            return

        self.state.open_requests += 1
        self.state.last_active = time.monotonic()
        try:
            await self._serve(scope, receive, send_with_headers, config, lambda: started)
        finally:
            self.state.open_requests -= 1
            self.state.last_active = time.monotonic()

    async def _serve(self, scope: dict[str, Any], receive: Any, send_with_headers: Any, config: BackendConfig,
                     started: Any) -> None:
        paced = config.max_concurrency is not None and is_inference(scope["method"], scope["path"])
        if paced and self.active >= (config.max_concurrency or 0):
            await self._too_busy(scope, config).response()(scope, receive, send_with_headers)
            return
        if paced:
            self.active += 1
        began = time.monotonic()
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # a bug: answer like the app's handler, with the headers, then re-raise
            if not started():
                error = AzureError(
                    500,
                    "InternalServerError",
                    f"The vizlab local backend hit an internal error ({type(exc).__name__}). This is a bug in "
                    "vizlab; please report it with the request that caused it.",
                    type="server_error",
                )
                await error.response()(scope, receive, send_with_headers)
            raise
        finally:
            if paced:
                self.active -= 1
                self._finished += 1
                weight = 1.0 / min(self._finished, 20)  # mean of the first 20, then a moving average
                self._mean_s += weight * ((time.monotonic() - began) - self._mean_s)

    def _too_busy(self, scope: dict[str, Any], config: BackendConfig) -> AzureError:
        # The time the requests in flight need to drain at the running mean request time, spread
        # over the cores they share: a hint that grows with the load, so waiting clients do not
        # come back in a storm while the burst is still being served.
        wait_s = min(max(self._mean_s * max(1, self.active) / _CORES, 0.05), 60.0)
        version = next(
            (p.partition("=")[2] for p in scope.get("query_string", b"").decode("latin-1").split("&")
             if p.startswith("api-version=")),
            "v1",
        )  # fmt: skip
        return AzureError(
            429,
            "429",
            f"Requests to the {_operation(scope['path'])} Operation under Azure OpenAI API version {version[:40]} "
            f"have exceeded the concurrency limit of the vizlab local backend ({config.max_concurrency} requests "
            f"in flight). Please retry after {max(1, math.ceil(wait_s))} second(s).",
            type=None,
            headers=retry_headers(wait_s),
        )

    def _headers(self, scope: dict[str, Any], headers: Any, request_id: str) -> list[tuple[bytes, bytes]]:
        out = list(headers)
        present = {k.lower() for k, _ in out}
        # Both ids, as on a live Azure response (EvolvingPrograms/oaib#11, 2024-03, headers quoted).
        extra = {"x-request-id": request_id, "apim-request-id": request_id}
        # The wire's `model` names the emulated registry model; this header names what answered.
        extra[ANALYST_HEADER] = self.state.config.model_name
        deployment = scope.get("state", {}).get(DEPLOYMENT_STATE_KEY)
        limiters = self.state.limiters
        limiter = limiters.get(deployment) if isinstance(deployment, str) else None
        if limiter is None and limiters:
            limiter = next(iter(limiters.values()))
        if limiter is not None:
            extra.update(limiter.state().headers())
        out.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items() if k.encode() not in present)
        return out
