"""uvicorn's HTTP/1.1 protocol with header and body timeouts: slow or stalled requests are dropped.

uvicorn (0.54, h11) arms no timer before a request's headers arrive, nor while its body arrives,
so slowloris clients held descriptors forever (issue 14, hole 7; issue 22: 100 stalled bodies).
:class:`HeaderTimeoutH11Protocol` closes a connection whose headers are not complete in time, or
whose body sends nothing for ``body_timeout_s`` (a stall; the clock pauses while the app, not the
client, holds up reading). Incomplete headers are also capped in bytes (below).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
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
    body_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        _no_delay(transport)
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        closing = self.transport.is_closing()
        if self.conn.their_state is h11.IDLE and not closing:
            self._arm_header_timer(reset=False)  # a new request has begun: its headers are on the clock
        else:
            self._disarm_header_timer()  # headers complete (or the connection is done)
        if self.conn.their_state is h11.SEND_BODY and not closing:
            self._arm_body_timer()  # every chunk restarts the stall clock
        else:
            self._disarm_body_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        self._disarm_body_timer()
        super().connection_lost(exc)

    def _arm_body_timer(self) -> None:
        self._disarm_body_timer()
        self._body_timer = self.loop.call_later(self.body_timeout_s, self._body_stalled)

    def _disarm_body_timer(self) -> None:
        timer = getattr(self, "_body_timer", None)
        if timer is not None:
            timer.cancel()
            self._body_timer = None

    def _body_stalled(self) -> None:
        self._body_timer = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:
            self._arm_body_timer()  # the app is behind, not the client: keep waiting
            return
        self.transport.close()  # the app's receive() then sees http.disconnect

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


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Send small writes at once (TCP_NODELAY). asyncio sets it only on sockets whose ``proto``
    is IPPROTO_TCP, and a listening socket made as ``socket(family, SOCK_STREAM)`` hands out
    proto 0; then a response's headers and body, written apart, meet the client's delayed ACK:
    about 40 ms on every keep-alive request (the openai SDK, requests, httpx), measured."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def protocol_with_header_timeout(header_timeout_s: float, body_timeout_s: float = 10.0) -> Any:
    """A HeaderTimeoutH11Protocol subclass with its own timeouts (uvicorn takes a class)."""
    timeouts = {"header_timeout_s": float(header_timeout_s), "body_timeout_s": float(body_timeout_s)}
    return type("VizlabH11Protocol", (HeaderTimeoutH11Protocol,), timeouts)
