"""The Models API: the *models* this resource offers, as Azure's models API lists them.

``GET /openai/models[/{model}]`` (dated) and the same under ``/openai/v1`` list models in Azure's
shape; ``/v1/models`` is OpenAI's route and lists the deployments (what a client passes as
``model``). Every fact comes from the registry; what it does not know is ``null``, not made up.
Retired families are not listed. Details: docs/internals.md#local
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from vizlab.errors import UnknownModelError
from vizlab.local.http.depends import DATED, V1, backend_state
from vizlab.local.http.errors import AzureError
from vizlab.models.registry import families, lookup
from vizlab.models.types import ModelInfo

__all__ = ["router", "model_entry", "model_list", "MODEL_SCHEMA", "MODEL_LIST_SCHEMA", "OPENAI_MODEL_SCHEMA"]

# Azure lifecycle_status values (Azure/azure-rest-api-specs, AzureOpenAI authoring "LifeCycleStatus":
# preview, generally-available, deprecating, deprecated); the registry's are the same words.
_LIFECYCLE = {"preview": "preview", "generally-available": "generally-available", "deprecated": "deprecated"}

MODEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "status", "capabilities", "lifecycle_status", "deprecation"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["model"]},
        "status": {"type": "string"},
        "created_at": {"type": ["integer", "null"]},
        "capabilities": {
            "type": "object",
            "required": ["fine_tune", "inference", "completion", "chat_completion", "embeddings"],
            "properties": {k: {"type": "boolean"} for k in ("fine_tune", "inference", "completion", "chat_completion", "embeddings")},
        },
        "lifecycle_status": {"type": "string", "enum": sorted(set(_LIFECYCLE.values()))},
        "deprecation": {"type": "object", "properties": {"inference": {"type": ["integer", "null"]}}},
    },
}
MODEL_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {"object": {"type": "string", "enum": ["list"]}, "data": {"type": "array", "items": MODEL_SCHEMA}},
}


OPENAI_MODEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["model"]},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}


def _unix(day: str | None) -> int | None:
    if not day:
        return None
    return int(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.timezone.utc).timestamp())


def model_entry(info: ModelInfo) -> dict[str, Any]:
    """One model in Azure's shape, from the registry."""
    return {
        "id": info.name,
        "object": "model",
        "status": "succeeded",
        "created_at": None,  # the registry keeps no release dates
        "capabilities": {
            "fine_tune": False,
            "inference": True,
            "completion": False,
            "chat_completion": True,
            "embeddings": False,
        },
        "lifecycle_status": _LIFECYCLE.get(info.lifecycle, "deprecated"),
        "deprecation": {"inference": _unix(info.retires)},
    }


def model_list() -> dict[str, Any]:
    """Every family the registry knows that has not retired, in Azure's list shape."""
    offered = [lookup(name) for name in families()]
    return {"object": "list", "data": [model_entry(info) for info in offered if info.lifecycle != "retired"]}


def _model_not_found(model: str) -> AzureError:
    shown = model if len(model) <= 80 else model[:77] + "..."
    note = ""
    try:
        info = lookup(model)
    except UnknownModelError:
        pass
    else:
        if info.lifecycle == "retired":
            note = f" It is {info.name}, retired{' on ' + info.retires if info.retires else ''}."
    return AzureError(
        404,
        "model_not_found",
        f"The model '{shown}' does not exist.{note} GET /openai/models lists the models offered here.",
        param="model",
    )


def _retrieve(model: str) -> dict[str, Any]:
    try:
        info = lookup(model)
    except UnknownModelError as e:
        raise _model_not_found(model) from e
    if info.lifecycle == "retired":
        raise _model_not_found(model)
    return {**model_entry(info), "id": model}  # a dated snapshot keeps the name it was asked by


router = APIRouter()


@router.get("/openai/models", summary="List models (Azure route)")
async def azure_list_models(version: str = Depends(DATED)) -> JSONResponse:
    return JSONResponse(model_list())


@router.get("/openai/models/{model}", summary="Retrieve a model (Azure route)")
async def azure_get_model(model: str, version: str = Depends(DATED)) -> JSONResponse:
    return JSONResponse(_retrieve(model))


@router.get("/openai/v1/models", summary="List models (Azure v1 route)")
async def v1_list_models(version: str | None = Depends(V1)) -> JSONResponse:
    return JSONResponse(model_list())


@router.get("/openai/v1/models/{model}", summary="Retrieve a model (Azure v1 route)")
async def v1_get_model(model: str, version: str | None = Depends(V1)) -> JSONResponse:
    return JSONResponse(_retrieve(model))


def _deployment_entry(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "vizlab-local"}


@router.get("/v1/models", summary="List the deployments, as OpenAI lists callable models (OpenAI route)")
async def openai_list_models(request: Request, version: str | None = Depends(V1)) -> JSONResponse:
    deployments = backend_state(request).config.deployments
    return JSONResponse({"object": "list", "data": [_deployment_entry(name) for name in deployments]})


@router.get("/v1/models/{model}", summary="Retrieve a deployment, as OpenAI retrieves a model (OpenAI route)")
async def openai_get_model(request: Request, model: str, version: str | None = Depends(V1)) -> JSONResponse:
    deployments = backend_state(request).config.deployments
    if model not in deployments:
        shown = model if len(model) <= 80 else model[:77] + "..."
        raise AzureError(
            404,
            "model_not_found",
            f"The model '{shown}' does not exist (deployments here: {', '.join(deployments)}).",
            param="model",
        )
    return JSONResponse(_deployment_entry(model))
