"""Wire-protocol facts shared by the client side and the built-in backend.

A bottom-layer module (stdlib only): :mod:`vizlab.batch` and :mod:`vizlab.local` both read these
numbers from here, so the files the client writes and the files the backend accepts obey the
same limits, and the backend never imports client-side code. Each number cites its source and
the date it was read.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BatchLimits", "OPENAI_LIMITS", "AZURE_LIMITS"]


@dataclass(frozen=True)
class BatchLimits:
    """Most requests and bytes one Batch input file may hold."""

    max_requests: int
    max_bytes: int
    source: str


# OpenAI: "The file can contain up to 50,000 requests, and can be up to 200 MB in size" (Batch
# API reference, batches.create input_file_id; quoted in the openai SDK 3.52.0 docstring, read
# 2026). Azure global batch: "Maximum requests per file 100,000", "Maximum input file size
# 200 MB" (MicrosoftDocs/azure-ai-docs, Azure OpenAI quotas and limits, "Batch limits", ms.date
# 2025-01-27 and 2025-02-12). MB read as MiB here would overshoot, so 200 * 10**6 bytes.
OPENAI_LIMITS = BatchLimits(50_000, 200 * 1000 * 1000, "OpenAI Batch API reference, 2026")
AZURE_LIMITS = BatchLimits(100_000, 200 * 1000 * 1000, "Azure OpenAI quotas and limits, Batch limits, 2025-02")
