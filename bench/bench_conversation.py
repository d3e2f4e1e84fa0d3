"""Benchmark 6: conversation totals (cost_by_turn / cumulative_tokens) from stored sizes.

A chat of TURNS user turns, each with its own photo-sized image (1024x768 JPEG, distinct
pixels), each answered; retention keep_all, so request k carries k images. The baseline is the
algorithm vizlab used before issue 14, re-implemented here: for each user turn, build that
request's whole message list (a data URL per image) and run ``estimate_request`` over it, which
decodes every data URL to read every image's size again. It is timed on the first BASE_TURNS
turns (its cost grows with the square of the turns) and compared with today's code on the same
turns; today's code is also timed on all TURNS turns against the 0.2 s target.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
from _common import Section, fmt_s, median, say
from PIL import Image

TURNS = 50
BASE_TURNS = 15


def _chat(turns: int) -> Any:
    from vizlab.conversation import Conversation

    conv = Conversation("You are a careful photo analyst.", max_images=1000)
    rng = np.random.default_rng(7)
    for k in range(turns):
        pixels = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        img = Image.fromarray(pixels).resize((1024, 768), Image.Resampling.BILINEAR)
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
    say(f"  new algorithm on all {TURNS} turns: cost_by_turn() ...")
    full: list[float] = []
    for _ in range(5):
        t = time.perf_counter()
        rows = conv.cost_by_turn()
        full.append(time.perf_counter() - t)
    full_time = median(full)
    speedup = median(old_t) / median(new_t)
    section.add(f"| Algorithm | {BASE_TURNS} turns | {TURNS} turns |")
    section.add("|---|---|---|")
    section.add(f"| before: rebuild and re-decode every request | {fmt_s(median(old_t))} | (quadratic; not run) |")
    section.add(f"| now: stored sizes, each message counted once | {fmt_s(median(new_t))} | {fmt_s(full_time)} |")
    section.add()
    section.add(f"Same totals both ways on {BASE_TURNS} turns: {'yes' if agree else 'NO'}. Last row at {TURNS} turns: "
                f"{rows[-1]['estimated_prompt_tokens']:,} prompt tokens, {rows[-1]['images_sent']} images sent. For a user: "
                "the cost table of a long chat with photos appears at once, however long the chat.")
    section.target(f"cost_by_turn() on {TURNS} turns with an image each < 0.2 s", fmt_s(full_time), full_time < 0.2)
    section.target(f"vs the old algorithm on {BASE_TURNS} turns (info)", f"{speedup:.0f}x faster", None)
    section.target("same totals as the old algorithm", "same" if agree else "different", agree)
    section.seconds = time.perf_counter() - started
    return section
