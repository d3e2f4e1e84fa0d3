"""Experiments on your own images: a prompt mapped over a folder, or a labelled grid of arms.

The package, by seam:

* :mod:`~vizlab.experiments.inputs`: folders, labels files (CSV / JSONL), DataFrames and the
  built-in sets become validated :class:`Item` rows; bad rows are reported, never dropped.
* :mod:`~vizlab.experiments.scorers`: pluggable scorers returning a score in [0, 1] and a reason.
* :mod:`~vizlab.experiments.strategies`: how an image is sent (whole, a fit box, crops).
* :mod:`~vizlab.experiments.pacing`: a token bucket kept under a deployment's TPM / RPM.
* :mod:`~vizlab.experiments.cache`: the append-only result log (resume after a kill).
* :mod:`~vizlab.experiments.runner`: :func:`run_experiment` and :func:`map_prompt`.
* :mod:`~vizlab.experiments.stats`: Wilson and bootstrap intervals, McNemar, Holm (scipy /
  statsmodels underneath).
* :mod:`~vizlab.experiments.report`: per-arm summaries, paired comparisons, the recommendation.
* :mod:`~vizlab.experiments.cli`: ``python -m vizlab.experiments run ...``.
* :mod:`~vizlab.experiments.legacy`: the older single-deployment ``run_detail_experiment``.
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
