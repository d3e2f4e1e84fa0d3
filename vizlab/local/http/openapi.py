"""The OpenAPI document true to the routes: every status each route can answer, api-version where required.

FastAPI derives the document from the route signatures, which says too little (and one wrong
thing) for this backend: every route would answer 200 or 422, while the backend never sends 422
(validation errors are Azure's 400) and does send 400/401/404/405/413/421/429/503 from its own
checks. :func:`install` rewrites the generated document once, by rules that follow the code that
answers, so a route added later (Responses, files) is described the same way without listing it:

* every operation: 421 (Host check, vizlab.local.gateway) and 503 (a stop in progress,
  vizlab.local.lifecycle); the 500 of a bug is not a documented answer;
* every API operation (under ``/openai/`` or ``/v1/``): 400 (a bad body, query or api-version on
  v1) and 401 (vizlab.local.intake.authenticate), the api-key header / Bearer security schemes;
* dated routes (``/openai/...`` but not ``/openai/v1/...``): ``api-version`` *required*, one of
  the published versions (vizlab.local.apiversion), and 404 for any other; v1 routes: api-version
  optional, only ``preview`` / ``latest``;
* a path parameter or a deployment: 404; a body: 413 (vizlab.local.intake.read_body);
* a model request (chat completions, responses create): 429 (quota and pacing) and the
  ``text/event-stream`` media type beside JSON for ``stream: true``.

Error bodies are Azure's error object (``{"error": {"code", "message", ...}}``, code and
message required; ``param`` and ``type`` optional, as the gateway's 401/404 omit them).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from fastapi import FastAPI

from vizlab.local.http.apiversion import KNOWN_API_VERSIONS, V1_API_VERSIONS
from vizlab.local.http.gateway import is_inference

__all__ = ["install", "ERROR_SCHEMA", "rewrite"]

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
            "description": "A published Azure OpenAI data-plane version (vizlab.local.apiversion); others get 404.",
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
            if is_inference(method.upper(), path):
                codes.add("429")
                ok = responses.setdefault("200", {"description": "Successful Response"})
                ok.setdefault("content", {}).setdefault("application/json", {"schema": {"type": "object"}})
                ok["content"]["text/event-stream"] = {"schema": {"type": "string"}}
            for code in sorted(codes):
                responses[code] = _error(code)
    return doc


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
