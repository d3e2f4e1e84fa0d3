"""The model registry, the bottom layer: every model fact vizlab uses, with its source and date.

Submodules: :mod:`.types` (the records), :mod:`.families` (the table), :mod:`.registry` (lookup by
exact name, alias or dated snapshot), :mod:`.batch` (Batch API limits), :mod:`.versions` (the dated
name each model's deployments report, per Azure's published versions).
"""

from __future__ import annotations

from vizlab.models.batch import BatchLimits
from vizlab.models.registry import (
    DEFAULT_LOCAL_RULE,
    canonical_name,
    default_local_model,
    families,
    known_names,
    lifecycle_warning,
    lookup,
    register,
    snapshots,
)
from vizlab.models.types import (
    DETAILS,
    NEWEST,
    PROVIDERS,
    REASONING_REJECTED,
    RULE_PROFILES,
    CachingRule,
    Claim,
    Cost,
    Disputed,
    ImageRule,
    Lifecycle,
    ModelInfo,
    PatchLimit,
    PatchRule,
    Prices,
    Source,
    TileRule,
)
from vizlab.models.versions import VERSIONS, azure_version

__all__ = [
    "Source",
    "Prices",
    "Cost",
    "TileRule",
    "PatchLimit",
    "PatchRule",
    "ImageRule",
    "CachingRule",
    "ModelInfo",
    "NEWEST",
    "RULE_PROFILES",
    "DETAILS",
    "PROVIDERS",
    "REASONING_REJECTED",
    "lookup",
    "families",
    "register",
    "known_names",
    "canonical_name",
    "snapshots",
    "BatchLimits",
    "Claim",
    "Disputed",
    "Lifecycle",
    "lifecycle_warning",
    "default_local_model",
    "DEFAULT_LOCAL_RULE",
    "VERSIONS",
    "azure_version",
]
