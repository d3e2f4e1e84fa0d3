"""The families table: every model vizlab knows, each fact with its source and date.

Sources: OpenAI's "Images and vision" guide (newest revision, read 2026-12-02, and the 2025-08
one), openai.com/api/pricing and dated copies of it, the reasoning guide, the prompt-caching
guides, Azure's model pages and quotas. Where sources disagree the default is the newest one and
the older stays selectable by rule profile (see docs/ARCHITECTURE.md, "The registry").
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Mapping

from vizlab.models import lifecycles
from vizlab.models.types import (
    AZURE_2023,
    AZURE_PREVIEW_RULE,
    NEWEST,
    REASONING_REJECTED,
    CachingRule,
    ImageRule,
    ModelInfo,
    ParamRules,
    PatchLimit,
    PatchRule,
    Prices,
    Source,
    TileRule,
)

GUIDE_NEW = Source(
    "OpenAI 'Images and vision' guide, newest revision (developers.openai.com/api/docs/guides/images-vision)",
    "2026-06 revision, read 2026-12-02",
)
GUIDE_2025_08 = Source(
    "OpenAI 'Images and vision' guide, 2025-08 revision (stored copy openai-hd4n6.mintlify.app/docs/guides/images)",
    "2025-08",
)
GUIDE_2023_11 = Source(
    "OpenAI vision guide, 2023-11 revision (platform.openai.com/docs/guides/vision/calculating-costs)", "2023-11"
)
AZURE_IMAGES = Source(
    "Azure OpenAI vision how-tos (seeds/03 2024-08-21, seeds/05 2025): 'a limit of 10 images per chat request'",
    "2025",
)
OPENAI_IMAGES = Source(GUIDE_NEW.text + ", 'Image input requirements': up to 1,500 images per request", GUIDE_NEW.as_of)
TIKTOKEN = Source("tiktoken model map (tiktoken/model.py, 0.14): gpt-4o and later o200k_base, gpt-4 cl100k_base", "2025")
REASONING_DOC = Source(
    "OpenAI reasoning guide, limitations (platform.openai.com/docs/guides/reasoning); max_tokens 400 "
    "'Use max_completion_tokens instead' (code unsupported_parameter)",
    "2025",
)
GPT51_NONE = Source(
    "OpenAI 'Using GPT-5.1' guide: temperature, top_p, logprobs only with reasoning effort 'none' (the default), "
    "as cited in github.com/vercel/ai/issues/10932",
    "2025-11",
)
MODEL_PAGES = Source(
    "OpenAI model pages (platform.openai.com/docs/models/<name>), as remembered from 2025 pages", "2025",
    verified=False, note="not re-read: no stored copy found",
)  # fmt: skip
NOT_FOUND = "no source found that states it"
AZURE_LIMITS = Source(
    "'Azure OpenAI in Microsoft Foundry models' (MicrosoftDocs/azure-ai-docs, models-azure-direct-openai include, "
    "ms.date 2026-01-14), columns 'Context window / Max output tokens' or 'Max request: Input / Output'",
    "2026-01-14 (read 2026)",
)

_P_2025 = "openai.com/api/pricing (standard tier; cross-checked 2026 against stored copies of pricing tables)"
_P_MEMORY = "openai.com/api/pricing (as listed 2025; not re-verified)"
_P_54 = "OpenAI pricing as copied in tokenmix.ai/blog/openai-api-cost-2026-gpt-5-5-5-4-nano-batch"
_P_56 = (
    "OpenAI GPT-5.6 preview pricing as quoted in apimaster.ai/blog/gpt-56-sol-terra-luna-preview-2026 and "
    "howtonotcode.com/story/2218 (cache reads 90 % off, cache writes 1.25x input)"
)


def _prices(inp: float, out: float, cached: float | None, source: str, as_of: str, *, verified: bool = True,
            batch: bool = True, cache_write: float | None = None, note: str = "") -> Prices:  # fmt: skip
    # Batch: "50% cost discount vs. the synchronous APIs" (help.openai.com/en/articles/9197833, 2025-08).
    return Prices(inp, out, cached, inp / 2 if batch else None, out / 2 if batch else None, cache_write,
                  source, as_of, verified, note)  # fmt: skip


_CACHE_SRC = Source(
    "OpenAI 'Prompt caching' guide (developers.openai.com/api/docs/guides/prompt-caching): automatic from 1,024 "
    "tokens, gpt-4o and newer, no fee for writes; in-memory retention 5-10 min idle, at most 1 h; 'in_memory' / "
    "'24h' prompt_cache_retention; cache hits in 128-token increments (2024-10 wording)",
    "2026 copy",
)
_CACHE = CachingRule(True, 1024, 128, ("in_memory",), False, _CACHE_SRC)
_CACHE_24H = replace(_CACHE, retention=("in_memory", "24h"), note="extended 24h retention listed for gpt-4.1, gpt-5, gpt-5.1")
_CACHE_24H_GUESS = replace(_CACHE_24H, note="24h retention assumed for this newer family (not seen listed)")
_NO_CACHE = CachingRule(False, 0, 0, (), False, _CACHE_SRC, note="before gpt-4o: no prompt caching")
_CACHE_56 = CachingRule(
    True, 1024, 128, ("30min-minimum",), True,
    Source("Azure 'Prompt caching' (learn.microsoft.com/azure/foundry/openai/how-to/prompt-caching, 2026): cache "
           "writes billed on GPT-5.6 and later; 30-minute minimum cache life and explicit breakpoints per the "
           "GPT-5.6 preview notes (apimaster.ai, howtonotcode.com, 2026-06-27)", "2026-06-27"),
    note="minimum prefix and step for gpt-5.6 not restated; assumed as for earlier families",
)  # fmt: skip


_NO_PARAMS = ParamRules(False, (), None, frozenset(), MappingProxyType({}), Source("not a reasoning model", "2025"))


def _reasoning(efforts: tuple[str, ...], default: str | None, source: Source = REASONING_DOC,
               accepted_at: Mapping[str, frozenset[str]] | None = None) -> ParamRules:  # fmt: skip
    return ParamRules(True, efforts, default, REASONING_REJECTED, MappingProxyType(dict(accepted_at or {})), source)


def _tile(name: str, base: int, per_tile: int, *, new: bool = True, old: bool = True,
          old_source: Source = GUIDE_2025_08) -> dict[str, ImageRule]:  # fmt: skip
    rules: dict[str, ImageRule] = {}
    if new:
        rules[NEWEST] = TileRule(name, base, per_tile, NEWEST, GUIDE_NEW)
    if old:
        rules["2025-08"] = TileRule(name, base, per_tile, "2025-08", old_source, short_rounding="round")
    return rules


_LOW_SAME = "low not published separately: a forum measurement (128x64 on gpt-4.1-mini / nano / o4-mini, " \
    "community.openai.com/t/1262691) billed low and high the same"


# The guide says only "apply a multiplier"; the 2025-04 patch models bill one token more per image
# than ceil(patches x multiplier), on every measurement found (the gpt-5 family does not).
PLUS_ONE_2025_04 = Source(
    "measured: ceil(patches x multiplier) + 1 per image. gpt-4.1-nano 540x360 (204 patches x 2.46 = 501.84) "
    "billed 503 image tokens on Chat and on Responses (github.com/pydantic/pydantic-ai cassettes "
    "test_image_url_input_force_download*.yaml, 2025-10-07); community.openai.com/t/1262691 (2025-05), 128x64 "
    "(8 patches) + five words: gpt-4.1-mini 26 = 13 + 1 + 12, gpt-4.1-nano 33 = 20 + 1 + 12 (gpt-4.1 267 = 255 + "
    "12), o4-mini 26 = 14 + 1 + 11 (o3 236 = 225 + 11); community.openai.com/t/1230130 (2025-04): gpt-4.1-mini "
    "2400x1800 billed 2,362 = 2,353 + 1 + 8 (gpt-4.1 773 = 765 + 8). gpt-5-mini (1.2) bills ceil() exactly "
    "(pydantic-ai test_mixed_content_ordering[openai_chat].yaml)", "2025-10-07",
)  # fmt: skip


def _old_patch(name: str, multiplier: float, per_image: int = 0) -> PatchRule:
    lim = PatchLimit(2048, 1536)
    low = PatchLimit(2048, 1536, verified=False, note=_LOW_SAME)
    return PatchRule(name, multiplier, MappingProxyType({"low": low, "high": lim}), "high", "2025-08", GUIDE_2025_08,
                     per_image=per_image, per_image_source=PLUS_ONE_2025_04 if per_image else None)  # fmt: skip


def _limits(**kw: PatchLimit) -> Mapping[str, PatchLimit]:
    return MappingProxyType(kw)


_L6144 = PatchLimit(2048, 6144)
_L2500 = PatchLimit(2048, 2500)
_L10K = PatchLimit(6000, 10000)
_L512 = PatchLimit(512, None)


# --- the families -----------------------------------------------------------------------------

_O200K, _CL100K = "o200k_base", "cl100k_base"
_IMAGES = MappingProxyType({"azure": 10, "openai": 1500})
_IMAGES_FACT = Source(f"azure 10: {AZURE_IMAGES.text}; openai 1500: {OPENAI_IMAGES.text}", "2025 / 2026-06")


def _facts(*, limits: Source = MODEL_PAGES, lifecycle: Source | None = None, encoding: Source = TIKTOKEN,
           vision: Source = GUIDE_NEW) -> Mapping[str, Source]:  # fmt: skip
    return MappingProxyType({
        "vision": vision,
        "encoding": encoding,
        "context_window": limits,
        "max_output": limits,
        "images": _IMAGES_FACT,
        "lifecycle": lifecycle or Source("no deprecation listed in the sources read", "2026-12-02"),
    })  # fmt: skip


_DEPRECATED_NEW = Source(
    GUIDE_NEW.text + ": marked 'Deprecated and scheduled for shutdown' (see developers.openai.com/api/docs/deprecations)",
    GUIDE_NEW.as_of, note="shutdown date not read: no stored copy of the deprecations page found",
)
_GPT56_PREVIEW = Source("OpenAI GPT-5.6 limited preview announced 2026-06-26 (apimaster.ai, finout.io, 2026-06-27)",
                        "2026-06-27", note="general availability 'in the coming weeks'; not confirmed since")
_NO_VISION = Source("OpenAI model pages: text input only (o1-mini, o3-mini take no image input)", "2025",
                    verified=True)


def _model(name: str, *, rules: dict[str, ImageRule] | None, encoding: str = _O200K, ctx: int, out: int,
           prices: Prices, lifecycle: str = "generally-available", retires: str | None = None,
           params: ParamRules = _NO_PARAMS, caching: CachingRule = _CACHE, aliases: tuple[str, ...] = (),
           facts: Mapping[str, Source] | None = None, note: str = "",
           max_input: int | None = None) -> ModelInfo:  # fmt: skip
    return ModelInfo(
        name=name, vision=rules is not None, encoding=encoding, context_window=ctx, max_output=out,
        prices=prices, lifecycle=lifecycle, retires=retires, params=params, caching=caching,
        rules=MappingProxyType(rules or {}), images=_IMAGES, facts=facts or _facts(), aliases=aliases, note=note,
        max_input=max_input,
    )  # fmt: skip


_EFF3 = ("low", "medium", "high")
_EFF_GPT5 = ("minimal", "low", "medium", "high")
_EFF_NONE_X = ("none", "low", "medium", "high", "xhigh")
_SAMPLING_AT_NONE = MappingProxyType({"none": frozenset({"temperature", "top_p", "logprobs"})})
_UNVERIFIED_EFFORTS = Source(
    "efforts and default as remembered from OpenAI's model pages for the gpt-5.2+ generation", "2026",
    verified=False, note="no stored copy found; sampling parameters refused at every effort (conservative)",
)
_GPT52_PARAMS = Source(
    GPT51_NONE.text + "; gpt-5.2 taken to behave like gpt-5.1 (default 'none' accepts temperature: "
    "github.com/langchain-ai/langchain/issues/35423)", "2026", verified=False,
)
_GPT56_PARAMS = Source(
    "efforts none..max: wardby docs ('low through max') and github.com/itzcrazykns/vane/issues/1173 ('set "
    "reasoning_effort to none'); temperature refused: github.com/khoj-ai/khoj/issues/1377", "2026-07",
    verified=False, note="default effort not stated by any source found; 'medium' assumed",
)


_ORIGINAL_30K = PatchLimit(
    65535, None, reject_over=30_000,
    reject_message="Image exceeds the maximum of 30,000 patches for detail 'original'; resize it or use "
                   "detail 'high'.",
    note="no budget (guide); the 30,000-patch refusal is per issue 19's reading of dated copies (not seen here), "
         "and its message is vizlab's wording, not the service's",
)  # fmt: skip
_P56_OFFICIAL = (
    "developers.openai.com/api/docs/models/gpt-5.6-luna (2026-07 copy: 0.20 / 1.20, cached 0.02; GPT-5.6 Terra "
    "2.00) and github.com/TheKrush/PromptFuel v1.0.19 (reductions effective 2026-07-30: terra 2.00 / 12.00, "
    "cached 0.20; luna 0.20 / 1.20, cached 0.02)"
)
_P56_TERRA = _prices(2.00, 12.00, 0.20, _P56_OFFICIAL, "2026-07-30", cache_write=2.50,
                     note="June preview price 2.50 / 15.00 until 2026-07-30")
_P56_LUNA = _prices(0.20, 1.20, 0.02, _P56_OFFICIAL, "2026-07-30", cache_write=0.25,
                    note="June preview price 1.00 / 6.00 until 2026-07-30")
_P56_SOL = _prices(5.00, 30.00, 0.50, "gpt-5.6-sol list price (github.com/gramext/dist v0.1.0, 2026-09-24; "
                   "announced 2026-06-26)", "2026-09-24", cache_write=6.25,
                   note="DISPUTED: promotion 4.00 / 20.00 from 2026-08-21 'at least through 2026-11-21'; the "
                        "list price is the default (see explain())")  # fmt: skip
_GPT56_GA = Source("OpenAI model page gpt-5.6-luna (API, Chat Completions and Responses listed; 2026-07 copy)",
                   "2026-07", note="limited preview from 2026-06-26; API prices published 2026-07-30")
_P6 = (
    "OpenAI pricing as quoted by github.com/merefield/codexometer v0.18.4 ('OpenAI's September 22 pricing': "
    "GPT-6 Sol 2 / 10, cached 0.20, writes 2.50; Luna 0.10 / 0.50, cached 0.01, writes 0.125) and "
    "github.com/TheKrush/PromptFuel v1.0.19 (gpt-6-astra 10 / 50, cached 1.00, effective 2026-09-03)"
)
_GPT6_RULE_SRC = Source(
    "huggingface.co/datasets/JOHNISKING/image-token-cost (third-party table, 2026): gpt6 high 2560x1440 -> "
    "2,931 and 4032x3024 -> 2,942 (x1.2 over a 2,500-patch budget); auto 4032x3024 -> 14,364 (11,970 patches, "
    "no budget)", "2026", verified=False,
    note="OpenAI's guide was not seen listing GPT-6; calibrate() can fill it from a live deployment",
)  # fmt: skip
_GPT6_PARAMS = Source(
    "docs.venice.ai (gpt-6-sol, gpt-6-luna) and docs.oxen.ai gpt-6-luna: efforts none, low, medium, high, xhigh, "
    "max; Chat Completions takes function calling only at effort none (oxen)", "2026-10",
    verified=False, note="default effort not stated; 'medium' assumed as on gpt-5.6",
)  # fmt: skip


def _gpt6() -> list[ModelInfo]:
    lim = PatchLimit(65535, None, verified=False, note="no budget seen up to 4032x3024 (11,970 patches)")
    high = PatchLimit(65535, 2500, verified=False, note="no 2048 pre-fit: 2560x1440 -> 2,442 patches in the table")
    rule = PatchRule("gpt-6 patches", 1.2, _limits(low=PatchLimit(512, None, verified=False), high=high,
                                                   original=lim), "original", NEWEST, _GPT6_RULE_SRC)  # fmt: skip
    params = _reasoning(("none", "low", "medium", "high", "xhigh", "max"), "medium", _GPT6_PARAMS)
    facts = _facts(limits=lifecycles.GPT6_PAGES, vision=lifecycles.GPT6_PAGES,
                   lifecycle=lifecycles.GPT6_PAGES)  # fmt: skip
    out = []
    for name, (inp, outp, cached, write), status in (
        ("gpt-6-astra", (10.00, 50.00, 1.00, 12.50), "generally-available"),
        ("gpt-6-sol", (2.00, 10.00, 0.20, 2.50), "generally-available"),
        ("gpt-6-luna", (0.10, 0.50, 0.01, 0.125), "generally-available"),
        ("gpt-6.1-sol", (2.00, 10.00, 0.20, 2.50), "preview"),
        ("gpt-6.2-sol", (2.00, 10.00, 0.20, 2.50), "preview"),
    ):
        price = _prices(inp, outp, cached, _P6, "2026-09-22", cache_write=write,
                        verified=name in ("gpt-6-astra", "gpt-6-sol", "gpt-6-luna"),
                        note="" if name in ("gpt-6-astra", "gpt-6-sol", "gpt-6-luna") else
                        "6.1 / 6.2 Sol at 2 / 10 per vercel.com and docs.venice.ai; cache rates assumed as gpt-6-sol")
        out.append(_model(name, rules={NEWEST: replace(rule, name=f"{name} patches")}, ctx=1_050_000, out=128_000,
                          max_input=922_000, params=params, caching=_CACHE_56, lifecycle=status, facts=facts,
                          prices=price, note="image rule UNVERIFIED (not in OpenAI's guide as read 2026-12-02)"))
    return out


def builtin() -> list[ModelInfo]:
    m: list[ModelInfo] = []
    gpt4o_rule = _tile("gpt-4o tiles", 85, 170)
    gpt5_rule = _tile("gpt-5 tiles", 70, 140)
    o_rule = _tile("o-series tiles", 75, 150)
    lim_128k = AZURE_LIMITS
    m.append(_model("gpt-4o", rules=gpt4o_rule, ctx=128_000, out=16_384,
                    prices=_prices(2.50, 10.00, 1.25, _P_2025, "2025-08"), aliases=("chatgpt-4o-latest",),
                    facts=_facts(limits=lim_128k),
                    note="gpt-4o-2024-05-13 was priced 5.00 / 15.00 (register it apart if you use it)"))
    m.append(_model("gpt-4o-mini", rules=_tile("gpt-4o-mini tiles", 2833, 5667), ctx=128_000, out=16_384,
                    facts=_facts(limits=AZURE_LIMITS),
                    prices=_prices(0.15, 0.60, 0.075, _P_2025, "2025-08")))
    m.append(_model("gpt-4.1", rules=gpt4o_rule, ctx=1_047_576, out=32_768, facts=_facts(limits=AZURE_LIMITS), caching=_CACHE_24H,
                    prices=_prices(2.00, 8.00, 0.50, _P_2025, "2025-08")))
    m.append(_model("gpt-4.1-mini", ctx=1_047_576, out=32_768, facts=_facts(limits=AZURE_LIMITS), caching=_CACHE_24H,
                    rules={NEWEST: PatchRule("gpt-4.1-mini patches", 1.62, _limits(low=_L6144, high=_L6144), "high",
                                             NEWEST, GUIDE_NEW, note="the 6,144 budget is the newest revision's; "
                                             "2025-08 said 1,536 (billing of 2025-04-14 snapshot unsettled)",
                                             per_image=1, per_image_source=PLUS_ONE_2025_04),
                           "2025-08": _old_patch("gpt-4.1-mini patches", 1.62, per_image=1)},
                    prices=_prices(0.40, 1.60, 0.10, _P_2025, "2025-08")))
    m.append(_model("gpt-4.1-nano", ctx=1_047_576, out=32_768, caching=_CACHE_24H,
                    rules={"2025-08": _old_patch("gpt-4.1-nano patches", 2.46, per_image=1)}, lifecycle="deprecated",
                    facts=_facts(lifecycle=_DEPRECATED_NEW, limits=AZURE_LIMITS),
                    prices=_prices(0.10, 0.40, 0.025, _P_2025, "2025-08"),
                    note="newest guide keeps multiplier 2.46 (2025-04-14 snapshot) but no longer states its budget"))
    m.append(_model("gpt-4.5", rules=_tile("gpt-4.5 tiles", 85, 170, new=False), ctx=128_000, out=16_384,
                    aliases=("gpt-4.5-preview",), lifecycle="retired", retires="2025-07-14",
                    facts=_facts(lifecycle=Source("OpenAI deprecations: gpt-4.5-preview shut down 2025-07-14",
                                                  "2025-04", verified=False, note="remembered, page not re-read")),
                    prices=_prices(75.00, 150.00, 37.50, _P_2025, "2025-08")))
    m.append(_model("gpt-4-turbo", encoding=_CL100K, ctx=128_000, out=4_096, caching=_NO_CACHE,
                    rules=_tile("gpt-4-turbo tiles", 85, 170, new=False, old_source=GUIDE_2023_11),
                    prices=_prices(10.00, 30.00, None, _P_2025, "2025-08"), aliases=("gpt-4-turbo-preview", "gpt-4"),
                    facts=_facts(limits=AZURE_LIMITS),
                    note="'gpt-4' is Azure's name for this model (version turbo-2024-04-09, GPT-4 Turbo with "
                         "Vision); OpenAI's older gpt-4 (0613: 8,192 tokens, text only) is not modelled"))
    m.append(_model("gpt-4-vision-preview", encoding=_CL100K, ctx=128_000, out=4_096, caching=_NO_CACHE,
                    rules=_tile("gpt-4-vision tiles", 85, 170, new=False, old_source=GUIDE_2023_11),
                    aliases=("gpt-4-1106-vision-preview",), lifecycle="retired", retires="2024-12-06",
                    facts=_facts(lifecycle=Source("OpenAI deprecations: gpt-4-vision-preview shut down 2024-12-06",
                                                  "2024", verified=False, note="remembered, page not re-read")),
                    prices=_prices(10.00, 30.00, None, _P_MEMORY, "2025-08", verified=False)))
    m.append(_model("o1", rules=o_rule, ctx=200_000, out=100_000, params=_reasoning(_EFF3, "medium"),
                    lifecycle="deprecated", facts=_facts(lifecycle=_DEPRECATED_NEW, limits=AZURE_LIMITS),
                    prices=_prices(15.00, 60.00, 7.50, _P_2025, "2025-08")))
    m.append(_model("o1-pro", rules=o_rule, ctx=200_000, out=100_000, params=_reasoning(_EFF3, "medium"),
                    lifecycle="deprecated", facts=_facts(lifecycle=_DEPRECATED_NEW),
                    prices=_prices(150.00, 600.00, None, _P_MEMORY, "2025-08", verified=False),
                    note="Responses API only"))
    m.append(_model("o1-mini", rules=None, ctx=128_000, out=65_536,
                    params=_reasoning((), None), lifecycle="deprecated",
                    facts=_facts(vision=_NO_VISION, limits=AZURE_LIMITS,
                                 lifecycle=Source("OpenAI deprecations: o1-mini deprecated", "2025", verified=False)),
                    prices=_prices(1.10, 4.40, 0.55, _P_MEMORY, "2025-08", verified=False),
                    note="takes no reasoning_effort; no image input"))
    m.append(_model("o3", rules=o_rule, ctx=200_000, out=100_000, params=_reasoning(_EFF3, "medium"),
                    lifecycle="deprecated", facts=_facts(lifecycle=_DEPRECATED_NEW, limits=AZURE_LIMITS),
                    prices=_prices(2.00, 8.00, 0.50, _P_2025, "2025-08")))
    m.append(_model("o3-pro", ctx=200_000, out=100_000, params=_reasoning(_EFF3, "medium"),
                    facts=_facts(limits=AZURE_LIMITS),
                    rules={"2025-08": TileRule("o-series tiles", 75, 150, "2025-08",
                                               replace(GUIDE_2025_08, verified=False,
                                                       note="o3-pro not in the guide's table; o3's rule assumed"),
                                               short_rounding="round")},
                    prices=_prices(20.00, 80.00, None, _P_MEMORY, "2025-08", verified=False),
                    note="Responses API only"))
    m.append(_model("o3-mini", rules=None, ctx=200_000, out=100_000, params=_reasoning(_EFF3, "medium"),
                    facts=_facts(vision=_NO_VISION, limits=AZURE_LIMITS),
                    prices=_prices(1.10, 4.40, 0.55, _P_MEMORY, "2025-08", verified=False)))
    m.append(_model("o4-mini", ctx=200_000, out=100_000, params=_reasoning(_EFF3, "medium"),
                    rules={"2025-08": _old_patch("o4-mini patches", 1.72, per_image=1)}, lifecycle="deprecated",
                    facts=_facts(lifecycle=_DEPRECATED_NEW, limits=AZURE_LIMITS),
                    prices=_prices(1.10, 4.40, 0.275, _P_2025, "2025-08"),
                    note="newest guide keeps multiplier 1.72, budget from 2025-08"))
    m.append(_model("gpt-5", rules=gpt5_rule, ctx=400_000, out=128_000, params=_reasoning(_EFF_GPT5, "medium"),
                    caching=_CACHE_24H, lifecycle="deprecated", facts=_facts(lifecycle=_DEPRECATED_NEW, limits=AZURE_LIMITS),
                    max_input=272_000, prices=_prices(1.25, 10.00, 0.125, _P_2025, "2025-08")))
    m.append(_model("gpt-5-chat-latest", rules=gpt5_rule, ctx=128_000, out=16_384, aliases=("gpt-5-chat",),
                    facts=_facts(limits=AZURE_LIMITS),
                    prices=_prices(1.25, 10.00, 0.125, _P_MEMORY, "2025-08", verified=False),
                    note="not a reasoning model: takes temperature and max_tokens"))
    new_only = {NEWEST: PatchRule("gpt-5-mini patches", 1.2, _limits(low=PatchLimit(2048, 1536, False, _LOW_SAME),
                                                                        high=PatchLimit(2048, 1536)),
                                  "high", NEWEST, GUIDE_NEW,
                                  note="multiplier 1.2 from the newest guide (2025-08 said 1.62); budget 1,536 "
                                       "and 2048 box from 2025-08 (not restated)")}
    m.append(_model("gpt-5-mini", ctx=400_000, out=128_000, params=_reasoning(_EFF_GPT5, "medium"),
                    caching=_CACHE_24H, lifecycle="deprecated", max_input=272_000,
                    facts=_facts(lifecycle=_DEPRECATED_NEW, limits=AZURE_LIMITS), rules={**new_only, "2025-08": _old_patch("gpt-5-mini patches", 1.62)},
                    prices=_prices(0.25, 2.00, 0.025, _P_2025, "2025-08")))
    nano_new = {NEWEST: replace(new_only[NEWEST], name="gpt-5-nano patches", multiplier=1.5,
                                note="multiplier 1.5 from the newest guide (2025-08 said 2.46); budget from 2025-08")}
    m.append(_model("gpt-5-nano", ctx=400_000, out=128_000, params=_reasoning(_EFF_GPT5, "medium"),
                    caching=_CACHE_24H, lifecycle="deprecated", max_input=272_000,
                    facts=_facts(lifecycle=_DEPRECATED_NEW, limits=AZURE_LIMITS), rules={**nano_new, "2025-08": _old_patch("gpt-5-nano patches", 2.46)},
                    prices=_prices(0.05, 0.40, 0.005, _P_2025, "2025-08")))
    m.append(_model("gpt-5.1", rules=_tile("gpt-5.1 tiles", 70, 140, old=False), ctx=400_000, out=128_000,
                    params=_reasoning(("none", "low", "medium", "high"), "none", GPT51_NONE, _SAMPLING_AT_NONE),
                    caching=_CACHE_24H,
                    prices=_prices(1.25, 10.00, 0.125, "github.com/Expensify/App scripts/chatGPTCostEstimator.ts "
                                   "(GPT-5.1 1.25 / 10.00, cached 10 %)", "2025-11", verified=False)))
    m.append(_model("gpt-5.2", ctx=400_000, out=128_000, caching=_CACHE_24H_GUESS,
                    rules={NEWEST: PatchRule("gpt-5.2 patches", 1.2, _limits(low=_L6144, high=_L6144), "high",
                                             NEWEST, GUIDE_NEW)},
                    params=_reasoning(_EFF_NONE_X, "none", _GPT52_PARAMS, _SAMPLING_AT_NONE),
                    prices=_prices(1.75, 14.00, 0.175, _P_MEMORY, "2025-12", verified=False)))
    r54 = PatchRule("gpt-5.4 patches", 1.2, _limits(low=_L6144, high=_L2500, original=_L10K), "high", NEWEST, GUIDE_NEW,
                    note="low uses a 6,144-patch budget, so it can cost more than high (the guide says so)")
    p54 = _reasoning(_EFF_NONE_X, "none", _UNVERIFIED_EFFORTS)
    m.append(_model("gpt-5.4", rules={NEWEST: r54}, ctx=1_050_000, out=128_000, params=p54, caching=_CACHE_24H_GUESS,
                    prices=_prices(2.50, 15.00, 0.25, _P_54, "2026-06-04")))
    m.append(_model("gpt-5.4-mini", rules={NEWEST: replace(r54, name="gpt-5.4-mini patches")}, ctx=400_000,
                    out=128_000, params=p54, caching=_CACHE_24H_GUESS,
                    prices=_prices(0.75, 4.50, 0.075, _P_54, "2026-06-04")))
    m.append(_model("gpt-5.4-nano", rules={NEWEST: replace(r54, name="gpt-5.4-nano patches")}, ctx=400_000,
                    out=128_000, params=p54, caching=_CACHE_24H_GUESS,
                    prices=_prices(0.20, 1.25, 0.02, _P_54, "2026-06-04")))
    r55 = PatchRule("gpt-5.5 patches", 1.2, _limits(low=_L512, high=_L2500, original=_L10K), "original", NEWEST,
                    GUIDE_NEW, note="auto sizes like original (up to 10,000 patches)")
    m.append(_model("gpt-5.5", rules={NEWEST: r55}, ctx=1_050_000, out=128_000, caching=_CACHE_24H_GUESS,
                    params=_reasoning(_EFF_NONE_X, "medium", _UNVERIFIED_EFFORTS),
                    prices=_prices(5.00, 30.00, 0.50, _P_54, "2026-06-04")))
    r56 = PatchRule("gpt-5.6 patches", 1.2, _limits(low=_L512, high=_L2500, original=_ORIGINAL_30K),
                    "original", NEWEST, GUIDE_NEW,
                    note="original and auto: no patch budget (65,535 px box); images over 30,000 patches refused")
    p56 = _reasoning(("none", "low", "medium", "high", "xhigh", "max"), "medium", _GPT56_PARAMS)
    for tier, price in {"sol": _P56_SOL, "terra": _P56_TERRA, "luna": _P56_LUNA}.items():
        m.append(_model(f"gpt-5.6-{tier}", rules={NEWEST: replace(r56, name=f"gpt-5.6-{tier} patches")},
                        ctx=1_050_000 if tier == "luna" else (1_500_000 if tier == "sol" else 400_000),
                        out=128_000, params=p56, caching=_CACHE_56,
                        lifecycle="generally-available", facts=_facts(lifecycle=_GPT56_GA),
                        aliases=("gpt-5.6",) if tier == "sol" else (), prices=price,
                        note=("alias gpt-5.6 -> sol: github zeroshot docs ('gpt-5.6 (alias for Sol)'), UNVERIFIED; "
                              if tier == "sol" else "") + ("context window 1,050,000: OpenAI model page (2026-07)"
                              if tier == "luna" else "context window UNVERIFIED (Sol 1.5M per byteiota.com)")))
    m += _gpt6()
    m.append(_model("gpt-image-1", rules={NEWEST: TileRule(
        "gpt-image-1 tiles (input fidelity low)", 65, 129, NEWEST, GUIDE_NEW, short_side=512,
        note="high input fidelity adds 4,160 tokens (square) or 6,240 (portrait/landscape) per image; "
             "images API only")}, ctx=0, out=0, caching=_NO_CACHE,
        prices=_prices(10.00, 40.00, 2.50, _P_MEMORY, "2025-08", verified=False,
                       note="image input rate (text input 5.00); output is image tokens"),
        note="an image-generation model: context_window/max_output 0 = not applicable"))
    m.append(_model("gpt-realtime", rules={NEWEST: TileRule(
        "gpt-realtime tiles (assumed as gpt-4o)", 85, 170, NEWEST,
        Source("not in the guide's tables", "2026-12-02", verified=False, note="gpt-4o's rule assumed"))},
        ctx=32_000, out=4_096, prices=_prices(4.00, 16.00, 0.40, _P_MEMORY, "2025-08", verified=False, batch=False,
                                              note="text rates; audio 32 / 64"),
        note="realtime (WebSocket/WebRTC) API; accepts image input"))
    m.append(_model("computer-use-preview", rules=_tile("computer-use-preview tiles", 65, 129, new=False),
                    ctx=8_192, out=1_024, lifecycle="preview", facts=_facts(limits=AZURE_LIMITS),
                    prices=_prices(3.00, 12.00, None, _P_MEMORY, "2025-08", verified=False),
                    note="Responses API only"))
    m.append(_model("azure-gpt-4v-2023-preview", encoding=_CL100K, ctx=128_000, out=4_096, caching=_NO_CACHE,
                    rules={"azure-2023-preview": AZURE_PREVIEW_RULE, NEWEST: AZURE_PREVIEW_RULE},
                    lifecycle="retired", aliases=("azure-2023-preview",),
                    facts=_facts(lifecycle=AZURE_2023),
                    prices=_prices(10.00, 30.00, None, _P_MEMORY, "2023-11", verified=False),
                    note="Azure's 2023 GPT-4 Turbo with Vision preview profile (seeds/01-02)"))
    return [_dated(info) for info in m]


def _dated(info: ModelInfo) -> ModelInfo:
    """``info`` with its dated facts (lifecycle per provider, image limits, disputes) attached.

    A family deprecated or retired on some provider is "deprecated" (still servable by name);
    ``retires`` is the soonest default retirement date across providers.
    """
    life = lifecycles.LIFECYCLES.get(info.name, MappingProxyType({}))
    dates = sorted(str(lc.retires.value) for lc in life.values() if lc.retires is not None)
    status, facts = info.lifecycle, info.facts
    if status == "generally-available" and any(lc.status in ("deprecated", "retired") for lc in life.values()):
        status = "deprecated"
        first = next(lc for lc in life.values() if lc.status in ("deprecated", "retired"))
        facts = MappingProxyType({**facts, "lifecycle": replace(first.source, note="per provider: see below")})
    return replace(
        info, lifecycles=life, lifecycle=status, retires=info.retires or (dates[0] if dates else None), facts=facts,
        image_limits=lifecycles.IMAGE_LIMITS.get(info.name, MappingProxyType({})),
        disputes=lifecycles.DISPUTES.get(info.name, MappingProxyType({})),
    )  # fmt: skip


# Dated snapshots whose facts differ from their family's (looked up by exact snapshot name).
_GPT4O_0513 = "gpt-4o-2024-05-13"
SNAPSHOTS: dict[str, dict[str, object]] = {
    # Output 4,096 (AZURE_LIMITS: "the only version that differs"); launch price 5.00 / 15.00
    # (openai.com/api/pricing 2025-08, cross-checked against community.openai.com/t/1262691).
    _GPT4O_0513: {"max_output": 4_096, "prices": _prices(5.00, 15.00, None, _P_2025, "2025-08")},
}

