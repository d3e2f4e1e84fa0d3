"""What the routes of one running app share (:class:`BackendState`): settings, limiters, the
analyst, the caches and stores, activity, and the seams tests replace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vizlab.local import _deps
from vizlab.local.analyst.answer import Analyst
from vizlab.local.config import BackendConfig
from vizlab.local.http.ratelimit import SlidingWindowLimiter
from vizlab.local.replies.caching import PromptCache

__all__ = ["BackendState"]


@dataclass
class BackendState:
    """What the routes of one app share: its settings, a rate limiter per deployment, the analyst,
    and the prompt cache (per deployment, emulating the service's automatic prompt caching)."""

    config: BackendConfig
    limiters: dict[str, SlidingWindowLimiter]
    analyst: Analyst
    cache: PromptCache = field(default_factory=PromptCache)
    files: Any = None  # the Files and Batch store (vizlab.local.replies.batch_store.BatchStore)
    responses: Any = None  # the stored Responses (vizlab.local.replies.responses.ResponseStore)
    # Activity, for the shared backend's idle stop (vizlab.local.__main__): requests open now and
    # the monotonic time the last one began or ended (kept by vizlab.local.http.gateway).
    open_requests: int = 0
    last_active: float = field(default_factory=time.monotonic)
    # Seams (tests replace them on a running backend's LocalBackend.state; the defaults are the real
    # thing): how a prompt is counted, how a JSON body is parsed (None: vizlab.local.http.intake's),
    # and how the simulated latency waits.
    count_prompt: Callable[..., _deps.PromptCount] = _deps.prompt_count
    parse_json: Callable[[bytes], Any] | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def idle_s(self) -> float:
        """Seconds since the last request began or ended; 0 while one is open."""
        return 0.0 if self.open_requests else time.monotonic() - self.last_active
