"""The room's caps on one request, and its estimate before sending.

Caps, each rewrite listed in the ``x-vizlab-room-capped`` reply header: over ``--max-images`` is
refused (never trimmed: dropping an image silently would change the question); ``--max-detail low``
sets every image's ``detail`` to low; ``max_tokens``, ``max_completion_tokens`` and
``max_output_tokens`` over ``--max-output`` are lowered to it, and a request with none gets it
(reasoning models as ``max_completion_tokens``), so the worst case is always bounded. The estimate
is :func:`vizlab.tokens.estimate_request`; tools and role-less Responses items count as their JSON
text, an over-count rather than a miss.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from vizlab import models
from vizlab.errors import VizlabError
from vizlab.local.http.errors import AzureError, bad_request
from vizlab.tokens.pricing import default_prices
from vizlab.tokens.request import estimate_request

__all__ = ["Capped", "apply_caps", "estimate"]

PRICES = default_prices()

OUTPUT_FIELDS = {"chat": ("max_tokens", "max_completion_tokens"), "responses": ("max_output_tokens",)}


@dataclass
class Capped:
    """A request after the room's caps: the body to send and what was rewritten."""

    body: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    images: int = 0


def _image_parts(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The image parts of a chat or responses body (the dicts themselves, to rewrite in place)."""
    items = body.get("messages") if kind == "chat" else body.get("input")
    found = []
    for item in items if isinstance(items, list) else []:
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") in ("image_url", "input_image"):
                found.append(part)
    return found


def _cap_detail(part: dict[str, Any], level: str) -> bool:
    if part.get("type") == "image_url":
        spec = part.get("image_url")
        if isinstance(spec, str):
            part["image_url"] = spec = {"url": spec}
        if not isinstance(spec, dict) or spec.get("detail") == level:
            return False
        spec["detail"] = level
        return True
    if part.get("detail") == level:
        return False
    part["detail"] = level
    return True


def _cap_output(body: dict[str, Any], kind: str, cap: int, model: str) -> list[str]:
    notes = []
    present = [f for f in OUTPUT_FIELDS[kind] if body.get(f) is not None]
    for name in present:
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad_request("invalid_value", f"'{name}' must be a positive integer, got {value!r:.40}.", param=name)
        if value > cap:
            body[name] = cap
            notes.append(f"{name} {value}->{cap}")
    if not present:
        name = "max_output_tokens" if kind == "responses" else (
            "max_completion_tokens" if models.lookup(model).reasoning else "max_tokens")
        body[name] = cap
        notes.append(f"{name} set to {cap}")
    return notes


def apply_caps(body: dict[str, Any], kind: str, *, model: str, max_output: int, max_images: int | None,
               max_detail: str | None) -> Capped:  # fmt: skip
    """The body with the room's caps applied (a copy), or a 400 for more images than the room takes."""
    body = copy.deepcopy(body)
    parts = _image_parts(body, kind)
    if max_images is not None and len(parts) > max_images:
        raise bad_request(
            "too_many_images",
            f"This request has {len(parts)} images; this room takes at most {max_images} per request. "
            "Send fewer images (or ask the facilitator to raise --max-images).",
        )
    notes = []
    if max_detail == "low":
        rewritten = sum(_cap_detail(p, "low") for p in parts)
        if rewritten:
            notes.append(f"detail->low on {rewritten} image(s)")
    notes += _cap_output(body, kind, max_output, model)
    return Capped(body, notes, len(parts))


def _messages(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise bad_request("missing_required_parameter", "Missing required parameter: 'messages'.", "messages")
        items = list(messages)
    else:
        given = body.get("input")
        if given is None or given == [] or given == "":
            raise bad_request("missing_required_parameter", "Missing required parameter: 'input'.", "input")
        raw = [{"role": "user", "content": given}] if isinstance(given, str) else given
        if not isinstance(raw, list):
            raise bad_request("invalid_type", "'input' must be a string or a list of items.", "input")
        items = [i if isinstance(i, dict) and "role" in i else {"role": "system", "content": json.dumps(i)}
                 for i in raw]  # fmt: skip
        if isinstance(body.get("instructions"), str):
            items.insert(0, {"role": "system", "content": body["instructions"]})
    if body.get("tools") is not None:
        items.append({"role": "system", "content": json.dumps(body["tools"])})
    return items


def estimate(body: dict[str, Any], kind: str, model: str) -> tuple[int, int, int, float]:
    """(prompt tokens, image tokens, output bound, worst-case USD) of a capped body, or a 400."""
    messages = _messages(body, kind)
    if kind == "chat":
        bounds = {"max_tokens": body.get("max_tokens"), "max_completion_tokens": body.get("max_completion_tokens")}
    else:
        bounds = {"max_completion_tokens": body.get("max_output_tokens")}
    try:
        est = estimate_request(messages, model=model, prices=PRICES, **bounds)
    except (VizlabError, ValueError, TypeError) as e:
        raise AzureError(
            400, "BadRequest", f"The room could not read this request to estimate its cost: {e}. Fix the request "
            "(vizlab.image_part builds valid image parts).", param=None,
        ) from e
    output = max(est.completion_tokens, body.get("max_tokens") or 0) if kind == "chat" else est.completion_tokens
    usd = est.cost.total if est.cost is not None else 0.0
    if output != est.completion_tokens:  # both fields sent: reserve the larger
        usd += PRICES.cost(0, output - est.completion_tokens, model=model).total
    return est.prompt_tokens, est.image_tokens, output, usd
