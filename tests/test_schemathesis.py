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
