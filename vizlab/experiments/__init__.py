"""Experiments on your own images: a prompt mapped over a folder, or a labelled grid of arms.

By seam: ``inputs`` (validated items), ``scorers``, ``strategies`` (how an image is sent),
``pacing`` (TPM / RPM), ``cache`` (append-only results), ``runner`` (:func:`run_experiment`,
:func:`map_prompt`), ``stats``, ``report``, ``cli``, and ``legacy`` (the older
``run_detail_experiment``). Details: docs/internals.md#experiments
"""

from __future__ import annotations

from vizlab.batch.files import COLUMNS, experiment_row
from vizlab.experiments.cache import ResultCache
from vizlab.experiments.inputs import Item, ItemSet, Problem, load_items
from vizlab.experiments.legacy import Trial, backend_identity, run_detail_experiment, summarize
from vizlab.experiments.pacing import Pacer
from vizlab.experiments.runner import (
    LOCAL_STAMP,
    Arm,
    BudgetExceededError,
    BudgetWarning,
    ExperimentResult,
    map_prompt,
    run_experiment,
)
from vizlab.experiments.scorers import LLMJudge, Score, get_scorer

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
    "Score",
    "get_scorer",
    "load_items",
    "map_prompt",
    "run_experiment",
    "COLUMNS",
    "ResultCache",
    "Trial",
    "backend_identity",
    "experiment_row",
    "run_detail_experiment",
    "summarize",
]
