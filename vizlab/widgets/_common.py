"""What every panel shares: display delegation to ``.widget`` and the background-call runner."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

SNAPSHOT_MIME = "text/html"
_LIVE_PANELS: weakref.WeakSet[Panel] = weakref.WeakSet()
_HOOKED: list[Any] = []  # the IPython shell whose post_run_cell event refreshes the snapshots


def _refresh_snapshots(*_args: Any) -> None:
    """After each cell: re-send the output of every shown panel whose snapshot changed."""
    for panel in list(_LIVE_PANELS):
        panel.update_snapshot()


class Panel:
    """Base of the panels: ``.widget`` is the root container; a notebook cell shows it.

    **Static snapshot.** A panel is shown as one output holding the live widget view *and*
    ``text/html``: the panel's current state drawn with inline styles (:meth:`snapshot_html`).
    A running JupyterLab shows the widget; GitHub, nbconvert and a notebook opened without
    running it (untrusted, so no widget renderer) show the HTML. After each cell the output is
    updated (IPython's ``post_run_cell`` event, ``update_display``) when the snapshot changed, so
    the saved notebook shows the last state. The HTML is wrapped in
    ``<!-- vizlab-snapshot --> ... <!-- /vizlab-snapshot -->``, which nbval's sanitize file
    folds: its numbers depend on the run, the widget's do not matter.
    """

    widget: Any

    #: Run long calls (chat requests) in a background thread so the notebook stays usable.
    #: Tests set it to False to run them synchronously, or call :meth:`wait`.
    run_in_thread: bool = True

    _thread: threading.Thread | None = None
    _display_ids: list[str]
    _shown_snapshot: str = ""

    def snapshot_html(self) -> str:
        """The panel's current state as static HTML (inline styles, images as data URLs)."""
        return ""

    def sync_view(self) -> None:
        """Redraw the controls from the state before the panel is shown (state changed from code)."""

    def _bundle(self) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_() or {})
        snapshot = self.snapshot_html()
        bundle["text/plain"] = f"<vizlab {type(self).__name__}: run the notebook to use it>"
        if snapshot:
            bundle[SNAPSHOT_MIME] = f"<!-- vizlab-snapshot -->{snapshot}<!-- /vizlab-snapshot -->"
        return bundle

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        self.sync_view()
        bundle = self._bundle()
        handle = display(bundle, raw=True, display_id=True)
        self._shown_snapshot = bundle.get(SNAPSHOT_MIME, "")
        if handle is not None:
            if "_display_ids" not in self.__dict__:
                self._display_ids = []
            self._display_ids.append(handle.display_id)
            _LIVE_PANELS.add(self)
        shell = get_ipython()
        if shell is not None and shell not in _HOOKED:
            shell.events.register("post_run_cell", _refresh_snapshots)
            _HOOKED.append(shell)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self._bundle()

    def update_snapshot(self) -> None:
        """Re-send this panel's outputs if its snapshot changed since they were sent."""
        ids = self.__dict__.get("_display_ids") or []
        if not ids:
            return
        bundle = self._bundle()
        if bundle.get(SNAPSHOT_MIME, "") == self._shown_snapshot:
            return
        from IPython.display import update_display

        self._shown_snapshot = bundle.get(SNAPSHOT_MIME, "")
        for display_id in ids:
            update_display(bundle, raw=True, display_id=display_id)

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


# A row of controls that wraps on a narrow notebook column (flex layout of an HBox).
ROW = {"align_items": "center", "flex_flow": "row wrap"}


def auto_width() -> Any:
    """A layout as wide as the control's label (ipywidgets buttons default to a fixed width)."""
    import ipywidgets as W

    return W.Layout(width="auto")



# --- looks shared by the panels ---------------------------------------------------------------------
#
# ipywidgets' HTML widget gives its content the controls' 28 px line height, so any text that wraps
# looks double-spaced; the snippets below set their own. Colours are inline so a snippet keeps
# them wherever it is shown; the stylesheet (one hidden HTML widget per panel) only does what
# inline styles cannot.

ERROR_COLOUR = "#b00020"
# 6.3:1 on the answers' #f6f6f6 (WCAG AA asks 4.5:1); JupyterLab's --jp-warn-color0 (#e65100) is 3.8:1.
WARNING_COLOUR = "#8a4b00"
# Text on the notebook's own background follows the JupyterLab theme (light or dark); boxes
# with a light background of their own (bubbles, answers, errors) set their text colours too.
MUTED_COLOUR = "var(--jp-content-font-color2, #555)"
BOX_TEXT_COLOUR = "#1f1f1f"
BOX_MUTED_COLOUR = "#555"
TEXT_STYLE = "line-height:1.45;overflow-wrap:anywhere"
# Boxes with colours of their own follow the dark theme through these variables, which the
# panels' stylesheet sets only there (THEME_CSS); elsewhere (light theme, nbconvert, GitHub) the
# fallbacks apply. Each pair is >= 4.5:1: #b00020 on #fdecee 6.4:1, #ff8a80 on #3b1d20 6.7:1,
# #ffb74d on #2b2b2b 8.2:1, #e6e6e6 on #2b2b2b 11.3:1 (WCAG 2 contrast, computed).
THEME_CSS = (
    'body[data-jp-theme-light="false"]{--vizlab-box-bg:#2b2b2b;--vizlab-box-fg:#e6e6e6;--vizlab-box-muted:#b0b0b0;'
    "--vizlab-error-fg:#ff8a80;--vizlab-error-bg:#3b1d20;--vizlab-error-border:#7f3b42;--vizlab-warning:#ffb74d}"
)
WARNING_TEXT = f"var(--vizlab-warning,{WARNING_COLOUR})"
ERROR_STYLE = (
    f"color:var(--vizlab-error-fg,{ERROR_COLOUR});background:var(--vizlab-error-bg,#fdecee);"
    f"border:1px solid var(--vizlab-error-border,#f0b7bf);border-left:4px solid var(--vizlab-error-fg,{ERROR_COLOUR});"
    f"padding:4px 8px;border-radius:4px;margin:2px 0;{TEXT_STYLE}"
)


def text_block(body: str, style: str = "") -> str:
    """``body`` (HTML) in a div with readable line spacing and long words wrapped."""
    return f'<div style="{TEXT_STYLE};{style}">{body}</div>'


def file_error(message: str) -> str:
    """HTML for a ``"name: reason"`` message, the name in bold and not said twice.

    ``"notes.png: notes.png is not an image: ..."`` -> ``"<b>notes.png</b> is not an image: ..."``.
    """
    from vizlab.widgets.state import escape

    name, sep, reason = message.partition(": ")
    if not sep or not name:
        return escape(message)
    if reason.startswith(name):
        return f"<b>{escape(name)}</b>{escape(reason[len(name):])}"
    return f"<b>{escape(name)}</b>: {escape(reason)}"


def thumbnail_layout() -> Any:
    """Thumbnails at their own size (never stretched by a flex row), framed so white shows."""
    import ipywidgets as W

    return W.Layout(
        align_self="flex-start", flex="0 0 auto", object_fit="contain", border="1px solid #d0d0d0",
        margin="2px 8px 2px 2px",
    )  # fmt: skip


def toggle_layout() -> Any:
    """ToggleButtons with their label beside the buttons (ipywidgets 8 stacks them otherwise)."""
    import ipywidgets as W

    return W.Layout(display="flex", flex_flow="row nowrap", align_items="center", width="auto")


def fill_layout(**kw: Any) -> Any:
    """As wide as the panel, margins included (``width: 100%`` plus the margin overflows)."""
    import ipywidgets as W

    return W.Layout(width="auto", **kw)


def snapshot_box(title: str, body: str) -> str:
    """The frame of a panel's static snapshot: a light box with its own text colour (any theme)."""
    return (
        f'<div class="vizlab-snapshot" style="border:1px solid #d0d0d0;border-radius:6px;padding:8px;'
        f'background:#ffffff;color:{BOX_TEXT_COLOUR};font-family:sans-serif;font-size:13px;{TEXT_STYLE}">'
        f'<div style="font-size:11px;color:{BOX_MUTED_COLOUR};margin-bottom:4px">{title} · saved state '
        f"(run the notebook for the live panel)</div>{body}</div>"
    )


def png_data_url(png: bytes) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def stylesheet(*widgets: Any) -> Any:
    """A hidden HTML widget holding CSS for ``widgets``; add it as the panel's last child.

    * ipywidgets' FileUpload button reads "<description> (<number of files in .value>)"; the
      panels empty ``.value`` once they have read the files, so it would say "(0)" even after
      a successful upload. The CSS shows the description alone.
    * ToggleButtons' label gets the width and right alignment of the other controls' labels,
      so "Detail" lines up under "Deployment" and "System".
    """
    import json

    import ipywidgets as W

    rules = [THEME_CSS]
    for widget in widgets:
        cls = next(c for c in widget._dom_classes if c.startswith("vizlab-"))
        if isinstance(widget, W.FileUpload):
            sel = f".{cls}.widget-upload"
            rules.append(
                f"{sel}{{font-size:0!important}}"
                f"{sel} i.fa{{font-size:var(--jp-widgets-font-size);margin-right:var(--jp-widgets-inline-margin)}}"
                f"{sel}::after{{content:{json.dumps(widget.description, ensure_ascii=False)};"
                "font-size:var(--jp-widgets-font-size)}"
            )
        elif isinstance(widget, W.ToggleButtons):
            rules.append(
                f".{cls} > .widget-label{{width:var(--jp-widgets-inline-label-width);flex-shrink:0;text-align:right;"
                "margin-right:calc(var(--jp-widgets-inline-margin) * 2)}"
            )
    sheet = W.HTML(f"<style>{''.join(rules)}</style>", layout=W.Layout(display="none"))
    sheet.add_class("vizlab-style")
    return sheet
