"""The Files API routes: ``/openai/files`` (dated), ``/openai/v1/files`` and ``/v1/files``.

Checks in order, each a dependency (:mod:`vizlab.local.http.depends`): key and api-version (per
prefix), then the upload's size (multipart, bounded, parsed here). The files live in
:class:`vizlab.local.replies.batch_store.BatchStore` (``BackendState.files``), beside the batches.
"""

from __future__ import annotations

import re
from typing import Iterator

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from vizlab.local.http.depends import DATED, V1_NAMED, backend_state, mount, raw_body
from vizlab.local.http.errors import AzureError, bad_request
from vizlab.local.replies.batch_store import BATCH_MAX_FILE_BYTES, BatchStore

__all__ = ["router", "parse_multipart"]

_UPLOAD_OVERHEAD = 1024 * 1024  # multipart headers and boundaries around the file


# --- multipart --------------------------------------------------------------------------------

_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _part_spans(body: bytes, delimiter: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each piece after a delimiter, as ``body.split(delimiter)[1:]`` gives them."""
    at = body.find(delimiter)
    while at >= 0:
        start = at + len(delimiter)
        after = body.find(delimiter, start)
        yield start, after if after >= 0 else len(body)
        at = after


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
    for start, end in _part_spans(body, delimiter):  # offsets, so only each field's content is copied
        if body.startswith(b"--", start, end):
            break
        if body.startswith(b"\r\n", start, end):
            start += 2
        blank = body.find(b"\r\n\r\n", start, end)
        if blank < 0:
            raise bad_request("invalid_request_error", "A multipart part has no blank line after its headers.")
        head = body[start:blank]
        if end - (blank + 4) >= 2 and body.startswith(b"\r\n", end - 2, end):
            end -= 2
        content = body[blank + 4 : end]
        disposition = ""
        for header in head.decode("latin-1").split("\r\n"):
            name, _, value = header.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value
        params = dict(_PARAM.findall(disposition))
        if "name" in params:
            fields[params["name"]] = (params.get("filename"), content)
    return fields


def _upload_too_large(limit: int) -> AzureError:
    return AzureError(
        413,
        "RequestEntityTooLarge",
        f"The upload is over the local backend's limit of {limit:,} bytes (batch input files: "
        f"{BATCH_MAX_FILE_BYTES:,} bytes). Split the requests into several files.",
    )


# --- routes -----------------------------------------------------------------------------------

router = APIRouter()
# The raw upload, up to the largest file plus its multipart framing (413 beyond, saying how to split it).
_UPLOAD = raw_body(BATCH_MAX_FILE_BYTES + _UPLOAD_OVERHEAD, _upload_too_large)


def _store(request: Request) -> BatchStore:
    store: BatchStore = backend_state(request).files
    return store


async def upload_file(request: Request, raw: bytes = Depends(_UPLOAD)) -> Response:
    store = _store(request)
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


async def list_files(request: Request, purpose: str | None = Query(None)) -> Response:
    data = [f.public() for f in _store(request).list_files(purpose)]
    return JSONResponse({"object": "list", "data": data, "has_more": False})


async def retrieve_file(request: Request, file_id: str) -> Response:
    return JSONResponse(_store(request).get_file(file_id).public())


async def delete_file(request: Request, file_id: str) -> Response:
    _store(request).delete_file(file_id)
    return JSONResponse({"id": file_id, "object": "file", "deleted": True})


async def file_content(request: Request, file_id: str) -> Response:
    record = _store(request).get_file(file_id)
    return Response(record.data, media_type="application/octet-stream")


_ROUTES = (
    ("POST", "/files", upload_file, "Upload a file"),
    ("GET", "/files", list_files, "List files"),
    ("GET", "/files/{file_id}", retrieve_file, "Retrieve a file"),
    ("DELETE", "/files/{file_id}", delete_file, "Delete a file"),
    ("GET", "/files/{file_id}/content", file_content, "Download a file's content"),
)
for _prefix, _access, _tag in (("/openai", DATED, "Azure"), ("/openai/v1", V1_NAMED, "openai/v1"), ("/v1", V1_NAMED, "v1")):
    mount(router, _prefix, _access, _tag, _ROUTES)
