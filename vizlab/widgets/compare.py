"""The compare panel: one image, one question, at detail low, high, auto (or several deployments).

Each column shows what the model sees (the actual pixels and tiles), the answer (sanitised
Markdown), the estimate beside the reported tokens, the cost and the latency. A thin view over
:class:`~vizlab.widgets.state.CompareState`; requests go out in parallel in a background thread.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
    WARNING_TEXT,
    Panel,
    auto_width,
    png_data_url,
    snapshot_box,
    stylesheet,
    text_block,
)
from vizlab.widgets.markdown import render_markdown
from vizlab.widgets.state import CompareColumn, CompareState, escape
from vizlab.widgets.transcript import ZoomImage

if TYPE_CHECKING:
    from vizlab.client.core import Client

__all__ = ["ComparePanel"]



# The columns share their rows (CSS subgrid): titles, pictures, numbers and answers line up across
# the columns whatever each one's length. The column count follows the width (auto-fit, at least
# 240 px each), so a narrow notebook stacks them. A browser without subgrid stacks each column.
# (The span goes in grid_area: ipywidgets applies the null grid_area after grid_row, and removing
# that shorthand removes grid-row too.)
_ROWS = 4
_MIN_COLUMN = "240px"
_ANSWER_STYLE = (
    f"background:var(--vizlab-box-bg,#f6f6f6);color:var(--vizlab-box-fg,{BOX_TEXT_COLOUR});border-radius:6px;padding:6px 8px;max-height:260px;overflow-y:auto;"
    f"{TEXT_STYLE}"
)


class _ColumnView:
    def __init__(self, key: str, col: CompareColumn) -> None:
        title = f"detail: {col.detail}" if key == col.detail else f"{col.deployment} · detail {col.detail}"
        self.title = W.HTML(f"<h4 style='margin:4px 0'>{escape(title)}</h4>")
        self.grid = ZoomImage(layout=W.Layout(width="100%"))
        self.grid.add_class("vizlab-compare-seen")
        self.stats = W.HTML()
        self.stats.add_class("vizlab-compare-stats")
        self.answer = W.HTML()
        self.answer.add_class("vizlab-compare-answer")
        self.box = W.VBox(
            [self.title, self.grid, self.stats, self.answer],
            layout=W.Layout(
                display="grid", grid_template_rows="subgrid", grid_area=f"span {_ROWS} / auto", align_content="flex-start",
                min_width="0", padding="0 6px",
            ),
        )  # fmt: skip
        self.box.add_class("vizlab-compare-column")
        self.box.add_class(f"vizlab-compare-{_css_name(key)}")

    def show(self, col: CompareColumn, *, running: bool = False) -> None:
        if col.grid_png:
            self.grid.src = png_data_url(col.grid_png)
        explanation = (
            f'<div style="font-family:var(--jp-code-font-family,monospace);font-size:11px;color:{MUTED_COLOUR};'
            f'line-height:1.35;margin-top:2px">{escape(col.explanation.splitlines()[-1])}</div>'
            if col.explanation
            else ""
        )
        seen = ""
        if col.seen_size:
            seen = (
                f'<div style="font-size:11px;color:{MUTED_COLOUR}">the model sees {col.seen_size[0]}x{col.seen_size[1]} px'
                f" ({escape(col.token_model)} rules) · click the picture (or press Enter on it) for its real pixels</div>"
            )
        asked = bool(col.answer or col.error or col.latency_s is not None)
        if not asked and col.image_tokens is not None:  # no "$? · ? s" before anything is sent
            wait = "waiting for the answer" if running else "press Compare to ask"
            stats = f"<b>image {col.image_tokens:,} tokens</b> · {wait}"
        else:
            stats = escape(col.stats)
            if col.image_tokens is not None:  # the number to compare, first and in bold
                head = f"image {col.image_tokens:,} tokens"
                stats = stats.replace(escape(head), f"<b>{escape(head)}</b>", 1)
        self.stats.value = text_block(f"<small>{stats}</small>{explanation}{seen}")
        if col.error:
            self.answer.value = f'<div style="{ERROR_STYLE}">⚠️ {escape(col.error)}</div>'
        elif running:
            self.answer.value = f'<div style="{_ANSWER_STYLE};color:var(--vizlab-box-muted,{BOX_MUTED_COLOUR})"><i>asking…</i></div>'
        else:
            self.answer.value = _answer_html(col)


def _answer_html(col: CompareColumn) -> str:
    if not col.answer:
        return ""
    warn = ""
    if col.finish_reason == "length":
        warn = f'<br><span style="color:{WARNING_TEXT}">⚠️ cut off by max tokens (finish_reason length)</span>'
    return f'<div style="{_ANSWER_STYLE}">{render_markdown(col.answer)}{warn}</div>'


def _shown_name(name: str) -> str:
    """A file name as is; an in-memory image (``<PIL image 2000x1500 RGB>``) as what it is."""
    return "an image from Python (PIL)" if name.startswith("<PIL") else name


def _css_name(key: str) -> str:
    """A column key as a CSS class part: ``"gpt-4.1-mini · high"`` -> ``"gpt-4-1-mini-high"``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", key).strip("-")


class ComparePanel(Panel):
    """Ask about one image at low, high and auto detail (or on several deployments, ``arms=``) and
    compare what the model sees, the answers, tokens and cost."""

    def __init__(
        self,
        client: Client | None = None,
        image: Any = None,
        question: str = "Describe this image.",
        *,
        max_tokens: int = 300,
        arms: Sequence[str | tuple[str, str]] | None = None,
    ) -> None:
        if client is None:
            from vizlab.client.core import connect

            client = connect(verbose=False)
        self.state = CompareState(client, None, question, max_tokens=max_tokens, arms=arms)
        self.file_upload = W.FileUpload(accept="image/*", multiple=False, description="Image", layout=auto_width())
        self.file_upload.add_class("vizlab-compare-upload")
        self.file_upload.observe(self._on_upload, names="value")
        self.path_text = W.Text(placeholder="or an image path", description="Image path", layout=W.Layout(width="360px"))
        self.path_text.add_class("vizlab-compare-path")
        self.use_path_button = W.Button(description="Use path", layout=auto_width())
        self.use_path_button.add_class("vizlab-compare-use-path")
        self.use_path_button.on_click(lambda _b: self.set_image(self.path_text.value.strip()))
        self.question_text = W.Text(
            value=question, description="Question", layout=W.Layout(flex="1 1 auto", min_width="240px", max_width="640px")
        )
        self.question_text.add_class("vizlab-compare-question")
        self.run_button = W.Button(description="Compare", icon="columns", button_style="primary", layout=auto_width())
        self.run_button.add_class("vizlab-compare-run")
        self.run_button.on_click(lambda _b: self.run())
        self.image_html = W.HTML()
        self.image_html.add_class("vizlab-compare-image")
        self.error_html = W.HTML()
        self.error_html.add_class("vizlab-compare-error")
        self.column_views = {k: _ColumnView(k, c) for k, c in self.state.columns.items()}
        self.widget = W.VBox(
            [
                W.HBox([self.file_upload, self.path_text, self.use_path_button], layout=ROW),
                W.HBox([self.question_text, self.run_button], layout=ROW),
                self.image_html,
                self.error_html,
                W.HBox(
                    [v.box for v in self.column_views.values()],
                    layout=W.Layout(
                        display="grid", grid_template_columns=f"repeat(auto-fit, minmax(min({_MIN_COLUMN}, 100%), 1fr))",
                        grid_auto_rows="auto", grid_gap="4px 6px", width="100%",
                    ),
                ),  # fmt: skip
                stylesheet(self.file_upload),
            ]
        )
        self.widget.add_class("vizlab-compare")
        if image is not None:
            self.set_image(image)

    @property
    def columns(self) -> dict[str, CompareColumn]:
        return self.state.columns

    def sync_view(self) -> None:
        """Show the columns the state holds: answers got by ``panel.state.run()`` in code, not
        "press Compare to ask" (and no second round of requests)."""
        for key, view in self.column_views.items():
            if key in self.state.columns:
                view.show(self.state.columns[key])

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
        self.image_html.value = text_block(
            f"<small>{escape(_shown_name(image.name))} · {escape(image.mime)} · {image.width}x{image.height} px · "
            f"{human_bytes(image.nbytes)} · token rules {escape(self.state.client.token_model)}</small>",
            f"color:{MUTED_COLOUR}",
        )
        for key, view in self.column_views.items():
            view.show(self.state.columns[key])

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
        self._set_busy(True)
        self._error("")
        for key, view in self.column_views.items():
            view.show(self.state.columns[key], running=True)

        def work() -> None:
            message = ""
            try:
                self.state.run(on_column=lambda col: self.column_views[col.label].show(col))
                message = self.state.error
            except Exception as e:  # in a thread nobody would see it: show it, never a key
                from vizlab.widgets.state import error_text

                message = error_text(e, self.state.client)
            finally:
                self._set_busy(False)
                self._error(message)

        self._run(work)

    def _set_busy(self, busy: bool) -> None:
        # No new image or question while the three requests run: the columns belong to one pair.
        for control in (self.run_button, self.file_upload, self.use_path_button, self.question_text):
            control.disabled = busy

    def _error(self, message: str) -> None:
        self.error_html.value = f'<div style="{ERROR_STYLE}">⚠️ {escape(message)}</div>' if message else ""

    def snapshot_html(self) -> str:
        """The columns (picture, numbers, answer) as static HTML, for a saved notebook."""
        image = self.state.image
        if image is None:
            return snapshot_box("ComparePanel", "No image chosen yet.")
        cells = []
        for key, col in self.state.columns.items():
            title = f"detail: {col.detail}" if key == col.detail else f"{col.deployment} · detail {col.detail}"
            picture = (
                f'<img src="{png_data_url(col.grid_png)}" alt="what the model sees" style="max-width:100%;height:auto">'
                if col.grid_png
                else ""
            )
            body = _answer_html(col) or (f'<div style="{ERROR_STYLE}">⚠️ {escape(col.error)}</div>' if col.error else "")
            cells.append(
                f'<div style="flex:1 1 300px;min-width:0;padding:0 6px"><h4 style="margin:4px 0">{escape(title)}</h4>'
                f'{picture}<div style="font-size:12px">{escape(col.stats)}</div>{body}</div>'
            )
        head = f"<div>{escape(_shown_name(image.name))} · {image.width}x{image.height} px · {escape(self.state.question)}</div>"
        return snapshot_box("ComparePanel", head + f'<div style="display:flex;flex-wrap:wrap">{"".join(cells)}</div>')
