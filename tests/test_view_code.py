""""View code" runs as shown: each snippet the chat panel shows, pasted unchanged into a new
Python process (or exec'd as a new cell, or run by bash for curl), makes the same image request
to the built-in backend, gets 200 and prints the panel's answer. No key is set for the built-in
backend (it accepts any; the snippet says so); the Azure variant reads AZURE_OPENAI_API_KEY.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as W
import pytest
from conftest import LOCAL_API_KEY, make_image_bytes

from vizlab.client import Client, connect
from vizlab.widgets import ChatPanel
from vizlab.widgets.code import request_code

# Text a shell or a Python literal could mangle: $, backticks, backslashes, quotes, JSON words.
TRICKY = 'Describe this image. Keep `$HOME`, "quotes", it\'s a \\ backslash, answer: true, null'


def _env(**extra: str) -> dict[str, str]:
    """A clean environment: no service variable at all, only what the test sets."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **extra}


def _run(kind: str, code: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if kind == "curl":
        return subprocess.run(["bash", "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=folder)
    script = folder / f"snippet_{kind}.py"
    script.write_text(code, encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120, cwd=folder)


def _answer(kind: str, stdout: str) -> str:
    return json.loads(stdout)["choices"][0]["message"]["content"].strip() if kind == "curl" else stdout.strip()


@pytest.fixture
def built_in() -> Iterator[Client]:
    c = connect(env_file=None, verbose=False)  # conftest sets VIZLAB_BACKEND=local: the shared backend
    assert c.backend == "local"
    yield c
    c.close()


def _image_chat(client: Client, folder: Path, prompt: str = TRICKY) -> ChatPanel:
    panel = ChatPanel(client, export_dir=folder)
    panel.run_in_thread = False
    panel.attach(make_image_bytes(320, 200, "PNG"))
    panel.temperature.value = 0.3
    panel.prompt.value = prompt
    panel.send_button.click()
    assert panel.state.error == "" and panel.state.last_reply is not None
    panel.code_toggle.value = True
    return panel


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["python", "requests", "curl"])
def test_view_code_runs_unchanged_against_the_built_in_backend(built_in: Client, tmp_path: Path, kind: str) -> None:
    if kind == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    panel = _image_chat(built_in, tmp_path)
    panel.code_kind.value = kind
    code = panel.code_view.code
    assert "base64,…" not in code and "base64,iVBOR" not in code  # read from the saved copy: not elided, not inline
    assert built_in.endpoint in code and "VIZLAB_LOCAL_API_KEY" in code  # endpoint and key stated
    saved = list((tmp_path / "vizlab-code-images").glob("*.png"))
    assert len(saved) == 1 and str(saved[0].resolve()) in code
    done = _run(kind, code, tmp_path, _env())
    assert done.returncode == 0, done.stderr[-2000:]
    reply = panel.state.last_reply
    assert reply is not None and _answer(kind, done.stdout) == reply.text.strip()  # the same request
    W.Widget.close_all()


@pytest.mark.slow
def test_view_code_python_runs_in_a_new_cell(built_in: Client, tmp_path: Path) -> None:
    """exec() with fresh globals is what pasting into a new cell does."""
    panel = _image_chat(built_in, tmp_path)
    panel.code_kind.value = "python"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(panel.code_view.code, "<new cell>", "exec"), {})  # noqa: S102 - the point of the test
    assert panel.state.last_reply is not None and out.getvalue().strip() == panel.state.last_reply.text.strip()
    W.Widget.close_all()


@pytest.mark.slow
def test_curl_and_python_send_the_panel_s_body_exactly(built_in: Client, tmp_path: Path) -> None:
    """The body each snippet builds equals the body the panel sent, tricky text included."""
    panel = _image_chat(built_in, tmp_path)
    reply = panel.state.last_reply
    assert reply is not None
    sent = {k: v for k, v in reply.request.items() if k not in ("stream", "stream_options")}
    panel.code_kind.value = "curl"
    fake_curl = "curl() { cat; }\n"  # bash: print the body instead of sending it
    done = subprocess.run(["bash", "-c", fake_curl + panel.code_view.code], capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == sent
    panel.code_kind.value = "requests"
    code = panel.code_view.code.split("response = requests.post(")[0]
    scope: dict[str, Any] = {}
    exec(compile(code, "<requests>", "exec"), scope)  # noqa: S102
    assert scope["payload"] == sent
    W.Widget.close_all()


@pytest.mark.slow
def test_azure_code_reads_its_key_from_the_environment(local_backend: Any, tmp_path: Path) -> None:
    client = connect(backend="azure", endpoint=local_backend.url, api_key=LOCAL_API_KEY, deployment="gpt-4o",
                     env_file=None, verbose=False)  # fmt: skip
    panel = _image_chat(client, tmp_path, "Describe this image")
    for kind in ("python", "requests", "curl"):
        panel.code_kind.value = kind
        code = panel.code_view.code
        assert LOCAL_API_KEY not in code and "AZURE_OPENAI_API_KEY" in code
        missing = _run(kind, code, tmp_path, _env())
        assert missing.returncode != 0  # no key set: refused, never a silent default
        if kind == "curl" and shutil.which("curl") is None:
            continue
        done = _run(kind, code, tmp_path, _env(AZURE_OPENAI_API_KEY=LOCAL_API_KEY))
        assert done.returncode == 0, done.stderr[-2000:]
        assert panel.state.last_reply is not None and _answer(kind, done.stdout) == panel.state.last_reply.text.strip()
    client.close()
    W.Widget.close_all()


@pytest.mark.slow
def test_reasoning_parameters_are_in_the_code_and_it_runs(tmp_path: Path) -> None:
    client = connect(deployment="gpt-5.4-mini", env_file=None, verbose=False)
    panel = ChatPanel(client, export_dir=tmp_path)
    panel.run_in_thread = False
    panel.effort_picker.value = "low"
    panel.max_tokens.value = 400
    panel.attach(make_image_bytes(200, 120))
    panel.prompt.value = "What colour is it?"
    panel.send_button.click()
    assert panel.state.error == ""
    panel.code_toggle.value = True
    panel.code_kind.value = "python"
    code = panel.code_view.code
    assert "reasoning_effort='low'" in code and "max_completion_tokens=400" in code and "temperature" not in code
    done = _run("python", code, tmp_path, _env())
    assert done.returncode == 0, done.stderr[-2000:]
    client.close()
    W.Widget.close_all()


def test_the_shortened_form_still_says_how_to_get_runnable_code(local_backend: Any) -> None:
    client = connect(backend="azure", endpoint=local_backend.url, api_key=LOCAL_API_KEY, env_file=None, verbose=False)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400}}]}]}  # fmt: skip
    code = request_code(body, client, "python")
    assert "image_dir=" in code and "base64,…(400 chars)" in code
    client.close()
