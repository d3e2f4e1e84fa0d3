"""PDFs in the panels (vizlab.widgets.documents), with real ipywidgets objects and the built-in backend:
page 1's thumbnail, the page count and the estimate; sent as a file part or as page images, through
the conversation (so autosave and export follow). Also: the one claim for Send and the edits, and
the estimate's "model unknown" before the client knows its model (issue 19)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as W
import pytest
from conftest import LOCAL_API_KEY

from vizlab.client import Client, connect
from vizlab.document_samples import sample_documents
from vizlab.tokens.request import estimate_request
from vizlab.widgets import ChatPanel, UploadPanel
from vizlab.widgets.documents import PageImages, document_part, document_row, encode_attachment

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DOCS = {d.name: d for d in sample_documents()}
REPORT = DOCS["report.pdf"]  # 3 pages with a text layer
INVOICE = DOCS["invoice.pdf"]  # 1 page: "Total: 1234.50 EUR"


def record(doc: Any) -> dict[str, Any]:
    """A PDF as the browser's intake (or FileUpload) hands it on."""
    return {"name": doc.name, "type": "application/pdf", "size": len(doc.data), "content": memoryview(doc.data),
            "last_modified": 0}  # fmt: skip


@pytest.fixture
def client(local_backend: Any) -> Iterator[Client]:
    c = connect(backend="azure", endpoint=local_backend.url, api_key=LOCAL_API_KEY, deployment="gpt-4o",
                env_file=None, verbose=False)  # fmt: skip
    yield c
    c.close()
    W.Widget.close_all()


@pytest.mark.slow
def test_the_upload_panel_shows_a_pdfs_thumbnail_pages_and_estimate_either_way() -> None:
    panel = UploadPanel(model="gpt-4o", detail="low")
    assert panel.pdf_mode.layout.display == "none"  # no PDF yet: no choice to make
    panel.drop_zone.receive_files([record(REPORT)])
    assert panel.state.errors == []
    (row,) = panel.state.rows()
    assert row.pages == 3 and row.mime == "application/pdf" and "3 pages" in row.summary
    as_file = estimate_request([{"role": "user", "content": [document_part(panel.images[0])]}], model="gpt-4o")
    assert row.tokens == as_file.documents[0].tokens  # the document estimate of vizlab.tokens
    thumb = panel._thumb_widgets[panel.images[0].sha256]
    assert bytes(thumb.value).startswith(PNG_SIGNATURE)
    assert panel.pdf_mode.layout.display == ""
    shown = panel.rows_box.children[0].children[1].value
    assert "3 pages" in shown and "file part" in shown and f"{row.tokens:,} tokens" in shown
    assert "1 PDF" in panel.total_html.value

    panel.pdf_mode.value = "pages"
    (paged,) = panel.state.rows()
    pages = panel.state.outgoing()
    assert [p.mime for p in pages] == ["image/png"] * 3 and len(panel.images) == 1
    assert paged.tokens == 3 * 85 != row.tokens  # three page images at detail low, 85 tokens each on gpt-4o
    assert "as page images" in panel.rows_box.children[0].children[1].value
    assert "UploadPanel" in panel.snapshot_html() and "3 pages" in panel.snapshot_html()


@pytest.mark.slow
def test_a_pdf_dropped_on_the_chat_goes_as_a_file_part_and_autosaves(client: Client, tmp_path: Path) -> None:
    saved = tmp_path / "chat.json"
    panel = ChatPanel(client, autosave=saved, max_tokens=200, export_dir=tmp_path)
    panel.prompt.receive_files([record(INVOICE)])
    assert panel.error_html.value == "" and panel.pdf_mode.layout.display == ""
    (box,) = panel.attachments_box.children
    assert bytes(box.children[0].value).startswith(PNG_SIGNATURE)  # page 1's thumbnail
    assert "1 page" in box.children[1].value and "tokens sent as a file part" in box.children[1].value
    assert "1 PDF" in panel.estimate_html.value
    panel.prompt.value = "What is the invoice total?"
    panel.send()
    assert panel.wait(120)
    assert panel.error_html.value == "", panel.error_html.value
    sent = panel.state.last_reply.request["messages"][-1]["content"]
    assert [p["type"] for p in sent] == ["text", "file"] and sent[1]["file"]["filename"] == "invoice.pdf"
    assert "1234.50" in panel.state.conversation.turns[-1].text
    assert panel.state.attachments == [] and panel.pdf_mode.layout.display == "none"
    doc = json.loads(saved.read_text())
    assert any(i.get("mime") == "application/pdf" for i in _stored_images(doc))  # autosave holds the PDF
    assert "invoice.pdf (PDF)" in panel.rows()[0]["stats"] and panel.rows()[0]["thumbs"]
    assert Path(panel.export("markdown")).is_file()


@pytest.mark.slow
def test_a_pdf_sent_as_page_images_goes_as_one_image_per_page(client: Client) -> None:
    panel = ChatPanel(client, max_tokens=100)
    panel.attach(REPORT.data)
    panel.pdf_mode.value = "pages"
    assert "as page images" in panel.attachments_box.children[0].children[1].value
    assert "3 images" in panel.estimate_html.value  # the estimate follows the choice
    panel.prompt.value = "What is on these pages?"
    panel.send()
    assert panel.wait(120) and panel.error_html.value == ""
    sent = panel.state.last_reply.request["messages"][-1]["content"]
    assert [p["type"] for p in sent] == ["text", "image_url", "image_url", "image_url"]
    user = panel.state.conversation.turns[-2]
    assert len(user.images) == 3 and all(panel.state.conversation.images[k].mime == "image/png" for k in user.images)


def test_a_broken_pdf_is_named_and_the_page_cache_renders_once() -> None:
    from vizlab.errors import VizlabError

    with pytest.raises(VizlabError, match="broken.pdf"):
        encode_attachment(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n", "broken.pdf")
    cache = PageImages()
    doc = encode_attachment(REPORT.data, REPORT.name)
    first = cache.of(doc)
    assert cache.of(doc)[0] is first[0] and [p.name for p in first] == ["report-page-1.png", "report-page-2.png",
                                                                        "report-page-3.png"]  # fmt: skip
    with pytest.raises(ValueError, match="'file' or 'pages'"):
        cache.expand([doc], "both")
    assert document_row(doc, model="gpt-4o", mode="pages", detail="low", pages=cache).tokens == 255


def _stored_images(doc: dict[str, Any]) -> list[dict[str, Any]]:
    images = doc.get("images", {})
    return list(images.values()) if isinstance(images, dict) else list(images)


def test_send_and_the_edits_share_one_claim(client: Client) -> None:
    panel = ChatPanel(client)
    state = panel.state
    assert not hasattr(state, "claim_edit") and not hasattr(state, "release_edit")
    state.conversation.add_user("What is it?")
    state.conversation.add_assistant("A card.")
    assert state.claim(None)  # an edit's claim: no prompt to check
    assert not state.claim("hello") and not state.regenerate()
    assert state.error == "A request is already running; press Stop first."
    state.release()
    assert not state.claim("  ") and "Type a question" in state.error


def test_the_estimate_says_model_unknown_until_the_client_learns_it() -> None:
    from vizlab.local import LocalBackend

    with LocalBackend(api_key=LOCAL_API_KEY, deployments=("vision=gpt-4o",)) as backend:
        client = connect(backend="azure", endpoint=backend.url, api_key=LOCAL_API_KEY, deployment="vision",
                         env_file=None, verbose=False)  # fmt: skip
        try:
            assert not client.model_known
            panel = ChatPanel(client, max_tokens=50)
            assert client.model_note.startswith("model unknown")
            estimate = panel.estimate_html.value
            assert "no estimate" in estimate and "model unknown" in estimate and "gpt-4o" not in estimate  # no guess
            assert "model unknown" in panel.backend_html.value
            panel.prompt.value = "Hello"
            panel.send()
            assert panel.wait(120) and panel.error_html.value == ""
            assert client.model_known and "(on gpt-4o" in panel.estimate_html.value
        finally:
            client.close()
            W.Widget.close_all()
