"""A real browser: JupyterLab on loopback, Chromium driving the three panels end to end.

One JupyterLab (fresh config/data/runtime dirs, a random token, the built-in backend) and one
headless Debian Chromium, driven through Playwright, serve the whole module. Each test writes a
small notebook into the server's folder, opens it in a JupyterLab workspace of its own, runs
all cells and then works the panel as a user would:

* the upload panel: two files through its file chooser (a PNG with text on it and a "PNG" that
  is really text), the good one's row, the bad one's error naming it, detail high -> low;
* the chat panel: the playground flow (system message, attach, ask, Send, streamed answer);
* the compare panel: an image with small text, Compare, three columns with answers, token
  counts and tile grids;
* notebook 05 (the playground walk-through) run as shipped, its chat panel filled by its cells.

Every test saves screenshots to ``tests/output/<test name>/`` (``failure.png`` on failure) and
checks what a user would see: text present, errors red, thumbnails small, nothing wider than
the notebook. Each test shuts its kernel down; JupyterLab and any kernel left are always
stopped at the end. Skipped, saying why, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
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
NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
# Uploads bigger than tornado's 10 MiB default websocket message are dropped; the Makefile's value.
WS_LIMIT = 104_857_600
VIEWPORT = {"width": 1280, "height": 1400}
ERROR_RED = "rgb(176, 0, 32)"  # #b00020, the panels' error colour
TRACEBACK = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


def _chromium() -> str | None:
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_cell(name: str) -> str:
    # Lets the module stop this kernel for sure, whatever the server does.
    return f'import os, pathlib\npathlib.Path("kernel-{name}.pid").write_text(str(os.getpid()))\n'


def _notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {}, "outputs": [], "source": cell}
                for i, cell in enumerate(cells)
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        indent=1,
    )


class _Lab:
    """JupyterLab started in its own folder; :meth:`stop` ends it and every kernel it started."""

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

    def url(self, notebook: str) -> str:
        """The notebook in a workspace of its own, so no other test's notebook is restored."""
        workspace = Path(notebook).stem
        return f"{self.base}/lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    def _api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(
            f"{self.base}{path}", method=method, headers={"Authorization": f"token {self.token}"},
            data=b"" if method == "POST" else None,
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

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

    def shutdown_kernels(self) -> None:
        """End every notebook session (and its kernel): a test leaves no kernel running."""
        try:
            for session in self._api("/api/sessions"):
                self._api(f"/api/sessions/{session['id']}", method="DELETE")
        except (urllib.error.URLError, OSError):
            pass

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        # Ask the server to shut down (it stops its kernels), then make sure of both.
        try:
            self._api("/api/shutdown", method="POST")
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
        for pid_file in self.root.glob("kernel-*.pid"):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)  # only if the shutdown did not end it
            except (ProcessLookupError, ValueError):
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


def _run_all(page: Any, ready: str, timeout_ms: int = 30_000) -> None:
    """Run every cell and wait until ``ready`` (a selector) is visible."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=45_000)
    _settle_kernel(page)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=10_000)
    # The panel, or a traceback: a cell that raised fails the test at once, saying why.
    target = page.locator(f"{ready}, {TRACEBACK}").first
    for _attempt in range(2):
        # Fire and forget: the command's promise settles only when every cell has finished.
        page.evaluate("() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        try:
            target.wait_for(state="visible", timeout=timeout_ms)
            break
        except PlaywrightTimeout:
            _settle_kernel(page)  # a late kernel dialog swallowed the run; answer it, run again
    else:
        target.wait_for(state="visible", timeout=15_000)
    traceback = page.locator(TRACEBACK)
    if traceback.count():
        raise AssertionError(f"a notebook cell raised:\n{traceback.first.inner_text()[-3000:]}")


def _idle(page: Any) -> None:
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")


def _no_horizontal_overflow(page: Any, selector: str) -> None:
    """Nothing in the panel is wider than the panel (a long word, a big image, a fixed width)."""
    widths = page.locator(selector).evaluate(
        """el => {
            const box = el.getBoundingClientRect();
            const wide = [];
            for (const c of el.querySelectorAll('*')) {
                const r = c.getBoundingClientRect();
                if (r.width > 0 && r.right > box.right + 1)
                    wide.push((c.className || c.tagName) + ' ' + Math.round(r.right - box.right) + 'px');
            }
            return {scroll: el.scrollWidth, client: el.clientWidth, wide: wide.slice(0, 5)};
        }"""
    )
    assert widths["scroll"] <= widths["client"] + 1 and not widths["wide"], f"{selector} overflows: {widths}"


# Records every change of a button's disabled attribute, to see it disabled while a request runs
# (the built-in backend answers too fast to catch it with a screenshot).
WATCH_DISABLED = """el => {
    window.__vizlabDisabled = [];
    new MutationObserver(() => window.__vizlabDisabled.push(el.disabled))
        .observe(el, {attributes: true, attributeFilter: ['disabled']});
}"""


def _colour(locator: Any) -> str:
    return str(locator.evaluate("el => getComputedStyle(el).color"))


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def lab(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Lab]:
    server = _Lab(tmp_path_factory.mktemp("lab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def out(request: pytest.FixtureRequest) -> Path:
    folder = OUTPUT / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # screenshots of an earlier run, e.g. a stale failure.png
        old.unlink()
    return folder


@contextlib.contextmanager
def _notebook_page(browser: Any, lab: _Lab, out: Path, notebook: str, ready: str, *, timeout_ms: int = 30_000,
                   viewport: dict[str, int] = VIEWPORT) -> Iterator[Any]:  # fmt: skip
    """A page with ``notebook`` open and all its cells run; ``failure.png`` if the body fails."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(lab.url(notebook))
        _run_all(page, ready, timeout_ms)
        yield page
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(out / "failure.png"), full_page=True, timeout=10_000)
        print(lab.log())
        raise
    finally:
        context.close()
        lab.shutdown_kernels()


# --- the upload panel -----------------------------------------------------------------------------

UPLOAD_CELL = """\
from vizlab.widgets import UploadPanel
panel = UploadPanel(model="gpt-4o", detail="high")
panel
"""


def test_upload_panel_in_jupyterlab(browser: Any, lab: _Lab, out: Path) -> None:
    from playwright.sync_api import expect

    from vizlab.conversation.storage import human_bytes
    from vizlab.datasets import text_card

    good = lab.root / "parking-permit-zone-b-scanned-at-the-front-desk-2024-06-01.png"
    buf = io.BytesIO()
    text_card("PARKING PERMIT\nZONE B  valid until 30 June", font_px=48, size=(1024, 1024)).save(buf, format="PNG")
    good.write_bytes(buf.getvalue())
    bad = lab.root / "meeting-notes.png"
    bad.write_bytes(b"# Meeting notes\n\nThis is text saved with a .png name, not an image.\n")
    (lab.root / "upload.ipynb").write_text(_notebook(_pid_cell("upload") + UPLOAD_CELL), encoding="utf-8")

    with _notebook_page(browser, lab, out, "upload.ipynb", ".vizlab-upload") as page:
        panel = page.locator(".vizlab-upload")
        expect(panel.locator(".vizlab-upload-total")).to_contain_text("No images yet.")
        with page.expect_file_chooser() as chooser:
            page.locator(".vizlab-upload-files").click()
        assert chooser.value.is_multiple()
        chooser.value.set_files([str(good), str(bad)])

        row = panel.locator(".vizlab-upload-row")
        expect(row).to_have_count(1, timeout=20_000)  # the kernel has read both files
        for shown in (good.name, "image/png", "1024x1024 px", human_bytes(good.stat().st_size), "765 tokens"):
            expect(row).to_contain_text(shown)
        errors = panel.locator(".vizlab-upload-errors")
        expect(errors).to_contain_text("meeting-notes.png")
        expect(errors).to_contain_text("not added")
        assert _colour(errors.locator("li").first) == ERROR_RED
        assert good.name not in errors.inner_text()
        expect(panel.locator(".vizlab-upload-total")).to_contain_text("765 image tokens on gpt-4o at detail high")
        thumb = row.locator("img").bounding_box()
        assert thumb is not None and 24 <= thumb["width"] <= 100 and 24 <= thumb["height"] <= 100, thumb
        expect(panel.locator(".vizlab-upload-files")).to_be_enabled()
        _no_horizontal_overflow(page, ".vizlab-upload")
        panel.screenshot(path=str(out / "upload-high.png"))

        panel.locator(".vizlab-upload-detail button", has_text=re.compile(r"^\s*low\s*$")).click()
        expect(row).to_contain_text("85 tokens")
        expect(row).not_to_contain_text("765 tokens")
        expect(panel.locator(".vizlab-upload-total")).to_contain_text("85 image tokens on gpt-4o at detail low")
        expect(errors).to_contain_text("meeting-notes.png")  # the error stays until the next upload
        _no_horizontal_overflow(page, ".vizlab-upload")
        panel.screenshot(path=str(out / "upload-low.png"))


# --- the chat panel -------------------------------------------------------------------------------

CHAT_CELL = """\
import vizlab
from vizlab.widgets import ChatPanel
# A resumed chat whose answer is Markdown, with things a sanitiser must stop.
conv = vizlab.Conversation()
conv.add_user("What stands out?")
conv.add_assistant(
    "Two things stand out:\\n\\n- a **navy** uniform\\n- a *flag*\\n\\n"
    "<script>window.__vizlabXss = 1</script> <img src=x onerror=\\"window.__vizlabXss = 2\\">\\n\\n"
    "![pixel](http://127.0.0.1:9/pixel.png)"
)
slow = vizlab.connect(local_options={"latency_s": 30.0}, verbose=False)  # for the Stop check
# gpt-4o: a tile-rule deployment, so low detail is the 85 tokens the estimate check below reads.
panel = ChatPanel(conversation=conv, client=vizlab.connect(deployment="gpt-4o", verbose=False))
panel
"""

MARKDOWN_SOURCE_START = "Two things stand out:"
CHAT_VIEWPORT = {"width": 1280, "height": 760}
TURNS = 20


def _estimate(page: Any) -> int:
    text = page.locator(".vizlab-chat-estimate").inner_text()
    found = re.search(r"~([\d,]+) prompt tokens", text)
    assert found, text
    return int(found.group(1).replace(",", ""))


def _contrast(fg: str, bg: str) -> float:
    """WCAG 2 contrast ratio of two CSS ``rgb(...)``/``rgba(...)`` colours."""

    def lum(css: str) -> float:
        r, g, b = (int(float(x)) for x in re.findall(r"[\d.]+", css)[:3])

        def ch(c: int) -> float:
            v = c / 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b)

    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _opaque_background(locator: Any) -> str:
    """The first non-transparent background colour from the element up its ancestors."""
    return str(
        locator.evaluate(
            """el => { for (let e = el; e; e = e.parentElement) {
                const c = getComputedStyle(e).backgroundColor;
                if (c && c !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(c)) return c; }
              return 'rgb(255, 255, 255)'; }"""
        )
    )


def test_chat_panel_in_jupyterlab(browser: Any, lab: _Lab, out: Path) -> None:
    from playwright.sync_api import expect

    picture = lab.root / "sign.png"
    picture.write_bytes(make_image_bytes(640, 480, "PNG", color=(30, 110, 200)))
    notes = lab.root / "notes.png"
    notes.write_bytes(b"not an image, only text\n")
    (lab.root / "chat.ipynb").write_text(_notebook(_pid_cell("chat") + CHAT_CELL), encoding="utf-8")

    with _notebook_page(browser, lab, out, "chat.ipynb", ".vizlab-chat-send", viewport=CHAT_VIEWPORT) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.base)
        panel = page.locator(".vizlab-chat")
        send = page.locator(".vizlab-chat-send")
        expect(page.locator(".vizlab-chat-backend")).to_contain_text("built-in local backend")

        # The resumed answer is Markdown: a list and bold text, and nothing hostile reached the page.
        transcript = page.locator(".vizlab-chat-scroll")
        md = transcript.locator(".vizlab-chat-turn-assistant").first
        expect(md.locator("li")).to_have_count(2)
        expect(md.locator("strong")).to_have_text("navy")
        assert transcript.locator("script, img:not(.vizlab-thumbnail), [onerror]").count() == 0
        expect(md).to_contain_text("image not loaded")
        assert page.evaluate("() => window.__vizlabXss") is None
        copy = md.locator(".vizlab-chat-copy", has_text="Copy")  # not the Delete button beside it
        copy.click()
        expect(md.locator(".vizlab-chat-copy", has_text="Copied")).to_have_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()").startswith(MARKDOWN_SOURCE_START)

        # The playground flow: a system message, applied on demand.
        page.locator(".vizlab-chat-system textarea").fill("You're an AI assistant that helps people find information.")
        expect(page.locator(".vizlab-chat-system-status")).to_contain_text("Not applied yet")
        page.locator(".vizlab-chat-apply-system").click()
        expect(page.locator(".vizlab-chat-system-status")).to_contain_text("System message applied")

        # The live estimate follows attachments and detail.
        prompt = page.locator(".vizlab-chat-prompt textarea")
        prompt.fill("Describe this image")
        _idle(page)
        page.wait_for_timeout(300)
        before = _estimate(page)
        with page.expect_file_chooser() as chooser:
            page.locator(".vizlab-chat-upload").click()
        chooser.value.set_files([str(picture), str(notes)])
        expect(page.locator(".vizlab-chat-attachments img")).to_have_count(1, timeout=20_000)
        expect(page.locator(".vizlab-chat-error")).to_contain_text("notes.png")
        assert _colour(page.locator(".vizlab-chat-error div").last) == ERROR_RED
        page.wait_for_function(f"() => !document.querySelector('.vizlab-chat-estimate').innerText.includes('~{before:,} prompt')")
        attached = _estimate(page)
        assert attached > before, (before, attached)
        panel.locator(".vizlab-chat-detail button", has_text=re.compile(r"^\s*low\s*$")).click()
        page.wait_for_function(f"() => !document.querySelector('.vizlab-chat-estimate').innerText.includes('~{attached:,} prompt')")
        low = _estimate(page)
        assert before < low < attached, (before, low, attached)
        expect(page.locator(".vizlab-chat-estimate")).to_contain_text("85 image tokens (1 image)")  # low on gpt-4o
        panel.screenshot(path=str(out / "chat-estimate.png"))

        # Temperature, typed into the slider's readout as a user may.
        readout = page.locator(".vizlab-chat-temperature .widget-readout")
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("0.3")
        page.keyboard.press("Enter")
        expect(page.locator(".vizlab-chat-settings-note")).to_contain_text("temperature=0.3")

        # Shift+Enter is a newline; Enter sends.
        prompt.click()
        prompt.press("End")
        prompt.press("Shift+Enter")
        prompt.type("in one line")
        assert prompt.input_value() == "Describe this image\nin one line"
        answers = page.locator(".vizlab-chat-scroll .vizlab-chat-turn-assistant:not(.vizlab-chat-pending)")
        expect(answers).to_have_count(1)
        _idle(page)
        send.evaluate(WATCH_DISABLED)
        prompt.press("Enter")
        expect(answers).to_have_count(2, timeout=40_000)
        expect(answers.last).to_contain_text("local analyst")
        expect(answers.last).to_contain_text("finish stop")
        users = page.locator(".vizlab-chat-scroll .vizlab-chat-turn-user:not(.vizlab-chat-pending)")
        expect(users.last.locator("img")).to_have_count(1)  # the thumbnail beside its turn
        expect(users.last).to_contain_text("in one line")
        assert page.evaluate("() => window.__vizlabDisabled")[:1] == [True], "Send was not disabled while answering"
        expect(prompt).to_have_value("")

        page.locator(".vizlab-chat-raw-toggle").click()
        raw = page.locator(".vizlab-chat-raw pre")
        expect(raw).to_contain_text('"temperature": 0.3')
        expect(raw).to_contain_text("data:image/png;base64,…(")

        # A long chat: every row keeps its height, the newest stays in view.
        for i in range(3, TURNS + 1):
            prompt.fill(f"Question {i}: which colours do you see?")
            prompt.press("Enter")
            expect(answers).to_have_count(i, timeout=40_000)
        _idle(page)
        expect(page.locator(".vizlab-chat-totals")).to_contain_text(f"Total: {TURNS - 1} requests")
        rows = page.locator(".vizlab-chat-scroll .vizlab-chat-turn")
        assert rows.count() == 2 * TURNS
        clipped = rows.evaluate_all("rows => rows.filter(r => r.scrollHeight > r.clientHeight).length")
        assert clipped == 0, f"{clipped} rows clipped"
        heights = rows.evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
        assert min(heights) >= 20, heights
        in_view = transcript.evaluate(
            """box => { const last = box.lastElementChild.getBoundingClientRect(), b = box.getBoundingClientRect();
                       return last.top >= b.top - 1 && last.bottom <= b.bottom + 1; }"""
        )
        assert in_view, "the newest turn is not in view"
        _no_horizontal_overflow(page, ".vizlab-chat")
        transcript.scroll_into_view_if_needed()
        page.screenshot(path=str(out / "chat-20-turns.png"))
        panel.screenshot(path=str(out / "chat.png"))

        # Stop a slowed answer: the totals count the prompt at its estimate, marked as such.
        page.evaluate(
            """async () => { const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                              await k.requestExecute({code: 'panel.client = slow'}).done; }"""
        )
        _idle(page)
        prompt.fill("One more, slowly")
        prompt.press("Enter")
        spinner = page.locator(".vizlab-chat-spinner")
        expect(spinner).to_contain_text("waiting for the first token", timeout=10_000)
        page.wait_for_function("() => /[1-9]\\.\\d s/.test(document.querySelector('.vizlab-chat-spinner').innerText)")
        expect(page.locator(".vizlab-chat-totals")).to_contain_text("sending now: ~")
        expect(page.locator(".vizlab-chat-pending.vizlab-chat-turn-user")).to_contain_text("One more, slowly")
        panel.screenshot(path=str(out / "chat-waiting.png"))
        page.locator(".vizlab-chat-stop").click()
        totals = page.locator(".vizlab-chat-totals")
        expect(totals).to_contain_text("estimated for 1 stopped answer", timeout=20_000)
        found = re.search(r"incl\. ~([\d,]+) estimated", totals.inner_text())
        assert found and int(found.group(1).replace(",", "")) > 0, totals.inner_text()
        expect(answers.last).to_contain_text("Stopped")
        panel.screenshot(path=str(out / "chat-stopped.png"))
        warning = page.locator(".vizlab-chat-warning").last
        assert _contrast(_colour(warning), _opaque_background(warning)) >= 4.5, "warning contrast (light theme)"
        # Every control has an accessible name; each Copy button names its message.
        for cls, name in (("temperature", "Temperature"), ("top-p", "Top P")):
            expect(panel.locator(f".vizlab-chat-{cls} [role=slider]").first).to_have_attribute("aria-label", name)
        expect(panel.locator(".vizlab-chat-path input")).to_have_attribute("aria-label", "Image path to attach")
        labels = page.locator(".vizlab-chat-scroll .vizlab-chat-copy").evaluate_all("bs => bs.map(b => b.getAttribute('aria-label'))")
        copies = [label for label in labels if label.startswith("Copy")]  # Edit and Delete share the row's style
        assert copies and len(set(labels)) == len(labels) and copies[0] == "Copy answer, message 2", labels[:3]
        prompt.fill("")
        send.click()  # an empty prompt: the error box, shown in both themes below
        expect(page.locator(".vizlab-chat-error div").last).to_contain_text("Type a question")

        # The dark theme: the raw JSON stays legible (WCAG contrast at least 4.5:1).
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=20_000)
        page.wait_for_timeout(500)
        fg, bg = _colour(raw), _opaque_background(raw)
        ratio = _contrast(fg, bg)
        assert ratio >= 4.5, (fg, bg, ratio)
        for sel in (".vizlab-chat-scroll .vizlab-chat-bubble", ".vizlab-chat-estimate div", ".vizlab-chat-totals div",
                    ".vizlab-chat-warning", ".vizlab-chat-error div"):
            el = page.locator(sel).last
            assert _contrast(_colour(el), _opaque_background(el)) >= 4.5, sel
        error_bg = _opaque_background(page.locator(".vizlab-chat-error div").last)
        assert _contrast(error_bg, "rgb(0, 0, 0)") < 3, f"the error box stays light in the dark theme: {error_bg}"
        panel.screenshot(path=str(out / "chat-dark.png"))
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")


# --- the compare panel ----------------------------------------------------------------------------

COMPARE_CELL = """\
from vizlab.datasets import text_card
import vizlab
from vizlab.widgets import ComparePanel
# A 2000x1500 white card with one 14 px word: readable at high detail, lost at low.
card = text_card("INVOICE 7Q4K", font_px=14, size=(2000, 1500))
# A tile-rule deployment (gpt-4o) for the 85 + 170-per-tile story.
tiles = vizlab.connect(deployment="gpt-4o", verbose=False)
panel = ComparePanel(image=card, question="What does the small text say?", client=tiles)
panel
"""



def test_compare_panel_in_jupyterlab(browser: Any, lab: _Lab, out: Path) -> None:
    from playwright.sync_api import expect

    (lab.root / "compare.ipynb").write_text(_notebook(_pid_cell("compare") + COMPARE_CELL), encoding="utf-8")

    with _notebook_page(browser, lab, out, "compare.ipynb", ".vizlab-compare-run") as page:
        panel = page.locator(".vizlab-compare")
        run = panel.locator(".vizlab-compare-run")
        expect(panel.locator(".vizlab-compare-image")).to_contain_text("2000x1500 px")
        grids = panel.locator(".vizlab-compare-grid")
        expect(grids).to_have_count(3)
        # The tile grids are drawn before anything is sent.
        page.wait_for_function(
            "() => [...document.querySelectorAll('.vizlab-compare-grid')].every(i => i.naturalWidth > 0)"
        )
        expect(panel.locator(".vizlab-compare-high .vizlab-compare-stats")).to_contain_text("image 765 tokens")
        _idle(page)
        panel.screenshot(path=str(out / "compare-before.png"))
        run.evaluate(WATCH_DISABLED)
        run.click()

        answers = {d: panel.locator(f".vizlab-compare-{d} .vizlab-compare-answer") for d in ("low", "high", "auto")}
        for d, answer in answers.items():
            expect(answer).to_contain_text("local analyst", timeout=40_000)
        expect(run).to_be_enabled()
        assert page.evaluate("() => window.__vizlabDisabled")[:1] == [True], "Compare was not disabled while running"
        expect(answers["high"]).to_contain_text("7Q4K")
        expect(answers["low"]).to_contain_text("low detail")
        expect(panel.locator(".vizlab-compare-error")).to_have_text("")

        tokens = {}
        for d in answers:
            stats = panel.locator(f".vizlab-compare-{d} .vizlab-compare-stats").inner_text()
            assert "reported" in stats and "$" in stats, stats
            found = re.search(r"image ([\d,]+) tokens", stats)
            assert found, stats
            tokens[d] = int(found.group(1).replace(",", ""))
        assert tokens["low"] == 85 and tokens["high"] == 765 and tokens["high"] > tokens["low"], tokens
        expect(panel.locator(".vizlab-compare-high .vizlab-compare-stats")).to_contain_text("2x2 tiles")

        # Three columns side by side, each grid inside its column and big enough to read.
        boxes = [panel.locator(f".vizlab-compare-{d}").bounding_box() for d in ("low", "high", "auto")]
        assert all(b is not None for b in boxes)
        lefts = [b["x"] for b in boxes if b is not None]
        assert lefts == sorted(lefts) and len({round(b["y"]) for b in boxes if b is not None}) == 1, boxes
        for d in ("low", "high", "auto"):
            column = panel.locator(f".vizlab-compare-{d}").bounding_box()
            grid = panel.locator(f".vizlab-compare-{d} .vizlab-compare-grid").bounding_box()
            assert column is not None and grid is not None
            assert grid["width"] >= 200 and grid["x"] + grid["width"] <= column["x"] + column["width"] + 1, (d, grid, column)
        _no_horizontal_overflow(page, ".vizlab-compare")
        panel.screenshot(path=str(out / "compare.png"))

        # What the model sees, zoomable: a click shows the high-detail picture at its real pixels.
        high = panel.locator(".vizlab-compare-high .vizlab-compare-grid")
        assert high.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [1024, 768]
        fitted = high.bounding_box()
        assert fitted is not None and fitted["width"] < 1024
        high.click()
        page.wait_for_function(
            "() => document.querySelector('.vizlab-compare-high .vizlab-compare-grid').getBoundingClientRect().width > 1000"
        )
        panel.locator(".vizlab-compare-high").screenshot(path=str(out / "compare-zoomed.png"))
        high.click()
        page.wait_for_function(
            "() => document.querySelector('.vizlab-compare-high .vizlab-compare-grid').getBoundingClientRect().width < 1000"
        )
        # ... and from the keyboard: Enter on the focused picture, Enter again to fit.
        high.focus()
        high.press("Enter")
        expect(high).to_have_attribute("aria-pressed", "true")
        page.wait_for_function(
            "() => document.querySelector('.vizlab-compare-high .vizlab-compare-grid').getBoundingClientRect().width > 1000"
        )
        high.press("Enter")
        expect(high).to_have_attribute("aria-pressed", "false")
        _no_horizontal_overflow(page, ".vizlab-compare")

        # A narrow window: the columns stack instead of squeezing.
        page.set_viewport_size({"width": 720, "height": 1400})
        page.wait_for_timeout(500)
        boxes = [panel.locator(f".vizlab-compare-{d}").bounding_box() for d in ("low", "high", "auto")]
        tops = [round(b["y"]) for b in boxes if b is not None]
        assert len(tops) == 3 and tops == sorted(tops) and len(set(tops)) == 3, boxes
        _no_horizontal_overflow(page, ".vizlab-compare")
        panel.screenshot(path=str(out / "compare-narrow.png"))


# --- notebook 05, as committed, opened without running -----------------------------------------


def test_committed_notebook_shows_the_panel_snapshot_without_running(browser: Any, lab: _Lab, out: Path) -> None:
    """Notebook 05 as committed, opened and not run: the panel's saved state shows, not a repr."""
    from playwright.sync_api import expect

    shutil.copy(NOTEBOOKS / "05-playground-chat.ipynb", lab.root / "committed.ipynb")
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(lab.url("committed.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=45_000)
        snapshot = page.locator(".jp-OutputArea-output .vizlab-snapshot").first
        expect(snapshot).to_be_visible(timeout=30_000)
        expect(snapshot).to_contain_text("Total: 2 requests")
        expect(snapshot).to_contain_text("Describe this image")
        assert snapshot.locator("img").count() == 1  # the photo's thumbnail beside its turn
        text = page.locator(".jp-Notebook").inner_text()
        assert "VBox(" not in text and "Error displaying widget" not in text
        snapshot.scroll_into_view_if_needed()
        snapshot.screenshot(path=str(out / "snapshot.png"))
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(out / "failure.png"), full_page=True, timeout=10_000)
        raise
    finally:
        context.close()
        lab.shutdown_kernels()


# --- paste, drop, a too-big file; regenerate, edit and resend; a 3-column chat compare -------------

INTAKE_CELL = """\
from IPython.display import display
from vizlab.widgets import ChatPanel, UploadPanel
chat = ChatPanel()
upload = UploadPanel()
display(chat)
display(upload)
"""

# A PNG made in the page (random pixels compress badly: ``side`` 1024 gives about 4 MB), then a
# paste or a drop carrying it, dispatched as the browser does for a real one.
MAKE_FILE = """async ([side, name]) => {
    const c = document.createElement('canvas'); c.width = side; c.height = side;
    const g = c.getContext('2d'); const img = g.createImageData(side, side);
    for (let i = 0; i < img.data.length; i++) img.data[i] = (i % 4 === 3) ? 255 : Math.floor(Math.random() * 256);
    g.putImageData(img, 0, 0);
    const blob = await new Promise(r => c.toBlob(r, 'image/png'));
    window.__vizlabFile = new File([blob], name, {type: 'image/png'});
    return blob.size;
}"""
PASTE = """el => { const dt = new DataTransfer(); dt.items.add(window.__vizlabFile);
    el.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true})); }"""
DROP = """el => { const dt = new DataTransfer(); dt.items.add(window.__vizlabFile);
    for (const type of ['dragover', 'drop'])
        el.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true})); }"""
HUGE = """([el, mb]) => { const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(mb * 1024 * 1024)], 'huge-scan.png', {type: 'image/png'}));
    el.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); }"""
DROP_PDF = """(el, b64) => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const dt = new DataTransfer(); dt.items.add(new File([bytes], 'invoice.pdf', {type: 'application/pdf'}));
    for (const type of ['dragover', 'drop'])
        el.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true})); }"""
WATCH_PROGRESS = """el => { window.__vizlabProgress = 0;
    new MutationObserver(() => { if (el.querySelector('progress')) window.__vizlabProgress += 1; })
        .observe(el, {childList: true, subtree: true}); }"""


def test_paste_drop_and_a_too_big_file_in_jupyterlab(browser: Any, lab: _Lab, out: Path) -> None:
    from playwright.sync_api import expect

    (lab.root / "intake.ipynb").write_text(_notebook(_pid_cell("intake") + INTAKE_CELL), encoding="utf-8")
    with _notebook_page(browser, lab, out, "intake.ipynb", ".vizlab-upload-drop") as page:
        chat = page.locator(".vizlab-chat")
        area = chat.locator(".vizlab-prompt-area")
        expect(area).to_have_attribute("aria-label", "Message to send")
        # A paste of a screenshot into the prompt attaches it.
        page.evaluate(MAKE_FILE, [200, "screenshot.png"])
        area.evaluate(PASTE)
        thumbs = chat.locator(".vizlab-chat-attachments img")
        expect(thumbs).to_have_count(1, timeout=20_000)
        expect(chat.locator(".vizlab-chat-attachments")).to_contain_text("screenshot.png")
        # A drop of a 4 MB photo: a progress bar while it goes, then the second attachment.
        size = page.evaluate(MAKE_FILE, [1024, "photo.png"])
        assert size > 2 * 1024 * 1024, size
        chat.locator(".vizlab-drop-status").evaluate(WATCH_PROGRESS)
        area.evaluate(DROP)
        expect(thumbs).to_have_count(2, timeout=30_000)
        assert page.evaluate("() => window.__vizlabProgress") > 0, "no progress bar for a 4 MB drop"
        expect(chat.locator(".vizlab-chat-estimate")).to_contain_text("2 images")
        chat.screenshot(path=str(out / "chat-pasted-and-dropped.png"))
        # A PDF dropped on the prompt: page 1's thumbnail, its pages and estimate, and the file / pages choice.
        import base64

        from vizlab.document_samples import sample_documents

        invoice = next(d for d in sample_documents() if d.name == "invoice.pdf")
        area.evaluate(DROP_PDF, base64.b64encode(invoice.data).decode("ascii"))
        document = chat.locator(".vizlab-chat-document")
        expect(document).to_have_count(1, timeout=30_000)
        expect(document).to_contain_text("1 page")
        expect(document).to_contain_text("tokens sent as a file part")
        assert document.locator("img").count() == 1
        expect(chat.locator(".vizlab-chat-estimate")).to_contain_text("1 PDF")
        pdf_mode = chat.locator(".vizlab-chat-pdf-mode")
        expect(pdf_mode).to_be_visible()
        pdf_mode.get_by_text("As page images").click()
        expect(document).to_contain_text("tokens sent as page images", timeout=20_000)
        expect(chat.locator(".vizlab-chat-estimate")).to_contain_text("3 images")
        chat.screenshot(path=str(out / "chat-pdf-dropped.png"))

        # The upload panel: a drop adds a row; an 81 MB file is refused before sending, said twice.
        upload = page.locator(".vizlab-upload")
        zone = upload.locator(".vizlab-dropzone")
        expect(zone).to_have_attribute("role", "button")
        zone.evaluate(DROP)
        expect(upload.locator(".vizlab-upload-row")).to_have_count(1, timeout=30_000)
        page.evaluate(HUGE, [zone.element_handle(), 81])
        status = upload.locator(".vizlab-drop-status")
        expect(status).to_contain_text("huge-scan.png is 81.0 MB: over the 80.0 MB limit")
        expect(status).to_contain_text("smaller copy")
        errors = upload.locator(".vizlab-upload-errors")
        expect(errors).to_contain_text("huge-scan.png", timeout=10_000)
        expect(errors).to_contain_text("80.0 MB limit")
        expect(upload.locator(".vizlab-upload-row")).to_have_count(1)  # the photo stays, nothing half-added
        upload.screenshot(path=str(out / "upload-too-big.png"))
        # The Upload button sends in pieces too: a progress bar for a 3 MB photo, then its row.
        import numpy as np
        from PIL import Image

        noisy = lab.root / "noisy-photo.png"
        Image.fromarray(np.random.default_rng(7).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)).save(noisy)
        assert noisy.stat().st_size > 2 * 1024 * 1024
        status.evaluate(WATCH_PROGRESS)
        with page.expect_file_chooser() as chooser:
            upload.locator(".vizlab-upload-files").click()
        chooser.value.set_files([str(noisy)])
        expect(upload.locator(".vizlab-upload-row")).to_have_count(2, timeout=60_000)
        assert page.evaluate("() => window.__vizlabProgress") > 0, "no progress bar for a 3 MB upload through the button"


EDIT_CELL = """\
from vizlab.widgets import ChatPanel, CompareChatPanel
chat = ChatPanel()
chat.prompt.value = "What colour is it?"
chat.attach(__import__("vizlab.datasets", fromlist=["x"]).text_card("HELLO", font_px=40, size=(320, 200)))
chat.send(); chat.wait(60)
chat.prompt.value = "And the text?"
chat.send(); chat.wait(60)
chat
"""

COMPARE_CHAT_CELL = """\
both = CompareChatPanel(deployments=["gpt-4o", "gpt-4.1-mini", "gpt-5.4-mini"])
both
"""


def test_regenerate_edit_and_a_three_column_chat_compare_in_jupyterlab(browser: Any, lab: _Lab, out: Path) -> None:
    from playwright.sync_api import expect

    (lab.root / "edit.ipynb").write_text(_notebook(_pid_cell("edit") + EDIT_CELL, COMPARE_CHAT_CELL), encoding="utf-8")
    with _notebook_page(browser, lab, out, "edit.ipynb", ".vizlab-compare-chat-send", timeout_ms=90_000) as page:
        chat = page.locator(".vizlab-chat")
        turns = chat.locator(".vizlab-chat-transcript .vizlab-chat-turn")
        expect(turns).to_have_count(4, timeout=30_000)
        chat.locator(".vizlab-chat-regenerate").click()
        expect(chat.locator(".vizlab-chat-totals")).to_contain_text("since replaced or deleted", timeout=30_000)
        expect(turns).to_have_count(4)
        # Edit the first question: the cost of the change shows before anything is sent.
        # The first question's own Edit button picks it in the editing row.
        row_edit = chat.locator(".vizlab-chat-edit-turn").first
        expect(row_edit).to_have_attribute("aria-label", "Edit message 1")
        row_edit.click()
        edit = chat.locator(".vizlab-chat-edit-text textarea")
        expect(edit).to_have_value("What colour is it?")
        edit.fill("Read the text on the card")
        expect(chat.locator(".vizlab-chat-edit-preview")).to_contain_text("drops the 3 later messages")
        expect(chat.locator(".vizlab-chat-edit-preview")).to_contain_text("prompt tokens")
        chat.locator(".vizlab-chat-resend").click()
        expect(turns).to_have_count(2, timeout=30_000)
        expect(turns.first).to_contain_text("Read the text on the card")
        chat.screenshot(path=str(out / "chat-edited.png"))

        both = page.locator(".vizlab-compare-chat")
        prompt = both.locator(".vizlab-prompt-area")
        prompt.fill("Say hello")
        prompt.press("Enter")
        columns = both.locator(".vizlab-compare-chat-column")
        expect(columns).to_have_count(3)
        for i in range(3):
            expect(columns.nth(i).locator(".vizlab-chat-turn")).to_have_count(2, timeout=60_000)
            expect(columns.nth(i).locator(".vizlab-compare-chat-totals")).to_contain_text("Total: 1 request")
            expect(columns.nth(i).locator(".vizlab-compare-chat-totals")).to_contain_text("$")
        boxes = [columns.nth(i).bounding_box() for i in range(3)]
        assert all(b is not None for b in boxes)
        assert len({round(b["y"]) for b in boxes if b is not None}) == 1, boxes  # side by side
        _no_horizontal_overflow(page, ".vizlab-compare-chat")
        both.screenshot(path=str(out / "compare-chat.png"))

        # View code of the image chat, pasted into a new cell and run: the same answer (a 200).
        chat.locator(".vizlab-chat-code-toggle").click()
        code_box = chat.locator(".vizlab-code-text")
        expect(code_box).to_contain_text("data_url(")
        code = code_box.inner_text()
        assert "base64,…" not in code and "VIZLAB_LOCAL_API_KEY" in code
        page.evaluate(
            """code => { const nb = window.jupyterapp.shell.currentWidget.content;
                         nb.activeCellIndex = nb.widgets.length - 1;
                         return window.jupyterapp.commands.execute('notebook:insert-cell-below').then(() => {
                             nb.activeCell.model.sharedModel.setSource(code);
                             return window.jupyterapp.commands.execute('notebook:run-cell'); }); }""",
            code,
        )
        new_cell = page.locator(".jp-Notebook .jp-CodeCell").last
        expect(new_cell.locator(".jp-OutputArea-output")).to_contain_text('Text I can read: "HELLO"', timeout=60_000)
        assert new_cell.locator(TRACEBACK).count() == 0


def test_notebook_08_unrun_shows_the_compare_answers(browser: Any, lab: _Lab, out: Path) -> None:
    """Notebook 08 as committed, opened and not run: its ComparePanel's snapshot has the answers."""
    from playwright.sync_api import expect

    shutil.copy(NOTEBOOKS / "08-detail-parameter.ipynb", lab.root / "committed-08.ipynb")
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(lab.url("committed-08.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=45_000)
        cells = json.loads((NOTEBOOKS / "08-detail-parameter.ipynb").read_text(encoding="utf-8"))["cells"]
        index = next(i for i, c in enumerate(cells) if "".join(c["source"]).rstrip().endswith("\npanel"))
        # JupyterLab renders only the cells near the view: bring the compare panel's cell there.
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                               "window.jupyterapp.shell.currentWidget.content.widgets.length > 40", timeout=30_000)
        page.evaluate("i => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = i; "
                      "return nb.scrollToItem(i, 'center'); }", index)
        snapshot = page.locator(".jp-OutputArea-output .vizlab-snapshot", has_text="ComparePanel").first
        expect(snapshot).to_be_visible(timeout=30_000)
        for shown in ("detail: low", "detail: high", "K7RF 49XM", "reported"):
            expect(snapshot).to_contain_text(shown)
        assert "press Compare to ask" not in snapshot.inner_text()
        assert snapshot.locator("img").count() == 3  # what the model sees, per column
        text = page.locator(".jp-Notebook").inner_text()
        assert "VBox(children" not in text and "Error displaying widget" not in text
        snapshot.scroll_into_view_if_needed()
        snapshot.screenshot(path=str(out / "snapshot-08.png"))
    except Exception:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(out / "failure.png"), full_page=True, timeout=10_000)
        raise
    finally:
        context.close()
        lab.shutdown_kernels()
