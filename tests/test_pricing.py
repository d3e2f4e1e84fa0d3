"""vizlab.pricing: cost maths, batch, overrides, lookup and the cost of an estimate."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from vizlab import pricing
from vizlab.errors import UnknownModelError
from vizlab.pricing import BATCH_DISCOUNT, Cost, Price, PriceTable, cost_per_1000_images, default_prices
from vizlab.tokens import Usage, count_text_tokens, estimate_request


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
    assert "m-2025" in table and "gpt-4o" not in table
