"""The six core notebooks run top to bottom, no cell raising, against a reasoning deployment and a
non-reasoning one, with only the Azure variables set (an error-only run: outputs are not compared).

The deployment is served by ``python -m vizlab.local`` in its own process, as a room would point
attendees at Azure: ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_API_KEY``, ``AZURE_OPENAI_DEPLOYMENT``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CORE = ("01-start-here", "02-rest-quickstart", "03-python-sdk-quickstart", "05-playground-chat",
        "07-managing-images", "13-deploy-and-clean-up")  # fmt: skip
KEY = "room-key-for-notebook-runs"
# The built-in default (a current reasoning model) and gpt-4.1 (no reasoning, tile rule).
MODELS = ("gpt-5.4", "gpt-4.1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=MODELS)
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A separate ``python -m vizlab.local`` serving ``vision=<model>``; yields (endpoint, model)."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path_factory.mktemp("backend") / "backend.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vizlab.local", "--port", str(port), "--api-key", KEY,
             "--deployment", f"vision={request.param}"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"python -m vizlab.local exited: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", str(request.param)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _errors(notebook: Path, env: dict[str, str]) -> list[str]:
    """Execute ``notebook`` in a fresh kernel with ``env``; every error output, as 'cell N: Name: value'."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits the environment it is started in
    try:
        NotebookClient(nb, timeout=240, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved)
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {str(output.get('evalue'))[:300]}")
    return found


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("name", CORE)
def test_core_notebook_raises_in_no_cell(deployment: tuple[str, str], name: str) -> None:
    endpoint, model = deployment
    keep = {k: v for k, v in os.environ.items() if not re.match(r"(AZURE_|OPENAI_|VIZLAB_)", k)}
    env = {**keep, "PYTHONPATH": str(ROOT), "AZURE_OPENAI_ENDPOINT": endpoint, "AZURE_OPENAI_API_KEY": KEY,
           "AZURE_OPENAI_DEPLOYMENT": "vision"}  # fmt: skip
    errors = _errors(NOTEBOOKS / f"{name}.ipynb", env)
    assert not errors, f"{name} on vision={model}: " + "; ".join(errors)
