"""Shared fixtures: tiny images made in memory, and one built-in backend per test session."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

# The suite runs on the built-in backend whatever the developer's shell or .env says: a real
# Azure or OpenAI setting must never receive test traffic. Tests of the selection itself
# (tests/test_client.py) opt out with the `real_env_selection` fixture.
SERVICE_VARIABLES = (
    "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT", "OPENAI_API_VERSION",
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL",
)
for _name in SERVICE_VARIABLES:
    os.environ.pop(_name, None)
# Each test's backend runs inside the test process (fast, and isolated per option set); the tests of
# the shared backend process (tests/test_shared_backend.py) opt in by clearing the variable. Any
# shared backend a test starts is recorded in a temporary state dir and stopped at the end.
os.environ["VIZLAB_BACKEND"] = "inprocess"
SHARED_STATE_DIR = tempfile.mkdtemp(prefix="vizlab-test-state-")
os.environ["VIZLAB_STATE_DIR"] = SHARED_STATE_DIR


@pytest.fixture(scope="session", autouse=True)
def stop_shared_backends_at_exit() -> Iterator[None]:
    """No backend process outlives the test session."""
    yield
    from pathlib import Path as _Path

    from vizlab.local.shared import stop_shared_backends

    stop_shared_backends(_Path(SHARED_STATE_DIR))
    shutil.rmtree(SHARED_STATE_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def count_here_after_each_test() -> Iterator[None]:
    """A test that reaches a shared backend lets it count text (vizlab.tokens.text.use_count_service);
    the next test starts counting in this process again, as a fresh kernel would."""
    yield
    from vizlab.tokens.text import use_count_service

    service = use_count_service(None)
    close = getattr(service, "close", None)
    if callable(close):
        close()


@pytest.fixture
def real_env_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let connect() choose from the variables a test sets (no forced built-in backend)."""
    monkeypatch.delenv("VIZLAB_BACKEND", raising=False)


# A valid 1x1 PNG, byte for byte, so tests need no files.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c63f8cfc0f01f00050001ff89993d1d0000000049454e44ae426082"
)


def make_image_bytes(
    width: int = 64,
    height: int = 48,
    fmt: str = "PNG",
    color: tuple[int, int, int] = (200, 30, 30),
    mode: str = "RGB",
    **save_kwargs: object,
) -> bytes:
    """Encode a solid image with a diagonal line (so it is not trivially compressible)."""
    img = Image.new(mode, (width, height), color if mode == "RGB" else 128)
    ImageDraw.Draw(img).line((0, 0, width - 1, height - 1), fill=(0, 0, 0) if mode == "RGB" else 0)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


@pytest.fixture
def tiny_png() -> bytes:
    return TINY_PNG


@pytest.fixture
def image_bytes() -> Callable[..., bytes]:
    """Factory: ``image_bytes(w, h, "JPEG")`` returns encoded bytes."""
    return make_image_bytes


@pytest.fixture
def image_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``image_file("a.png", w, h, "PNG")`` writes an image and returns its path."""

    def _make(name: str = "img.png", width: int = 64, height: int = 48, fmt: str = "PNG", **kw: Any) -> Path:
        path = tmp_path / name
        path.write_bytes(make_image_bytes(width, height, fmt, **kw))
        return path

    return _make


LOCAL_API_KEY = "local-test-key"


@pytest.fixture(scope="session")
def local_backend() -> Iterator[object]:
    """The built-in backend on a free loopback port, shared by the whole session.

    It requires the key ``LOCAL_API_KEY`` and serves deployments ``gpt-4o`` and ``gpt-4o-mini``.
    """
    from vizlab.local import LocalBackend

    backend = LocalBackend(api_key=LOCAL_API_KEY, deployments=("gpt-4o", "gpt-4o-mini"))
    backend.start()
    try:
        yield backend
    finally:
        backend.stop()
