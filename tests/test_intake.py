"""Paste and drop, the kernel side: files arrive in acknowledged 1 MiB chunks from the browser
(the messages ``files.js`` sends, fed to real widgets as their comm would), become attachments or
upload rows; a refusal from the browser shows in the panel; nothing is dropped silently."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ipywidgets as W
import pytest
from conftest import LOCAL_API_KEY, make_image_bytes

from vizlab.client import Client, connect
from vizlab.widgets import ChatPanel, UploadPanel
from vizlab.widgets.intake import UPLOAD_LIMIT, FileIntakeWidget

CHUNK = 1024 * 1024


class Browser:
    """Plays files.js against a widget: begin, chunks, end; collects the kernel's acks."""

    def __init__(self, widget: FileIntakeWidget) -> None:
        self.widget = widget
        self.acks: list[dict[str, Any]] = []
        widget.send = lambda content, buffers=None: self.acks.append(content)  # type: ignore[method-assign]

    def message(self, content: dict[str, Any], buffers: list[Any] | None = None) -> None:
        self.widget._handle_custom_msg(content, buffers or [])  # what the comm calls on a custom message

    def drop(self, name: str, data: bytes, mime: str = "image/png", file_id: str = "f1") -> None:
        self.message({"event": "file-begin", "id": file_id, "name": name, "type": mime, "size": len(data), "last_modified": 0})
        for offset in range(0, len(data), CHUNK):
            self.message({"event": "file-chunk", "id": file_id, "offset": offset}, [memoryview(data[offset:offset + CHUNK])])
        self.message({"event": "file-end", "id": file_id})


@pytest.fixture
def client(local_backend: Any) -> Iterator[Client]:
    c = connect(backend="azure", endpoint=local_backend.url, api_key=LOCAL_API_KEY, env_file=None, verbose=False)
    yield c
    c.close()
    W.Widget.close_all()


def test_a_dropped_image_in_chunks_is_attached_with_progress_acks(client: Client) -> None:
    panel = ChatPanel(client)
    browser = Browser(panel.prompt)
    big = make_image_bytes(1600, 1200, "BMP")  # about 5.8 MB: six chunks
    browser.drop("scan.bmp", big, "image/bmp")
    assert [a.name for a in panel.state.attachments] == ["scan.bmp"]
    received = [a["received"] for a in browser.acks if not a["error"]]
    assert received[0] == 0 and received[-1] == len(big) and received == sorted(received) and len(received) >= 7
    assert "scan.bmp" in str([c.children for c in panel.attachments_box.children])


def test_a_too_big_file_refused_by_the_browser_shows_in_the_panel(client: Client) -> None:
    panel = ChatPanel(client)
    Browser(panel.prompt).message({"event": "file-refused", "name": "huge.png", "size": 200_000_000, "type": "image/png",
                                   "reason": "size"})  # fmt: skip
    shown = panel.error_html.value
    assert "<b>huge.png</b>" in shown and "190.7 MB" in shown and "80.0 MB limit" in shown and "smaller copy" in shown
    assert panel.prompt.max_bytes == UPLOAD_LIMIT == 80 * 1024 * 1024


def test_the_kernel_refuses_an_oversized_begin_too(client: Client) -> None:
    panel = ChatPanel(client)
    panel.prompt.max_bytes = 1000
    browser = Browser(panel.prompt)
    browser.message({"event": "file-begin", "id": "x", "name": "a.png", "type": "image/png", "size": 5000})
    assert browser.acks[-1]["error"].startswith("a.png is") and "a.png" in panel.error_html.value
    assert panel.state.attachments == []


def test_a_pdf_or_a_broken_file_is_named_not_dropped(client: Client) -> None:
    panel = ChatPanel(client)
    browser = Browser(panel.prompt)
    browser.drop("report.pdf", b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n", "application/pdf")
    assert "<b>report.pdf</b>" in panel.error_html.value and "PDF" in panel.error_html.value
    browser.message({"event": "file-refused", "name": "notes.docx", "size": 10, "type": "application/msword", "reason": "type"})
    assert "notes.docx" in panel.error_html.value and "only images" in panel.error_html.value


def test_out_of_order_chunks_are_refused_and_said(client: Client) -> None:
    panel = ChatPanel(client)
    browser = Browser(panel.prompt)
    data = make_image_bytes(64, 64)
    browser.message({"event": "file-begin", "id": "z", "name": "a.png", "type": "image/png", "size": len(data)})
    browser.message({"event": "file-chunk", "id": "z", "offset": 10}, [memoryview(data)])
    assert "out of order" in browser.acks[-1]["error"] and panel.state.attachments == []


def test_the_upload_panel_drop_zone_adds_rows_and_says_refusals() -> None:
    panel = UploadPanel()
    browser = Browser(panel.drop_zone)
    browser.drop("photo.png", make_image_bytes(300, 200))
    assert [i.name for i in panel.images] == ["photo.png"]
    browser.message({"event": "file-refused", "name": "huge.png", "size": 100_000_000, "type": "image/png", "reason": "size"})
    assert "huge.png" in panel.errors_html.value and "photo.png" in panel.total_html.value + str(panel.images[0].name)
    assert "Drop or paste" in panel.drop_zone.label
    W.Widget.close_all()


def test_a_bad_file_early_in_a_drop_stays_said_when_the_good_ones_follow(client: Client) -> None:
    chat, upload = ChatPanel(client), UploadPanel()
    for widget, shown in ((chat.prompt, lambda: chat.error_html.value), (upload.drop_zone, lambda: upload.errors_html.value)):
        browser = Browser(widget)
        for index, (name, data) in enumerate([("notes.png", b"not an image at all"), ("photo.png", make_image_bytes(64, 48))]):
            browser.message({"event": "file-begin", "id": name, "name": name, "type": "image/png", "size": len(data),
                             "index": index, "count": 2})  # fmt: skip
            browser.message({"event": "file-chunk", "id": name, "offset": 0}, [memoryview(data)])
            browser.message({"event": "file-end", "id": name})
        assert "notes.png" in shown()  # the second file's success did not wipe the first one's error
    assert [a.name for a in chat.state.attachments] == ["photo.png"] and [i.name for i in upload.images] == ["photo.png"]
