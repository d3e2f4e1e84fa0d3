"""The built-in backend: Azure OpenAI's Chat Completions wire protocol on a loopback port.

It emulates the service's routes, api-version, auth, validation, errors, content filter, usage,
streaming and quotas; what answers is :class:`vizlab.local.analyst.Analyst`, a deterministic
local analyst that never claims to be the deployment's model. Trade-offs: bodies are validated by hand so errors
are the service's; CPU work runs in the threadpool; each deployment has its model's token
limits; stopping is orderly. Details: docs/internals.md#local
"""


from __future__ import annotations

import ipaddress
import math
import socket
import threading
import time
from dataclasses import fields
from typing import Any

import uvicorn
from fastapi import FastAPI

from vizlab.local.app import create_app
from vizlab.local.config import BackendConfig
from vizlab.local.state import BackendState
from vizlab.local.http.lifecycle import InFlight
from vizlab.local.http.protocol import MAX_INCOMPLETE_HEADER_BYTES, protocol_with_header_timeout

__all__ = ["LocalBackend", "require_loopback"]

# --- running it -------------------------------------------------------------------------------


def require_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address (or 'localhost'); refuse anything else."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(
        f"The vizlab local backend binds loopback addresses only (127.0.0.1, ::1, localhost), not {host!r}: "
        "it accepts any key by default and is meant for this machine alone."
    )


# Seconds LocalBackend.stop() lets requests in flight finish before answering them 503.
STOP_GRACE_S = 1.0


class LocalBackend:
    """The local backend on a loopback port, served by uvicorn in a daemon thread.

    >>> with LocalBackend(api_key="k") as backend:       # doctest: +SKIP
    ...     print(backend.url)
    http://127.0.0.1:54321
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **config_fields: Any) -> None:
        known = {f.name for f in fields(BackendConfig)}
        unknown = sorted(set(config_fields) - known)
        if unknown:
            raise TypeError(f"LocalBackend got unknown settings {unknown}; known: {sorted(known)}")
        self._host = require_loopback(host)
        self._port = int(port)
        self._config = BackendConfig(**config_fields)
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._app: FastAPI | None = None
        self._lock = threading.Lock()

    @property
    def config(self) -> BackendConfig:
        return self._config

    @property
    def port(self) -> int:
        """The port served on. With ``port=0`` the first read reserves a free port (the socket
        that ``start()`` then serves on); once known it is only reported, so reading ``url``
        after :meth:`stop` does not bind a socket that nothing would close."""
        with self._lock:
            if self._port:
                return self._port
            return self._bind().getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def state(self) -> BackendState | None:
        """The running app's shared state (settings, stores, and the seams tests replace:
        ``count_prompt``, ``parse_json``, ``sleep``); None while stopped."""
        app = self._app
        return getattr(app.state, "vizlab", None) if app is not None else None

    def idle_s(self) -> float:
        """Seconds since the last request began or ended (0 while one is open or when stopped)."""
        app = self._app
        state = getattr(app.state, "vizlab", None) if app is not None else None
        return float(state.idle_s()) if state is not None else 0.0

    def _bind(self) -> socket.socket:
        if self._sock is None:
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self._host, self._port))
            except OSError:
                sock.close()
                raise
            self._sock = sock
            self._port = sock.getsockname()[1]  # a restart after stop() reuses the same port
        return self._sock

    def start(self) -> "LocalBackend":
        """Serve in a daemon thread; return once connections are accepted. Idempotent."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            sock = self._bind()
            app = create_app(self._config)
            uv_config = uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ws="none",
                # Slowloris guard: headers must be complete within header_timeout_s (vizlab.local.http.protocol).
                # A body that stalls for body_timeout_s is dropped the same way.
                http=protocol_with_header_timeout(self._config.header_timeout_s, self._config.body_timeout_s),
                h11_max_incomplete_event_size=MAX_INCOMPLETE_HEADER_BYTES,
                # A backstop only: stop() ends requests itself after STOP_GRACE_S (see stop()).
                timeout_graceful_shutdown=math.ceil(STOP_GRACE_S) + 10,
            )
            server = uvicorn.Server(uv_config)
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name=f"vizlab-local-{self._port}", daemon=True
            )
            thread.start()
            deadline = time.monotonic() + 15
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    server.should_exit = True
                    self._close_socket()
                    raise RuntimeError(f"the vizlab local backend did not start on {self._host}:{self._port}")
                time.sleep(0.005)
            self._server, self._thread, self._app = server, thread, app
            return self

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop serving, end the batch workers and release the port. Safe to call twice.

        New connections are refused at once; requests in flight get ``grace_s`` seconds to
        finish, then are answered 503 (a stream is ended) without an error in the log; batch
        workers are stopped (their batches end as cancelled, completed lines kept). Returns in
        about ``grace_s`` seconds plus the time a request busy in a worker thread needs.
        """
        with self._lock:
            server, thread, app = self._server, self._thread, self._app
            self._server = self._thread = self._app = None
            inflight: InFlight | None = getattr(app.state, "vizlab_inflight", None) if app is not None else None
            if inflight is not None:
                inflight.stopping.set()
            if server is not None:
                # uvicorn's own timeout (it logs an ERROR when it fires) must not come first.
                server.config.timeout_graceful_shutdown = math.ceil(max(0.0, grace_s)) + 10
                server.should_exit = True
            if thread is not None:
                # uvicorn checks should_exit every 0.1 s, then waits for open requests.
                thread.join(timeout=max(0.0, grace_s) + 0.2)
                if thread.is_alive() and inflight is not None:
                    inflight.cancel_all()
                thread.join(timeout=math.ceil(max(0.0, grace_s)) + 15)
            store = getattr(app.state, "vizlab_batches", None) if app is not None else None
            if store is not None:
                store.stop(timeout=10)
            self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "LocalBackend":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"LocalBackend({self._host}:{self._port}, {state}, deployments={list(self._config.deployments)})"
