"""Batches through the Batch API: submit, follow, and read each request's outcome (half price).

Submits the files of :mod:`vizlab.batch.files`, follows the batches and reads every ``custom_id``
of the manifest back as a record (:func:`record_from_completion`, the shape a live reply is kept
in) or the reason it failed; :func:`vizlab.experiments.run_experiment` with ``batch=True`` builds
its table from them. Trade-offs: one deployment per file (Azure's rule); the manifest, not the
``custom_id``, is the truth; no per-request latency; nothing is dropped (errors and unprocessed
lines come back with their reason). The state file holds ids and paths only, never a key, and
is replaced atomically. Details: docs/internals.md#batch
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from vizlab.batch.files import (
    NOT_PROCESSED,
    STATE_VERSION,
    TERMINAL,
    BatchInput,
    BatchNotFinishedError,
    read_json,
    write_json_atomic,
)
from vizlab.client.targets import BackendKind
from vizlab.conversation.storage import atomic_write_bytes
from vizlab.errors import VizlabError, redact

if TYPE_CHECKING:
    from vizlab.client.core import Client

__all__ = ["BatchRun", "BatchStatus", "record_from_completion", "submit"]


def record_from_completion(
    raw: dict[str, Any], latency: float | None, request_id: str | None, ungrounded: list[str] | None = None
) -> dict[str, Any]:
    """What is kept of one chat completion (a live reply, or a batch output line's body): answer,
    usage (cached and reasoning tokens too), model and ids; ``ungrounded``: the schema fields the
    built-in backend filled with placeholders.

    >>> record_from_completion({"model": "gpt-5.5", "choices": [{"message": {"content": "K7RF"}}],
    ...     "usage": {"prompt_tokens": 90, "completion_tokens": 40,
    ...               "completion_tokens_details": {"reasoning_tokens": 32}}}, None, None)["reasoning_tokens"]
    32
    """
    choice = (raw.get("choices") or [{}])[0] or {}
    message = choice.get("message") or {}
    usage = raw.get("usage") or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "answer": message.get("content") or "",
        "refusal": message.get("refusal"),
        "finish_reason": choice.get("finish_reason"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "cached_tokens": prompt_details.get("cached_tokens"),
        "reasoning_tokens": completion_details.get("reasoning_tokens"),
        "latency_s": latency,
        "request_id": request_id,
        "model": raw.get("model"),
        "system_fingerprint": raw.get("system_fingerprint"),
        "ungrounded": list(ungrounded or []),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --- submitting and following -----------------------------------------------------------------


def _sdk(client: Any) -> Any:
    """The openai SDK client behind a vizlab Client (or an openai client passed directly)."""
    sdk = getattr(client, "sdk", None)
    if sdk is not None:
        return sdk
    if hasattr(client, "batches") and hasattr(client, "files"):
        return client
    raise TypeError(f"expected a vizlab Client (vizlab.connect()) or an openai client, not {type(client).__name__}")


def _sdk_errors(client: Any) -> contextlib.AbstractContextManager[Any]:
    """vizlab's error mapping (keys redacted) when the client has one."""
    mapper = getattr(client, "mapped_errors", None)
    return cast("contextlib.AbstractContextManager[Any]", mapper()) if callable(mapper) else contextlib.nullcontext()


def submit(
    client: Client,
    batch_input: BatchInput,
    *,
    state_path: str | os.PathLike[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> BatchRun:
    """Upload every input file and create its batch; the ids go to ``state_path`` as each is made.

    ``state_path`` defaults to ``batch-state.json`` beside the manifest. If it already lists some
    of these files (a submission interrupted halfway), only the others are submitted.
    """
    path = Path(state_path) if state_path is not None else batch_input.out_dir / "batch-state.json"
    if path.exists():
        state = read_json(path)
        if Path(state.get("manifest", "")).resolve() != batch_input.manifest_path.resolve():
            raise VizlabError(
                f"state file {path} belongs to another batch (manifest {state.get('manifest')}); "
                "pass another state_path, or BatchRun.attach() it"
            )
    else:
        state = {
            "version": STATE_VERSION,
            "manifest": str(batch_input.manifest_path.resolve()),
            "endpoint": batch_input.endpoint,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "batches": [],
        }
        write_json_atomic(path, state)
    sdk = _sdk(client)
    done = {b["file"] for b in state["batches"]}
    for entry in batch_input.files:
        if entry["name"] in done:
            continue
        with _sdk_errors(client):
            with open(entry["path"], "rb") as fh:
                uploaded = sdk.files.create(file=(entry["name"], fh), purpose="batch")
            batch = sdk.batches.create(
                input_file_id=uploaded.id,
                endpoint=cast(Any, batch_input.endpoint),  # the SDK types list only OpenAI's /v1 form
                # Azure "Getting started with Azure OpenAI global batch deployments"
                # (learn.microsoft.com/azure/ai-foundry/openai/how-to/batch) and OpenAI's Batch guide
                # (platform.openai.com/docs/guides/batch), both read 2026 from stored copies.
                completion_window="24h",
                **({"metadata": metadata} if metadata else {}),
            )
        state["batches"].append(
            {"file": entry["name"], "input_file_id": uploaded.id, "batch_id": batch.id, "requests": entry["requests"]}
        )
        write_json_atomic(path, state)  # at once: a restart now can attach to this batch
    return BatchRun(client, path)


@dataclass
class BatchStatus:
    """Where a run stands: the combined status and counts, and each batch's own."""

    status: str
    total: int
    completed: int
    failed: int
    batches: list[dict[str, Any]]

    @property
    def done(self) -> bool:
        return all(b["status"] in TERMINAL for b in self.batches)

    def __str__(self) -> str:
        return f"{self.status}: {self.completed + self.failed}/{self.total} requests ({self.failed} failed)"


class BatchRun:
    """Submitted batches of one experiment, followed through the state file (see :func:`submit`)."""

    def __init__(self, client: Client, state_path: str | os.PathLike[str]) -> None:
        self.client = client
        self.state_path = Path(state_path)
        self.state = read_json(self.state_path)
        self.manifest_path = Path(self.state["manifest"])

    @classmethod
    def attach(cls, state_path: str | os.PathLike[str], client: Client) -> BatchRun:
        """Pick up a run from its state file, e.g. after a kernel restart, with a fresh client."""
        if not Path(state_path).exists():
            raise FileNotFoundError(f"no batch state file at {state_path}: submit() the batch first")
        return cls(client, state_path)

    def __repr__(self) -> str:
        ids = ", ".join(b["batch_id"] for b in self.state["batches"])
        return f"BatchRun({len(self.state['batches'])} batch(es): {ids}; state {str(self.state_path)!r})"

    @property
    def batch_ids(self) -> list[str]:
        return [b["batch_id"] for b in self.state["batches"]]

    def _retrieve(self) -> list[Any]:
        sdk = _sdk(self.client)
        with _sdk_errors(self.client):
            return [sdk.batches.retrieve(batch_id) for batch_id in self.batch_ids]

    def status(self) -> BatchStatus:
        """Ask the service once for every batch's status and request counts."""
        batches = []
        expected = {b["batch_id"]: b["requests"] for b in self.state["batches"]}
        for b in self._retrieve():
            counts = b.request_counts
            batches.append(
                {
                    "batch_id": b.id,
                    "status": b.status,
                    # total is 0 while validating; the file's line count is known already.
                    "total": (counts.total if counts and counts.total else expected.get(b.id, 0)),
                    "completed": counts.completed if counts else 0,
                    "failed": counts.failed if counts else 0,
                    "output_file_id": b.output_file_id or None,
                    "error_file_id": b.error_file_id or None,
                    "errors": [e.model_dump() for e in (b.errors.data or [])] if b.errors else [],
                }
            )
        statuses = [b["status"] for b in batches]
        combined = statuses[0] if len(set(statuses)) == 1 else ", ".join(f"{s} x{statuses.count(s)}"
                                                                        for s in dict.fromkeys(statuses))  # fmt: skip
        return BatchStatus(
            status=combined if statuses else "empty",
            total=sum(b["total"] for b in batches),
            completed=sum(b["completed"] for b in batches),
            failed=sum(b["failed"] for b in batches),
            batches=batches,
        )

    def _poll_default(self) -> float:
        # Azure's how-to recommends at least 60 s between status calls (Azure OpenAI "global batch"
        # how-to; date of reading not recorded, not re-verified here); loopback can poll fast
        # (0.2 s: vizlab's choice).
        return 0.2 if getattr(self.client, "backend", None) == BackendKind.LOCAL or _is_loopback(self.client) else 60.0

    def wait(self, *, progress: bool = True, poll_s: float | None = None, timeout_s: float | None = None) -> BatchStatus:
        """Poll until every batch is finished (completed, failed, cancelled or expired).

        A tqdm bar counts requests done (completed + failed) out of the total, with the status as
        text. ``timeout_s`` stops waiting (the batches keep running): a ``TimeoutError``.
        """
        from tqdm.auto import tqdm

        poll = self._poll_default() if poll_s is None else poll_s
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        total = sum(b["requests"] for b in self.state["batches"])
        bar = tqdm(total=total, desc="batch", unit="request", disable=not progress)
        try:
            while True:
                status = self.status()
                bar.total = max(status.total, total)
                bar.n = status.completed + status.failed
                bar.set_postfix_str(f"{status.status}, {status.failed} failed", refresh=False)
                bar.refresh()
                if status.done:
                    return status
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"batch run not finished after {timeout_s} s ({status}); call wait() again later")
                time.sleep(poll)
        finally:
            bar.close()

    def cancel(self) -> BatchStatus:
        """Ask the service to cancel every batch still running; finished lines are kept."""
        sdk = _sdk(self.client)
        current = self.status()
        for b in current.batches:
            if b["status"] in ("validating", "in_progress", "finalizing"):
                with _sdk_errors(self.client):
                    sdk.batches.cancel(b["batch_id"])
        return self.status()

    # -- results --

    def _download(self, file_id: str | None) -> list[dict[str, Any]]:
        """The lines of an output/error file, kept beside the manifest so a rerun reads them locally."""
        if not file_id:
            return []
        local = self.manifest_path.parent / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', file_id)}.jsonl"
        if local.exists():
            data = local.read_bytes()
        else:
            with _sdk_errors(self.client):
                data = _sdk(self.client).files.content(file_id).read()
            atomic_write_bytes(local, data)
        lines = []
        for raw in data.splitlines():
            if raw.strip():
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(raw))
        return lines

    def lines(self) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
        """Every ``custom_id`` of the manifest: (the output line, None) or (None, why it failed).

        For callers that build their own rows (:func:`vizlab.experiments.run_experiment`).
        """
        status = self.status()
        if not status.done:
            raise BatchNotFinishedError(
                f"the batch run is not finished ({status}); call wait() first, or cancel() it",
                statuses={b["batch_id"]: b["status"] for b in status.batches},
            )
        manifest = read_json(self.manifest_path)
        found: dict[str, dict[str, Any]] = {}
        for b in status.batches:
            for line in self._download(b["output_file_id"]) + self._download(b["error_file_id"]):
                if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
                    found[line["custom_id"]] = line
        out: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
        for custom_id, fields in manifest["rows"].items():
            got = found.get(custom_id)
            if fields.get("encode_error"):
                out[custom_id] = (None, fields["encode_error"])
            elif got is None:
                out[custom_id] = (None, NOT_PROCESSED)
            else:
                error = _line_error(got)
                out[custom_id] = (got if error is None else None, error)
        return out

    def records(self) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
        """Every ``custom_id`` of the manifest: (its record, None) or (None, why it failed); see
        :func:`record_from_completion`. A batch reports no per-request latency."""
        out: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
        for custom_id, (line, error) in self.lines().items():
            if line is None:
                out[custom_id] = (None, error)
                continue
            response = line["response"]
            request_id = response.get("request_id") or line.get("id")
            out[custom_id] = (record_from_completion(response["body"], None, request_id), None)
        return out


def _is_loopback(client: Any) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(str(getattr(client, "endpoint", ""))).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _line_error(line: dict[str, Any]) -> str | None:
    """None for a 200 line; otherwise 'HTTP 400 code: message' (or the line's own error)."""
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    if line.get("error"):
        err = line["error"]
        if isinstance(err, dict):
            return redact(f"{err.get('code')}: {err.get('message')}")
        return redact(str(err))
    if response is None:
        return "the batch line has no response"
    status = response.get("status_code")
    if status == 200:
        return None
    body = response.get("body")
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return redact(f"HTTP {status} {err.get('code')}: {err.get('message')}")
    return redact(f"HTTP {status}: {json.dumps(body)[:300]}")
