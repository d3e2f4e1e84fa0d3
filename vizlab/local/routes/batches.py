"""The Batch API routes: ``/openai/batches`` (dated), ``/openai/v1/batches`` and ``/v1/batches``.

Checks in order, each a dependency (:mod:`vizlab.local.http.depends`): key and api-version (per
prefix), then the body (1 MiB of JSON). The store and its worker threads live in
:mod:`vizlab.local.replies.batch_store` (``BackendState.files``, beside the files).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from vizlab.local.http.depends import DATED, V1_NAMED, backend_state, checked_version, json_body, mount
from vizlab.local.http.errors import bad_request
from vizlab.local.replies.batch_store import BatchStore

__all__ = ["router"]

router = APIRouter()
_BATCH_BODY = json_body(lambda state: 1024 * 1024)  # a create-batch body names a file; 1 MiB is plenty


def _store(request: Request) -> BatchStore:
    store: BatchStore = backend_state(request).files
    return store


async def create_batch(request: Request, version: str = Depends(checked_version),
                       body: Any = Depends(_BATCH_BODY)) -> Response:  # fmt: skip
    store = _store(request)
    return JSONResponse(store.snapshot(store.create_batch(body, api_version=version)))


async def list_batches(request: Request, limit: str | None = Query(None), after: str | None = Query(None)) -> Response:
    store = _store(request)
    # "Limit can range between 1 and 100, and the default is 20": OpenAI OpenAPI spec, GET /batches
    # (as mirrored in wegotdocs/open-mcp listbatches.ts, read 2026); Azure's list route not checked.
    size = 20
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise bad_request("invalid_value", "'limit' must be a whole number from 1 to 100.", "limit")
        size = int(limit)
    batches = store.list_batches()
    if after is not None:
        ids = [b.id for b in batches]
        batches = batches[ids.index(after) + 1 :] if after in ids else []
    page = batches[:size]
    return JSONResponse(
        {
            "object": "list",
            "data": [store.snapshot(b) for b in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": len(batches) > size,
        }
    )


async def retrieve_batch(request: Request, batch_id: str) -> Response:
    store = _store(request)
    return JSONResponse(store.snapshot(store.get_batch(batch_id)))


async def cancel_batch(request: Request, batch_id: str) -> Response:
    store = _store(request)
    return JSONResponse(store.snapshot(store.cancel_batch(batch_id)))


_ROUTES = (
    ("POST", "/batches", create_batch, "Create a batch"),
    ("GET", "/batches", list_batches, "List batches"),
    ("GET", "/batches/{batch_id}", retrieve_batch, "Retrieve a batch"),
    ("POST", "/batches/{batch_id}/cancel", cancel_batch, "Cancel a batch"),
)
for _prefix, _access, _tag in (("/openai", DATED, "Azure"), ("/openai/v1", V1_NAMED, "openai/v1"), ("/v1", V1_NAMED, "v1")):
    mount(router, _prefix, _access, _tag, _ROUTES)
