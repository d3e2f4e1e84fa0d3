"""Small front-end components of the panels, as anywidget ESM shipped in the package.

:class:`TranscriptView` (a scrolling chat with Copy buttons), :class:`PromptBox` (Enter sends;
paste or drop attaches, :mod:`vizlab.widgets.intake`), :class:`DropZone`, :class:`CodeView` and
:class:`ZoomImage`. ipywidgets alone has no scroll control, no key events and no clipboard access.
The JavaScript is in ``static/`` and loaded with ``importlib.resources``, never fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

import anywidget
import traitlets

from vizlab.widgets.intake import FileIntakeWidget

__all__ = ["TranscriptView", "PromptBox", "CodeView", "ZoomImage", "DropZone", "AccessibleNames"]


def _static(name: str) -> str:
    return resources.files("vizlab.widgets").joinpath("static").joinpath(name).read_text(encoding="utf-8")


class TranscriptView(anywidget.AnyWidget):
    """The chat's rows: ``rows`` (role, html, copy, stats, warnings, thumbs) and ``pending``."""

    _esm = traitlets.Unicode(_static("transcript.js")).tag(sync=True)
    _css = traitlets.Unicode(_static("chat.css")).tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    pending = traitlets.Dict().tag(sync=True)
    max_height = traitlets.Unicode("420px").tag(sync=True)
    empty_text = traitlets.Unicode("No messages yet: attach an image, type a question, press Enter.").tag(sync=True)
    actions = traitlets.Bool(False).tag(sync=True)  # Edit / Delete buttons on each row

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._action_callbacks: list[Callable[[str, int], None]] = []
        self.on_msg(self._on_action_msg)

    def on_action(self, callback: Callable[[str, int], None]) -> None:
        """Call ``callback(action, n)`` when a row's Edit or Delete is pressed (``n``: message number, 1 first)."""
        self._action_callbacks.append(callback)

    def press(self, action: str, n: int) -> None:
        """What a row's button does, from Python (tests, notebooks)."""
        for callback in list(self._action_callbacks):
            callback(action, n)

    def _on_action_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") in ("edit", "delete") and isinstance(content.get("n"), int):
            self.press(content["event"], content["n"])


class PromptBox(FileIntakeWidget):
    """A textarea: ``value`` is synced as you type; Enter calls the :meth:`on_submit` callbacks;
    a pasted or dropped file goes to the :meth:`on_files` callbacks."""

    _esm = traitlets.Unicode(_static("files.js") + _static("prompt.js")).tag(sync=True)
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._submit_callbacks: list[Callable[[PromptBox], None]] = []
        self.on_msg(self._on_custom_msg)

    def on_submit(self, callback: Callable[[PromptBox], None]) -> None:
        """Call ``callback(self)`` when Enter is pressed (Shift+Enter is a newline)."""
        self._submit_callbacks.append(callback)

    def submit(self) -> None:
        """What Enter does, from Python (tests, notebooks)."""
        for callback in list(self._submit_callbacks):
            callback(self)

    def _on_custom_msg(self, _widget: Any, content: Any, buffers: Any) -> None:
        if self.handle_intake(content, buffers):
            return
        if isinstance(content, dict) and content.get("event") == "submit":
            value = content.get("value")
            if isinstance(value, str):
                self.value = value  # the message carries the text: no race with the value sync
            self.submit()


class CodeView(anywidget.AnyWidget):
    """Code in a box with a Copy button; hidden while ``code`` is empty."""

    _esm = traitlets.Unicode(_static("code.js")).tag(sync=True)
    _css = traitlets.Unicode(_static("chat.css")).tag(sync=True)
    code = traitlets.Unicode("").tag(sync=True)


class ZoomImage(anywidget.AnyWidget):
    """A picture that fits its column; a click shows its real pixels (``zoomed``), scrollable."""

    _esm = traitlets.Unicode(_static("zoom.js")).tag(sync=True)
    _css = traitlets.Unicode(_static("zoom.css")).tag(sync=True)
    src = traitlets.Unicode("").tag(sync=True)  # a data: URL (nothing fetched)
    zoomed = traitlets.Bool(False).tag(sync=True)


class DropZone(FileIntakeWidget):
    """A box to drop or paste files on (or open the file chooser with Enter); see :meth:`on_files`."""

    _esm = traitlets.Unicode(_static("files.js") + _static("dropzone.js")).tag(sync=True)
    _css = traitlets.Unicode(_static("chat.css")).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_msg(lambda _w, content, buffers: self.handle_intake(content, buffers))


class AccessibleNames(anywidget.AnyWidget):
    """Hidden: gives the panel's controls an aria-label, ``names`` as ``[[css class, name], ...]``."""

    _esm = traitlets.Unicode(_static("labels.js")).tag(sync=True)
    names = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
