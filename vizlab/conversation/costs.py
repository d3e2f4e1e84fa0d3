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

__all__ = ["Builder", "request_estimates", "cost_rows", "reply_to", "running_totals", "usage_field", "cost_total"]

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

    Linear in the turns: each message is estimated once per way the policy treats it (one of the
    latest image turns, or older; ``policy.window``), its text counted once, each stored image
    sized from its stored width and height (never re-encoded or decoded), and the requests'
    totals kept as running sums. The result equals estimate_request on the whole message list.
    ``build`` is the conversation's message builder (``Conversation._build``), called with
    ``stored=`` so that stored images are listed instead of encoded. A policy without a window
    (one that only implements ``plan``) is re-planned for every request instead.
    """
    from vizlab.tokens.text import prefetch_counts

    prefetch_counts([t.text for t in turns] + [system or ""], model)  # one call, where a service counts
    sizer = _MessageSizer(build, policy, system, model, images, prices)
    window = policy.window
    if window is None:
        return [sizer.replanned(turns, i) for i, turn in enumerate(turns) if turn.role == "user"]
    out = []
    totals = _Totals(sizer.system_part())
    settled: list[int] = []  # image turns whose treatment no longer changes
    latest: list[int] = []  # the latest `window` image turns, oldest first
    for i, turn in enumerate(turns):
        if window > 0 and turn.role == "user" and turn.images:
            latest.append(i)
            totals.add(sizer.part(turn, i, recent=True), settled=False, index=i)
            if len(latest) > window:
                older = latest.pop(0)
                totals.remove_latest(older)
                totals.add(sizer.part(turns[older], older, recent=False), settled=True, index=older)
                settled.append(older)
        else:
            totals.add(sizer.part(turn, i, recent=False), settled=True, index=i)
        if turn.role == "user":
            out.append((i, totals.sent, sizer.estimate(totals, latest)))
    return out


# One message's share of a request: (text, image, overhead beyond priming tokens, images sent,
# image breakdowns, unsized image labels).
_Part = tuple[int, int, int, int, list[Any], list[str]]


class _MessageSizer:
    """Estimates of single messages, each made once, and the request estimate from running sums."""

    def __init__(self, build: Builder, policy: RetentionPolicy, system: str | None, model: str,
                 images: Mapping[str, EncodedImage], prices: PriceTable | None) -> None:
        from vizlab.tokens.pricing import DEFAULT_PRICES
        from vizlab.tokens.request import estimate_request

        self.build, self.policy, self.system, self.model = build, policy, system, model
        self.images, self.prices = images, prices
        self.table = DEFAULT_PRICES if prices is None else prices
        self.priming = estimate_request([], model=model).overhead_tokens
        self.by_size: dict[tuple[int, int, str], Any] = {}
        self.by_message: dict[Any, _Part] = {}

    def _size(self, message: dict[str, Any], left_out: list[tuple[str, str]], actions: list[Any]) -> _Part:
        from vizlab.tokens.image import explain_image_tokens
        from vizlab.tokens.request import estimate_request

        part = estimate_request([message], model=self.model, prices=self.prices)
        in_message = iter(part.images)  # the images sent as parts (URLs), in the message's order
        stored = dict(left_out)
        breakdowns = []
        images_total = part.image_tokens
        for action in actions:
            if action.how != "send":
                continue
            if action.key not in stored:
                breakdowns.append(next(in_message))
                continue
            img = self.images[action.key]
            size_key = (img.width, img.height, stored[action.key])
            if size_key not in self.by_size:
                self.by_size[size_key] = explain_image_tokens(img.width, img.height, detail=size_key[2], model=self.model)
            breakdowns.append(self.by_size[size_key])
            images_total += self.by_size[size_key].tokens
        breakdowns += list(in_message)
        sent = sum(1 for a in actions if a.how == "send")
        return (part.text_tokens, images_total, part.overhead_tokens - self.priming, sent, breakdowns,
                list(part.unsized_images))

    def system_part(self) -> _Part | None:
        if not self.system:
            return None
        stored: list[list[tuple[str, str]]] = []
        message = self.build([], self.policy, "current", check_limit=False, stored=stored, plan=[])[0]
        return self._size(message, [], [])

    def part(self, turn: Turn, index: int, *, recent: bool) -> _Part:
        """Turn ``index``'s message as the policy treats it (cached per turn and treatment)."""
        key = (index, recent)
        if key not in self.by_message:
            actions = self.policy.turn_plan(turn, recent)
            stored: list[list[tuple[str, str]]] = []
            message = self.build([turn], self.policy, "current", check_limit=False, stored=stored, plan=[actions])[-1]
            self.by_message[key] = self._size(message, stored[-1], actions)
        return self.by_message[key]

    def estimate(self, totals: _Totals, latest: list[int]) -> RequestEstimate:
        from vizlab.tokens.request import RequestEstimate

        breakdowns = list(totals.breakdowns)
        unsized = list(totals.unsized)
        for index in latest:
            breakdowns += totals.latest[index][4]
            unsized += totals.latest[index][5]
        prompt = totals.text + totals.image + totals.overhead + self.priming
        try:
            cost = self.table.cost(prompt, 0, model=self.model)
        except UnknownModelError:
            cost = None
        return RequestEstimate(
            model=self.model, prompt_tokens=prompt, text_tokens=totals.text, image_tokens=totals.image,
            completion_tokens=0, images=breakdowns, unsized_images=unsized, cost=cost,
            overhead_tokens=totals.overhead + self.priming,
        )

    def replanned(self, turns: Sequence[Turn], i: int) -> tuple[int, int, RequestEstimate]:
        """Request ``i`` planned and built whole (a policy without a window): quadratic, exact."""
        history = turns[: i + 1]
        plan = self.policy.plan(history)
        stored: list[list[tuple[str, str]]] = []
        msgs = self.build(history, self.policy, "current", check_limit=False, stored=stored, plan=plan)
        totals = _Totals(None)
        keys: list[Any] = (["system"] if self.system else []) + [(n, tuple(a)) for n, a in enumerate(plan)]
        actions: list[list[Any]] = ([[]] if self.system else []) + plan
        for key, message, left_out, acts in zip(keys, msgs, stored, actions):
            if key not in self.by_message:
                self.by_message[key] = self._size(message, left_out, acts)
            totals.add(self.by_message[key], settled=True, index=-1)
        return i, totals.sent, self.estimate(totals, [])


class _Totals:
    """Running sums of a request's message parts; the latest image turns' parts kept apart, as
    they change when a newer image turn pushes them out of the policy's window."""

    def __init__(self, system: _Part | None) -> None:
        self.text = self.image = self.overhead = self.sent = 0
        self.breakdowns: list[Any] = []
        self.unsized: list[str] = []
        self.latest: dict[int, _Part] = {}
        if system is not None:
            self.add(system, settled=True, index=-1)

    def add(self, part: _Part, *, settled: bool, index: int) -> None:
        self.text += part[0]
        self.image += part[1]
        self.overhead += part[2]
        self.sent += part[3]
        if settled:
            self.breakdowns += part[4]
            self.unsized += part[5]
        else:
            self.latest[index] = part

    def remove_latest(self, index: int) -> None:
        part = self.latest.pop(index)
        self.text -= part[0]
        self.image -= part[1]
        self.overhead -= part[2]
        self.sent -= part[3]


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
        cost = cost_total(reply.meta.get("cost")) if reply is not None else None
        if cost is None and reported:
            try:
                cost = table.cost(prompt, completion, model=model).total
            except UnknownModelError:
                cost = None
        elif cost is None:
            cost = cost_total(est.cost)
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


def cost_total(cost: Any) -> float | None:
    """A float from a recorded cost: a number, a dict with ``total`` (or ``input`` and ``output``),
    or a Cost object; None when there is none. The one copy (replies and panels use it too).

    >>> cost_total({"input": 0.25, "output": 0.5}), cost_total(None), cost_total(True)
    (0.75, None, None)
    """
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
