"""Sending a planned run: live (paced, concurrent, resumable) or through the Batch API.

Live, each deployment's first request goes alone: its reply tells the model version in service
(a changed one makes older cache records stale) and, where the model was unknown, the model, so
the rest are estimated by its rules. Each request is marked sent in the cache before it goes
out and its answer written before its worker takes the next, so a kill re-bills nothing
answered. The budget is checked again before every request. Details: docs/internals.md#experiments
"""

from __future__ import annotations

import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vizlab.batch.run import record_from_completion
from vizlab.client.replies import ungrounded_of
from vizlab.errors import (
    APIError,
    BackendUnavailableError,
    RateLimitError,
    RequestTimeoutError,
    UnsupportedParameterError,
    redact,
)
from vizlab.experiments.batching import send_batch
from vizlab.experiments.pacing import Pacer
from vizlab.experiments.plan import Encoder, Job, Plan, estimate_job, messages_of
from vizlab.experiments.rows import RowMaker

__all__ = ["BudgetWarning", "Execution"]


class BudgetWarning(UserWarning):
    """A run has spent 50 %, 80 % or 100 % of its ``max_usd``."""


class _Spend:
    """Dollars spent and tokens used so far, against ``max_usd``; thread-safe."""

    def __init__(self, max_usd: float | None) -> None:
        self.max_usd = max_usd
        self.spent = 0.0
        self.tokens = 0
        self.warned: set[int] = set()
        self._lock = threading.Lock()

    def may_send(self, estimated: float | None) -> bool:
        if self.max_usd is None:
            return True
        with self._lock:
            return self.spent < self.max_usd and self.spent + (estimated or 0.0) <= self.max_usd

    def add(self, row: dict[str, Any]) -> None:
        self.tokens += int(row.get("prompt_tokens") or 0) + int(row.get("completion_tokens") or 0)
        cost = row.get("cost")
        if not isinstance(cost, float):
            return
        self.spent += cost
        if self.max_usd is None:
            return
        for level in (50, 80, 100):
            if self.spent >= self.max_usd * level / 100 and level not in self.warned:
                self.warned.add(level)
                warnings.warn(f"the run has spent ${self.spent:.4f}, {level} % of max_usd=${self.max_usd}",
                              BudgetWarning, stacklevel=7)  # fmt: skip


def _transient(e: BaseException) -> bool:
    if isinstance(e, (BackendUnavailableError, RequestTimeoutError)):
        return True
    status = getattr(e, "status", None)
    return isinstance(e, APIError) and isinstance(status, int) and status >= 500


class Execution:
    """One run's sending: the rows so far, the counts, the pacer, the versions seen."""

    def __init__(self, plan: Plan, *, unknown: set[int], missing: list[Job], counts: dict[str, int]) -> None:
        from tqdm.auto import tqdm

        spec = plan.spec
        self.plan, self.unknown, self.missing, self.counts = plan, unknown, missing, counts
        self.rows = RowMaker(plan)
        self.spend = _Spend(spec.max_usd)
        self.pacer = Pacer(tpm=spec.tpm, rpm=spec.rpm, window_s=spec.rate_window_s)
        self.encoder = Encoder(keep=max(4, 2 * spec.concurrency))
        self.results: dict[int, dict[str, Any]] = {}
        self.versions: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        self._bar = tqdm(total=len(plan.jobs), desc="experiment", unit="request", disable=not spec.progress)

    def run(self) -> dict[int, dict[str, Any]]:
        """Every job's row, by job index."""
        try:
            self._batch() if self.plan.spec.batch else self._live()
        finally:
            self._bar.close()
        return self.results

    def _finish(self, job: Job, row: dict[str, Any]) -> None:
        with self._lock:
            self.results[job.index] = row
            self.counts[{"hit": "cached"}.get(row["cache"], row["cache"])] += 1
            self.spend.add(row)
            self._bar.set_postfix({"sent": self.counts["sent"], "cached": self.counts["cached"],
                                   "failed": self.counts["failed"], "tokens": self.spend.tokens,
                                   "usd": f"{self.spend.spent:.4f}"}, refresh=False)  # fmt: skip
            self._bar.update(1)

    # -- through the Batch API --

    def _batch(self) -> None:
        plan = self.plan
        folder = plan.spec.batch_dir or Path(plan.spec.cache_dir) / "batches"
        sent = send_batch(plan.client, self.missing, lambda j: messages_of(j, plan.spec.system, self.encoder.images(j)),
                          folder, progress=plan.spec.progress)  # fmt: skip
        for job in plan.jobs:
            if job.encode_error is not None:
                self._finish(job, self.rows.row(job, None, job.encode_error, "failed"))
            elif job.index in sent:
                record, error = sent[job.index]
                if record is not None and job.key is not None:
                    plan.cache.put(job.key, record)
                self._finish(job, self.rows.row(job, record, error, "sent" if error is None else "failed"))
            elif job.index in self.unknown:
                self._finish(job, self.rows.unknown(job))
            else:  # a batch run prices its cached rows at the batch price too: one run, one price
                self._finish(job, self.rows.row(job, plan.cache.get(job.key or ""), None, "hit"))

    # -- live --

    def _live(self) -> None:
        for job in self._firsts():
            self._finish(job, self._send(job, "sent"))
        self._estimate_learned()
        rest = self._sort_the_rest()
        if self.plan.spec.concurrency == 1:
            for job, status in rest:
                self._finish(job, self._send(job, status))
            return
        with ThreadPoolExecutor(max_workers=self.plan.spec.concurrency, thread_name_prefix="vizlab-experiment") as pool:
            futures = {pool.submit(self._send, job, status): job for job, status in rest}
            try:
                for future, job in futures.items():
                    self._finish(job, future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _firsts(self) -> list[Job]:
        """Per deployment, the first request to send (with ``check_version``: a cached one if none is missing)."""
        firsts: dict[str, Job] = {}
        for job in self.missing:
            firsts.setdefault(job.arm.deployment, job)
        if self.plan.spec.check_version:
            for d in self.plan.deployments:
                probe = next((j for j in self.plan.jobs if j.arm.deployment == d and j.key is not None), None)
                if d not in firsts and probe is not None:
                    firsts[d] = probe
        return list(firsts.values())

    def _estimate_learned(self) -> None:
        """A deployment whose model the first reply named: estimate its other requests by that model's rules."""
        learned = {name for name, d in self.plan.deployments.items() if d.relearn()}
        for job in self.plan.jobs:
            if job.arm.deployment in learned and job.images is not None and job.index not in self.results:
                token_model = self.plan.deployments[job.arm.deployment].token_model
                estimate_job(job, self.plan.spec.system, token_model, self.encoder.images(job))

    def _sort_the_rest(self) -> list[tuple[Job, str]]:
        """Rows for what needs no request now; the rest to send, marked ``sent`` or ``stale``."""
        rest: list[tuple[Job, str]] = []
        for job in self.plan.jobs:
            if job.index in self.results:
                continue
            if job.encode_error is not None:
                self._finish(job, self.rows.row(job, None, job.encode_error, "failed"))
                continue
            record = self.plan.cache.get(job.key or "")
            if job.index in self.unknown:
                self._finish(job, self.rows.unknown(job))
            elif record is None:
                rest.append((job, "sent"))
            elif self.versions.get(job.arm.deployment, _version(record)) != _version(record):
                rest.append((job, "stale"))
            else:
                self._finish(job, self.rows.row(job, record, None, "hit"))
        return rest

    def _send(self, job: Job, status: str) -> dict[str, Any]:
        spec = self.plan.spec
        if not self.spend.may_send(job.estimated_cost):
            return self.rows.row(job, None, f"not sent: the run reached max_usd=${spec.max_usd}", "skipped")
        assert job.key is not None
        cache = self.plan.cache
        cache.mark_sent(job.key)  # durable before it goes out: a kill now leaves "outcome unknown"
        try:
            record = _send(self.plan.deployments[job.arm.deployment].client, job, spec.system, self.pacer,
                           spec.rate_limit_timeout_s, self.encoder)  # fmt: skip
        except Exception as e:
            cache.clear_sent(job.key)
            return self.rows.row(job, None, redact(f"{type(e).__name__}: {e}"), "failed")
        cache.put(job.key, record)
        with self._lock:
            self.versions.setdefault(job.arm.deployment, _version(record))
        return self.rows.row(job, record, None, status)


def _version(record: dict[str, Any]) -> tuple[Any, Any]:
    return record.get("model"), record.get("system_fingerprint")


def _send(c: Any, job: Job, system: str | None, pacer: Pacer, timeout_s: float, encoder: Encoder) -> dict[str, Any]:
    """One request through the SDK (its retries off), paced, 429s waited out, transients retried."""
    sdk = c.sdk.with_options(max_retries=0)
    deadline = time.monotonic() + timeout_s
    transient_left = int(c.max_retries)
    messages = messages_of(job, system, encoder.images(job))
    while True:
        pacer.acquire(job.pacing_tokens)
        started = time.perf_counter()
        try:
            body = c.adapted(job.body)  # what the deployment refused before
            with c.mapped_errors():
                response = sdk.chat.completions.with_raw_response.create(model=c.deployment, messages=messages, **body)
                completion = response.parse()
        except UnsupportedParameterError as e:
            retry = c.adapt(job.body, e)  # once per refused parameter
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
        c.learn_model(raw.get("model"))
        request_id = headers.get("apim-request-id") or headers.get("x-request-id")
        return record_from_completion(raw, latency, request_id, ungrounded_of(headers))
