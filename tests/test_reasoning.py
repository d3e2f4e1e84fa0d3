"""Reasoning models end to end: the client's parameter rules, the backend's refusals, usage details,
emulated reasoning tokens and prompt caching, over real HTTP on loopback (issue 10)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests

from vizlab import connect, errors, models
from vizlab.client.adapt import ParameterAdaptedWarning
from vizlab.client import DEFAULT_API_VERSION, Client
from vizlab.client.params import applies_registry, apply_model_params
from vizlab.local import LocalBackend
from vizlab.local.requests.reasoning import EFFORT_FACTORS

KEY = "reasoning-test-key"
REASONING = [f for f in models.families() if models.lookup(f).reasoning]
MAX_TOKENS_MESSAGE = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."


def _name(family: str) -> str:
    return "r-" + family.replace(".", "-")


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    deployments = [f"{_name(f)}={f}" for f in REASONING] + ["gpt-4o", "turbo=gpt-4-turbo", "old=gpt-4.5", "mystery=o4-mini"]
    with LocalBackend(api_key=KEY, deployments=tuple(deployments)) as b:
        yield b


_OPEN: list[Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _client(backend: LocalBackend, deployment: str, **kw: Any) -> Client:
    client = connect(backend="azure", endpoint=backend.url, api_key=KEY, deployment=deployment, verbose=False,
                     env_file=None, **kw)  # fmt: skip
    _OPEN.append(client)
    return client


def _post(backend: LocalBackend, deployment: str, body: dict[str, Any]) -> requests.Response:
    url = f"{backend.url}/openai/deployments/{deployment}/chat/completions?api-version={DEFAULT_API_VERSION}"
    return requests.post(url, json=body, headers={"api-key": KEY}, timeout=30)


def test_every_reasoning_family_is_in_the_test() -> None:
    assert {"o1", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5.1", "gpt-5.4"} <= set(REASONING)


@pytest.mark.slow
@pytest.mark.parametrize("family", REASONING)
def test_each_reasoning_family_refuses_max_tokens_and_chats_with_max_completion_tokens(
    backend: LocalBackend, family: str
) -> None:
    deployment = _name(family)
    refused = _post(backend, deployment, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50})
    assert refused.status_code == 400
    assert refused.json() == {"error": {"code": "unsupported_parameter", "message": MAX_TOKENS_MESSAGE,
                                        "param": "max_tokens", "type": "invalid_request_error"}}  # fmt: skip

    client = _client(backend, deployment, model=family)  # on Azure, model= names the model behind a deployment
    assert client.model_info is not None and client.model_info.name == family
    reply = client.chat("What is in a red square? Answer briefly.", max_tokens=400)
    assert "max_tokens" not in reply.request and reply.request["max_completion_tokens"] == 400
    assert reply.usage is not None and reply.text
    details = reply.raw["usage"]["completion_tokens_details"]
    assert details["reasoning_tokens"] == reply.reasoning_tokens
    answer = reply.usage.completion_tokens - reply.reasoning_tokens
    factor = EFFORT_FACTORS[models.lookup(family).default_effort or "medium"]
    assert reply.reasoning_tokens == -(-answer * factor // 1)  # ceil, as documented


def test_the_client_refuses_sampling_params_before_sending() -> None:
    # Nothing listens on port 9: a request that got sent would fail with BackendUnavailableError.
    client = connect(backend="azure", endpoint="http://127.0.0.1:9", api_key=KEY, deployment="o4-mini",
                     verbose=False, env_file=None, max_retries=0)  # fmt: skip
    for param, value in (("temperature", 0.2), ("top_p", 0.5), ("logprobs", True), ("presence_penalty", 0.1)):
        with pytest.raises(errors.UnsupportedParameterError) as info:
            client.chat("hi", **{param: value})
        assert (info.value.param, info.value.model) == (param, "o4-mini")
        assert param in str(info.value) and "o4-mini" in str(info.value)
    with pytest.raises(errors.UnsupportedParameterError, match="'minimal'") as bad_effort:
        client.chat("hi", reasoning_effort="minimal")
    assert bad_effort.value.param == "reasoning_effort"
    with pytest.raises(errors.BackendUnavailableError):  # the defaults are accepted, so it is sent
        client.chat("hi", temperature=1, top_p=1)


def test_gpt_5_1_takes_temperature_at_effort_none_only(backend: LocalBackend) -> None:
    client = _client(backend, _name("gpt-5.1"), model="gpt-5.1")
    reply = client.chat("hello", temperature=0.3, logprobs=False)  # default effort "none"
    assert reply.request["temperature"] == 0.3 and reply.reasoning_tokens == 0
    with pytest.raises(errors.UnsupportedParameterError, match="'none'") as info:
        client.chat("hello", temperature=0.3, reasoning_effort="low")
    assert info.value.effort == "low"
    low = _post(backend, _name("gpt-5.1"), {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.3,
                                            "reasoning_effort": "low"})  # fmt: skip
    assert low.status_code == 400 and low.json()["error"]["code"] == "unsupported_value"
    assert low.json()["error"]["param"] == "temperature"


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"temperature": 0.5}, "unsupported_value", "temperature"),
        ({"top_p": 0.9}, "unsupported_value", "top_p"),
        ({"logprobs": True}, "unsupported_parameter", "logprobs"),
        ({"frequency_penalty": 0.5}, "unsupported_parameter", "frequency_penalty"),
        ({"reasoning_effort": "xhigh"}, "unsupported_value", "reasoning_effort"),
    ],
)
def test_the_backend_refuses_what_the_service_refuses(backend: LocalBackend, body: dict[str, Any], code: str,
                                                      param: str) -> None:  # fmt: skip
    resp = _post(backend, _name("o4-mini"), {"messages": [{"role": "user", "content": "hi"}], **body})
    assert resp.status_code == 400, resp.text
    assert (resp.json()["error"]["code"], resp.json()["error"]["param"]) == (code, param)
    assert _post(backend, _name("o4-mini"), {"messages": [{"role": "user", "content": "hi"}], "temperature": 1}).ok


def test_reasoning_effort_on_a_model_without_it_is_refused_at_both_ends(backend: LocalBackend) -> None:
    resp = _post(backend, "gpt-4o", {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "reasoning_effort"
    with pytest.raises(errors.UnsupportedParameterError, match="not a reasoning model"):
        _client(backend, "gpt-4o").chat("hi", reasoning_effort="low")


@pytest.mark.slow
def test_the_service_refusal_is_adapted_once_and_other_refusals_map_with_the_fix(backend: LocalBackend) -> None:
    # "mystery" is an o4-mini deployment whose name the client cannot know: it sends max_tokens first.
    client = _client(backend, "mystery")
    assert client.model_info is None  # unknown until it answers, not assumed gpt-4o
    with pytest.warns(ParameterAdaptedWarning, match="sent max_completion_tokens instead of max_tokens"):
        reply = client.chat("hi")
    assert reply.request["max_completion_tokens"] == 1000 and "max_tokens" not in reply.request
    assert client.model_info is not None and client.model_info.name == "o4-mini"  # learned from the reply
    with pytest.raises(errors.UnsupportedParameterError) as info:  # not adaptable: the service's words and a fix
        _client(backend, "mystery").chat("hi", reasoning_effort="extreme")
    assert info.value.status == 400 and info.value.param == "reasoning_effort"
    named = _client(backend, "mystery", model="o4-mini")
    assert named.chat("hi").request["max_completion_tokens"] == 1000


def test_reasoning_spends_the_budget_first_and_the_cut_warns(backend: LocalBackend) -> None:
    client = _client(backend, _name("o4-mini"), model="o4-mini")
    full = client.chat("Describe a blue circle.", reasoning_effort="high", max_tokens=2000)
    answer = full.usage.completion_tokens - full.reasoning_tokens  # type: ignore[union-attr]
    assert full.reasoning_tokens == 2 * answer and full.finish_reason == "stop"
    budget = full.reasoning_tokens + answer // 2
    with pytest.warns(UserWarning, match="max_completion_tokens") as caught:
        cut = client.chat("Describe a blue circle.", reasoning_effort="high", max_tokens=budget)
    assert cut.finish_reason == "length" and cut.usage is not None
    assert cut.reasoning_tokens == full.reasoning_tokens and cut.usage.completion_tokens <= budget
    assert "spent reasoning" in str(caught[0].message)
    low = client.chat("Describe a blue circle.", reasoning_effort="low", max_tokens=2000)
    assert low.reasoning_tokens == -(-answer // 2) and low.text == full.text


@pytest.mark.slow
def test_usage_details_on_every_reply_streamed_or_not(backend: LocalBackend) -> None:
    client = _client(backend, "gpt-4o")
    reply = client.chat("hello")
    assert reply.raw["usage"]["prompt_tokens_details"] == {"audio_tokens": 0, "cached_tokens": 0}
    assert reply.raw["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    stream = client.stream("hello")
    assert "".join(stream)
    assert stream.reply is not None and stream.reply.raw["usage"]["completion_tokens_details"] is not None
    sdk = openai.AzureOpenAI(azure_endpoint=backend.url, api_key=KEY, api_version=DEFAULT_API_VERSION)
    completion = sdk.chat.completions.create(model=_name("o3"), messages=[{"role": "user", "content": "hi"}])
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens is not None


def _long_system(words: int, salt: str = "") -> list[dict[str, Any]]:
    return [{"role": "system", "content": salt + " ".join(f"rule{i}" for i in range(words))}]


@pytest.mark.slow
def test_repeated_long_prefixes_report_cached_tokens_by_the_documented_rule() -> None:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o", "turbo=gpt-4-turbo")) as b:
        client = _client(b, "gpt-4o")
        rule = models.lookup("gpt-4o").caching
        first = client.chat(_long_system(700) + [{"role": "user", "content": "question one"}])
        assert first.usage is not None and first.usage.prompt_tokens > rule.min_prefix and first.cached_tokens == 0
        second = client.chat(_long_system(700) + [{"role": "user", "content": "another question"}])
        assert second.cached_tokens >= rule.min_prefix
        assert (second.cached_tokens - rule.min_prefix) % rule.step == 0
        assert second.cached_tokens <= second.usage.prompt_tokens  # type: ignore[union-attr]
        assert "cached" in second.summary()
        from vizlab.tokens import default_prices

        expected = default_prices().cost(second.usage.prompt_tokens, second.usage.completion_tokens,  # type: ignore[union-attr]
                                         model="gpt-4o", cached_tokens=second.cached_tokens)  # fmt: skip
        assert second.cost is not None and second.cost.total == pytest.approx(expected.total)
        assert second.cost.total < default_prices().cost(second.usage.prompt_tokens, second.usage.completion_tokens,  # type: ignore[union-attr]
                                                         model="gpt-4o").total  # fmt: skip
        other = client.chat(_long_system(700, salt="different start ") + [{"role": "user", "content": "q"}])
        assert other.cached_tokens == 0  # a different first token: no common prefix
        short = client.chat("short prompt")
        assert client.chat("short prompt").cached_tokens == 0 and short.cached_tokens == 0
        turbo = _client(b, "turbo")
        turbo.chat(_long_system(700))
        assert turbo.chat(_long_system(700)).cached_tokens == 0  # no prompt caching before gpt-4o


@pytest.mark.slow
def test_cached_prefixes_expire_after_the_retention() -> None:
    with LocalBackend(api_key=KEY, prompt_cache_ttl_s=0.2) as b:
        client = _client(b, "gpt-4o")
        client.chat(_long_system(700))
        assert client.chat(_long_system(700)).cached_tokens > 0
        time.sleep(0.5)
        assert client.chat(_long_system(700)).cached_tokens == 0


def test_connect_names_the_retirement_date(backend: LocalBackend) -> None:
    old = _client(backend, "old", model="gpt-4.5")
    assert models.lookup("gpt-4.5").retires == "2025-07-14"
    assert "retires 2025-07-14" in old.describe() and "gpt-4.5" in old.describe()
    # gpt-4o now has dated retirements (vizlab.models.lifecycles): the soonest default one is OpenAI's.
    assert "retires 2027-01-14" in _client(backend, "gpt-4o").describe()


def test_compatible_servers_get_max_tokens_and_services_max_completion_tokens() -> None:
    assert not applies_registry("openai", "http://127.0.0.1:11434/v1")  # Ollama
    assert not applies_registry("openai", "http://localhost:8000/v1")  # vLLM
    assert applies_registry("openai", "https://api.openai.com/v1")
    assert applies_registry("openai", "https://res.openai.azure.com/openai/v1")
    assert applies_registry("azure", "https://res.openai.azure.com")
    info = models.lookup("o4-mini")
    body: dict[str, Any] = {}
    apply_model_params(body, info=info, max_tokens=300, params={"temperature": 0.2}, registry_applies=False)
    assert body == {"max_tokens": 300, "temperature": 0.2}
    body = {}
    apply_model_params(body, info=info, max_tokens=300, params={"max_completion_tokens": 50}, registry_applies=True)
    assert body == {"max_completion_tokens": 50}
    local = connect(backend="openai", base_url="http://127.0.0.1:9/v1", model="o4-mini", verbose=False, env_file=None)
    assert not local.registry_applies


def test_deployment_name_equals_model_and_bad_models_are_refused() -> None:
    from vizlab.local.config import BackendConfig

    config = BackendConfig(deployments=("reasoner=o4-mini", "plain", "gpt-4o-mini"))
    assert config.deployments == ("reasoner", "plain", "gpt-4o-mini")
    assert (config.model_for("reasoner"), config.model_for("plain"), config.model_for("gpt-4o-mini")) == (
        "o4-mini", "gpt-4o", "gpt-4o-mini")  # fmt: skip
    with pytest.raises(ValueError, match="o4-mega.*registry"):
        BackendConfig(deployments=("r=o4-mega",))
    with pytest.raises(ValueError, match="billing_rules"):
        BackendConfig(billing_rules="1999-01")


@pytest.mark.slow
def test_command_line_serves_name_equals_model() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vizlab.local", "--port", "0", "--api-key", KEY, "--deployment", "reasoner=o4-mini",
         "--deployment", "gpt-4o"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "reasoner=o4-mini" in line and "gpt-4o" in line, line
        url = line.split("backend: ", 1)[1].split(" ", 1)[0]
        resp = requests.post(f"{url}/openai/deployments/reasoner/chat/completions?api-version={DEFAULT_API_VERSION}",
                             json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
                             headers={"api-key": KEY}, timeout=30)  # fmt: skip
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "max_tokens"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.slow
def test_connect_to_the_builtin_backend_knows_each_deployments_model() -> None:
    client = connect(local_options={"deployments": ("thinker=o3",)}, deployment="thinker", verbose=False, env_file=None)
    assert client.model_info is not None and client.model_info.name == "o3"
    reply = client.chat("hello")
    assert reply.request["max_completion_tokens"] == 1000 and reply.reasoning_tokens > 0
    retired = connect(local_options={"deployments": ("old=gpt-4.5",)}, deployment="old", verbose=False, env_file=None)
    assert "retires 2025-07-14" in retired.describe()


def test_a_model_without_vision_refuses_images_as_the_service_does(backend: LocalBackend) -> None:
    from PIL import Image

    from vizlab.images import to_data_url

    url = to_data_url(Image.new("RGB", (8, 8), "red"))
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Colour?"},
                                             {"type": "image_url", "image_url": {"url": url}}]}]  # fmt: skip
    refused = _post(backend, "r-o3-mini", {"messages": messages, "max_completion_tokens": 50})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["message"].startswith("Invalid content type. image_url is only supported by certain models.")
    assert "'o3-mini'" in error["message"] and error["param"] == "messages.[1].content.[1].type"
    assert error["type"] == "invalid_request_error" and error["code"] is None
    # text alone is fine on the same deployment, and a vision reasoning model takes the image
    assert _post(backend, "r-o3-mini", {"messages": messages[:1] + [{"role": "user", "content": "hi"}],
                                        "max_completion_tokens": 50}).status_code == 200  # fmt: skip
    assert _post(backend, "r-o4-mini", {"messages": messages, "max_completion_tokens": 50}).status_code == 200
