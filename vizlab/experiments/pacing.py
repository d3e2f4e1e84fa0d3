"""Keep a run under a deployment's TPM / RPM quota, so no 429 reaches the results.

A :class:`Pacer` is two token buckets (tokens, requests) that every worker asks before sending,
each request by its own estimate. They learn from the quota you give, the service's
``x-ratelimit-remaining-*`` headers and a 429's ``retry-after`` (read by the client's error
mapping, :func:`vizlab.client.errormap.retry_after_s`). Trade-off: the burst is capped
(a tenth of the quota by default) and the rest refills evenly, so no window sees more than the
quota and a long run uses at least ``1 - burst`` of it. Details: docs/internals.md#experiments
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Pacer", "TokenBucket"]


def _int_header(headers: Mapping[str, str] | Any, name: str) -> int | None:
    value = headers.get(name) if headers is not None else None
    try:
        return int(float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


class TokenBucket:
    """``capacity`` per ``window_s``: a burst of ``burst`` and the rest refilled evenly."""

    def __init__(self, capacity: float, *, window_s: float, burst: float, now: float) -> None:
        self.configure(capacity, window_s=window_s, burst=burst, now=now)
        self.level = self.burst

    def configure(self, capacity: float, *, window_s: float, burst: float, now: float) -> None:
        self.capacity = float(capacity)
        self.burst = max(1.0, self.capacity * burst)
        self.rate = max(self.capacity - self.burst, self.burst) / window_s  # per second, never 0
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` fits (0: now). A cost above the burst needs a full bucket."""
        need = min(cost, self.burst) - self.level
        if need <= 1e-6 * max(1.0, self.burst):  # float dust must not become a sleep of 1e-16 s
            return 0.0
        return math.inf if self.rate <= 0 else max(need / self.rate, 0.001)


# A request's cost is its prompt plus max_tokens (or max_completion_tokens): what Azure counts
# against TPM when it admits a request ("Understanding rate limits", Azure OpenAI quotas and
# limits, learn.microsoft.com, 2025-02). Azure counts quota per minute (RPM per 1-10 s slice).
class Pacer:
    """Admit requests under a TPM / RPM quota (see docs/internals.md#experiments); thread-safe.

    >>> pacer = Pacer(tpm=6000, window_s=60)
    >>> pacer.acquire(500)   # returns the seconds it waited
    0.0
    """

    def __init__(
        self,
        *,
        tpm: int | None = None,
        rpm: int | None = None,
        window_s: float = 60.0,
        burst: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if window_s <= 0 or not 0 < burst <= 1:
            raise ValueError(f"Pacer: window_s={window_s!r} must be > 0 and burst={burst!r} in (0, 1]")
        self.window_s = float(window_s)
        self.burst_fraction = burst
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Condition()
        now = clock()
        self.tpm, self.rpm = tpm, rpm
        self._tokens = TokenBucket(tpm, window_s=window_s, burst=burst, now=now) if tpm else None
        self._requests = TokenBucket(rpm, window_s=window_s, burst=burst, now=now) if rpm else None
        self._paused_until = 0.0
        self.learned = tpm is None and rpm is None
        self.waited_s = 0.0
        self.refusals = 0  # 429s seen (each retried)

    def __repr__(self) -> str:
        return f"Pacer(tpm={self.tpm}, rpm={self.rpm}, window_s={self.window_s:g}, refusals={self.refusals})"

    def acquire(self, tokens: int) -> float:
        """Block until a request of ``tokens`` may be sent; take it from the buckets. Returns the wait."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                wait = max(0.0, self._paused_until - now)
                for bucket, cost in ((self._tokens, tokens), (self._requests, 1)):
                    if bucket is not None:
                        bucket.refill(now)
                        wait = max(wait, bucket.wait_for(cost))
                if wait <= 0:
                    for bucket, cost in ((self._tokens, tokens), (self._requests, 1)):
                        if bucket is not None:
                            bucket.level -= cost
                    self.waited_s += waited
                    return waited
                wait = min(wait, self.window_s)
                self._lock.release()
                try:
                    self._sleep(wait)
                finally:
                    self._lock.acquire()
                waited += wait

    def observe(self, headers: Mapping[str, str] | Any, cost: int) -> None:
        """Read ``x-ratelimit-remaining-*`` from a reply to a request that cost ``cost`` tokens."""
        tokens_left = _int_header(headers, "x-ratelimit-remaining-tokens")
        requests_left = _int_header(headers, "x-ratelimit-remaining-requests")
        with self._lock:
            now = self._clock()
            for left, attr, quota_attr, unit in ((tokens_left, "_tokens", "tpm", cost), (requests_left, "_requests", "rpm", 1)):
                if left is None or left < 0:  # absent, or -1: no quota on this deployment
                    continue
                bucket = getattr(self, attr)
                if self.learned:
                    # The quota itself when the service says it (x-ratelimit-limit-*), else the room
                    # right after this request was admitted, plus the request.
                    limit = _int_header(headers, "x-ratelimit-limit-" + ("tokens" if attr == "_tokens" else "requests"))
                    seen = limit if limit is not None and limit > 0 else left + unit
                    if bucket is None or seen > bucket.capacity:
                        setattr(self, quota_attr, seen)
                        if bucket is None:
                            bucket = TokenBucket(seen, window_s=self.window_s, burst=self.burst_fraction, now=now)
                            bucket.level = min(bucket.burst, float(left))
                            setattr(self, attr, bucket)
                        else:
                            bucket.refill(now)
                            bucket.configure(seen, window_s=self.window_s, burst=self.burst_fraction, now=now)
                        continue
                bucket.refill(now)
                bucket.level = min(bucket.level, float(left))
            self._lock.notify_all()

    def refused(self, retry_after: float | None) -> None:
        """A 429: pause every worker for ``retry_after`` seconds (a second if none was given)."""
        with self._lock:
            self.refusals += 1
            now = self._clock()
            # A missing, negative or non-finite delay (a header "inf", "nan" or "-1"): a second.
            delay = retry_after if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0 else 1.0
            self._paused_until = max(self._paused_until, now + delay)
            for bucket in (self._tokens, self._requests):
                if bucket is not None:
                    bucket.refill(now)
                    bucket.level = min(bucket.level, 0.0)
            self._lock.notify_all()
