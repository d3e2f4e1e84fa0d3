"""Files and batches of one backend, in memory: validate the JSONL, run it, write results.

The lifecycle (validating, in_progress, finalizing, completed / failed / expired / cancelled) and
the limits follow Azure's global batch documentation (sources in :mod:`vizlab.models.batch`).
Batch quota is separate from the live RPM/TPM quota, as on the service.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from vizlab.local.state import BackendState
from vizlab.local.http.errors import AzureError, bad_request
from vizlab.local.http.intake import deployment_not_found
from vizlab.local.http.lifecycle import uncancel_task
from vizlab.local.http.ratelimit import SlidingWindowLimiter
from vizlab.local.replies.batch_worker import Worker
from vizlab.local.replies.completion import complete
from vizlab.local.requests.validation import parse_chat_request
from vizlab.models.batch import AZURE_LIMITS

__all__ = ['BATCH_MAX_REQUESTS', 'BATCH_MAX_FILE_BYTES', 'BatchStore']

# Azure OpenAI "Batch limits" (100,000 requests, 200 MB per input file; source and date beside
# vizlab.models.batch.AZURE_LIMITS, the one place these numbers live, so the files vizlab.batch writes
# and the limits enforced here cannot disagree). OpenAI's per-file request limit is lower.
BATCH_MAX_REQUESTS = AZURE_LIMITS.max_requests
BATCH_MAX_FILE_BYTES = AZURE_LIMITS.max_bytes
# The completion window the service accepts (both docs, read 2026): only "24h".
COMPLETION_WINDOWS = ("24h",)
_WINDOW_S = 24 * 3600
_MAX_LISTED_ERRORS = 100  # vizlab's choice: enough to see the pattern of a bad input file


def not_found(kind: str, ident: str, param: str) -> AzureError:
    shown = ident if len(ident) <= 80 else ident[:77] + "..."
    return AzureError(404, "NotFound", f"No such {kind} object: {shown!r}.", param=param)


# --- store ------------------------------------------------------------------------------------


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class _Batch:
    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    api_version: str
    metadata: dict[str, str] | None
    created_at: int
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    times: dict[str, int | None] = field(default_factory=dict)
    cancel_requested: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict[str, Any]:
        stamps = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
                  "cancelling_at", "cancelled_at")  # fmt: skip
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": None if self.errors is None else {"object": "list", "data": list(self.errors)},
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + _WINDOW_S,
            **{name: self.times.get(name) for name in stamps},
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
        }


class BatchStore:
    """Files and batches of one backend, in memory; batches run in daemon worker threads."""

    def __init__(self, state: BackendState) -> None:
        self.state = state
        config = state.config
        # Batch quota is separate from the live RPM/TPM quota (see the module docstring).
        self._batch_state = BackendState(
            config=config,
            limiters={name: SlidingWindowLimiter(rpm=None, tpm=None) for name in config.deployments},
            analyst=state.analyst,
        )
        self._lock = threading.Lock()
        self.files: dict[str, _File] = {}
        self.batches: dict[str, _Batch] = {}
        self._workers: list[Worker] = []
        self._stopping = threading.Event()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every batch worker (cancel, then join each for what is left of ``timeout``)."""
        self._stopping.set()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        deadline = time.monotonic() + timeout
        for worker in workers:
            if worker.thread is not None and worker.thread.ident is not None:  # started (it may be starting)
                worker.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._workers = [w for w in self._workers if w.alive()]

    def _stopped(self, batch: _Batch) -> bool:
        return batch.cancel_requested.is_set() or self._stopping.is_set()

    # -- files --

    def add_file(self, filename: str, purpose: str, data: bytes) -> _File:
        record = _File("file-" + uuid.uuid4().hex, filename, purpose, data, int(time.time()))
        with self._lock:
            self.files[record.id] = record
        return record

    def get_file(self, file_id: str) -> _File:
        with self._lock:
            record = self.files.get(file_id)
        if record is None:
            raise not_found("File", file_id, "file_id")
        return record

    def delete_file(self, file_id: str) -> None:
        with self._lock:
            if self.files.pop(file_id, None) is None:
                raise not_found("File", file_id, "file_id")

    def list_files(self, purpose: str | None) -> list[_File]:
        with self._lock:
            files = list(self.files.values())
        return [f for f in files if purpose is None or f.purpose == purpose]

    # -- batches --

    def create_batch(self, body: Any, *, api_version: str) -> _Batch:
        if not isinstance(body, dict):
            raise bad_request("invalid_type", "The request body must be a JSON object.", None)
        for name in ("input_file_id", "endpoint", "completion_window"):
            if name not in body:
                raise bad_request("missing_required_parameter", f"Missing required parameter: '{name}'.", name)
            if not isinstance(body[name], str):
                raise bad_request("invalid_type", f"Invalid type for '{name}': expected a string.", name)
        endpoint = body["endpoint"]
        if _route_of(endpoint) != "chat/completions":
            raise bad_request(
                "invalid_value",
                f"Invalid value for 'endpoint': {endpoint[:60]!r}. The vizlab local backend runs batches "
                "for chat completions only: '/chat/completions' (Azure) or '/v1/chat/completions'.",
                "endpoint",
            )
        if body["completion_window"] not in COMPLETION_WINDOWS:
            raise bad_request(
                "invalid_value",
                f"Invalid value for 'completion_window': {body['completion_window'][:20]!r}. Supported values are: '24h'.",
                "completion_window",
            )
        metadata = body.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and len(metadata) <= 16
            and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        ):
            raise bad_request(
                "invalid_value", "'metadata' must be an object of at most 16 string keys and string values.", "metadata"
            )
        unknown = sorted(set(body) - {"input_file_id", "endpoint", "completion_window", "metadata",
                                      "output_expires_after"})  # fmt: skip
        if unknown:
            raise bad_request(
                "unknown_parameter", f"Unrecognized request argument supplied: {unknown[0][:40]}", unknown[0][:40]
            )
        source = self.get_file(body["input_file_id"])
        if source.purpose != "batch":
            raise bad_request(
                "invalid_value",
                f"File {source.id} has purpose {source.purpose!r}; upload the input with purpose 'batch'.",
                "input_file_id",
            )
        batch = _Batch(
            id="batch_" + str(uuid.uuid4()),
            endpoint=endpoint,
            input_file_id=source.id,
            completion_window=body["completion_window"],
            api_version=api_version,
            metadata=dict(metadata) if metadata else None,
            created_at=int(time.time()),
        )
        if self._stopping.is_set():
            raise AzureError(503, "ServiceUnavailable", "The vizlab local backend is stopping; start it again "
                             "and resubmit the batch.", type="server_error")  # fmt: skip
        worker = Worker()
        thread = threading.Thread(
            target=self._run, args=(batch, source.data, worker), name=f"vizlab-batch-{batch.id[6:14]}", daemon=True
        )
        worker.thread = thread
        with self._lock:
            self.batches[batch.id] = batch
            self._workers = [w for w in self._workers if w.alive()] + [worker]
        thread.start()
        return batch

    def snapshot(self, batch: _Batch) -> dict[str, Any]:
        """The batch's public JSON, read under the lock the worker writes under."""
        with self._lock:
            return batch.public()

    def get_batch(self, batch_id: str) -> _Batch:
        with self._lock:
            batch = self.batches.get(batch_id)
        if batch is None:
            raise not_found("Batch", batch_id, "batch_id")
        return batch

    def list_batches(self) -> list[_Batch]:
        with self._lock:
            batches = list(self.batches.values())
        return sorted(batches, key=lambda b: b.created_at, reverse=True)  # newest first, as the service

    def cancel_batch(self, batch_id: str) -> _Batch:
        batch = self.get_batch(batch_id)
        with self._lock:
            if batch.status in ("validating", "in_progress"):
                batch.status = "cancelling"
                batch.times["cancelling_at"] = int(time.time())
                batch.cancel_requested.set()
            elif batch.status not in ("cancelling", "cancelled"):
                raise AzureError(
                    409,
                    "batch_not_cancellable",
                    f"Cannot cancel a batch with status {batch.status!r}; only validating or in_progress batches can be cancelled.",
                    param="batch_id",
                )
        return batch

    # -- the worker --

    def _set(self, batch: _Batch, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                if name.endswith("_at"):
                    batch.times[name] = value
                else:
                    setattr(batch, name, value)

    def _run(self, batch: _Batch, data: bytes, worker: Worker) -> None:
        async def main() -> None:
            task = asyncio.current_task()
            assert task is not None
            if worker.attach(asyncio.get_running_loop(), task) and not self._stopping.is_set():
                await self._process(batch, data)
            else:
                self._finish_stopped(batch)

        try:
            asyncio.run(main())
        except asyncio.CancelledError:  # stop() cancelled it outside the line loop
            self._finish_stopped(batch)
        except Exception as e:  # a bug: fail the batch with a message rather than hang it
            self._set(
                batch,
                status="failed",
                failed_at=int(time.time()),
                errors=[{"code": "internal_error", "message": f"The vizlab local backend hit an internal "
                         f"error ({type(e).__name__}) running this batch. This is a bug in vizlab.",
                         "param": None, "line": None}],
            )  # fmt: skip

    async def _process(self, batch: _Batch, data: bytes) -> None:
        lines, problems = validate_input(data, batch.endpoint)
        if problems:
            self._set(batch, status="failed", failed_at=int(time.time()), errors=problems[:_MAX_LISTED_ERRORS])
            return
        self._set(batch, total=len(lines))
        if not batch.cancel_requested.is_set():
            self._set(batch, status="in_progress", in_progress_at=int(time.time()))
        outputs: list[bytes] = []
        failures: list[bytes] = []
        delay = float(getattr(self.state.config, "batch_delay_s", 0.0) or 0.0)
        try:
            for custom_id, body in lines:
                if self._stopped(batch):
                    break
                status, response_body, request_id = await self._answer(body, batch.api_version)
                line = {
                    "id": "batch_req_" + uuid.uuid4().hex,
                    "custom_id": custom_id,
                    "response": {"status_code": status, "request_id": request_id, "body": response_body},
                    "error": None,
                }
                encoded = json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
                with self._lock:
                    if status == 200:
                        outputs.append(encoded)
                        batch.completed += 1
                    else:
                        failures.append(encoded)
                        batch.failed += 1
                if delay > 0:
                    await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            task = asyncio.current_task()  # stop() cancelled us: keep what is done, as a cancel does
            if task is not None:
                uncancel_task(task)
        cancelled = self._stopped(batch)
        if not cancelled:
            self._set(batch, status="finalizing", finalizing_at=int(time.time()))
        output_id = self.add_file(f"{batch.id}_output.jsonl", "batch_output", b"".join(outputs)).id if outputs else None
        error_id = self.add_file(f"{batch.id}_error.jsonl", "batch_output", b"".join(failures)).id if failures else None
        now = int(time.time())
        if cancelled:
            if not batch.cancel_requested.is_set():  # the backend stopped: no cancel request came
                self._set(batch, cancelling_at=now)
            self._set(batch, output_file_id=output_id, error_file_id=error_id, status="cancelled", cancelled_at=now)
        else:
            self._set(batch, output_file_id=output_id, error_file_id=error_id, status="completed", completed_at=now)

    def _finish_stopped(self, batch: _Batch) -> None:
        """A batch whose worker was stopped before it began: cancelled, nothing done."""
        now = int(time.time())
        with self._lock:
            if batch.status in ("completed", "failed", "cancelled", "expired"):
                return
        self._set(batch, status="cancelled", cancelling_at=now, cancelled_at=now)

    async def _answer(self, body: dict[str, Any], api_version: str) -> tuple[int, dict[str, Any], str]:
        """One line through the live chat path: (status, response body, request id)."""
        request_id = str(uuid.uuid4())
        config = self.state.config
        try:
            chat = parse_chat_request(body, api_version=api_version, require_model=True)
            assert chat.model is not None
            if chat.model not in config.deployments:
                raise deployment_not_found(chat.model, config)
            if chat.stream:
                raise bad_request("invalid_value", "Streaming is not supported in batch requests: remove 'stream'.", "stream")
            response = await complete(self._batch_state, chat, chat.model, api_version)
        except AzureError as e:
            return e.status, e.body(), request_id
        except Exception as e:  # a bug in one line must not sink the others
            return 500, AzureError(500, "InternalServerError", f"The vizlab local backend hit an internal error "
                                   f"({type(e).__name__}) on this line. This is a bug in vizlab.",
                                   type="server_error").body(), request_id  # fmt: skip
        return response.status_code, json.loads(bytes(response.body)), response.headers.get("x-request-id", request_id)


def _route_of(url: str) -> str:
    """'/v1/chat/completions' and '/chat/completions' both name 'chat/completions'."""
    path = url.strip().split("?", 1)[0].strip("/")
    return path[3:] if path.startswith("v1/") else path


def validate_input(data: bytes, endpoint: str) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """Parse a batch input file: ``(custom_id, body)`` per request, and the problems found.

    Any problem fails the whole batch, as the service's validation does. Blank lines are skipped.
    """
    problems: list[dict[str, Any]] = []

    def problem(code: str, message: str, line: int | None, param: str | None = None) -> None:
        problems.append({"code": code, "message": message, "param": param, "line": line})

    if len(data) > BATCH_MAX_FILE_BYTES:
        problem("file_too_large", f"The input file is {len(data):,} bytes; the limit is {BATCH_MAX_FILE_BYTES:,}. "
                "Split it into several files.", None)  # fmt: skip
        return [], problems
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        problem("invalid_file_encoding", "The input file is not UTF-8 text. Write the JSONL file as UTF-8.", None)
        return [], problems
    wanted = _route_of(endpoint)
    lines: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    models: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            problem("invalid_json_line", "This line is not parseable as valid JSON.", number)
            continue
        if not isinstance(obj, dict):
            problem("invalid_json_line", "Each line must be a JSON object.", number)
            continue
        custom_id = obj.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            problem("missing_required_parameter", "Each line needs a non-empty string 'custom_id'.", number, "custom_id")
            continue
        if custom_id in seen:
            problem("duplicate_custom_id", f"The custom_id {custom_id[:64]!r} is also used on line {seen[custom_id]}; "
                    "each request needs its own.", number, "custom_id")  # fmt: skip
            continue
        seen[custom_id] = number
        if obj.get("method") != "POST":
            problem("invalid_value", "'method' must be 'POST'.", number, "method")
            continue
        url = obj.get("url")
        if not isinstance(url, str) or _route_of(url) != wanted:
            problem("invalid_value", f"'url' must be the batch's endpoint {endpoint!r}, not {str(url)[:60]!r}.",
                    number, "url")  # fmt: skip
            continue
        body = obj.get("body")
        if not isinstance(body, dict):
            problem("missing_required_parameter", "Each line needs a JSON object 'body'.", number, "body")
            continue
        model = body.get("model")
        if not isinstance(model, str) or not model:
            problem("missing_required_parameter", "Each body needs 'model' (the deployment name on Azure).",
                    number, "body.model")  # fmt: skip
            continue
        models.setdefault(model, number)
        if len(models) > 1:
            first = next(iter(models))
            problem("mismatched_model", f"Line {number} names model {model[:64]!r} but line {models[first]} names "
                    f"{first[:64]!r}: one batch file targets one deployment.", number, "body.model")  # fmt: skip
            del models[model]
            continue
        lines.append((custom_id, body))
    if not lines and not problems:
        problem("empty_file", "The input file has no requests.", None)
    if len(lines) > BATCH_MAX_REQUESTS:
        problem("too_many_requests", f"The input file has {len(lines):,} requests; the limit is "
                f"{BATCH_MAX_REQUESTS:,} per file. Split it into several files.", None)  # fmt: skip
    return lines, problems
