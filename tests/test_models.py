"""The model registry: exact-name matching, per-effort parameter rules, sourced facts, profiles."""

from __future__ import annotations

import pytest

from vizlab import models
from vizlab.errors import UnknownModelError, VizlabError
from vizlab.models import REASONING_REJECTED, PatchRule, TileRule, families, lookup, registry

# The families the newest OpenAI "Images and vision" guide (and its 2025-08 revision) lists, plus
# the ones the brief names; every one must be in the registry.
EXPECTED = [
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4.5", "gpt-4-turbo",
    "gpt-4-vision-preview", "o1", "o1-pro", "o1-mini", "o3", "o3-pro", "o3-mini", "o4-mini", "gpt-5",
    "gpt-5-mini", "gpt-5-nano", "gpt-5-chat-latest", "gpt-5.1", "gpt-5.2", "gpt-5.4", "gpt-5.4-mini",
    "gpt-5.4-nano", "gpt-5.5", "gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna", "gpt-image-1",
    "gpt-realtime", "computer-use-preview", "azure-gpt-4v-2023-preview",
    "gpt-6-astra", "gpt-6-sol", "gpt-6-luna", "gpt-6.1-sol", "gpt-6.2-sol",
]  # fmt: skip


def test_every_listed_family_is_registered():
    assert sorted(EXPECTED) == families()


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("GPT-4o", "gpt-4o"),
        ("chatgpt-4o-latest", "gpt-4o"),
        ("o1-pro", "o1-pro"),
        ("o1-pro-2025-03-19", "o1-pro"),
        ("o3-pro", "o3-pro"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o1-mini", "o1-mini"),
        ("gpt-5.4-mini", "gpt-5.4-mini"),
        ("gpt-4.5-preview-2025-02-27", "gpt-4.5"),
        ("gpt-4-1106-vision-preview", "gpt-4-vision-preview"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-4", "gpt-4-turbo"),  # Azure's name for turbo-2024-04-09
    ],
)
def test_names_match_exactly_by_alias_or_dated_snapshot(name, family):
    assert lookup(name).name == family


@pytest.mark.parametrize("name", ["gpt-4o-custom", "o1-preview", "gpt-5.4-mini-fast", "gpt-4o-2024-8-6", "o3-pro-x", ""])
def test_no_prefix_matching(name):
    with pytest.raises(UnknownModelError):
        lookup(name)


def test_unknown_model_error_lists_families_and_how_to_register():
    with pytest.raises(UnknownModelError) as e:
        lookup("my-deployment")
    text = str(e.value)
    assert "gpt-4.1-mini" in text and "o3-pro" in text
    assert "register('my-deployment', like='gpt-4o')" in text
    assert "gpt-5.6-sol" in e.value.known


def test_register_an_alias_for_a_deployment():
    with registry.registrations_undone():
        assert models.register("Vision-Prod", like="gpt-4.1-mini").name == "gpt-4.1-mini"
        assert lookup("vision-prod").name == "gpt-4.1-mini"
        with pytest.raises(ValueError):
            models.register("x")
    assert registry.canonical_name("vision-prod") is None  # undone on leaving


def test_siblings_are_not_confused():
    assert lookup("o1-pro").prices.input == 150.0 and lookup("o1").prices.input == 15.0
    assert lookup("o3-pro").prices.input == 20.0 and lookup("o3").prices.input == 2.0
    assert not lookup("o3-mini").vision and not lookup("o1-mini").vision
    with pytest.raises(VizlabError, match="no vision"):
        lookup("o3-mini").image_rule()
    assert lookup("o3-mini").images_per_request("azure") == 0


def test_reasoning_models_refuse_sampling_and_max_tokens():
    for name in ["o1", "o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5.4", "gpt-5.6-luna", "o1-mini"]:
        info = lookup(name)
        assert info.reasoning
        assert info.rejected_params() == REASONING_REJECTED
    assert "max_tokens" in REASONING_REJECTED and "temperature" in REASONING_REJECTED


def test_gpt51_at_effort_none_accepts_temperature_top_p_logprobs():
    info = lookup("gpt-5.1")
    assert info.default_effort == "none"
    assert {"temperature", "top_p", "logprobs"}.isdisjoint(info.rejected_params("none"))
    assert {"temperature", "top_p", "logprobs"} <= info.rejected_params("high")
    assert "max_tokens" in info.rejected_params("none")
    assert info.rejected_params() == info.rejected_params("none")


def test_non_reasoning_models_refuse_nothing_and_take_no_effort():
    info = lookup("gpt-4o")
    assert not info.reasoning and info.efforts == () and info.default_effort is None
    assert info.rejected_params() == frozenset()
    with pytest.raises(VizlabError, match="not a reasoning model"):
        info.rejected_params("low")
    assert not lookup("gpt-5-chat-latest").reasoning


def test_unknown_effort_is_a_clear_error():
    with pytest.raises(VizlabError, match="'minimal'.*gpt-5.1|gpt-5.1.*'minimal'"):
        lookup("gpt-5.1").rejected_params("minimal")
    assert "minimal" in lookup("gpt-5").efforts


def test_image_rules_newest_and_older_profiles():
    gpt4o = lookup("gpt-4o").image_rule()
    assert isinstance(gpt4o, TileRule) and (gpt4o.base, gpt4o.per_tile, gpt4o.short_rounding) == (85, 170, "floor")
    assert lookup("gpt-4o").image_rule("2025-08").short_rounding == "round"
    mini = lookup("gpt-5-mini")
    assert isinstance(mini.image_rule(), PatchRule) and mini.image_rule().multiplier == 1.2
    assert mini.image_rule("2025-08").multiplier == 1.62
    assert lookup("gpt-5-nano").image_rule().multiplier == 1.5
    r41 = lookup("gpt-4.1-mini")
    assert r41.image_rule().limits["high"].budget == 6144 and r41.image_rule("2025-08").limits["high"].budget == 1536
    r54 = lookup("gpt-5.4").image_rule()
    assert isinstance(r54, PatchRule)
    assert (r54.limits["low"].budget, r54.limits["high"].budget, r54.limits["original"].budget) == (6144, 2500, 10000)
    assert r54.auto_as == "high" and lookup("gpt-5.5").image_rule().auto_as == "original"
    assert lookup("gpt-5.6-luna").image_rule().limits["original"].budget is None
    assert "original" not in lookup("gpt-4.1-mini").image_rule().details
    az = lookup("gpt-4o").image_rule("azure-2023-preview")
    assert (az.base, az.per_tile) == (65, 129)
    with pytest.raises(VizlabError, match="2025-08"):
        lookup("gpt-5.4").image_rule("2025-08")
    with pytest.raises(VizlabError, match="rules"):
        lookup("gpt-4o").image_rule("2024")


def test_every_fact_has_a_source_and_unverified_ones_say_so():
    for name in families():
        info = lookup(name)
        text = info.explain()
        assert info.prices.source and info.prices.as_of, name
        for fact in ("encoding", "context_window", "max_output", "lifecycle", "prices", "params", "caching"):
            assert info.source(fact).text, (name, fact)
        if info.vision:
            assert info.source("image_rule").as_of, name
        for fact in info.unverified():
            assert "UNVERIFIED" in text, (name, fact)
    assert "prices" in lookup("o1-pro").unverified()
    assert "prices" not in lookup("gpt-4o").unverified()


def test_contract_fields():
    info = lookup("gpt-4o-2024-08-06")
    assert info.encoding == "o200k_base" and lookup("gpt-4-turbo").encoding == "cl100k_base"
    assert info.context_window == 128_000 and info.max_output == 16_384
    assert info.images_per_request("azure") == 10 and info.images_per_request("openai") == 1500
    with pytest.raises(ValueError):
        info.images_per_request("gcp")
    assert info.lifecycle in ("generally-available", "preview", "deprecated", "retired")
    assert lookup("gpt-4.5").lifecycle == "retired" and lookup("gpt-4.5").retires == "2025-07-14"
    p = lookup("gpt-5.6-sol").prices
    assert p.cache_write == pytest.approx(6.25) and p.cached_input == pytest.approx(0.5)
    assert lookup("gpt-4o").prices.cache_write is None
    assert lookup("gpt-4o").prices.batch_input == pytest.approx(1.25)
    assert lookup("gpt-5.6-sol").caching.writes_billed and not lookup("gpt-4o").caching.writes_billed


def test_a_snapshot_whose_facts_differ_from_its_family():
    old = lookup("gpt-4o-2024-05-13")
    assert old.name == "gpt-4o" and old.max_output == 4_096 and old.prices.input == 5.00
    assert lookup("gpt-4o-2024-08-06").max_output == 16_384 and lookup("gpt-4o").prices.input == 2.50
    assert "gpt-4o-2024-05-13" in models.snapshots()


def test_backend_limits_read_the_registry():
    from vizlab.local.requests.limits import limits_for

    assert limits_for("gpt-4.1-mini-2025-04-14") == ("gpt-4.1-mini", limits_for("gpt-4.1-mini")[1])
    name, lim = limits_for("gpt-5-mini")
    assert (name, lim.context, lim.max_output, lim.max_input) == ("gpt-5-mini", 400_000, 128_000, 272_000)
    assert limits_for("o1-pro")[1].context == lookup("o1-pro").context_window


def test_model_versions_come_from_the_registry_with_sources():
    from vizlab.local.config import MODEL_VERSIONS, BackendConfig
    from vizlab.models import VERSIONS, azure_version

    for family, claim in VERSIONS.items():
        assert lookup(family).name == family and claim.source.text and claim.source.as_of
        if claim.value is not None and claim.source.verified:
            assert MODEL_VERSIONS[family] == claim.value and azure_version(family) == claim.value
        else:  # no published version: UNVERIFIED, reported by the family name
            assert family not in MODEL_VERSIONS and "UNVERIFIED" in str(claim.source)
    assert MODEL_VERSIONS["gpt-5-mini"] == "2025-08-07" and "2026-09-02" in VERSIONS["gpt-5-mini"].source.as_of
    assert BackendConfig(deployments=("v=gpt-5.5",)).reported_model("v") == "gpt-5.5-2026-04-24"
    assert BackendConfig(deployments=("v=gpt-6-sol",)).reported_model("v") == "gpt-6-sol"
