"""The rows of a run's table: one per request, priced and scored, and the run's manifest.

Only what the service said is cached, so costs and scores are recomputed from the record on
every run (a cached row and a fresh one read alike). Reasoning tokens are part of
``completion_tokens`` and priced as output; ``reasoning`` says where they came from:
``reported`` by a service, or ``emulated`` by the built-in backend (a factor per effort, not a
model's thinking).
Details: docs/internals.md#experiments
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizlab.errors import VizlabError
from vizlab.experiments.cache import ResultCache
from vizlab.experiments.inputs import Item, ItemSet
from vizlab.experiments.scorers import LLMJudge, Score
from vizlab.experiments.spec import Arm

if TYPE_CHECKING:
    import pandas as pd

    from vizlab.experiments.plan import Job, Plan

__all__ = ["MODEL_UNKNOWN", "ROW_COLUMNS", "UNKNOWN_OUTCOME", "RowMaker", "frame_rows", "manifest_of",
           "without_placeholders"]  # fmt: skip

MODEL_UNKNOWN = "model unknown"

ROW_COLUMNS = [
    "item_id", "category", "arm", "deployment", "detail", "strategy", "reasoning_effort", "repeat", "question",
    "images", "width", "height", "estimated_prompt_tokens", "image_tokens", "estimated_cost", "prompt_tokens",
    "cached_tokens", "completion_tokens", "reasoning_tokens", "reasoning", "cost", "batch_cost", "latency_s", "answer",
    "refusal", "expected", "score", "score_reason", "scorer", "binary", "finish_reason", "model", "system_fingerprint",
    "request_id", "error", "cache",
]  # fmt: skip

UNKNOWN_OUTCOME = (
    "sent by an earlier run that stopped (killed?) before the answer came back: the service billed it, the "
    "answer is lost. Pass resend_unknown=True (CLI: --resend-unknown) to send it again"
)


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


def _costs(record: Mapping[str, Any], token_model: str | None) -> tuple[float | None, float | None]:
    """(live, batch) USD of a reported usage (reasoning inside the completion), cached input at its price."""
    from vizlab.tokens.pricing import DEFAULT_PRICES
    from vizlab.tokens.usage import Usage

    prompt, completion = record.get("prompt_tokens"), record.get("completion_tokens")
    if not isinstance(prompt, int) or token_model is None:
        return None, None
    details = {k: record[k] for k in ("cached_tokens", "reasoning_tokens") if record.get(k)}
    usage = Usage(prompt, completion or 0, prompt + (completion or 0), details)
    try:
        live = float(DEFAULT_PRICES.cost_of(usage, model=token_model).total)
        batch = float(DEFAULT_PRICES.cost(prompt, completion or 0, model=token_model, batch=True).total)
    except VizlabError:
        return None, None
    return live, batch


def _pricing_model(plan: Plan, arm: Arm, record: Mapping[str, Any]) -> str | None:
    """The deployment's model; while it is unknown, the model the record's reply named, if the registry knows it."""
    from vizlab.models.registry import canonical_name

    d = plan.deployments[arm.deployment]
    if d.token_model is not None:
        return d.token_model
    named = record.get("model")
    return str(named) if isinstance(named, str) and canonical_name(named) is not None else None


def _score(item: Item, answer: str | None, cache: ResultCache) -> tuple[Score, float | None]:
    scorer = item.scorer
    if scorer is None or item.expected is None:
        return Score(None, "unlabelled"), None
    if isinstance(scorer, LLMJudge):
        return scorer.grade(item.question, answer, item.expected, cache=cache)
    return scorer(answer, item.expected), None


@dataclass
class RowMaker:
    """Rows of one run: priced live, or at the Batch price for a ``batch=True`` run (cached rows too)."""

    plan: Plan

    def reasoning(self, arm: Arm, record: Mapping[str, Any] | None) -> str | None:
        """``"emulated"`` (built-in backend), ``"reported"`` or None (no effort asked, no reasoning tokens)."""
        if arm.reasoning_effort is None and not (record or {}).get("reasoning_tokens"):
            return None
        return "emulated" if self.plan.stamp else "reported"

    def row(self, job: Job, record: dict[str, Any] | None, error: str | None, status: str) -> dict[str, Any]:
        item, arm = job.item, job.arm
        first = (job.images or [None])[0]
        got: dict[str, Any] = record or {}
        live, batch_cost = _costs(got, _pricing_model(self.plan, arm, got)) if record is not None else (None, None)
        if self.plan.spec.batch:
            live = batch_cost
        ungrounded = list(got.get("ungrounded") or [])
        answer = without_placeholders(got.get("answer"), ungrounded) if record else None
        no_answer = record is None or error is not None
        score, judge_cost = (Score(None, "no answer"), None) if no_answer else _score(item, answer, self.plan.cache)
        row = {
            "item_id": item.id, "category": item.category, "arm": arm.label, "deployment": arm.deployment,
            "detail": arm.detail, "strategy": arm.strategy, "reasoning_effort": arm.reasoning_effort,
            "repeat": job.repeat, "question": item.question, "images": len(job.images or []),
            "width": first.original_width if first else None, "height": first.original_height if first else None,
            "estimated_prompt_tokens": job.estimate.prompt_tokens if job.estimate else None,
            "image_tokens": job.estimate.image_tokens if job.estimate else None, "estimated_cost": job.estimated_cost,
            **{k: got.get(k) for k in ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens")},
            "reasoning": self.reasoning(arm, record),
            "cost": None if live is None else live + (judge_cost or 0.0), "batch_cost": batch_cost,
            "latency_s": got.get("latency_s"), "answer": answer, "refusal": got.get("refusal"),
            "ungrounded": ", ".join(ungrounded) or None,
            "expected": item.expected, "score": score.value, "score_reason": score.reason,
            "scorer": item.scorer.name if item.scorer else None, "binary": bool(item.scorer and item.scorer.binary),
            **{k: got.get(k) for k in ("finish_reason", "model", "system_fingerprint", "request_id")},
            "error": error, "cache": status,
        }  # fmt: skip
        row.update(_schema_fields(answer))
        return row

    def unknown(self, job: Job) -> dict[str, Any]:
        return self.row(job, None, UNKNOWN_OUTCOME, "unknown")

    def problems(self) -> list[dict[str, Any]]:
        """One error row per arm for each file that could not be read (a bomb, a truncated file...)."""
        rows = []
        item_set = self.plan.item_set
        taken = {item.id for item in item_set.items}
        for problem in item_set.problems:
            if not problem.image:
                continue
            item_id = Path(str(problem.image)).stem
            if item_id in taken:  # a bad labels row naming a good image: keep ids unique
                item_id = f"{item_id} (row {problem.row})"
            taken.add(item_id)
            for arm in self.plan.arms:
                row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
                row.update(item_id=item_id, arm=arm.label, deployment=arm.deployment, detail=arm.detail,
                           strategy=arm.strategy, reasoning_effort=arm.reasoning_effort, repeat=0, images=0,
                           error=problem.message, cache="unreadable")  # fmt: skip
                rows.append(row)
        return rows


def frame_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    extra = sorted({k for r in rows for k in r} - set(ROW_COLUMNS))
    return pd.DataFrame(rows, columns=[*ROW_COLUMNS, *extra])


def _price_date(model: str | None) -> str | None:
    from vizlab.tokens.pricing import DEFAULT_PRICES

    if model is None:
        return None
    try:
        return str(DEFAULT_PRICES.get(model).as_of)
    except VizlabError:
        return None


def _deployment_entry(plan: Plan, name: str) -> dict[str, Any]:
    d = plan.deployments[name]
    efforts = [e for (dep, e) in plan.bodies if dep == name]
    return {
        "token_model": d.token_model or MODEL_UNKNOWN,
        "family": d.info.name if d.info is not None else None,
        "price_as_of": _price_date(d.token_model),
        "params": plan.bodies[name, efforts[0]],
        "reasoning_efforts": [e for e in efforts if e is not None],
    }


def manifest_of(plan: Plan, estimate_usd: float) -> dict[str, Any]:
    """What a run was: versions, backend, deployments and their models, arms, items, the estimate."""
    import vizlab
    from vizlab.models.types import NEWEST

    spec = plan.spec
    return {
        "vizlab_version": getattr(vizlab, "__version__", "unknown"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": plan.identity,
        "api_version": plan.client.api_version,
        "registry_revision": NEWEST,
        "deployments": {name: _deployment_entry(plan, name) for name in plan.deployments},
        "arms": [a.label for a in plan.arms],
        "repeats": spec.repeats,
        "temperature": spec.temperature,
        "seed": spec.seed,
        "system": spec.system,
        "items": len(plan.item_set.items),
        "items_sha256": plan.item_set.sha256(),
        "problems": [str(p) for p in plan.item_set.problems],
        "estimate_usd": estimate_usd,
        "batch": spec.batch,
        "stamp": plan.stamp,
    }
