"""The facilitator's notebook view of a room: :class:`RoomPanel` over a plain :class:`RoomPanelState`.

The state fetches ``/room/usage`` with the admin key and turns it into table rows and a spend
series; it is tested without a browser. The panel only wires it to ipywidgets (an HTML table, a
small matplotlib plot of spend over time, a refresh button) and, with ``live=True``, refreshes
every few seconds from a daemon thread until :meth:`RoomPanel.stop`. The admin key never shows
in a repr or an output.
"""

from __future__ import annotations

import html
import io
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests

__all__ = ["RoomPanel", "RoomPanelState"]

COLUMNS = ("attendee", "code_hint", "requests", "prompt_tokens", "image_tokens", "output_tokens", "usd",
           "budget_usd", "throttled", "refusals", "last_request")  # fmt: skip


class RoomPanelState:
    """What the panel shows: the last ``/room/usage`` answer and what to draw from it."""

    def __init__(self, room: str, *, admin_key: str, fetch: Callable[[str, dict[str, str]], Any] | None = None) -> None:
        if not isinstance(admin_key, str) or not admin_key:
            raise ValueError("admin_key must be the admin key the room printed when it started")
        self.url = room.rstrip("/")
        self._key = admin_key
        self._fetch = fetch or self._get
        self.data: dict[str, Any] | None = None
        self.error: str | None = None

    @staticmethod
    def _get(url: str, headers: dict[str, str]) -> Any:
        reply = requests.get(url, headers=headers, timeout=10)
        body = reply.json()
        if reply.status_code != 200:
            raise RuntimeError(body.get("error", {}).get("message", f"HTTP {reply.status_code}"))
        return body

    def refresh(self) -> bool:
        """Fetch the usage; True if it came. A failure is kept in :attr:`error`, never raised."""
        try:
            self.data = self._fetch(self.url + "/room/usage", {"api-key": self._key})
            self.error = None
            return True
        except (requests.RequestException, RuntimeError, ValueError) as e:
            self.error = f"cannot read {self.url}/room/usage: {e}"
            return False

    def rows(self) -> list[dict[str, Any]]:
        attendees = (self.data or {}).get("attendees", [])
        return [{c: a.get(c) for c in COLUMNS} for a in attendees]

    def spend_series(self) -> tuple[list[datetime], list[float]]:
        points = (self.data or {}).get("spend_over_time", [])
        return [datetime.fromtimestamp(t) for t, _ in points], [float(u) for _, u in points]

    def summary(self) -> str:
        if self.error:
            return self.error
        if not self.data:
            return "no usage read yet"
        t, w = self.data["totals"], self.data["window"]
        return (f"{t['requests']} requests, ${t['usd']:.4f} of ${t['budget_usd']:.2f}; {t['throttled']} 429s, "
                f"{t['refusals']} refusals; window {w['state']} ({w['starts']} to {w['ends']})")  # fmt: skip

    def table_html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
        body = []
        for row in self.rows():
            cells = []
            for c in COLUMNS:
                v = row[c]
                if c == "last_request" and v:
                    v = datetime.fromtimestamp(v).strftime("%H:%M:%S")
                elif c == "usd" and v is not None:
                    v = f"{v:.4f}"
                cells.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    def __repr__(self) -> str:
        return f"RoomPanelState({self.url}, admin_key=***, {len(self.rows())} attendees)"


def _plot_png(state: RoomPanelState) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 2.2))
    ax = fig.add_subplot()
    times, spend = state.spend_series()
    if times:
        ax.step(times, spend, where="post")  # type: ignore[arg-type]  # matplotlib takes datetimes
    ax.set_ylabel("USD spent")
    ax.set_title("Room spend over time", fontsize=9)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return buf.getvalue()


class RoomPanel:
    """``RoomPanel(ROOM, admin_key=...)``: a live table and spend plot of a room in a notebook."""

    def __init__(self, room: str, *, admin_key: str, live: bool = False, every_s: float = 5.0,
                 fetch: Callable[[str, dict[str, str]], Any] | None = None) -> None:  # fmt: skip
        import ipywidgets as w

        self.state = RoomPanelState(room, admin_key=admin_key, fetch=fetch)
        self.summary = w.HTML()
        self.table = w.HTML()
        self.plot = w.Image(format="png")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.widget = w.VBox([w.HBox([self.refresh_button, self.summary]), self.table, self.plot])
        self._stop = threading.Event()
        self._every_s = every_s
        self.refresh()
        if live:
            threading.Thread(target=self._loop, name="vizlab-room-panel", daemon=True).start()

    def refresh(self) -> None:
        self.state.refresh()
        self.summary.value = html.escape(self.state.summary())
        self.table.value = self.state.table_html()
        self.plot.value = _plot_png(self.state)

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            self.refresh()

    def stop(self) -> None:
        """End live updates."""
        self._stop.set()

    def snapshot_html(self) -> str:
        """The panel as static HTML (the plot inline), for saved notebooks, GitHub and nbconvert."""
        import base64

        png = bytes(self.plot.value or b"")
        image = f'<img alt="spend over time" src="data:image/png;base64,{base64.b64encode(png).decode()}">' if png else ""
        return f"<div><p>{html.escape(self.state.summary())}</p>{self.state.table_html()}{image}</div>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_() or {})
        bundle["text/plain"] = "<vizlab RoomPanel: run the notebook to use it>"
        # The same markers as the other panels' snapshots, which notebooks/sanitize.cfg folds.
        bundle["text/html"] = f"<!-- vizlab-snapshot -->{self.snapshot_html()}<!-- /vizlab-snapshot -->"
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    def __repr__(self) -> str:
        return f"RoomPanel({self.state.url}, admin_key=***)"
