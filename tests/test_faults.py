"""Faults: a kernel killed mid-conversation, an experiment killed mid-run, a backend down or slow.

The kills are real: a child Python process does the work and the test sends it SIGKILL, which
no ``finally`` or ``atexit`` survives, then checks what is on disk from the parent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vizlab.conversation import Conversation

ROOT = Path(__file__).resolve().parent.parent
KEY = "fault-test-key"


def image_for_turn(i: int) -> bytes:
    """A 300x200 noise PNG (~180 KB, so each autosave takes a while), the same in every process."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(i).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


CHAT_CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_faults import image_for_turn
    from vizlab.conversation import Conversation

    conv = Conversation.open({path!r}, "You are terse.")
    for i in range(40):
        conv.add_user(f"question {{i}}", image_for_turn(i), detail="low")
        print(f"user {{i}}", flush=True)
        conv.add_assistant(f"answer {{i}}", usage={{"prompt_tokens": 100 + i}})
        print(f"assistant {{i}}", flush=True)
    print("finished", flush=True)
    """
)


def _spawn(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernel_killed_mid_conversation_loses_nothing(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "chat.json"
    kill_after = random.Random(seed).randint(3, 14)  # completed add_* calls before the kill
    child = _spawn(CHAT_CHILD.format(tests=str(ROOT / "tests"), path=str(path)))
    reported: list[str] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while len(reported) < kill_after and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            reported.append(line.strip())
        time.sleep(random.Random(seed).uniform(0, 0.05))  # land anywhere in the next add_* call
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        # Read through the same buffered stream readline used: communicate() reads the raw pipe and
        # would miss lines readline had already buffered (seen when the machine is loaded).
        with child.stdout, child.stderr:  # type: ignore[union-attr]
            rest, err = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, f"child was not killed (seed {seed}): {err[-2000:]}"
    reported += [line.strip() for line in rest.splitlines() if line.strip()]  # printed before it died
    assert "finished" not in reported
    assert len(reported) >= kill_after, f"the child reported only {reported} (seed {seed}): {err[-2000:]}"

    conv = Conversation.load(path)
    assert conv.system == "You are terse."
    # Every call that returned is on disk; at most the one after it, which may have saved before the kill.
    assert len(reported) <= len(conv.turns) <= len(reported) + 1, (seed, reported, len(conv.turns))
    for n, turn in enumerate(conv.turns):
        i = n // 2
        if n % 2 == 0:
            assert (turn.role, turn.text, turn.detail) == ("user", f"question {i}", "low")
            expected = image_for_turn(i)
            (key,) = turn.images
            assert key == hashlib.sha256(expected).hexdigest()
            assert conv.images[key].data == expected, f"image of turn {i} damaged"
            assert conv.images[key].mime == "image/png"
        else:
            assert (turn.role, turn.text) == ("assistant", f"answer {i}")
            assert turn.meta["usage"]["prompt_tokens"] == 100 + i
    # The notebook idiom after a restart resumes the same chat and keeps saving.
    resumed = Conversation.open(path, "ignored for an existing file")
    assert resumed == conv
    resumed.add_user("one more")
    assert len(Conversation.load(path)) == len(conv) + 1


# --- a backend whose requests are counted -------------------------------------------------------


class _CountingApp:
    """ASGI middleware counting chat-completions requests (what the server was asked to do)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/chat/completions"):
            with self._lock:
                self.count += 1
        await self.app(scope, receive, send)


@pytest.fixture
def counted_backend() -> Iterator[tuple[str, _CountingApp]]:
    import uvicorn

    from vizlab.local import BackendConfig, create_app

    app = _CountingApp(create_app(BackendConfig(api_key=KEY, deployments=("gpt-4o",), latency_s=0.15)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off", ws="none",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "test backend did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


EXPERIMENT_CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_faults import experiment_items
    from vizlab.client import connect
    from vizlab.experiments import run_experiment

    client = connect(backend="azure", endpoint={url!r}, api_key={key!r}, deployment="gpt-4o", verbose=False)
    run_experiment(client, experiment_items(), details=("low", "high"), cache_dir={cache!r},
                   max_tokens=40, progress=False, concurrency=1)
    print("finished", flush=True)
    """
)


def experiment_items() -> list[Any]:
    from PIL import Image

    from vizlab.datasets import LabelledImage

    return [
        LabelledImage(f"square-{i}", Image.new("RGB", (64, 48), (200 - 10 * i, 40, 40 + 10 * i)), "dominant_colour",
                      "What is the dominant colour?", "red")
        for i in range(8)
    ]


@pytest.mark.slow
def test_experiment_killed_mid_run_resumes_with_only_the_missing_requests(
    tmp_path: Path, counted_backend: tuple[str, _CountingApp]
) -> None:
    from vizlab.client import connect
    from vizlab.experiments import ResultCache, run_experiment

    url, counter = counted_backend
    cache = tmp_path / "cache"
    log = cache / "results.jsonl"
    total = len(experiment_items()) * 2
    child = _spawn(EXPERIMENT_CHILD.format(tests=str(ROOT / "tests"), url=url, key=KEY, cache=str(cache)))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if log.exists() and log.read_bytes().count(b"\n") >= 5:
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, f"child finished before the kill: {err[-2000:]}"
    time.sleep(0.3)  # a request in flight at the kill reaches the server or not; either way it is counted now
    cached = len(ResultCache(cache))
    assert 5 <= cached < total
    sent_by_child = counter.count
    assert cached <= sent_by_child <= cached + 1  # at most one request was in flight

    client = connect(backend="azure", endpoint=url, api_key=KEY, deployment="gpt-4o", verbose=False)
    # resend_unknown: the request in flight at the kill (billed, answer lost) is sent again too.
    frame = run_experiment(client, experiment_items(), details=("low", "high"), cache_dir=cache,
                           max_tokens=40, progress=False, resend_unknown=True).table
    assert counter.count - sent_by_child == total - cached, "the rerun must send only the missing requests"
    assert len(frame) == total and frame["error"].isna().all()
    assert int((frame["cache"] == "hit").sum()) == cached
    assert len(ResultCache(cache)) == total
    # A second rerun sends nothing at all.
    before = counter.count
    again = run_experiment(client, experiment_items(), details=("low", "high"), cache_dir=cache,
                           max_tokens=40, progress=False).table
    assert counter.count == before and bool((again["cache"] == "hit").all())


# --- backend down or slow -----------------------------------------------------------------------


def _state(conv: Conversation) -> dict[str, Any]:
    """The conversation's content, without the time it was last saved."""
    doc = conv.to_dict()
    doc.pop("saved", None)
    return doc


def _conversation_with_image(tmp_path: Path) -> Conversation:
    conv = Conversation("Be brief.", autosave=tmp_path / "chat.json")
    conv.add_user("What is in this picture?", image_for_turn(7), detail="low")
    return conv


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()  # nothing listens there now
    return port


def _recorded_retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-off the openai SDK asks for between attempts (its retry loop calls time.sleep),
    recorded instead of slept: what makes a failure fast or slow, without a wall clock."""
    import openai._base_client as base

    waits: list[float] = []

    class RecordingTime:  # the SDK module's view of `time` only: other threads still sleep
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        def sleep(self, seconds: float) -> None:
            waits.append(seconds)

    monkeypatch.setattr(base, "time", RecordingTime())
    return waits


def test_backend_down_fails_fast_and_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vizlab.client import connect
    from vizlab.errors import BackendUnavailableError

    port = _closed_port()
    conv = _conversation_with_image(tmp_path)
    before, saved = _state(conv), (tmp_path / "chat.json").read_bytes()
    client = connect(backend="azure", endpoint=f"http://127.0.0.1:{port}", api_key=KEY, deployment="gpt-4o",
                     timeout=2, max_retries=3, verbose=False)  # not the SDK's default 2: passed through
    with monkeypatch.context() as m:
        waits = _recorded_retry_waits(m)
        with pytest.raises(BackendUnavailableError) as info:
            client.chat(conv)
    # Fast: the 3 retries the client allows, each after the SDK's short back-off (0.5 s doubling,
    # jittered down: 0.5 + 1 + 2 at most; openai/_constants.py), not after a server-sized wait.
    assert len(waits) == 3, waits
    assert sum(waits) <= 3.5, waits
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message, message
    assert KEY not in message and KEY not in repr(info.value)
    assert any(v in message.lower() for v in ("check", "start", "set ", "run ")), message
    assert _state(conv) == before and len(conv) == 1
    assert (tmp_path / "chat.json").read_bytes() == saved


@pytest.mark.slow
def test_slow_backend_times_out_within_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vizlab.client import connect
    from vizlab.errors import RequestTimeoutError
    from vizlab.local import LocalBackend

    timeout, retries = 1.0, 1
    conv = _conversation_with_image(tmp_path)
    before, saved = _state(conv), (tmp_path / "chat.json").read_bytes()
    latency = 3.5
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), latency_s=latency) as backend:
        client = connect(backend="azure", endpoint=backend.url, api_key=KEY, deployment="gpt-4o",
                         timeout=timeout, max_retries=retries, verbose=False)
        started = time.monotonic()
        with monkeypatch.context() as m:
            waits = _recorded_retry_waits(m)
            with pytest.raises(RequestTimeoutError) as info:
                client.chat(conv)
        elapsed = time.monotonic() - started
        # Let the abandoned requests finish before stopping (stopping mid-request logs a traceback).
        time.sleep(max(0.0, latency - (elapsed - timeout)) + 0.2)
    # Bounded without a wall-clock upper bound: a timeout error (not the answer that comes after
    # latency=3.5 s) shows each attempt was cut at timeout=1 s, and there were exactly retries + 1
    # attempts. The lower bound cannot flake: it shows the client did wait for the timeout.
    assert len(waits) == retries, waits
    assert elapsed >= timeout, f"{elapsed:.1f} s"
    message = str(info.value)
    assert "timeout" in message.lower() or "timed out" in message.lower(), message
    assert _state(conv) == before and len(conv) == 1
    assert (tmp_path / "chat.json").read_bytes() == saved
    assert json.loads(saved)["turns"][0]["text"] == "What is in this picture?"


def test_environment_allows_sigkill() -> None:
    """The kill tests rely on POSIX signals."""
    assert hasattr(signal, "SIGKILL") and os.name == "posix"
