"""The order of the built-in backend's checks on every API route: key, then api-version, then the
deployment in the path, then the body (its size, then its JSON), then the resource.

Each request below is wrong in several ways at once; which error wins is the order. The rules
were read off the routes before they moved to APIRouter + Depends (issue 21) and checked there.
A huge body is only declared (Content-Length), never sent: a check that read it would hang.
"""

from __future__ import annotations

import http.client
import json
from typing import Any, Iterator

import pytest

from vizlab.local import LocalBackend
from vizlab.local.app import create_app
from vizlab.local.config import BackendConfig

KEY = "order-key"
GOOD_DATED = "api-version=2025-04-01-preview"
HUGE = 10**10
MISSING_KEY = (401, "401", None, "Access denied due to missing subscription key. Mak")
WRONG_KEY = (401, "401", None, "Access denied due to invalid subscription key or w")
DATED_VERSION = (404, "404", None, "Resource not found")
V1_VERSION = (400, "BadRequest", None, "API version not supported")
TOO_LARGE = (413, "RequestEntityTooLarge", None, "The request body is over the local backend's limit")
UPLOAD_TOO_LARGE = (413, "RequestEntityTooLarge", None, "The upload is over the local backend's limit of 20")
BAD_JSON = (400, "BadRequest", None, "We could not parse the JSON body of your request. ")
NOT_MULTIPART = (400, "invalid_request_error", None, "Upload files as multipart/form-data with fields 'f")
BAD_LIMIT = (400, "invalid_request_error", "limit", "Invalid request: Input should be a valid integer, ")
NO_DEPLOYMENT = (404, "DeploymentNotFound", None, "The API deployment for this resource does not exis")
BATCH_LIMIT = (400, "invalid_value", "limit", "'limit' must be a whole number from 1 to 100.")
FILLED = {"{deployment}": "nope", "{model}": "gpt-4o", "{file_id}": "file-x", "{batch_id}": "batch_x",
          "{response_id}": "resp_x"}  # fmt: skip
# scenario -> (key, query, declared length, body)
SCENARIOS: dict[str, tuple[str | None, str, int | None, bytes]] = {
    "nokey_badversion_huge": (None, "api-version=1999-01-01", HUGE, b""),
    "key_badversion_huge": (KEY, "api-version=1999-01-01", HUGE, b""),
    "key_noversion_huge": (KEY, "", HUGE, b""),
    "wrongkey_goodversion_huge": ("wrong", "GOOD", HUGE, b""),
    "key_goodversion_huge": (KEY, "GOOD", HUGE, b""),
    "key_goodversion_badjson": (KEY, "GOOD", None, b"{"),
    "nokey_badquery": (None, "GOOD&limit=abc&order=sideways", None, b""),
    "key_badquery": (KEY, "GOOD&limit=abc", None, b""),
}


def api_routes() -> list[tuple[str, str]]:
    """Every API operation, as the app's OpenAPI document lists them (included routers too)."""
    paths = create_app(BackendConfig(api_key=KEY, deployments=("gpt-4o",))).openapi()["paths"]
    found = {(method.upper(), path) for path, ops in paths.items() if path.startswith(("/openai/", "/v1/")) for method in ops}
    return sorted(found)


def _dated(path: str) -> bool:
    return path.startswith("/openai/") and not path.startswith("/openai/v1/")


def _resource(method: str, path: str) -> tuple[Any, ...]:
    """What a request with a good key and version and no body problem gets from the resource."""
    if path.endswith("{file_id}") or path.endswith("/content"):
        return (404, "NotFound", "file_id", "No such File object: 'file-x'.")
    if "{batch_id}" in path:
        return (404, "NotFound", "batch_id", "No such Batch object: 'batch_x'.")
    if "{response_id}" in path:
        return (404, "not_found", "response_id", "Response with id 'resp_x' not found.")
    return (200,)


def expected(method: str, path: str, scenario: str) -> tuple[Any, ...]:
    """Today's answer, by the order of the checks."""
    body_read = method == "POST" and not path.endswith("/cancel")
    if scenario == "nokey_badquery" and path.endswith("/input_items"):
        return BAD_LIMIT  # FastAPI validates the typed query parameter before any check runs
    if scenario.startswith("nokey"):
        return MISSING_KEY
    if scenario.startswith("wrongkey"):
        return WRONG_KEY
    if scenario == "key_badversion_huge" or (scenario == "key_noversion_huge" and _dated(path)):
        return DATED_VERSION if _dated(path) else V1_VERSION
    if "{deployment}" in path:
        return NO_DEPLOYMENT  # the deployment in the path is checked before the body is read
    if scenario == "key_badquery" and path.endswith("/input_items"):
        return BAD_LIMIT
    if scenario == "key_badquery" and method == "GET" and path.endswith("/batches"):
        return BATCH_LIMIT  # checked by the route, after the key and version
    if body_read and scenario.endswith("huge"):
        return UPLOAD_TOO_LARGE if path.endswith("/files") else TOO_LARGE
    if body_read:  # "{" or an empty body
        return NOT_MULTIPART if path.endswith("/files") else BAD_JSON
    return _resource(method, path)


def answer(url: str, method: str, path: str, scenario: str) -> tuple[Any, ...]:
    key, query, length, body = SCENARIOS[scenario]
    query = query.replace("GOOD", GOOD_DATED if _dated(path) else "").lstrip("&")
    for name, value in FILLED.items():
        path = path.replace(name, value)
    host, port = url.rsplit("/", 1)[-1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest(method, path + ("?" + query if query else ""))
        if key:
            conn.putheader("api-key", key)
        conn.putheader("content-type", "application/json")
        conn.putheader("content-length", str(length if length is not None else len(body)))
        conn.endheaders()
        if length is None and body:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    error = json.loads(data).get("error") if data.startswith(b"{") else None
    if resp.status < 400 or not isinstance(error, dict):
        return (resp.status,)
    return (resp.status, error.get("code"), error.get("param"), (error.get("message") or "")[:50])


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",)) as b:
        yield b


def test_every_route_family_is_covered() -> None:
    paths = {path for _, path in api_routes()}
    for family in ("/chat/completions", "/responses", "/responses/input_tokens", "/models", "/files", "/batches"):
        assert any(p.endswith(family) for p in paths), family
    assert len(api_routes()) == 50


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_which_error_wins(backend: LocalBackend, scenario: str) -> None:
    got = {(m, p): answer(backend.url, m, p, scenario) for m, p in api_routes()}
    wrong = {f"{m} {p}": (g, expected(m, p, scenario)) for (m, p), g in got.items() if g != expected(m, p, scenario)}
    assert not wrong, f"{scenario}: (got, expected) {wrong}"


def test_no_key_beats_a_bad_version_and_a_huge_body_on_chat(backend: LocalBackend) -> None:
    for path in ("/openai/deployments/gpt-4o/chat/completions", "/openai/v1/chat/completions"):
        assert answer(backend.url, "POST", path, "nokey_badversion_huge") == MISSING_KEY
    assert answer(backend.url, "POST", "/openai/v1/responses", "key_badversion_huge") == V1_VERSION
    assert answer(backend.url, "POST", "/openai/responses", "key_goodversion_huge") == TOO_LARGE
