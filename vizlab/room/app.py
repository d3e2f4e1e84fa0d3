"""The room's HTTP face: Azure-shaped attendee routes and the facilitator's admin routes.

Attendees: ``POST /openai/deployments/{dep}/chat/completions?api-version=``,
``/openai/v1/chat/completions``, ``/openai/v1/responses`` and Azure's dated
``/openai/responses?api-version=``, streamed or not (:func:`vizlab.room.forward.handle`), plus
``GET /openai/v1/models`` naming the one deployment. Facilitator (admin key): ``GET /room/usage``,
``POST /room/revoke``, ``/room/attendees``, ``/room/budget``, and the live page ``GET /room/``.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vizlab.local.http.errors import AzureError, bad_request
from vizlab.local.http.intake import parse_json, read_body
from vizlab.room.forward import handle
from vizlab.room.page import PAGE

if TYPE_CHECKING:
    from vizlab.room.facade import RoomFacade as Room

__all__ = ["create_room_app"]


def _admin(request: Request, room: Room) -> None:
    key = request.headers.get("api-key") or request.headers.get("authorization", "").partition(" ")[2].strip()
    if not key or not hmac.compare_digest(key.encode("utf-8", "surrogateescape"), room.admin_key.encode()):
        raise AzureError(401, "401", "This is the room's admin route: send the admin key printed when the room "
                         "started (header api-key or Authorization: Bearer).", type=None)  # fmt: skip


async def _admin_body(request: Request) -> dict[str, Any]:
    body = parse_json(await read_body(request, 64 * 1024, lambda n: bad_request("BadRequest", "body too large")))
    if not isinstance(body, dict):
        raise bad_request("BadRequest", "The admin body must be a JSON object, e.g. {\"attendee\": 3}.")
    return body


def _attendee(body: dict[str, Any], room: Room) -> list[int]:
    known = {r.attendee for r in room.store.codes()}
    if body.get("all") is True:
        return sorted(known)
    who = body.get("attendee")
    if isinstance(body.get("code"), str):
        row = room.codes().get(body["code"])
        who = row.attendee if row else None
    if isinstance(who, bool) or who not in known:
        raise bad_request("invalid_value", f"Name an attendee: {{\"attendee\": N}} with N one of 1..{max(known, default=0)}, "
                          "{\"code\": CODE} or {\"all\": true}.", "attendee")  # fmt: skip
    return [int(who)]


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise bad_request("invalid_value", f"'{name}' must be a positive number, got {value!r:.40}.", name)
    return value


def _attendee_routes(app: FastAPI, room: Room) -> None:
    @app.post("/openai/deployments/{deployment}/chat/completions")
    async def azure_chat(request: Request, deployment: str,
                         api_version: str | None = Query(None, alias="api-version")) -> Response:  # fmt: skip
        path = f"/openai/deployments/{room.upstream.deployment}/chat/completions"
        return await handle(request, room, "chat", path, {"api-version": api_version or ""}, v1=False, asked=deployment)

    @app.post("/openai/v1/chat/completions")
    async def v1_chat(request: Request) -> Response:
        return await handle(request, room, "chat", "/openai/v1/chat/completions", {}, v1=True)

    @app.post("/openai/v1/responses")
    async def v1_responses(request: Request) -> Response:
        return await handle(request, room, "responses", "/openai/v1/responses", {}, v1=True)

    @app.post("/openai/responses")
    async def azure_responses(request: Request, api_version: str | None = Query(None, alias="api-version")) -> Response:
        return await handle(request, room, "responses", "/openai/responses", {"api-version": api_version or ""}, v1=True)

    @app.get("/openai/v1/models")
    async def models(request: Request) -> Response:
        room.check_code(request)
        return JSONResponse({"object": "list", "data": [
            {"id": room.deployment, "object": "model", "created": 0, "owned_by": "vizlab-room"}]})  # fmt: skip


def _admin_routes(app: FastAPI, room: Room) -> None:
    @app.get("/room/usage")
    async def usage(request: Request) -> Response:
        _admin(request, room)
        return JSONResponse(room.usage())

    @app.post("/room/revoke")
    async def revoke(request: Request) -> Response:
        _admin(request, room)
        who = _attendee(await _admin_body(request), room)
        for attendee in who:
            room.store.revoke(attendee)
        room.refresh_codes()
        return JSONResponse({"revoked": who})

    @app.post("/room/attendees")
    async def add(request: Request) -> Response:
        _admin(request, room)
        body = await _admin_body(request)
        count = body.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 500:
            raise bad_request("invalid_value", "Send {\"count\": N} with N from 1 to 500 new attendees.", "count")
        rows = room.add_attendees(count, _number(body, "budget_usd"))
        return JSONResponse({"added": [{"attendee": r.attendee, "code": r.code} for r in rows]})

    @app.post("/room/budget")
    async def budget(request: Request) -> Response:
        _admin(request, room)
        body = await _admin_body(request)
        usd, tokens = _number(body, "budget_usd"), _number(body, "budget_tokens")
        if usd is None and tokens is None:
            raise bad_request("missing_required_parameter", "Send budget_usd (dollars) and/or budget_tokens.", "budget_usd")
        who = _attendee(body, room)
        for attendee in who:
            room.store.set_budget(attendee, usd, None if tokens is None else int(tokens))
        room.refresh_codes()
        return JSONResponse({"attendees": who, "budget_usd": usd, "budget_tokens": tokens})

    @app.get("/room/")
    async def page() -> Response:
        return HTMLResponse(PAGE, headers={"cache-control": "no-store"})

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok", "time": time.time()})


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(AzureError)
    async def azure_error(request: Request, exc: AzureError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return bad_request("BadRequest", "Invalid request: check the query string and path.").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "Resource not found" if exc.status_code == 404 else f"HTTP {exc.status_code}: {exc.detail}"
        if exc.status_code == 404:
            message += (" (this room serves /openai/deployments/{deployment}/chat/completions, /openai/v1/chat/"
                        "completions and /openai/v1/responses)")  # fmt: skip
        return AzureError(exc.status_code, str(exc.status_code), message, type=None).response()


class HostGuard:
    """Pure ASGI: a Host the room does not answer to gets a 421 before anything else (DNS rebinding)."""

    def __init__(self, app: Any, room: Room) -> None:
        self.app, self.room = app, room

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
            if not self.room.host_ok(host):
                error = AzureError(421, "421", f"Misdirected request: Host {(host or '')[:80]!r} is not a name this "
                                   "room answers to; use the endpoint on your card, or the facilitator adds it with "
                                   "--allowed-host NAME.", type=None)  # fmt: skip
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_room_app(room: Room) -> HostGuard:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await room.close_client()  # the upstream connections, in the loop that opened them

    app = FastAPI(title="vizlab room", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    _handlers(app)
    _attendee_routes(app, room)
    _admin_routes(app, room)

    return HostGuard(app, room)
