"""The client learns the model behind a deployment, adapts to a refused parameter once, uses
Azure's v1 route by default and asks the service for exact counts: real HTTP on loopback against
the built-in backend, through the official openai SDK."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vizlab
from vizlab import errors
from vizlab.client.adapt import ParameterAdaptedWarning
from vizlab.client.targets import Secret, Target, v1_sdk
from vizlab.images.encode import image_part
from vizlab.local.config import DEFAULT_DEPLOYMENT, BackendConfig
from vizlab.local.server import LocalBackend
from vizlab.models.registry import lookup
from conftest import make_image_bytes

KEY = "learning-test-key"


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("reasoner=gpt-5.4", "vision=gpt-4.1", "gpt-4o")) as b:
        yield b


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("AZURE_OPENAI_MODEL", "OPENAI_API_VERSION", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_DEPLOYMENT_NAME",
                 "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "VIZLAB_BACKEND", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's current directory
    return monkeypatch


def _connect(backend: LocalBackend, deployment: str, **kw: Any) -> vizlab.Client:
    return vizlab.connect(endpoint=backend.url, api_key=KEY, deployment=deployment, verbose=False, env_file=None, **kw)


def _image_question(detail: str = "low") -> list[dict[str, Any]]:
    part = image_part(make_image_bytes(640, 480), detail=detail)
    return [{"role": "user", "content": [{"type": "text", "text": "What is in this image?"}, part]}]


@pytest.mark.slow
def test_an_unnamed_reasoning_deployment_answers_an_image_chat(backend: LocalBackend, env: Any) -> None:
    with _connect(backend, "reasoner") as client:
        assert client.model_info is None and client.api_version is None  # v1 route, model unknown
        assert "model unknown until it answers" in client.describe()
        with pytest.warns(ParameterAdaptedWarning) as said:
            reply = client.chat(_image_question(), max_tokens=300, temperature=0.2)
        assert [str(w.message).split(";")[0] for w in said] == [
            "deployment reasoner refused max_tokens (unsupported_parameter)",
            "deployment reasoner refused temperature (unsupported_value)",
        ]
        assert reply.text and reply.finish_reason == "stop"
        assert reply.request["max_completion_tokens"] == 300 and "temperature" not in reply.request
        # Unknown before sending: no estimate then, one by the reported model's rules afterwards, and said so.
        assert reply.estimate_error and reply.estimate_error.startswith("model unknown before sending")
        assert reply.estimate is not None and reply.usage is not None
        assert reply.estimate.prompt_tokens == reply.usage.prompt_tokens
        # The service's dated model, resolved through the registry; the analyst named apart.
        assert reply.model == "gpt-5.4-2026-03-05" and reply.answered_by == "vizlab-local-analyst"
        assert client.model_info is not None and client.model_info.name == "gpt-5.4"
        assert client.model_source == "reported" and client.token_model == "gpt-5.4"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # remembered: no second refusal, no second warning
            again = client.chat(_image_question(), max_tokens=300, temperature=0.2)
            streamed = client.stream("Hello", max_tokens=50, temperature=0.2)
            "".join(streamed)
        assert again.estimate is not None and again.usage is not None
        assert again.usage.prompt_tokens == again.estimate.prompt_tokens  # now estimated by gpt-5.4's rules
        assert streamed.reply is not None and "temperature" not in streamed.reply.request


def test_respond_and_achat_adapt_too(backend: LocalBackend, env: Any) -> None:
    import asyncio

    with _connect(backend, "reasoner") as client:
        with pytest.warns(ParameterAdaptedWarning, match="dropped top_p"):
            reply = client.respond("Hello", max_output_tokens=50, top_p=0.5)
        assert "top_p" not in reply.request and reply.model == "gpt-5.4-2026-03-05"
    with _connect(backend, "reasoner") as fresh:
        with pytest.warns(ParameterAdaptedWarning, match="max_completion_tokens"):
            areply = asyncio.run(fresh.achat("Hello", max_tokens=50))
        assert areply.request["max_completion_tokens"] == 50


def test_a_non_reasoning_deployment_keeps_max_tokens_and_learns_its_model(backend: LocalBackend, env: Any) -> None:
    with _connect(backend, "vision") as client, warnings.catch_warnings():
        warnings.simplefilter("error")
        reply = client.chat(_image_question(), max_tokens=100, temperature=0.2)
        assert reply.request["max_tokens"] == 100 and reply.request["temperature"] == 0.2
        assert reply.model == "gpt-4.1-2025-04-14" and client.model_info == lookup("gpt-4.1")


def test_a_refusal_vizlab_cannot_adapt_is_raised_once(backend: LocalBackend, env: Any) -> None:
    with _connect(backend, "reasoner") as client, pytest.raises(errors.UnsupportedParameterError) as info:
        client.chat("Hello", max_completion_tokens=50, reasoning_effort="extreme")
    assert info.value.param == "reasoning_effort" and "extreme" in str(info.value)


@pytest.mark.parametrize("source", ["environment", "dotenv"])
def test_azure_openai_model_names_the_model_before_the_first_reply(
    backend: LocalBackend, env: pytest.MonkeyPatch, tmp_path: Path, source: str
) -> None:
    if source == "environment":
        env.setenv("AZURE_OPENAI_MODEL", "gpt-5.4")
        env_file = None
    else:
        (tmp_path / "room.env").write_text("AZURE_OPENAI_MODEL=gpt-5.4\n")
        env_file = tmp_path / "room.env"
    with vizlab.connect(endpoint=backend.url, api_key=KEY, deployment="reasoner", verbose=False,
                        env_file=env_file) as client, warnings.catch_warnings():  # fmt: skip
        warnings.simplefilter("error")  # right from the first request: nothing to adapt
        assert client.model_source == "AZURE_OPENAI_MODEL" and client.token_model == "gpt-5.4"
        reply = client.chat(_image_question(), max_tokens=200)
        assert reply.request["max_completion_tokens"] == 200
        assert reply.estimate is not None and reply.usage is not None
        assert reply.estimate.prompt_tokens == reply.usage.prompt_tokens
    with _connect(backend, "reasoner", model="gpt-4.1") as named:  # an explicit model= wins over the variable
        assert named.model_source == "connect(model=)" and named.model_info == lookup("gpt-4.1")


def test_the_dated_route_stays_selectable(backend: LocalBackend, env: pytest.MonkeyPatch) -> None:
    with _connect(backend, "gpt-4o", api_version="2024-10-21") as dated:
        assert dated.api_version == "2024-10-21" and "api-version 2024-10-21" in dated.describe()
        assert dated.chat("Hello", max_tokens=300).text
    env.setenv("OPENAI_API_VERSION", "2024-10-21")
    with _connect(backend, "gpt-4o") as from_env:
        assert from_env.api_version == "2024-10-21"
    with vizlab.connect(endpoint=f"{backend.url}/openai/v1/", api_key=KEY, deployment="gpt-4o", verbose=False,
                        env_file=None) as v1:  # fmt: skip
        assert v1.api_version is None and v1.chat("Hello", max_tokens=300).text


@pytest.mark.slow
def test_keyless_auth_on_the_v1_route_sends_the_token_as_bearer() -> None:
    token = "entra-token-for-test"
    with LocalBackend(api_key=token, deployments=("gpt-4o",)) as b:  # accepts only that token
        target = Target("azure", str(b.url), "gpt-4o", None, "entra-id", Secret(None), lambda: token)
        sdk = v1_sdk(target, asynchronous=False, timeout=30, max_retries=0)
        try:
            answer = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        finally:
            sdk.close()
        assert answer.choices[0].message.content


@pytest.mark.slow
def test_the_service_count_matches_the_bill_and_sits_beside_the_estimate(backend: LocalBackend, env: Any) -> None:
    question = _image_question("high")
    with _connect(backend, "reasoner", model="gpt-5.4") as client:
        both = client.estimate(question, service_count=True)
        assert both.service is not None and both.service.input_tokens is not None and both.estimate is not None
        billed = client.respond(question, max_output_tokens=100)
        assert billed.usage is not None and both.service.input_tokens == billed.usage.prompt_tokens
        assert str(both).startswith(f"vizlab estimate: {both.estimate.prompt_tokens:,} prompt tokens · service count:")
        with pytest.raises(errors.DeploymentNotFoundError):
            client.with_deployment("nowhere").count_input_tokens("hi")
    with vizlab.connect(backend="openai", base_url="http://127.0.0.1:9/v1", model="llava", verbose=False,
                        env_file=None) as other:  # fmt: skip
        assert other.count_input_tokens("hi").input_tokens is None
        assert "not offered" in str(other.count_input_tokens("hi"))


def test_the_built_in_default_is_a_current_reasoning_model() -> None:
    info = lookup(DEFAULT_DEPLOYMENT)
    assert info.reasoning and info.vision and info.lifecycle == "generally-available"
    config = BackendConfig()
    assert config.deployments[0] == DEFAULT_DEPLOYMENT and "gpt-4o" in config.deployments  # history stays servable
    assert BackendConfig(deployments=("legacy=gpt-4o",)).reported_model("legacy") == "gpt-4o-2024-11-20"
    assert BackendConfig(deployments=("x=gpt-5.4-2026-03-05",)).reported_model("x") == "gpt-5.4-2026-03-05"


def test_the_experiment_runner_adapts_and_learns_too(backend: LocalBackend, env: Any, tmp_path: Path) -> None:
    from vizlab.datasets import builtin_set
    from vizlab.experiments import run_experiment

    items = builtin_set(per_category=1, categories=("colours",))
    with _connect(backend, "reasoner") as client:
        with pytest.warns(ParameterAdaptedWarning, match="max_completion_tokens"):
            result = run_experiment(client, items, details=("low",), cache_dir=tmp_path, progress=False,
                                    concurrency=1, max_tokens=200)  # fmt: skip
        assert result.counts["sent"] == len(result.table) and result.table["answer"].notna().all()
        assert client.model_info is not None and client.model_info.name == "gpt-5.4"


@pytest.mark.parametrize(("model", "limit"), [("gpt-5.4", "max_completion_tokens"), ("gpt-4.1", "max_tokens")])
def test_batch_lines_take_the_limit_the_model_takes(backend: LocalBackend, env: Any, tmp_path: Path,
                                                    model: str, limit: str) -> None:  # fmt: skip
    import json

    from vizlab.batch import build_batch
    from vizlab.datasets import detail_benchmark

    with _connect(backend, "reasoner", model=model) as client:
        build_batch(list(detail_benchmark())[:1], tmp_path / "batch", client=client, details=("low",))
    lines = [json.loads(line) for f in (tmp_path / "batch").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert lines and all(limit in line["body"] for line in lines)
    assert not any({"max_tokens", "max_completion_tokens"} - {limit} & set(line["body"]) for line in lines)


@pytest.mark.slow
def test_the_count_route_answers_in_the_references_shape(backend: LocalBackend) -> None:
    import requests

    url = f"{backend.url}/openai/v1/responses/input_tokens"
    ok = requests.post(url, headers={"api-key": KEY}, json={"model": "gpt-4o", "input": "Hello", "max_output_tokens": 50},
                       timeout=30)  # fmt: skip
    assert ok.status_code == 200 and ok.json()["object"] == "response.input_tokens" and ok.json()["input_tokens"] > 0
    assert requests.post(url, headers={"api-key": KEY}, json={"input": "Hello"}, timeout=30).status_code == 400
    assert requests.post(url, headers={"api-key": KEY}, json={"model": "nowhere", "input": "Hi"}, timeout=30).status_code == 404
    assert requests.post(url, headers={"api-key": "wrong"}, json={"model": "gpt-4o", "input": "Hi"}, timeout=30).status_code == 401


def test_estimate_says_model_unknown_before_the_first_reply(backend: LocalBackend, env: pytest.MonkeyPatch) -> None:
    """Issue 19: no silent gpt-4o. Client.model_note (and EstimateWithCount.model_note) says what is assumed."""
    with _connect(backend, "reasoner") as client:  # a deployment name no registry entry matches
        before = client.estimate(_image_question())
        assert before.estimate is None and before.estimate_error == client.model_note
        assert client.model_note.startswith("model unknown: deployment reasoner") and "no assumption" in client.model_note
        assert str(before).startswith("vizlab estimate: none (model unknown") and "gpt-4o" not in str(before)
        with pytest.warns(ParameterAdaptedWarning):
            client.chat("Hello", max_tokens=50)
        after = client.estimate(_image_question())  # the reply named gpt-5.4: its rules, nothing assumed
        assert after.estimate is not None and after.estimate.model == "gpt-5.4" and client.model_note == ""
        assert after.model_note == "" and "model" not in str(after).split("prompt tokens")[1]
    with _connect(backend, "gpt-4o") as named_like_a_model:  # the name is a guess a reply may correct
        assert named_like_a_model.model_note.startswith("model assumed: deployment gpt-4o is taken to run gpt-4o")
        assert named_like_a_model.estimate("hi").estimate is not None
    with _connect(backend, "reasoner", model="gpt-5.4") as told:
        assert told.model_note == "" and told.estimate("hi").estimate is not None
    with vizlab.connect(backend="openai", base_url="http://127.0.0.1:9/v1", model="llava", verbose=False,
                        env_file=None) as compatible:  # fmt: skip
        guessed = compatible.estimate("hi")  # an OpenAI-compatible server: estimated, by a rule it names
        assert guessed.estimate is not None and guessed.estimate.model == "gpt-4o"
        assert compatible.model_note.startswith("model unknown: llava is not in vizlab's registry; estimates assume gpt-4o")
        assert str(guessed).endswith(f"({compatible.model_note})")


def test_the_client_is_composed_of_parts_and_warns_at_the_callers_line(backend: LocalBackend, env: Any) -> None:
    """The Client is not a stack of mixins; its warnings still name the line that called it."""
    import asyncio

    assert vizlab.Client.__mro__ == (vizlab.Client, object)
    with _connect(backend, "reasoner") as client:
        with pytest.warns(ParameterAdaptedWarning) as said:
            client.chat("Hello", max_tokens=50)
        with pytest.warns(ParameterAdaptedWarning) as said_respond:
            client.respond("Hello", max_output_tokens=50, top_p=0.5)
        with pytest.warns(UserWarning, match="cut off") as cut:
            client.chat("Describe a long story in detail", max_tokens=1)
    with _connect(backend, "reasoner") as fresh, pytest.warns(ParameterAdaptedWarning) as said_async:

        async def ask() -> Any:
            return await fresh.achat("Hello", max_tokens=50)  # the line the warning names

        asyncio.run(ask())
    for record in (*said, *said_respond, *cut, *said_async):
        assert record.filename == __file__, record.filename
