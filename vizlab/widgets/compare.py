"""The compare panel: one image, one question, sent at detail low, high and auto side by side.

Each column shows the answer, vizlab's estimate of the prompt tokens next to what the service
reported, the cost and latency, and the image as the service scales it for that detail with the
512-px tile grid drawn over it (PIL; no matplotlib figure needed). A thin view over
:class:`~vizlab.widgets.state.CompareState`; the three requests run one after another in a
background thread (``panel.run_in_thread``), each column filled as its answer arrives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as W

from vizlab.widgets._common import Panel, auto_width
from vizlab.widgets.state import DETAILS, CompareColumn, CompareState, escape

if TYPE_CHECKING:
    from vizlab.client import Client

__all__ = ["ComparePanel"]


class _ColumnView:
    def __init__(self, detail: str) -> None:
        self.title = W.HTML(f"<h4 style='margin:4px 0'>detail: {detail}</h4>")
        self.grid = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.grid.add_class("vizlab-compare-grid")
        self.stats = W.HTML()
        self.stats.add_class("vizlab-compare-stats")
        self.answer = W.HTML()
        self.answer.add_class("vizlab-compare-answer")
        self.box = W.VBox([self.title, self.grid, self.stats, self.answer], layout=W.Layout(width="33%", padding="0 6px"))
        self.box.add_class("vizlab-compare-column")
        self.box.add_class(f"vizlab-compare-{detail}")

    def show(self, col: CompareColumn, *, running: bool = False) -> None:
        if col.grid_png:
            self.grid.value = col.grid_png
        explanation = f"<br><small><code>{escape(col.explanation.splitlines()[-1])}</code></small>" if col.explanation else ""
        self.stats.value = f"<small>{escape(col.stats)}</small>{explanation}"
        if col.error:
            self.answer.value = f'<div style="color:#b00020">⚠️ {escape(col.error)}</div>'
        elif running:
            self.answer.value = "<i>asking…</i>"
        else:
            warn = ""
            if col.finish_reason == "length":
                warn = '<br><span style="color:#a15c00">⚠️ cut off by max tokens (finish_reason length)</span>'
            self.answer.value = f"<div>{escape(col.answer)}</div>{warn}" if col.answer else ""


class ComparePanel(Panel):
    """Ask about one image at low, high and auto detail and compare answers, tokens and cost."""

    def __init__(
        self,
        client: Client | None = None,
        image: Any = None,
        question: str = "Describe this image.",
        *,
        max_tokens: int = 300,
    ) -> None:
        if client is None:
            from vizlab.client import connect

            client = connect(verbose=False)
        self.state = CompareState(client, None, question, max_tokens=max_tokens)
        self.file_upload = W.FileUpload(accept="image/*", multiple=False, description="Image", layout=auto_width())
        self.file_upload.add_class("vizlab-compare-upload")
        self.file_upload.observe(self._on_upload, names="value")
        self.path_text = W.Text(placeholder="or an image path", layout=W.Layout(width="260px"))
        self.path_text.add_class("vizlab-compare-path")
        self.use_path_button = W.Button(description="Use path", layout=auto_width())
        self.use_path_button.add_class("vizlab-compare-use-path")
        self.use_path_button.on_click(lambda _b: self.set_image(self.path_text.value.strip()))
        self.question_text = W.Text(value=question, description="Question", layout=W.Layout(width="60%"))
        self.question_text.add_class("vizlab-compare-question")
        self.run_button = W.Button(description="Compare", icon="columns", button_style="primary", layout=auto_width())
        self.run_button.add_class("vizlab-compare-run")
        self.run_button.on_click(lambda _b: self.run())
        self.image_html = W.HTML()
        self.image_html.add_class("vizlab-compare-image")
        self.error_html = W.HTML()
        self.error_html.add_class("vizlab-compare-error")
        self.column_views = {d: _ColumnView(d) for d in DETAILS}
        self.widget = W.VBox(
            [
                W.HBox([self.file_upload, self.path_text, self.use_path_button]),
                W.HBox([self.question_text, self.run_button]),
                self.image_html,
                self.error_html,
                W.HBox([self.column_views[d].box for d in DETAILS], layout=W.Layout(width="100%")),
            ]
        )
        self.widget.add_class("vizlab-compare")
        if image is not None:
            self.set_image(image)

    @property
    def columns(self) -> dict[str, CompareColumn]:
        return self.state.columns

    def set_image(self, source: Any) -> None:
        if isinstance(source, str) and not source:
            self._error("Type the path of an image file first.")
            return
        try:
            image = self.state.set_image(source)
        except Exception as e:
            from vizlab.errors import redact

            self._error(redact(f"Could not use this image: {e}"))
            return
        self._error("")
        self.image_html.value = (
            f"<small>{escape(image.name)} · {escape(image.mime)} · {image.width}x{image.height} px · "
            f"token rules {escape(self.state.client.token_model)}</small>"
        )
        for d in DETAILS:
            self.column_views[d].show(self.state.columns[d])

    def _on_upload(self, change: dict[str, Any]) -> None:
        records = list(change["new"] or ())
        if records:
            self.set_image(records[-1])
            self.file_upload.value = ()

    def run(self) -> None:
        """Send the question at the three detail levels (what the Compare button does)."""
        if self.run_button.disabled:  # already running
            return
        if self.state.image is None:
            self._error("Choose an image first (upload one or type its path).")
            return
        self.state.question = self.question_text.value or self.state.question
        self.run_button.disabled = True
        self._error("")
        for d in DETAILS:
            self.column_views[d].show(self.state.columns[d], running=True)

        def work() -> None:
            try:
                self.state.run(on_column=lambda col: self.column_views[col.detail].show(col))
            finally:
                self.run_button.disabled = False
                self._error(self.state.error)

        self._run(work)

    def _error(self, message: str) -> None:
        self.error_html.value = f'<div style="color:#b00020">⚠️ {escape(message)}</div>' if message else ""
