"""The Batch API: build JSONL input files, submit, follow, and read the outcomes (half the live price).

Submodules: :mod:`.files` (input files, manifests) and :mod:`.run` (submitting and reading back).
An experiment through the Batch API is ``vizlab.experiments.run_experiment(..., batch=True)``.
"""

from __future__ import annotations

from vizlab.batch.files import (
    BatchInput,
    BatchNotFinishedError,
    BatchRequest,
    batch_requests,
    build_batch,
    parse_custom_id,
)
from vizlab.batch.run import BatchRun, BatchStatus, record_from_completion, submit
from vizlab.models.batch import AZURE_LIMITS, OPENAI_LIMITS, BatchLimits

__all__ = [
    "AZURE_LIMITS",
    "OPENAI_LIMITS",
    "BatchInput",
    "BatchLimits",
    "BatchNotFinishedError",
    "BatchRequest",
    "BatchRun",
    "BatchStatus",
    "batch_requests",
    "build_batch",
    "parse_custom_id",
    "record_from_completion",
    "submit",
]
