"""The chat panel: a notebook version of the Azure AI Foundry chat playground, for images.

A thin view over :class:`~vizlab.widgets.chat_state.ChatState`: requests run in a background
thread; an error leaves the conversation as before Send; Stop keeps the partial answer. Like the
playground: Enter sends, answers are sanitised Markdown with a Copy button, settings per model
family, a live estimate, and "View code". Details: docs/internals.md#widgets
"""

from __future__ import annotations

import html
import os
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from vizlab.conversation.storage import human_bytes
from vizlab.widgets._common import (
    BOX_MUTED_COLOUR,
    BOX_TEXT_COLOUR,
    ERROR_STYLE,
    MUTED_COLOUR,
    ROW,
    TEXT_STYLE,
    WARNING_COLOUR,
    Panel,
    auto_width,
    file_error,
    fill_layout,
    png_data_url,
    snapshot_box,
    stylesheet,
    text_block,
    thumbnail_layout,
    toggle_layout,
)
from vizlab.widgets.chat_edit_view import ChatEditingView
from vizlab.widgets.chat_state import ChatSettings, ChatState
from vizlab.widgets.code import CODE_KINDS
from vizlab.widgets.documents import document_row, document_thumbnail_png, is_document
from vizlab.widgets.markdown import plain_html, render_markdown
from vizlab.widgets.state import DETAILS, escape, known_model, model_note, thumbnail_png
from vizlab.widgets.transcript import AccessibleNames, CodeView, PromptBox, TranscriptView

if TYPE_CHECKING:
    from vizlab.client.core import Client
    from vizlab.conversation.core import Conversation
    from vizlab.widgets.upload import UploadPanel

__all__ = ["ChatPanel"]

_STREAM_REFRESH_S = 0.05  # at most 20 front-end updates a second while an answer streams

_BUBBLE = {
    "user": f"background:#eef4ff;color:{BOX_TEXT_COLOUR};border-radius:6px;padding:6px 8px;margin:2px 0;{TEXT_STYLE}",
    "assistant": f"background:#f6f6f6;color:{BOX_TEXT_COLOUR};border-radius:6px;padding:6px 8px;margin:2px 0;{TEXT_STYLE}",
}


class ChatPanel(ChatEditingView, Panel):
    """Chat with a vision model about images, with tokens, cost and latency per turn.

    ``client`` defaults to :func:`vizlab.connect` (the built-in backend when nothing is
    configured). ``upload`` is an :class:`UploadPanel` whose images the "Attach uploads" button
    adds. ``autosave`` is a JSON path: the conversation saves there after every change, and a
    panel made again with the same path (after a kernel restart) resumes it.
    """

    def __init__(
        self,
        client: Client | None = None,
        conversation: Conversation | None = None,
        *,
        upload: UploadPanel | None = None,
        autosave: str | os.PathLike[str] | None = None,
        max_tokens: int = 1000,
        export_dir: str | os.PathLike[str] | None = None,
        max_usd: float | None = None,
        transcript_height: str = "420px",
    ) -> None:
        if client is None:
            from vizlab.client.core import connect

            client = connect(verbose=False)
        self.state = ChatState(
            client, conversation, autosave=autosave, max_tokens=max_tokens, export_dir=export_dir, max_usd=max_usd
        )
        self.upload = upload
        self._thumbs: dict[str, bytes] = {}
        self._last_stream_update = 0.0
        self._pending: dict[str, Any] = {}
        self._intake_problems: list[str] = []

        # header: backend and deployment
        self.backend_html = W.HTML()
        self.backend_html.add_class("vizlab-chat-backend")
        names = self.state.deployments()
        self.deployment_picker = W.Dropdown(options=names, value=names[0], description="Deployment")
        self.deployment_picker.add_class("vizlab-chat-deployment")
        self.deployment_picker.observe(self._on_deployment, names="value")

        # setup: the system message, applied on demand
        self.system_text = W.Textarea(
            value=self.state.conversation.system or "",
            placeholder="You're an AI assistant that helps people find information.",
            description="System",
            layout=fill_layout(height="64px"),
        )
        self.system_text.add_class("vizlab-chat-system")
        self.apply_system_button = W.Button(description="Apply system message", icon="check", layout=auto_width())
        self.apply_system_button.add_class("vizlab-chat-apply-system")
        self.apply_system_button.on_click(lambda _b: self.apply_system())
        self.system_status = W.HTML()
        self.system_status.add_class("vizlab-chat-system-status")
        self.system_text.observe(lambda _c: self._show_system_status(), names="value")

        # transcript: scrolls, newest in view, Markdown answers with Copy, the pending turn
        self.transcript = TranscriptView(max_height=transcript_height, actions=True, layout=fill_layout())
        self.transcript.on_action(self.on_row_action)
        self.transcript.add_class("vizlab-chat-transcript")
        self.totals_html = W.HTML()
        self.totals_html.add_class("vizlab-chat-totals")
        self.error_html = W.HTML()
        self.error_html.add_class("vizlab-chat-error")

        # attachments
        self.file_upload = W.FileUpload(accept="image/*,application/pdf", multiple=True, description="Attach image",
                                        layout=auto_width())  # fmt: skip
        self.file_upload.add_class("vizlab-chat-upload")
        self.file_upload.observe(self._on_upload, names="value")
        self.path_text = W.Text(placeholder="or an image or PDF path", description="Image path", layout=W.Layout(width="360px"))
        self.path_text.add_class("vizlab-chat-path")
        self.attach_button = W.Button(description="Attach", icon="paperclip", layout=auto_width())
        self.attach_button.add_class("vizlab-chat-attach")
        self.attach_button.on_click(lambda _b: self.attach(self.path_text.value))
        self.attach_uploads_button = W.Button(
            description="Attach uploads", icon="images", disabled=upload is None,
            tooltip="Attach the images of the upload panel passed as upload=", layout=auto_width(),
        )
        self.attach_uploads_button.add_class("vizlab-chat-attach-uploads")
        self.attach_uploads_button.on_click(lambda _b: self.attach_uploads())
        self.clear_attachments_button = W.Button(description="Remove attachments", icon="times", layout=auto_width())
        self.clear_attachments_button.add_class("vizlab-chat-clear-attachments")
        self.clear_attachments_button.on_click(lambda _b: self._clear_attachments())
        # A PDF goes as the service's file part (it reads the text layer and page images) or as page images.
        self.pdf_mode = W.ToggleButtons(options=[("As a file part", "file"), ("As page images", "pages")],
                                        value=self.state.pdf_as, description="Send PDFs", style={"button_width": "150px"},
                                        layout=W.Layout(display="none"))  # fmt: skip
        self.pdf_mode.add_class("vizlab-chat-pdf-mode")
        self.pdf_mode.observe(lambda _c: self._on_pdf_mode(), names="value")
        self._doc_rows: dict[tuple[str, str, str, str], Any] = {}
        self.attachments_box = W.HBox(layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.attachments_box.add_class("vizlab-chat-attachments")
        self.detail_picker = W.ToggleButtons(
            options=list(DETAILS), value=self.state.detail, description="Detail", layout=toggle_layout(),
            style={"button_width": "64px"},
        )
        self.detail_picker.add_class("vizlab-chat-detail")
        # Upper bound: the largest output limit of a listed model (gpt-5, 128,000; sourced in
        # vizlab.local.requests.limits, not imported here: it would load the whole backend for Azure users).
        self.max_tokens = W.BoundedIntText(
            value=max_tokens, min=1, max=128_000, description="Max tokens", layout=W.Layout(width="200px")
        )
        self.max_tokens.add_class("vizlab-chat-max-tokens")
        # settings: the playground's "Parameters"
        s = self.state.settings
        self.temperature = W.FloatSlider(
            value=s.temperature, min=0.0, max=2.0, step=0.05, description="Temperature", readout_format=".2f",
            continuous_update=False, layout=W.Layout(width="320px"), style={"description_width": "initial"},
        )  # fmt: skip
        self.temperature.add_class("vizlab-chat-temperature")
        self.top_p = W.FloatSlider(
            value=s.top_p, min=0.0, max=1.0, step=0.01, description="Top P", readout_format=".2f",
            continuous_update=False, layout=W.Layout(width="300px"),
        )  # fmt: skip
        self.top_p.add_class("vizlab-chat-top-p")
        self.stop_text = W.Text(
            value="", placeholder="e.g. END, ###", description="Stop", tooltip="Up to 4 stop sequences, comma-separated",
            layout=W.Layout(width="260px"),
        )  # fmt: skip
        self.stop_text.add_class("vizlab-chat-stop-sequences")
        past_options: list[tuple[str, int]] = [("all", -1)] + [(str(n), n) for n in range(0, 21)]
        self.past_messages = W.Dropdown(
            options=past_options, value=-1, description="Past msgs", tooltip="Past messages included in each request",
            layout=W.Layout(width="200px"),
        )  # fmt: skip
        self.past_messages.add_class("vizlab-chat-past-messages")
        self.effort_picker = W.Dropdown(options=[("default", "")], value="", description="Reasoning", layout=W.Layout(width="220px"))
        self.effort_picker.add_class("vizlab-chat-effort")
        self.settings_note = W.HTML()
        self.settings_note.add_class("vizlab-chat-settings-note")
        self.estimate_html = W.HTML()
        self.estimate_html.add_class("vizlab-chat-estimate")
        self.budget_html = W.HTML()
        self.budget_html.add_class("vizlab-chat-budget")

        # prompt and send: Enter sends, Shift+Enter is a newline
        self.prompt = PromptBox(placeholder="Type a question, e.g. Describe this image (Enter sends, Shift+Enter: new line; "
                                            "paste or drop an image to attach it)",
                                label="Message to send", layout=fill_layout(),
                                takes_over="vizlab-chat-upload", panel="vizlab-chat")  # fmt: skip
        self.prompt.add_class("vizlab-chat-prompt")
        self.prompt.on_submit(lambda _p: self.send())
        self.prompt.on_files(self._on_files)
        self.prompt.on_refused(lambda message: self._show_problems([message]))
        self.send_button = W.Button(description="Send", icon="paper-plane", button_style="primary", layout=auto_width())
        self.send_button.add_class("vizlab-chat-send")
        self.send_button.on_click(lambda _b: self.send())
        self.stop_button = W.Button(description="Stop", icon="stop", disabled=True, layout=auto_width())
        self.stop_button.add_class("vizlab-chat-stop")
        self.stop_button.on_click(lambda _b: self.stop())

        # raw JSON, new chat, export
        self.raw_toggle = W.ToggleButton(description="Show raw JSON", icon="code", value=False, layout=auto_width())
        self.raw_toggle.add_class("vizlab-chat-raw-toggle")
        self.raw_toggle.observe(lambda _c: self._show_raw(), names="value")
        self.raw_html = W.HTML()
        self.raw_html.add_class("vizlab-chat-raw")
        self.code_toggle = W.ToggleButton(description="View code", icon="terminal", value=False, layout=auto_width())
        self.code_toggle.add_class("vizlab-chat-code-toggle")
        self.code_kind = W.ToggleButtons(options=list(CODE_KINDS), value="python", layout=W.Layout(display="none"),
                                         style={"button_width": "80px"})  # fmt: skip
        self.code_kind.add_class("vizlab-chat-code-kind")
        self.code_view = CodeView(layout=fill_layout())
        self.code_view.add_class("vizlab-chat-code")
        self.code_toggle.observe(lambda _c: self._show_code(), names="value")
        self.code_kind.observe(lambda _c: self._show_code(), names="value")
        self.new_chat_button = W.Button(description="New chat", icon="refresh", layout=auto_width())
        self.new_chat_button.add_class("vizlab-chat-new")
        self.new_chat_button.on_click(lambda _b: self.new_chat())
        self.export_json_button = W.Button(description="Export JSON", icon="download", layout=auto_width())
        self.export_json_button.add_class("vizlab-chat-export-json")
        self.export_json_button.on_click(lambda _b: self.export("json"))
        self.export_md_button = W.Button(description="Export Markdown", icon="download", layout=auto_width())
        self.export_md_button.add_class("vizlab-chat-export-md")
        self.export_md_button.on_click(lambda _b: self.export("markdown"))
        self.export_html = W.HTML()
        self.export_html.add_class("vizlab-chat-export")

        editing = self._build_editing()
        self.widget = W.VBox(
            [
                W.HBox([self.deployment_picker, self.backend_html], layout=ROW),
                self.system_text,
                W.HBox([self.apply_system_button, self.system_status], layout=ROW),
                self.transcript,
                self.error_html,
                self.totals_html,
                self.budget_html,
                W.HBox([self.file_upload, self.path_text, self.attach_button, self.attach_uploads_button,
                        self.clear_attachments_button], layout=ROW),
                self.attachments_box,
                self.pdf_mode,
                W.HBox([self.detail_picker, self.max_tokens, self.past_messages, self.effort_picker], layout=ROW),
                W.HBox([self.temperature, self.top_p, self.stop_text], layout=ROW),
                self.settings_note,
                self.estimate_html,
                self.prompt,
                W.HBox([self.send_button, self.stop_button, self.new_chat_button, self.raw_toggle, self.code_toggle,
                        self.export_json_button, self.export_md_button], layout=ROW),
                self.export_html,
                editing,
                self.raw_html,
                self.code_kind,
                self.code_view,
                stylesheet(self.file_upload, self.detail_picker, self.import_upload),
                AccessibleNames(names=[
                    ["vizlab-chat-temperature", "Temperature"], ["vizlab-chat-top-p", "Top P"],
                    ["vizlab-chat-path", "Image path to attach"], ["vizlab-chat-max-tokens", "Max tokens"],
                    ["vizlab-chat-stop-sequences", "Stop sequences"], ["vizlab-chat-system", "System message"],
                    ["vizlab-chat-deployment", "Deployment"], ["vizlab-chat-past-messages", "Past messages included"],
                    ["vizlab-chat-effort", "Reasoning effort"], ["vizlab-chat-turn-picker", "Message to edit or delete"],
                    ["vizlab-chat-edit-text", "Edited message"],
                ]),
            ],
            layout=W.Layout(width="100%"),
        )
        self.widget.add_class("vizlab-chat")
        for control in (self.detail_picker, self.max_tokens, self.temperature, self.top_p, self.stop_text,
                        self.past_messages, self.effort_picker, self.prompt):  # fmt: skip
            control.observe(lambda _c: self._on_settings(), names="value")
        self._show_backend()
        self._show_system_status()
        self._show_effort()
        self.refresh()

    # -- properties --

    @property
    def client(self) -> Client:
        return self.state.client

    @client.setter
    def client(self, client: Client) -> None:
        """Swap the client (e.g. after fixing a key); the conversation is kept."""
        self.state.client = client
        names = self.state.deployments()
        with self.deployment_picker.hold_trait_notifications():
            self.deployment_picker.options = names
            self.deployment_picker.value = names[0]
        self._show_backend()

    @property
    def conversation(self) -> Conversation:
        return self.state.conversation

    # -- actions --

    def apply_system(self) -> None:
        self.state.apply_system(self.system_text.value)
        self._show_system_status()

    def attach(self, source: Any) -> None:
        """Attach an image (path, bytes, upload record...) to the next message."""
        if isinstance(source, str):
            source = source.strip()
            if not source:
                self._show_error("Type the path of an image file before pressing Attach.")
                return
        problems = self.state.attach_all([source])
        if not problems and isinstance(source, str):
            self.path_text.value = ""
        self._show_problems(problems)
        self._show_attachments()

    def attach_uploads(self) -> None:
        if self.upload is None:
            return
        self._show_problems(self.state.attach_all(self.upload.state.outgoing()))
        self._show_attachments()

    def _clear_attachments(self) -> None:
        self.state.clear_attachments()
        self._show_attachments()

    def _on_pdf_mode(self) -> None:
        self.state.set_pdf_mode(self.pdf_mode.value)
        self._show_attachments()

    def _on_upload(self, change: dict[str, Any]) -> None:
        records = list(change["new"] or ())
        if not records:
            return
        problems = self.state.attach_all(records)
        self.file_upload.value = ()
        self._show_problems(problems)
        self._show_attachments()

    def _on_files(self, records: list[dict[str, Any]]) -> None:
        """A paste, a drop or the Attach button: attach the files (a bad one is named, the rest kept;
        the files of one drop come one message each, and the earlier ones' problems stay shown)."""
        later = records and int(records[0].get("index") or 0) > 0
        problems = (self._intake_problems if later else []) + self.state.attach_all(records)
        self._intake_problems = problems
        self._show_problems(problems)
        self._show_attachments()

    def _on_deployment(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.state.select_deployment(change["new"])
            self._show_backend()
            self._show_effort()
            self._show_estimate()

    def send(self) -> None:
        """Send the prompt and attachments (what the Send button does)."""
        if self.state.busy:  # a second click queued before Send was disabled
            return
        prompt = self.prompt.value
        # Read the controls here, on the kernel's main thread, not in the worker.
        try:
            settings = self.settings()
        except ValueError as e:
            self._show_error(str(e))
            return
        detail = self.detail_picker.value
        refusal = self.state.budget_refusal(prompt, detail=detail, settings=settings)
        if refusal:
            self._show_error(refusal)
            return
        if not self.state.claim(prompt):
            self._show_error(self.state.error)
            return
        try:
            estimate = self.state.estimate_next(prompt, detail=detail, settings=settings)
            self._pending = {
                "role": "user", "html": plain_html(prompt) or "<i>(no text)</i>",
                "thumbs": [png_data_url(self._thumb(a)) for a in self.state.attachments],
                "stats": self._attachment_note(),
            }  # fmt: skip
            self._set_busy(True)
            self._show_error("")
            self.prompt.value = ""
            self.transcript.pending = dict(self._pending)
            self._show_totals(sending=estimate.prompt_tokens)
            self._show_attachments(sending=True)
            self._run(lambda: self._send_work(prompt, settings, detail))
        except BaseException:
            if self.state.busy:  # the worker never ran (no thread to be had): Send must work again
                self.state.release()
                self.prompt.value = prompt
                self.transcript.pending = {}
                self._set_busy(False)
            raise

    def settings(self) -> ChatSettings:
        """The settings area's values (raises ValueError naming a bad one)."""
        stops = tuple(x.strip() for x in self.stop_text.value.split(",") if x.strip())
        if len(stops) > 4:
            raise ValueError(f"Stop: {len(stops)} sequences given, the API takes at most 4; remove some.")
        past = int(self.past_messages.value)
        return ChatSettings(
            temperature=float(self.temperature.value), top_p=float(self.top_p.value), stop=stops,
            max_tokens=int(self.max_tokens.value), past_messages=None if past < 0 else past,
            reasoning_effort=self.effort_picker.value or None,
        )  # fmt: skip

    def _send_work(self, prompt: str, settings: ChatSettings, detail: str) -> None:
        ok = False
        try:
            ok = self.state.send(prompt, on_chunk=self._on_chunk, detail=detail, claimed=True, settings=settings)
        finally:
            if not ok:
                self.prompt.value = prompt  # give the question back for a retry
            self._pending = {}
            self.transcript.pending = {}
            self._set_busy(False)
            self._show_error(self.state.error)
            self.refresh()

    def _on_chunk(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_stream_update < _STREAM_REFRESH_S:
            return
        self._last_stream_update = now
        self.transcript.pending = {**self._pending, "answer_html": render_markdown(text) + " ▌"}

    def stop(self) -> None:
        """Stop the answer being streamed (what the Stop button does)."""
        self.state.cancel()

    def new_chat(self) -> None:
        if self.state.busy:
            self.state.cancel()
            self.wait(10)
        if not self.state.new_chat():  # still running: clearing now would mix two chats
            self._show_error(self.state.error)
            return
        self._thumbs.clear()
        self.export_html.value = ""
        self._show_error("")
        self.refresh()

    def export(self, kind: str = "json") -> str:
        """Write the chat as JSON or Markdown next to the notebook; returns (and shows) the path."""
        try:
            path = self.state.export_json() if kind == "json" else self.state.export_markdown()
        except Exception as e:
            from vizlab.errors import redact

            self._show_error(redact(f"Export failed: {e}"))
            return ""
        shown = os.fspath(path)
        self.export_html.value = text_block(f"Saved <code>{escape(shown)}</code>")
        return shown

    # -- view --

    def _set_busy(self, busy: bool) -> None:
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy
        self.new_chat_button.disabled = busy
        for button in (self.regenerate_button, self.resend_button, self.delete_button, self.import_upload):
            button.disabled = busy

    def _show_problems(self, problems: list[str]) -> None:
        """Bad files, one per line, each name in bold (or nothing when all were good)."""
        self._show_error("; ".join(problems), html_body="<br>".join(file_error(p) for p in problems))

    def _show_error(self, message: str, html_body: str = "") -> None:
        body = html_body or escape(message)
        self.error_html.value = f'<div style="{ERROR_STYLE}">⚠️ {body}</div>' if message else ""

    def _show_backend(self) -> None:
        client = self.state.client
        rules = f"token rules {client.token_model}" if known_model(client) else model_note(client)
        self.backend_html.value = text_block(f"<small>{escape(client.describe())} · {escape(rules)}</small>", f"color:{MUTED_COLOUR}")

    def _show_system_status(self) -> None:
        applied = self.state.conversation.system or ""
        if self.system_text.value.strip() == applied:
            self.system_status.value = "<small>System message applied.</small>" if applied else "<small>No system message.</small>"
        else:
            self.system_status.value = "<small><b>Not applied yet</b>: press Apply system message.</small>"

    def _thumb(self, image: Any) -> bytes:
        key = image.sha256
        if key not in self._thumbs:
            self._thumbs[key] = document_thumbnail_png(image, (120, 120)) if is_document(image) else thumbnail_png(image, (120, 120))
        return self._thumbs[key]

    def _attachment_note(self) -> str:
        if not self.state.attachments:
            return ""
        return ", ".join(f"📎 {a.name}" for a in self.state.attachments)

    def _show_attachments(self, sending: bool = False) -> None:
        items = []
        if not sending:  # once sent, the images show in the pending turn, not under the input
            for image in self.state.attachments:
                thumb = W.Image(value=self._thumb(image), format="png", layout=thumbnail_layout())
                thumb.add_class("vizlab-thumbnail")
                about = self._document_line(image) if is_document(image) else f"{image.width}x{image.height} · {human_bytes(image.nbytes)}"
                label = W.HTML(text_block(f"<small>{escape(image.name)}<br>{escape(about)}</small>"),
                               layout=W.Layout(max_width="200px" if is_document(image) else "140px"))  # fmt: skip
                box = W.VBox([thumb, label], layout=W.Layout(margin="0 8px 4px 0"))
                box.add_class("vizlab-chat-document" if is_document(image) else "vizlab-chat-image")
                items.append(box)
        self.pdf_mode.layout.display = "" if any(is_document(a) for a in self.state.attachments) and not sending else "none"
        old = self.attachments_box.children
        self.attachments_box.children = items
        _close_tree(old)
        if not sending:
            self._show_estimate()  # the estimate follows what is attached

    def _document_line(self, document: Any) -> str:
        """Page count, size and the tokens it costs sent the chosen way (cached per choice)."""
        key = (document.sha256, self.state.pdf_as, self.state.client.token_model, self.detail_picker.value)
        if key not in self._doc_rows:
            try:
                self._doc_rows[key] = document_row(document, model=key[2], mode=key[1], detail=key[3],
                                                   pages=self.state.page_images).line()  # fmt: skip
            except Exception as e:  # an estimate must never stop the panel
                self._doc_rows[key] = f"PDF · no estimate ({type(e).__name__}: {e})"
        return str(self._doc_rows[key])

    def _on_settings(self) -> None:
        self._show_settings_note()
        if any(is_document(a) for a in self.state.attachments):
            self._show_attachments()  # a PDF's line follows the detail too; this shows the estimate
        else:
            self._show_estimate()

    def _show_effort(self) -> None:
        """The reasoning-effort picker, shown only where the deployment's family takes one."""
        info = self.state.model_info()
        efforts = tuple(getattr(info, "efforts", ()) or ()) if info is not None and getattr(info, "reasoning", False) else ()
        default = getattr(info, "default_effort", None) if efforts else None
        with self.effort_picker.hold_trait_notifications():
            self.effort_picker.options = [(f"default ({default})" if default else "default", "")] + [(e, e) for e in efforts]
            self.effort_picker.value = ""
        self.effort_picker.layout.display = "" if efforts else "none"
        self._show_output_limit()
        self._show_settings_note()

    def _show_output_limit(self) -> None:
        """Max tokens bounded by the deployment's output limit from the registry (vizlab.models)."""
        limit = self.state.output_limit() or 128_000
        self.max_tokens.max = limit  # a lower bound clamps the value too
        self.max_tokens.tooltip = f"Largest answer in tokens; {self.state.client.deployment} allows up to {limit:,}"

    def _show_settings_note(self) -> None:
        try:
            _max, params, notes = self.state.request_params(self.settings())
        except (ValueError, Exception) as e:  # a bad stop list: say so where it is typed
            self.settings_note.value = f'<div style="{ERROR_STYLE}">⚠️ {escape(str(e))}</div>'
            return
        sent = ", ".join(f"{k}={v!r}" for k, v in params.items())
        extra = "".join(f"<br>{escape(n)}" for n in notes)
        self.settings_note.value = text_block(
            f"<small>Sent with the next request: {escape(sent)}{extra}</small>", f"color:{MUTED_COLOUR}"
        )

    def _show_estimate(self) -> None:
        try:
            settings = self.settings()
        except ValueError:
            return
        est = self.state.estimate_next(self.prompt.value, detail=self.detail_picker.value, settings=settings)
        self.estimate_html.value = text_block(f"<small>{escape(est.line())}</small>", f"color:{MUTED_COLOUR}")
        self._show_budget()

    def _show_budget(self) -> None:
        line = self.state.budget_line()
        self.budget_html.value = text_block(f"<small><b>{escape(line)}</b></small>") if line else ""

    def _show_totals(self, sending: int | None = None) -> None:
        line = self.state.totals_line()
        if sending is not None:
            line += f" · sending now: ~{sending:,} prompt tokens (estimated)"
        self.totals_html.value = text_block(f"<small><b>{escape(line)}</b></small>")

    def _show_code(self) -> None:
        on = bool(self.code_toggle.value)
        self.code_kind.layout.display = "" if on else "none"
        try:  # runnable: the images are saved beside the notebook and read back by the code
            self.code_view.code = self.state.request_code(self.code_kind.value, runnable=True) if on else ""
        except OSError as e:  # the folder for the image copies cannot be written
            self.code_view.code = self.state.request_code(self.code_kind.value) if on else ""
            self._show_error(f"View code could not save the images it reads ({e}); the code shows them shortened.")

    def _show_raw(self) -> None:
        if self.raw_toggle.value:
            # Theme colours for text and background together: legible in light and dark themes.
            self.raw_html.value = (
                '<pre class="vizlab-raw-json" style="max-height:400px;overflow:auto;font-size:11px;line-height:1.35;'
                "white-space:pre-wrap;overflow-wrap:anywhere;padding:6px 8px;border-radius:4px;"
                "background:var(--jp-cell-editor-background,#f8f8f8);color:var(--jp-content-font-color1,#1f1f1f);"
                'border:1px solid var(--jp-border-color2,#e0e0e0)">'
                f"{html.escape(self.state.raw_json(), quote=False)}</pre>"
            )
        else:
            self.raw_html.value = ""

    def rows(self) -> list[dict[str, Any]]:
        """The transcript's rows as the front end draws them (HTML already sanitised)."""
        rows = []
        for n, view in enumerate(self.state.turn_views(), start=1):
            assistant = view.role == "assistant"
            rows.append(
                {
                    "role": view.role,
                    "n": n,
                    "html": (render_markdown(view.text) if assistant else plain_html(view.text)) or "<i>(no text)</i>",
                    "copy": view.text if assistant else "",
                    "stats": view.stats,
                    "warnings": list(view.warnings),
                    "thumbs": [png_data_url(self._thumb(i)) for i in view.images],
                }
            )
        return rows

    def refresh(self) -> None:
        """Redraw the transcript, totals, attachments, estimate and raw JSON from the state."""
        self.transcript.rows = self.rows()
        self._show_totals()
        self._show_attachments()
        self._show_raw()
        if self.code_toggle.value:
            self._show_code()
        self._show_system_status()
        self._show_estimate()
        self._refresh_editing()

    def snapshot_html(self) -> str:
        """The transcript, totals and estimate as static HTML (what a saved notebook shows)."""
        parts = []
        for row in self.rows():
            bubble = _BUBBLE.get(row["role"], "")
            who = "You" if row["role"] == "user" else "Assistant"
            thumbs = "".join(
                f'<img src="{u}" alt="attached image" style="max-width:96px;max-height:96px;border:1px solid #d0d0d0;'
                f'margin:2px 8px 2px 0;float:left">'
                for u in row["thumbs"]
            )  # fmt: skip
            notes = escape(row["stats"]) + "".join(
                f'<br><span style="color:{WARNING_COLOUR}">⚠️ {escape(w)}</span>' for w in row["warnings"]
            )
            extra = f'<div style="font-size:11px;color:{BOX_MUTED_COLOUR};margin-top:2px">{notes}</div>' if notes else ""
            parts.append(
                f'<div class="vizlab-chat-turn" style="overflow:hidden;margin:4px 0">{thumbs}'
                f'<div style="{bubble}"><b>{who}:</b> {row["html"]}{extra}</div></div>'
            )
        if not parts:
            parts.append(f'<div style="color:{BOX_MUTED_COLOUR}">No messages yet.</div>')
        body = (
            "".join(parts)
            + f'<div style="margin-top:6px"><b>{escape(self.state.totals_line())}</b></div>'
            + (f"<div>{escape(self.state.budget_line())}</div>" if self.state.max_usd is not None else "")
        )
        return snapshot_box(f"ChatPanel · {escape(self.state.client.describe())}", body)


def _close_tree(widgets: Any) -> None:
    """Close replaced widgets so their comms do not pile up in a long chat."""
    for w in widgets:
        children = getattr(w, "children", None)
        if children:
            _close_tree(children)
        w.close()
