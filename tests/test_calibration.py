"""vizlab.calibrate: against the built-in backend started with each rule profile and with made-up
numbers, and against published real measurements (fixtures), so it is not only checked against
itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vizlab
from vizlab import models, tokens
from vizlab.client import Client
from vizlab.experiments.calibration import (
    MIN_SEPARATION,
    CalibrationError,
    Measurement,
    Probe,
    calibrate,
    fit,
    plan,
)
from vizlab.local import LocalBackend

KEY = "calibration-key"

# Published measurements (reported prompt_tokens, text-only baseline not published):
# community.openai.com "Vision pricing calculator inaccurate" thread (t/1281361, 2025) and the
# forum's 128x64 gpt-4o example quoted in issue 10: 267 prompt tokens at high, 97 at low.
FORUM_GPT4O_128x64 = [
    Measurement(Probe(128, 64, "high"), 267, "forum, gpt-4o"),
    Measurement(Probe(128, 64, "low"), 97, "forum, gpt-4o"),
]
# gpt-4.1-mini, a 4000x1474 image: "Showing total input 2498 billed tokens (w overhead)",
# "Billing is 1536 x 1.62 model multiplier = 2488" (community.openai.com/t/1281361, 2025).
FORUM_GPT41MINI_4000x1474 = [Measurement(Probe(4000, 1474, "high"), 2498, "forum, gpt-4.1-mini")]


def _connect(backend: LocalBackend, deployment: str, model: str) -> Client:
    return vizlab.connect(backend="azure", endpoint=backend.url, api_key=KEY, deployment=deployment, model=model,
                          verbose=False, env_file=None)  # fmt: skip


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts Client.chat calls (each is one request to the backend)."""
    calls: list[int] = []
    real = Client.chat

    def chat(self: Client, *args: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(self, *args, **kw)

    monkeypatch.setattr(Client, "chat", chat)
    yield calls


def test_forum_128x64_on_gpt_4o_fits_the_tile_rule_with_one_text_offset() -> None:
    result = fit(FORUM_GPT4O_128x64, "gpt-4o")
    assert result.ok and "2025-08" in result.consistent and models.NEWEST in result.consistent
    assert "azure-2023-preview" not in result.consistent  # 194/65 tokens: the offsets disagree (73 vs 32)
    by_profile = {f.profile: f for f in result.fits}
    assert by_profile[models.NEWEST].offset == 12 and by_profile[models.NEWEST].predicted == [255, 85]
    assert by_profile["azure-2023-preview"].residuals != [0, 0]


def test_forum_gpt_4_1_mini_bill_is_explained_by_the_1536_patch_budget() -> None:
    result = fit(FORUM_GPT41MINI_4000x1474, "gpt-4.1-mini")
    by_profile = {f.profile: f for f in result.fits}
    assert by_profile["2025-08"].fits and by_profile["2025-08"].predicted == [2490]  # ceil(1536 x 1.62) + 1 per image
    assert by_profile["2025-08"].offset == 8
    under = fit([Measurement(Probe(4000, 1474, "high"), 2400)], "gpt-4.1-mini")
    assert not under.ok and "no profile fits" in under.summary()  # below the image alone: no offset explains it


def test_plan_states_the_spend_and_separates_every_pair_of_profiles() -> None:
    the_plan = plan("gpt-4o")
    assert the_plan.requests == 1 + len(the_plan.probes) and the_plan.cost is not None and the_plan.cost < 0.05
    assert str(the_plan.requests) in str(the_plan) and "prompt" in str(the_plan)
    profiles = the_plan.candidates
    assert set(profiles) == set(models.RULE_PROFILES)
    separated = set()
    for probe in the_plan.probes:
        values = [tokens.image_tokens(probe.width, probe.height, detail=probe.detail, model="gpt-4o", rules=p)
                  for p in profiles]  # fmt: skip
        pairs = {(a, b) for a in range(len(values)) for b in range(a + 1, len(values))
                 if abs(values[a] - values[b]) >= MIN_SEPARATION}  # fmt: skip
        separated |= pairs
    assert separated == {(a, b) for a in range(len(profiles)) for b in range(a + 1, len(profiles))}
    assert {p.detail for p in the_plan.probes} >= {"low", "high"}


@pytest.mark.slow
@pytest.mark.parametrize("profile", list(models.RULE_PROFILES))
def test_calibrate_finds_the_profile_the_backend_bills_by(profile: str, tmp_path: Path) -> None:
    with LocalBackend(api_key=KEY, deployments=("vision=gpt-4o",), billing_rules=profile) as backend:
        client = _connect(backend, "vision", "gpt-4o")
        result = calibrate(client, cache=tmp_path, verbose=False)
        assert result.profile == profile, result.explain()
        assert result.consistent == [profile] and result.fitted is None
        assert result.requests == 1 + len(plan("gpt-4o").probes) and result.prompt_tokens_spent > 0
        assert client.token_rules == profile
        estimate = vizlab.estimate_request(
            [{"role": "user", "content": [vizlab.image_part(Probe(1000, 1334, "high").png(), detail="high")]}],
            model="gpt-4o", rules=profile,
        )
        assert estimate.image_tokens == tokens.image_tokens(1000, 1334, detail="high", model="gpt-4o", rules=profile)
        client.close()


@pytest.mark.slow
def test_made_up_numbers_fit_no_profile_and_are_recovered(tmp_path: Path) -> None:
    with LocalBackend(api_key=KEY, deployments=("odd=gpt-4o",), billing_numbers={"base": 70, "per_tile": 150}) as backend:
        client = _connect(backend, "odd", "gpt-4o")
        result = calibrate(client, cache=tmp_path, verbose=False)
        assert result.profile is None and result.consistent == []
        assert "no profile fits" in result.summary() and all(any(f.residuals) for f in result.fits)
        assert result.fitted == {"base": 70.0, "per_tile": 150.0}
        assert client.token_rules is None  # nothing to apply
        assert "residual" in result.summary() and "base=70" in result.explain()
        client.close()


@pytest.mark.slow
def test_made_up_multiplier_on_a_patch_family(tmp_path: Path) -> None:
    with LocalBackend(api_key=KEY, deployments=("mini=gpt-4.1-mini",), billing_numbers={"multiplier": 1.3}) as backend:
        client = _connect(backend, "mini", "gpt-4.1-mini")
        result = calibrate(client, cache=tmp_path, verbose=False)
        assert result.profile is None and result.fitted == {"multiplier": 1.3}
        client.close()


def test_the_cost_cap_refuses_before_any_request(counted: list[int]) -> None:
    client = vizlab.connect(backend="azure", endpoint="http://127.0.0.1:9", api_key=KEY, deployment="gpt-4o",
                            verbose=False, env_file=None, max_retries=0)  # fmt: skip
    with pytest.raises(CalibrationError, match="cost_cap"):
        calibrate(client, cost_cap=1e-9, cache=None, verbose=False)
    assert counted == []


@pytest.mark.slow
def test_results_are_cached_per_endpoint_deployment_and_model_version(
    tmp_path: Path, counted: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalBackend(api_key=KEY, deployments=("vision=gpt-4o", "other=gpt-4o")) as backend:
        client = _connect(backend, "vision", "gpt-4o")
        first = calibrate(client, cache=tmp_path)
        out = capsys.readouterr().out
        assert "requests" in out and "prompt" in out and "$" in out  # the plan, stated up front
        sent = len(counted)
        assert sent == first.requests and not first.cached
        again = calibrate(client, cache=tmp_path, verbose=False)
        assert again.cached and again.profile == first.profile and len(counted) == sent + 1  # the baseline only
        other = calibrate(client.with_deployment("other"), cache=tmp_path, verbose=False)
        assert not other.cached  # another deployment is measured afresh
        assert (tmp_path / "calibration.json").exists()
        client.close()


def test_a_model_without_vision_cannot_be_calibrated() -> None:
    with pytest.raises(CalibrationError, match="no image input"):
        plan("o3-mini")
