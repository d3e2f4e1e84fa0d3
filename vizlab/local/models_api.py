"""The Models API: ``GET /openai/v1/models`` and ``/v1/models`` (OpenAI's list shape)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from vizlab.local.config import BackendState
from vizlab.local.intake import authenticate

__all__ = ["add_model_routes"]


def add_model_routes(app: FastAPI, state: BackendState) -> None:
    """List the models behind this backend's deployments."""
    config = state.config
    for prefix in ("/openai/v1", "/v1"):

        @app.get(f"{prefix}/models", summary="List deployments")
        async def list_models(request: Request) -> dict[str, Any]:
            authenticate(request, config)
            return {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "vizlab-local"}
                    for name in config.deployments
                ],
            }
