"""The kernel's side of the count route: text counted by the shared backend (issue 26).

:class:`SharedCounter` is a :data:`vizlab.tokens.text.CountService` that posts texts to a shared
backend's ``POST /vizlab/tokens/count`` (vizlab.local.routes.counting) over one kept-alive
connection. vizlab.connect installs it for the first shared backend a kernel attaches to; any
failure (the backend idled out, was stopped, answered oddly) raises, and vizlab.tokens then
counts in the kernel instead, with the same result.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["SharedCounter", "COUNT_PATH", "COUNT_TIMEOUT_S"]

COUNT_PATH = "/vizlab/tokens/count"  # served by vizlab.local.routes.counting

# Seconds a count may take before the kernel counts itself: a backend busy with OCR on every core
# still answers a count in well under a second; a stopped one refuses the connection at once.
COUNT_TIMEOUT_S = 10.0


class SharedCounter:
    """Counts text on the shared backend at ``url`` with ``key`` (never shown in a repr)."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        # One kept-alive connection pool, shared by the kernel's threads (httpx.Client is thread-safe).
        self._http = httpx.Client(base_url=self.url, timeout=COUNT_TIMEOUT_S, headers={"api-key": key})

    def __repr__(self) -> str:
        return f"SharedCounter({self.url!r})"

    def close(self) -> None:
        """Close its connections (vizlab.tokens does, when it stops asking this backend)."""
        self._http.close()

    def __call__(self, encoding: str, texts: list[str]) -> list[int]:
        response = self._http.post(COUNT_PATH, json={"encoding": encoding, "texts": texts})
        response.raise_for_status()
        body: Any = response.json()
        if not isinstance(body, dict) or body.get("encoding") != encoding or not isinstance(body.get("counts"), list):
            raise ValueError(f"the shared backend at {self.url} answered a count without its counts")
        return list(body["counts"])
