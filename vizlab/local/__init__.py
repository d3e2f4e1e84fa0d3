"""vizlab's built-in backend: Azure OpenAI's Chat Completions protocol, offline, on loopback.

    from vizlab.local import LocalBackend
    with LocalBackend(api_key="local") as backend:
        ...  # point the openai SDK (or vizlab.connect) at backend.url

The "model" behind it is :class:`~vizlab.local.analyst.Analyst`, a deterministic local vision
analyst (OCR, colours, shapes); it answers as ``vizlab-local-analyst``, never as the deployment's model.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vizlab.local.app import create_app
    from vizlab.local.config import BackendConfig
    from vizlab.local.server import LocalBackend

__all__ = ["BackendConfig", "LocalBackend", "create_app"]

# Loaded on first use: a kernel that only talks to the shared backend process (vizlab.local.shared)
# never imports FastAPI, pydantic and uvicorn (34 MiB per kernel).
_HOMES = {"BackendConfig": "vizlab.local.config", "LocalBackend": "vizlab.local.server", "create_app": "vizlab.local.app"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'vizlab.local' has no attribute {name!r}")
