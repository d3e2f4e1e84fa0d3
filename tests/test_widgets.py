"""The panels driven as the front end drives them, against the real built-in backend.

``FileUpload.set_state({"value": [...]})`` is exactly what ipywidgets 8.1's front end sends after
a file is picked (widget_upload.ts: each file as {name, type, size, last_modified (ms since the
epoch), content: ArrayBuffer}); the ArrayBuffer reaches the kernel as a binary buffer, i.e. a
memoryview, and ipywidgets' ``_deserialize_value`` turns last_modified into a datetime.
``button.click()`` is a press, assigning ``.value`` is typing. Panels run synchronously here
(``run_in_thread = False``) unless a test is about the background thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as W
import pytest
from conftest import LOCAL_API_KEY, make_image_bytes

from vizlab.client import Client, connect
from vizlab.conversation import Conversation
from vizlab.local import LocalBackend
from vizlab.tokens import image_tokens
from vizlab.widgets import ChatPanel, ChatState, ComparePanel, CompareState, UploadPanel, UploadState
from vizlab.conversation.storage import human_bytes
from vizlab.widgets.state import LARGE_UPLOAD_NOTE, elide_data_urls, tile_grid_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- helpers ----------------------------------------------------------------------------------


def record(name: str, data: bytes, mime: str = "image/png") -> dict[str, Any]:
    """One file as the ipywidgets 8.1 front end sends it (content as a binary buffer)."""
    return {"name": name, "type": mime, "size": len(data), "content": memoryview(data), "last_modified": 1_700_000_000_000}


def texts(widget: Any) -> str:
    """Every string value shown anywhere in a widget tree, joined (what a user could read)."""
    out: list[str] = []

    def walk(w: Any) -> None:
        if isinstance(w, dict):  # one row of the transcript component
            out.extend([w.get("html", ""), w.get("stats", "")] + list(w.get("warnings", ())))
            return
        for attr in ("value", "description", "placeholder"):
            v = getattr(w, attr, None)
            if isinstance(v, str):
                out.append(v)
        if isinstance(w, (W.Dropdown, W.ToggleButtons)):
            out.extend(str(o) for o in w.options)
        for row in getattr(w, "rows", None) or ():  # the transcript component's rows
            walk(row)
        for child in getattr(w, "children", ()) or ():
            walk(child)

    walk(widget)
    return "\n".join(out)


def png_of(data_url: str) -> bytes:
    """The bytes of a ``data:image/png;base64,...`` URL (what a ZoomImage shows)."""
    import base64

    head, _, b64 = data_url.partition(",")
    assert head == "data:image/png;base64", head[:40]
    return base64.b64decode(b64)


def images_in(widget: Any) -> list[W.Image]:
    found: list[W.Image] = []

    def walk(w: Any) -> None:
        if isinstance(w, W.Image):
            found.append(w)
        for child in getattr(w, "children", ()) or ():
            walk(child)

    walk(widget)
    return found


def make_client(url: str, key: str = LOCAL_API_KEY, **kw: Any) -> Client:
    return connect(backend="azure", endpoint=url, api_key=key, deployment="gpt-4o", env_file=None, verbose=False, **kw)


@pytest.fixture
def client(local_backend: Any) -> Iterator[Client]:
    c = make_client(local_backend.url)
    yield c
    c.close()


@pytest.fixture
def square_png() -> bytes:
    return make_image_bytes(1024, 1024, "PNG")


@pytest.fixture
def square_path(tmp_path: Path, square_png: bytes) -> Path:
    path = tmp_path / "square.png"
    path.write_bytes(square_png)
    return path


@pytest.fixture
def chat(client: Client, tmp_path: Path) -> Iterator[ChatPanel]:
    panel = ChatPanel(client, export_dir=tmp_path)
    panel.run_in_thread = False
    yield panel
    W.Widget.close_all()  # every widget the test made


# --- pure helpers ---------------------------------------------------------------------------------


def test_elide_data_urls_keeps_mime_and_length() -> None:
    doc = {"messages": [{"content": [{"image_url": {"url": "data:image/png;base64," + "QUJD" * 3000}}]}]}
    out = elide_data_urls(doc)
    assert out["messages"][0]["content"][0]["image_url"]["url"] == "data:image/png;base64,…(12,000 chars)"
    assert elide_data_urls("plain text") == "plain text"


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(2048) == "2.0 KB"
    assert human_bytes(3 * 1024 * 1024) == "3.0 MB"


def test_tile_grid_png_draws_on_the_service_scaled_image(square_png: bytes) -> None:
    png, bd = tile_grid_png(square_png, detail="high", max_side=2000)
    assert png.startswith(PNG_SIGNATURE)
    assert bd.scaled == (768, 768) and bd.tiles == 4 and bd.tokens == 765
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(png)).size == (768, 768)
    _, low = tile_grid_png(square_png, detail="low")
    assert low.tokens == 85 and low.tiles == 0


# --- upload state -------------------------------------------------------------------------------


def test_upload_state_keeps_good_images_and_names_bad_ones(square_png: bytes) -> None:
    state = UploadState(model="gpt-4o", detail="high")
    errors = state.add([record("a.png", square_png), record("notes.png", b"hello, not an image")])
    assert [img.name for img in state.images] == ["a.png"]
    assert len(errors) == 1 and errors[0].startswith("notes.png: ")
    assert state.total_tokens == 765
    state.detail = "low"
    assert state.rows()[0].tokens == 85
    state.add([record("a-again.png", square_png)])  # same bytes: stored once
    assert len(state.images) == 1
    state.clear()
    assert state.images == [] and state.total_line() == "No images yet."


# --- upload panel ---------------------------------------------------------------------------------


def test_upload_panel_reads_front_end_uploads(square_png: bytes) -> None:
    panel = UploadPanel(model="gpt-4o", detail="high")
    jpeg = make_image_bytes(64, 48, "JPEG")
    # The browser guessed "image/png" for the JPEG: the panel shows the sniffed type.
    panel.file_upload.set_state({"value": [record("big.png", square_png), record("photo.png", jpeg)]})
    assert [img.name for img in panel.images] == ["big.png", "photo.png"]
    assert panel.images[1].mime == "image/jpeg"
    shown = texts(panel.widget)
    assert "image/jpeg" in shown and "1024x1024 px" in shown and "64x48 px" in shown
    assert human_bytes(len(square_png)) in shown
    assert "765 tokens" in shown
    assert "Total: 2 images" in shown
    thumbs = images_in(panel.rows_box)
    assert len(thumbs) == 2 and all(bytes(t.value).startswith(PNG_SIGNATURE) for t in thumbs)
    assert panel.file_upload.value == ()  # consumed, so the same file can be picked again
    assert LARGE_UPLOAD_NOTE.split(":")[0] in shown and "make lab" in shown and "a drop and a paste" in shown


def test_upload_panel_bad_file_among_good_ones(square_png: bytes) -> None:
    panel = UploadPanel()
    panel.file_upload.set_state({"value": [record("good.png", square_png)]})
    small = make_image_bytes(32, 32, "PNG")
    panel.file_upload.set_state(
        {"value": [record("broken.png", square_png[:200]), record("readme.png", b"# hello\n"), record("small.png", small)]}
    )
    errors = panel.errors_html.value
    assert "broken.png" in errors and "readme.png" in errors and "good.png" not in errors
    assert [img.name for img in panel.images] == ["good.png", "small.png"]
    panel.clear_button.click()
    assert panel.images == [] and panel.errors_html.value == ""


def test_upload_panel_detail_and_model_change_the_tokens(square_png: bytes) -> None:
    panel = UploadPanel(model="gpt-4o", detail="high")
    panel.file_upload.set_state({"value": [record("sq.png", square_png)]})
    assert "765 tokens" in texts(panel.rows_box)
    panel.detail_picker.value = "low"
    assert "85 tokens" in texts(panel.rows_box) and "765 tokens" not in texts(panel.rows_box)
    assert "85 image tokens on gpt-4o at detail low" in panel.total_html.value
    panel.detail_picker.value = "high"
    panel.model_picker.value = "gpt-4o-mini"
    expected = image_tokens(1024, 1024, detail="high", model="gpt-4o-mini")
    assert f"{expected:,} tokens" in texts(panel.rows_box)


def test_upload_panel_path_and_display(square_path: Path) -> None:
    panel = UploadPanel()
    panel.path_text.value = str(square_path)
    panel.add_path_button.click()
    assert [img.name for img in panel.images] == ["square.png"] and panel.path_text.value == ""
    panel.path_text.value = str(square_path.with_name("missing.png"))
    panel.add_path_button.click()
    assert "missing.png" in panel.errors_html.value
    assert panel.path_text.value.endswith("missing.png")  # kept for fixing
    panel.path_text.value = "   "
    panel.add_path_button.click()
    assert "Type a path" in panel.errors_html.value and len(panel.images) == 1
    bundle = panel._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id


# --- chat state -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_chat_state_send_is_synchronous_and_measured(client: Client, square_png: bytes) -> None:
    state = ChatState(client)
    state.apply_system("You're an AI assistant that helps people find information.")
    state.attach(square_png)
    chunks: list[str] = []
    assert state.send("Describe this image", on_chunk=chunks.append)
    assert chunks and chunks[-1] == state.conversation.turns[-1].text
    views = state.turn_views()
    assert [v.role for v in views] == ["user", "assistant"]
    assert len(views[0].images) == 1 and state.attachments == []
    assert "prompt" in views[1].stats and "estimated" in views[1].stats and "$" in views[1].stats
    totals = state.totals()
    assert totals["requests"] == 1 and totals["prompt"] > 765 and totals["cost"] > 0


def test_chat_state_keeps_an_image_attached_while_the_answer_streams(client: Client, square_png: bytes) -> None:
    state = ChatState(client)
    state.attach(square_png)
    later = make_image_bytes(80, 60, "PNG")
    attached_meanwhile: list[bool] = []

    def attach_during_stream(_text: str) -> None:  # the user picks the next image while reading
        if not attached_meanwhile:
            state.attach(later)
            attached_meanwhile.append(True)

    assert state.send("Describe this image", on_chunk=attach_during_stream)
    assert [(a.width, a.height) for a in state.attachments] == [(80, 60)]  # pending for the next message
    assert len(state.conversation.turns[0].images) == 1


def test_chat_state_empty_prompt_is_refused(client: Client) -> None:
    state = ChatState(client)
    assert not state.send("   ")
    assert "Type a question" in state.error and len(state.conversation) == 0


def test_chat_state_stop_before_the_worker_starts_is_kept(client: Client) -> None:
    """A Stop between the click (claim) and the worker's send must not be forgotten."""
    state = ChatState(client)
    assert state.claim("Describe yourself in as much detail as you can")
    state.cancel()  # pressed before the background thread got to send()
    assert state.send("Describe yourself in as much detail as you can", claimed=True)
    last = state.conversation.turns[-1]
    assert last.role == "assistant" and last.meta["finish_reason"] == "cancelled"
    assert not state.busy


def test_chat_state_claim_refuses_a_second_send_quietly(client: Client) -> None:
    state = ChatState(client)
    assert state.claim("first")
    assert not state.claim("second") and state.error == ""  # the running one reports its own outcome
    assert not state.new_chat() and "still running" in state.error  # its answer would land in the new chat
    state.release()
    assert state.new_chat() and state.error == ""


def test_chat_state_failing_callback_closes_the_stream_and_rolls_back(
    client: Client, square_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams: list[Any] = []
    real_stream = client.stream

    def recording_stream(*args: Any, **kwargs: Any) -> Any:
        streams.append(real_stream(*args, **kwargs))
        return streams[-1]

    monkeypatch.setattr(client, "stream", recording_stream)

    def broken_view(_text: str) -> None:
        raise RuntimeError(f"view failed near {LOCAL_API_KEY}")

    state = ChatState(client)
    state.attach(square_png)
    assert not state.send("Describe this image", on_chunk=broken_view)
    assert "RuntimeError: view failed" in state.error and LOCAL_API_KEY not in state.error
    assert len(state.conversation) == 0 and len(state.attachments) == 1 and not state.busy
    assert len(streams) == 1 and "cancelled" in repr(streams[0])  # the HTTP stream was closed, not left open


def test_chat_state_autosave_failure_leaves_no_half_turn(client: Client, tmp_path: Path, square_png: bytes) -> None:
    import shutil

    folder = tmp_path / "saves"
    folder.mkdir()
    state = ChatState(client, autosave=folder / "chat.json")
    assert state.send("first")
    shutil.rmtree(folder)
    folder.write_text("a file where the folder was")  # saving the next user turn fails
    state.attach(square_png)
    assert not state.send("second")
    assert "Could not save" in state.error
    assert [t.text for t in state.conversation.turns if t.role == "user"] == ["first"]  # no doubled question on retry
    assert len(state.attachments) == 1


def test_chat_state_keeps_an_answer_whose_autosave_failed(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vizlab.errors import ConversationError

    state = ChatState(client, autosave=tmp_path / "chat.json")
    conv = state.conversation
    real_save = conv.save  # autosave goes through the public save(path)

    def fail_on_answers(*args: Any, **kwargs: Any) -> Any:
        if conv.turns and conv.turns[-1].role == "assistant":
            raise ConversationError("Could not save the conversation (disk full)")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(conv, "save", fail_on_answers)
    assert state.send("hello")  # the answer arrived: the prompt is not handed back for a resend
    assert "disk full" in state.error
    assert [t.role for t in conv.turns] == ["user", "assistant"] and conv.turns[-1].text


# --- chat panel -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_chat_panel_playground_flow(chat: ChatPanel, square_path: Path) -> None:
    """The quickstart: system message, apply, attach, "Describe this image", Send, follow-up."""
    system = "You're an AI assistant that helps people find information."
    chat.system_text.value = system
    assert "Not applied yet" in chat.system_status.value
    chat.apply_system_button.click()
    assert chat.conversation.system == system and "applied" in chat.system_status.value

    chat.path_text.value = str(square_path)
    chat.attach_button.click()
    assert [a.name for a in chat.state.attachments] == ["square.png"]
    assert len(images_in(chat.attachments_box)) == 1

    chat.prompt.value = "Describe this image"
    chat.send_button.click()
    assert chat.error_html.value == ""
    turns = chat.transcript.rows
    assert len(turns) == 2
    assert turns[0]["role"] == "user" and turns[1]["role"] == "assistant"
    assert len(turns[0]["thumbs"]) == 1  # the thumbnail sits beside its turn
    answer = texts(turns[1])
    assert "local analyst" in answer and "1024x1024" in answer
    assert "prompt" in answer and "tokens (estimated" in answer and "$0.0" in answer and "finish stop" in answer
    assert "Total: 1 request" in chat.totals_html.value
    assert chat.prompt.value == "" and chat.state.attachments == []
    assert not chat.send_button.disabled and chat.stop_button.disabled

    # The follow-up re-sends the image: Chat Completions keeps no state.
    chat.prompt.value = "What should I highlight about this image to my insurance company?"
    chat.send_button.click()
    assert len(chat.transcript.rows) == 4
    request = chat.state.last_reply.request if chat.state.last_reply else {}
    messages = request["messages"]
    assert messages[0] == {"role": "system", "content": system}
    first_user = messages[1]["content"]
    assert any(p.get("type") == "image_url" and p["image_url"]["url"].startswith("data:image/png") for p in first_user)
    assert messages[-1]["role"] == "user" and "insurance" in str(messages[-1]["content"])
    assert "Total: 2 requests" in chat.totals_html.value


@pytest.mark.slow
def test_chat_panel_raw_json_elides_data_urls(chat: ChatPanel, square_png: bytes) -> None:
    chat.raw_toggle.value = True
    assert "No request sent yet" in chat.raw_html.value
    chat.attach(square_png)
    chat.prompt.value = "Describe this image"
    chat.send_button.click()
    raw = chat.raw_html.value
    assert '"request"' in raw and '"response"' in raw and '"usage"' in raw
    assert "data:image/png;base64,…(" in raw and " chars)" in raw
    assert "iVBORw0KGgo" not in raw  # no base64 PNG bytes
    chat.raw_toggle.value = False
    assert chat.raw_html.value == ""


def test_chat_panel_max_tokens_is_clamped_to_the_deployment_s_output_limit(chat: ChatPanel) -> None:
    from vizlab.models import lookup

    limit = lookup("gpt-4o").max_output
    assert chat.max_tokens.max == limit == 16_384  # the registry's figure, not a global 128,000
    chat.max_tokens.value = 128_000
    assert chat.max_tokens.value == limit  # the control clamps it
    chat.state.settings.max_tokens = 128_000  # from Python: the estimate and the send clamp it too
    assert chat.state.estimate_next("hi").max_output == limit
    assert str(limit) in chat.max_tokens.tooltip.replace(",", "")


def test_chat_panel_length_warning(chat: ChatPanel) -> None:
    chat.max_tokens.value = 3
    chat.prompt.value = "Describe yourself in as much detail as you can"
    chat.send_button.click()
    shown = texts(chat.transcript)
    assert "finish length" in shown and "cut off by max_tokens" in shown
    assert chat.conversation.turns[-1].meta["finish_reason"] == "length"


@pytest.mark.slow
def test_chat_panel_auth_error_then_fixed(local_backend: Any, client: Client, square_png: bytes) -> None:
    wrong_key = "wrong-key-0123456789"
    bad = make_client(local_backend.url, key=wrong_key, max_retries=0)
    panel = ChatPanel(bad)
    panel.run_in_thread = False
    panel.attach(square_png)
    panel.prompt.value = "Describe this image"
    panel.send_button.click()
    assert "AuthenticationError" in panel.error_html.value
    assert len(panel.conversation) == 0  # the user turn was taken back: a retry is clean
    assert panel.prompt.value == "Describe this image" and len(panel.state.attachments) == 1
    assert not panel.send_button.disabled and panel.stop_button.disabled
    assert wrong_key not in texts(panel.widget)

    panel.client = client  # the key fixed
    panel.send_button.click()
    assert panel.error_html.value == ""
    assert [t.role for t in panel.conversation.turns] == ["user", "assistant"]
    assert len(panel.conversation.turns[0].images) == 1
    bad.close()
    W.Widget.close_all()


@pytest.mark.slow
def test_chat_panel_backend_down(tmp_path: Path) -> None:
    backend = LocalBackend(api_key=LOCAL_API_KEY).start()
    url = backend.url
    backend.stop()
    down = make_client(url, max_retries=0, timeout=5.0)
    panel = ChatPanel(down)
    panel.run_in_thread = False
    panel.prompt.value = "hello?"
    panel.send_button.click()
    assert "BackendUnavailableError" in panel.error_html.value
    assert len(panel.conversation) == 0 and not panel.send_button.disabled
    down.close()
    W.Widget.close_all()


@pytest.mark.slow
def test_chat_panel_rate_limit_shows_in_panel() -> None:
    with LocalBackend(api_key=LOCAL_API_KEY, rpm=1, rate_window_s=30.0) as backend:
        limited = make_client(backend.url, max_retries=0)
        panel = ChatPanel(limited)
        panel.run_in_thread = False
        panel.prompt.value = "first"
        panel.send_button.click()
        assert panel.error_html.value == ""
        panel.prompt.value = "second"
        panel.send_button.click()
        assert "RateLimitError" in panel.error_html.value
        assert [t.text for t in panel.conversation.turns if t.role == "user"] == ["first"]
        limited.close()
        W.Widget.close_all()


@pytest.mark.slow
def test_chat_panel_new_chat_clears(chat: ChatPanel, square_png: bytes) -> None:
    chat.system_text.value = "Be brief."
    chat.apply_system_button.click()
    chat.attach(square_png)
    chat.prompt.value = "Describe this image"
    chat.send_button.click()
    assert len(chat.transcript.rows) == 2
    chat.new_chat_button.click()
    assert chat.transcript.rows == [] and len(chat.conversation) == 0 and chat.conversation.images == {}
    assert chat.conversation.system == "Be brief."
    assert "No requests yet" in chat.totals_html.value


@pytest.mark.slow
def test_chat_panel_export_writes_files(chat: ChatPanel, square_png: bytes, tmp_path: Path) -> None:
    chat.attach(square_png)
    chat.prompt.value = "Describe this image"
    chat.send_button.click()
    chat.export_json_button.click()
    json_path = Path(chat.export_html.value.split("<code>")[1].split("</code>")[0])
    assert json_path.parent == tmp_path and json_path.suffix == ".json"
    assert Conversation.load(json_path).turns[0].text == "Describe this image"
    chat.export_md_button.click()
    md_path = Path(chat.export_html.value.split("<code>")[1].split("</code>")[0])
    assert md_path.suffix == ".md"
    md = md_path.read_text(encoding="utf-8")
    assert "Describe this image" in md and "usage:" in md
    link = md.split("](")[1].split(")")[0]
    assert not Path(link).is_absolute() and (md_path.parent / link).read_bytes() == square_png
    assert LOCAL_API_KEY not in json_path.read_text(encoding="utf-8") + md


@pytest.mark.slow
def test_chat_panel_autosave_survives_a_restart(client: Client, tmp_path: Path, square_png: bytes) -> None:
    path = tmp_path / "chat.autosave.json"
    first = ChatPanel(client, autosave=path)
    first.run_in_thread = False
    first.system_text.value = "Be brief."
    first.apply_system_button.click()
    first.attach(square_png)
    first.prompt.value = "Describe this image"
    first.send_button.click()
    answer = first.conversation.turns[-1].text
    W.Widget.close_all()

    again = ChatPanel(client, autosave=path)  # what re-running the cell after a restart does
    assert [t.text for t in again.conversation.turns] == ["Describe this image", answer]
    assert again.system_text.value == "Be brief."
    assert len(again.transcript.rows) == 2 and len(again.transcript.rows[0]["thumbs"]) == 1
    assert "Total: 1 request" in again.totals_html.value
    W.Widget.close_all()


@pytest.mark.slow
def test_chat_panel_uses_an_upload_panel_and_its_own_upload(client: Client, square_png: bytes) -> None:
    uploads = UploadPanel()
    uploads.file_upload.set_state({"value": [record("from-panel.png", square_png)]})
    panel = ChatPanel(client, upload=uploads)
    panel.run_in_thread = False
    panel.attach_uploads_button.click()
    small = make_image_bytes(80, 60, "PNG")
    panel.file_upload.set_state({"value": [record("direct.png", small), record("bad.png", b"nope")]})
    assert [a.name for a in panel.state.attachments] == ["from-panel.png", "direct.png"]
    assert "bad.png" in panel.error_html.value
    panel.prompt.value = "Compare these images"
    panel.send_button.click()
    assert len(panel.conversation.turns[0].images) == 2
    W.Widget.close_all()


@pytest.mark.slow
def test_chat_panel_deployment_picker(local_backend: Any) -> None:
    c = make_client(local_backend.url)
    panel = ChatPanel(c)
    panel.run_in_thread = False
    assert list(panel.deployment_picker.options) == ["gpt-4o"]  # Azure: its deployment only
    panel.state.select_deployment("gpt-4o-mini")  # same endpoint and key, another deployment
    panel.prompt.value = "hello"
    panel.send_button.click()
    assert panel.state.last_reply is not None and panel.state.last_reply.request["model"] == "gpt-4o-mini"
    assert panel.state.last_reply.deployment == "gpt-4o-mini"
    c.close()
    W.Widget.close_all()


@pytest.mark.slow
def test_chat_panel_runs_in_a_thread_and_can_stop(square_png: bytes) -> None:
    with LocalBackend(api_key=LOCAL_API_KEY, stream_chunk_delay_s=0.05) as backend:
        slow = make_client(backend.url)
        panel = ChatPanel(slow)  # run_in_thread stays True, as in a notebook
        panel.attach(square_png)
        panel.prompt.value = "Describe this image"
        panel.send_button.click()
        assert panel.send_button.disabled and not panel.stop_button.disabled  # the cell returned at once
        panel.send_button.click()  # a second click that was already queued: ignored
        deadline = time.monotonic() + 10
        while not panel.state.streamed_text and time.monotonic() < deadline:
            time.sleep(0.01)
        assert panel.state.streamed_text
        panel.stop_button.click()
        assert panel.wait(10)
        assert not panel.send_button.disabled and panel.stop_button.disabled
        assert panel.error_html.value == ""  # the ignored second click left no error behind
        last = panel.conversation.turns[-1]
        assert last.role == "assistant" and last.meta["finish_reason"] == "cancelled"
        assert "Stopped" in texts(panel.transcript)
        # The panel is usable again: the next request runs to the end.
        panel.prompt.value = "And in one word?"
        panel.send_button.click()
        assert panel.wait(30)
        assert panel.conversation.turns[-1].meta["finish_reason"] == "stop"
        assert [t.role for t in panel.conversation.turns] == ["user", "assistant"] * 2
        slow.close()
        W.Widget.close_all()


@pytest.mark.slow
def test_no_key_in_any_widget(chat: ChatPanel, square_png: bytes) -> None:
    chat.attach(square_png)
    chat.prompt.value = "Describe this image"
    chat.send_button.click()
    chat.raw_toggle.value = True
    assert LOCAL_API_KEY not in texts(chat.widget)
    assert LOCAL_API_KEY not in chat.state.raw_json()


# --- compare ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_state_columns(client: Client, square_png: bytes) -> None:
    state = CompareState(client, square_png, "Describe this image.")
    cols = state.run()
    assert set(cols) == {"low", "high", "auto"}
    assert all(c.answer and not c.error for c in cols.values())
    assert cols["low"].image_tokens == 85 and cols["high"].image_tokens == 765
    assert cols["high"].reported_prompt is not None and cols["low"].reported_prompt is not None
    assert cols["high"].reported_prompt > cols["low"].reported_prompt
    assert cols["high"].estimated_prompt == cols["high"].reported_prompt


@pytest.mark.slow
def test_compare_panel_three_columns(client: Client, square_path: Path) -> None:
    panel = ComparePanel(client, image=str(square_path), question="What colour is this?")
    panel.run_in_thread = False
    assert all(png_of(v.grid.src).startswith(PNG_SIGNATURE) for v in panel.column_views.values())  # before running
    panel.run_button.click()
    assert not panel.run_button.disabled and panel.error_html.value == ""
    for detail in ("low", "high", "auto"):
        view = panel.column_views[detail]
        assert "vizlab-compare-" + detail in view.box._dom_classes
        assert view.answer.value and "⚠️" not in view.answer.value
        assert "prompt estimated" in view.stats.value and "reported" in view.stats.value and "$" in view.stats.value
        assert png_of(view.grid.src).startswith(PNG_SIGNATURE)
    assert panel.columns["high"].reported_prompt > panel.columns["low"].reported_prompt  # type: ignore[operator]
    assert "2x2 tiles" in panel.column_views["high"].stats.value
    assert panel.state.question == "What colour is this?"
    W.Widget.close_all()


@pytest.mark.slow
def test_compare_state_grid_failure_lands_in_the_columns(
    client: Client, square_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vizlab.widgets.state as state_module

    state = CompareState(client, square_png)

    def broken_grid(*_a: Any, **_k: Any) -> Any:
        raise OSError("no font")

    monkeypatch.setattr(state_module, "tile_grid_png", broken_grid)
    cols = state.run()
    assert all("OSError: no font" in c.error and not c.answer for c in cols.values())


@pytest.mark.slow
def test_compare_panel_shows_an_unexpected_failure(client: Client, square_png: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    panel = ComparePanel(client, image=square_png)
    panel.run_in_thread = False

    def broken_run(**_kw: Any) -> Any:
        raise RuntimeError("compare broke")

    monkeypatch.setattr(panel.state, "run", broken_run)
    panel.run_button.click()  # in a notebook this runs in a thread, where a traceback is never seen
    assert "RuntimeError: compare broke" in panel.error_html.value
    assert not panel.run_button.disabled
    W.Widget.close_all()


@pytest.mark.slow
def test_compare_panel_upload_and_errors(local_backend: Any, square_png: bytes) -> None:
    bad = make_client(local_backend.url, key="another-wrong-key", max_retries=0)
    panel = ComparePanel(bad)
    panel.run_in_thread = False
    panel.run_button.click()
    assert "Choose an image first" in panel.error_html.value
    panel.file_upload.set_state({"value": [record("sq.png", square_png)]})
    assert panel.state.image is not None and panel.state.image.name == "sq.png"
    panel.run_button.click()
    assert all("AuthenticationError" in v.answer.value for v in panel.column_views.values())
    assert "another-wrong-key" not in texts(panel.widget)
    bad.close()
    W.Widget.close_all()
