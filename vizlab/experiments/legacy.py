"""Detail comparisons over image sets, as pandas tables, cached on disk and resumable.

:func:`run_detail_experiment` asks each question once per ``detail``; :func:`summarize` folds the
rows per detail. Trade-offs: one append-only JSONL cache (a kill loses only requests in flight;
the whole log is read on open); only what the service said is cached, so estimates, costs and
scores are recomputed; loopback endpoints share a cache key without their port; failed requests
are rows, not cache entries. Details: docs/internals.md#experiments
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vizlab.batch.files import COLUMNS, experiment_row
from vizlab.errors import redact
from vizlab.experiments.cache import ResultCache

if TYPE_CHECKING:
    import pandas as pd

    from vizlab.client.core import Client
    from vizlab.datasets import LabelledImage
    from vizlab.images.encode import EncodedImage

__all__ = ["Trial", "backend_identity", "run_detail_experiment", "summarize"]

# Bump when the meaning of a cached record changes; old records then simply miss.
_KEY_VERSION = 1
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}



# --- trials and keys --------------------------------------------------------------------------


def backend_identity(client: Any) -> str:
    """The backend part of a cache key: kind and endpoint, never a key.

    >>> class C: backend, endpoint = "azure", "http://127.0.0.1:51234/"
    >>> backend_identity(C())
    'azure|loopback'
    """
    kind = str(getattr(client, "backend", "") or "")
    endpoint = str(getattr(client, "endpoint", "") or "")
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if host in _LOOPBACK_HOSTS or host.startswith("127."):
        where = "loopback"
    elif host:
        # Scheme, host, port and path only: no user info, query or fragment.
        netloc = host + (f":{parts.port}" if parts.port else "")
        where = f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"
    else:
        where = endpoint
    return f"{kind}|{where}"


@dataclass(frozen=True)
class Trial:
    """One request of an experiment: one image, one question, one detail, one deployment."""

    image_id: str
    question: str
    detail: str
    model: str  # the deployment (Azure) or model name the request goes to
    task: str
    expected: str
    max_tokens: int | None = 300
    backend: str = ""  # backend_identity(client)

    def key(self, image_sha256: str) -> str:
        """Stable cache key: SHA-256 of canonical JSON of what decides the answer.

        >>> t = Trial("a", "What text?", "low", "gpt-4o", "read_text", "K7RF")
        >>> t.key("0" * 64) == Trial("b", "What text?", "low", "gpt-4o", "read_text", "X").key("0" * 64)
        True
        """
        canonical = json.dumps(
            {
                "v": _KEY_VERSION,
                "image_sha256": image_sha256,
                "question": self.question,
                "detail": self.detail,
                "deployment": self.model,
                "max_tokens": self.max_tokens,
                "backend": self.backend,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- running ----------------------------------------------------------------------------------


@dataclass
class _Job:
    index: int
    item: LabelledImage
    trial: Trial
    encoded: EncodedImage | None
    encode_error: BaseException | None
    key: str | None


def _error_text(e: BaseException) -> str:
    return redact(f"{type(e).__name__}: {e}")


def _messages(question: str, encoded: EncodedImage, detail: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": question}, encoded.part(detail)]}]


def _estimate(messages: list[dict[str, Any]], token_model: str, max_tokens: int | None) -> Any:
    from vizlab.tokens.request import estimate_request

    try:
        return estimate_request(messages, model=token_model, max_tokens=max_tokens)
    except Exception:  # an estimate is a nicety; never let it sink a row
        return None


def _record_from_reply(reply: Any, trial: Trial, job: _Job) -> dict[str, Any]:
    usage = getattr(reply, "usage", None)
    assert job.encoded is not None
    return {
        "image_id": trial.image_id,
        "image_sha256": job.encoded.sha256,
        "question": trial.question,
        "detail": trial.detail,
        "model": trial.model,
        "max_tokens": trial.max_tokens,
        "backend": trial.backend,
        "answer": reply.text,
        "finish_reason": reply.finish_reason,
        "reported_prompt_tokens": getattr(usage, "prompt_tokens", None),
        "completion_tokens": getattr(usage, "completion_tokens", None),
        "latency_s": float(reply.latency_s),
        "reply_model": getattr(reply, "model", None),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _row(
    job: _Job, record: dict[str, Any] | None, *, error: str | None, cached: bool, token_model: str
) -> dict[str, Any]:
    item, trial = job.item, job.trial
    width, height = item.image.size
    estimate = None
    if job.encoded is not None:
        estimate = _estimate(_messages(trial.question, job.encoded, trial.detail), token_model, trial.max_tokens)
    return experiment_row(
        image_id=item.id,
        task=item.task,
        detail=trial.detail,
        model=trial.model,
        width=width,
        height=height,
        expected=item.answer,
        estimated_prompt_tokens=None if estimate is None else estimate.prompt_tokens,
        image_tokens=None if estimate is None else estimate.image_tokens,
        estimated_cost=None if estimate is None or estimate.cost is None else float(estimate.cost.total),
        record=record,
        error=error,
        cached=cached,
        token_model=token_model,
        score=item.score,
    )


def _jobs(
    images: Iterable[LabelledImage], details: tuple[str, ...], *, model: str, backend: str, max_tokens: int | None
) -> Iterator[_Job]:
    """Trials in order, images encoded lazily (one at a time, as the iterable yields them)."""
    from vizlab.images.encode import encode_image

    index = 0
    for item in images:
        encoded: EncodedImage | None = None
        encode_error: BaseException | None = None
        try:
            encoded = encode_image(item.image, name=item.id)
        except Exception as e:  # a bad image is a row, not the end of the run
            encode_error = e
        for detail in details:
            trial = Trial(item.id, item.question, detail, model, item.task, item.answer, max_tokens, backend)
            key = trial.key(encoded.sha256) if encoded is not None else None
            yield _Job(index, item, trial, encoded, encode_error, key)
            index += 1


def run_detail_experiment(
    client: Client,
    images: Iterable[LabelledImage],
    *,
    details: Iterable[str] = ("low", "high", "auto"),
    cache_dir: str | os.PathLike[str] = ".vizlab-cache/experiments",
    max_tokens: int | None = 300,
    progress: bool = True,
    concurrency: int = 1,
    on_error: str = "record",
) -> pd.DataFrame:
    """Ask every image's question at every ``detail``; one row per (image, detail), see :data:`COLUMNS`.

    Results already in the cache under ``cache_dir`` are reused (``cached`` True) and cost
    nothing; only missing keys are sent, so a rerun after a kill resumes where it stopped.
    ``concurrency`` > 1 sends that many requests at once from a thread pool. ``on_error``:
    ``"record"`` turns a failed request into a row with ``error`` set (not cached, retried next
    run); ``"raise"`` re-raises it (what finished before stays cached).

    >>> df = run_detail_experiment(connect(), detail_benchmark())  # doctest: +SKIP
    >>> summarize(df)                                               # doctest: +SKIP
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from vizlab.tokens.image import DETAILS

    details = tuple(details)
    bad = [d for d in details if d not in DETAILS]
    if bad or not details:
        from vizlab.errors import UnknownDetailError

        raise UnknownDetailError(
            f"details={details!r}: each must be one of {', '.join(DETAILS)}", detail=bad[0] if bad else None
        )
    if on_error not in ("record", "raise"):
        raise ValueError(f"on_error={on_error!r}: use 'record' (a row with the error) or 'raise'")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r}: use a whole number >= 1")

    cache = ResultCache(cache_dir)
    token_model = str(getattr(client, "token_model", "gpt-4o"))
    model = str(getattr(client, "deployment", ""))
    identity = backend_identity(client)
    total = len(images) * len(details) if isinstance(images, Sized) else None
    rows: dict[int, dict[str, Any]] = {}
    counts = {"cached": 0, "sent": 0, "errors": 0}

    def run_one(job: _Job) -> dict[str, Any]:
        if job.encode_error is not None:
            if on_error == "raise":
                raise job.encode_error
            return _row(job, None, error=_error_text(job.encode_error), cached=False, token_model=token_model)
        assert job.key is not None and job.encoded is not None
        record = cache.get(job.key)
        if record is not None:
            return _row(job, record, error=None, cached=True, token_model=token_model)
        messages = _messages(job.trial.question, job.encoded, job.trial.detail)
        try:
            reply = client.chat(messages, max_tokens=max_tokens)
        except Exception as e:
            if on_error == "raise":
                raise
            return _row(job, None, error=_error_text(e), cached=False, token_model=token_model)
        record = _record_from_reply(reply, job.trial, job)
        cache.put(job.key, record)
        return _row(job, record, error=None, cached=False, token_model=token_model)

    bar = tqdm(total=total, desc="detail experiment", unit="request", disable=not progress)

    def done(job: _Job, row: dict[str, Any]) -> None:
        rows[job.index] = row
        if row["error"] is not None:
            counts["errors"] += 1
        elif row["cached"]:
            counts["cached"] += 1
        else:
            counts["sent"] += 1
        bar.set_postfix(counts, refresh=False)
        bar.update(1)

    try:
        jobs = _jobs(images, details, model=model, backend=identity, max_tokens=max_tokens)
        if concurrency == 1:
            for job in jobs:
                done(job, run_one(job))
        else:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vizlab-experiment") as pool:
                pending: dict[Future[dict[str, Any]], _Job] = {}
                try:
                    for job in jobs:
                        # Keep a bounded number in flight so images are encoded as they are needed.
                        while len(pending) >= 2 * concurrency:
                            _drain(pending, done, FIRST_COMPLETED)
                        pending[pool.submit(run_one, job)] = job
                    while pending:
                        _drain(pending, done, FIRST_COMPLETED)
                except BaseException:
                    for future in pending:
                        future.cancel()
                    raise
    finally:
        bar.close()

    frame = pd.DataFrame([rows[i] for i in sorted(rows)], columns=COLUMNS)
    frame.attrs["cache"] = str(cache.file)
    return frame


def _drain(pending: dict[Future[dict[str, Any]], _Job], done: Any, when: str) -> None:
    finished, _ = wait(list(pending), return_when=when)
    for future in finished:
        job = pending.pop(future)
        done(job, future.result())


# --- summaries --------------------------------------------------------------------------------


def summarize(df: pd.DataFrame, by: str | Iterable[str] = ("detail", "task")) -> pd.DataFrame:
    """One row per group (default: detail and task) of a :func:`run_detail_experiment` table.

    Columns: ``n`` (rows), ``errors``, ``accuracy`` (mean over scored, successful rows),
    ``prompt_tokens`` (mean reported, else estimated), ``image_tokens`` (mean estimated),
    ``total_cost``, ``median_latency_s`` and ``cost_per_1000`` (mean cost x 1000) over successful
    rows. Pass ``by="detail"`` for one row per detail.
    """
    import pandas as pd

    keys = [by] if isinstance(by, str) else list(by)
    ok = df["error"].isna()
    work = pd.DataFrame(
        {
            **{k: df[k] for k in keys},
            "n": 1,
            "errors": (~ok).astype(int),
            "accuracy": pd.to_numeric(df["accuracy"], errors="coerce").where(ok),
            "prompt_tokens": pd.to_numeric(df["reported_prompt_tokens"], errors="coerce")
            .fillna(pd.to_numeric(df["estimated_prompt_tokens"], errors="coerce"))
            .where(ok),
            "image_tokens": pd.to_numeric(df["image_tokens"], errors="coerce").where(ok),
            "cost": pd.to_numeric(df["cost"], errors="coerce").where(ok),
            "latency_s": pd.to_numeric(df["latency_s"], errors="coerce").where(ok),
        }
    )
    grouped = work.groupby(keys, sort=False, dropna=False)  # keep the run's order: low, high, auto
    out = pd.DataFrame(
        {
            "n": grouped["n"].sum(),
            "errors": grouped["errors"].sum(),
            "accuracy": grouped["accuracy"].mean(),
            "prompt_tokens": grouped["prompt_tokens"].mean(),
            "image_tokens": grouped["image_tokens"].mean(),
            "total_cost": grouped["cost"].sum(min_count=1),
            "median_latency_s": grouped["latency_s"].median(),
            "cost_per_1000": grouped["cost"].mean() * 1000,
        }
    )
    return out.reset_index()
