"""One attendee request through the room: check, cap, estimate, reserve, pace, forward, settle.

Each step that refuses answers in Azure's error shape (:class:`vizlab.local.errors.AzureError`)
and says what to do. The settle is committed before the attendee's last byte is sent: for a
stream, the chunk that carries the usage (and what follows it) is held until the row is written.
Upstream 429s are retried after their ``retry-after`` while the total wait stays under the room's
bound; past it the 429 is handed down with its ``retry-after`` and a message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from vizlab.local.http.errors import AzureError, bad_request
from vizlab.local.http.intake import parse_json, read_body
from vizlab.local.http.ratelimit import retry_headers
from vizlab.room.caps import PRICES, apply_caps, estimate
from vizlab.room.pacing import PaceTimeout
from vizlab.room.recording import request_key
from vizlab.tokens.usage import Usage

if TYPE_CHECKING:
    from vizlab.room.facade import RoomFacade as Room
    from vizlab.room.store import CodeRow

__all__ = ["Ticket", "handle"]

# Upstream reply headers an attendee may see; everything else (cookies, internal ids) stays here.
PASSED_HEADERS = re.compile(r"^(content-type|x-request-id|apim-request-id|x-ratelimit-.*|retry-after(-ms)?|x-vizlab-.*)$")


@dataclass
class Ticket:
    """One request in flight: who, where to, the capped body, its estimate and reservation."""

    row: CodeRow
    kind: str  # "chat" or "responses"
    path: str
    params: dict[str, str]
    body: dict[str, Any]
    notes: list[str]
    prompt: int = 0
    images: int = 0
    output: int = 0
    usd: float = 0.0
    rid: str = field(default_factory=lambda: uuid.uuid4().hex)
    wants_usage: bool = True
    key: str = ""  # the request's recording key (vizlab.room.recording), before the room's caps

    @property
    def tokens(self) -> int:
        return self.prompt + self.output


def _error(status: int, code: str, message: str, **kw: Any) -> AzureError:
    return AzureError(status, code, message, type=None, **kw)


async def _body(request: Request, room: Room) -> dict[str, Any]:
    def too_large(limit: int) -> AzureError:
        return _error(413, "RequestEntityTooLarge",
                      f"The request body is over this room's limit of {limit:,} bytes. Send fewer or smaller images "
                      "(vizlab.to_data_url(path, fit=...) shrinks them).")  # fmt: skip

    raw = await read_body(request, room.settings.max_body_bytes, too_large)
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise bad_request("BadRequest", f"The request body must be a JSON object, not a JSON {type(body).__name__}.")
    return body


async def _ticket(request: Request, room: Room, kind: str, path: str, params: dict[str, str], v1: bool,
                  asked: str | None) -> Ticket:  # fmt: skip
    row = room.check_code(request)
    if params.get("api-version") == "":  # an Azure route without ?api-version= (the SDK always adds it)
        raise bad_request("missing_required_parameter", f"{path} needs ?api-version=, e.g. ?api-version=2024-10-21.",
                          "api-version")  # fmt: skip
    body = await _body(request, room)
    if v1:
        asked = body.get("model")
        if not isinstance(asked, str) or not asked:
            raise bad_request("missing_required_parameter",
                              f"Missing required parameter: 'model'. In this room it is {room.deployment!r}.", "model")
        body["model"] = room.upstream.deployment
    renamed = room.check_deployment(asked) if asked else None
    key = request_key(kind, body) if room.recorder is not None or room.replayer is not None else ""
    settings = room.settings
    capped = apply_caps(body, kind, model=settings.upstream_model or "gpt-4o", max_output=settings.max_output,
                        max_images=settings.max_images, max_detail=settings.max_detail)  # fmt: skip
    ticket = Ticket(row, kind, path, params, capped.body, capped.notes + ([renamed] if renamed else []), key=key)
    if kind == "chat" and capped.body.get("stream"):
        options = capped.body.get("stream_options")
        ticket.wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        capped.body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    ticket.prompt, ticket.images, ticket.output, ticket.usd = estimate(capped.body, kind, settings.upstream_model or "gpt-4o")
    return ticket


def _reserve(room: Room, t: Ticket) -> None:
    balance = room.store.reserve(t.rid, t.row, t.usd, t.tokens)
    if balance is not None:
        return
    now = room.store.balance(t.row.attendee)
    left = max(0.0, t.row.budget_usd - now.spent_usd - now.held_usd)
    message = (
        f"Over budget: this request could cost up to ${t.usd:.4f} ({t.prompt} prompt tokens, {t.images} of them "
        f"image tokens, plus up to {t.output} output tokens), and you have ${left:.4f} left of ${t.row.budget_usd:.2f}."
    )
    if t.row.budget_tokens is not None:
        message += f" Tokens: {max(0, t.row.budget_tokens - now.spent_tokens - now.held_tokens)} left, {t.tokens} needed."
    message += " Use detail 'low', fewer images or a lower max_tokens, or ask the facilitator to raise your budget."
    raise _error(403, "BudgetExceeded", message)


def _passed(headers: httpx.Headers, t: Ticket, room: Room) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if PASSED_HEADERS.match(k.lower()) and k.lower() != "content-length"}
    if t.notes:  # header values are latin-1: a non-ASCII deployment name must not break the reply
        out["x-vizlab-room-capped"] = "; ".join(t.notes).encode("ascii", "replace").decode()
    out["x-vizlab-room-reserved-usd"] = f"{t.usd:.6f}"
    return room.redact_headers(out)


def _cost(room: Room, usage: dict[str, Any], model: Any) -> tuple[Usage, float, str]:
    parsed = Usage.from_openai(usage)
    name = model if isinstance(model, str) and model in PRICES else room.settings.upstream_model or "gpt-4o"
    return parsed, PRICES.cost_of(parsed, model=name).total, name


def _settle(room: Room, t: Ticket, status: int, usage: Any, model: Any) -> int:
    """Write the usage row (in a worker thread for streams); return the tokens it counted."""
    if isinstance(usage, dict):
        parsed, usd, name = _cost(room, usage, model)
        prompt, output, source = parsed.prompt_tokens, parsed.completion_tokens, "reported"
    else:  # no usage came back (a stream cut short): charge the reservation, the worst case
        prompt, output, usd, name, source = t.prompt, t.output, t.usd, room.settings.upstream_model or "gpt-4o", "reservation"
    room.store.settle(t.rid, t.row.attendee, route=t.path, model=name, status=status, prompt_tokens=prompt,
                      image_tokens=t.images, output_tokens=output, usd=usd, source=source,
                      prompt=room.prompt_record(t.body))  # fmt: skip
    room.log(f"attendee {t.row.attendee} {t.path} {status} prompt={prompt} images={t.images} output={output} "
             f"usd={usd:.6f} ({source}){' capped: ' + '; '.join(t.notes) if t.notes else ''}")  # fmt: skip
    return prompt + output


async def _settled(room: Room, t: Ticket, status: int, usage: Any, model: Any) -> None:
    """Settle off the event loop, then give the pacer the real count (on the loop: it is not thread-safe)."""
    counted = await asyncio.to_thread(_settle, room, t, status, usage, model)
    room.pacer.correct(t.row.attendee, t.tokens, counted)


def _retry_after(headers: httpx.Headers) -> float:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers.get(name, "")) * scale
        except ValueError:
            continue
    return 1.0


async def _post(room: Room, t: Ticket) -> httpx.Response:
    """One POST upstream. A connection the upstream closed before answering (a kept-alive one it was
    dropping as the room reused it) is tried once more, on another; any other failure is a 502."""
    try:
        return await _post_once(room, t)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        pass
    except httpx.HTTPError as e:
        raise _unreachable(e) from None
    try:
        return await _post_once(room, t)
    except httpx.HTTPError as e:
        raise _unreachable(e) from None


async def _post_once(room: Room, t: Ticket) -> httpx.Response:
    request = room.client.build_request(
        "POST", t.path, params=t.params, json=t.body, headers=room.upstream.auth_headers())
    return await room.client.send(request, stream=True)


def _unreachable(e: Exception) -> AzureError:
    return _error(502, "UpstreamUnavailable", f"The room could not reach its deployment ({type(e).__name__}); "
                  "try again in a moment, or tell the facilitator.")


async def _send(room: Room, t: Ticket) -> httpx.Response:
    """Send to the upstream, retrying its 429s within the room's bounded wait."""
    waited = 0.0
    while True:
        reply = await _post(room, t)
        room.pacer.learn(dict(reply.headers))
        if reply.status_code != 429:
            return reply
        wait = _retry_after(reply.headers)
        if waited + wait > room.settings.max_wait_s:
            return reply
        await reply.aclose()
        room.stats["upstream_429_retried"] += 1
        await asyncio.sleep(wait)
        waited += wait


async def _refused_upstream(room: Room, t: Ticket, reply: httpx.Response) -> Response:
    raw = await reply.aread()
    await reply.aclose()
    room.store.release(t.rid)
    status = reply.status_code
    if status in (401, 403):
        room.log(f"attendee {t.row.attendee}: the upstream refused the room's credentials ({status})")
        raise _error(502, "UpstreamAuth", "The deployment behind the room refused the room's credentials. This is not "
                     "your code: tell the facilitator.")  # fmt: skip
    if status == 429:
        wait = _retry_after(reply.headers)
        room.store.event(t.row.attendee, "429", 429, "upstream 429 handed down")
        room.stats["upstream_429_handed_down"] += 1
        raise _error(429, "429", f"The deployment behind this room is at its quota; retry after {wait:.0f} s "
                     "(the openai SDK does so itself).", headers=retry_headers(wait))  # fmt: skip
    room.store.event(t.row.attendee, "refusal", status, f"upstream {status}")
    room.log(f"attendee {t.row.attendee} {t.path}: the upstream answered {status} (passed down)")
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"error": {"code": str(status), "message": f"The deployment answered {status}."}}
    return JSONResponse(room.redact_body(body), status_code=status, headers=_passed(reply.headers, t, room))


async def _plain(room: Room, t: Ticket, reply: httpx.Response) -> Response:
    raw = await reply.aread()
    await reply.aclose()
    try:
        body = json.loads(raw)
    except ValueError:
        room.store.release(t.rid)
        raise _error(502, "UpstreamBadReply", "The deployment's reply was not JSON; try again.") from None
    if not isinstance(body, dict):
        room.store.release(t.rid)
        raise _error(502, "UpstreamBadReply", "The deployment's reply was not a JSON object; try again.")
    await _settled(room, t, reply.status_code, body.get("usage"), body.get("model"))
    if room.recorder is not None and reply.status_code == 200:
        await asyncio.to_thread(room.recorder.add, t.key, body.get("model"), body)
    return JSONResponse(room.redact_body(body), status_code=reply.status_code, headers=_passed(reply.headers, t, room))


def _usage_of(event: bytes) -> tuple[Any, Any, bool]:
    """(usage, model, usage-only chat chunk) of one SSE event."""
    for line in event.split(b"\n"):
        if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
            continue
        try:
            data = json.loads(line[5:])
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        if data.get("type") in ("response.completed", "response.incomplete") and isinstance(data.get("response"), dict):
            return data["response"].get("usage"), data["response"].get("model"), False
        if isinstance(data.get("usage"), dict):
            return data["usage"], data.get("model"), data.get("choices") == []
    return None, None, False


async def _events(reply: httpx.Response) -> AsyncIterator[bytes]:
    pending = b""
    async for chunk in reply.aiter_bytes():
        pending += chunk
        while b"\n\n" in pending:
            event, pending = pending.split(b"\n\n", 1)
            yield event + b"\n\n"
    if pending.strip():
        yield pending


def _stream(room: Room, t: Ticket, reply: httpx.Response) -> Response:
    async def relay() -> AsyncIterator[bytes]:
        settled = False
        held: bytes | None = None  # one event always held back, so the settle precedes the last byte
        recorded: list[str] = []
        try:
            async for event in _events(reply):
                if room.recorder is not None:
                    recorded.append(event.decode("utf-8", "replace"))
                usage, model, usage_only = _usage_of(event)
                if usage is not None and not settled:
                    await _settled(room, t, reply.status_code, usage, model)
                    settled = True
                    if usage_only and not t.wants_usage:
                        continue
                if held is not None:
                    yield held
                held = room.redact_bytes(event)
            if not settled:
                await _settled(room, t, reply.status_code, None, None)
                settled = True
            elif room.recorder is not None and reply.status_code == 200:
                await asyncio.to_thread(room.recorder.add, t.key, _model_of(recorded), None, recorded)
            if held is not None:
                yield held
        finally:
            if not settled:  # the attendee hung up: the upstream may have worked anyway
                _settle(room, t, 499, None, None)
            await reply.aclose()

    return StreamingResponse(relay(), status_code=reply.status_code, headers=_passed(reply.headers, t, room))


async def handle(request: Request, room: Room, kind: str, path: str, params: dict[str, str], v1: bool,
                 asked: str | None = None) -> Response:  # fmt: skip
    """The whole pipeline for one attendee request (raises AzureError for every refusal); ``asked``
    is the deployment named in the path (v1 routes name it in the body's ``model``)."""
    try:
        t = await _ticket(request, room, kind, path, params, v1, asked)
        _reserve(room, t)
    except AzureError as e:
        row = getattr(request.state, "room_row", None)
        if row is not None:
            room.store.event(row.attendee, "refusal", e.status, e.message)
        raise
    hit = room.replayer.get(t.key) if room.replayer is not None else None
    if hit is not None and bool(hit.get("events")) == bool(t.body.get("stream")):
        return await _replayed(room, t, hit)
    try:
        await room.pacer.acquire(t.row.attendee, t.tokens)
    except PaceTimeout as e:
        room.store.release(t.rid)
        room.store.event(t.row.attendee, "429", 429, "room pacing: wait over bound")
        raise _error(429, "429", f"The room is at its share of the deployment's quota; your turn would come in over "
                     f"{room.settings.max_wait_s:.0f} s. Retry after {e.retry_after_s:.0f} s.",
                     headers=retry_headers(e.retry_after_s)) from None  # fmt: skip
    try:
        reply = await _send(room, t)
    except AzureError:
        room.store.release(t.rid)
        raise
    if reply.status_code >= 400:
        return await _refused_upstream(room, t, reply)
    if "text/event-stream" in reply.headers.get("content-type", ""):
        return _stream(room, t, reply)
    return await _plain(room, t, reply)


def _model_of(events: list[str]) -> str | None:
    for event in reversed(events):
        _, model, _ = _usage_of(event.encode())
        if isinstance(model, str):
            return model
    return None


async def _replayed(room: Room, t: Ticket, hit: dict[str, Any]) -> Response:
    """Answer from a recording (no upstream call); usage settled as recorded, the reply marked so."""
    headers = {"x-vizlab-recorded": f"{hit.get('recorded', '')} {hit.get('model', '')}".strip()[:120],
               "x-vizlab-room-reserved-usd": f"{t.usd:.6f}"}  # fmt: skip
    if not hit.get("events"):
        reply = hit.get("reply") or {}
        await _settled(room, t, 200, reply.get("usage"), reply.get("model"))
        return JSONResponse(reply, headers=headers)
    events = [e.encode() for e in hit["events"]]
    usage = next((u for u, _, _ in map(_usage_of, events) if u is not None), None)
    await _settled(room, t, 200, usage, _model_of(hit["events"]))
    kept = [e for e in events if not (_usage_of(e)[2] and not t.wants_usage)]
    return StreamingResponse(iter(kept), media_type="text/event-stream", headers=headers)


def hash_images(body: dict[str, Any]) -> str:
    """The body as JSON with every data URL replaced by its SHA-256 (for --log-prompts)."""
    def swap(match: re.Match[str]) -> str:
        return "sha256:" + hashlib.sha256(match.group(0).encode()).hexdigest()[:16]

    return re.sub(r"data:[^\"]{0,100};base64,[A-Za-z0-9+/=]+", swap, json.dumps(body))
