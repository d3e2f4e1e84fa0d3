"""Emulated automatic prompt caching: ``usage.prompt_tokens_details.cached_tokens``.

The rule is the registry's (:attr:`vizlab.models.ModelInfo.caching`, from OpenAI's 'Prompt
caching' guide). The prompt is a sequence of units (text tokens, each image weighing its image
tokens) with a running hash checkpointed at every step boundary; ``cached_tokens`` is the largest
fresh stored checkpoint. Trade-off: framing tokens are not units, so the count can be a step
below the service's, never above. Details: docs/internals.md#local
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["PromptCache", "checkpoints"]

# Checkpoints kept per deployment (oldest evicted first): bounds memory on a long session.
MAX_CHECKPOINTS = 20_000


def checkpoints(units: Iterable[tuple[str, int]], *, min_prefix: int, step: int) -> list[tuple[int, str]]:
    """``(tokens, prefix hash)`` at each ``step`` boundary from ``min_prefix`` the prefix reaches.

    ``units`` are ``(identity, weight)``: a text token is weight 1, an image its image tokens.
    A unit that crosses several boundaries (a large image) checkpoints each of them with the same
    hash: the prefix through that unit is what is cached.

    >>> [t for t, _ in checkpoints([("a", 1100), ("b", 200)], min_prefix=1024, step=128)]
    [1024, 1152, 1280]
    """
    if step <= 0 or min_prefix <= 0:
        return []
    found: list[tuple[int, str]] = []
    running = hashlib.sha256()
    total = 0
    next_mark = min_prefix
    for identity, weight in units:
        running.update(identity.encode("utf-8", "surrogatepass") + b"\x00")
        total += max(0, int(weight))
        if total >= next_mark:
            digest = running.copy().hexdigest()[:32]
            while total >= next_mark:
                found.append((next_mark, digest))
                next_mark += step
    return found


class PromptCache:
    """Checkpoints of recent prompts per deployment, with idle expiry. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, OrderedDict[tuple[int, str], float]] = {}

    def lookup_and_store(
        self, deployment: str, marks: list[tuple[int, str]], *, ttl_s: float, now: float | None = None
    ) -> int:
        """The cached tokens of a prompt with these checkpoints, then remember them (fresh)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            table = self._entries.setdefault(deployment, OrderedDict())
            cached = 0
            for mark in marks:
                seen = table.get(mark)
                if seen is not None and now - seen <= ttl_s:
                    cached = max(cached, mark[0])
            for mark in marks:
                table[mark] = now
                table.move_to_end(mark)
            while len(table) > MAX_CHECKPOINTS:
                table.popitem(last=False)
            return cached

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
