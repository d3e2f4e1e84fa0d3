"""uvicorn's HTTP/1.1 protocol with a header timeout: slow or incomplete headers are dropped.

uvicorn (0.54, h11) arms no timer before a request's headers arrive, so a slowloris client held
descriptors forever (issue 14, hole 7). :class:`HeaderTimeoutH11Protocol` closes a connection
whose headers are not complete in time; once they are in, the timer is off (slow bodies and
streams are bounded elsewhere). Incomplete headers are also capped in bytes (below).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeaderTimeoutH11Protocol", "protocol_with_header_timeout", "MAX_INCOMPLETE_HEADER_BYTES"]

# uvicorn's default (uvicorn/config.py, DEFAULT_MAX_INCOMPLETE_EVENT_SIZE = 16 * 1024, 0.54), kept
# and stated so that it does not change under us.
MAX_INCOMPLETE_HEADER_BYTES = 16 * 1024


class HeaderTimeoutH11Protocol(H11Protocol):
    """H11Protocol that closes a connection whose request headers take over ``header_timeout_s``."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_header_timer(reset=False)  # a new request has begun: its headers are on the clock
        else:
            self._disarm_header_timer()  # headers complete (or the connection is done)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self, reset: bool = True) -> None:
        if self._header_timer is not None and not reset:
            return
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            # Idle keep-alive connections (no bytes of a next request) are uvicorn's to time out;
            # this one started a request it did not finish in time.
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()


def protocol_with_header_timeout(header_timeout_s: float) -> Any:
    """A HeaderTimeoutH11Protocol subclass with its own timeout (uvicorn takes a class)."""
    return type("VizlabH11Protocol", (HeaderTimeoutH11Protocol,), {"header_timeout_s": float(header_timeout_s)})
