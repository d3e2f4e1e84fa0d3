"""run_experiment against a real built-in backend on loopback: rows, costs, cache, reruns, errors, keys."""

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
from vizlab.experiments import LOCAL_STAMP, ROW_COLUMNS, ResultCache, RunSpec, backend_identity, run_experiment
from vizlab.experiments.plan import plan_run
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


def _run(client: Client, items: list[LabelledImage], cache: Path, **kw: Any) -> Any:
    return run_experiment(client, items, details=kw.pop("details", DETAILS), cache_dir=cache, progress=False, **kw)


@pytest.mark.slow
def test_first_run_rows_columns_and_error_row(client: Client, tmp_path: Path) -> None:
    result = _run(client, [*good_images(), too_large()], tmp_path, concurrency=1)
    df = result.table
    assert list(df.columns[: len(ROW_COLUMNS)]) == ROW_COLUMNS
    assert len(df) == 3 * 3 and result.counts["sent"] == 6 and result.counts["failed"] == 3
    assert list(df["item_id"]) == ["small-text"] * 3 + ["red"] * 3 + ["noise"] * 3
    assert list(df["detail"]) == list(DETAILS) * 3
    assert set(df["cache"]) == {"sent", "failed"}

    ok = df[df["item_id"] != "noise"]
    assert ok["error"].isna().all()
    assert (ok["prompt_tokens"] > 0).all() and (ok["completion_tokens"] > 0).all()
    assert (ok["cost"] > 0).all() and (ok["latency_s"] > 0).all()
    assert set(ok["finish_reason"]) == {"stop"}
    text = df[df["item_id"] == "small-text"].set_index("detail")
    assert text.loc["low", "image_tokens"] == 85 and text.loc["high", "image_tokens"] == 85 + 170 * 4
    # The local backend bills by vizlab.tokens: the estimate and the reported usage agree.
    assert (ok["estimated_prompt_tokens"] == ok["prompt_tokens"]).all()
    assert (df.loc[df["item_id"] == "red", "score"] == 1.0).all()
    assert result.stamp == LOCAL_STAMP and (result.summary()["made_by"] == LOCAL_STAMP).all()

    bad = df[df["item_id"] == "noise"]
    assert bad["error"].str.startswith("InvalidImageRequestError: ").all()
    assert bad["error"].str.contains("300,000 bytes").all()
    assert bad["score"].isna().all() and bad["cost"].isna().all() and bad["answer"].isna().all()
    assert (bad["image_tokens"] > 0).all()  # the estimate is still there
    assert not bad["error"].str.contains(API_KEY).any()
    assert len(ResultCache(tmp_path)) == 6  # only successes are cached


@pytest.mark.slow
def test_rerun_is_fully_cached_with_no_traffic(backend: LocalBackend, tmp_path: Path) -> None:
    first_backend = LocalBackend(api_key=API_KEY, deployments=("gpt-4o",)).start()
    first_url = first_backend.url  # read while running: .url on a stopped backend binds a new socket
    try:
        with _connect(first_url) as first:
            before = _run(first, good_images(), tmp_path).table
    finally:
        first_backend.stop()
    # The backend that answered is gone: any request now would fail (BackendUnavailableError),
    # so an error-free rerun proves nothing was sent. A fresh backend on another port shares the
    # cache because loopback endpoints are keyed without their port.
    for url in (first_url, backend.url):
        with _connect(url) as c:
            again = _run(c, good_images(), tmp_path)
        assert again.counts["sent"] == 0 and again.counts["cached"] == 6
        assert (again.table["cache"] == "hit").all() and again.table["error"].isna().all()
        pd.testing.assert_frame_equal(again.table.drop(columns="cache"), before.drop(columns="cache"))


@pytest.mark.slow
def test_failed_requests_are_retried_on_rerun(client: Client, tmp_path: Path) -> None:
    images = [red_card(), too_large()]
    _run(client, images, tmp_path)
    again = _run(client, images, tmp_path)
    assert again.counts["cached"] == 3 and again.counts["failed"] == 3  # only the failed three are sent again
    assert list(again.table["cache"]) == ["hit"] * 3 + ["failed"] * 3


def test_an_image_that_cannot_be_encoded_is_an_error_row(client: Client, tmp_path: Path) -> None:
    broken = LabelledImage("empty", Image.new("RGB", (0, 0)), "dominant_colour", "Colour?", "red")
    df = _run(client, [broken, red_card()], tmp_path, details=("low",)).table
    assert df.loc[0, "error"].startswith("ValueError: ") and df.loc[0, "cache"] == "failed"
    assert pd.isna(df.loc[1, "error"]) and df.loc[1, "score"] == 1.0


# Kill and resume: tests/test_hardening.py kills a runner with SIGKILL mid-run (nothing answered is
# billed again; requests in flight are "unknown"), tests/test_experiment_grid.py kills map_prompt.


@pytest.mark.slow
def test_concurrent_run_matches_sequential(client: Client, tmp_path: Path) -> None:
    images = [*good_images(), too_large()]
    sequential = _run(client, images, tmp_path / "seq", concurrency=1).table
    parallel = _run(client, images, tmp_path / "par", concurrency=4)
    assert parallel.counts["sent"] + parallel.counts["failed"] == 9
    keep = ["item_id", "detail", "answer", "score", "prompt_tokens", "error"]
    pd.testing.assert_frame_equal(parallel.table[keep], sequential[keep])
    lines = (tmp_path / "par" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 6 and all(json.loads(line)["key"] for line in lines)


def test_progress_bar(client: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):
        run_experiment(client, [red_card()], details=("low",), cache_dir=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "experiment" in err and "cached=1" in err


@pytest.mark.slow
def test_small_text_needs_high_detail(client: Client, tmp_path: Path) -> None:
    benchmark_card = detail_benchmark(font_sizes=(12,), include_photos=False, include_shapes=False, include_colours=False)
    result = _run(client, [small_text(), *benchmark_card], tmp_path)
    table = result.summary().set_index("detail")
    assert table.loc["low", "accuracy"] == 0.0
    assert table.loc["high", "accuracy"] == 1.0
    assert table.loc["auto", "accuracy"] == 1.0  # vizlab counts auto as high (tokens.AUTO_POLICY)
    assert table.loc["high", "prompt_tokens"] > 5 * table.loc["low", "prompt_tokens"]
    assert (table["ci_low"] <= table["accuracy"]).all() and (table["accuracy"] <= table["ci_high"]).all()


# --- keys, identity, cache --------------------------------------------------------------------


def test_the_cache_key_covers_what_decides_the_answer(client: Client, tmp_path: Path) -> None:
    def key(item: LabelledImage, **kw: Any) -> str:
        spec = RunSpec(**{"details": ("low",), "cache_dir": tmp_path, **kw})
        return plan_run(client, [item], spec).jobs[0].key or ""

    base = key(red_card())
    relabelled = LabelledImage("other-id", red_card().image, "count_shapes", red_card().question, "blue")
    assert key(relabelled) == base  # the id, task and expected answer do not decide the answer
    asked_again = LabelledImage("red", red_card().image, "dominant_colour", "What colour is it?", "red")
    changed = {key(asked_again), key(red_card(), details=("high",)), key(red_card(), max_tokens=301),
               key(red_card(), system="Be brief."), key(red_card(), temperature=0.5),
               key(LabelledImage("red", colour_card("blue", size=(256, 192)), "dominant_colour", red_card().question,
                                 "red"))}  # fmt: skip
    assert base not in changed and len(changed) == 6 and len(base) == 64


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


def test_an_empty_run_has_the_columns(client: Client, tmp_path: Path) -> None:
    empty = run_experiment(client, [], cache_dir=tmp_path, progress=False)
    assert list(empty.table.columns) == ROW_COLUMNS and len(empty.table) == 0 and empty.estimate_usd == 0


@pytest.mark.slow
def test_run_experiment_holds_only_the_images_being_sent(client: Client, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 23: the plan keeps each image's address and sizes; its bytes are encoded when the
    request is sent, and only the few most recent slots stay alive, however many items."""
    import gc
    import weakref

    from vizlab.experiments import plan

    alive: weakref.WeakSet[Any] = weakref.WeakSet()
    encode = plan.strategy_images

    def tracked(*a: Any, **k: Any) -> Any:
        out = encode(*a, **k)
        alive.update(out)
        return out

    monkeypatch.setattr(plan, "strategy_images", tracked)
    peaks: list[int] = []
    images = plan.Encoder.images

    def measured(self: Any, job: Any) -> Any:
        out = images(self, job)
        gc.collect()
        peaks.append(len(alive))
        return out

    monkeypatch.setattr(plan.Encoder, "images", measured)
    items = [LabelledImage(f"c{i}", Image.new("RGB", (64 + i, 48), (220 - i, 20 + i, 30)), "dominant_colour",
                           "What is the dominant colour? One word.", "red") for i in range(24)]
    result = run_experiment(client, items, details=("low", "high"), cache_dir=tmp_path / "cache", progress=False,
                            concurrency=2)  # fmt: skip
    assert len(result.table) == 48 and result.counts["sent"] == 48
    assert len(peaks) == 48 and max(peaks) <= 4 + 2  # max(4, 2 x concurrency) slots kept, 2 being sent; not 24
    assert (result.table["score"] == 1.0).all()  # a one-word colour question gets its colour (issue 23)
