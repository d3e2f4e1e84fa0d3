"""Dated facts that change: lifecycle per provider, images per request per API, disputed facts.

Each claim keeps its source and date; where sources disagree the newest is the default and the
others stay beside it (:class:`~vizlab.models.types.Disputed`). Read 2026-12-07 through stored
copies; a claim no stored copy showed is ``verified=False``. Data only: the functions that read it
(``lifecycle_warning``, ``default_local_model``) live in :mod:`vizlab.models.registry`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from vizlab.models.types import Claim, Disputed, Lifecycle, Source

__all__ = ["LIFECYCLES", "IMAGE_LIMITS", "DISPUTES", "INSTRUCTIONS_DISPUTE", "one"]


def one(value: object, source: Source) -> Disputed:
    """A fact with a single source (not disputed)."""
    return Disputed(Claim(value, source))


def _dates(*claims: tuple[str, Source]) -> Disputed:
    """Retirement dates, newest source first (the default)."""
    ordered = sorted(claims, key=lambda c: c[1].as_of, reverse=True)
    return Disputed(Claim(*ordered[0]), tuple(Claim(v, s) for v, s in ordered[1:]))


# --- sources -----------------------------------------------------------------------------------

AZURE_0331 = Source(
    "Azure retirements as reported in blog.liambellows.com (2026-03-30) and Microsoft Q&A 5828138 "
    "(2026-03-19): gpt-4o 2024-05-13 / 2024-08-06 and gpt-4o-mini 2024-07-18 retire 2026-03-31; "
    "replacements gpt-5.1 and gpt-4.1-mini", "2026-03-30",
)  # fmt: skip
AZURE_1001 = Source(
    "privatedevops.com/news/azure-openai-gpt-4o-retirement-october-2026 (2026-06-18): Azure retires "
    "gpt-4o 2024-11-20 and gpt-4o-mini 2024-07-18 on 2026-10-01 (HTTP 410 after), 'not extendable'", "2026-06-18",
)  # fmt: skip
AZURE_GPT4_SERIES = Source(
    "github.com/orgs/cometapi-dev/discussions/118 and techscurrent.com/?p=2733 (Foundry retirement table): "
    "Azure GPT-4 series (gpt-4.1 versions among them) deprecated, retirement 'October 2026'", "2026-07",
    note="no day stated: the 1st assumed (never warns late)",
)  # fmt: skip
AZURE_TABLE_0902 = Source(
    "Azure 'Model retirement schedule - Microsoft Foundry' (learn.microsoft.com/azure/foundry/openai/concepts/"
    "model-retirement-schedule, ms.date 2026-09-02, stored copy): gpt-4.1, gpt-4.1-mini, gpt-4.1-nano 2025-04-14 "
    "'Legacy', retirement 2027-04-14; gpt-5.6-luna, -sol, -terra 2026-07-09 GA, retirement 2028-01-11; gpt-5, -mini, "
    "-nano 2025-08-07 GA, retirement 2027-02-09; gpt-5.1 2025-11-13 GA 2027-05-15; gpt-5.2 2025-12-11 GA 2027-06-08; "
    "gpt-5.4 2026-03-05 GA 2027-09-02; gpt-5.4-mini, -nano 2026-03-17 GA 2027-09-21; gpt-5.5 2026-04-24 GA "
    "2027-10-26; o1 2024-12-17 Deprecated and o1-pro 2025-03-19 / o3 2025-04-16 GA, "
    "retirement 2026-10-21 -> gpt-5.6-sol; o3-mini 2025-01-31 Deprecated 2026-10-01 -> o4-mini; o4-mini 2025-04-16 "
    "Deprecated 2026-10-16; no GPT-6 rows", "2026-09-02",
)  # fmt: skip
AZURE_TABLE_0707 = Source(
    "the same retirement table one revision earlier (MicrosoftDocs/azure-ai-docs articles/foundry/openai/includes/"
    "concepts-model-retirement-schedule-content.md, ms.date 2026-07-07, stored copy): gpt-5, -mini, -nano 2025-08-07 "
    "GA, retirement 2027-02-06; gpt-5.1 2027-05-15; gpt-5.2 2026-12-12; gpt-5.4 2027-03-05; gpt-5.4-mini, -nano "
    "2027-03-18; gpt-5.5 2027-04-23; o1 2024-12-17 Deprecated 2026-09-16; o1-pro 2025-03-19 GA 2026-09-18; o3 2025-04-16 GA "
    "2026-10-16; o3-mini 2025-01-31 Deprecated 2026-10-01 -> o4-mini; o4-mini 2025-04-16 Deprecated 2026-10-16; no "
    "gpt-5.6 rows", "2026-07-07",
)  # fmt: skip
AZURE_GPT4O_2027 = Source(
    "a 2026-10 post moving Azure's gpt-4o retirement to 2027-04-14, as cited in issue 19", "2026-10",
    verified=False, note="the post itself was not found in the stored copies searched 2026-12-07",
)  # fmt: skip
OPENAI_1211 = Source(
    "OpenAI deprecation notice of 2026-06-11 as reported in privatedevops.com/news/openai-retires-gpt-5-o3-"
    "snapshots-december-2026 (2026-06-25): gpt-5-2025-08-07, gpt-5-mini-2025-08-07, gpt-5-nano-2025-08-07, "
    "o3-2025-04-16, o3-pro-2025-06-10 shut down 2026-12-11", "2026-06-25",
)  # fmt: skip
OPENAI_0422 = Source(
    "OpenAI deprecations, entry 2026-04-22 'Legacy GPT model snapshots' (stored diff spybara.com/openai/api/"
    "history/docs/en/2026-04-22-0555..2026-04-23-0556): computer-use-preview 2026-07-23 -> gpt-5.4-mini; "
    "gpt-4-0613 | gpt-4 2026-10-23; docs.apiyi.com/en/live/2026-11 (2026-11-23): gpt-4-turbo, o1, o1-pro, "
    "o3-mini, o4-mini, gpt-image-1 offline", "2026-04-22",
)  # fmt: skip
OPENAI_0114 = Source(
    "hashnode.com 'GPT-4o deprecation: a step-by-step checklist for moving to GPT-6 Luna' (toolbit.ai): OpenAI "
    "removes gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini from its API on 2027-01-14", "2026-10",
    note="third-party summary of the deprecations page; month of writing inferred from GPT-6 Luna (2026-09-22)",
)  # fmt: skip
GPT6_PAGES = Source(
    "vercel.com/ai-gateway/models (gpt-6-astra, gpt-6-luna, gpt-6.2-sol), docs.venice.ai (gpt-6-sol, "
    "gpt-6-luna: released 2026-09-22), Vertex model card gpt-6.1-sol (Preview, 2026-11)", "2026-11",
)  # fmt: skip
AZURE_ASTRA = Source(
    "github.com/Azure/azure-rest-api-specs/issues/46145: GPT-6 Astra (2026-09-03, GlobalStandard) deployed "
    "and called on Azure v1 Responses", "2026-09-06", verified=False,
    note="shows it is deployable on Azure; general availability is not stated",
)  # fmt: skip

# --- lifecycle per provider ---------------------------------------------------------------------

_GA_AZ = "generally-available"


def _azure_table(status: str, since: str, *dates: tuple[str, Source], replacement: str | None = None) -> Lifecycle:
    """A lifecycle read from Azure's retirement table (2026-09-02); the stage is the table's, as of that copy."""
    return Lifecycle("azure", status, AZURE_TABLE_0902, since=since, retires=_dates(*dates), replacement=replacement)


# gpt-5.6 tiers: GA on Azure since 2026-07-09, retiring 2028-01-11 (AZURE_TABLE_0902; the 07-07 copy lists no gpt-5.6).
_AZURE_56 = _azure_table(_GA_AZ, "2026-07-09", ("2028-01-11", AZURE_TABLE_0902))
# gpt-5 family: 2027-02-09 in the 09-02 table, 2027-02-06 in the 07-07 copy (DISPUTED; the newest is the default).
_AZURE_5 = _azure_table(_GA_AZ, "2025-08-07", ("2027-02-09", AZURE_TABLE_0902), ("2027-02-06", AZURE_TABLE_0707))
# o-series: the 09-02 table moved o1 / o1-pro / o3 to 2026-10-21 (07-07: 09-16 / 09-18 / 10-16); all past by 2026-12-07.
_AZURE_O_1021 = {
    name: _azure_table(status, since, ("2026-10-21", AZURE_TABLE_0902), (earlier, AZURE_TABLE_0707),
                       replacement="gpt-5.6-sol")
    for name, status, since, earlier in (("o1", "deprecated", "2024-12-17", "2026-09-16"),
                                         ("o1-pro", _GA_AZ, "2025-03-19", "2026-09-18"),
                                         ("o3", _GA_AZ, "2025-04-16", "2026-10-16"))
}  # fmt: skip

# gpt-5.2 / 5.4 / 5.5: the 09-02 table moved every retirement later than the 07-07 copy had it (DISPUTED;
# the newest is the default): (GA on Azure, retirement 09-02, retirement 07-07).
_AZURE_5X = {
    name: MappingProxyType({"azure": _azure_table(_GA_AZ, since, (later, AZURE_TABLE_0902), (earlier, AZURE_TABLE_0707))})
    for name, since, later, earlier in (("gpt-5.2", "2025-12-11", "2027-06-08", "2026-12-12"),
                                        ("gpt-5.4", "2026-03-05", "2027-09-02", "2027-03-05"),
                                        ("gpt-5.4-mini", "2026-03-17", "2027-09-21", "2027-03-18"),
                                        ("gpt-5.4-nano", "2026-03-17", "2027-09-21", "2027-03-18"),
                                        ("gpt-5.5", "2026-04-24", "2027-10-26", "2027-04-23"))
}  # fmt: skip

_OPENAI_4x = Lifecycle("openai", "deprecated", OPENAI_0114, retires=_dates(("2027-01-14", OPENAI_0114)),
                       replacement="gpt-6-luna")  # fmt: skip
_OPENAI_1211 = Lifecycle("openai", "deprecated", OPENAI_1211, retires=_dates(("2026-12-11", OPENAI_1211)))

LIFECYCLES: Mapping[str, Mapping[str, Lifecycle]] = MappingProxyType({
    "gpt-4o": MappingProxyType({
        "azure": Lifecycle("azure", "deprecated", AZURE_1001, replacement="gpt-5.1",
                           retires=_dates(("2026-03-31", AZURE_0331), ("2026-10-01", AZURE_1001),
                                          ("2027-04-14", AZURE_GPT4O_2027)),
                           note="dates differ by version: 2024-05-13 / 2024-08-06 (03-31), 2024-11-20 (10-01)"),
        "openai": _OPENAI_4x}),
    "gpt-4o-mini": MappingProxyType({
        "azure": Lifecycle("azure", "deprecated", AZURE_1001, replacement="gpt-4.1-mini",
                           retires=_dates(("2026-03-31", AZURE_0331), ("2026-10-01", AZURE_1001))),
        "openai": _OPENAI_4x}),
    "gpt-4.1": MappingProxyType({
        "azure": Lifecycle("azure", "deprecated", AZURE_GPT4_SERIES, retires=_dates(("2026-10-01", AZURE_GPT4_SERIES),
                                                                   ("2027-04-14", AZURE_TABLE_0902)),
                           note="closed to new customers (deprecated) before retirement"),
        "openai": _OPENAI_4x}),
    "gpt-4.1-mini": MappingProxyType({
        "azure": Lifecycle("azure", "deprecated", AZURE_GPT4_SERIES, retires=_dates(("2026-10-01", AZURE_GPT4_SERIES),
                                                                   ("2027-04-14", AZURE_TABLE_0902))),
        "openai": _OPENAI_4x}),
    "gpt-4-turbo": MappingProxyType({
        "openai": Lifecycle("openai", "retired", OPENAI_0422, retires=_dates(("2026-10-23", OPENAI_0422)),
                            replacement="gpt-4.1-mini",
                            note="the stored excerpt shows the gpt-4-0613 | gpt-4 row; gpt-4-turbo reported offline")}),
    "gpt-5": MappingProxyType({"azure": _AZURE_5, "openai": _OPENAI_1211}),
    "gpt-5-mini": MappingProxyType({"azure": _AZURE_5, "openai": _OPENAI_1211}),
    "gpt-5-nano": MappingProxyType({"azure": _AZURE_5, "openai": _OPENAI_1211}),
    "o1": MappingProxyType({"azure": _AZURE_O_1021["o1"]}),
    "o1-pro": MappingProxyType({"azure": _AZURE_O_1021["o1-pro"]}),
    "o3": MappingProxyType({"azure": _AZURE_O_1021["o3"], "openai": _OPENAI_1211}),
    "o3-mini": MappingProxyType({"azure": _azure_table("deprecated", "2025-01-31", ("2026-10-01", AZURE_TABLE_0902),
                                                       ("2026-10-01", AZURE_TABLE_0707), replacement="o4-mini")}),
    "o4-mini": MappingProxyType({"azure": _azure_table("deprecated", "2025-04-16", ("2026-10-16", AZURE_TABLE_0902),
                                                       ("2026-10-16", AZURE_TABLE_0707))}),
    "gpt-5.1": MappingProxyType({"azure": _azure_table(_GA_AZ, "2025-11-13", ("2027-05-15", AZURE_TABLE_0902),
                                                       ("2027-05-15", AZURE_TABLE_0707))}),
    **_AZURE_5X,
    "gpt-5.6-sol": MappingProxyType({"azure": _AZURE_56}),
    "gpt-5.6-terra": MappingProxyType({"azure": _AZURE_56}),
    "gpt-5.6-luna": MappingProxyType({"azure": _AZURE_56}),
    "computer-use-preview": MappingProxyType({
        "openai": Lifecycle("openai", "retired", OPENAI_0422, retires=_dates(("2026-07-23", OPENAI_0422)),
                            replacement="gpt-5.4-mini")}),
    "gpt-6-astra": MappingProxyType({"azure": Lifecycle("azure", "preview", AZURE_ASTRA, since="2026-09-03")}),
})  # fmt: skip

# --- images per request, by provider and API ----------------------------------------------------

AZURE_CHAT_10 = Source(
    "Azure OpenAI vision how-tos (seeds/03 2024-08-21, seeds/05 2025): 'a limit of 10 images per chat request'",
    "2025",
)  # fmt: skip
AZURE_RESP_50_ASTRA = Source(
    "measured: github.com/Azure/azure-rest-api-specs/issues/46145 (gpt-6-astra 2026-09-03, v1 Responses): 50 "
    "images accepted, 51 refused: 'Exceeded maximum number of images (50) allowed in the request.'", "2026-09-06",
)  # fmt: skip
AZURE_RESP_50_TERRA = Source(
    "measured: github.com/anomalyco/opencode/issues/39677 (gpt-5.6-terra routed to Azure, Responses input): "
    "'Exceeded maximum number of images (50) allowed in the request.'", "2026-07-30",
)  # fmt: skip

IMAGE_LIMITS: Mapping[str, Mapping[str, Disputed]] = MappingProxyType({
    name: MappingProxyType({"azure/chat": one(10, AZURE_CHAT_10), "azure/responses": one(50, src)})
    for name, src in (("gpt-6-astra", AZURE_RESP_50_ASTRA), ("gpt-5.6-terra", AZURE_RESP_50_TERRA))
})  # fmt: skip

# --- other disputed facts -----------------------------------------------------------------------

_GUIDE_NEW = Source(
    "OpenAI 'Images and vision' guide, newest revision (developers.openai.com/api/docs/guides/images-vision)",
    "2026-06 revision, read 2026-12-02",
)  # fmt: skip
_MEASURED_2362 = Source(
    "measured: community.openai.com/t/1230130 (gpt-4.1-mini, 2400x1800 PNG at high billed 2,362 prompt tokens; "
    "the 1,536-patch budget of the 2025-08 profile gives 2,354 image tokens, + 8 text as gpt-4.1's 773 = 765 + 8)", "2025-04",
)  # fmt: skip
_SOL_LIST = Source(
    "github.com/gramext/dist v0.1.0 (2026-09-24): the gpt-5.6-sol cut is a promotion 'guaranteed only through "
    "2026-11-21', list price 5.00 / 30.00 (OpenAI announcement 2026-06-26)", "2026-09-24",
)  # fmt: skip
_SOL_PROMO = Source(
    "docs.laozhang.ai/announcements/gpt-5-6-sol-price-cut-2026-09 (2026-09-24) and github.com/lujstn/openbrowse "
    "v1.10.1 (2026-08-24): OpenAI promotion from 2026-08-21, 4.00 / 20.00 (cached 0.40, write 5.00), 'at least "
    "through 2026-11-21'", "2026-09-24",
)  # fmt: skip

# The same Responses request (gpt-4o-2024-08-06, instructions "You are a helpful assistant.", one user
# message "What is the capital of France?") billed 42 on 2025-03-27 and 24 on 2025-04-07: service drift.
# Estimates take the larger claim (never under) and say it is disputed (tokens.request).
INSTRUCTIONS_DISPUTE = "responses_instructions_tokens"
_INSTR_0407 = Source(
    "measured: github.com/pydantic/pydantic-ai cassettes test_openai_responses_model_instructions.yaml (created "
    "2025-04-07, billed 24) and test_openai_responses_runs_with_instructions_only.yaml (2025-11-26, billed 23): "
    "instructions cost what a developer message costs (cookbook rule), nothing more", "2025-11-26",
)  # fmt: skip
_INSTR_0327 = Source(
    "measured: github.com/pydantic/pydantic-ai cassette test_openai_responses_system_prompt.yaml (created "
    "2025-03-27, commit bea16058f): the same request as test_openai_responses_model_instructions.yaml billed 42, "
    "18 more", "2025-03-27",
)  # fmt: skip

DISPUTES: Mapping[str, Mapping[str, Disputed]] = MappingProxyType({
    "gpt-4o": MappingProxyType({INSTRUCTIONS_DISPUTE: Disputed(Claim(0, _INSTR_0407), (Claim(18, _INSTR_0327),))}),
    "gpt-4.1-mini": MappingProxyType({"image_rule": Disputed(
        Claim("high: 6,144-patch budget (2400x1800 -> 4,978 tokens)", _GUIDE_NEW),
        (Claim("high: 1,536-patch budget (2400x1800 -> 2,354 image tokens; rules='2025-08')", _MEASURED_2362),))}),
    "gpt-5.6-sol": MappingProxyType({"prices": Disputed(
        Claim("input 5.00 / output 30.00 (list)", _SOL_LIST),
        (Claim("input 4.00 / output 20.00 (promotion 2026-08-21 to at least 2026-11-21)", _SOL_PROMO),))}),
})  # fmt: skip
