"""The chat panel's editing row: regenerate, pick a message to edit (cost shown first) or delete,
import a saved chat. A mixin of :class:`~vizlab.widgets.chat.ChatPanel`; the logic is in
:class:`~vizlab.widgets.chat_edit.ChatEditing` (the state), this only wires controls to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from vizlab.widgets._common import MUTED_COLOUR, ROW, auto_width, fill_layout, text_block
from vizlab.widgets.markdown import plain_html
from vizlab.widgets.state import escape

if TYPE_CHECKING:
    from vizlab.widgets.chat_state import ChatSettings, ChatState
    from vizlab.widgets.transcript import TranscriptView

__all__ = ["ChatEditingView"]

_LABEL_CHARS = 48


class ChatEditingView:
    """Regenerate, edit-and-resend, delete and import controls for the chat panel."""

    if TYPE_CHECKING:
        state: ChatState
        transcript: TranscriptView
        system_text: W.Textarea
        _pending: dict[str, Any]

        def settings(self) -> ChatSettings: ...
        def rows(self) -> list[dict[str, Any]]: ...
        def refresh(self) -> None: ...
        def _set_busy(self, busy: bool) -> None: ...
        def _show_error(self, message: str, html_body: str = "") -> None: ...
        def _run(self, work: Callable[[], None]) -> None: ...
        def _on_chunk(self, text: str) -> None: ...

    def _build_editing(self) -> Any:
        self.regenerate_button = W.Button(description="Regenerate", icon="redo", layout=auto_width(),
                                          tooltip="Ask again for the last answer (it is replaced)")  # fmt: skip
        self.regenerate_button.add_class("vizlab-chat-regenerate")
        self.regenerate_button.on_click(lambda _b: self.regenerate())
        self.turn_picker = W.Dropdown(options=[("(no messages)", -1)], value=-1, description="Message",
                                      layout=W.Layout(width="420px"))  # fmt: skip
        self.turn_picker.add_class("vizlab-chat-turn-picker")
        self.turn_picker.observe(lambda _c: self._on_pick(), names="value")
        self.edit_text = W.Textarea(description="Edit", placeholder="Pick one of your messages to edit it",
                                    layout=fill_layout(height="56px"))  # fmt: skip
        self.edit_text.add_class("vizlab-chat-edit-text")
        self.edit_text.observe(lambda _c: self._show_edit_preview(), names="value")
        self.resend_button = W.Button(description="Resend from here", icon="reply", layout=auto_width(),
                                      tooltip="Send the edited message; the later messages are dropped")  # fmt: skip
        self.resend_button.add_class("vizlab-chat-resend")
        self.resend_button.on_click(lambda _b: self.edit_and_resend())
        self.delete_button = W.Button(description="Delete message", icon="trash", layout=auto_width(),
                                      tooltip="Delete the picked message (a question goes with its answer)")  # fmt: skip
        self.delete_button.add_class("vizlab-chat-delete")
        self.delete_button.on_click(lambda _b: self.delete_turn())
        self.import_upload = W.FileUpload(accept=".json,application/json", multiple=False, description="Import chat",
                                          layout=auto_width())  # fmt: skip
        self.import_upload.add_class("vizlab-chat-import")
        self.import_upload.observe(self._on_import, names="value")
        self.edit_preview_html = W.HTML()
        self.edit_preview_html.add_class("vizlab-chat-edit-preview")
        return W.VBox([
            W.HBox([self.regenerate_button, self.turn_picker, self.resend_button, self.delete_button, self.import_upload],
                   layout=ROW),
            self.edit_text,
            self.edit_preview_html,
        ])  # fmt: skip

    # -- actions --

    def on_row_action(self, action: str, n: int) -> None:
        """A transcript row's Edit or Delete (``n``: message number): pick it; Delete deletes it."""
        if self.state.busy or not 1 <= n <= len(self.state.conversation.turns):
            return
        self.turn_picker.value = n - 1
        if action == "delete":
            self.delete_turn()

    def regenerate(self) -> None:
        """Ask again for the last answer (what the Regenerate button does)."""
        if not self.state.can_regenerate():
            self._show_error("Nothing to regenerate yet: ask a question first.")
            return
        rows = self.rows()
        self._start(rows[:-2], rows[-2], lambda s: self.state.regenerate(on_chunk=self._on_chunk, settings=s, claimed=True))

    def edit_and_resend(self) -> None:
        """Resend from the picked message with the edited text (what Resend from here does)."""
        index, text = int(self.turn_picker.value), self.edit_text.value
        turns = self.state.conversation.turns
        if not 0 <= index < len(turns) or turns[index].role != "user":
            self._show_error("Pick one of your messages under Message first; an answer cannot be edited.")
            return
        rows = self.rows()
        shown = {**rows[index], "html": plain_html(text) or "<i>(no text)</i>"}
        self._start(rows[:index], shown,
                    lambda s: self.state.edit_and_resend(index, text, on_chunk=self._on_chunk, settings=s, claimed=True))  # fmt: skip

    def delete_turn(self) -> None:
        """Delete the picked message (what Delete message does)."""
        index = int(self.turn_picker.value)
        if index < 0:
            self._show_error("Pick a message under Message first.")
            return
        self.state.delete_turn(index)
        self._show_error(self.state.error)
        self.refresh()

    def import_chat(self, source: Any) -> None:
        """Replace the chat with a saved one (a path or the file's bytes)."""
        ok = self.state.import_chat(source)
        self._show_error(self.state.error)
        if ok:
            self.system_text.value = self.state.conversation.system or ""
        self.refresh()

    def _on_import(self, change: dict[str, Any]) -> None:
        records = list(change["new"] or ())
        if not records:
            return
        self.import_upload.value = ()
        self.import_chat(bytes(records[-1]["content"]))

    def _start(self, rows: list[dict[str, Any]], pending: dict[str, Any], call: Callable[[ChatSettings], bool]) -> None:
        if self.state.busy:
            return
        try:
            settings = self.settings()
        except ValueError as e:
            self._show_error(str(e))
            return
        if not self.state.claim():
            self._show_error(self.state.error)
            return
        self._pending = dict(pending)
        self._set_busy(True)
        self._show_error("")
        self.transcript.rows = rows
        self.transcript.pending = dict(pending)

        def work() -> None:
            try:
                call(settings)
            finally:
                self._pending = {}
                self.transcript.pending = {}
                self._set_busy(False)
                self._show_error(self.state.error)
                self.refresh()

        try:
            self._run(work)
        except BaseException:
            self.state.release()
            self.transcript.pending = {}
            self._set_busy(False)
            self.refresh()
            raise

    # -- view --

    def _refresh_editing(self) -> None:
        turns = self.state.conversation.turns
        options: list[tuple[str, int]] = []
        for i, turn in enumerate(turns):
            who = "You" if turn.role == "user" else "Assistant"
            text = " ".join(turn.text.split()) or f"({len(turn.images)} image{'s' * (len(turn.images) != 1)})"
            text = text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"
            options.append((f"{i + 1}. {who}: {text}", i))
        current = self.turn_picker.value
        users = [i for i, t in enumerate(turns) if t.role == "user"]
        keep = current if 0 <= current < len(turns) else (users[-1] if users else (0 if options else -1))
        if list(self.turn_picker.options) != (options or [("(no messages)", -1)]):
            self.turn_picker.options = options or [("(no messages)", -1)]
        if self.turn_picker.value != keep:
            self.turn_picker.value = keep
        self._on_pick()
        busy = self.state.busy
        self.regenerate_button.disabled = busy or not self.state.can_regenerate()
        self.delete_button.disabled = busy or not turns
        self.resend_button.disabled = busy or not users

    def _on_pick(self) -> None:
        index = int(self.turn_picker.value)
        turns = self.state.conversation.turns
        editable = 0 <= index < len(turns) and turns[index].role == "user"
        self.edit_text.disabled = not editable
        self.edit_text.value = turns[index].text if editable else ""
        self._show_edit_preview()

    def _show_edit_preview(self) -> None:
        index = int(self.turn_picker.value)
        turns = self.state.conversation.turns
        if not (0 <= index < len(turns) and turns[index].role == "user"):
            self.edit_preview_html.value = ""
            return
        try:
            settings = self.settings()
        except ValueError:
            return
        line = self.state.edit_preview(index, self.edit_text.value, settings).line()
        self.edit_preview_html.value = text_block(f"<small>{escape(line)}</small>", f"color:{MUTED_COLOUR}")
