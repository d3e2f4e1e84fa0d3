"""vizlab.batch and the built-in backend's Files/Batch API, end to end on loopback through the openai SDK."""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pandas as pd
import pytest
import requests
from PIL import Image

from vizlab import connect
from vizlab.batch import BatchInput, BatchNotFinishedError, BatchRequest, BatchRun, build_batch, parse_custom_id, submit
from vizlab.batch.files import NOT_PROCESSED
from vizlab.client import Client
from vizlab.datasets import LabelledImage, colour_card
from vizlab.experiments import run_experiment
from vizlab.local import LocalBackend

API_KEY = "batch-test-key-0123456789abcdef"
MAX_IMAGE_BYTES = 300_000  # the noise image below (~1 MB as PNG) is over it
COLOURS = ("red", "blue", "green", "yellow")
API_VERSION = "2024-10-21"


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    server = LocalBackend(
        api_key=API_KEY, deployments=("gpt-4o", "gpt-4o-mini"), max_image_bytes=MAX_IMAGE_BYTES, batch_delay_s=0.01
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _connect(url: str, deployment: str = "gpt-4o") -> Client:
    return connect(
        backend="azure", endpoint=url, api_key=API_KEY, deployment=deployment,
        verbose=False, max_retries=0, env_file=None, timeout=30,
    )  # fmt: skip


def _sdk(url: str) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=url, api_key=API_KEY, api_version=API_VERSION, max_retries=0)


def _cards(n: int, *, prefix: str = "card") -> list[LabelledImage]:
    """Small colour cards: fast for the analyst, each answer known."""
    return [
        LabelledImage(
            f"{prefix}-{i}",
            colour_card(COLOURS[i % len(COLOURS)], size=(64, 64), seed=i, distractors=0),
            "dominant_colour",
            "What is the dominant colour of this image? Answer with one colour name.",
            COLOURS[i % len(COLOURS)],
        )
        for i in range(n)
    ]


def _noise_png(side: int = 700) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def _wait_until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --- the whole flow ---------------------------------------------------------------------------


@pytest.mark.slow
def test_restart_midway_then_collect_every_row(backend: LocalBackend, tmp_path: Path) -> None:
    images = _cards(100)
    client = _connect(backend.url)
    batch_input = build_batch(images, tmp_path / "run", client=client, details=("low", "high"))
    assert batch_input.count == 200 and len(batch_input.files) == 1
    state_path = tmp_path / "state.json"
    run = submit(client, batch_input, state_path=state_path)
    # The ids are on disk as soon as the batch exists.
    saved = json.loads(state_path.read_text())
    assert saved["batches"][0]["batch_id"] == run.batch_ids[0]
    _wait_until(lambda: run.status().completed >= 20)
    midway = run.status()
    assert midway.status == "in_progress" and midway.completed < 200

    # "Kernel restart": drop the client and the run, reconnect, reattach from the state file.
    client.close()
    del client, run
    fresh = _connect(backend.url)
    reattached = BatchRun.attach(state_path, fresh)
    final = reattached.wait(progress=False, poll_s=0.05)
    assert final.status == "completed" and final.completed == 200 and final.failed == 0
    records = reattached.records()
    asked = batch_input.manifest()["rows"]
    assert len(records) == 200 and all(error is None for _, error in records.values())
    for custom_id, (record, _) in records.items():
        assert record is not None and asked[custom_id]["expected"] in record["answer"].lower(), record["answer"]
        assert record["prompt_tokens"] == asked[custom_id]["estimated_prompt_tokens"]
    assert {row["detail"] for row in asked.values()} == {"low", "high"} and len(reattached.batch_ids) == 1
    fresh.close()


@pytest.mark.slow
def test_bad_images_are_error_rows_and_the_rest_results(backend: LocalBackend, tmp_path: Path) -> None:
    client = _connect(backend.url)
    good = _cards(3)
    oversized = LabelledImage("noise", _noise_png(), "describe", "Describe this image.", "noise")
    broken = BatchRequest(
        image_id="broken-base64", question="What colour is this?", detail="low", model="gpt-4o",
        image_url="data:image/png;base64,iVBORw0KGgo!!!not-base64", image_sha256="0" * 64, task="dominant_colour",
        expected="red",
    )  # fmt: skip
    from vizlab.batch import batch_requests

    reqs = [*batch_requests([*good, oversized], details=("low",), deployments=("gpt-4o",)), broken]
    run = submit(client, build_batch(reqs, tmp_path / "bad", client=client), state_path=tmp_path / "s.json")
    status = run.wait(progress=False, poll_s=0.05)
    assert (status.completed, status.failed) == (3, 2)
    rows = run.records()
    by_image = {row["image_id"]: rows[custom_id] for custom_id, row in BatchInput.load(run.manifest_path).manifest()["rows"].items()}
    assert len(by_image) == 5
    assert all(by_image[f"card-{i}"][1] is None and by_image[f"card-{i}"][0] for i in range(3))
    assert by_image["noise"][0] is None and "HTTP 400 image_too_large" in str(by_image["noise"][1])
    assert by_image["broken-base64"][0] is None and "HTTP 400 invalid_image_url" in str(by_image["broken-base64"][1])
    client.close()


@pytest.mark.slow
def test_split_by_lines_and_deployments_then_collect(backend: LocalBackend, tmp_path: Path) -> None:
    client = _connect(backend.url)
    batch_input = build_batch(
        _cards(10), tmp_path / "split", client=client, details=("low", "high"),
        deployments=("gpt-4o", "gpt-4o-mini"), max_requests=7,
    )  # fmt: skip
    # 20 requests per deployment, 7 per file: 3 files each; never two deployments in one file.
    assert [f["requests"] for f in batch_input.files] == [7, 7, 6, 7, 7, 6]
    for entry in batch_input.files:
        lines = [json.loads(x) for x in Path(entry["path"]).read_text().splitlines()]
        assert {line["body"]["model"] for line in lines} == {entry["model"]}
        assert {line["url"] for line in lines} == {"/chat/completions"}
    run = submit(client, batch_input, state_path=tmp_path / "s.json")
    assert len(run.batch_ids) == 6
    run.wait(progress=False, poll_s=0.05)
    records = run.records()
    assert len(records) == 40 and all(error is None for _, error in records.values())
    models = [parse_custom_id(custom_id)["model"] for custom_id in records]
    assert {m: models.count(m) for m in set(models)} == {"gpt-4o": 20, "gpt-4o-mini": 20}
    assert {record["model"].startswith(parse_custom_id(c)["model"]) for c, (record, _) in records.items()} == {True}
    client.close()


def test_split_by_bytes(tmp_path: Path) -> None:
    images = _cards(9)
    one = build_batch(images[:1], tmp_path / "one", details=("low",))
    line_bytes = one.files[0]["bytes"]
    limit = int(line_bytes * 2.5)  # two lines fit, three do not
    split = build_batch(images, tmp_path / "bytes", details=("low",), max_bytes=limit)
    assert [f["requests"] for f in split.files] == [2, 2, 2, 2, 1]
    assert all(f["bytes"] <= limit and Path(f["path"]).stat().st_size == f["bytes"] for f in split.files)
    with pytest.raises(ValueError, match="max_bytes"):
        build_batch(images[:1], tmp_path / "tiny", details=("low",), max_bytes=line_bytes - 1)


def test_custom_id_round_trip_and_manifest(tmp_path: Path) -> None:
    images = _cards(2)
    twin = LabelledImage("twin", images[0].image, images[0].task, images[0].question, images[0].answer)
    batch_input = build_batch([*images, twin], tmp_path / "ids", details=("low", "auto"), deployments=("dep.one",))
    manifest = batch_input.manifest()
    ids = list(manifest["rows"])
    assert len(ids) == len(set(ids)) == 6
    for custom_id, row in manifest["rows"].items():
        parts = parse_custom_id(custom_id)
        assert parts["detail"] == row["detail"] and parts["model"] == row["model"] == "dep.one"
        assert row["image_sha256"].startswith(parts["image_sha16"]) and parts["question_index"] == 0
        assert {"image_id", "task", "question", "expected", "width", "height"} <= set(row)
    # The same image asked the same thing twice: a numbered duplicate, not a collision.
    assert sum(parse_custom_id(i)["duplicate"] for i in ids) == 2
    lines = [json.loads(x) for x in Path(batch_input.files[0]["path"]).read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ids
    with pytest.raises(ValueError, match="not a vizlab batch id"):
        parse_custom_id("task-0")


@pytest.mark.slow
def test_cancel_leaves_not_processed_rows(backend: LocalBackend, tmp_path: Path) -> None:
    client = _connect(backend.url)
    run = submit(client, build_batch(_cards(60), tmp_path / "c", client=client, details=("low", "high")),
                 state_path=tmp_path / "s.json")  # fmt: skip
    _wait_until(lambda: run.status().completed >= 5)
    with pytest.raises(BatchNotFinishedError) as caught:
        run.records()
    assert set(caught.value.statuses.values()) <= {"in_progress", "cancelling"}
    run.cancel()
    final = run.wait(progress=False, poll_s=0.05)
    assert final.status == "cancelled"
    records = run.records()
    done = [c for c, (record, _) in records.items() if record is not None]
    assert len(records) == 120 and len(done) == final.completed and 5 <= len(done) < 120
    assert {error for c, (_, error) in records.items() if c not in done} == {NOT_PROCESSED}
    client.close()


@pytest.mark.slow
def test_a_batch_run_costs_half_the_live_run(backend: LocalBackend, tmp_path: Path) -> None:
    client = _connect(backend.url)
    images = _cards(4)
    batched = run_experiment(client, images, details=("low", "high"), batch=True, cache_dir=tmp_path / "b",
                             progress=False)  # fmt: skip
    live = run_experiment(client, images, details=("low", "high"), cache_dir=tmp_path / "live", progress=False)
    b, l = batched.table, live.table
    assert b["error"].isna().all() and batched.counts["sent"] == 8 and batched.manifest["batch"] is True
    assert (b["cost"] == b["batch_cost"]).all() and b["latency_s"].isna().all()  # no per-request latency
    assert b["prompt_tokens"].tolist() == l["prompt_tokens"].tolist()
    assert math.isclose(b["cost"].sum() * 2, l["cost"].sum())
    assert (l["estimated_cost"] >= l["cost"]).all()  # max_tokens bounds the output from above
    assert (b["score"] == 1.0).all()
    s = batched.summary()
    assert (s["ci_low"] <= s["accuracy"]).all() and (s["made_by"] == "local analyst (OCR), not a vision model").all()
    client.close()


@pytest.mark.slow
def test_a_batch_run_attaches_to_its_submitted_batch(backend: LocalBackend, tmp_path: Path) -> None:
    client = _connect(backend.url)
    first = run_experiment(client, _cards(3), details=("low",), batch=True, cache_dir=tmp_path / "one",
                           batch_dir=tmp_path / "batches", progress=False)  # fmt: skip
    states = list((tmp_path / "batches").rglob("batch-state.json"))
    assert len(states) == 1
    ids = json.loads(states[0].read_text())["batches"]
    # A rerun that lost its cache (a kill after the batch was submitted): the same requests find the
    # batch already submitted in batch_dir, and nothing is submitted or paid twice.
    again = run_experiment(_connect(backend.url), _cards(3), details=("low",), batch=True, cache_dir=tmp_path / "two",
                           batch_dir=tmp_path / "batches", progress=False)  # fmt: skip
    assert json.loads(states[0].read_text())["batches"] == ids
    keep = ["item_id", "answer", "prompt_tokens", "cost", "error"]
    pd.testing.assert_frame_equal(first.table[keep], again.table[keep])
    for path in tmp_path.rglob("*.json*"):  # neither the state, the manifest nor the cache holds the key
        assert API_KEY not in path.read_text()
    client.close()


@pytest.mark.slow
def test_openai_v1_route_uses_the_v1_endpoint(backend: LocalBackend, tmp_path: Path) -> None:
    client = connect(backend="openai", base_url=backend.url + "/v1", api_key=API_KEY, model="gpt-4o",
                     verbose=False, env_file=None, max_retries=0)  # fmt: skip
    result = run_experiment(client, _cards(2), details=("low",), batch=True, cache_dir=tmp_path / "c",
                            batch_dir=tmp_path / "b", progress=False)  # fmt: skip
    assert result.table["error"].isna().all() and len(result.table) == 2
    line = json.loads(next((tmp_path / "b").rglob("batch-*.jsonl")).read_text().splitlines()[0])
    assert line["url"] == "/v1/chat/completions"
    client.close()


# --- the local backend's Files and Batch API ----------------------------------------------------


def _line(custom_id: str, *, url: str = "/chat/completions", model: str = "gpt-4o") -> str:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def _run_raw(sdk: openai.AzureOpenAI, text: str) -> openai.types.Batch:
    uploaded = sdk.files.create(file=("in.jsonl", text.encode()), purpose="batch")
    batch = sdk.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h")  # type: ignore[arg-type]
    _wait_until(lambda: sdk.batches.retrieve(batch.id).status in ("completed", "failed", "cancelled"))
    return sdk.batches.retrieve(batch.id)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("not json\n" + _line("a"), "invalid_json_line", 1),
        (_line("a") + "\n" + _line("a"), "duplicate_custom_id", 2),
        (_line("a") + "\n" + _line("b", url="/embeddings"), "invalid_value", 2),
        (json.dumps({"method": "POST", "url": "/chat/completions", "body": {}}), "missing_required_parameter", 1),
        (_line("a") + "\n" + _line("b", model="gpt-4o-mini"), "mismatched_model", 2),
        ("\n\n", "empty_file", None),
    ],
)
def test_input_validation_fails_the_batch(backend: LocalBackend, text: str, code: str, line: int | None) -> None:
    batch = _run_raw(_sdk(backend.url), text)
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.errors is not None and batch.errors.data
    assert (batch.errors.data[0].code, batch.errors.data[0].line) == (code, line)


@pytest.mark.slow
def test_batch_object_and_files_follow_the_service(backend: LocalBackend) -> None:
    sdk = _sdk(backend.url)
    batch = _run_raw(sdk, _line("x") + "\n" + _line("y", model="gpt-4o") + "\n")
    assert batch.object == "batch" and batch.endpoint == "/chat/completions" and batch.completion_window == "24h"
    assert batch.status == "completed" and batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (2, 2, 0)
    assert batch.in_progress_at and batch.completed_at and batch.expires_at == batch.created_at + 24 * 3600
    assert batch.error_file_id is None and batch.output_file_id
    lines = [json.loads(x) for x in sdk.files.content(batch.output_file_id).text.splitlines()]
    assert {x["custom_id"] for x in lines} == {"x", "y"}
    first = lines[0]
    assert set(first) == {"id", "custom_id", "response", "error"} and first["error"] is None
    assert first["response"]["status_code"] == 200 and first["response"]["body"]["object"] == "chat.completion"
    assert sdk.files.retrieve(batch.output_file_id).purpose == "batch_output"
    assert batch.id in [b.id for b in sdk.batches.list()]
    # Cancelling a finished batch is refused; deleting a file works once.
    with pytest.raises(openai.ConflictError):
        sdk.batches.cancel(batch.id)
    assert sdk.files.delete(batch.input_file_id).deleted
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(batch.input_file_id)


@pytest.mark.slow
def test_bad_requests_get_4xx_never_500(backend: LocalBackend) -> None:
    base = backend.url + "/openai"
    q = {"api-version": API_VERSION}
    key = {"api-key": API_KEY}
    good_file = _sdk(backend.url).files.create(file=("f.jsonl", _line("a").encode()), purpose="batch").id
    cases = [
        requests.post(f"{base}/files", params=q, headers=key, data=b"garbage"),
        requests.post(f"{base}/files", params=q, headers={**key, "content-type": "multipart/form-data"}, data=b"x"),
        requests.post(f"{base}/files", params=q, headers=key, files={"file": ("a.jsonl", b"{}")}),  # no purpose
        requests.post(f"{base}/files", params=q, headers=key, files={"file": ("a", b"{}")}, data={"purpose": "fine-tune"}),
        requests.post(f"{base}/batches", params=q, headers=key, data=b"{not json"),
        requests.post(f"{base}/batches", params=q, headers=key, json=[1, 2]),
        requests.post(f"{base}/batches", params=q, headers=key, json={"input_file_id": good_file}),
        requests.post(f"{base}/batches", params=q, headers=key,
                      json={"input_file_id": good_file, "endpoint": "/embeddings", "completion_window": "24h"}),
        requests.post(f"{base}/batches", params=q, headers=key,
                      json={"input_file_id": good_file, "endpoint": "/chat/completions", "completion_window": "48h"}),
        requests.post(f"{base}/batches", params=q, headers=key,
                      json={"input_file_id": 7, "endpoint": "/chat/completions", "completion_window": "24h"}),
        requests.post(f"{base}/batches", params=q, headers=key,
                      json={"input_file_id": good_file, "endpoint": "/chat/completions", "completion_window": "24h",
                            "metadata": {"a": 1}}),
        requests.get(f"{base}/batches", params={**q, "limit": "0"}, headers=key),
        requests.get(f"{base}/batches/batch_nope", params=q, headers=key),
        requests.get(f"{base}/files/file-nope/content", params=q, headers=key),
        requests.post(f"{base}/batches/batch_nope/cancel", params=q, headers=key),
        requests.get(f"{base}/files", headers=key),  # no api-version
        requests.get(f"{base}/files", params={"api-version": "yesterday"}, headers=key),
        requests.get(f"{base}/files", params=q),  # no key
        requests.get(f"{base}/files", params=q, headers={"api-key": "wrong"}),
    ]  # fmt: skip
    statuses = [r.status_code for r in cases]
    assert statuses == [400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 404, 404, 404, 404, 404, 401, 401]
    for r in cases:
        assert set(r.json()["error"]) >= {"code", "message"}


@pytest.mark.slow
def test_batch_lines_bypass_the_live_rate_limit(tmp_path: Path) -> None:
    # Azure's global batch has its own (enqueued-token) quota: the live RPM must not 429 batch lines.
    with LocalBackend(api_key=API_KEY, deployments=("gpt-4o",), rpm=1) as server:
        client = _connect(server.url)
        df = run_experiment(client, _cards(3), details=("low", "high"), batch=True, cache_dir=tmp_path,
                            progress=False).table  # fmt: skip
        assert df["error"].isna().all() and len(df) == 6
        client.close()


@pytest.mark.slow
def test_progress_bar_reports_counts(backend: LocalBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = _connect(backend.url)
    run = submit(client, build_batch(_cards(4), tmp_path / "p", client=client, details=("low",)),
                 state_path=tmp_path / "s.json")  # fmt: skip
    run.wait(progress=True, poll_s=0.05)
    err = capsys.readouterr().err
    assert "4/4" in err and "completed" in err
    assert str(run.status()) == "completed: 4/4 requests (0 failed)"
    client.close()


def test_upload_of_exact_bytes(backend: LocalBackend) -> None:
    # Binary-safe multipart: CRLFs, NULs and non-ASCII survive the upload byte for byte.
    sdk = _sdk(backend.url)
    payload = b"line one\r\n\x00\xff\xfe caf\xc3\xa9\r\n\r\n--not-a-boundary\r\n"
    uploaded = sdk.files.create(file=("raw.jsonl", io.BytesIO(payload)), purpose="batch")
    assert uploaded.bytes == len(payload)
    assert sdk.files.content(uploaded.id).read() == payload
