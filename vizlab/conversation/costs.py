"""What a conversation's requests cost: per-request token estimates, reported usage, running totals.

Request *k* carries the history up to user turn *k*, so a retention policy's cost is computed
without re-running it. Trade-offs: linear in the images (each sized from its stored width and
height, never re-encoded); reported usage beats the estimate, a recorded ``cost`` beats both; the
image limit is not enforced here, so policies compare freely. Never imports
:mod:`vizlab.conversation`, which builds on it. Details: docs/internals.md#conversation
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vizlab.conversation.retention import RetentionPolicy
from vizlab.conversation.turns import Turn
from vizlab.errors import UnknownModelError

if TYPE_CHECKING:
    from vizlab.images.encode import EncodedImage
    from vizlab.tokens.pricing import PriceTable
    from vizlab.tokens.request import RequestEstimate

__all__ = ["Builder", "request_estimates", "cost_rows", "reply_to", "running_totals", "usage_field"]

# Conversation._build: (turns, policy, fmt, *, check_limit, stored, plan) -> message list.
Builder = Callable[..., list[dict[str, Any]]]


def request_estimates(
    turns: Sequence[Turn],
    policy: RetentionPolicy,
    *,
    build: Builder,
    system: str | None,
    model: str,
    images: Mapping[str, EncodedImage],
    prices: PriceTable | None = None,
) -> list[tuple[int, int, RequestEstimate]]:
    """(turn index, images sent, estimate) of the request after each user turn, under ``policy``.

    Request *k* is planned on the turns up to *k*: "the last n image turns" are counted from
    there, as they were when that request went out.

    Linear in the images: each message's text is counted once (estimate_request on that
    message alone; the count is a sum over messages), each stored image is sized from its
    stored width and height (never re-encoded or decoded), and each (size, detail) is
    costed once. The result equals estimate_request on the whole message list. ``build`` is the
    conversation's message builder (``Conversation._build``), called with ``stored=`` so that
    stored images are listed instead of encoded.
    """
    from vizlab.tokens.image import explain_image_tokens
    from vizlab.tokens.pricing import DEFAULT_PRICES
    from vizlab.tokens.request import RequestEstimate, estimate_request

    priming = estimate_request([], model=model).overhead_tokens

    table = DEFAULT_PRICES if prices is None else prices
    by_message: dict[Any, RequestEstimate] = {}
    by_size: dict[tuple[int, int, str], Any] = {}
    out = []
    for i, turn in enumerate(turns):
        if turn.role != "user":
            continue
        history = turns[: i + 1]
        plan = policy.plan(history)
        sent = sum(1 for actions in plan for a in actions if a.how == "send")
        stored: list[list[tuple[str, str]]] = []
        msgs = build(history, policy, "current", check_limit=False, stored=stored, plan=plan)
        text = images_total = 0
        overhead = priming
        breakdowns: list[Any] = []
        unsized: list[str] = []
        # A message is fixed by its turn and what the plan does with that turn's images.
        keys: list[Any] = (["system"] if system else []) + [
            (n, tuple(actions)) for n, actions in enumerate(plan)
        ]
        for key, message, left_out in zip(keys, msgs, stored):
            part = by_message.get(key)
            if part is None:
                part = by_message[key] = estimate_request([message], model=model, prices=prices)
            text += part.text_tokens
            images_total += part.image_tokens
            overhead += part.overhead_tokens - priming
            breakdowns += part.images
            unsized += part.unsized_images
            for image_key, detail in left_out:
                img = images[image_key]
                size_key = (img.width, img.height, detail)
                if size_key not in by_size:
                    by_size[size_key] = explain_image_tokens(img.width, img.height, detail=detail, model=model)
                breakdowns.append(by_size[size_key])
                images_total += by_size[size_key].tokens
        prompt = text + images_total + overhead
        try:
            cost = table.cost(prompt, 0, model=model)
        except UnknownModelError:
            cost = None
        estimate = RequestEstimate(
            model=model,
            prompt_tokens=prompt,
            text_tokens=text,
            image_tokens=images_total,
            completion_tokens=0,
            images=breakdowns,
            unsized_images=unsized,
            cost=cost,
            overhead_tokens=overhead,
        )
        out.append((i, sent, estimate))
    return out


def cost_rows(
    turns: Sequence[Turn],
    requests: Sequence[tuple[int, int, RequestEstimate]],
    *,
    model: str,
    prices: PriceTable | None = None,
) -> list[dict[str, Any]]:
    """One row per request of :func:`request_estimates`: estimated and (when the reply recorded
    ``usage``) reported tokens, the cost, and running totals (``Conversation.cost_by_turn``
    documents the keys). A reply's recorded ``cost`` wins; else reported usage is priced by
    ``prices`` (default :data:`vizlab.tokens.pricing.DEFAULT_PRICES`); else the estimate's cost."""

    from vizlab.tokens.pricing import DEFAULT_PRICES

    table = DEFAULT_PRICES if prices is None else prices
    rows: list[dict[str, Any]] = []
    cum_prompt = cum_total = 0
    cum_cost: float | None = 0.0
    for number, (index, sent, est) in enumerate(requests, start=1):
        reply = reply_to(turns, index)
        usage = reply.meta.get("usage") if reply is not None else None
        rep_prompt = usage_field(usage, "prompt_tokens", "input_tokens")
        rep_completion = usage_field(usage, "completion_tokens", "output_tokens")
        reported = rep_prompt is not None
        prompt = rep_prompt if reported and rep_prompt is not None else est.prompt_tokens
        completion = (rep_completion or 0) if reported else 0
        cost = _cost_total(reply.meta.get("cost")) if reply is not None else None
        if cost is None and reported:
            try:
                cost = table.cost(prompt, completion, model=model).total
            except UnknownModelError:
                cost = None
        elif cost is None:
            cost = _cost_total(est.cost)
        cum_prompt += prompt
        cum_total += prompt + completion
        cum_cost = None if cum_cost is None or cost is None else cum_cost + cost
        rows.append(
            {
                "turn": number,
                "index": index,
                "images_sent": sent,
                "estimated_prompt_tokens": est.prompt_tokens,
                "estimated_image_tokens": est.image_tokens,
                "reported_prompt_tokens": rep_prompt,
                "reported_completion_tokens": rep_completion,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "source": "reported" if reported else "estimated",
                "cost": cost,
                "cumulative_prompt_tokens": cum_prompt,
                "cumulative_tokens": cum_total,
                "cumulative_cost": cum_cost,
            }
        )
    return rows


def reply_to(turns: Sequence[Turn], index: int) -> Turn | None:
    """The assistant turn answering the user turn at ``index`` (the next turn), if any."""
    nxt = index + 1
    if nxt < len(turns) and turns[nxt].role == "assistant":
        return turns[nxt]
    return None


def running_totals(values: Sequence[int]) -> list[int]:
    """Each entry the sum so far.

    >>> running_totals([3, 4, 5])
    [3, 7, 12]
    """
    out: list[int] = []
    total = 0
    for value in values:
        total += value
        out.append(total)
    return out


def usage_field(usage: Any, *names: str) -> int | None:
    """The first of ``names`` that ``usage`` (a recorded usage dict) holds as an int, else None."""
    if isinstance(usage, dict):
        for name in names:
            if isinstance(usage.get(name), int):
                return int(usage[name])
    return None


def _cost_total(cost: Any) -> float | None:
    """A float from a recorded cost: a number, a dict with ``total``, or a Cost object."""
    if cost is None or isinstance(cost, bool):
        return None
    if isinstance(cost, (int, float)):
        return float(cost)
    if isinstance(cost, dict):
        total = cost.get("total")
        if isinstance(total, (int, float)):
            return float(total)
        parts = [cost.get("input"), cost.get("output")]
        if all(isinstance(p, (int, float)) for p in parts):
            return float(sum(parts))  # type: ignore[arg-type]
        return None
    total = getattr(cost, "total", None)
    return float(total) if isinstance(total, (int, float)) else None
