"""Requests-per-minute and tokens-per-minute quotas over a sliding window, thread-safe.

One limiter per deployment, as Azure keeps quota; refusals are Azure's 429 with ``retry-after``
and ``retry-after-ms``. A request's tokens are its prompt plus ``max_tokens``, estimated on
arrival. Simplifications, documented: no ``max_tokens`` counts only the prompt, and RPM uses the
same sliding minute where Azure checks 1- or 10-second slices. Details: docs/internals.md#local
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Admission:
    """The outcome of asking for quota: allowed, or how long to wait."""

    allowed: bool
    retry_after_s: float = 0.0
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    limit_kind: str = ""  # "requests" or "tokens" when refused


class SlidingWindowLimiter:
    """Keeps (time, tokens) of admitted requests for ``window_s`` seconds."""

    def __init__(
        self,
        *,
        rpm: int | None,
        tpm: int | None,
        # One sliding minute for RPM too; Azure checks RPM over 1- or 10-second slices ("Understanding
        # rate limits", as quoted in Microsoft Q&A 1336515, 2023-08): a documented simplification.
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.window_s = window_s
        self._clock = clock
        self._events: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def admit(self, tokens: int) -> Admission:
        """Admit a request costing ``tokens`` now, or say how long until it would fit."""
        with self._lock:
            now = self._clock()
            while self._events and self._events[0][0] <= now - self.window_s:
                self._events.popleft()
            wait = 0.0
            kind = ""
            if self.rpm is not None and len(self._events) >= self.rpm:
                # The request that frees a slot is the (len - rpm + 1)-th oldest.
                oldest = self._events[len(self._events) - self.rpm][0]
                wait = max(wait, oldest + self.window_s - now)
                kind = "requests"
            if self.tpm is not None:
                used = sum(t for _, t in self._events)
                if used + tokens > self.tpm:
                    if tokens > self.tpm:
                        token_wait = self.window_s  # never fits; say "a full window" rather than loop
                    else:
                        token_wait = 0.0
                        freed = 0
                        for stamp, cost in self._events:
                            freed += cost
                            if used - freed + tokens <= self.tpm:
                                token_wait = stamp + self.window_s - now
                                break
                    if token_wait > wait:
                        wait, kind = token_wait, "tokens"
                    elif not kind:
                        kind = "tokens"
            if kind:
                return Admission(False, retry_after_s=max(wait, 0.001), limit_kind=kind)
            self._events.append((now, tokens))
            used = sum(t for _, t in self._events)
            return Admission(
                True,
                remaining_requests=None if self.rpm is None else self.rpm - len(self._events),
                remaining_tokens=None if self.tpm is None else max(self.tpm - used, 0),
            )

    def state(self) -> "QuotaState":
        """Each quota's size, what is left and whole seconds until the window is empty again
        (-1, -1, 0 for a quota that is not configured)."""
        with self._lock:
            now = self._clock()
            while self._events and self._events[0][0] <= now - self.window_s:
                self._events.popleft()
            reset = math.ceil(self._events[-1][0] + self.window_s - now) if self._events else 0
            used = sum(t for _, t in self._events)
            return QuotaState(
                limit_requests=-1 if self.rpm is None else self.rpm,
                remaining_requests=-1 if self.rpm is None else max(self.rpm - len(self._events), 0),
                reset_requests_s=0 if self.rpm is None else max(reset, 0),
                limit_tokens=-1 if self.tpm is None else self.tpm,
                remaining_tokens=-1 if self.tpm is None else max(self.tpm - used, 0),
                reset_tokens_s=0 if self.tpm is None else max(reset, 0),
            )


@dataclass(frozen=True)
class QuotaState:
    """What the x-ratelimit-* headers report: each quota's size, what is left, seconds to a full reset."""

    limit_requests: int
    remaining_requests: int
    reset_requests_s: int
    limit_tokens: int
    remaining_tokens: int
    reset_tokens_s: int

    def headers(self) -> dict[str, str]:
        """The six headers, named as the service names them. With no quota configured Azure sends
        limit and remaining -1 and reset 0 (seen on an Azure Responses API deployment,
        openai/openai-dotnet#838, 2025-11), and so do we; reset is whole seconds there."""
        return {
            "x-ratelimit-limit-requests": str(self.limit_requests),
            "x-ratelimit-remaining-requests": str(self.remaining_requests),
            "x-ratelimit-reset-requests": str(self.reset_requests_s),
            "x-ratelimit-limit-tokens": str(self.limit_tokens),
            "x-ratelimit-remaining-tokens": str(self.remaining_tokens),
            "x-ratelimit-reset-tokens": str(self.reset_tokens_s),
        }


# retry-after-ms is read before retry-after by the openai Python SDK
# (_base_client._parse_retry_after_header, openai 3.52.0 as installed here, read 2026-11-21).
def retry_headers(retry_after_s: float) -> dict[str, str]:
    """Azure's 429 headers: milliseconds, and whole seconds rounded up."""
    return {
        "retry-after-ms": str(max(1, math.ceil(retry_after_s * 1000))),
        "retry-after": str(max(1, math.ceil(retry_after_s))),
    }
