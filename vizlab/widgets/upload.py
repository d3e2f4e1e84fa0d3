"""The upload panel: pick images, see each one's format, size and token cost before sending.

A thin view over :class:`~vizlab.widgets.state.UploadState`. Uploads arrive through
ipywidgets' ``FileUpload`` (its value records: name, browser-guessed type, size, content as a
memoryview, last_modified); the format shown is sniffed from the bytes, never the guessed type.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from vizlab.conversation.storage import human_bytes
from vizlab.widgets._common import (
    BOX_MUTED_COLOUR,
    ERROR_STYLE,
    MUTED_COLOUR,
    ROW,
    Panel,
    auto_width,
    file_error,
    png_data_url,
    snapshot_box,
    stylesheet,
    text_block,
    thumbnail_layout,
    toggle_layout,
)
from vizlab.widgets.intake import UPLOAD_LIMIT
from vizlab.widgets.state import DETAILS, LARGE_UPLOAD_NOTE, UploadState, escape
from vizlab.widgets.transcript import DropZone

__all__ = ["UploadPanel"]



class UploadPanel(Panel):
    """Upload images and see per-image and total token estimates for a model and detail.

    >>> panel = UploadPanel(model="gpt-4o", detail="low")   # doctest: +SKIP
    >>> panel                           # shows the panel   # doctest: +SKIP
    >>> panel.images                    # [EncodedImage, ...]  # doctest: +SKIP
    """

    def __init__(self, *, model: str = "gpt-4o", detail: str = "auto", state: UploadState | None = None) -> None:
        from vizlab.tokens.image import known_models

        self.state = state if state is not None else UploadState(model=model, detail=detail)
        models = known_models()
        if self.state.model not in models:
            models = [self.state.model] + models
        self.file_upload = W.FileUpload(accept="image/*,application/pdf", multiple=True, description="Upload images", layout=auto_width())
        self.file_upload.add_class("vizlab-upload-files")
        self.model_picker = W.Dropdown(options=models, value=self.state.model, description="Model")
        self.model_picker.add_class("vizlab-upload-model")
        self.detail_picker = W.ToggleButtons(
            options=list(DETAILS), value=self.state.detail, description="Detail", layout=toggle_layout(),
            style={"button_width": "64px"},
        )
        self.detail_picker.add_class("vizlab-upload-detail")
        self.drop_zone = DropZone(label="Drop or paste images or PDFs here (Ctrl/Cmd+V), or press Enter to choose files: "
                                        f"up to {human_bytes(UPLOAD_LIMIT)} each, with a progress bar for big ones",
                                  takes_over="vizlab-upload-files", panel="vizlab-upload")  # fmt: skip
        self.drop_zone.add_class("vizlab-upload-drop")
        self.drop_zone.on_files(self._on_files)
        self.drop_zone.on_refused(self._on_refused)
        self.path_text = W.Text(placeholder="or a path to an image or PDF file", description="Image path",
                                layout=W.Layout(width="360px"))
        self.path_text.add_class("vizlab-upload-path")
        self.add_path_button = W.Button(description="Add path", icon="plus", layout=auto_width())
        self.add_path_button.add_class("vizlab-upload-add-path")
        self.clear_button = W.Button(description="Clear", icon="trash", layout=auto_width())
        self.clear_button.add_class("vizlab-upload-clear")
        self.pdf_mode = W.ToggleButtons(options=[("As a file part", "file"), ("As page images", "pages")],
                                        value=self.state.pdf_as, description="Send PDFs", style={"button_width": "150px"},
                                        layout=W.Layout(display="none"))  # fmt: skip
        self.pdf_mode.add_class("vizlab-upload-pdf-mode")
        self.rows_box = W.VBox(layout=W.Layout(margin="4px 0"))
        self.rows_box.add_class("vizlab-upload-rows")
        self.total_html = W.HTML()
        self.total_html.add_class("vizlab-upload-total")
        self.errors_html = W.HTML()
        self.errors_html.add_class("vizlab-upload-errors")
        self.note_html = W.HTML(text_block(f"<small>ℹ️ {escape(LARGE_UPLOAD_NOTE)}</small>", f"color:{MUTED_COLOUR}"))
        self.note_html.add_class("vizlab-upload-note")
        self._thumb_widgets: dict[str, W.Image] = {}

        self.file_upload.observe(self._on_upload, names="value")
        self.model_picker.observe(self._on_choice, names="value")
        self.detail_picker.observe(self._on_choice, names="value")
        self.pdf_mode.observe(self._on_choice, names="value")
        self.add_path_button.on_click(lambda _b: self.add_path(self.path_text.value))
        self.clear_button.on_click(lambda _b: self.clear())

        self.widget = W.VBox(
            [
                self.drop_zone,
                W.HBox([self.file_upload, self.path_text, self.add_path_button, self.clear_button], layout=ROW),
                W.HBox([self.model_picker, self.detail_picker], layout=ROW),
                self.pdf_mode,
                self.errors_html,
                self.rows_box,
                self.total_html,
                self.note_html,
                stylesheet(self.file_upload, self.detail_picker),
            ]
        )
        self.widget.add_class("vizlab-upload")
        self.refresh()

    @property
    def images(self) -> list[Any]:
        """The good images, as :class:`~vizlab.images.EncodedImage` objects, in upload order."""
        return self.state.images

    # -- actions --

    def _on_upload(self, change: dict[str, Any]) -> None:
        records = list(change["new"] or ())
        if not records:
            return
        self.state.add(records, names=[str(r.get("name") or "") or None for r in records])
        # Drop the records: their bytes now live in the state, and the same file may come again.
        self.file_upload.value = ()
        self.refresh()

    def _on_files(self, records: list[dict[str, Any]]) -> None:
        """A drop, a paste or a chooser: the files as FileUpload records (one message each, in order;
        the errors of a drop's earlier files stay shown)."""
        earlier = list(self.state.errors) if records and int(records[0].get("index") or 0) > 0 else []
        self.state.add(records, names=[str(r.get("name") or "") or None for r in records])
        self.state.errors = earlier + self.state.errors
        self.refresh()

    def _on_refused(self, message: str) -> None:
        self.state.errors = [message]
        self.refresh()

    def add_path(self, path: str) -> None:
        if not self.state.add_path(path):
            self.path_text.value = ""
        self.refresh()

    def add(self, *sources: Any) -> None:
        """Add images from Python (paths, bytes, PIL images, upload records)."""
        self.state.add(sources)
        self.refresh()

    def clear(self) -> None:
        self.state.clear()
        self.refresh()

    def _on_choice(self, _change: dict[str, Any]) -> None:
        self.state.model = self.model_picker.value
        self.state.detail = self.detail_picker.value
        self.state.pdf_as = self.pdf_mode.value
        self.refresh()

    # -- view --

    def refresh(self) -> None:
        if self.state.errors:
            items = "".join(f"<li>{file_error(e)}</li>" for e in self.state.errors)
            self.errors_html.value = (
                f'<div style="{ERROR_STYLE}">⚠️ <b>Some files were not added:</b>'
                f"<ul style='margin:2px 0;padding-left:22px'>{items}</ul>The other images were kept.</div>"
            )
        else:
            self.errors_html.value = ""
        rows = []
        live = set()
        for image, row in zip(self.state.images, self.state.rows()):
            live.add(image.sha256)
            thumb = self._thumb_widgets.get(image.sha256)
            if thumb is None:
                thumb = W.Image(value=self.state.thumbnail(image), format="png", layout=thumbnail_layout())
                thumb.add_class("vizlab-thumbnail")
                self._thumb_widgets[image.sha256] = thumb
            text = W.HTML(text_block(_row_body(row, MUTED_COLOUR)), layout=W.Layout(flex="1 1 auto", min_width="0"))
            box = W.HBox(
                [thumb, text], layout=W.Layout(align_items="flex-start", padding="4px 0", border_bottom="1px solid #e6e6e6")
            )
            box.add_class("vizlab-upload-row")
            if row.pages:
                box.add_class("vizlab-upload-document")
            rows.append(box)
        self.pdf_mode.layout.display = "" if any(r.pages for r in self.state.rows()) else "none"
        for key in list(self._thumb_widgets):
            if key not in live:
                self._thumb_widgets.pop(key).close()
        old = self.rows_box.children
        self.rows_box.children = rows
        for box in old:
            box.children[1].close()
            box.close()
        self.total_html.value = text_block(f"<b>{escape(self.state.total_line())}</b>")

    def snapshot_html(self) -> str:
        """The images, their tokens and the total as static HTML, for a saved notebook."""
        rows = []
        for image, row in zip(self.state.images, self.state.rows()):
            rows.append(
                f'<div style="display:flex;gap:8px;align-items:flex-start;padding:4px 0;border-bottom:1px solid #e6e6e6">'
                f'<img src="{png_data_url(self.state.thumbnail(image))}" alt="{escape(row.name)}" '
                f'style="max-width:96px;max-height:96px;border:1px solid #d0d0d0">'
                f"<div>{_row_body(row, BOX_MUTED_COLOUR, cost=False)}</div></div>"
            )
        body = "".join(rows) + f'<div style="margin-top:6px"><b>{escape(self.state.total_line())}</b></div>'
        return snapshot_box("UploadPanel", body)


def _row_body(row: Any, muted: str, *, cost: bool = True) -> str:
    """One row's text: name, format and size (a PDF: its pages), tokens and cost, and how they were reached."""
    if row.pages:  # a PDF: the first explanation line is its pages, size and how it goes
        about, how = row.explanation.split("\n", 1) if "\n" in row.explanation else (row.explanation, "")
    else:
        about, how = f"{row.mime} · {row.width}x{row.height} px · {human_bytes(row.nbytes)}", row.explanation.splitlines()[-1]
    price = f" · ${row.cost:.4f}" if cost and row.cost is not None else ""
    return (f"<b>{escape(row.name)}</b><br>{escape(about)}<br><b>{row.tokens:,} tokens</b>{price}"
            f'<br><code style="font-size:11px;color:{muted}">{escape(how)}</code>')  # fmt: skip
