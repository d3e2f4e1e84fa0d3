"""The registry current to December 2026: GPT-6, prices, lifecycle dates, disputes, image limits.

Every expected value here is a fact with a source in vizlab/models (families.py, lifecycles.py);
the backend tests run real HTTP on loopback with the official openai SDK.
"""

from __future__ import annotations

import io

import openai
import pytest
from PIL import Image

from vizlab.local import LocalBackend
from vizlab.local.__main__ import retirement_warnings
from vizlab.models import lookup
from vizlab.models.registry import DEFAULT_LOCAL_RULE, default_local_model, lifecycle_warning
from vizlab.tokens.image import explain_image_tokens, image_token_bound
from vizlab.tokens.request import estimate_request

TODAY = "2026-12-07"


@pytest.mark.parametrize(
    ("name", "inp", "out", "vision"),
    [("gpt-6-astra", 10.00, 50.00, True), ("gpt-6-sol", 2.00, 10.00, True), ("gpt-6-luna", 0.10, 0.50, True),
     ("gpt-6.1-sol", 2.00, 10.00, True), ("gpt-6.2-sol", 2.00, 10.00, True),
     ("gpt-5.6-terra", 2.00, 12.00, True), ("gpt-5.6-luna", 0.20, 1.20, True)],
)  # fmt: skip
def test_current_prices_with_sources(name, inp, out, vision):
    info = lookup(name)
    assert (info.prices.input, info.prices.output, info.vision) == (inp, out, vision)
    assert info.prices.source and info.prices.as_of >= "2026-07"


def test_gpt6_image_rule_is_unverified_and_calibratable():
    info = lookup("gpt-6-astra")
    assert "image_rule" in info.unverified() and "UNVERIFIED" in info.explain()
    assert info.context_window == 1_050_000 and info.max_output == 128_000 and info.reasoning
    # The third-party table the rule comes from: 2560x1440 high -> 2,931; 4032x3024 auto -> 14,364.
    assert explain_image_tokens(2560, 1440, detail="high", model="gpt-6-astra").tokens == 2931
    assert explain_image_tokens(4032, 3024, detail="auto", model="gpt-6-astra").tokens == 14364


def test_sol_price_is_disputed_and_explain_says_so():
    info = lookup("gpt-5.6-sol")
    assert "prices" in info.disputed() and info.prices.input == 5.00  # the list price is the default
    assert "DISPUTED" in info.explain() and "4.00 / output 20.00" in info.explain()
    est = estimate_request("hi", model="gpt-5.6-sol")
    assert any("DISPUTED" in d for d in est.disputed) and "DISPUTED" in est.explain()


def test_gpt41_mini_patch_budget_is_disputed_in_the_estimate():
    info = lookup("gpt-4.1-mini")
    assert "image_rule" in info.disputed()
    newest = explain_image_tokens(2400, 1800, model="gpt-4.1-mini")
    older = explain_image_tokens(2400, 1800, model="gpt-4.1-mini", rules="2025-08")
    assert newest.tokens == 4978 and "DISPUTED" in newest.explain() and "2,362" in newest.explain()
    assert older.tokens == 2354  # the profile the 2025-04 bill (2,362 = 2,354 + 8 text) matches


def test_retirement_dates_per_provider_with_disputes():
    gpt4o = lookup("gpt-4o")
    azure = gpt4o.lifecycle_on("azure")
    assert azure is not None and azure.retires is not None and azure.retires.disputed
    assert {c.value for c in azure.retires.claims} == {"2026-03-31", "2026-10-01", "2027-04-14"}
    assert azure.retires.value == "2027-04-14"  # the newest source is the default (UNVERIFIED)
    assert lookup("gpt-5").lifecycle_on("openai").retires.value == "2026-12-11"
    for name in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4-turbo"):
        assert lookup(name).lifecycle == "deprecated", name  # still servable by name


def test_lifecycle_warning_names_date_source_and_replacement():
    text = lifecycle_warning("gpt-4o", TODAY, provider="azure")
    assert text and "2026-10-01" in text and "Replacement: gpt-5.1" in text and "disputed: other sources say 2027-04-14" in text
    soon = lifecycle_warning("gpt-5-mini", TODAY, provider="openai")
    assert soon and "2026-12-11" in soon and "in 4 days" in soon
    assert lifecycle_warning("gpt-5.5", TODAY) is None
    assert lifecycle_warning("gpt-4o", "2025-06-01") is None
    with pytest.raises(ValueError, match="today '12/07/2026' is not an ISO date"):
        lifecycle_warning("gpt-4o", "12/07/2026")


def test_images_per_request_by_provider_and_api():
    astra = lookup("gpt-6-astra")
    assert astra.images_per_request("azure", "responses") == 50
    assert astra.images_per_request("azure", "chat") == 10
    assert "46145" in str(astra.image_limit("azure", "responses"))
    assert lookup("gpt-4o").images_per_request("azure", "responses") == 10
    with pytest.raises(ValueError, match="api 'batch'"):
        astra.images_per_request("azure", "batch")


def test_default_local_model_follows_the_stated_rule():
    name = default_local_model(TODAY)
    info = lookup(name)
    azure = info.lifecycle_on("azure")
    assert name == "gpt-5.6-luna" and "newest" in DEFAULT_LOCAL_RULE and "lowest default input price" in DEFAULT_LOCAL_RULE
    assert info.vision and info.reasoning and azure.status == "generally-available"
    assert "image_rule" not in info.unverified()
    # The tie-break: sol, terra and luna were all released on Azure on 2026-07-09; luna is the cheapest.
    tiers = [lookup(f"gpt-5.6-{t}") for t in ("sol", "terra", "luna")]
    assert {t.lifecycle_on("azure").since for t in tiers} == {"2026-07-09"}
    assert min(tiers, key=lambda t: t.prices.input).name == name
    # A model not yet released on Azure on the day does not count: before 2026-07-09 it was gpt-5.5.
    assert default_local_model("2026-07-08") == "gpt-5.5"


def test_gpt56_is_ga_on_azure_per_the_retirement_table():
    for tier in ("sol", "terra", "luna"):
        azure = lookup(f"gpt-5.6-{tier}").lifecycle_on("azure")
        assert azure.status == "generally-available" and azure.since == "2026-07-09"
        assert azure.retires.value == "2028-01-11" and azure.source.as_of == "2026-09-02"
        assert lifecycle_warning(f"gpt-5.6-{tier}", TODAY) is None


@pytest.mark.parametrize(
    ("name", "newest", "older", "replacement"),
    [("o1", "2026-10-21", "2026-09-16", "gpt-5.6-sol"), ("o1-pro", "2026-10-21", "2026-09-18", "gpt-5.6-sol"),
     ("o3", "2026-10-21", "2026-10-16", "gpt-5.6-sol"), ("o3-mini", "2026-10-01", None, "o4-mini"),
     ("o4-mini", "2026-10-16", None, None),
     ("gpt-5", "2027-02-09", "2027-02-06", None), ("gpt-5-mini", "2027-02-09", "2027-02-06", None),
     ("gpt-5-nano", "2027-02-09", "2027-02-06", None)],
)  # fmt: skip
def test_azure_retirements_of_o_series_and_gpt5_keep_both_table_revisions(name, newest, older, replacement):
    azure = lookup(name).lifecycle_on("azure")
    assert azure.retires.value == newest and azure.retires.default.source.as_of == "2026-09-02"
    assert azure.retires.disputed == (older is not None)
    assert {c.value for c in azure.retires.claims} == {newest} | ({older} if older else set())
    assert azure.replacement == replacement
    warning = lifecycle_warning(name, TODAY, provider="azure")
    if newest < TODAY:
        assert warning and f"retired on azure on {newest}" in warning
    else:
        assert warning is None  # 2027-02-09 is more than 60 days after 2026-12-07


def test_gpt56_original_over_30000_patches_is_flagged_and_unknown_size_is_bounded():
    big = estimate_request([{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "https://example.com/big.png", "detail": "original"}}]}], model="gpt-5.6-sol",
        image_sizes={"https://example.com/big.png": (6000, 6000)})  # fmt: skip
    assert big.refused and "30,000" in big.refused[0] and "REFUSED" in big.explain()
    assert not explain_image_tokens(5000, 5000, detail="original", model="gpt-5.6-sol").refused
    assert image_token_bound(detail="auto", model="gpt-5.6-sol").tokens == 36000


def test_local_start_warns_for_retired_models_and_serves_them():
    lines = retirement_warnings(("vision", "new"), {"vision": "gpt-4o", "new": "gpt-5.5"}.get, TODAY)
    assert len(lines) == 1 and "'vision' (gpt-4o)" in lines[0] and "still served" in lines[0]


def _png(width: int, height: int) -> str:
    import base64

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 200)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def backend():
    server = LocalBackend(api_key="k-test", deployments=("sol=gpt-5.6-sol", "vision=gpt-4o", "mini=gpt-5-mini"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(backend) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=backend.url, api_key="k-test", api_version="2024-10-21")


@pytest.mark.slow
def test_backend_refuses_what_the_service_refuses(backend):
    part = {"type": "image_url", "image_url": {"url": _png(6000, 6000), "detail": "auto"}}  # auto = original here
    with pytest.raises(openai.BadRequestError) as e:
        _client(backend).chat.completions.create(model="sol", messages=[{"role": "user", "content": [part]}],
                                                 max_completion_tokens=50)  # fmt: skip
    assert "30,000 patches" in str(e.value)


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City"}},
                         "required": ["city"]}}}]  # fmt: skip


@pytest.mark.parametrize("deployment, model", [("vision", "gpt-4o"), ("mini", "gpt-5-mini")])
def test_backend_bills_tools_as_the_estimate(backend, deployment, model):
    messages = [{"role": "user", "content": "What is the weather in Oslo?"}]
    extra = {"max_tokens": 50} if model == "gpt-4o" else {"max_completion_tokens": 50}
    reply = _client(backend).chat.completions.create(model=deployment, messages=messages, tools=TOOLS, **extra)
    estimate = estimate_request(messages, model=model, tools=TOOLS, api="chat")
    assert reply.usage.prompt_tokens == estimate.prompt_tokens and estimate.tool_tokens > 0


@pytest.mark.slow
def test_backend_image_limit_follows_the_registry_per_api():
    def image(kind: str) -> dict:
        url = _png(64, 32)
        return {"type": "input_image", "image_url": url} if kind == "r" else {"type": "image_url", "image_url": {"url": url}}

    with LocalBackend(api_key="k-test", deployments=("astra=gpt-6-astra",)) as server, \
            openai.OpenAI(base_url=server.url + "/openai/v1", api_key="k-test") as v1, _client(server) as chat:
        ok = v1.responses.create(model="astra", input=[{"role": "user", "content": [image("r") for _ in range(11)]}],
                                 max_output_tokens=40)  # fmt: skip
        assert ok.usage.input_tokens > 0  # 11 images: over Chat's 10, within Responses' 50
        with pytest.raises(openai.BadRequestError, match="Too many images"):
            chat.chat.completions.create(model="astra", max_completion_tokens=40,
                                         messages=[{"role": "user", "content": [image("c") for _ in range(11)]}])
        with pytest.raises(openai.BadRequestError, match=r"Exceeded maximum number of images \(50\)"):
            v1.responses.create(model="astra", input=[{"role": "user", "content": [image("r") for _ in range(51)]}],
                                max_output_tokens=40)  # fmt: skip
