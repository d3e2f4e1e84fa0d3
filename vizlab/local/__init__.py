"""vizlab's built-in backend: Azure OpenAI's Chat Completions protocol, offline, on loopback.

    from vizlab.local import LocalBackend
    with LocalBackend(api_key="local") as backend:
        ...  # point the openai SDK (or vizlab.connect) at backend.url

The "model" behind it is :class:`~vizlab.local.analyst.Analyst`, a deterministic local vision
analyst (OCR, colours, shapes); it answers as ``vizlab-local-analyst``, never as the deployment's model.
"""

from __future__ import annotations

from vizlab.local.app import create_app
from vizlab.local.config import BackendConfig
from vizlab.local.server import LocalBackend

__all__ = ["BackendConfig", "LocalBackend", "create_app"]
