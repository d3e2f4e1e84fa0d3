"""A real browser: JupyterLab on loopback, Chromium driving the chat panel end to end.

The test writes a one-cell notebook (``ChatPanel()`` on the built-in backend) into a temporary
folder, starts JupyterLab there with fresh config/data/runtime dirs and a random token, opens the
notebook in Debian's Chromium through Playwright, runs the cell, uploads an image through the
panel's file picker, asks a question, presses Send and waits for the streamed answer and its
token count. A screenshot goes to ``tests/output/<test name>/``. JupyterLab and the kernel are
always stopped at the end. Skipped, saying why, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUTPUT = Path(__file__).parent / "output"
# Uploads bigger than tornado's 10 MiB default websocket message are dropped; the Makefile's value.
WS_LIMIT = 104_857_600


def _chromium() -> str | None:
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _notebook(cell: str) -> str:
    return json.dumps(
        {
            "cells": [{"cell_type": "code", "execution_count": None, "id": "chat", "metadata": {}, "outputs": [], "source": cell}],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        indent=1,
    )


NOTEBOOK_CELL = """\
import os, pathlib
pathlib.Path("kernel.pid").write_text(str(os.getpid()))  # lets the test stop this kernel for sure
from vizlab.widgets import ChatPanel
panel = ChatPanel()
panel
"""


class _Lab:
    """JupyterLab started for one test in its own folder; :meth:`stop` ends it and its kernel."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        home = root / ".jupyter-home"
        config = home / "config"
        config.mkdir(parents=True)
        settings = home / "lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        # No "fetch Jupyter news?" toast over the page.
        (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "IPYTHONDIR": str(home / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            # Empty values count as unset and win over a .env file: connect() -> built-in backend.
            "AZURE_OPENAI_ENDPOINT": "",
            "AZURE_OPENAI_API_KEY": "",
            "OPENAI_API_KEY": "",
            "OPENAI_BASE_URL": "",
        }
        jupyter = Path(sys.executable).with_name("jupyter")
        cmd = [
            str(jupyter), "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
            f"--ServerApp.tornado_settings={{'websocket_max_message_size': {WS_LIMIT}}}",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            cmd.append("--allow-root")
        self.log_path = home / "lab.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=root, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        # Ask the server to shut down (it stops its kernels), then make sure of both.
        try:
            req = urllib.request.Request(f"{self.base}/api/shutdown?token={self.token}", method="POST", data=b"")
            urllib.request.urlopen(req, timeout=5).close()
        except (urllib.error.URLError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        pid_file = self.root / "kernel.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            try:
                os.kill(pid, signal.SIGKILL)  # only if the shutdown above did not end it
            except ProcessLookupError:
                pass
        self._log.close()


def _settle_kernel(page: Any, timeout_s: float = 45.0) -> None:
    """Wait until the notebook's kernel is idle with no dialog open.

    JupyterLab 4 sometimes opens "Select Kernel" although the notebook names an installed kernel
    (its kernel specs load after the session starts); accept the preselected kernel then.
    """
    dialog = page.locator(".jp-Dialog")
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        if dialog.count() and dialog.first.is_visible():
            dialog.locator(".jp-mod-accept").first.click()
            quiet_since = None
        elif idle.count():
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.5:  # idle and no dialog for a moment
                return
        page.wait_for_timeout(200)
    raise AssertionError("the notebook kernel did not become idle (see failure.png)")


@pytest.fixture
def chromium() -> str:
    """Chromium's path; skips (saying why) before any server starts when the tools are missing."""
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium at /usr/bin/chromium or on PATH: install Debian's package "
                    "(apt-get install chromium); never `playwright install`")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        pytest.skip(f"playwright is not importable ({e}): pip install -e '.[dev]'")
    return path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[_Lab]:
    (tmp_path / "chat.ipynb").write_text(_notebook(NOTEBOOK_CELL), encoding="utf-8")
    server = _Lab(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_chat_panel_in_jupyterlab(chromium: str, lab: _Lab, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    out = OUTPUT / request.node.name
    out.mkdir(parents=True, exist_ok=True)
    picture = tmp_path / "sign.png"
    picture.write_bytes(make_image_bytes(640, 480, "PNG", color=(30, 110, 200)))

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        page: Any = None
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(30_000)
            page.goto(f"{lab.base}/lab/tree/chat.ipynb?token={lab.token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=45_000)
            _settle_kernel(page)
            page.wait_for_function("() => window.jupyterapp !== undefined", timeout=10_000)
            send = page.locator(".vizlab-chat-send")
            for _attempt in range(2):
                # Fire and forget: the command's promise settles only when every cell has finished.
                page.evaluate("() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                try:
                    send.wait_for(state="visible", timeout=30_000)
                    break
                except PlaywrightTimeout:
                    _settle_kernel(page)  # a late kernel dialog swallowed the run; answer it, run again
            expect(send).to_be_visible(timeout=15_000)
            expect(page.locator(".vizlab-chat-backend")).to_contain_text("built-in local backend")

            # The playground flow: a system message, applied on demand.
            page.locator(".vizlab-chat-system textarea").fill("You're an AI assistant that helps people find information.")
            expect(page.locator(".vizlab-chat-system-status")).to_contain_text("Not applied yet")
            page.locator(".vizlab-chat-apply-system").click()
            expect(page.locator(".vizlab-chat-system-status")).to_contain_text("System message applied")

            with page.expect_file_chooser() as chooser:
                page.locator(".vizlab-chat-upload").click()
            chooser.value.set_files(str(picture))
            attachment = page.locator(".vizlab-chat-attachments img")
            expect(attachment).to_have_count(1, timeout=20_000)  # the kernel has the image

            prompt = page.locator(".vizlab-chat-prompt textarea")
            prompt.fill("Describe this image")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            page.wait_for_timeout(300)  # the textarea's value is synced before the click message
            send.click()

            answer = page.locator(".vizlab-chat-turn-assistant")
            expect(answer).to_have_count(1, timeout=40_000)
            expect(answer).to_contain_text("local analyst")
            expect(answer).to_contain_text("640x480")
            expect(answer).to_contain_text("tokens (estimated")
            expect(answer).to_contain_text("finish stop")
            user_turn = page.locator(".vizlab-chat-turn-user")
            expect(user_turn).to_contain_text("Describe this image")
            expect(user_turn.locator("img")).to_have_count(1)  # thumbnail beside its turn
            expect(page.locator(".vizlab-chat-totals")).to_contain_text("Total: 1 request")
            expect(page.locator(".vizlab-chat-error")).to_have_text("")
            expect(send).to_be_enabled()

            page.locator(".vizlab-chat").screenshot(path=str(out / "chat.png"))
            text = page.locator(".vizlab-chat").inner_text()
            assert "Describe this image" in text and "prompt" in text and "$0.0" in text
        except Exception:
            if page is not None:
                page.screenshot(path=str(out / "failure.png"), full_page=True, timeout=10_000)
            print(lab.log())
            raise
        finally:
            browser.close()
