"""Detail experiments through the Batch API: half price, within a 24-hour window, resumable.

The flow is the service's Batch API how-to (Azure "Getting started with Azure OpenAI global batch
deployments", learn.microsoft.com/azure/ai-foundry/openai/how-to/batch, and OpenAI's Batch guide,
platform.openai.com/docs/guides/batch; both read 2026 from stored copies):

1. :func:`build_batch` writes JSONL input files, one request per line
   ``{"custom_id", "method": "POST", "url", "body": {model, messages, max_tokens}}``, plus a
   manifest (``manifest.json``) that maps every ``custom_id`` to the experiment row it stands for.
2. :func:`submit` uploads each file (``files.create(purpose="batch")``) and creates its batch
   (``batches.create(completion_window="24h")``), saving the ids to a state file at once.
3. :meth:`BatchRun.wait` polls with a progress bar; :meth:`BatchRun.attach` picks a run up again
   from the state file after a kernel restart; :meth:`BatchRun.cancel` cancels it.
4. :meth:`BatchRun.results` downloads the output and error files and returns the table
   :func:`vizlab.experiments.run_detail_experiment` returns (same columns first, rows built by
   the same :func:`experiment_row`), plus ``standard_cost``,
   ``estimated_cost``, ``custom_id`` and ``batch_id``.

:func:`run_batch_experiment` does all four in one call and resumes from its state file.

Trade-offs, on purpose:

* **One deployment per file.** Azure requires the same Global Batch deployment on every line of a
  file (batch-python how-to, above), so requests are grouped by deployment, then split by the
  per-file limits (:data:`OPENAI_LIMITS`, :data:`AZURE_LIMITS`).
* **``url`` and ``endpoint``**: Azure's how-to uses ``/chat/completions`` with the deployment name
  in ``body.model``; OpenAI uses ``/v1/chat/completions``. The built-in backend speaks Azure's
  protocol, so it gets Azure's form; ``backend="openai"`` clients get OpenAI's.
* **The manifest is the truth, the ``custom_id`` a readable key**:
  ``vz1|<first 16 hex of the image SHA-256>|<detail>|q<question index>|<deployment>`` (a ``|n``
  suffix if the same image is asked the same thing twice). Rows are rebuilt from the manifest
  alone (no images needed), so collection works after a restart.
* **Costs.** ``cost`` is the reported usage at the Batch price (``batch=True``: 50 % off, see
  :data:`vizlab.pricing.BATCH_DISCOUNT`); ``standard_cost`` is the same usage at the standard
  price; ``estimated_cost`` is vizlab's estimate made before sending (prompt plus ``max_tokens``
  as an upper bound on output), at the Batch price. There is no per-request latency in a batch:
  ``latency_s`` is empty.
* **Nothing dropped.** A line in the error file is a row with ``error`` set; a line in neither file
  (the batch was cancelled, expired or failed validation) is a row with ``error`` "not processed
  (...)"; an image that could not be encoded is a row with its encoding error and is not sent.
* The state file holds ids and paths only, never a key; it is replaced atomically (write a
  temporary file, fsync, ``os.replace``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from vizlab.errors import VizlabError, redact
from vizlab.wire import AZURE_LIMITS, OPENAI_LIMITS, BatchLimits

if TYPE_CHECKING:
    import pandas as pd

    from vizlab.client import Client
    from vizlab.datasets import LabelledImage

__all__ = [
    "AZURE_LIMITS",
    "BATCH_COLUMNS",
    "COLUMNS",
    "OPENAI_LIMITS",
    "BatchInput",
    "BatchLimits",
    "BatchNotFinishedError",
    "BatchRequest",
    "BatchRun",
    "BatchStatus",
    "batch_requests",
    "build_batch",
    "experiment_row",
    "parse_custom_id",
    "reported_cost",
    "run_batch_experiment",
    "submit",
]

_MANIFEST_VERSION = 1
_STATE_VERSION = 1
_CUSTOM_ID_VERSION = "vz1"
TERMINAL = ("completed", "failed", "cancelled", "expired")
NOT_PROCESSED = "not processed (batch cancelled/expired)"


# The per-file limits are wire facts shared with the built-in backend: they live in vizlab.wire.

# The columns of a detail-experiment table (vizlab.experiments.run_detail_experiment and
# BatchRun.results share them); defined here, below experiments, so the layers point one way.
COLUMNS = [
    "image_id",
    "task",
    "detail",
    "model",
    "width",
    "height",
    "estimated_prompt_tokens",
    "image_tokens",
    "reported_prompt_tokens",
    "completion_tokens",
    "cost",
    "latency_s",
    "answer",
    "expected",
    "accuracy",
    "finish_reason",
    "error",
    "cached",
]


def reported_cost(prompt: int, completion: int, token_model: str, *, batch: bool = False) -> float | None:
    """USD of a reported usage at the standard (or Batch) price, or None when the model has no price."""
    from vizlab.errors import VizlabError
    from vizlab.pricing import DEFAULT_PRICES

    try:
        return float(DEFAULT_PRICES.cost(prompt, completion, model=token_model, batch=batch).total)
    except VizlabError:  # no price for this model: tokens, not a made-up cost
        return None


def experiment_row(
    *,
    image_id: str,
    task: str,
    detail: str,
    model: str,
    width: int | None,
    height: int | None,
    expected: str | None,
    estimated_prompt_tokens: int | None,
    image_tokens: int | None,
    estimated_cost: float | None,
    record: dict[str, Any] | None,
    error: str | None,
    cached: bool,
    token_model: str,
    score: Any,
    batch: bool = False,
) -> dict[str, Any]:
    """One row of :data:`COLUMNS` from what is known without the image (shared with :mod:`vizlab.batch`).

    ``record`` is what the service said (answer, finish_reason, reported usage, latency); ``score``
    turns an answer into accuracy (``LabelledImage.score``). ``cost`` is the reported usage at
    the standard price (``batch=True``: the Batch API price), else ``estimated_cost``.
    """
    reported = record.get("reported_prompt_tokens") if record else None
    completion = record.get("completion_tokens") if record else None
    cost: float | None = None
    if error is None:
        if isinstance(reported, int):
            cost = reported_cost(reported, completion or 0, token_model, batch=batch)
        if cost is None and estimated_cost is not None:
            cost = float(estimated_cost)
    answer = record.get("answer") if record else None
    return {
        "image_id": image_id,
        "task": task,
        "detail": detail,
        "model": model,
        "width": width,
        "height": height,
        "estimated_prompt_tokens": estimated_prompt_tokens,
        "image_tokens": image_tokens,
        "reported_prompt_tokens": reported,
        "completion_tokens": completion,
        "cost": cost,
        "latency_s": record.get("latency_s") if record else None,
        "answer": answer,
        "expected": expected,
        "accuracy": None if error is not None else score(answer or ""),
        "finish_reason": record.get("finish_reason") if record else None,
        "error": error,
        "cached": cached,
    }



# Extra columns of a batch results table, after COLUMNS.
_EXTRA_COLUMNS = ["standard_cost", "estimated_cost", "custom_id", "batch_id"]
BATCH_COLUMNS: list[str] = [*COLUMNS, *_EXTRA_COLUMNS]


class BatchNotFinishedError(VizlabError):
    """Results were asked for while a batch is still running."""

    def __init__(self, message: str, *, statuses: dict[str, str]) -> None:
        super().__init__(message)
        self.statuses = statuses


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRequest:
    """One line of a batch: one image (as a URL), one question, one detail, one deployment.

    Made from labelled images by :func:`batch_requests`; make one by hand to send an image URL
    vizlab did not encode (``image_sha256`` then names it; any 64-hex string will do).
    """

    image_id: str
    question: str
    detail: str
    model: str  # deployment name on Azure, model name on OpenAI
    image_url: str
    image_sha256: str
    task: str = "describe"
    expected: str | None = None
    question_index: int = 0
    width: int | None = None
    height: int | None = None
    max_tokens: int | None = 300
    meta: dict[str, Any] = field(default_factory=dict)
    encode_error: str | None = None  # set when the image could not be encoded: not sent
    # The experiment runner's requests: the whole body as built (several images, a system message,
    # parameters) and its cache key as the custom_id.
    body_override: dict[str, Any] | None = None
    custom_id: str | None = None

    def base_custom_id(self) -> str:
        """``vz1|<sha16>|<detail>|q<index>|<deployment>``.

        >>> BatchRequest("a", "?", "low", "gpt-4o", "data:,", "ab" * 32).base_custom_id()
        'vz1|abababababababab|low|q0|gpt-4o'
        """
        if self.custom_id is not None:
            return self.custom_id
        return f"{_CUSTOM_ID_VERSION}|{self.image_sha256[:16]}|{self.detail}|q{self.question_index}|{self.model}"

    def messages(self) -> list[dict[str, Any]]:
        if self.body_override is not None:
            return list(self.body_override["messages"])
        part = {"type": "image_url", "image_url": {"url": self.image_url, "detail": self.detail}}
        return [{"role": "user", "content": [{"type": "text", "text": self.question}, part]}]

    def body(self) -> dict[str, Any]:
        if self.body_override is not None:
            return {**self.body_override, "model": self.model}
        body: dict[str, Any] = {"model": self.model, "messages": self.messages()}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body


def parse_custom_id(custom_id: str) -> dict[str, Any]:
    """The parts of a vizlab ``custom_id``.

    >>> parse_custom_id("vz1|abababababababab|high|q2|gpt-4o-batch|1")
    {'image_sha16': 'abababababababab', 'detail': 'high', 'question_index': 2, 'model': 'gpt-4o-batch', 'duplicate': 1}
    """
    parts = custom_id.split("|")
    if len(parts) not in (5, 6) or parts[0] != _CUSTOM_ID_VERSION or not re.fullmatch(r"q\d+", parts[3]):
        raise ValueError(f"custom_id {custom_id[:80]!r} is not a vizlab batch id ('vz1|sha16|detail|qN|deployment')")
    return {
        "image_sha16": parts[1],
        "detail": parts[2],
        "question_index": int(parts[3][1:]),
        "model": parts[4],
        "duplicate": int(parts[5]) if len(parts) == 6 else 0,
    }


def batch_requests(
    images: Iterable[LabelledImage],
    *,
    details: Iterable[str] = ("low", "high", "auto"),
    deployments: Sequence[str] = ("gpt-4o",),
    questions: Sequence[str] | None = None,
    max_tokens: int | None = 300,
) -> Iterator[BatchRequest]:
    """Every (image, question, detail, deployment) as a :class:`BatchRequest`, images encoded once.

    ``questions=None`` asks each image its own question; otherwise each of ``questions`` is asked
    of every image (``expected`` is kept only where a question is the image's own, since only
    that one has a known answer).
    """
    from vizlab.images import encode_image
    from vizlab.tokens import DETAILS

    details = tuple(details)
    bad = [d for d in details if d not in DETAILS]
    if bad or not details:
        from vizlab.errors import UnknownDetailError

        raise UnknownDetailError(
            f"details={details!r}: each must be one of {', '.join(DETAILS)}", detail=bad[0] if bad else None
        )
    if isinstance(deployments, str):
        deployments = (deployments,)
    for item in images:
        url, sha, error = "", hashlib.sha256(item.id.encode("utf-8")).hexdigest(), None
        width, height = item.image.size
        try:
            encoded = encode_image(item.image, name=item.id)
            url, sha = encoded.data_url, encoded.sha256
        except Exception as e:  # a bad image is a row, not the end of the run
            error = redact(f"{type(e).__name__}: {e}")
        asked = [item.question] if questions is None else list(questions)
        for qi, question in enumerate(asked):
            own = question == item.question
            for deployment in deployments:
                for detail in details:
                    yield BatchRequest(
                        image_id=item.id, question=question, detail=detail, model=deployment, image_url=url,
                        image_sha256=sha, task=item.task if own else "describe",
                        expected=item.answer if own else None, question_index=qi, width=width, height=height,
                        max_tokens=max_tokens, meta=_jsonable(item.meta), encode_error=error,
                    )  # fmt: skip


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    try:
        return cast("dict[str, Any]", json.loads(json.dumps(meta, default=str)))
    except (TypeError, ValueError):
        return {}


# --- files ------------------------------------------------------------------------------------


@dataclass
class BatchInput:
    """The JSONL files of one experiment and the manifest beside them."""

    out_dir: Path
    manifest_path: Path
    files: list[dict[str, Any]]  # {"path", "model", "requests", "bytes"}
    endpoint: str
    count: int  # requests written (encoding failures are in the manifest, not the files)

    @classmethod
    def load(cls, manifest_path: str | os.PathLike[str]) -> BatchInput:
        """Read a manifest written by :func:`build_batch`."""
        path = Path(manifest_path)
        manifest = _read_json(path)
        files = [{**f, "path": str(path.parent / f["name"])} for f in manifest["files"]]
        return cls(path.parent, path, files, manifest["endpoint"], sum(f["requests"] for f in files))

    def manifest(self) -> dict[str, Any]:
        return _read_json(self.manifest_path)

    def __repr__(self) -> str:
        return (
            f"BatchInput({self.count} requests in {len(self.files)} file(s), endpoint {self.endpoint!r}, "
            f"manifest {str(self.manifest_path)!r})"
        )


def _default_endpoint(client: Any) -> str:
    return "/v1/chat/completions" if getattr(client, "backend", None) == "openai" else "/chat/completions"


def _default_limits(client: Any) -> BatchLimits:
    backend = getattr(client, "backend", None)
    return AZURE_LIMITS if backend in ("azure", "local") else OPENAI_LIMITS


def build_batch(
    requests: Iterable[BatchRequest | LabelledImage],
    out_dir: str | os.PathLike[str],
    *,
    client: Client | None = None,
    details: Iterable[str] = ("low", "high", "auto"),
    deployments: Sequence[str] | None = None,
    questions: Sequence[str] | None = None,
    max_tokens: int | None = 300,
    endpoint: str | None = None,
    token_model: str | None = None,
    max_requests: int | None = None,
    max_bytes: int | None = None,
) -> BatchInput:
    """Write Batch input JSONL file(s) and ``manifest.json`` under ``out_dir``.

    ``requests`` are :class:`BatchRequest` objects, or labelled images (then ``details``,
    ``deployments``, ``questions`` and ``max_tokens`` say what to ask; see :func:`batch_requests`).
    ``client`` supplies the defaults: its deployment, its ``token_model`` for estimates, the
    endpoint form and the per-file limits of its service (without a client: OpenAI's, the smaller);
    ``max_requests`` / ``max_bytes`` override those limits (tests split small this way).

    >>> build_batch(detail_benchmark(), "batches/run1", client=connect())  # doctest: +SKIP
    BatchInput(42 requests in 1 file(s), ...)
    """
    from vizlab.datasets import LabelledImage

    limits = _default_limits(client)
    max_requests = limits.max_requests if max_requests is None else max_requests
    max_bytes = limits.max_bytes if max_bytes is None else max_bytes
    if max_requests < 1 or max_bytes < 1:
        raise ValueError(f"max_requests={max_requests} and max_bytes={max_bytes} must both be >= 1")
    endpoint = endpoint or _default_endpoint(client)
    token_model = token_model or str(getattr(client, "token_model", "") or "gpt-4o")
    if deployments is None:
        deployments = (str(getattr(client, "deployment", "") or "gpt-4o"),)
    details = tuple(details)
    items = list(requests)
    labelled = [x for x in items if isinstance(x, LabelledImage)]
    reqs = [x for x in items if isinstance(x, BatchRequest)]
    if len(labelled) + len(reqs) != len(items):
        raise TypeError("build_batch takes BatchRequest objects or vizlab.datasets.LabelledImage objects")
    reqs += list(batch_requests(labelled, details=details, deployments=deployments, questions=questions,
                                max_tokens=max_tokens))  # fmt: skip

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    lines_by_model: dict[str, list[tuple[str, bytes]]] = {}
    for req in reqs:
        custom_id = base = req.base_custom_id()
        n = 0
        while custom_id in rows:
            n += 1
            custom_id = f"{base}|{n}"
        rows[custom_id] = _manifest_row(req, token_model)
        if req.encode_error is not None:
            continue
        line = {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": req.body()}
        encoded = json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        if len(encoded) > max_bytes:
            raise ValueError(
                f"the request for image {req.image_id!r} ({req.detail}) is {len(encoded):,} bytes, more than a whole "
                f"batch file may hold (max_bytes={max_bytes:,}); send a smaller image (vizlab.encode_image(..., fit=...))"
            )
        lines_by_model.setdefault(req.model, []).append((custom_id, encoded))

    files: list[dict[str, Any]] = []
    for model, lines in lines_by_model.items():
        chunk: list[bytes] = []
        size = 0
        for _, encoded in lines:
            if chunk and (len(chunk) >= max_requests or size + len(encoded) > max_bytes):
                files.append(_write_chunk(out, model, len(files), chunk))
                chunk, size = [], 0
            chunk.append(encoded)
            size += len(encoded)
        if chunk:
            files.append(_write_chunk(out, model, len(files), chunk))

    manifest = {
        "version": _MANIFEST_VERSION,
        "endpoint": endpoint,
        "token_model": token_model,
        "limits": {"max_requests": max_requests, "max_bytes": max_bytes},
        "experiment": _fingerprint([r.image_id for r in reqs], details, deployments, max_tokens, questions),
        "files": [{k: v for k, v in f.items() if k != "path"} for f in files],
        "rows": rows,
    }
    manifest_path = out / "manifest.json"
    _write_json_atomic(manifest_path, manifest)
    return BatchInput(out, manifest_path, files, endpoint, sum(f["requests"] for f in files))


def _fingerprint(
    image_ids: Sequence[str], details: Sequence[str], deployments: Sequence[str], max_tokens: int | None,
    questions: Sequence[str] | None,
) -> dict[str, Any]:  # fmt: skip
    """What identifies an experiment cheaply (no image encoding), to refuse resuming another one."""
    ids = hashlib.sha256("\n".join(dict.fromkeys(image_ids)).encode("utf-8")).hexdigest()
    return {
        "image_ids_sha256": ids,
        "details": list(details),
        "deployments": list(deployments),
        "max_tokens": max_tokens,
        "questions": None if questions is None else list(questions),
    }


def _manifest_row(req: BatchRequest, token_model: str) -> dict[str, Any]:
    row = {k: v for k, v in asdict(req).items() if k != "image_url"}
    row["estimated_prompt_tokens"] = row["image_tokens"] = None
    if req.encode_error is None:
        from vizlab.tokens import estimate_request

        try:
            estimate = estimate_request(req.messages(), model=token_model, max_tokens=req.max_tokens)
            row["estimated_prompt_tokens"] = estimate.prompt_tokens
            row["image_tokens"] = estimate.image_tokens
        except Exception:  # an estimate is a nicety (a hand-made broken URL cannot be counted)
            pass
    return row


def _write_chunk(out: Path, model: str, index: int, lines: list[bytes]) -> dict[str, Any]:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model)[:60] or "model"
    name = f"batch-{index:03d}-{safe}.jsonl"
    data = b"".join(lines)
    _write_bytes_atomic(out / name, data)
    return {"name": name, "path": str(out / name), "model": model, "requests": len(lines), "bytes": len(data)}


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_bytes_atomic(path, json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return cast("dict[str, Any]", json.load(fh))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise VizlabError(f"{path} could not be read as JSON ({type(e).__name__}: {e}); delete it to start over") from e


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
        state = _read_json(path)
        if Path(state.get("manifest", "")).resolve() != batch_input.manifest_path.resolve():
            raise VizlabError(
                f"state file {path} belongs to another batch (manifest {state.get('manifest')}); "
                "pass another state_path, or BatchRun.attach() it"
            )
    else:
        state = {
            "version": _STATE_VERSION,
            "manifest": str(batch_input.manifest_path.resolve()),
            "endpoint": batch_input.endpoint,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "batches": [],
        }
        _write_json_atomic(path, state)
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
                completion_window="24h",
                **({"metadata": metadata} if metadata else {}),
            )
        state["batches"].append(
            {"file": entry["name"], "input_file_id": uploaded.id, "batch_id": batch.id, "requests": entry["requests"]}
        )
        _write_json_atomic(path, state)  # at once: a restart now can attach to this batch
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
        self.state = _read_json(self.state_path)
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
        return 0.2 if getattr(self.client, "backend", None) == "local" or _is_loopback(self.client) else 60.0

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
            _write_bytes_atomic(local, data)
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
        manifest = _read_json(self.manifest_path)
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

    def results(self) -> pd.DataFrame:
        """One row per request in the manifest, in :data:`BATCH_COLUMNS` (see the module docstring)."""
        import pandas as pd

        status = self.status()
        if not status.done:
            raise BatchNotFinishedError(
                f"the batch run is not finished ({status}); call wait() first, or cancel() it",
                statuses={b["batch_id"]: b["status"] for b in status.batches},
            )
        manifest = _read_json(self.manifest_path)
        token_model = manifest["token_model"]
        by_file = {b["file"]: b["batch_id"] for b in self.state["batches"]}
        answers: dict[str, tuple[dict[str, Any] | None, str]] = {}
        why_missing: dict[str, str] = {}
        for b in status.batches:
            for line in self._download(b["output_file_id"]) + self._download(b["error_file_id"]):
                if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
                    answers[line["custom_id"]] = (line, b["batch_id"])
            if b["status"] == "failed":
                first = b["errors"][0] if b["errors"] else {}
                why_missing[b["batch_id"]] = redact(
                    f"not processed (batch failed validation: {first.get('code')}: {first.get('message')}"
                    + (f" at line {first['line']}" if first.get("line") else "") + ")"
                )
        # Which batch each custom_id went to: read the input files named in the manifest.
        batch_of: dict[str, str] = {}
        for entry in manifest["files"]:
            batch_id = by_file.get(entry["name"], "")
            with open(self.manifest_path.parent / entry["name"], "rb") as fh:
                for raw in fh:
                    match = re.match(rb'\{"custom_id":("(?:[^"\\]|\\.)*")', raw)
                    if match:
                        batch_of[json.loads(match.group(1))] = batch_id
        rows = []
        for custom_id, fields in manifest["rows"].items():
            answer, batch_id = answers.get(custom_id, (None, batch_of.get(custom_id, "")))
            rows.append(_batch_row(custom_id, fields, answer, batch_id, why_missing.get(batch_id), token_model))
        frame = pd.DataFrame(rows, columns=BATCH_COLUMNS)
        frame.attrs["manifest"] = str(self.manifest_path)
        frame.attrs["batch_ids"] = self.batch_ids
        return frame


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


def _record_from_line(line: dict[str, Any]) -> dict[str, Any]:
    body = line["response"]["body"]
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    usage = body.get("usage") or {}
    return {
        "answer": message.get("content") or "",
        "finish_reason": choice.get("finish_reason"),
        "reported_prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "latency_s": None,  # a batch reports no per-request latency
    }


def _batch_row(
    custom_id: str,
    fields: dict[str, Any],
    line: dict[str, Any] | None,
    batch_id: str,
    why_missing: str | None,
    token_model: str,
) -> dict[str, Any]:
    from PIL import Image

    from vizlab.datasets import LabelledImage
    from vizlab.pricing import DEFAULT_PRICES

    record: dict[str, Any] | None = None
    if fields.get("encode_error"):
        error: str | None = fields["encode_error"]
    elif line is None:
        error = why_missing or NOT_PROCESSED
    else:
        error = _line_error(line)
        if error is None:
            try:
                record = _record_from_line(line)
            except (KeyError, TypeError, AttributeError) as e:
                error = f"unreadable batch output line ({type(e).__name__}: {e})"
    # A stand-in image: scoring needs task, answer and meta, never the pixels.
    stand_in = LabelledImage(fields["image_id"], Image.new("RGB", (1, 1)), fields["task"], fields["question"],
                             fields["expected"] or "", fields.get("meta") or {})  # fmt: skip
    prompt = fields.get("estimated_prompt_tokens")
    estimated_cost = None
    if isinstance(prompt, int):
        with contextlib.suppress(VizlabError):
            estimated_cost = float(DEFAULT_PRICES.cost(prompt, fields.get("max_tokens") or 0, model=token_model,
                                                       batch=True).total)  # fmt: skip
    row = experiment_row(
        image_id=fields["image_id"], task=fields["task"], detail=fields["detail"], model=fields["model"],
        width=fields.get("width"), height=fields.get("height"), expected=fields["expected"],
        estimated_prompt_tokens=prompt, image_tokens=fields.get("image_tokens"), estimated_cost=estimated_cost,
        record=record, error=error, cached=False, token_model=token_model,
        score=stand_in.score if fields["expected"] is not None else (lambda answer: None), batch=True,
    )  # fmt: skip
    reported = record.get("reported_prompt_tokens") if record else None
    row["standard_cost"] = (
        reported_cost(reported, (record or {}).get("completion_tokens") or 0, token_model)
        if error is None and isinstance(reported, int)
        else None
    )
    row["estimated_cost"] = estimated_cost
    row["custom_id"] = custom_id
    row["batch_id"] = batch_id or None
    return row


# --- one call ---------------------------------------------------------------------------------


def run_batch_experiment(
    client: Client,
    images: Iterable[LabelledImage],
    *,
    details: Iterable[str] = ("low", "high", "auto"),
    state_path: str | os.PathLike[str] = ".vizlab-cache/batches/batch-state.json",
    out_dir: str | os.PathLike[str] | None = None,
    deployments: Sequence[str] | None = None,
    max_tokens: int | None = 300,
    progress: bool = True,
    poll_s: float | None = None,
    timeout_s: float | None = None,
    max_requests: int | None = None,
    max_bytes: int | None = None,
) -> pd.DataFrame:
    """Build, submit, wait for and collect a detail experiment as a batch; resume from ``state_path``.

    If ``state_path`` exists, the run it records is attached and awaited (nothing is resubmitted),
    after checking that it is the same experiment (image ids, details, deployments, max_tokens);
    delete the state file to start over. ``out_dir`` (default: beside the state file) holds the
    input files, the manifest and the downloaded results.

    >>> df = run_batch_experiment(connect(), detail_benchmark())  # doctest: +SKIP
    >>> summarize(df)                                               # doctest: +SKIP
    """
    state = Path(state_path)
    out = Path(out_dir) if out_dir is not None else state.parent / (state.stem + "-files")
    details = tuple(details)
    items = list(images)
    deployments = tuple(deployments) if deployments is not None else (str(client.deployment),)
    wanted = _fingerprint([i.id for i in items], details, deployments, max_tokens, None)
    if state.exists():
        run = BatchRun.attach(state, client)
        manifest = _read_json(run.manifest_path)
        if manifest.get("experiment") != wanted or len(run.state["batches"]) < len(manifest["files"]):
            if manifest.get("experiment") != wanted:
                raise VizlabError(
                    f"state file {state} belongs to a different experiment (other images, details, deployments "
                    "or max_tokens); pass another state_path, or delete it to start over"
                )
            run = submit(client, BatchInput.load(run.manifest_path), state_path=state)  # finish a half submission
    else:
        batch_input = build_batch(items, out, client=client, details=details, deployments=deployments,
                                  max_tokens=max_tokens, max_requests=max_requests, max_bytes=max_bytes)  # fmt: skip
        run = submit(client, batch_input, state_path=state)
    run.wait(progress=progress, poll_s=poll_s, timeout_s=timeout_s)
    return run.results()
