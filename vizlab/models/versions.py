"""Model versions: the dated name a deployment reports (``gpt-5-mini`` -> ``gpt-5-mini-2025-08-07``).

Azure deploys a model at a version and its responses carry ``<model>-<version>``. Versions are read
from Azure's retirement table (a stored copy, ms.date 2026-09-02); a family with no published
version keeps a ``verified=False`` claim (a user's sighting, or none), which the built-in backend
does not report. Data plus one look-up; :mod:`vizlab.local.config` reads it.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from vizlab.models.types import Claim, Source

__all__ = ["AZURE_RETIREMENT_TABLE", "VERSIONS", "azure_version"]

AZURE_RETIREMENT_TABLE = Source(
    "Azure 'Model retirement schedule - Microsoft Foundry' (learn.microsoft.com/azure/foundry/openai/concepts/"
    "model-retirement-schedule, ms.date 2026-09-02, stored copy), table 'Azure OpenAI', column Version; the "
    "newest listed version of each model",
    "2026-09-02",
)  # fmt: skip
_NONE_PUBLISHED = Source(
    "no dated version published: not in Azure's retirement table (2026-09-02) nor another stored copy read "
    "2026-12-07", "2026-12-07", verified=False,
)  # fmt: skip
_ASTRA = Source(
    "github.com/Azure/azure-rest-api-specs/issues/46145: a user's deployment of 'GPT-6 Astra (2026-09-03, "
    "GlobalStandard)'", "2026-09-06", verified=False, note="a sighting, not Azure's table",
)  # fmt: skip
_GPT55 = Source(
    AZURE_RETIREMENT_TABLE.text, AZURE_RETIREMENT_TABLE.as_of,
    note="OpenAI's API reports gpt-5.5-2026-04-23 (github.com/pydantic/pydantic-ai cassettes, 2026-07); Azure "
         "lists version 2026-04-24",
)  # fmt: skip

_TABLE = {
    "gpt-4o": "2024-11-20", "gpt-4o-mini": "2024-07-18", "gpt-4.1": "2025-04-14", "gpt-4.1-mini": "2025-04-14",
    "gpt-4.1-nano": "2025-04-14", "o1": "2024-12-17", "o1-pro": "2025-03-19", "o3-mini": "2025-01-31",
    "o3": "2025-04-16", "o3-pro": "2025-06-10", "o4-mini": "2025-04-16", "gpt-5": "2025-08-07",
    "gpt-5-mini": "2025-08-07", "gpt-5-nano": "2025-08-07", "gpt-5.1": "2025-11-13", "gpt-5.2": "2025-12-11",
    "gpt-5.4": "2026-03-05", "gpt-5.4-mini": "2026-03-17", "gpt-5.4-nano": "2026-03-17",
    "gpt-5.6-luna": "2026-07-09", "gpt-5.6-sol": "2026-07-09", "gpt-5.6-terra": "2026-07-09",
    "gpt-image-1": "2025-04-15", "gpt-realtime": "2025-08-28",
}  # fmt: skip

VERSIONS: Mapping[str, Claim] = MappingProxyType({
    **{name: Claim(version, AZURE_RETIREMENT_TABLE) for name, version in _TABLE.items()},
    "gpt-5.5": Claim("2026-04-24", _GPT55),
    "gpt-6-astra": Claim("2026-09-03", _ASTRA),
    **{name: Claim(None, _NONE_PUBLISHED) for name in ("gpt-6-sol", "gpt-6-luna", "gpt-6.1-sol", "gpt-6.2-sol")},
})  # fmt: skip


def azure_version(family: str) -> str | None:
    """The version Azure publishes for ``family`` (a registry family name), or None if none is published.

    >>> azure_version("gpt-5-mini"), azure_version("gpt-6-sol")
    ('2025-08-07', None)
    """
    claim = VERSIONS.get(family)
    if claim is None or claim.value is None or not claim.source.verified:
        return None
    return str(claim.value)
