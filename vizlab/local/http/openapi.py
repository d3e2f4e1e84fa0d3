"""The OpenAPI document true to the routes: each route's every status, api-version where required.

FastAPI's generated document says 200 or 422, but the backend never sends 422 and does send
400/401/404/405/413/421/429/503. :func:`install` rewrites the document once by rules that follow
the answering code, so routes added later are described without listing them. Error bodies are
Azure's error object; 200 bodies are the service's objects (chat completion, response, file,
batch, model, list, deletion), with the fields every answer has. The rules: docs/internals.md#local
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from fastapi import FastAPI

from vizlab.local.http.apiversion import KNOWN_API_VERSIONS, V1_API_VERSIONS
from vizlab.local.http.gateway import is_inference

__all__ = ["install", "ERROR_SCHEMA", "SUCCESS_SCHEMAS", "rewrite"]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": ["string", "null"]},
                "message": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "type": {"type": ["string", "null"]},
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/AzureError"}
_WHY = {
    "400": "Invalid request: body, query or (on /v1 routes) a dated api-version (Azure error JSON)",
    "401": "Missing or wrong key (api-key header or Authorization: Bearer)",
    "404": "Unknown api-version (Azure's exact 404 'Resource not found'), deployment, model, file or batch",
    "413": "Body over the backend's limit",
    "421": "Host header is not loopback, localhost or a configured name (DNS-rebinding guard)",
    "429": "Over the RPM/TPM quota or the concurrency limit; see retry-after-ms / retry-after",
    "503": "The backend is stopping",
}
_MODEL_RESPONSES = ("/chat/completions", "/responses")


def _object(kind: str | None, **fields: dict[str, Any]) -> dict[str, Any]:
    """An object schema whose listed fields are all required; ``kind`` pins its ``object`` field."""
    props = {**({"object": {"type": "string", "enum": [kind]}} if kind else {"object": {"type": "string"}}), **fields}
    return {"type": "object", "required": sorted(props), "properties": props}


_S, _I, _A, _O = {"type": "string"}, {"type": "integer"}, {"type": "array"}, {"type": "object"}
_FILE = _object("file", id=_S, bytes=_I, created_at=_I, filename=_S, purpose=_S, status=_S)
_BATCH = _object("batch", id=_S, endpoint=_S, input_file_id=_S, status=_S, created_at=_I, request_counts=_O)
_MODEL = _object(None, id=_S)
SUCCESS_SCHEMAS: dict[str, dict[str, Any]] = {
    "ChatCompletion": _object("chat.completion", id=_S, created=_I, model=_S, choices=_A, usage=_O),
    "Response": _object("response", id=_S, created_at=_I, status=_S, model=_S, output=_A),
    "File": _FILE,
    "FileList": _object("list", data={"type": "array", "items": _FILE}),
    "Batch": _BATCH,
    "BatchList": _object("list", data={"type": "array", "items": _BATCH}, has_more={"type": "boolean"}),
    "Model": _MODEL,
    "ModelList": _object("list", data={"type": "array", "items": _MODEL}),
    "ItemList": _object("list", data=_A, has_more={"type": "boolean"}),
    "Deleted": _object(None, id=_S, deleted={"type": "boolean"}),
}


def _success(method: str, path: str) -> str | None:
    """The name of the 200 body's schema for this operation (None: not JSON)."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if method == "DELETE":
        return "Deleted"
    if last == "content":
        return None
    rules = (
        ("completions", "ChatCompletion"), ("models", "ModelList"), ("{model}", "Model"),
        ("files", "FileList" if method == "GET" else "File"), ("{file_id}", "File"),
        ("batches", "BatchList" if method == "GET" else "Batch"), ("{batch_id}", "Batch"), ("cancel", "Batch"),
        ("responses", "Response"), ("{response_id}", "Response"), ("input_items", "ItemList"),
    )  # fmt: skip
    return next((name for end, name in rules if last == end), None)


def _api(path: str) -> bool:
    return path.startswith("/openai/") or path.startswith("/v1/")


def _dated(path: str) -> bool:
    return path.startswith("/openai/") and not path.startswith("/openai/v1/")


def _error(code: str) -> dict[str, Any]:
    return {"description": _WHY[code], "content": {"application/json": {"schema": _ERROR_REF}}}


def _api_version_parameter(dated: bool) -> dict[str, Any]:
    if dated:
        return {
            "name": "api-version", "in": "query", "required": True,
            "description": "A published Azure OpenAI data-plane version (vizlab.local.http.apiversion); others get 404.",
            "schema": {"type": "string", "enum": list(KNOWN_API_VERSIONS)},
        }  # fmt: skip
    return {
        "name": "api-version", "in": "query", "required": False,
        "description": "Not needed on v1 routes; 'preview' and 'latest' are tolerated, a dated version is 400.",
        "schema": {"type": "string", "enum": list(V1_API_VERSIONS)},
    }  # fmt: skip


def rewrite(schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document with the statuses, parameters and schemes the code really has."""
    doc = copy.deepcopy(schema)
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["AzureError"] = ERROR_SCHEMA
    components["schemas"].update(copy.deepcopy(SUCCESS_SCHEMAS))
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    components["securitySchemes"] = {
        "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
        "bearer": {"type": "http", "scheme": "bearer"},
    }
    for path, operations in doc.get("paths", {}).items():
        for method, op in operations.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses: dict[str, Any] = op["responses"]
            responses.pop("422", None)
            codes = {"421", "503"}
            if _api(path):
                codes |= {"400", "401"}
                op["security"] = [{"apiKey": []}, {"bearer": []}]
                params = [p for p in op.get("parameters", []) if p.get("name") != "api-version"]
                params.append(_api_version_parameter(_dated(path)))
                op["parameters"] = params
                if _dated(path):
                    codes.add("404")
            if any(p.get("in") == "path" for p in op.get("parameters", [])) or "/deployments/" in path:
                codes.add("404")
            if "requestBody" in op or method.upper() == "POST":
                codes.add("413")
            _declare_success(responses, method.upper(), path)
            if is_inference(method.upper(), path):
                codes.add("429")
                ok = responses.setdefault("200", {"description": "Successful Response"})
                ok.setdefault("content", {}).setdefault("application/json", {"schema": {"type": "object"}})
                ok["content"]["text/event-stream"] = {"schema": {"type": "string"}}
            for code in sorted(codes):
                responses[code] = _error(code)
    return doc


def _declare_success(responses: dict[str, Any], method: str, path: str) -> None:
    ok = responses.get("200")
    if ok is None:
        return
    name = _success(method, path) if _api(path) else None
    if name is not None:
        ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
    elif _api(path) and path.endswith("/content"):
        ok["content"] = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def install(app: FastAPI, extra: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Serve the rewritten document at /openapi.json (and in /docs)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None or not app.openapi_schema.get("x-vizlab-rewritten"):
            app.openapi_schema = None
            doc = rewrite(generate())
            if extra is not None:
                extra(doc)
            doc["x-vizlab-rewritten"] = True
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
