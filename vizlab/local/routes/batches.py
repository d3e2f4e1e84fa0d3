"""The Files and Batch API routes: ``/openai/files``, ``/openai/batches`` and their v1 forms.

Each route checks the key and api-version as chat does. Upload bodies are parsed here (multipart,
bounded); the store and its worker threads live in :mod:`vizlab.local.replies.batch_store`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from vizlab.local.config import BackendState
from vizlab.local.http.apiversion import check_api_version, check_v1_api_version
from vizlab.local.http.errors import AzureError, bad_request
from vizlab.local.http.intake import authenticate, read_body, read_json
from vizlab.local.replies.batch_store import BATCH_MAX_FILE_BYTES, BatchStore

__all__ = ['add_batch_routes']

_UPLOAD_OVERHEAD = 1024 * 1024  # multipart headers and boundaries around the file


# --- multipart --------------------------------------------------------------------------------

_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """Fields of a multipart/form-data body: name -> (filename or None, bytes). Total: bad input -> 400.

    python-multipart is not installed here, and a form upload needs only this much of RFC 7578.
    """
    if not content_type.lower().startswith("multipart/form-data"):
        raise bad_request(
            "invalid_request_error",
            "Upload files as multipart/form-data with fields 'file' and 'purpose' "
            "(the openai SDK's client.files.create(file=..., purpose='batch') does this).",
        )
    match = _BOUNDARY.search(content_type)
    if not match:
        raise bad_request("invalid_request_error", "The multipart/form-data Content-Type has no boundary.")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, tuple[str | None, bytes]] = {}
    chunks = body.split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise bad_request("invalid_request_error", "A multipart part has no blank line after its headers.")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition = ""
        for header in head.decode("latin-1").split("\r\n"):
            name, _, value = header.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
        params = dict(_PARAM.findall(disposition))
        if "name" in params:
            fields[params["name"]] = (params.get("filename"), content)
    return fields


async def _read_upload(request: Request, limit: int) -> bytes:
    """The raw upload, up to ``limit`` bytes (413 beyond, saying how to split the file)."""
    return await read_body(request, limit, _upload_too_large)


def _upload_too_large(limit: int) -> AzureError:
    return AzureError(
        413,
        "RequestEntityTooLarge",
        f"The upload is over the local backend's limit of {limit:,} bytes (batch input files: "
        f"{BATCH_MAX_FILE_BYTES:,} bytes). Split the requests into several files.",
    )


# --- routes -----------------------------------------------------------------------------------


def add_batch_routes(app: FastAPI, state: BackendState) -> BatchStore:
    """Add the Files and Batch routes (Azure, /openai/v1 and /v1) to ``app``; return their store."""
    store = BatchStore(state)
    config = state.config
    app.state.vizlab_batches = store
    state.files = store  # documents by file_id (vizlab.local.documents)

    for prefix, dated in (("/openai", True), ("/openai/v1", False), ("/v1", False)):
        _add_routes(app, store, prefix, dated, config)
    return store


def _add_routes(app: FastAPI, store: BatchStore, prefix: str, dated: bool, config: Any) -> None:
    def version_of(api_version: str | None) -> str:
        if dated:
            return check_api_version(api_version)
        return check_v1_api_version(api_version) or "v1"

    def check(request: Request, api_version: str | None) -> str:
        authenticate(request, config)
        return version_of(api_version)

    tag = "Azure" if dated else prefix.strip("/")

    @app.post(f"{prefix}/files", summary=f"Upload a file ({tag})")
    async def upload_file(request: Request, api_version: str | None = Query(None, alias="api-version")) -> Response:
        check(request, api_version)
        raw = await _read_upload(request, BATCH_MAX_FILE_BYTES + _UPLOAD_OVERHEAD)
        fields = parse_multipart(raw, request.headers.get("content-type", ""))
        if "file" not in fields:
            raise bad_request("missing_required_parameter", "Missing required parameter: 'file'.", "file")
        if "purpose" not in fields:
            raise bad_request("missing_required_parameter", "Missing required parameter: 'purpose'.", "purpose")
        purpose = fields["purpose"][1].decode("utf-8", "replace").strip()
        # "vision" / "user_data": images for the Responses API's input_image file_id (OpenAI Files API
        # reference, purpose, checked 2026).
        # "assistants": documents (PDF) for file parts, as Azure asks (vizlab.document_facts).
        if purpose not in ("batch", "vision", "user_data", "assistants"):
            raise bad_request(
                "invalid_value",
                f"Invalid value for 'purpose': {purpose[:40]!r}. The vizlab local backend stores files for "
                "'batch' (batch input), 'vision' / 'user_data' (images for the Responses API) and 'assistants' "
                "(documents) only.",
                "purpose",
            )
        filename, data = fields["file"]
        if len(data) > BATCH_MAX_FILE_BYTES:
            raise _upload_too_large(BATCH_MAX_FILE_BYTES)
        record = store.add_file((filename or "upload.jsonl")[:255], purpose, data)
        return JSONResponse(record.public())

    @app.get(f"{prefix}/files", summary=f"List files ({tag})")
    async def list_files(
        request: Request,
        api_version: str | None = Query(None, alias="api-version"),
        purpose: str | None = Query(None),
    ) -> Response:
        check(request, api_version)
        data = [f.public() for f in store.list_files(purpose)]
        return JSONResponse({"object": "list", "data": data, "has_more": False})

    @app.get(f"{prefix}/files/{{file_id}}", summary=f"Retrieve a file ({tag})")
    async def retrieve_file(
        request: Request, file_id: str, api_version: str | None = Query(None, alias="api-version")
    ) -> Response:
        check(request, api_version)
        return JSONResponse(store.get_file(file_id).public())

    @app.delete(f"{prefix}/files/{{file_id}}", summary=f"Delete a file ({tag})")
    async def delete_file(
        request: Request, file_id: str, api_version: str | None = Query(None, alias="api-version")
    ) -> Response:
        check(request, api_version)
        store.delete_file(file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    @app.get(f"{prefix}/files/{{file_id}}/content", summary=f"Download a file's content ({tag})")
    async def file_content(
        request: Request, file_id: str, api_version: str | None = Query(None, alias="api-version")
    ) -> Response:
        check(request, api_version)
        record = store.get_file(file_id)
        return Response(record.data, media_type="application/octet-stream")

    @app.post(f"{prefix}/batches", summary=f"Create a batch ({tag})")
    async def create_batch(request: Request, api_version: str | None = Query(None, alias="api-version")) -> Response:
        version = check(request, api_version)
        body = await read_json(request, 1024 * 1024)
        return JSONResponse(store.snapshot(store.create_batch(body, api_version=version)))

    @app.get(f"{prefix}/batches", summary=f"List batches ({tag})")
    async def list_batches(
        request: Request,
        api_version: str | None = Query(None, alias="api-version"),
        limit: str | None = Query(None),
        after: str | None = Query(None),
    ) -> Response:
        check(request, api_version)
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

    @app.get(f"{prefix}/batches/{{batch_id}}", summary=f"Retrieve a batch ({tag})")
    async def retrieve_batch(
        request: Request, batch_id: str, api_version: str | None = Query(None, alias="api-version")
    ) -> Response:
        check(request, api_version)
        return JSONResponse(store.snapshot(store.get_batch(batch_id)))

    @app.post(f"{prefix}/batches/{{batch_id}}/cancel", summary=f"Cancel a batch ({tag})")
    async def cancel_batch(
        request: Request, batch_id: str, api_version: str | None = Query(None, alias="api-version")
    ) -> Response:
        check(request, api_version)
        return JSONResponse(store.snapshot(store.cancel_batch(batch_id)))
