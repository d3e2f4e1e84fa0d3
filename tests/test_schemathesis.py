"""schemathesis (from PyPI) over every operation of the backend's OpenAPI document, over real HTTP.

Bounded and reproducible: a fixed number of examples per operation, derandomized (a fixed seed),
no shrinking-heavy phases. The checks: no server error (5xx), every status and content type is one
the document lists for the operation, and each body matches the documented schema. The document
is the one the backend serves (vizlab.local.openapi), so a route that answers a status it does not
document, or documents one it cannot give, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency (pip install -e '.[dev]')")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from vizlab.local import LocalBackend  # noqa: E402

KEY = "schemathesis-key"
EXAMPLES = 8  # per operation: ~40 operations x 8 stays under a minute on 2 cores


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), stream_chunk_delay_s=0) as running:
        yield running


def _not_a_server_error(ctx: Any, response: Any, case: Any) -> bool:
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    return True


CHECKS = [_not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.slow
def test_every_operation_answers_as_documented(backend: LocalBackend) -> None:
    """Each operation of the served document, EXAMPLES generated cases each (hypothesis, fixed seed)."""
    import requests
    from hypothesis import given

    document = requests.get(backend.url + "/openapi.json", timeout=30).json()
    api = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 30  # chat, responses, models, files, batches on three prefixes
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: Any) -> None:
            case.call_and_validate(base_url=backend.url, headers={"api-key": KEY}, timeout=30, checks=CHECKS)

        try:
            run()
        except Exception as e:  # collect all, report together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(e)[:600]}")
    assert not failures, f"{len(failures)} of {len(operations)} operations:\n" + "\n\n".join(failures)


def _documented_200(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    content = document["paths"][path][method]["responses"]["200"]["content"]
    schema = content["application/json"]["schema"]
    ref = schema.get("$ref", "")
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_no_200_body_is_documented_as_anything(backend: LocalBackend) -> None:
    import requests

    document = requests.get(backend.url + "/openapi.json", timeout=30).json()
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            ok = op.get("responses", {}).get("200")
            if ok is None or not (path.startswith("/openai/") or path.startswith("/v1/")):
                continue
            for media, body in ok["content"].items():
                assert body["schema"] not in ({}, {"type": "object"}), f"{method.upper()} {path} {media}: {body['schema']}"


def test_every_200_body_matches_its_documented_schema(backend: LocalBackend) -> None:
    """One real success per kind of operation, each body checked against the served document."""
    import json

    import jsonschema
    import requests

    url, headers = backend.url, {"api-key": KEY}
    document = requests.get(url + "/openapi.json", timeout=30).json()
    hi = [{"role": "user", "content": "hi"}]
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/chat/completions",
                       "body": {"model": "gpt-4o", "messages": hi}})  # fmt: skip
    checked = 0

    def check(method: str, path: str, concrete: str, **kw: Any) -> dict[str, Any]:
        nonlocal checked
        resp = requests.request(method, url + concrete, headers=headers, timeout=30, **kw)
        assert resp.status_code == 200, f"{method} {concrete}: {resp.status_code} {resp.text[:200]}"
        body: dict[str, Any] = resp.json()
        jsonschema.validate(body, _documented_200(document, method.lower(), path))
        checked += 1
        return body

    check("POST", "/openai/v1/chat/completions", "/openai/v1/chat/completions", json={"model": "gpt-4o", "messages": hi})
    check("GET", "/openai/v1/models", "/openai/v1/models")
    check("GET", "/v1/models", "/v1/models")
    check("GET", "/openai/v1/models/{model}", "/openai/v1/models/gpt-4o")
    check("GET", "/v1/models/{model}", "/v1/models/gpt-4o")
    file = check("POST", "/openai/v1/files", "/openai/v1/files", files={"file": ("b.jsonl", line.encode())},
                 data={"purpose": "batch"})  # fmt: skip
    check("GET", "/openai/v1/files", "/openai/v1/files")
    check("GET", "/openai/v1/files/{file_id}", f"/openai/v1/files/{file['id']}")
    batch = check("POST", "/openai/v1/batches", "/openai/v1/batches",
                  json={"input_file_id": file["id"], "endpoint": "/chat/completions", "completion_window": "24h"})
    check("GET", "/openai/v1/batches", "/openai/v1/batches")
    check("GET", "/openai/v1/batches/{batch_id}", f"/openai/v1/batches/{batch['id']}")
    response = check("POST", "/openai/v1/responses", "/openai/v1/responses", json={"model": "gpt-4o", "input": "hi"})
    check("GET", "/openai/v1/responses/{response_id}", f"/openai/v1/responses/{response['id']}")
    check("GET", "/openai/v1/responses/{response_id}/input_items", f"/openai/v1/responses/{response['id']}/input_items")
    check("DELETE", "/openai/v1/responses/{response_id}", f"/openai/v1/responses/{response['id']}")
    assert checked == 15
