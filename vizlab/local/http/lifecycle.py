"""An orderly stop for the built-in backend: requests in flight get a grace period, then a 503.

uvicorn's graceful shutdown cancels tasks and logs tracebacks; a stop the caller asked for is not
an error. :class:`InFlight` tracks request tasks and :meth:`LocalBackend.stop` cancels them after
its own grace period; :class:`StopMiddleware` turns that into a 503 (or the end of a stream), and
nothing is logged. uvicorn's timeout remains the backstop for CPU-bound work.
"""

from __future__ import annotations

import threading
from asyncio import AbstractEventLoop, CancelledError, Task, current_task, get_running_loop
from typing import Any

from vizlab.local.http.errors import AzureError

__all__ = ["InFlight", "StopMiddleware", "STOPPED_MESSAGE", "uncancel_task"]

STOPPED_MESSAGE = (
    "The vizlab local backend was stopped while this request was in flight; it was not answered. "
    "Start the backend again and retry the request."
)


class InFlight:
    """The HTTP request tasks being served, and whether the backend is stopping. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: set[Task[Any]] = set()
        self._loop: AbstractEventLoop | None = None
        self.stopping = threading.Event()

    def add(self, task: Task[Any], loop: AbstractEventLoop) -> None:
        with self._lock:
            self._tasks.add(task)
            self._loop = loop

    def discard(self, task: Task[Any]) -> None:
        with self._lock:
            self._tasks.discard(task)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

    def cancel_all(self) -> int:
        """Cancel every request task (from any thread); return how many were asked to stop."""
        with self._lock:
            tasks, loop = list(self._tasks), self._loop
        if not tasks or loop is None:
            return 0

        def cancel() -> None:
            for task in tasks:
                task.cancel()

        try:
            loop.call_soon_threadsafe(cancel)
        except RuntimeError:  # the loop is already closed: nothing left to cancel
            return 0
        return len(tasks)


class StopMiddleware:
    """Pure ASGI middleware: track each HTTP request; answer the ones a stop cancels."""

    def __init__(self, app: Any, inflight: InFlight) -> None:
        self.app = app
        self.inflight = inflight

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        task = current_task()
        if scope["type"] != "http" or task is None:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        self.inflight.add(task, get_running_loop())
        try:
            await self.app(scope, receive, tracked_send)
        except CancelledError:
            if not self.inflight.stopping.is_set():
                raise  # not ours: let it propagate
            uncancel_task(task)
            if not started:
                error = AzureError(503, "ServiceUnavailable", STOPPED_MESSAGE, type="server_error",
                                   headers={"connection": "close"})  # fmt: skip
                await error.response()(scope, receive, send)
            else:  # a stream was under way: end its body; the client sees no [DONE]
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.inflight.discard(task)


def uncancel_task(task: Task[Any]) -> None:
    """Forget a handled cancellation (Python 3.11+), so later awaits in this task run normally."""
    uncancel = getattr(task, "uncancel", None)  # absent on 3.10, where nothing needs undoing
    if uncancel is not None:
        uncancel()
