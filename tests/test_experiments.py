"""vizlab.experiments against a real built-in backend on loopback: rows, cache, resume, errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vizlab.client import Client, connect
from vizlab.datasets import LabelledImage, colour_card, detail_benchmark, text_card
from vizlab.errors import InvalidImageRequestError, UnknownDetailError
from vizlab.experiments import (
    COLUMNS,
    ResultCache,
    Trial,
    backend_identity,
    run_detail_experiment,
    summarize,
)
from vizlab.local import LocalBackend

API_KEY = "experiments-test-key-0123456789"
# Small enough to reject the noise image below (about 480 kB as PNG), large enough for the cards.
MAX_IMAGE_BYTES = 300_000
DETAILS = ("low", "high", "auto")


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    server = LocalBackend(api_key=API_KEY, deployments=("gpt-4o",), max_image_bytes=MAX_IMAGE_BYTES)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _connect(url: str) -> Client:
    return connect(
        backend="azure", endpoint=url, api_key=API_KEY, deployment="gpt-4o",
        verbose=False, max_retries=0, env_file=None, timeout=30,
    )  # fmt: skip


@pytest.fixture
def client(backend: LocalBackend) -> Iterator[Client]:
    c = _connect(backend.url)
    try:
        yield c
    finally:
        c.close()


class CountingClient:
    """Wraps a real Client: counts chat() calls and can stop the run after ``stop_after`` calls.

    The experiment reads only ``backend``, ``endpoint``, ``deployment``, ``token_model`` and
    ``chat``; everything else is delegated.
    """

    def __init__(self, inner: Client, stop_after: int | None = None) -> None:
        self.inner = inner
        self.stop_after = stop_after
        self.calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def chat(self, messages: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
            if self.stop_after is not None and self.calls > self.stop_after:
                raise KeyboardInterrupt("simulated kill")
        return self.inner.chat(messages, **kwargs)


def small_text() -> LabelledImage:
    # 1024x768: high keeps every pixel (short side 768), low halves it: 8 px text becomes 4 px.
    return LabelledImage(
        "small-text", text_card("K7RF 49XM", font_px=8, size=(1024, 768), origin=(40, 40)), "read_text",
        "What text is written in this image?", "K7RF 49XM", {"font_px": 8},
    )  # fmt: skip


def red_card() -> LabelledImage:
    return LabelledImage(
        "red", colour_card("red", size=(256, 192)), "dominant_colour", "What is the dominant colour?", "red"
    )


def too_large() -> LabelledImage:
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    return LabelledImage("noise", Image.fromarray(noise), "dominant_colour", "What colour?", "grey")


def good_images() -> list[LabelledImage]:
    return [small_text(), red_card()]


# --- a full run -------------------------------------------------------------------------------


@pytest.mark.slow
def test_first_run_rows_columns_and_error_row(client: Client, tmp_path: Path) -> None:
    counting = CountingClient(client)
    df = run_detail_experiment(counting, [*good_images(), too_large()], cache_dir=tmp_path, progress=False)
    assert list(df.columns) == COLUMNS
    assert len(df) == 3 * 3 and counting.calls == 9
    assert list(df["image_id"]) == ["small-text"] * 3 + ["red"] * 3 + ["noise"] * 3
    assert list(df["detail"]) == list(DETAILS) * 3
    assert not df["cached"].any()

    ok = df[df["image_id"] != "noise"]
    assert ok["error"].isna().all()
    assert (ok["reported_prompt_tokens"] > 0).all() and (ok["completion_tokens"] > 0).all()
    assert (ok["cost"] > 0).all() and (ok["latency_s"] > 0).all()
    assert set(ok["finish_reason"]) == {"stop"}
    text = df[df["image_id"] == "small-text"].set_index("detail")
    assert text.loc["low", "image_tokens"] == 85 and text.loc["high", "image_tokens"] == 85 + 170 * 4
    # The local backend bills by vizlab.tokens: the estimate and the reported usage agree.
    assert (ok["estimated_prompt_tokens"] == ok["reported_prompt_tokens"]).all()
    assert (df.loc[df["image_id"] == "red", "accuracy"] == 1.0).all()

    bad = df[df["image_id"] == "noise"]
    assert bad["error"].str.startswith("InvalidImageRequestError: ").all()
    assert bad["error"].str.contains("300,000 bytes").all()
    assert bad["accuracy"].isna().all() and bad["cost"].isna().all() and bad["answer"].isna().all()
    assert (bad["image_tokens"] > 0).all()  # the estimate is still there
    assert not bad["error"].str.contains(API_KEY).any()
    # Only successes are cached.
    assert len(ResultCache(tmp_path)) == 6


@pytest.mark.slow
def test_rerun_is_fully_cached_with_no_traffic(backend: LocalBackend, tmp_path: Path) -> None:
    first_backend = LocalBackend(api_key=API_KEY, deployments=("gpt-4o",)).start()
    first_url = first_backend.url  # read while running: .url on a stopped backend binds a new socket
    try:
        with _connect(first_url) as first:
            before = run_detail_experiment(first, good_images(), cache_dir=tmp_path, progress=False)
    finally:
        first_backend.stop()
    # The backend that answered is gone: any request now would fail (BackendUnavailableError),
    # so an error-free rerun proves nothing was sent. A fresh backend on another port shares the
    # cache because loopback endpoints are keyed without their port.
    for url in (first_url, backend.url):
        with _connect(url) as c:
            counting = CountingClient(c)
            again = run_detail_experiment(counting, good_images(), cache_dir=tmp_path, progress=False)
        assert counting.calls == 0
        assert again["cached"].all() and again["error"].isna().all()
        pd.testing.assert_frame_equal(again.drop(columns="cached"), before.drop(columns="cached"))


@pytest.mark.slow
def test_failed_requests_are_retried_on_rerun(client: Client, tmp_path: Path) -> None:
    images = [red_card(), too_large()]
    run_detail_experiment(client, images, cache_dir=tmp_path, progress=False)
    counting = CountingClient(client)
    again = run_detail_experiment(counting, images, cache_dir=tmp_path, progress=False)
    assert counting.calls == 3  # only the three failed requests are sent again
    assert list(again["cached"]) == [True] * 3 + [False] * 3
    assert again["error"].notna().sum() == 3


@pytest.mark.slow
def test_on_error_raise(client: Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidImageRequestError):
        run_detail_experiment(client, [red_card(), too_large()], cache_dir=tmp_path, progress=False, on_error="raise")
    assert len(ResultCache(tmp_path)) == 3  # what finished before the error stays cached


def test_an_image_that_cannot_be_encoded_is_an_error_row(client: Client, tmp_path: Path) -> None:
    broken = LabelledImage("empty", Image.new("RGB", (0, 0)), "dominant_colour", "Colour?", "red")
    df = run_detail_experiment(client, [broken, red_card()], details=("low",), cache_dir=tmp_path, progress=False)
    assert df.loc[0, "error"].startswith("ValueError: ")
    assert pd.isna(df.loc[1, "error"]) and df.loc[1, "accuracy"] == 1.0


# --- kill and resume --------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_run_resumes_with_only_missing_requests(client: Client, tmp_path: Path) -> None:
    killer = CountingClient(client, stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_detail_experiment(killer, good_images(), cache_dir=tmp_path, progress=False)
    assert len(ResultCache(tmp_path)) == 2

    counting = CountingClient(client)
    df = run_detail_experiment(counting, good_images(), cache_dir=tmp_path, progress=False)
    assert counting.calls == 6 - 2
    assert list(df["cached"]) == [True, True] + [False] * 4
    assert df["error"].isna().all()


@pytest.mark.slow
def test_killed_while_reading_images_resumes(client: Client, tmp_path: Path) -> None:
    def images_then_kill() -> Iterator[LabelledImage]:
        yield red_card()
        raise KeyboardInterrupt("simulated kill while loading the next image")

    with pytest.raises(KeyboardInterrupt):
        run_detail_experiment(client, images_then_kill(), cache_dir=tmp_path, progress=False)
    counting = CountingClient(client)
    df = run_detail_experiment(counting, [red_card(), small_text()], cache_dir=tmp_path, progress=False)
    assert counting.calls == 3
    assert list(df["cached"]) == [True] * 3 + [False] * 3


# --- concurrency and progress -----------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_run_matches_sequential(client: Client, tmp_path: Path) -> None:
    images = [*good_images(), too_large()]
    sequential = run_detail_experiment(client, images, cache_dir=tmp_path / "seq", progress=False)
    counting = CountingClient(client)
    parallel = run_detail_experiment(counting, images, cache_dir=tmp_path / "par", progress=False, concurrency=4)
    assert counting.calls == 9
    keep = ["image_id", "detail", "answer", "accuracy", "reported_prompt_tokens", "error"]
    pd.testing.assert_frame_equal(parallel[keep], sequential[keep])
    lines = (tmp_path / "par" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 6 and all(json.loads(line)["key"] for line in lines)


def test_progress_bar(client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_detail_experiment(client, [red_card()], details=("low",), cache_dir=tmp_path, progress=True)
    run_detail_experiment(client, [red_card()], details=("low",), cache_dir=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "detail experiment" in err and "cached=1" in err


# --- the point of it all ----------------------------------------------------------------------


@pytest.mark.slow
def test_small_text_needs_high_detail(client: Client, tmp_path: Path) -> None:
    benchmark_card = detail_benchmark(font_sizes=(12,), include_photos=False, include_shapes=False, include_colours=False)
    df = run_detail_experiment(client, [small_text(), *benchmark_card], cache_dir=tmp_path, progress=False)
    table = summarize(df, by="detail").set_index("detail")
    assert table.loc["low", "accuracy"] == 0.0
    assert table.loc["high", "accuracy"] == 1.0
    assert table.loc["auto", "accuracy"] == 1.0  # vizlab counts auto as high (tokens.AUTO_POLICY)
    assert table.loc["high", "prompt_tokens"] > 5 * table.loc["low", "prompt_tokens"]


# --- summaries --------------------------------------------------------------------------------


def test_summarize() -> None:
    df = pd.DataFrame(
        {
            "task": ["t", "t", "t", "t", "u"],
            "detail": ["low", "low", "high", "high", "low"],
            "accuracy": [0.0, 1.0, 1.0, None, None],
            "reported_prompt_tokens": [100, None, 800, None, 100],
            "estimated_prompt_tokens": [100, 110, 800, 800, 100],
            "image_tokens": [85, 85, 765, 765, 85],
            "cost": [0.001, 0.003, 0.01, None, 0.002],
            "latency_s": [0.1, 0.3, 0.5, None, 0.2],
            "error": [None, None, None, "RateLimitError: slow down", None],
        }
    )
    by_detail = summarize(df, by="detail").set_index("detail")
    assert list(by_detail.index) == ["low", "high"]
    assert list(by_detail.columns) == [
        "n", "errors", "accuracy", "prompt_tokens", "image_tokens", "total_cost", "median_latency_s", "cost_per_1000",
    ]  # fmt: skip
    low = by_detail.loc["low"]
    assert (low["n"], low["errors"], low["accuracy"]) == (3, 0, 0.5)
    assert low["prompt_tokens"] == pytest.approx((100 + 110 + 100) / 3)  # reported, else estimated
    assert low["total_cost"] == pytest.approx(0.006)
    assert low["cost_per_1000"] == pytest.approx(2.0)
    assert low["median_latency_s"] == pytest.approx(0.2)
    high = by_detail.loc["high"]
    assert (high["n"], high["errors"], high["accuracy"], high["prompt_tokens"]) == (2, 1, 1.0, 800)
    both = summarize(df)
    assert list(both[["detail", "task"]].itertuples(index=False, name=None)) == [("low", "t"), ("high", "t"), ("low", "u")]


# --- keys, identity, cache --------------------------------------------------------------------


def test_trial_key_is_stable_and_covers_what_decides_the_answer() -> None:
    base = Trial("a", "What text?", "low", "gpt-4o", "read_text", "K7RF", 300, "azure|loopback")
    sha = "ab" * 32
    assert base.key(sha) == Trial("b", "What text?", "low", "gpt-4o", "count_shapes", "X", 300, "azure|loopback").key(sha)
    changed = [
        Trial("a", "What text? ", "low", "gpt-4o", "read_text", "K7RF", 300, "azure|loopback"),
        Trial("a", "What text?", "high", "gpt-4o", "read_text", "K7RF", 300, "azure|loopback"),
        Trial("a", "What text?", "low", "gpt-4o-mini", "read_text", "K7RF", 300, "azure|loopback"),
        Trial("a", "What text?", "low", "gpt-4o", "read_text", "K7RF", 301, "azure|loopback"),
        Trial("a", "What text?", "low", "gpt-4o", "read_text", "K7RF", 300, "openai|https://api.openai.com/v1"),
    ]
    keys = {t.key(sha) for t in changed} | {base.key("cd" * 32)}
    assert base.key(sha) not in keys and len(keys) == len(changed) + 1
    assert len(base.key(sha)) == 64 and base.key(sha) == base.key(sha)


def test_backend_identity_has_no_key(client: Client) -> None:
    identity = backend_identity(client)
    assert identity == "azure|loopback"
    assert API_KEY not in identity

    class Remote:
        backend = "azure"
        endpoint = "https://User:pw@MyRes.openai.azure.com/?api-key=secret"

    assert backend_identity(Remote()) == "azure|https://myres.openai.azure.com"


def test_result_cache_persists_and_survives_a_torn_line(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c")
    assert len(cache) == 0 and cache.get("k1") is None
    cache.put("k1", {"answer": "one"})
    cache.put("k2", {"answer": "two"})
    cache.put("k1", {"answer": "uno"})  # the last record for a key wins
    # A kill mid-write leaves half a line.
    with open(cache.file, "ab") as fh:
        fh.write(b'{"key": "k3", "answ')
    reopened = ResultCache(tmp_path / "c")
    assert reopened.skipped_lines == 1
    assert len(reopened) == 2 and reopened.keys() == ["k1", "k2"]
    assert reopened.get("k1") == {"answer": "uno", "key": "k1"}
    reopened.put("k4", {"answer": "four"})  # starts on a fresh line after the torn one
    again = ResultCache(tmp_path / "c")
    assert again.get("k4") == {"answer": "four", "key": "k4"} and "k3" not in again
    assert again.skipped_lines == 1


def test_result_cache_threads(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    workers = [
        threading.Thread(target=lambda n=n: [cache.put(f"{n}-{i}", {"i": i, "pad": "x" * 500}) for i in range(50)])
        for n in range(4)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(ResultCache(tmp_path)) == 200


def test_argument_errors(client: Client, tmp_path: Path) -> None:
    with pytest.raises(UnknownDetailError):
        run_detail_experiment(client, [], details=("medium",), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="on_error"):
        run_detail_experiment(client, [], cache_dir=tmp_path, on_error="ignore")
    with pytest.raises(ValueError, match="concurrency"):
        run_detail_experiment(client, [], cache_dir=tmp_path, concurrency=0)
    empty = run_detail_experiment(client, [], cache_dir=tmp_path, progress=False)
    assert list(empty.columns) == COLUMNS and len(empty) == 0


@pytest.mark.slow
def test_run_experiment_holds_only_the_images_being_sent(client: Client, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 23: the plan keeps each image's address and sizes; its bytes are encoded when the
    request is sent, and only the few most recent slots stay alive, however many items."""
    import gc
    import weakref

    from vizlab.experiments import runner
    from vizlab.experiments.runner import run_experiment

    alive: weakref.WeakSet[Any] = weakref.WeakSet()
    encode = runner.strategy_images

    def tracked(*a: Any, **k: Any) -> Any:
        out = encode(*a, **k)
        alive.update(out)
        return out

    monkeypatch.setattr(runner, "strategy_images", tracked)
    peaks: list[int] = []
    images = runner._Encoder.images

    def measured(self: Any, job: Any) -> Any:
        out = images(self, job)
        gc.collect()
        peaks.append(len(alive))
        return out

    monkeypatch.setattr(runner._Encoder, "images", measured)
    items = [LabelledImage(f"c{i}", Image.new("RGB", (64 + i, 48), (220 - i, 20 + i, 30)), "dominant_colour",
                           "What is the dominant colour? One word.", "red") for i in range(24)]
    result = run_experiment(client, items, details=("low", "high"), cache_dir=tmp_path / "cache", progress=False,
                            concurrency=2)  # fmt: skip
    assert len(result.table) == 48 and result.counts["sent"] == 48
    assert len(peaks) == 48 and max(peaks) <= 4 + 2  # max(4, 2 x concurrency) slots kept, 2 being sent; not 24
    assert (result.table["score"] == 1.0).all()  # a one-word colour question gets its colour (issue 23)
