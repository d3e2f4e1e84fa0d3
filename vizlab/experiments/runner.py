"""Run a grid of arms (deployment x detail x strategy x reasoning effort x repeat) over items.

:func:`run_experiment` is the one engine, live or ``batch=True``, in four steps around a
:class:`~vizlab.experiments.spec.RunSpec`: :func:`~vizlab.experiments.plan.plan_run` (items, arms,
bodies, keyed and estimated jobs), :func:`budget` (what is missing, its estimate, ``max_usd``),
:func:`execute` (:mod:`vizlab.experiments.execute`) and :func:`frame` (the table and manifest).
Trade-offs: the cache key holds everything but the model version, which is checked against live
replies (stale records are re-sent); a kill loses only requests in flight. Details: docs/internals.md#experiments
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizlab.errors import VizlabError
from vizlab.experiments.execute import Execution
from vizlab.experiments.inputs import Problem
from vizlab.experiments.plan import Job, Plan, plan_run
from vizlab.experiments.rows import RowMaker, frame_rows, manifest_of
from vizlab.experiments.spec import RunSpec

if TYPE_CHECKING:
    import pandas as pd

    from vizlab.client.core import Client

__all__ = ["Budget", "BudgetExceededError", "ExperimentResult", "budget", "execute", "frame", "map_prompt",
           "run_experiment"]  # fmt: skip


class BudgetExceededError(VizlabError):
    """The run's estimate is over ``max_usd``: nothing was sent."""

    def __init__(self, message: str, *, estimate_usd: float, max_usd: float) -> None:
        super().__init__(message)
        self.estimate_usd = estimate_usd
        self.max_usd = max_usd


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


# --- the steps ----------------------------------------------------------------------------------


@dataclass
class Budget:
    """What a planned run would send: the jobs not cached, their estimate, and the run's counts."""

    unknown: set[int]  # sent by an earlier run that stopped before the answer: billed, answer lost
    missing: list[Job]
    estimate_usd: float
    counts: dict[str, int]
    manifest: dict[str, Any]


def budget(plan: Plan) -> Budget:
    """The jobs to send and their estimate; :class:`BudgetExceededError` when it is over ``max_usd``."""
    spec, cache = plan.spec, plan.cache
    unknown = {j.index for j in plan.jobs if not spec.resend_unknown and j.key is not None and j.key not in cache
               and cache.is_unknown(j.key)}  # fmt: skip
    missing = [j for j in plan.jobs if j.key is not None and j.key not in cache and j.index not in unknown]
    estimate_usd = sum(j.estimated_cost or 0.0 for j in missing)
    unknown_cost = sum(1 for j in missing if j.estimated_cost is None)
    if spec.max_usd is not None and estimate_usd > spec.max_usd:
        raise BudgetExceededError(
            f"the run's estimate is ${estimate_usd:.4f} for {len(missing)} requests not in the cache, over "
            f"max_usd=${spec.max_usd:.4f}: nothing was sent. Raise max_usd, run fewer items or arms, or lower max_tokens.",
            estimate_usd=estimate_usd, max_usd=spec.max_usd,
        )  # fmt: skip
    counts = {"sent": 0, "cached": 0, "stale": 0, "failed": 0, "skipped": 0, "unknown": 0, "to_send": len(missing),
              "unknown_cost": unknown_cost}  # fmt: skip
    return Budget(unknown, missing, estimate_usd, counts, manifest_of(plan, estimate_usd))


def execute(plan: Plan, planned: Budget) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """Every job's row by index (a dry run sends nothing), and what the sending adds to the manifest."""
    if plan.spec.dry_run:
        rows, missing = RowMaker(plan), {j.index for j in planned.missing}
        return {j.index: rows.unknown(j) if j.index in planned.unknown
                else rows.row(j, None, None, "dry-run" if j.index in missing else "hit") for j in plan.jobs}, {}  # fmt: skip
    run = Execution(plan, unknown=planned.unknown, missing=planned.missing, counts=planned.counts)
    results = run.run()
    pacer = run.pacer
    return results, {
        "pacer": {"tpm": pacer.tpm, "rpm": pacer.rpm, "window_s": pacer.window_s, "429s_retried": pacer.refusals},
        "versions": {d: {"model": v[0], "system_fingerprint": v[1]} for d, v in run.versions.items()},
    }


def frame(plan: Plan, planned: Budget, results: dict[int, dict[str, Any]], sent: dict[str, Any]) -> ExperimentResult:
    """The table (one row per job, then the unreadable files' rows), the manifest and the counts."""
    rows = [results[i] for i in sorted(results)] + RowMaker(plan).problems()
    counts, manifest = planned.counts, planned.manifest
    if plan.spec.dry_run:
        return ExperimentResult(frame_rows(rows), manifest, plan.item_set.problems, counts, planned.estimate_usd,
                                dry_run=True)  # fmt: skip
    counts["skipped"] += sum(1 for r in rows if r["cache"] == "unreadable")
    manifest.update(counts=dict(counts), **sent)
    for name, d in plan.deployments.items():  # a model learned from the first reply is named now
        manifest["deployments"][name]["token_model"] = d.token_model or manifest["deployments"][name]["token_model"]
    return ExperimentResult(frame_rows(rows), manifest, plan.item_set.problems, counts, planned.estimate_usd)


# --- the front ----------------------------------------------------------------------------------


def run_experiment(
    client: Client,
    items: Any,
    *,
    spec: RunSpec | None = None,
    deployments: Sequence[str] | None = None,
    details: Iterable[str] = ("low", "high"),
    reasoning_efforts: Iterable[str | None] = (None,),
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
    """Ask every item's question in every arm, ``repeats`` times; see docs/experiments.md.

    The keywords make a :class:`~vizlab.experiments.spec.RunSpec` (or pass one as ``spec=`` and
    no other keyword). ``items``: anything :func:`~vizlab.experiments.inputs.load_items` takes (a
    folder, a labels file, a DataFrame, the built-in sets, a list of images with ``prompt``).
    ``deployments`` (default: the client's) are reached on the same endpoint.
    ``reasoning_efforts=("low", "high")`` adds an arm per effort beside each detail, on reasoning
    models only (checked against the registry). ``batch=True`` sends what is not cached through the
    Batch API (half price) and prices every row (cached ones too) at the batch price. ``document``
    ("text", "pages", "both" or a list) replaces ``strategies`` for PDFs.

    Each request is marked sent in the cache before it goes out, and each answer written before
    its worker takes the next, so a killed run re-bills nothing answered. Requests in flight at a
    kill were billed, their answers lost: a rerun shows them as rows with ``cache == "unknown"``
    and sends them again only with ``resend_unknown=True``.

    >>> result = run_experiment(connect(), "photos/", labels="photos/labels.csv")  # doctest: +SKIP
    >>> result.summary(); result.recommendation()                                 # doctest: +SKIP
    """
    given = RunSpec(
        deployments=tuple(deployments) if deployments else None, details=tuple(details),
        reasoning_efforts=tuple(reasoning_efforts), strategies=tuple(strategies),
        document=None if document is None else ((document,) if isinstance(document, str) else tuple(document)),
        repeats=repeats, labels=labels, prompt=prompt, system=system, response_format=response_format,
        scorer=scorer, judges=judges, max_tokens=max_tokens, temperature=temperature, seed=seed,
        params=params or {}, cache_dir=cache_dir, concurrency=concurrency, max_usd=max_usd, dry_run=dry_run,
        tpm=tpm, rpm=rpm, rate_window_s=rate_window_s, rate_limit_timeout_s=rate_limit_timeout_s,
        check_version=check_version, batch=batch, batch_dir=batch_dir, progress=progress,
        resend_unknown=resend_unknown,
    )  # fmt: skip
    if spec is None:
        spec = given
    elif not isinstance(spec, RunSpec):
        raise TypeError(f"spec={spec!r:.60}: give a vizlab.experiments.RunSpec, or the keywords alone")
    elif given != RunSpec():
        raise TypeError("run_experiment: pass spec= or the keywords (details=, ...), not both; "
                        "dataclasses.replace(spec, ...) makes a changed spec")  # fmt: skip
    plan = plan_run(client, items, spec)
    planned = budget(plan)
    results, sent = execute(plan, planned)
    return frame(plan, planned, results, sent)


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
