"""The ``api-version`` query parameter of the backend's routes: which values each route accepts.

Dated routes require a published version and answer anything else with Azure's own 404 body
(the reason goes in the ``x-vizlab-detail`` header). v1 routes take no dated version, refuse one
with 400, and accept ``preview`` / ``latest`` as meaning none. Sources are beside the constants.
Details: docs/internals.md#local
"""

from __future__ import annotations

from vizlab.local.http.errors import AzureError

__all__ = [
    "GA_API_VERSIONS",
    "PREVIEW_API_VERSIONS",
    "KNOWN_API_VERSIONS",
    "V1_API_VERSIONS",
    "DETAIL_HEADER",
    "check_api_version",
    "check_v1_api_version",
    "unknown_version_detail",
]

# The published data-plane inference versions that have Chat Completions, as folders of
# Azure/azure-rest-api-specs, specification/cognitiveservices/data-plane/AzureOpenAI/inference/
# {stable,preview}/<version>/inference.json (stored copies read 2026-12-02), plus
# 2025-04-01-preview, the last dated preview ("Latest preview API release", Azure OpenAI API
# version lifecycle page, 2025-05 revision). 2022-12-01 and the 2022 previews have no chat
# (completions only) and are refused, as the service refuses chat on them. Azure announced
# retirements of old previews (e.g. 2023-*-preview "on July 1, 2024") and then postponed them
# (the page's 2025 revisions list 2023-06-01-preview and 2023-10-01-preview as still supported);
# the seeds use 2023-08-01-preview and 2023-12-01-preview, so every published preview is kept.
GA_API_VERSIONS = ("2023-05-15", "2024-02-01", "2024-06-01", "2024-10-21")
PREVIEW_API_VERSIONS = (
    "2023-03-15-preview",
    "2023-06-01-preview",
    "2023-07-01-preview",
    "2023-08-01-preview",
    "2023-09-01-preview",
    "2023-10-01-preview",
    "2023-12-01-preview",
    "2024-02-15-preview",
    "2024-03-01-preview",
    "2024-04-01-preview",
    "2024-05-01-preview",
    "2024-07-01-preview",
    "2024-08-01-preview",
    "2024-09-01-preview",
    "2024-10-01-preview",
    "2024-12-01-preview",
    "2025-01-01-preview",
    "2025-02-01-preview",
    "2025-03-01-preview",
    "2025-04-01-preview",
)
KNOWN_API_VERSIONS = tuple(sorted(GA_API_VERSIONS + PREVIEW_API_VERSIONS))
# What the v1 routes accept besides no api-version at all (see the comment on check_v1_api_version).
# "v1" is inferred, not recorded: @ai-sdk/azure sends api-version=v1 by default to Azure hosts.
V1_API_VERSIONS = ("v1", "preview", "latest")
# A response header that says, in words, why a refusal whose body must stay the service's happened.
DETAIL_HEADER = "x-vizlab-detail"


def unknown_version_detail(version: str | None) -> str:
    """Why a dated route refused ``version``, and what to send instead (for DETAIL_HEADER)."""
    what = "is missing" if not version else f"{version[:40]!r} is not a published version"
    return (
        f"vizlab local backend: the 'api-version' query parameter {what}. Use a GA version "
        f"({', '.join(GA_API_VERSIONS)}) or a preview one (newest {PREVIEW_API_VERSIONS[-1]}), "
        "or the /openai/v1 routes, which take none."
    )


# Any other version, and a missing one, gets Azure's 404 body byte for byte (quoted from a live
# response in openai/openai-python#362, 2023-04, api-version 2022-12-01 on chat; the missing case
# in MicrosoftDocs/azure-docs#114602, 2023-09).
def check_api_version(version: str | None) -> str:
    """``version`` if the dated routes accept it; else Azure's 404."""
    if version in KNOWN_API_VERSIONS:
        assert version is not None
        return version
    # Header values must be latin-1: the detail quotes the version only through repr() of ASCII.
    detail = unknown_version_detail(version).encode("ascii", "backslashreplace").decode("ascii")
    raise AzureError(404, "404", "Resource not found", type=None, headers={DETAIL_HEADER: detail}, bare=True)


# Azure's v1 API "removes the need for dated api-version parameters" and gates previews by a
# header or "alpha" in the path (learn.microsoft.com/azure/foundry/openai/api-version-lifecycle,
# "API evolution", stored copy read 2026-12). A dated version is refused with 400 "API version not
# supported", as spec-strict v1 resources answer (observed live, zendev-sh/goai#54, 2026-05).
# "preview" / "latest" were the v1 preview's values in 2025 (same page, 2025-08 revision); "v1" is
# what the Vercel AI SDK's @ai-sdk/azure sends by default (its provider's apiVersion default,
# inferred from the SDK, not from a recording).
def check_v1_api_version(version: str | None) -> str | None:
    """None (the v1 routes take no dated version), or Azure v1's 400 for a dated one."""
    if version is None or version in V1_API_VERSIONS:
        return None
    shown = version[:40]
    raise AzureError(
        400,
        "BadRequest",
        "API version not supported",
        type=None,
        headers={
            DETAIL_HEADER: (
                f"vizlab local backend: the /v1 routes take no api-version (got {shown!r}); "
                "drop the query parameter, or use the dated /openai/deployments/... routes."
            ).encode("ascii", "backslashreplace").decode("ascii")
        },
    )
