"""Editing a chat from the panel: regenerate, edit and resend (cost shown first), delete, import.

Real ipywidgets driven as the front end would (``button.click()``, ``.value = ...``,
``FileUpload.set_state``), real HTTP to the built-in backend. Every edit goes through the
conversation, so the autosave file follows it; a refused resend leaves the chat as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as W
import pytest
from conftest import LOCAL_API_KEY, make_image_bytes

from vizlab.client import Client, connect
from vizlab.widgets import ChatPanel


@pytest.fixture
def client(local_backend: Any) -> Iterator[Client]:
    c = connect(backend="azure", endpoint=local_backend.url, api_key=LOCAL_API_KEY, deployment="gpt-4o",
                env_file=None, verbose=False)  # fmt: skip
    yield c
    c.close()


@pytest.fixture
def chat(client: Client, tmp_path: Path) -> Iterator[ChatPanel]:
    panel = ChatPanel(client, export_dir=tmp_path, autosave=tmp_path / "chat.json")
    panel.run_in_thread = False
    yield panel
    W.Widget.close_all()


def ask(panel: ChatPanel, text: str, image: bytes | None = None) -> None:
    if image is not None:
        panel.attach(image)
    panel.prompt.value = text
    panel.send_button.click()
    assert panel.state.error == "", panel.state.error


def saved(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_regenerate_replaces_the_last_answer_and_keeps_its_cost(chat: ChatPanel, tmp_path: Path) -> None:
    assert chat.regenerate_button.disabled  # nothing to regenerate yet
    ask(chat, "Describe this image", make_image_bytes(300, 200))
    first = chat.state.last_reply
    spent = chat.state.spent_usd
    assert not chat.regenerate_button.disabled
    chat.regenerate_button.click()
    assert chat.state.error == ""
    turns = chat.conversation.turns
    assert [t.role for t in turns] == ["user", "assistant"]
    assert chat.state.last_reply is not None and chat.state.last_reply is not first
    assert chat.state.spent_usd > spent  # the replaced answer was billed: it still counts
    assert "since replaced or deleted" in chat.totals_html.value
    assert [t["role"] for t in saved(tmp_path)["turns"]] == ["user", "assistant"]  # autosave followed
    chat.new_chat_button.click()
    assert chat.state.spent_usd == 0 and "replaced" not in chat.totals_html.value  # per chat, as the totals


@pytest.mark.slow
def test_edit_shows_the_cost_first_then_resends_from_there(chat: ChatPanel, tmp_path: Path) -> None:
    ask(chat, "What colour is it?", make_image_bytes(400, 300))
    ask(chat, "And the shape?")
    ask(chat, "Anything else?")
    assert len(chat.conversation.turns) == 6
    chat.turn_picker.value = 2  # "3. You: And the shape?"
    assert chat.edit_text.value == "And the shape?"
    chat.edit_text.value = "How many lines are there?"
    preview = chat.edit_preview_html.value
    assert "Resend from message 3 drops the 3 later messages" in preview and "prompt tokens" in preview
    assert len(chat.conversation.turns) == 6  # nothing changed by the preview
    chat.resend_button.click()
    assert chat.state.error == ""
    turns = chat.conversation.turns
    assert [t.text for t in turns[:3]] == ["What colour is it?", turns[1].text, "How many lines are there?"]
    assert len(turns) == 4 and turns[3].role == "assistant"
    assert [t["text"] for t in saved(tmp_path)["turns"]][2] == "How many lines are there?"


@pytest.mark.slow
def test_editing_a_question_with_an_image_keeps_the_image(chat: ChatPanel) -> None:
    ask(chat, "Describe", make_image_bytes(256, 256))
    key = chat.conversation.turns[0].images[0]
    chat.turn_picker.value = 0
    chat.edit_text.value = "Describe it in one word"
    chat.resend_button.click()
    assert chat.state.error == ""
    assert chat.conversation.turns[0].images == [key] and key in chat.conversation.images
    assert chat.state.last_reply is not None
    assert "image_url" in json.dumps(chat.state.last_reply.request)


@pytest.mark.slow
def test_a_refused_resend_leaves_the_chat_as_it_was(client: Client, tmp_path: Path) -> None:
    panel = ChatPanel(client, export_dir=tmp_path, max_usd=0.02)
    panel.run_in_thread = False
    ask(panel, "Describe", make_image_bytes(200, 200))
    before = [(t.role, t.text) for t in panel.conversation.turns]
    panel.max_tokens.value = 16_000  # worst case now over the budget
    panel.turn_picker.value = 0
    panel.edit_text.value = "Describe again"
    panel.resend_button.click()
    assert "Not sent" in panel.state.error and "budget" in panel.error_html.value
    assert [(t.role, t.text) for t in panel.conversation.turns] == before
    W.Widget.close_all()


@pytest.mark.slow
def test_delete_a_question_takes_its_answer_and_its_image(chat: ChatPanel, tmp_path: Path) -> None:
    ask(chat, "First", make_image_bytes(128, 128))
    ask(chat, "Second")
    chat.turn_picker.value = 0
    chat.delete_button.click()
    assert [t.text for t in chat.conversation.turns][0] == "Second" and len(chat.conversation.turns) == 2
    assert chat.conversation.images == {}  # no turn uses it any more
    doc = saved(tmp_path)
    assert len(doc["turns"]) == 2 and not doc.get("images")
    assert "1. You: Second" in [label for label, _ in chat.turn_picker.options]


@pytest.mark.slow
def test_import_a_saved_chat_from_the_panel(chat: ChatPanel, client: Client, tmp_path: Path) -> None:
    chat.system_text.value = "Be brief."
    chat.apply_system_button.click()
    ask(chat, "Describe", make_image_bytes(100, 80))
    exported = Path(chat.export("json"))
    other = ChatPanel(client, export_dir=tmp_path / "other")
    other.run_in_thread = False
    data = exported.read_bytes()
    other.import_upload.set_state({"value": [{"name": exported.name, "type": "application/json", "size": len(data),
                                              "content": memoryview(data), "last_modified": 0}]})  # fmt: skip
    assert other.state.error == ""
    assert [t.text for t in other.conversation.turns] == [t.text for t in chat.conversation.turns]
    assert other.system_text.value == "Be brief." and len(other.transcript.rows) == 2
    bad = b"{not json"
    other.import_upload.set_state({"value": [{"name": "x.json", "type": "application/json", "size": len(bad),
                                              "content": memoryview(bad), "last_modified": 0}]})  # fmt: skip
    assert "Import failed" in other.error_html.value and len(other.conversation.turns) == 2  # kept as it was


def test_a_row_s_edit_and_delete_buttons_act_on_that_message(chat: ChatPanel) -> None:
    ask(chat, "First question")
    ask(chat, "Second question")
    assert chat.transcript.actions
    chat.transcript.press("edit", 3)  # the row's Edit: message 3 picked, its text ready to change
    assert chat.turn_picker.value == 2 and chat.edit_text.value == "Second question"
    assert "Resend from message 3" in chat.edit_preview_html.value
    chat.transcript._on_action_msg(chat.transcript, {"event": "delete", "n": 1}, [])  # as the front end sends it
    assert [t.text for t in chat.conversation.turns][0] == "Second question" and len(chat.conversation.turns) == 2
