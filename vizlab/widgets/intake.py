"""Pasted and dropped files, received in acknowledged chunks (the kernel side of ``files.js``).

The browser sends ``file-begin`` (name, type, size), then 1 MiB ``file-chunk`` messages, each
acknowledged with the bytes received so far (the progress bar shows that), then ``file-end``;
the finished file is handed on as an ipywidgets ``FileUpload`` record, so the panels' states
take it as they take an upload. No message is big, so Jupyter's 10 MiB websocket limit does
not apply; the panel's Upload / Attach button goes this way too (``takes_over``). A file over
:data:`UPLOAD_LIMIT` is refused in the browser before sending; the kernel hears of every
refusal (``file-refused``) and says it in the panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from vizlab.conversation.storage import human_bytes
from vizlab.images.encode import DEFAULT_MAX_BYTES
from vizlab.images.files import RAW_INPUT_FACTOR

__all__ = ["FileIntakeWidget", "UPLOAD_LIMIT", "TOO_BIG_NOTE", "refusal_message"]

# The most vizlab reads of one image file: RAW_INPUT_FACTOR (4) x the 20 MiB an image may be
# when sent (vizlab.images.DEFAULT_MAX_BYTES, OpenAI's "up to 20MB per image", checked 2025).
UPLOAD_LIMIT = RAW_INPUT_FACTOR * DEFAULT_MAX_BYTES
TOO_BIG_NOTE = (
    f"vizlab reads at most {human_bytes(UPLOAD_LIMIT)} of a file ({RAW_INPUT_FACTOR} x the "
    f"{human_bytes(DEFAULT_MAX_BYTES)} an image may be when sent). Save a smaller copy (a JPEG, or scaled down) and "
    "attach that. Smaller files go in 1 MB pieces with a progress bar, so Jupyter's 10 MB message limit (which "
    "`make lab` raises to 100 MB) does not apply; from code, a path (panel.attach('photo.png')) skips the browser."
)

Record = dict[str, Any]


def refusal_message(name: str, size: int, mime: str, reason: str, limit: int = UPLOAD_LIMIT) -> str:
    """What the panel says about a file the browser refused to send."""
    if reason == "size":
        return f"{name}: {name} is {human_bytes(size)}, over the {human_bytes(limit)} limit, so it was not sent. {TOO_BIG_NOTE}"
    return f"{name}: {name} ({mime or 'unknown type'}) was not attached: only images (and PDFs) can be attached."


class FileIntakeWidget(anywidget.AnyWidget):
    """An anywidget that receives pasted and dropped files (see the module docstring)."""

    max_bytes = traitlets.Int(UPLOAD_LIMIT).tag(sync=True)
    too_big_note = traitlets.Unicode(TOO_BIG_NOTE).tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)  # the accessible name of the control
    # The panel's FileUpload (its CSS class) whose clicks open this widget's chunked chooser instead,
    # and the panel's CSS class (so one panel's button never feeds another's): files.js vizlabTakeOver.
    takes_over = traitlets.Unicode("").tag(sync=True)
    panel = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._incoming: dict[str, dict[str, Any]] = {}
        self._file_callbacks: list[Callable[[list[Record]], None]] = []
        self._refused_callbacks: list[Callable[[str], None]] = []

    def on_files(self, callback: Callable[[list[Record]], None]) -> None:
        """Call ``callback([record])`` for each file received whole (a FileUpload-style record)."""
        self._file_callbacks.append(callback)

    def on_refused(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(message)`` for each file refused (in the browser or here)."""
        self._refused_callbacks.append(callback)

    def receive_files(self, records: list[Record]) -> None:
        """What a finished paste or drop does, from Python (tests, notebooks)."""
        for callback in list(self._file_callbacks):
            callback(records)

    def _refuse(self, message: str) -> None:
        for callback in list(self._refused_callbacks):
            callback(message)

    def handle_intake(self, content: Any, buffers: Any) -> bool:
        """Handle one file message from the browser; False when ``content`` is not one."""
        if not isinstance(content, dict) or not str(content.get("event", "")).startswith("file-"):
            return False
        event, file_id = content["event"], str(content.get("id", ""))
        if event == "file-refused":
            self._refuse(refusal_message(str(content.get("name") or "a file"), int(content.get("size") or 0),
                                         str(content.get("type") or ""), str(content.get("reason") or ""), self.max_bytes))  # fmt: skip
        elif event == "file-begin":
            self._begin(file_id, content)
        elif event == "file-chunk":
            self._chunk(file_id, content, buffers)
        elif event == "file-end":
            self._end(file_id)
        return True

    def _ack(self, file_id: str, received: int, error: str = "") -> None:
        self.send({"event": "file-ack", "id": file_id, "received": received, "error": error})

    def _begin(self, file_id: str, content: dict[str, Any]) -> None:
        name, size = str(content.get("name") or "pasted file"), int(content.get("size") or 0)
        if size > self.max_bytes:  # the browser checks first; a changed limit is checked here too
            message = refusal_message(name, size, str(content.get("type") or ""), "size", self.max_bytes)
            self._refuse(message)
            self._ack(file_id, 0, message.partition(": ")[2])
            return
        self._incoming[file_id] = {
            "name": name, "type": str(content.get("type") or ""), "size": size,
            "last_modified": int(content.get("last_modified") or 0), "data": bytearray(),
            "index": int(content.get("index") or 0),  # its place in one drop / choice of several files
        }  # fmt: skip
        self._ack(file_id, 0)

    def _chunk(self, file_id: str, content: dict[str, Any], buffers: Any) -> None:
        entry = self._incoming.get(file_id)
        if entry is None or not buffers:
            self._ack(file_id, 0, "the upload was interrupted (the kernel lost it): paste or drop the file again")
            return
        data: bytearray = entry["data"]
        if int(content.get("offset", -1)) != len(data) or len(data) + len(buffers[0]) > entry["size"]:
            self._incoming.pop(file_id, None)
            self._ack(file_id, len(data), f"{entry['name']} arrived out of order: paste or drop it again")
            return
        data += bytes(buffers[0])
        self._ack(file_id, len(data))

    def _end(self, file_id: str) -> None:
        entry = self._incoming.pop(file_id, None)
        if entry is None or len(entry["data"]) != entry["size"]:
            self._ack(file_id, 0, "the upload ended incomplete: paste or drop the file again")
            return
        data = bytes(entry.pop("data"))
        record = {**entry, "content": memoryview(data)}
        try:
            self.receive_files([record])
        finally:
            self._ack(file_id, len(data))
