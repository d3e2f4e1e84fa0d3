"""vizlab.pricing: cost maths, batch, overrides, lookup and the cost of an estimate."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from vizlab.errors import UnknownModelError
from vizlab.models.types import Cost
from vizlab.tokens import PriceTable, Usage, count_text_tokens, default_prices, estimate_request, pricing
from vizlab.tokens.pricing import BATCH_DISCOUNT, Price, cost_per_1000_images


def test_cost_maths() -> None:
    cost = default_prices().cost(1_000_000, 1_000_000, model="gpt-4o")
    assert cost.input == pytest.approx(2.50)
    assert cost.output == pytest.approx(10.00)
    assert cost.total == pytest.approx(12.50)
    assert str(default_prices().cost(765, model="gpt-4o")) == "$0.0019 (input $0.0019 + output $0.0000)"


def test_batch_halves() -> None:
    table = default_prices()
    full = table.cost(12_345, 678, model="gpt-4.1")
    half = table.cost(12_345, 678, model="gpt-4.1", batch=True)
    assert BATCH_DISCOUNT == 0.5
    assert half.batch and not full.batch
    assert half.total == pytest.approx(full.total / 2)


def test_override_wins_and_does_not_touch_defaults() -> None:
    table = default_prices()
    table.set("gpt-4o", input_per_1m=2.75, output_per_1m=11.0, source="Azure regional, westeurope", as_of="2025-08")
    assert table.cost(1_000_000, model="gpt-4o").input == pytest.approx(2.75)
    assert table.get("gpt-4o-2024-08-06").source == "Azure regional, westeurope"
    assert pricing.DEFAULT_PRICES.get("gpt-4o").input_per_1m == 2.50


def test_set_new_model_and_validation() -> None:
    table = default_prices()
    table.set("my-deployment", input_per_1m=1, output_per_1m=2)
    assert table.get("my-deployment") == Price("my-deployment", 1.0, 2.0, None, "user override", "")
    with pytest.raises(ValueError):
        table.set("x", input_per_1m=-1, output_per_1m=2)
    with pytest.raises(ValueError):
        table.cost(-5, model="gpt-4o")


def test_prefix_lookup() -> None:
    table = default_prices()
    assert table.get("gpt-4o-2024-08-06").model == "gpt-4o"
    assert table.get("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"
    assert table.get("gpt-4o-mini").input_per_1m == 0.15
    assert table.get("gpt-4o-2024-05-13").input_per_1m == 5.00  # exact beats prefix
    assert table.get("gpt-4.1-nano-2025-04-14").model == "gpt-4.1-nano"
    assert table.get("gpt-5-mini-2025-08-07").model == "gpt-5-mini"


def test_unknown_model_lists_names() -> None:
    with pytest.raises(UnknownModelError) as info:
        default_prices().get("llava-13b")
    assert "gpt-4o" in info.value.known
    assert "llava-13b" in str(info.value) and ".set(" in str(info.value)


def test_cached_tokens_use_cached_price() -> None:
    table = default_prices()
    usage = Usage.from_openai({"prompt_tokens": 1000, "completion_tokens": 0, "total_tokens": 1000,
                               "prompt_tokens_details": {"cached_tokens": 400}})  # fmt: skip
    cost = table.cost_of(usage, model="gpt-4o")
    assert cost.input == pytest.approx((600 * 2.50 + 400 * 1.25) / 1e6)


def test_estimate_cost_equals_hand_computation() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (1024, 1024)).save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    text = "What is in this image?"
    messages = [{"role": "user", "content": [{"type": "text", "text": text},
                                             {"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}]  # fmt: skip
    est = estimate_request(messages, model="gpt-4o", max_tokens=300)
    text_tokens = count_text_tokens("user", "gpt-4o") + count_text_tokens(text, "gpt-4o")
    prompt = 765 + text_tokens + 3 + 3
    assert est.prompt_tokens == prompt
    assert est.cost is not None
    assert est.cost.input == pytest.approx(prompt * 2.50 / 1_000_000)
    assert est.cost.output == pytest.approx(300 * 10.00 / 1_000_000)
    assert default_prices().cost_of(est, model="gpt-4o") == est.cost


def test_estimate_uses_given_table() -> None:
    table = default_prices()
    table.set("gpt-4o", input_per_1m=100, output_per_1m=0)
    est = estimate_request([{"role": "user", "content": "hi"}], model="gpt-4o", prices=table)
    assert est.cost == Cost(est.prompt_tokens * 100 / 1e6, 0.0, False, "gpt-4o")


def test_cost_of_sdk_usage() -> None:
    from openai.types.completion_usage import CompletionUsage

    sdk = CompletionUsage(prompt_tokens=1156, completion_tokens=80, total_tokens=1236)
    cost = default_prices().cost_of(sdk, model="gpt-4o-mini")
    assert cost.total == pytest.approx((1156 * 0.15 + 80 * 0.60) / 1e6)


def test_cost_per_1000_images() -> None:
    assert cost_per_1000_images(1024, 1024, model="gpt-4o", detail="high") == pytest.approx(765_000 * 2.5 / 1e6)
    assert cost_per_1000_images(1024, 1024, model="gpt-4o", detail="low", batch=True) == pytest.approx(85_000 * 1.25 / 1e6)


def test_table_rows() -> None:
    rows = default_prices().table()
    by_model = {row["model"]: row for row in rows}
    assert by_model["gpt-4o"]["batch_input_per_1m"] == pytest.approx(1.25)
    assert all(row["as_of"] and row["source"] for row in rows)
    assert {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3", "o4-mini", "gpt-5", "gpt-5-nano"} <= set(by_model)


def test_price_table_from_mapping() -> None:
    table = PriceTable({"m": Price("m", 1.0, 1.0, None, "test", "2025-08")})
    assert table.models() == ["m"]
    assert "m-2025-01-01" in table and "m-2025" not in table and "gpt-4o" not in table


def test_siblings_priced_as_themselves_not_by_prefix() -> None:
    table = default_prices()
    assert table.get("o1-pro").input_per_1m == 150.0 and table.get("o1").input_per_1m == 15.0
    assert table.get("o3-pro").input_per_1m == 20.0 and table.get("o3").input_per_1m == 2.0
    assert table.get("o3-mini-2025-01-31").input_per_1m == 1.10
    assert table.get("gpt-4o-mini-2024-07-18").input_per_1m == 0.15
    assert table.get("gpt-4o-2024-05-13").input_per_1m == 5.00  # the one snapshot priced apart
    assert table.get("gpt-4o-2024-08-06").input_per_1m == 2.50
    with pytest.raises(UnknownModelError):
        table.get("gpt-4o-custom")


def test_prices_come_from_the_registry() -> None:
    from vizlab import models

    for name in models.families():
        price, facts = pricing.DEFAULT_PRICES.get(name), models.lookup(name).prices
        assert (price.input_per_1m, price.output_per_1m, price.cached_input_per_1m) == (
            facts.input, facts.output, facts.cached_input), name
        assert price.source == facts.source and price.as_of == facts.as_of
    assert pricing.DEFAULT_PRICES.revision == pricing.PRICES_REVISION and "2026" in pricing.PRICES_REVISION


def test_cached_input_and_cache_writes() -> None:
    table = default_prices()
    # gpt-4o: 1000 prompt tokens, 600 cached at 1.25 and 400 at 2.50 per 1M
    assert table.cost(1000, model="gpt-4o", cached_tokens=600).input == pytest.approx((600 * 1.25 + 400 * 2.50) / 1e6)
    # gpt-5.6-sol bills cache writes at 1.25x input (6.25 per 1M)
    sol = table.cost(2000, model="gpt-5.6-sol", cache_write_tokens=2000)
    assert sol.input == pytest.approx(2000 * 6.25 / 1e6)
    usage = Usage(2000, 10, 2010, {"cached_tokens": 1024})
    assert table.cost_of(usage, model="gpt-5.6-sol").input == pytest.approx((1024 * 0.5 + 976 * 5.0) / 1e6)
    with pytest.raises(ValueError):
        table.cost(10, model="gpt-4o", cached_tokens=6, cache_write_tokens=6)


def test_estimate_on_a_cache_write_family_never_undercounts() -> None:
    text = "word " * 3000
    est = estimate_request([{"role": "user", "content": text}], model="gpt-5.6-terra")
    assert est.cacheable_tokens >= 1024 and est.cache_write_tokens == est.cacheable_tokens
    plain = default_prices().cost(est.prompt_tokens, model="gpt-5.6-terra")
    assert est.cost is not None and est.cost.input > plain.input
    small = estimate_request([{"role": "user", "content": "hi"}], model="gpt-5.6-terra")
    assert small.cacheable_tokens == 0
    four = estimate_request([{"role": "user", "content": text}], model="gpt-4o")
    assert four.cache_write_tokens == 0 and (four.cacheable_tokens - 1024) % 128 == 0


def test_batch_prices() -> None:
    table = default_prices()
    assert table.cost(1_000_000, 1_000_000, model="gpt-5.4", batch=True).total == pytest.approx((2.50 + 15.00) / 2)
    rows = {r["model"]: r for r in table.table()}
    assert rows["gpt-5.5"]["batch_output_per_1m"] == pytest.approx(15.0)
    assert rows["gpt-4o"]["revision"] == pricing.PRICES_REVISION
