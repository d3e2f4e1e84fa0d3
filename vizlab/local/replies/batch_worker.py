"""One batch's worker thread and its event loop, so a stop can cancel it cleanly."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class Worker:
    """One batch's thread, and the event loop and task it runs, so stop() can cancel it."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False

    def attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> bool:
        """Called from the worker thread; False if the worker was already told to stop."""
        with self._lock:
            self._loop, self._task = loop, task
            return not self._cancelled

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def cancel(self) -> None:
        """Cancel the worker's task from any thread (a no-op once its loop has closed)."""
        with self._lock:
            self._cancelled = True
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed: the worker is finishing anyway
                pass
