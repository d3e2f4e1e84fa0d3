"""Benchmark 6: conversation totals (cost_by_turn / cumulative_tokens) from stored sizes.

A chat of TURNS user turns, each with its own photo-sized image (1024x768 JPEG, distinct
pixels), each answered; retention keep_all, so request k carries k images. Two baselines:

- the peer a user would write (issue 23): one plain loop over the messages with the same
  counter (``count_text_tokens`` for text, ``image_tokens`` from the stored sizes, the published
  per-message overhead), keeping a running total. It is linear; vizlab should stay near it.
- the algorithm vizlab used before issue 14 (rebuild and re-decode every request), timed on the
  first BASE_TURNS turns only: it is quadratic.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
from _common import Section, fmt_s, load, median, say
from PIL import Image

TURNS = 1000
BASE_TURNS = 15


def _chat(turns: int) -> Any:
    from vizlab.conversation import Conversation

    conv = Conversation("You are a careful photo analyst.", max_images=1000)
    rng = np.random.default_rng(7)
    for k in range(turns):
        pixels = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)  # distinct, and quick to make
        img = Image.fromarray(pixels).resize((1024, 768), Image.Resampling.NEAREST)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        conv.add_user(f"Turn {k}: what changed since the previous photo?", [buf.getvalue()], detail="high")
        conv.add_assistant(f"In photo {k} the colours shifted a little.")
    return conv


def old_totals(conv: Any) -> list[int]:
    """Before issue 14: every request rebuilt with data URLs and estimated from them."""
    from vizlab.conversation import Conversation
    from vizlab.tokens import estimate_request

    out = []
    for i, turn in enumerate(conv.turns):
        if turn.role != "user":
            continue
        prefix = Conversation(conv.system, model=conv.model, max_images=1000)
        prefix.images, prefix.urls, prefix.turns = conv.images, conv.urls, conv.turns[: i + 1]
        out.append(estimate_request(prefix.messages(), model=conv.model).prompt_tokens)
    return out


def plain_loop(conv: Any) -> list[int]:
    """The peer: one pass over the messages, the same counter, a running total (keep_all)."""
    from vizlab.tokens import count_text_tokens, image_tokens
    from vizlab.tokens.request import REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE

    out = []
    total = REPLY_PRIMING_TOKENS
    if conv.system:
        total += TOKENS_PER_MESSAGE + count_text_tokens(conv.system, conv.model) + count_text_tokens("system", conv.model)
    for turn in conv.turns:
        total += TOKENS_PER_MESSAGE + count_text_tokens(turn.role, conv.model) + count_text_tokens(turn.text, conv.model)
        for key in turn.images:
            img = conv.images[key]
            total += image_tokens(img.width, img.height, detail=turn.detail, model=conv.model)
        if turn.role == "user":
            out.append(total)
    return out


def _prefix(conv: Any, user_turns: int) -> Any:
    from vizlab.conversation import Conversation

    part = Conversation(conv.system, model=conv.model, max_images=1000)
    part.images, part.urls, part.turns = conv.images, conv.urls, conv.turns[: 2 * user_turns]
    return part


def run() -> Section:
    section = Section("6. Conversation totals")
    started = time.perf_counter()
    say(f"  a {TURNS}-turn chat, one distinct 1024x768 photo per turn ...")
    conv = _chat(TURNS)
    small = _prefix(conv, BASE_TURNS)
    from vizlab.tokens import estimate_request

    estimate_request([{"role": "user", "content": "warm up"}], model=conv.model)  # loads the encoding once
    say(f"  old algorithm vs new on {BASE_TURNS} turns (3 rounds each, interleaved) ...")
    old_t: list[float] = []
    new_t: list[float] = []
    agree = True
    for _ in range(3):
        t = time.perf_counter()
        old = old_totals(small)
        old_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        new = small.cumulative_tokens()
        new_t.append(time.perf_counter() - t)
        agree &= old == new
    say(f"  cost_by_turn() vs a plain loop over the messages, {TURNS} turns (5 rounds each, interleaved) ...")
    full: list[float] = []
    peer: list[float] = []
    for _ in range(5):
        t = time.perf_counter()
        rows = conv.cost_by_turn()
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        loop = plain_loop(conv)
        peer.append(time.perf_counter() - t)
    same_as_loop = loop == [r["estimated_prompt_tokens"] for r in rows]
    full_time = median(full)
    speedup = median(old_t) / median(new_t)
    section.add(f"Load while measuring: {load()}.")
    section.add()
    section.add(f"| Algorithm (median of rounds) | {BASE_TURNS} turns | {TURNS} turns |")
    section.add("|---|---|---|")
    section.add(f"| before issue 14: rebuild and re-decode every request | {fmt_s(median(old_t))} | (quadratic; not run) |")
    section.add(f"| peer: a plain loop over the messages, same counter, running total | - | {fmt_s(median(peer))} |")
    section.add(f"| vizlab `cost_by_turn()`: every row, costs and breakdowns | {fmt_s(median(new_t))} | {fmt_s(full_time)} |")
    section.add()
    section.add(f"Same totals as the old algorithm on {BASE_TURNS} turns: {'yes' if agree else 'NO'}; as the plain loop on "
                f"{TURNS} turns: {'yes' if same_as_loop else 'NO'}. Last row at {TURNS} turns: "
                f"{rows[-1]['estimated_prompt_tokens']:,} prompt tokens, {rows[-1]['images_sent']} images sent. "
                f"cost_by_turn() takes {full_time / median(peer):.1f}x the plain loop's time (it also prices every "
                "request and keeps each image's breakdown).")
    section.target(f"cost_by_turn() on {TURNS} turns with an image each < 0.2 s", fmt_s(full_time), full_time < 0.2)
    section.target(f"vs the old algorithm on {BASE_TURNS} turns (info)", f"{speedup:.0f}x faster", None)
    section.target(f"vs a plain loop over the messages on {TURNS} turns (info)", f"{full_time / median(peer):.1f}x its time", None)
    section.target("same totals as the old algorithm and the plain loop", "same" if agree and same_as_loop else "different",
                   agree and same_as_loop)
    section.seconds = time.perf_counter() - started
    return section
