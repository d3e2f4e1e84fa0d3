"""The ``api-version`` query parameter of the backend's routes: which values each route accepts.

Dated routes (``/openai/deployments/...``, ``/openai/files``...) require one; the ``/openai/v1``
and ``/v1`` routes take none. An unknown version gets Azure's 404.
"""

from __future__ import annotations

import datetime as dt
import re

from vizlab.local.errors import AzureError

__all__ = ["KNOWN_API_VERSIONS", "V1_API_VERSIONS", "check_api_version", "check_v1_api_version"]


# Versions documented for Azure OpenAI data-plane inference (Azure OpenAI API version lifecycle
# page, learn.microsoft.com, checked 2025); the seeds use 2023-08-01-preview, 2023-12-01-preview
# and 2024-02-15-preview. Other well-formed dates from EARLIEST_API_VERSION on are accepted too.
KNOWN_API_VERSIONS = (
    "2023-05-15",
    "2023-06-01-preview",
    "2023-07-01-preview",
    "2023-08-01-preview",
    "2023-09-01-preview",
    "2023-12-01-preview",
    "2024-02-01",
    "2024-02-15-preview",
    "2024-03-01-preview",
    "2024-04-01-preview",
    "2024-05-01-preview",
    "2024-06-01",
    "2024-07-01-preview",
    "2024-08-01-preview",
    "2024-09-01-preview",
    "2024-10-01-preview",
    "2024-10-21",
    "2024-12-01-preview",
    "2025-01-01-preview",
    "2025-02-01-preview",
    "2025-03-01-preview",
    "2025-04-01-preview",
)
# 2023-03-15-preview: the first api-version with chat completions; the only older data-plane one,
# 2022-12-01, has no chat (betalgo/openai wiki "Azure OpenAI", 2023-05-11). Earlier dates are
# refused as unknown.
EARLIEST_API_VERSION = dt.date(2023, 3, 15)
API_VERSION_PATTERN = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(-preview)?$")
# The /openai/v1 routes take no dated version; Azure's v1 API accepts these or none at all.
V1_API_VERSIONS = ("v1", "preview", "latest")


def version_ok(version: str) -> bool:
    match = API_VERSION_PATTERN.match(version)
    if not match:
        return False
    try:
        day = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return day >= EARLIEST_API_VERSION


def check_api_version(version: str | None) -> str:
    if version and version_ok(version):
        return version
    what = "is missing" if not version else f"{version[:40]!r} is not supported"
    raise AzureError(
        404,
        "404",
        f"Resource not found: the 'api-version' query parameter {what}. Use a dated version such as "
        f"2024-10-21 (GA) or 2025-01-01-preview; 2023-*-preview versions also accept the 2023 content "
        f"format. Known versions: {', '.join(KNOWN_API_VERSIONS)}.",
        param="api-version",
        type=None,
    )


def check_v1_api_version(version: str | None) -> str | None:
    if version is None or version in V1_API_VERSIONS:
        return None
    return check_api_version(version)

