"""The compare-chat panel: one prompt row, up to 3 deployments answering side by side.

A thin view over :class:`~vizlab.widgets.compare_chat_state.CompareChatState`: each column is a
transcript (Markdown answers, Copy buttons) with its deployment, its running tokens and cost;
Send goes to every column in parallel in a background thread and each answer streams into
its own column. ``CompareChatPanel(deployments=["gpt-4o", "gpt-4.1-mini", "gpt-5.4-mini"])``
works offline: the built-in backend serves those.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from vizlab.widgets._common import (
    BOX_MUTED_COLOUR,
    ERROR_STYLE,
    MUTED_COLOUR,
    ROW,
    Panel,
    auto_width,
    file_error,
    fill_layout,
    png_data_url,
    snapshot_box,
    stylesheet,
    text_block,
    toggle_layout,
)
from vizlab.widgets.chat_state import ChatSettings, ChatState
from vizlab.widgets.compare_chat_state import CompareChatState
from vizlab.widgets.markdown import plain_html, render_markdown
from vizlab.widgets.state import DETAILS, escape, known_model, model_note, thumbnail_png
from vizlab.widgets.transcript import PromptBox, TranscriptView

if TYPE_CHECKING:
    from vizlab.client.core import Client

__all__ = ["CompareChatPanel"]

_STREAM_REFRESH_S = 0.05


def chat_rows(state: ChatState, thumb: Any) -> list[dict[str, Any]]:
    """A chat state's turns as transcript rows (``thumb(image)`` -> PNG bytes)."""
    rows = []
    for n, view in enumerate(state.turn_views(), start=1):
        assistant = view.role == "assistant"
        rows.append({
            "role": view.role, "n": n,
            "html": (render_markdown(view.text) if assistant else plain_html(view.text)) or "<i>(no text)</i>",
            "copy": view.text if assistant else "", "stats": view.stats, "warnings": list(view.warnings),
            "thumbs": [png_data_url(thumb(i)) for i in view.images],
        })  # fmt: skip
    return rows


class _Column:
    def __init__(self, state: ChatState, height: str) -> None:
        self.state = state
        # issue 19: the client's note while the model is unknown or assumed, rather than a guess
        rules = f"token rules {state.client.token_model}" if known_model(state.client) else model_note(state.client)
        self.title = W.HTML(text_block(f"<b>{escape(state.client.deployment)}</b> <small style='color:{MUTED_COLOUR}'>"
                                       f"{escape(rules)}</small>"))  # fmt: skip
        self.transcript = TranscriptView(max_height=height, layout=fill_layout())
        self.transcript.add_class("vizlab-compare-chat-transcript")
        self.totals = W.HTML()
        self.totals.add_class("vizlab-compare-chat-totals")
        self.error = W.HTML()
        self.error.add_class("vizlab-compare-chat-error")
        self.box = W.VBox([self.title, self.transcript, self.totals, self.error], layout=W.Layout(min_width="0"))
        self.box.add_class("vizlab-compare-chat-column")
        self.last_update = 0.0


class CompareChatPanel(Panel):
    """Chat with up to 3 deployments at once: the same turns, side by side, tokens and cost per column.

    ``deployments`` default to the first three the backend serves. ``client`` defaults to
    :func:`vizlab.connect` (the built-in backend when nothing is configured).
    """

    def __init__(self, client: Client | None = None, deployments: Sequence[str] | None = None, *,
                 max_tokens: int = 1000, max_usd: float | None = None, transcript_height: str = "360px") -> None:  # fmt: skip
        if client is None:
            from vizlab.client.core import connect

            client = connect(verbose=False)
        if deployments is None:
            served = ChatState(client).deployments()
            deployments = served[:3]
        self.state = CompareChatState(client, deployments, max_tokens=max_tokens, max_usd=max_usd)
        self._thumbs: dict[str, bytes] = {}
        self._pending: dict[str, Any] = {}
        self.columns = [_Column(c, transcript_height) for c in self.state.columns]
        self.system_text = W.Textarea(placeholder="System message for every column", description="System",
                                      layout=fill_layout(height="48px"))  # fmt: skip
        self.system_text.add_class("vizlab-compare-chat-system")
        self.file_upload = W.FileUpload(accept="image/*", multiple=True, description="Attach image", layout=auto_width())
        self.file_upload.add_class("vizlab-compare-chat-upload")
        self.file_upload.observe(self._on_upload, names="value")
        self.path_text = W.Text(placeholder="or an image path", description="Image path", layout=W.Layout(width="320px"))
        self.path_text.add_class("vizlab-compare-chat-path")
        self.attach_button = W.Button(description="Attach", icon="paperclip", layout=auto_width())
        self.attach_button.on_click(lambda _b: self.attach(self.path_text.value.strip()))
        self.attachments_html = W.HTML()
        self.attachments_html.add_class("vizlab-compare-chat-attachments")
        self.detail_picker = W.ToggleButtons(options=list(DETAILS), value="auto", description="Detail", layout=toggle_layout(),
                                             style={"button_width": "64px"})  # fmt: skip
        self.detail_picker.add_class("vizlab-compare-chat-detail")
        self.max_tokens = W.BoundedIntText(value=max_tokens, min=1, max=128_000, description="Max tokens",
                                           tooltip="Capped per column at its deployment's output limit",
                                           layout=W.Layout(width="200px"))  # fmt: skip
        self.prompt = PromptBox(placeholder="One question for every column (Enter sends, Shift+Enter: new line)",
                                layout=fill_layout())  # fmt: skip
        self.prompt.add_class("vizlab-compare-chat-prompt")
        self.prompt.on_submit(lambda _p: self.send())
        self.prompt.on_files(self._on_files)
        self.prompt.on_refused(lambda message: self._error(message, file_error(message)))
        self.send_button = W.Button(description="Send to all", icon="paper-plane", button_style="primary", layout=auto_width())
        self.send_button.add_class("vizlab-compare-chat-send")
        self.send_button.on_click(lambda _b: self.send())
        self.stop_button = W.Button(description="Stop", icon="stop", disabled=True, layout=auto_width())
        self.stop_button.on_click(lambda _b: self.state.cancel())
        self.new_chat_button = W.Button(description="New chat", icon="refresh", layout=auto_width())
        self.new_chat_button.on_click(lambda _b: self.new_chat())
        self.error_html = W.HTML()
        self.error_html.add_class("vizlab-compare-chat-error")
        grid = W.HBox([c.box for c in self.columns], layout=W.Layout(
            display="grid", grid_template_columns=f"repeat(auto-fit, minmax(min(260px, 100%), 1fr))", grid_gap="6px",
            width="100%"))  # fmt: skip
        self.widget = W.VBox([
            self.system_text, grid, self.error_html,
            W.HBox([self.file_upload, self.path_text, self.attach_button], layout=ROW), self.attachments_html,
            W.HBox([self.detail_picker, self.max_tokens], layout=ROW), self.prompt,
            W.HBox([self.send_button, self.stop_button, self.new_chat_button], layout=ROW),
            stylesheet(self.file_upload, self.detail_picker),
        ], layout=W.Layout(width="100%"))  # fmt: skip
        self.widget.add_class("vizlab-compare-chat")
        self.refresh()

    # -- actions --

    def attach(self, source: Any) -> None:
        if isinstance(source, str) and not source:
            self._error("Type the path of an image file before pressing Attach.")
            return
        problems = self.state.attach_all([source])
        self._error("; ".join(problems), "<br>".join(file_error(p) for p in problems))
        if not problems and isinstance(source, str):
            self.path_text.value = ""
        self._show_attachments()

    def _on_upload(self, change: dict[str, Any]) -> None:
        records = list(change["new"] or ())
        if records:
            self.file_upload.value = ()
            self._on_files(records)

    def _on_files(self, records: list[dict[str, Any]]) -> None:
        problems = self.state.attach_all(records)
        self._error("; ".join(problems), "<br>".join(file_error(p) for p in problems))
        self._show_attachments()

    def send(self) -> None:
        """Send the prompt and attachments to every column (what Send to all does)."""
        if self.state.busy or self.send_button.disabled:
            return
        prompt = self.prompt.value
        if not prompt.strip() and not self.state.attachments:
            self._error("Type a question (or attach an image) before pressing Send.")
            return
        system = self.system_text.value.strip()
        if system != (self.state.columns[0].conversation.system or ""):
            self.state.apply_system(system)
        settings = ChatSettings(max_tokens=int(self.max_tokens.value))
        detail = self.detail_picker.value
        pending = {"role": "user", "html": plain_html(prompt) or "<i>(no text)</i>",
                   "thumbs": [png_data_url(self._thumb(a)) for a in self.state.attachments]}  # fmt: skip
        self._pending = pending
        self._set_busy(True)
        self._error("")
        self.prompt.value = ""
        for col in self.columns:
            col.transcript.pending = dict(pending)

        def work() -> None:
            results: list[bool] = []
            try:
                results = self.state.send(prompt, settings=settings, detail=detail, on_chunk=self._on_chunk)
            finally:
                if results and not any(results):
                    self.prompt.value = prompt  # nothing went through: the question comes back
                for col in self.columns:
                    col.transcript.pending = {}
                self._set_busy(False)
                self._error(self.state.error)
                self.refresh()

        self._run(work)

    def _on_chunk(self, index: int, text: str) -> None:
        col = self.columns[index]
        now = time.monotonic()
        if now - col.last_update < _STREAM_REFRESH_S:
            return
        col.last_update = now
        col.transcript.pending = {**self._pending, "answer_html": render_markdown(text) + " ▌"}

    def new_chat(self) -> None:
        if not self.state.new_chat():
            self._error("A request is still running: press Stop and wait for it to end, then New chat.")
            return
        self._error("")
        self.refresh()

    # -- view --

    def _thumb(self, image: Any) -> bytes:
        if image.sha256 not in self._thumbs:
            self._thumbs[image.sha256] = thumbnail_png(image, (120, 120))
        return self._thumbs[image.sha256]

    def _set_busy(self, busy: bool) -> None:
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy
        self.new_chat_button.disabled = busy

    def _error(self, message: str, html_body: str = "") -> None:
        self.error_html.value = f'<div style="{ERROR_STYLE}">⚠️ {html_body or escape(message)}</div>' if message else ""

    def _show_attachments(self) -> None:
        names = ", ".join(f"📎 {a.name} {a.width}x{a.height}" for a in self.state.attachments)
        self.attachments_html.value = text_block(f"<small>{escape(names)}</small>", f"color:{MUTED_COLOUR}") if names else ""

    def refresh(self) -> None:
        """Redraw every column (turns, totals, its last error) from the state."""
        for col in self.columns:
            col.transcript.rows = chat_rows(col.state, self._thumb)
            col.totals.value = text_block(f"<small><b>{escape(col.state.totals_line())}</b></small>")
            err = col.state.error
            col.error.value = f'<div style="{ERROR_STYLE}">⚠️ {escape(err)}</div>' if err else ""
        self._show_attachments()

    def snapshot_html(self) -> str:
        """The columns side by side (turns, totals) as static HTML, for a saved notebook."""
        cells = []
        for col in self.columns:
            turns = "".join(
                f'<div style="margin:3px 0;padding:4px 6px;border-radius:6px;background:'
                f'{"#eef4ff" if r["role"] == "user" else "#f6f6f6"}"><b>{"You" if r["role"] == "user" else "Assistant"}:</b> '
                f'{r["html"]}<div style="font-size:11px;color:{BOX_MUTED_COLOUR}">{escape(r["stats"])}</div></div>'
                for r in chat_rows(col.state, self._thumb)
            ) or f'<div style="color:{BOX_MUTED_COLOUR}">No messages yet.</div>'
            cells.append(
                f'<div style="flex:1 1 260px;min-width:0;padding:0 4px"><h4 style="margin:4px 0">'
                f"{escape(col.state.client.deployment)}</h4>{turns}"
                f'<div style="font-size:12px"><b>{escape(col.state.totals_line())}</b></div></div>'
            )
        return snapshot_box("CompareChatPanel", f'<div style="display:flex;flex-wrap:wrap">{"".join(cells)}</div>')
