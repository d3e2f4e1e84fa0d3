"""Experiments on your own images: a prompt mapped over a folder, or a labelled grid of arms.

By seam: ``inputs`` (validated items), ``spec`` (:class:`RunSpec`, :class:`Arm`), ``plan``,
``execute`` (live or Batch), ``rows``, ``runner`` (:func:`run_experiment`, :func:`map_prompt`),
``scorers``, ``strategies``, ``pacing`` (TPM / RPM), ``cache`` (append-only results), ``stats``,
``report``, ``cli``. Details: docs/internals.md#experiments
"""

from __future__ import annotations

from vizlab.experiments.cache import ResultCache
from vizlab.experiments.execute import BudgetWarning
from vizlab.experiments.inputs import Item, ItemSet, Problem, load_items
from vizlab.experiments.pacing import Pacer
from vizlab.experiments.plan import LOCAL_STAMP, backend_identity
from vizlab.experiments.rows import ROW_COLUMNS
from vizlab.experiments.runner import BudgetExceededError, ExperimentResult, map_prompt, run_experiment
from vizlab.experiments.scorers import LLMJudge, Score, get_scorer
from vizlab.experiments.spec import Arm, RunSpec

__all__ = [
    "Arm",
    "BudgetExceededError",
    "BudgetWarning",
    "ExperimentResult",
    "Item",
    "ItemSet",
    "LLMJudge",
    "LOCAL_STAMP",
    "Pacer",
    "Problem",
    "ROW_COLUMNS",
    "ResultCache",
    "RunSpec",
    "Score",
    "backend_identity",
    "get_scorer",
    "load_items",
    "map_prompt",
    "run_experiment",
]
