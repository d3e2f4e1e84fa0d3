"""Batch API input: requests as JSONL files and their manifest.

The lower half of :mod:`vizlab.batch` (:mod:`vizlab.batch.run` submits, follows and collects).
``custom_id`` values are stable and readable; the files are split by deployment and by the
service's per-file limits (:mod:`vizlab.models.batch`); ``manifest.json`` maps every ``custom_id``
to what was asked, so outcomes are read back without the images. Writes are atomic (temp file, fsync,
``os.replace``, :func:`vizlab.conversation.storage.atomic_write_bytes`): a crash leaves the old file or
the new one. Details: docs/internals.md#batch
"""


from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from vizlab.client.targets import BackendKind
from vizlab.conversation.storage import atomic_write_bytes
from vizlab.errors import VizlabError, redact
from vizlab.models.batch import AZURE_LIMITS, OPENAI_LIMITS, BatchLimits

if TYPE_CHECKING:
    from vizlab.client.core import Client
    from vizlab.datasets import LabelledImage

__all__ = [
    "NOT_PROCESSED",
    "STATE_VERSION",
    "TERMINAL",
    "BatchInput",
    "BatchNotFinishedError",
    "BatchRequest",
    "batch_requests",
    "build_batch",
    "fingerprint",
    "parse_custom_id",
    "read_json",
    "write_json_atomic",
]

_MANIFEST_VERSION = 1
STATE_VERSION = 1
_CUSTOM_ID_VERSION = "vz1"
TERMINAL = ("completed", "failed", "cancelled", "expired")
NOT_PROCESSED = "not processed (batch cancelled/expired)"


# The per-file limits are wire facts shared with the built-in backend: they live in vizlab.models.batch.


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
    from vizlab.images.encode import encode_image
    from vizlab.tokens.image import DETAILS

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
        manifest = read_json(path)
        files = [{**f, "path": str(path.parent / f["name"])} for f in manifest["files"]]
        return cls(path.parent, path, files, manifest["endpoint"], sum(f["requests"] for f in files))

    def manifest(self) -> dict[str, Any]:
        return read_json(self.manifest_path)

    def __repr__(self) -> str:
        return (
            f"BatchInput({self.count} requests in {len(self.files)} file(s), endpoint {self.endpoint!r}, "
            f"manifest {str(self.manifest_path)!r})"
        )


# Azure's batch how-to: /chat/completions with the deployment in body.model, the same deployment on
# every line of a file; OpenAI: /v1/chat/completions (sources: vizlab.batch.run, completion_window).
def _default_endpoint(client: Any) -> str:
    return "/v1/chat/completions" if getattr(client, "backend", None) == BackendKind.OPENAI else "/chat/completions"


def _default_limits(client: Any) -> BatchLimits:
    backend = getattr(client, "backend", None)
    return AZURE_LIMITS if backend in (BackendKind.AZURE, BackendKind.LOCAL) else OPENAI_LIMITS


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
    reqs = _all_requests(requests, details, deployments, questions, max_tokens)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, lines_by_model = _encode_lines(reqs, endpoint, token_model, client, max_bytes)
    files = _write_files(out, lines_by_model, max_requests, max_bytes)
    manifest = {
        "version": _MANIFEST_VERSION,
        "endpoint": endpoint,
        "token_model": token_model,
        "limits": {"max_requests": max_requests, "max_bytes": max_bytes},
        "experiment": fingerprint([r.image_id for r in reqs], details, deployments, max_tokens, questions),
        "files": [{k: v for k, v in f.items() if k != "path"} for f in files],
        "rows": rows,
    }
    manifest_path = out / "manifest.json"
    write_json_atomic(manifest_path, manifest)
    return BatchInput(out, manifest_path, files, endpoint, sum(f["requests"] for f in files))


def _all_requests(
    requests: Iterable[BatchRequest | LabelledImage], details: tuple[str, ...], deployments: Sequence[str],
    questions: Sequence[str] | None, max_tokens: int | None,
) -> list[BatchRequest]:  # fmt: skip
    """The :class:`BatchRequest` objects given, then those the labelled images make."""
    from vizlab.datasets import LabelledImage

    items = list(requests)
    labelled = [x for x in items if isinstance(x, LabelledImage)]
    reqs = [x for x in items if isinstance(x, BatchRequest)]
    if len(labelled) + len(reqs) != len(items):
        raise TypeError("build_batch takes BatchRequest objects or vizlab.datasets.LabelledImage objects")
    return reqs + list(batch_requests(labelled, details=details, deployments=deployments, questions=questions,
                                      max_tokens=max_tokens))  # fmt: skip


def _encode_lines(
    reqs: list[BatchRequest], endpoint: str, token_model: str, client: Any, max_bytes: int
) -> tuple[dict[str, dict[str, Any]], dict[str, list[bytes]]]:
    """The manifest rows by unique ``custom_id``, and each deployment's JSONL lines (one per request
    whose image encoded; the others keep their row with the error)."""
    rows: dict[str, dict[str, Any]] = {}
    lines_by_model: dict[str, list[bytes]] = {}
    for req in reqs:
        custom_id = base = req.base_custom_id()
        n = 0
        while custom_id in rows:
            n += 1
            custom_id = f"{base}|{n}"
        rows[custom_id] = _manifest_row(req, token_model)
        if req.encode_error is not None:
            continue
        line = {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": _fit_limit(req.body(), client)}
        encoded = json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        if len(encoded) > max_bytes:
            raise ValueError(
                f"the request for image {req.image_id!r} ({req.detail}) is {len(encoded):,} bytes, more than a whole "
                f"batch file may hold (max_bytes={max_bytes:,}); send a smaller image (vizlab.encode_image(..., fit=...))"
            )
        lines_by_model.setdefault(req.model, []).append(encoded)
    return rows, lines_by_model


def _write_files(out: Path, lines_by_model: dict[str, list[bytes]], max_requests: int, max_bytes: int) -> list[dict[str, Any]]:
    """Each deployment's lines in files of at most ``max_requests`` lines and ``max_bytes`` bytes."""
    files: list[dict[str, Any]] = []
    for model, lines in lines_by_model.items():
        chunk: list[bytes] = []
        size = 0
        for encoded in lines:
            if chunk and (len(chunk) >= max_requests or size + len(encoded) > max_bytes):
                files.append(_write_chunk(out, model, len(files), chunk))
                chunk, size = [], 0
            chunk.append(encoded)
            size += len(encoded)
        if chunk:
            files.append(_write_chunk(out, model, len(files), chunk))
    return files


def fingerprint(
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


def _fit_limit(body: dict[str, Any], client: Any) -> dict[str, Any]:
    """``body`` with ``max_completion_tokens`` for ``max_tokens`` where the deployment's model is a
    reasoning model (it refuses max_tokens, so a batch line with it fails): by the client's model
    for that deployment (known, or learned from a reply), else by the deployment's name."""
    if "max_tokens" not in body or client is None:
        return body
    from vizlab.client.params import model_info_for

    deployment = str(body.get("model") or "")
    info = getattr(client, "model_info", None) if deployment == getattr(client, "deployment", None) else None
    info = info or model_info_for([deployment])
    if info is None or "max_tokens" not in info.rejected_params():
        return body
    fitted = dict(body)
    fitted["max_completion_tokens"] = fitted.pop("max_tokens")
    return fitted


def _manifest_row(req: BatchRequest, token_model: str) -> dict[str, Any]:
    row = {k: v for k, v in asdict(req).items() if k != "image_url"}
    row["estimated_prompt_tokens"] = row["image_tokens"] = None
    if req.encode_error is None:
        from vizlab.tokens.request import estimate_request

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
    atomic_write_bytes(out / name, data)
    return {"name": name, "path": str(out / name), "model": model, "requests": len(lines), "bytes": len(data)}


def write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8"))


def read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return cast("dict[str, Any]", json.load(fh))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise VizlabError(f"{path} could not be read as JSON ({type(e).__name__}: {e}); delete it to start over") from e
