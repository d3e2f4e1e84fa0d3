"""Documents (PDF) on the built-in backend: parse file parts, enforce the limits, answer from them.

Chat ``file`` parts and Responses ``input_file`` parts (``file_data``, or a ``file_id`` uploaded
with purpose ``assistants``) become one internal Chat-format part, ``{"type": "file", "file":
{filename, file_data | file_id, detail}}``; the bill is vizlab.tokens' count of it (text layer +
page images, marked emulated), so offline usage equals ``estimate_request``. Limits are Azure's
(PDF only, 100 pages and 32 MB per request; UNVERIFIED in vizlab.document_facts). The analyst
reads the text layer and OCRs a page image only where a page has no text layer, at most
``vizlab.local.config.OCR_PAGE_CAP`` pages (``BackendConfig.ocr_page_cap``; a dense page costs seconds of OCR). Error wording is emulated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vizlab.errors import DocumentError, DocumentTooLargeError
from vizlab.images.pdf import decode_file_data, read_pdf, sniff_document
from vizlab.local.http.errors import AzureError, bad_request, wrong_type
from vizlab.models import documents as facts

__all__ = [
    "chat_user_part",
    "has_documents",
    "parse_chat_file_part",
    "parse_responses_file_part",
    "prepare_documents",
    "unsupported_part_type",
]

def unsupported_part_type(path: str, kind: Any, supported: tuple[str, ...], taken: tuple[str, ...]) -> AzureError:
    """The service's 400 for a content part type: the service's own list of supported values; a type
    the service takes but this backend does not (audio) is named as such."""
    shown = str(kind)[:40]
    if kind in supported and kind not in taken:
        return bad_request("invalid_value", f"'{shown}' content parts are valid on the service but not emulated by "
                           f"the vizlab local backend; send {', '.join(repr(t) for t in taken)} parts.", f"{path}.type")
    options = ", ".join(f"'{s}'" for s in supported[:-1]) + f", and '{supported[-1]}'"
    return bad_request("invalid_value", f"Invalid value: '{shown}'. Supported values are: {options}.", f"{path}.type")


def _internal(path: str, filename: Any, file_data: Any, file_id: Any, detail: Any) -> dict[str, Any]:
    if (file_data is None) == (file_id is None):
        raise bad_request("invalid_value", f"Invalid '{path}': give exactly one of 'file_data' (a base64 data URL) "
                          "or 'file_id' (from the files route).", path)
    if file_data is not None and not isinstance(file_data, str):
        raise wrong_type(f"{path}.file_data", "a string")
    if file_id is not None and not isinstance(file_id, str):
        raise wrong_type(f"{path}.file_id", "a string")
    if filename is not None and not isinstance(filename, str):
        raise wrong_type(f"{path}.filename", "a string")
    inner: dict[str, Any] = {"filename": filename, "_path": path}
    inner.update({"file_data": file_data} if file_data is not None else {"file_id": file_id})
    if detail is not None:
        inner["detail"] = detail
    return {"type": "file", "file": inner}


def parse_chat_file_part(path: str, part: Mapping[str, Any]) -> dict[str, Any]:
    """A Chat ``file`` part -> the internal part (file_url is not taken by Chat Completions)."""
    extra = set(part) - {"type", "file", "prompt_cache_breakpoint"}
    if extra:
        raise bad_request("unknown_parameter", f"Unrecognized key in '{path}': {sorted(extra)[0]!r}.", path)
    inner = part.get("file")
    if inner is None:
        raise bad_request("missing_required_parameter", f"Missing required parameter: '{path}.file'.", f"{path}.file")
    if not isinstance(inner, Mapping):
        raise wrong_type(f"{path}.file", "an object")
    # Chat file parts take no detail (OpenAI "File inputs" guide); only a converted input_file carries one.
    converted = {"detail", "_path"} if "_path" in inner else set()
    unknown = set(inner) - {"filename", "file_data", "file_id"} - converted
    if unknown:
        raise bad_request("unknown_parameter", f"Unrecognized key in '{path}.file': {sorted(unknown)[0]!r}.", f"{path}.file")
    detail = inner.get("detail")  # only from a converted Responses input_file
    return _internal(str(inner.get("_path") or path), inner.get("filename"), inner.get("file_data"), inner.get("file_id"), detail)


def chat_user_part(path: str, role: str, kind: Any, part: Mapping[str, Any],
                   allowed: tuple[str, ...]) -> dict[str, Any] | None:  # fmt: skip
    """A user's Chat ``file`` part parsed, the service's 400 for a type outside ``allowed`` (listing
    the service's own values), or None: the part is another type the caller parses."""
    if role == "user" and kind not in allowed:
        raise unsupported_part_type(path, kind, facts.CHAT_PART_TYPES, allowed)
    return parse_chat_file_part(path, part) if kind == "file" else None


def parse_responses_file_part(path: str, part: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Responses ``input_file`` -> (internal part, the item as listed back by input_items)."""
    detail = part.get("detail", "auto")
    if detail not in facts.FILE_DETAILS:
        raise bad_request("invalid_value", f"Invalid value for '{path}.detail': {str(detail)[:40]!r}. Supported "
                          "values are: 'auto', 'low', and 'high'.", f"{path}.detail")
    url = part.get("file_url")
    if url is not None:
        # Azure's answer to any file_url (Microsoft Q&A 12548455, 2026-01-27); offline nothing is downloaded.
        shown = str(url).split("?", 1)[0][:200]
        raise bad_request("invalid_value", f"Error while downloading {shown}.", "url")
    internal = _internal(path, part.get("filename"), part.get("file_data"), part.get("file_id"), detail)
    listed = {"type": "input_file", "detail": detail, "filename": part.get("filename"),
              "file_id": part.get("file_id"), "file_data": part.get("file_data")}
    return internal, listed


def _file_parts(messages: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    found = []
    for i, message in enumerate(messages):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "file":
                found.append((i, part))
    return found


def has_documents(messages: list[dict[str, Any]]) -> bool:
    return bool(_file_parts(messages))


def _read_id(files: Any, file_id: str, path: str) -> tuple[bytes, str]:
    if files is None:
        raise AzureError(404, "not_found", f"No such File object: {file_id}", param=f"{path}.file_id")
    record = files.get_file(file_id)
    if record.purpose not in (facts.FILE_PURPOSE, "user_data"):
        raise bad_request("invalid_value", f"File {file_id} has purpose {record.purpose!r}; upload documents with "
                          f"purpose '{facts.FILE_PURPOSE}'.", f"{path}.file_id")
    return record.data, record.filename


def _problem(e: DocumentError, path: str) -> AzureError:
    return bad_request("invalid_value", f"Invalid file at '{path}': {e}", path)


def prepare_documents(messages: list[dict[str, Any]], files: Any, *, max_pages: int = facts.AZURE_MAX_PAGES,
                      max_bytes: int = facts.AZURE_MAX_BYTES) -> list[dict[str, Any]]:  # fmt: skip
    """Resolve file ids to bytes and check each document (PDF only, readable, within the per-request
    page and byte limits); the service's 400 on the first problem. Returns the messages to bill and answer."""
    total_pages = total_bytes = 0
    read: dict[tuple[str, str], tuple[Any, str, int]] = {}  # file_id or file_data -> (pdf, data URL, bytes): read once per request
    out = [dict(m) for m in messages]
    for i, message in enumerate(out):
        content = message.get("content")
        if not isinstance(content, list) or not any(isinstance(p, dict) and p.get("type") == "file" for p in content):
            continue
        message["content"] = parts = [dict(p) for p in content]
        for part in parts:
            if part.get("type") != "file":
                continue
            inner = dict(part["file"])
            path = str(inner.pop("_path", f"messages[{i}]"))
            file_id = inner.pop("file_id", None)
            data = b""
            if file_id is not None:
                data, stored_name = _read_id(files, file_id, path)
                inner["filename"] = inner.get("filename") or stored_name
            name = inner.get("filename") or "file.pdf"
            source = ("file_id", file_id) if file_id is not None else ("file_data", inner["file_data"])
            if source not in read:
                if file_id is None:
                    data = _decode_file_data(inner["file_data"], path)
                read[source] = (_checked_pdf(data, name, path), "data:application/pdf;base64," + _b64(data), len(data))
            pdf, inner["file_data"], size = read[source]
            total_pages, total_bytes = total_pages + len(pdf.pages), total_bytes + size
            _check_totals(path, total_pages, total_bytes, max_pages, max_bytes)
            inner["filename"] = name
            part["file"] = inner
    return out


def _decode_file_data(file_data: Any, path: str) -> bytes:
    try:
        return decode_file_data(file_data, f"{path}.file_data")[1]
    except DocumentError as e:
        raise _problem(e, f"{path}.file_data") from e


def _checked_pdf(data: bytes, name: str, path: str) -> Any:
    """The PDF read from ``data``, or the service's 400 for a file that is not a readable PDF."""
    kind = sniff_document(data)
    if kind != "pdf":
        # OpenAI's words for a non-PDF file part (community.openai.com thread 1365525, 2025).
        shown = kind or (name.rsplit(".", 1)[-1] if "." in name else "unknown")
        raise bad_request("invalid_value", f"Invalid input: Expected context stuffing file type to be a supported "
                          f"format: .pdf but got .{shown}.", path)
    try:
        return read_pdf(data, name)
    except DocumentError as e:
        raise _problem(e, path) from e


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _check_totals(path: str, pages: int, nbytes: int, max_pages: int, max_bytes: int) -> None:
    if pages > max_pages:
        e = DocumentTooLargeError(f"the request's documents have {pages} pages; the limit is {max_pages} pages per "
                                  "request. Send fewer pages.", what="pages", size=pages, limit=max_pages)
        raise _problem(e, path)
    if nbytes > max_bytes:
        e = DocumentTooLargeError(f"the request's documents are {nbytes / 1e6:.1f} MB; the limit is "
                                  f"{max_bytes / 1e6:.0f} MB per request.", what="bytes", size=nbytes, limit=max_bytes)
        raise _problem(e, path)
