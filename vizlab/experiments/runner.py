"""Run a grid of arms (deployment x detail x strategy x repeat) over items; or map one prompt.

:func:`run_experiment` returns an :class:`ExperimentResult` (table, manifest, problems, analysis);
:func:`map_prompt` is the same runner without labels. Trade-offs: the cache key holds everything
but the model version, which is checked against live replies (stale records are re-sent); the
:class:`~vizlab.experiments.pacing.Pacer` keeps 429s out of the rows; the budget is checked
before and during the run; a kill loses only requests in flight.
Details: docs/internals.md#experiments
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizlab.client.targets import BackendKind
from vizlab.errors import (
    APIError,
    BackendUnavailableError,
    ImageError,
    RateLimitError,
    UnsupportedParameterError,
    RequestTimeoutError,
    VizlabError,
    redact,
)
from vizlab.client.replies import ungrounded_of
from vizlab.experiments.batching import record_from_completion, send_batch
from vizlab.experiments.cache import ResultCache
from vizlab.experiments.document_arms import part_for
from vizlab.experiments.inputs import Item, ItemSet, Problem, load_items
from vizlab.experiments.legacy import backend_identity
from vizlab.experiments.pacing import Pacer
from vizlab.experiments.scorers import LLMJudge, Score, is_builtin_analyst
from vizlab.experiments.strategies import check_strategy, strategy_images

if TYPE_CHECKING:
    import pandas as pd

    from vizlab.client.core import Client

__all__ = [
    "Arm",
    "BudgetExceededError",
    "BudgetWarning",
    "ExperimentResult",
    "LOCAL_STAMP",
    "ROW_COLUMNS",
    "map_prompt",
    "run_experiment",
]

_KEY_VERSION = 2
LOCAL_STAMP = "local analyst (OCR), not a vision model"

ROW_COLUMNS = [
    "item_id", "category", "arm", "deployment", "detail", "strategy", "repeat", "question", "images",
    "width", "height", "estimated_prompt_tokens", "image_tokens", "estimated_cost", "prompt_tokens",
    "cached_tokens", "completion_tokens", "reasoning_tokens", "cost", "batch_cost", "latency_s", "answer",
    "refusal", "expected", "score", "score_reason", "scorer", "binary", "finish_reason", "model", "system_fingerprint",
    "request_id", "error", "cache",
]  # fmt: skip


class BudgetExceededError(VizlabError):
    """The run's estimate is over ``max_usd``: nothing was sent."""

    def __init__(self, message: str, *, estimate_usd: float, max_usd: float) -> None:
        super().__init__(message)
        self.estimate_usd = estimate_usd
        self.max_usd = max_usd


class BudgetWarning(UserWarning):
    """A run has spent 50 %, 80 % or 100 % of its ``max_usd``."""


@dataclass(frozen=True)
class Arm:
    """One way of asking: a deployment, a detail, an image strategy."""

    deployment: str
    detail: str
    strategy: str = "whole"

    @property
    def label(self) -> str:
        return f"{self.deployment}/{self.detail}" + ("" if self.strategy == "whole" else f"/{self.strategy}")


@dataclass
class _Job:
    index: int
    item: Item
    arm: Arm
    repeat: int
    images: list[Any] | None = None
    encode_error: str | None = None
    key: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    estimate: Any = None
    estimated_cost: float | None = None
    pacing_tokens: int = 0


@dataclass
class ExperimentResult:
    """What a run produced: the per-item table, its manifest, the problems, and the counts."""

    table: pd.DataFrame
    manifest: dict[str, Any]
    problems: list[Problem]
    counts: dict[str, int]
    estimate_usd: float
    dry_run: bool = False

    def __repr__(self) -> str:
        c = self.counts
        return (f"ExperimentResult({len(self.table)} rows, sent {c.get('sent', 0)}, cached {c.get('cached', 0)}, "
                f"stale {c.get('stale', 0)}, failed {c.get('failed', 0)}, {len(self.problems)} problems)")  # fmt: skip

    @property
    def stamp(self) -> str | None:
        """"local analyst (OCR), not a vision model" when the built-in backend answered, else None."""
        return self.manifest.get("stamp")

    def summary(self, by: Sequence[str] = ()) -> pd.DataFrame:
        from vizlab.experiments.report import summarize_arms

        return summarize_arms(self.table, by=by, stamp=self.stamp)

    def compare(self, pairs: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
        from vizlab.experiments.report import compare_arms

        return compare_arms(self.table, pairs=pairs, stamp=self.stamp)

    def recommendation(self, low: str | None = None, high: str | None = None) -> str:
        from vizlab.experiments.report import recommend

        return recommend(self.table, low=low, high=high, stamp=self.stamp)

    def frontier(self, ax: Any = None) -> Any:
        from vizlab.plots import accuracy_cost_frontier

        return accuracy_cost_frontier(self.summary(), ax=ax, stamp=self.stamp)

    def by_category(self, ax: Any = None) -> Any:
        from vizlab.plots import accuracy_by_category

        return accuracy_by_category(self.summary(by=("category",)), ax=ax, stamp=self.stamp)

    def save(self, out_dir: str | os.PathLike[str]) -> dict[str, str]:
        """Write the per-item table (CSV, and Parquet if pyarrow is present), summary.json and
        the frontier plot under ``out_dir``; returns the paths written."""
        from vizlab.experiments.report import write_outputs

        return write_outputs(self, Path(out_dir))


# --- model facts --------------------------------------------------------------------------------


def _model_info(token_model: str) -> Any:
    """The registry's facts for the deployment's model, or None when the registry does not know it."""
    from vizlab.errors import UnknownModelError
    from vizlab.models.registry import lookup

    try:
        return lookup(token_model)
    except UnknownModelError:
        return None


def _provider(client: Any) -> str:
    return "openai" if getattr(client, "backend", "") == BackendKind.OPENAI else "azure"


def _request_params(info: Any, *, max_tokens: int | None, temperature: float | None, seed: int | None,
                    response_format: dict[str, Any] | None, params: dict[str, Any], deployment: str) -> dict[str, Any]:  # fmt: skip
    """The body parameters for one deployment: max_completion_tokens for reasoning models, and a
    clear refusal of sampling parameters the model would refuse."""
    body: dict[str, Any] = dict(params)
    reasoning = bool(getattr(info, "reasoning", False))
    if max_tokens is not None:
        body["max_completion_tokens" if reasoning else "max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    if seed is not None:
        body["seed"] = seed
    if response_format is not None:
        body["response_format"] = response_format
    if info is not None:
        refused = sorted(set(body) & set(info.rejected_params(body.get("reasoning_effort"))))
        if refused:
            raise ValueError(f"deployment {deployment!r} ({info.name}) refuses {', '.join(refused)} at reasoning effort "
                             f"{body.get('reasoning_effort') or info.default_effort!r}; leave them out for this deployment")  # fmt: skip
    return body


# --- keys and records ---------------------------------------------------------------------------


def _key(job: _Job, identity: str, system: str | None) -> str:
    canonical = json.dumps(
        {
            "v": _KEY_VERSION,
            "images": [img.sha256 for img in job.images or []],
            "question": job.item.question,
            "system": system,
            "deployment": job.arm.deployment,
            "detail": job.arm.detail,
            "strategy": job.arm.strategy,
            "repeat": job.repeat,
            "params": job.body,
            "backend": identity,
        },
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )  # fmt: skip
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _ImageRef:
    """What a planned job keeps of an encoded image: its address and sizes, not its bytes."""

    sha256: str
    width: int
    height: int
    original_width: int
    original_height: int


class _Encoder:
    """Encodes a job's images when its request is sent, not for the whole run: the run's memory
    stays bounded by the few most recent slots (a run's jobs come item by item, so the arms of
    one item reuse one encoding). The bytes must hash to what the cache key was planned with."""

    def __init__(self, keep: int) -> None:
        from collections import OrderedDict

        self._recent: OrderedDict[tuple[str, str, str], list[Any]] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def images(self, job: _Job) -> list[Any]:
        slot = _slot(job.item, job.arm)
        with self._lock:
            found = self._recent.get(slot)
            if found is not None:
                self._recent.move_to_end(slot)
                return found
        images = strategy_images(job.item.image, job.arm.strategy, job.arm.detail, name=job.item.id)
        if [img.sha256 for img in images] != [ref.sha256 for ref in job.images or []]:
            raise ImageError(f"item {job.item.id!r}: its image changed on disk during the run (its bytes no longer "
                             "match the ones planned and estimated); run the experiment again")  # fmt: skip
        with self._lock:
            self._recent[slot] = images
            while len(self._recent) > self._keep:
                self._recent.popitem(last=False)
        return images


def _slot(item: Item, arm: Arm) -> tuple[str, str, str]:
    """Jobs of one slot send the same encoded images (fit depends only on low versus high)."""
    mode = "low" if arm.detail == "low" else "high"
    return item.id, arm.strategy, mode if arm.strategy == "fit" else ""


def _messages(job: _Job, system: str | None, images: list[Any] | None = None) -> list[dict[str, Any]]:
    """The request's messages; ``images``: the job's encoded images (default: ``job.images``)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": job.item.question}]
    content += [part_for(img, job.arm.detail) for img in (job.images if images is None else images) or []]
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": content}]


def _version(record: dict[str, Any]) -> tuple[Any, Any]:
    return record.get("model"), record.get("system_fingerprint")


# --- costs --------------------------------------------------------------------------------------


def _costs(record: dict[str, Any], token_model: str) -> tuple[float | None, float | None]:
    """(live, batch) USD of a reported usage, cached input at its price where reported."""
    from vizlab.tokens.pricing import DEFAULT_PRICES
    from vizlab.tokens.usage import Usage

    prompt, completion = record.get("prompt_tokens"), record.get("completion_tokens")
    if not isinstance(prompt, int):
        return None, None
    details = {"cached_tokens": record["cached_tokens"]} if record.get("cached_tokens") else {}
    usage = Usage(prompt, completion or 0, prompt + (completion or 0), details)
    try:
        live = float(DEFAULT_PRICES.cost_of(usage, model=token_model).total)
        batch = float(DEFAULT_PRICES.cost(prompt, completion or 0, model=token_model, batch=True).total)
    except VizlabError:
        return None, None
    return live, batch


def _estimate(job: _Job, system: str | None, token_model: str, out_tokens: int | None) -> None:
    from vizlab.tokens.request import estimate_request

    try:
        job.estimate = estimate_request(_messages(job, system), model=token_model, max_tokens=out_tokens)
    except Exception:  # an estimate is a nicety; the request may still be accepted
        job.estimate = None
        job.pacing_tokens = 1000 + (out_tokens or 0)
        return
    cost = job.estimate.cost
    job.estimated_cost = float(cost.total) if cost is not None else None
    job.pacing_tokens = job.estimate.prompt_tokens + (out_tokens or 0)


# --- scoring ------------------------------------------------------------------------------------


def _score(item: Item, answer: str | None, cache: ResultCache) -> tuple[Score, float | None]:
    scorer = item.scorer
    if scorer is None or item.expected is None:
        return Score(None, "unlabelled"), None
    if isinstance(scorer, LLMJudge):
        return scorer.grade(item.question, answer, item.expected, cache=cache)
    return scorer(answer, item.expected), None


def without_placeholders(answer: str | None, ungrounded: list[str] | None) -> str | None:
    """``answer`` (JSON) with each field the backend listed as ungrounded set to null: a placeholder
    counts as missing, never as an answer (in scores, ``answer.<field>`` columns and CSVs).

    >>> without_placeholders('{"kind": "text", "word_count": 0}', ["word_count"])
    '{"kind": "text", "word_count": null}'
    """
    if not answer or not ungrounded:
        return answer
    try:
        value = json.loads(answer)
    except ValueError:
        return answer
    for path in ungrounded:
        target, parts = value, path.split(".")
        for part in parts[:-1]:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict) and parts[-1] in target:
            target[parts[-1]] = None
    return json.dumps(value, ensure_ascii=False)


def _schema_fields(answer: str | None) -> dict[str, Any]:
    if not answer:
        return {}
    try:
        value = json.loads(answer)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {f"answer.{k}": (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in value.items()}


# --- the run ------------------------------------------------------------------------------------


def _transient(e: BaseException) -> bool:
    if isinstance(e, (BackendUnavailableError, RequestTimeoutError)):
        return True
    status = getattr(e, "status", None)
    return isinstance(e, APIError) and isinstance(status, int) and status >= 500


def run_experiment(
    client: Client,
    items: Any,
    *,
    deployments: Sequence[str] | None = None,
    details: Iterable[str] = ("low", "high"),
    strategies: Iterable[str] = ("whole",),
    document: str | Sequence[str] | None = None,
    repeats: int = 1,
    labels: str | os.PathLike[str] | None = None,
    prompt: str | None = None,
    system: str | None = None,
    response_format: dict[str, Any] | None = None,
    scorer: Any = None,
    judges: dict[str, Any] | None = None,
    max_tokens: int | None = 300,
    temperature: float | None = None,
    seed: int | None = None,
    params: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] = ".vizlab-cache/experiments",
    concurrency: int = 4,
    max_usd: float | None = None,
    dry_run: bool = False,
    tpm: int | None = None,
    rpm: int | None = None,
    rate_window_s: float = 60.0,
    rate_limit_timeout_s: float = 600.0,
    check_version: bool = False,
    batch: bool = False,
    batch_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    resend_unknown: bool = False,
) -> ExperimentResult:
    """Ask every item's question in every arm, ``repeats`` times; see docs/internals.md#experiments.

    ``items``: anything :func:`~vizlab.experiments.inputs.load_items` takes (a folder, a labels
    file, a DataFrame, the built-in sets, a list of images with ``prompt``). ``deployments``
    (default: the client's) are reached on the same endpoint with ``client.with_deployment``.
    ``batch=True`` sends what is not cached through the Batch API (half price, see
    :mod:`vizlab.batch`) instead of live requests, and prices every row (cached ones too) at the
    batch price, so a rerun of a batch run gives the same table. ``document`` ("text", "pages",
    "both" or a list of them) replaces ``strategies`` for PDFs (:mod:`~vizlab.experiments.document_arms`).

    Each request is marked sent in the cache before it goes out, and each answer written before
    its worker takes the next, so a killed run re-bills nothing answered. Requests in flight at a
    kill were billed, their answers lost: a rerun shows them as rows with ``cache == "unknown"``
    and sends them again only with ``resend_unknown=True``.

    >>> result = run_experiment(connect(), "photos/", labels="photos/labels.csv")  # doctest: +SKIP
    >>> result.summary(); result.recommendation()                                 # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from vizlab.tokens.image import DETAILS

    item_set = load_items(items, labels=labels, prompt=prompt, scorer=scorer, judges=judges)
    details = tuple(details)
    bad = [d for d in details if d not in DETAILS]
    if bad or not details:
        from vizlab.errors import UnknownDetailError

        raise UnknownDetailError(f"details={details!r}: each must be one of {', '.join(DETAILS)}",
                                 detail=bad[0] if bad else None)  # fmt: skip
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r}: use a whole number >= 1")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r}: use a whole number >= 1")
    if max_usd is not None and not max_usd > 0:
        raise ValueError(f"max_usd={max_usd!r}: give a positive number of US dollars, or None for no cap")
    deployments = tuple(deployments) if deployments else (str(client.deployment),)
    clients = {d: (client if d == client.deployment else client.with_deployment(d)) for d in deployments}
    infos = {d: _model_info(str(c.token_model)) for d, c in clients.items()}
    strategies = tuple(strategies)
    if document is not None:  # PDFs: "text", "pages" and / or "both" (vizlab.experiments.document_arms)
        strategies = tuple(f"document:{d}" for d in ([document] if isinstance(document, str) else document))
    for d in deployments:
        info = infos[d]
        limit = info.images_per_request(_provider(client)) if info is not None else None
        for s in strategies:
            check_strategy(s, max_images=limit)
    if any(detail == "original" for detail in details):
        for d in deployments:
            info = infos[d]
            limits = getattr(info.image_rule(), "limits", {}) if info is not None else {}
            if "original" not in limits:
                raise ValueError(f"detail 'original' is not offered by deployment {d!r}; drop it from details")
    bodies = {d: _request_params(infos[d], max_tokens=max_tokens, temperature=temperature, seed=seed,
                                 response_format=response_format, params=params or {}, deployment=d)
              for d in deployments}  # fmt: skip
    arms = [Arm(d, detail, s) for d in deployments for detail in details for s in strategies]
    identity = backend_identity(client)
    cache = ResultCache(cache_dir)

    # Encode once per (item, strategy, detail-class), estimate every job, and keep only each
    # image's address and sizes: the bytes are encoded again when the request is sent.
    jobs: list[_Job] = []
    for item in item_set.items:
        encoded: dict[tuple[str, str, str], tuple[list[Any] | None, str | None]] = {}
        for arm in arms:
            slot = _slot(item, arm)
            if slot not in encoded:
                try:
                    encoded[slot] = (strategy_images(item.image, arm.strategy, arm.detail, name=item.id), None)
                except Exception as e:  # a bad image is a row, not the end of the run
                    encoded[slot] = (None, redact(f"{type(e).__name__}: {e}"))
            images, error = encoded[slot]
            for r in range(repeats):
                job = _Job(len(jobs), item, arm, r, images, error, body=bodies[arm.deployment])
                if images is not None:
                    job.key = _key(job, identity, system)
                    out = bodies[arm.deployment].get("max_tokens", bodies[arm.deployment].get("max_completion_tokens"))
                    _estimate(job, system, str(clients[arm.deployment].token_model), out)
                    job.images = [_ImageRef(i.sha256, i.width, i.height, i.original_width, i.original_height)
                                  for i in images]  # fmt: skip
                jobs.append(job)
    encoder = _Encoder(keep=max(4, 2 * concurrency))

    unknown = {j.index for j in jobs if not resend_unknown and _unanswered(j, cache)}  # billed, answer lost
    missing = [j for j in jobs if j.key is not None and j.key not in cache and j.index not in unknown]
    estimate_usd = sum(j.estimated_cost or 0.0 for j in missing)
    unknown_cost = sum(1 for j in missing if j.estimated_cost is None)
    stamp = LOCAL_STAMP if is_builtin_analyst(client) else None
    manifest = _manifest(client, clients, infos, item_set, arms, repeats, bodies, system, temperature, seed,
                         estimate_usd, stamp, batch)  # fmt: skip
    if max_usd is not None and estimate_usd > max_usd:
        raise BudgetExceededError(
            f"the run's estimate is ${estimate_usd:.4f} for {len(missing)} requests not in the cache, over "
            f"max_usd=${max_usd:.4f}: nothing was sent. Raise max_usd, run fewer items or arms, or lower max_tokens.",
            estimate_usd=estimate_usd, max_usd=max_usd,
        )  # fmt: skip
    counts = {"sent": 0, "cached": 0, "stale": 0, "failed": 0, "skipped": 0, "unknown": 0, "to_send": len(missing),
              "unknown_cost": unknown_cost}  # fmt: skip
    if dry_run:
        rows = [_unknown_row(j, clients, cache, item_set) if j.index in unknown
                else _row(j, None, None, "dry-run" if j in missing else "hit", clients, cache, item_set) for j in jobs]
        rows += _problem_rows(item_set, arms)
        return ExperimentResult(_frame(rows), manifest, item_set.problems, counts, estimate_usd, dry_run=True)

    state = _RunState(max_usd=max_usd)
    pacer = Pacer(tpm=tpm, rpm=rpm, window_s=rate_window_s)
    bar = tqdm(total=len(jobs), desc="experiment", unit="request", disable=not progress)
    lock = threading.Lock()
    results: dict[int, dict[str, Any]] = {}
    current: dict[str, tuple[Any, Any]] = {}

    def finish(job: _Job, row: dict[str, Any]) -> None:
        with lock:
            results[job.index] = row
            counts[{"hit": "cached"}.get(row["cache"], row["cache"])] += 1
            state.add(row.get("cost"))
            bar.set_postfix({"sent": counts["sent"], "cached": counts["cached"], "failed": counts["failed"],
                             "tokens": state.tokens, "usd": f"{state.spent:.4f}"}, refresh=False)  # fmt: skip
            state.tokens += int(row.get("prompt_tokens") or 0) + int(row.get("completion_tokens") or 0)
            bar.update(1)

    def send(job: _Job, status: str) -> dict[str, Any]:
        if not state.may_send(job.estimated_cost):
            return _row(job, None, f"not sent: the run reached max_usd=${max_usd}", "skipped", clients, cache, item_set)
        c = clients[job.arm.deployment]
        assert job.key is not None
        cache.mark_sent(job.key)  # durable before it goes out: a kill now leaves "outcome unknown"
        try:
            record = _send(c, job, system, pacer, rate_limit_timeout_s, encoder)
        except Exception as e:
            cache.clear_sent(job.key)
            return _row(job, None, redact(f"{type(e).__name__}: {e}"), "failed", clients, cache, item_set)
        cache.put(job.key, record)
        with lock:
            current.setdefault(job.arm.deployment, _version(record))
        return _row(job, record, None, status, clients, cache, item_set)

    try:
        if batch:
            sent = send_batch(client, missing, lambda j: _messages(j, system, encoder.images(j)), batch_dir or Path(cache_dir) / "batches",
                              progress=progress)  # fmt: skip
            for job in jobs:
                if job.encode_error is not None:
                    finish(job, _row(job, None, job.encode_error, "failed", clients, cache, item_set))
                elif job.index in sent:
                    record, error = sent[job.index]
                    if record is not None and job.key is not None:
                        cache.put(job.key, record)
                    finish(job, _row(job, record, error, "sent" if error is None else "failed", clients, cache,
                                     item_set, batch=True))  # fmt: skip
                elif job.index in unknown:
                    finish(job, _unknown_row(job, clients, cache, item_set))
                else:  # a batch run prices its cached rows at the batch price too: one run, one price
                    finish(job, _row(job, cache.get(job.key or ""), None, "hit", clients, cache, item_set, batch=True))
        else:
            # First, per deployment, one request alone: it tells the model version in service.
            firsts: dict[str, _Job] = {}
            for job in missing:
                firsts.setdefault(job.arm.deployment, job)
            if check_version:
                for d in deployments:
                    if d not in firsts:
                        probe = next((j for j in jobs if j.arm.deployment == d and j.key is not None), None)
                        if probe is not None:
                            firsts[d] = probe
            for job in firsts.values():
                finish(job, send(job, "sent"))
            rest: list[tuple[_Job, str]] = []
            for job in jobs:
                if job.index in results:
                    continue
                if job.encode_error is not None:
                    finish(job, _row(job, None, job.encode_error, "failed", clients, cache, item_set))
                    continue
                assert job.key is not None
                record = cache.get(job.key)
                if job.index in unknown:
                    finish(job, _unknown_row(job, clients, cache, item_set))
                elif record is not None:
                    now = current.get(job.arm.deployment)
                    if now is not None and _version(record) != now:
                        rest.append((job, "stale"))
                    else:
                        finish(job, _row(job, record, None, "hit", clients, cache, item_set))
                else:
                    rest.append((job, "sent"))
            if concurrency == 1:
                for job, status in rest:
                    finish(job, send(job, status))
            else:
                with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vizlab-experiment") as pool:
                    futures = {pool.submit(send, job, status): job for job, status in rest}
                    try:
                        for future, job in futures.items():
                            finish(job, future.result())
                    except BaseException:
                        for future in futures:
                            future.cancel()
                        raise
    finally:
        bar.close()
    rows = [results[i] for i in sorted(results)] + _problem_rows(item_set, arms)
    counts["skipped"] += sum(1 for r in rows if r["cache"] == "unreadable")
    manifest["counts"] = dict(counts)
    manifest["pacer"] = {"tpm": pacer.tpm, "rpm": pacer.rpm, "window_s": pacer.window_s, "429s_retried": pacer.refusals}
    manifest["versions"] = {d: {"model": v[0], "system_fingerprint": v[1]} for d, v in current.items()}
    return ExperimentResult(_frame(rows), manifest, item_set.problems, counts, estimate_usd)


class _RunState:
    def __init__(self, *, max_usd: float | None) -> None:
        self.max_usd = max_usd
        self.spent = 0.0
        self.reserved = 0.0
        self.tokens = 0
        self.warned: set[int] = set()
        self._lock = threading.Lock()

    def may_send(self, estimated: float | None) -> bool:
        if self.max_usd is None:
            return True
        with self._lock:
            return self.spent < self.max_usd and self.spent + (estimated or 0.0) <= self.max_usd

    def add(self, cost: Any) -> None:
        if not isinstance(cost, float) or self.max_usd is None:
            if isinstance(cost, float):
                self.spent += cost
            return
        self.spent += cost
        for level in (50, 80, 100):
            if self.spent >= self.max_usd * level / 100 and level not in self.warned:
                self.warned.add(level)
                warnings.warn(f"the run has spent ${self.spent:.4f}, {level} % of max_usd=${self.max_usd}",
                              BudgetWarning, stacklevel=4)  # fmt: skip


def _send(c: Any, job: _Job, system: str | None, pacer: Pacer, timeout_s: float, encoder: _Encoder) -> dict[str, Any]:
    """One request through the SDK (its retries off), paced, 429s waited out, transients retried."""
    sdk = c.sdk.with_options(max_retries=0)
    deadline = time.monotonic() + timeout_s
    transient_left = int(getattr(c, "max_retries", 2))
    messages = _messages(job, system, encoder.images(job))
    while True:
        pacer.acquire(job.pacing_tokens)
        started = time.perf_counter()
        try:
            body = c.adapted(job.body) if hasattr(c, "adapted") else job.body  # what the deployment refused before
            with c.mapped_errors():
                response = sdk.chat.completions.with_raw_response.create(model=c.deployment, messages=messages, **body)
                completion = response.parse()
        except UnsupportedParameterError as e:
            retry = c.adapt(job.body, e) if hasattr(c, "adapt") else None  # once per refused parameter
            if retry is None or retry == body:
                raise
            continue
        except RateLimitError as e:
            pacer.refused(e.retry_after)
            if time.monotonic() > deadline:
                raise
            continue
        except Exception as e:
            if _transient(e) and transient_left > 0:
                transient_left -= 1
                time.sleep(0.5)
                continue
            raise
        latency = time.perf_counter() - started
        headers = response.headers
        pacer.observe(headers, job.pacing_tokens)
        raw = completion.model_dump(mode="json", exclude_unset=True)
        if hasattr(c, "learn_model"):
            c.learn_model(raw.get("model"))
        request_id = headers.get("apim-request-id") or headers.get("x-request-id")
        return record_from_completion(raw, latency, request_id, ungrounded_of(headers))


def _row(job: _Job, record: dict[str, Any] | None, error: str | None, status: str, clients: dict[str, Any],
         cache: ResultCache, item_set: ItemSet, *, batch: bool = False) -> dict[str, Any]:  # fmt: skip
    item, arm = job.item, job.arm
    token_model = str(clients[arm.deployment].token_model)
    first = (job.images or [None])[0]
    live = batch_cost = None
    if record is not None:
        live, batch_cost = _costs(record, token_model)
        if batch:
            live = batch_cost
    ungrounded = list(record.get("ungrounded") or []) if record else []
    answer = without_placeholders(record.get("answer"), ungrounded) if record else None
    score, judge_cost = (Score(None, "no answer"), None) if record is None or error else _score(item, answer, cache)
    row = {
        "item_id": item.id, "category": item.category, "arm": arm.label, "deployment": arm.deployment,
        "detail": arm.detail, "strategy": arm.strategy, "repeat": job.repeat, "question": item.question,
        "images": len(job.images or []),
        "width": getattr(first, "original_width", None), "height": getattr(first, "original_height", None),
        "estimated_prompt_tokens": getattr(job.estimate, "prompt_tokens", None),
        "image_tokens": getattr(job.estimate, "image_tokens", None), "estimated_cost": job.estimated_cost,
        "prompt_tokens": record.get("prompt_tokens") if record else None,
        "cached_tokens": record.get("cached_tokens") if record else None,
        "completion_tokens": record.get("completion_tokens") if record else None,
        "reasoning_tokens": record.get("reasoning_tokens") if record else None,
        "cost": None if live is None else live + (judge_cost or 0.0), "batch_cost": batch_cost,
        "latency_s": record.get("latency_s") if record else None, "answer": answer,
        "refusal": record.get("refusal") if record else None,
        "ungrounded": ", ".join(ungrounded) or None,
        "expected": item.expected, "score": score.value, "score_reason": score.reason,
        "scorer": item.scorer.name if item.scorer else None, "binary": bool(item.scorer and item.scorer.binary),
        "finish_reason": record.get("finish_reason") if record else None,
        "model": record.get("model") if record else None,
        "system_fingerprint": record.get("system_fingerprint") if record else None,
        "request_id": record.get("request_id") if record else None, "error": error, "cache": status,
    }  # fmt: skip
    row.update(_schema_fields(answer))
    return row


UNKNOWN_OUTCOME = (
    "sent by an earlier run that stopped (killed?) before the answer came back: the service billed it, the "
    "answer is lost. Pass resend_unknown=True (CLI: --resend-unknown) to send it again"
)


def _unanswered(job: _Job, cache: ResultCache) -> bool:
    """Sent by an earlier run that stopped before its answer was written."""
    return job.key is not None and job.key not in cache and cache.is_unknown(job.key)


def _unknown_row(job: _Job, clients: dict[str, Any], cache: ResultCache, item_set: ItemSet) -> dict[str, Any]:
    return _row(job, None, UNKNOWN_OUTCOME, "unknown", clients, cache, item_set)


def _problem_rows(item_set: ItemSet, arms: list[Arm]) -> list[dict[str, Any]]:
    """One error row per arm for each file that could not be read (a bomb, a truncated file...)."""
    rows = []
    taken = {item.id for item in item_set.items}
    for problem in item_set.problems:
        if not problem.image:
            continue
        item_id = Path(str(problem.image)).stem
        if item_id in taken:  # a bad labels row naming a good image: keep ids unique
            item_id = f"{item_id} (row {problem.row})"
        taken.add(item_id)
        for arm in arms:
            row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
            row.update(item_id=item_id, arm=arm.label, deployment=arm.deployment,
                       detail=arm.detail, strategy=arm.strategy, repeat=0, images=0, error=problem.message,
                       cache="unreadable")  # fmt: skip
            rows.append(row)
    return rows


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    extra = sorted({k for r in rows for k in r} - set(ROW_COLUMNS))
    return pd.DataFrame(rows, columns=[*ROW_COLUMNS, *extra])


def _manifest(client: Any, clients: dict[str, Any], infos: dict[str, Any], item_set: ItemSet, arms: list[Arm],
              repeats: int, bodies: dict[str, Any], system: str | None, temperature: float | None,
              seed: int | None, estimate_usd: float, stamp: str | None, batch: bool) -> dict[str, Any]:  # fmt: skip
    import vizlab
    from vizlab.tokens.pricing import DEFAULT_PRICES

    def price_date(model: str) -> str | None:
        try:
            return str(DEFAULT_PRICES.get(model).as_of)
        except VizlabError:
            return None

    from vizlab.models.types import NEWEST

    revision = NEWEST
    return {
        "vizlab_version": getattr(vizlab, "__version__", "unknown"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": backend_identity(client),
        "api_version": getattr(client, "api_version", None),
        "registry_revision": revision,
        "deployments": {d: {"token_model": str(c.token_model), "family": getattr(infos[d], "name", None),
                            "price_as_of": price_date(str(c.token_model)), "params": bodies[d]}
                        for d, c in clients.items()},  # fmt: skip
        "arms": [a.label for a in arms],
        "repeats": repeats,
        "temperature": temperature,
        "seed": seed,
        "system": system,
        "items": len(item_set.items),
        "items_sha256": item_set.sha256(),
        "problems": [str(p) for p in item_set.problems],
        "estimate_usd": estimate_usd,
        "batch": batch,
        "stamp": stamp,
    }


def map_prompt(
    client: Client,
    images: Any,
    prompt: str | None = None,
    *,
    response_format: dict[str, Any] | None = None,
    detail: str = "auto",
    **kwargs: Any,
) -> pd.DataFrame:
    """One prompt (or a ``response_format`` JSON schema) over a folder, list or DataFrame of images.

    One row per image: the answer (schema fields as ``answer.<field>`` columns), tokens, cost,
    latency, request id and error; cached, resumable, ``dry_run=`` / ``batch=`` / ``max_usd=`` as
    in :func:`run_experiment` (``kwargs`` go there). The result's ``attrs`` hold the manifest.
    """
    if prompt is None and response_format is None:
        raise ValueError("map_prompt needs prompt= (the question) or response_format= (a JSON schema), or both")
    if prompt is None:
        prompt = "Extract the fields of the schema from this image."
    result = run_experiment(client, images, prompt=prompt, response_format=response_format, details=(detail,),
                            **kwargs)  # fmt: skip
    table = result.table
    table.attrs["manifest"] = result.manifest
    table.attrs["counts"] = result.counts
    table.attrs["problems"] = [str(p) for p in result.problems]
    table.attrs["estimate_usd"] = result.estimate_usd
    return table
