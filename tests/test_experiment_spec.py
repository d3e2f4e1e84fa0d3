"""RunSpec checks itself; reasoning_effort is an arm; a deployment of unknown model is never priced
as some default model. The runs are real HTTP on loopback against the built-in backend."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vizlab
from vizlab.client.adapt import ParameterAdaptedWarning
from vizlab.datasets import builtin_set
from vizlab.errors import UnknownDetailError, VizlabError
from vizlab.experiments import RunSpec, run_experiment
from vizlab.local.server import LocalBackend
from vizlab.tokens.pricing import DEFAULT_PRICES

KEY = "spec-test-key"


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"details": ("medium",)}, UnknownDetailError, "details=('medium',)"),
        ({"details": ()}, UnknownDetailError, "each must be one of"),
        ({"repeats": 0}, ValueError, "repeats=0: use a whole number >= 1"),
        ({"repeats": True}, ValueError, "repeats=True"),
        ({"concurrency": 0}, ValueError, "concurrency=0"),
        ({"max_usd": 0}, ValueError, "max_usd=0: give a positive number of US dollars"),
        ({"max_tokens": 0}, ValueError, "max_tokens=0"),
        ({"tpm": -5}, ValueError, "tpm=-5"),
        ({"rate_window_s": 0}, ValueError, "rate_window_s=0"),
        ({"temperature": 3}, ValueError, "temperature=3: give a number from 0 to 2"),
        ({"seed": "7"}, ValueError, "seed='7'"),
        ({"response_format": "json"}, TypeError, "response_format='json'"),
        ({"strategies": ("zoom",)}, ValueError, "zoom"),
        ({"document": ("pdf",)}, ValueError, "'text', 'pages' or 'both'"),
        ({"deployments": ("",)}, ValueError, "deployments=('',)"),
        ({"reasoning_efforts": ("loud",)}, ValueError, "'loud' is no model's reasoning effort"),
        ({"reasoning_efforts": ("low", "low")}, ValueError, "name each effort once"),
        ({"reasoning_efforts": ("low",), "params": {"reasoning_effort": "high"}}, ValueError, "both set the effort"),
        ({"params": {"model": "gpt-4o"}}, ValueError, "model is set by the runner"),
    ],
)
def test_a_bad_spec_fails_when_made_and_names_the_argument(kwargs: dict[str, Any], error: type, says: str) -> None:
    with pytest.raises(error) as caught:
        RunSpec(**kwargs)
    assert says in str(caught.value)


def test_a_spec_is_normalised_and_frozen() -> None:
    spec = RunSpec(details=["low", "high"], deployments=["a", "b"], reasoning_efforts="low", document="pages")
    assert spec.details == ("low", "high") and spec.deployments == ("a", "b") and spec.reasoning_efforts == ("low",)
    assert spec.arm_strategies == ("document:pages",)
    assert [a.label for a in spec.arms(["a"])] == ["a/low/document:pages/effort=low", "a/high/document:pages/effort=low"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.repeats = 2  # type: ignore[misc]
    assert RunSpec() == RunSpec(details=["low", "high"])


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("reasoner=gpt-5.4", "gpt-4o")) as b:
        yield b


def _connect(backend: LocalBackend, deployment: str, **kw: Any) -> vizlab.Client:
    return vizlab.connect(backend="azure", endpoint=backend.url, api_key=KEY, deployment=deployment, verbose=False,
                          env_file=None, **kw)  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("AZURE_OPENAI_MODEL", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY",
                 "VIZLAB_BACKEND", "OPENAI_API_KEY", "OPENAI_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_spec_and_keywords_are_not_mixed(backend: LocalBackend, env: Path) -> None:
    items = builtin_set(per_category=1, categories=("colours",))
    with _connect(backend, "gpt-4o") as client:
        with pytest.raises(TypeError, match="not both"):
            run_experiment(client, items, spec=RunSpec(), details=("low",))
        with pytest.raises(TypeError, match="give a vizlab.experiments.RunSpec"):
            run_experiment(client, items, spec={"details": ("low",)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("deployment", "model", "efforts", "says"),
    [
        ("gpt-4o", None, ("low",), "arm 'gpt-4o/low/effort=low': deployment 'gpt-4o' runs gpt-4o, which is not a "
                                   "reasoning model"),
        ("reasoner", "gpt-5.4", ("low", "minimal"), "arm 'reasoner/low/effort=minimal': gpt-5.4 does not take "
                                                    "reasoning_effort='minimal'"),
        ("reasoner", None, ("low",), "arm 'reasoner/low/effort=low': the model behind deployment 'reasoner' is unknown"),
    ],
)
def test_an_effort_the_model_lacks_is_refused_before_anything_is_sent(
    backend: LocalBackend, env: Path, deployment: str, model: str | None, efforts: tuple[str, ...], says: str
) -> None:
    items = builtin_set(per_category=1, categories=("colours",))
    with _connect(backend, deployment, **({"model": model} if model else {})) as client:
        with pytest.raises(VizlabError) as caught:
            run_experiment(client, items, details=("low",), reasoning_efforts=efforts, cache_dir=env, progress=False)
    assert says in str(caught.value)
    assert not (env / "results.jsonl").exists() or not (env / "results.jsonl").read_text()


@pytest.mark.slow
def test_reasoning_effort_is_an_arm_priced_with_its_reasoning_tokens(backend: LocalBackend, env: Path) -> None:
    items = builtin_set(per_category=3, categories=("colours", "signs"))
    with _connect(backend, "reasoner", model="gpt-5.4") as client:
        result = run_experiment(client, items, details=("low", "high"), reasoning_efforts=("low", "high"),
                                cache_dir=env / "cache", progress=False, max_tokens=400)  # fmt: skip
    table = result.table
    assert len(table) == 6 * 4 and table["error"].isna().all()
    assert set(table["arm"]) == {"reasoner/low/effort=low", "reasoner/low/effort=high", "reasoner/high/effort=low",
                                 "reasoner/high/effort=high"}  # fmt: skip
    assert set(table["reasoning"]) == {"emulated"} and (table["reasoning_tokens"] > 0).all()
    by_effort = table.groupby("reasoning_effort")["reasoning_tokens"].mean()
    assert by_effort["high"] > by_effort["low"]  # the emulation spends more at a higher effort
    for row in table.itertuples():  # reasoning tokens are output tokens, inside completion_tokens
        assert row.completion_tokens >= row.reasoning_tokens
        assert row.cost == pytest.approx(float(DEFAULT_PRICES.cost(row.prompt_tokens, row.completion_tokens,
                                                                   model="gpt-5.4").total))  # fmt: skip
        assert row.cost <= row.estimated_cost + 1e-12  # max_completion_tokens bounds the reasoning too
    assert result.manifest["deployments"]["reasoner"]["reasoning_efforts"] == ["low", "high"]
    summary = result.summary()
    assert {"reasoning_effort", "reasoning", "reasoning_tokens"} <= set(summary.columns)
    pairs = set(zip(result.compare()["a"], result.compare()["b"]))
    assert ("reasoner/high/effort=low", "reasoner/high/effort=high") in pairs
    said = result.recommendation()
    assert said.startswith("No recommendation on reasoner/low/effort=low against reasoner/high/effort=low")
    assert "emulated by the built-in backend" in said and "run the reasoning arms on a real deployment" in said
    assert result.recommendation("reasoner/high/effort=low", "reasoner/high/effort=high").startswith(
        "No recommendation on reasoner/high/effort=low against reasoner/high/effort=high")
    # The same numbers reported by a service: the recommendation weighs them (no refusal).
    reported = table.assign(reasoning="reported")
    from vizlab.experiments.report import recommend

    assert not recommend(reported).startswith("No recommendation on")


@pytest.mark.slow
def test_a_deployment_of_unknown_model_is_estimated_as_model_unknown_until_it_answers(
    backend: LocalBackend, env: Path
) -> None:
    items = builtin_set(per_category=2, categories=("colours",))
    with _connect(backend, "reasoner") as client:
        assert client.model_info is None
        dry = run_experiment(client, items, details=("low",), dry_run=True, cache_dir=env / "c", progress=False)
        assert dry.table["estimated_cost"].isna().all() and dry.counts["unknown_cost"] == 2
        assert dry.manifest["deployments"]["reasoner"]["token_model"] == "model unknown"
        assert dry.manifest["deployments"]["reasoner"]["family"] is None  # not gpt-4o
        with pytest.warns(ParameterAdaptedWarning, match="max_completion_tokens"):  # said once, then adapted
            result = run_experiment(client, items, details=("low",), cache_dir=env / "c", progress=False,
                                    concurrency=1, max_tokens=200)  # fmt: skip
    table = result.table
    assert table["error"].isna().all() and table["cost"].notna().all()
    assert table["model"].str.startswith("gpt-5.4").all()
    # The first reply named the model: the request after it was estimated by gpt-5.4's rules.
    assert pd_isna(table.loc[0, "estimated_cost"]) and table.loc[1, "estimated_cost"] > 0
    assert result.manifest["deployments"]["reasoner"]["token_model"].startswith("gpt-5.4")


def pd_isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
