"""vizlab's own text-counting route for kernels: ``POST /vizlab/tokens/count`` (not Azure's API).

A kernel attached to the shared backend counts text here instead of building tiktoken's encoder
itself (about 45 MiB in every open notebook; issue 26): the backend holds the encoders anyway,
and runs the same code (its name carries the code's fingerprint), so a count here is the count
the kernel would make. Body ``{"encoding": "o200k_base", "texts": [...]}``; answer
``{"encoding", "counts"}``. Behind the backend's key, never paced, hidden from /openapi.json.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vizlab.local import _deps
from vizlab.local.counting import COUNT_PATH
from vizlab.local.http.depends import CHAT_BODY, backend_state
from vizlab.local.http.errors import bad_request
from vizlab.local.http.intake import authenticate

__all__ = ["router"]

router = APIRouter()


async def _key(request: Request) -> None:
    authenticate(request, backend_state(request).config)


def _checked(body: Any) -> tuple[str, list[str]]:
    if not isinstance(body, dict):
        raise bad_request("invalid_type", "The request body must be a JSON object with 'encoding' and 'texts'.")
    encoding, texts = body.get("encoding"), body.get("texts")
    if encoding not in _deps.TEXT_ENCODINGS:
        raise bad_request("invalid_value", f"'encoding' must be one of {sorted(_deps.TEXT_ENCODINGS)}, got "
                          f"{encoding!r:.40}.", "encoding")  # fmt: skip
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise bad_request("invalid_type", "Invalid type for 'texts': expected a list of strings.", "texts")
    return str(encoding), texts


@router.post(COUNT_PATH, include_in_schema=False, dependencies=[Depends(_key)])
async def count_tokens(body: Any = Depends(CHAT_BODY)) -> JSONResponse:
    encoding, texts = _checked(body)
    counts = await run_in_threadpool(_deps.count_in_encoding, encoding, texts)  # long texts: off the loop
    return JSONResponse({"encoding": encoding, "counts": counts})
