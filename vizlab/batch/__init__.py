"""The Batch API: build JSONL input files, submit, follow, and collect rows (half the live price).

Submodules: :mod:`.files` (input files, manifests, rows) and :mod:`.run` (submitting and collecting).
"""

from __future__ import annotations

from vizlab.batch.files import (
    BATCH_COLUMNS,
    COLUMNS,
    BatchInput,
    BatchNotFinishedError,
    BatchRequest,
    batch_requests,
    build_batch,
    experiment_row,
    parse_custom_id,
    reported_cost,
)
from vizlab.batch.run import BatchRun, BatchStatus, run_batch_experiment, submit
from vizlab.models.batch import AZURE_LIMITS, OPENAI_LIMITS, BatchLimits

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
