"""What every panel shares: display delegation to ``.widget`` and the background-call runner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Panel:
    """Base of the panels: ``.widget`` is the root container; a notebook cell shows it."""

    widget: Any

    #: Run long calls (chat requests) in a background thread so the notebook stays usable.
    #: Tests set it to False to run them synchronously, or call :meth:`wait`.
    run_in_thread: bool = True

    _thread: threading.Thread | None = None

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _run(self, work: Callable[[], None]) -> None:
        """Run ``work`` now, or in a daemon thread when :attr:`run_in_thread` is set.

        ipykernel sends widget updates made from another thread, so ``work`` may set widget
        values directly; the cell that created the panel is not blocked meanwhile.
        """
        if not self.run_in_thread:
            work()
            return
        thread = threading.Thread(target=work, name=f"vizlab-{type(self).__name__}", daemon=True)
        self._thread = thread
        thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running background call; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True


def auto_width() -> Any:
    """A layout as wide as the control's label (ipywidgets buttons default to a fixed width)."""
    import ipywidgets as W

    return W.Layout(width="auto")

