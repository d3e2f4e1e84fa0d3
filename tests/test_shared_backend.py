"""The built-in backend runs outside the kernel: one shared process per user and option set."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest
import requests

import vizlab
from vizlab.local.config import DEFAULT_DEPLOYMENTS
from vizlab import errors
from vizlab.local.shared import ensure_shared_backend, options_id, state_dir

SERVICE = ("AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY", "OPENAI_BASE_URL")


@pytest.fixture(autouse=True)
def shared_backend_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the shared process (the rest of the suite runs the backend in process)."""
    monkeypatch.setenv("VIZLAB_BACKEND", "local")


def _pid_of(url: str) -> int:
    return int(requests.get(url + "/healthz", timeout=10).json()["pid"])


def test_connect_with_nothing_configured_talks_to_a_backend_outside_the_kernel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("VIZLAB_BACKEND", raising=False)
    for name in SERVICE:
        monkeypatch.delenv(name, raising=False)
    client = vizlab.connect(verbose=False, env_file=None)
    pid = _pid_of(client.endpoint)
    assert pid != os.getpid()
    assert client.chat("hello", max_tokens=200).text
    # A second connect (another kernel, or this one again) reuses the same process.
    assert _pid_of(vizlab.connect(verbose=False, env_file=None).endpoint) == pid
    record = state_dir() / f"backend-{options_id({'deployments': DEFAULT_DEPLOYMENTS})}.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert f'"pid": {pid}' in record.read_text()


def test_inprocess_mode_runs_inside_this_interpreter() -> None:
    client = vizlab.connect(backend="inprocess", verbose=False, env_file=None)
    assert _pid_of(client.endpoint) == os.getpid()


@pytest.mark.slow
def test_two_starts_at_once_get_one_process() -> None:
    options = {"deployments": ("gpt-4o",), "model_name": "vizlab-local-analyst-race"}
    found: list[int] = []

    def start() -> None:
        found.append(ensure_shared_backend(options).pid)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(found) == 2 and found[0] == found[1]


@pytest.mark.slow
def test_a_runaway_request_times_out_in_the_kernel_and_a_dead_backend_is_replaced() -> None:
    slow = vizlab.connect(local_options={"latency_s": 30.0}, verbose=False, env_file=None, timeout=2.0, max_retries=0)
    began = time.monotonic()
    with pytest.raises(errors.RequestTimeoutError) as caught:
        slow.chat("hello")
    assert time.monotonic() - began < 10
    pid = slow._target.local.pid
    assert f"process {pid}, outside this kernel" in str(caught.value)

    os.kill(pid, signal.SIGKILL)  # a crash
    with pytest.raises(errors.BackendUnavailableError, match="connect\\(\\) again"):
        slow.chat("hello")
    fresh = vizlab.connect(local_options={"latency_s": 30.0}, verbose=False, env_file=None)
    assert fresh._target.local.pid != pid and fresh._target.local.healthy()


@pytest.mark.slow
def test_an_idle_shared_backend_stops_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIZLAB_BACKEND_IDLE_S", "1")
    backend = ensure_shared_backend({"deployments": ("gpt-4o",), "model_name": "vizlab-local-analyst-idle"})
    assert backend.healthy()  # the last request: the idle clock starts now
    deadline = time.monotonic() + 30
    while backend.running() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not backend.running()
    assert not backend.state_file.exists()


def test_a_bad_idle_setting_is_refused_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIZLAB_BACKEND_IDLE_S", "soon")
    with pytest.raises(errors.ConfigurationError, match="VIZLAB_BACKEND_IDLE_S='soon'"):
        vizlab.connect(local_options={"model_name": "vizlab-local-analyst-bad-idle"}, verbose=False, env_file=None)


@pytest.mark.slow
def test_a_shared_backends_key_is_on_no_file_and_no_command_line() -> None:
    secret = "sk-shared-" + "x7" * 12
    client = vizlab.connect(local_options={"api_key": secret}, verbose=False, env_file=None)
    pid = client._target.local.pid
    assert client.chat("hello", max_tokens=200).text
    for path in state_dir().iterdir():
        assert secret not in path.read_text(errors="replace"), path.name
    assert secret.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert secret not in repr(client._target.local)


def test_a_backend_of_other_code_is_never_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """After an upgrade (another code fingerprint) the shared backend's name differs, so a kernel
    starts a backend of its own code instead of talking to one still running the old."""
    from vizlab.local import shared

    options = {"deployments": DEFAULT_DEPLOYMENTS}
    before = options_id(options)
    assert before == options_id(options) and len(shared.code_fingerprint()) == 16
    monkeypatch.setattr(shared, "code_fingerprint", lambda: "another-version")
    assert options_id(options) != before


@pytest.mark.slow
def test_close_can_stop_a_backend_with_settings_of_its_own() -> None:
    """Notebook 06's wrong-key demo starts a backend with its own key; closing it may stop it."""
    client = vizlab.connect(local_options={"api_key": "sk-own-" + "k" * 20}, api_key="sk-own-" + "k" * 20,
                            verbose=False, env_file=None)  # fmt: skip
    pid = _pid_of(client.endpoint)
    client.close()  # the default: the backend keeps running for other kernels
    assert _pid_of(client.endpoint) == pid
    client.close(stop_backend=True)
    with pytest.raises(requests.ConnectionError):
        requests.get(client.endpoint + "/healthz", timeout=5)


@pytest.mark.slow
def test_the_shared_backend_runs_with_few_malloc_arenas() -> None:
    """Its OCR threads would otherwise each keep an arena of freed pages (vizlab.local.memory)."""
    backend = ensure_shared_backend({"deployments": ("gpt-4o",), "model_name": "vizlab-local-analyst-arenas"})
    try:
        environ = Path(f"/proc/{backend.pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ
    finally:
        backend.stop()


def test_an_inprocess_backend_stopped_by_close_comes_back_on_the_next_connect() -> None:
    client = vizlab.connect(backend="inprocess", local_options={"model_name": "vizlab-local-analyst-restart"},
                            verbose=False, env_file=None)  # fmt: skip
    client.close(stop_backend=True)
    again = vizlab.connect(backend="inprocess", local_options={"model_name": "vizlab-local-analyst-restart"},
                           verbose=False, env_file=None)  # fmt: skip
    assert again.chat("hello", max_tokens=200).text
