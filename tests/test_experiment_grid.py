"""The experiment runner end to end on the built-in backend over real HTTP (issue 12's "Done when").

A counting ASGI wrapper around ``vizlab.local.create_app`` counts the requests the server sees,
so "only the missing images are sent" and "0 requests" are measured at the server, not trusted
from the runner's own counters.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from vizlab.client import connect
from vizlab.datasets import text_card
from vizlab.experiments import BudgetExceededError, load_items, map_prompt, run_experiment, stats

KEY = "grid-test-key"


class Counting:
    """ASGI wrapper: counts chat-completion requests and keeps their JSON bodies."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def recv() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        await self.app(scope, recv, send)
        with self._lock:
            try:
                self.bodies.append(json.loads(body))
            except ValueError:
                self.bodies.append({})

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.bodies)


class Served:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                                    ws="none"))  # fmt: skip
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "test server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def server() -> Iterator[tuple[Counting, Served]]:
    from vizlab.local import BackendConfig, create_app

    counting = Counting(create_app(BackendConfig(api_key=KEY, deployments=("gpt-4o", "gpt-4o-mini"), latency_s=0.2)))
    with Served(counting) as served:
        yield counting, served


def _client(url: str) -> Any:
    return connect(backend="azure", endpoint=url, api_key=KEY, deployment="gpt-4o", verbose=False)


def _folder(root: Path, n: int) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    codes = []
    for i in range(n):
        code = f"K{i}RF"
        text_card(code, font_px=48, size=(320, 200), origin=(20, 40)).save(root / f"card{i:02d}.png")
        codes.append(code)
    return codes


CHILD = """
import sys
from vizlab.client import connect
from vizlab.experiments import map_prompt
url, key, folder, cache = sys.argv[1:5]
client = connect(backend="azure", endpoint=url, api_key=key, deployment="gpt-4o", verbose=False)
map_prompt(client, folder, "What text is written here?", cache_dir=cache, concurrency=1, progress=False)
"""


@pytest.mark.slow
def test_map_prompt_over_a_folder_kill_resume_rerun_and_budget(tmp_path: Path, server: tuple[Counting, Served]) -> None:
    counting, served = server
    folder, cache = tmp_path / "cards", tmp_path / "cache"
    _folder(folder, 10)
    child = subprocess.Popen([sys.executable, "-c", CHILD, served.url, KEY, str(folder), str(cache)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    log = cache / "results.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if log.exists() and log.read_bytes().count(b"\n") >= 5:
                break
            time.sleep(0.01)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    time.sleep(0.5)  # a request in flight when the child died finishes on the server
    done_before = log.read_bytes().count(b"\n")
    assert 0 < done_before < 10
    seen_before = counting.count

    with _client(served.url) as client:
        table = map_prompt(client, folder, "What text is written here?", cache_dir=cache, concurrency=2, progress=False)
        resumed = counting.count - seen_before
        # A request in flight at the kill was billed: shown as "unknown", sent again only when asked.
        unknown = int((table["cache"] == "unknown").sum())
        assert unknown <= 1 and resumed == 10 - done_before - unknown  # only the missing images were sent
        assert (table["cache"] == "hit").sum() == done_before
        if unknown:
            table = map_prompt(client, folder, "What text is written here?", cache_dir=cache, progress=False,
                               resend_unknown=True)  # fmt: skip
            assert counting.count - seen_before == 10 - done_before
        assert len(table) == 10 and table["error"].isna().all()
        assert table["answer"].str.contains("RF").all()
        assert table["request_id"].notna().all() and table["prompt_tokens"].gt(0).all()

        before = counting.count
        again = map_prompt(client, folder, "What text is written here?", cache_dir=cache, progress=False)
        assert counting.count == before and (again["cache"] == "hit").all()

        # A schema goes out as the standard response_format and is a different cache entry.
        schema = {"type": "json_schema", "json_schema": {"name": "card", "strict": True, "schema": {
            "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
            "additionalProperties": False}}}  # fmt: skip
        dry = map_prompt(client, folder, response_format=schema, cache_dir=cache, dry_run=True, progress=False)
        assert counting.count == before and (dry["cache"] == "dry-run").all()
        estimate = dry.attrs["estimate_usd"]
        assert estimate > 0
        with pytest.raises(BudgetExceededError) as refused:
            map_prompt(client, folder, response_format=schema, cache_dir=cache, max_usd=estimate / 2, progress=False)
        assert counting.count == before and refused.value.estimate_usd == pytest.approx(estimate)
        structured = map_prompt(client, folder, response_format=schema, cache_dir=cache, max_usd=estimate * 2,
                                progress=False)  # fmt: skip
        assert counting.count == before + 10
        assert all(body.get("response_format") == schema for body in counting.bodies[-10:])
        assert structured["error"].isna().all()
        fields = [c for c in structured.columns if c.startswith("answer.")]
        assert fields == ["answer.text"]  # the analyst fills the schema from the text it read
        assert structured["refusal"].isna().all()
        read = [t.replace(" ", "") for t in structured["answer.text"]]
        assert sum(r == f"K{i}RF" for i, r in enumerate(read)) >= 9, read  # OCR may read one 0 as O


def _labelled_folder(root: Path, n: int) -> Path:
    codes = _folder(root, n)
    small = []
    for i in range(4):  # small text: high reads it, low cannot
        img = text_card(f"X{i}7A", font_px=12, size=(1600, 1200))
        img.save(root / f"small{i}.png")
        small.append((f"small{i}.png", f"X{i}7A"))
    rows = [{"image": f"card{i:02d}.png", "question": "What text is written here?", "expected": code,
             "category": "big text", "scorer": "contains"} for i, code in enumerate(codes)]  # fmt: skip
    rows += [{"image": name, "question": "What text is written here?", "expected": code, "category": "small text",
              "scorer": "contains"} for name, code in small]  # fmt: skip
    rows.append({"image": "missing.png", "question": "What text?", "expected": "X", "category": "big text",
                 "scorer": "contains"})  # fmt: skip
    frame = pd.DataFrame(rows)
    labels = root / "labels.csv"
    frame.to_csv(labels, index=False)
    with open(labels, "a", encoding="utf-8") as fh:
        fh.write("card00.png,What?,K0RF,big text,contains,extra,fields\n")  # a bad row: too many fields
    return labels


@pytest.mark.slow
def test_cli_two_deployments_two_details_problems_intervals_paired_and_cache(tmp_path: Path,
                                                                           server: tuple[Counting, Served],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    counting, served = server
    folder = tmp_path / "imgs"
    labels = _labelled_folder(folder, 8)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", served.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.delenv("VIZLAB_BACKEND", raising=False)
    out = tmp_path / "results"
    args = [sys.executable, "-m", "vizlab.experiments", "run", "--images", str(folder), "--labels", str(labels),
            "--deployment", "gpt-4o", "--deployment", "gpt-4o-mini", "--detail", "low,high", "--repeats", "1",
            "--out", str(out), "--quiet"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    first = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "missing.png" in first.stderr and "row 13" in first.stderr  # the missing file, by row and file
    assert "row 14" in first.stderr and "fields" in first.stderr        # the bad row, by row
    assert "local analyst (OCR), not a vision model" in first.stdout
    sent = counting.count
    assert sent == 12 * 4  # 12 good rows x 2 deployments x 2 details

    assert (out / "items.csv").exists() and (out / "frontier.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["made_by"] == "local analyst (OCR), not a vision model"
    assert len(summary["problems"]) == 2
    assert summary["manifest"]["items_sha256"] and summary["manifest"]["registry_revision"]
    for arm in summary["arms"]:
        assert arm["ci_low"] <= arm["accuracy"] <= arm["ci_high"], arm
    table = pd.read_csv(out / "items.csv")
    assert set(table["arm"]) == {"gpt-4o/low", "gpt-4o/high", "gpt-4o-mini/low", "gpt-4o-mini/high"}
    for comparison in summary["comparisons"]:
        assert comparison["diff_low"] <= comparison["difference"] <= comparison["diff_high"]
        assert comparison["paired_images"] == 12 and comparison["unpaired_images"] == 0
    low_high = next(c for c in summary["comparisons"] if c["a"] == "gpt-4o/low" and c["b"] == "gpt-4o/high")
    # McNemar's exact test on the paired items, as statsmodels computes it from the table itself.
    from statsmodels.stats.contingency_tables import mcnemar

    low = table[table["arm"] == "gpt-4o/low"].set_index("item_id")["score"]
    high = table[table["arm"] == "gpt-4o/high"].set_index("item_id")["score"]
    both = [(int(low[i] >= 0.5), int(high[i] >= 0.5)) for i in low.index]
    cells = [[sum(1 for a, b in both if a and b), sum(1 for a, b in both if a and not b)],
             [sum(1 for a, b in both if not a and b), sum(1 for a, b in both if not a and not b)]]  # fmt: skip
    assert low_high["test"] == "McNemar exact"
    assert low_high["p_value"] == pytest.approx(mcnemar(cells, exact=True).pvalue)
    assert cells[1][0] >= 3  # the small-text cards: low fails, high reads them
    assert summary["multiple_comparisons"].startswith("4 comparisons")

    again = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert counting.count == sent  # served from the cache: 0 requests
    assert "sent 0, cached 48" in again.stdout

    dry = subprocess.run([*args, "--dry-run", "--detail", "auto"], capture_output=True, text=True, timeout=240, env=env)
    assert dry.returncode == 0 and "dry run: 24 requests to send" in dry.stdout and "$" in dry.stdout
    assert counting.count == sent


@pytest.mark.slow
def test_paired_comparison_uses_only_images_scored_in_both_arms(tmp_path: Path) -> None:
    from vizlab.experiments.report import compare_arms

    rows = []
    for i in range(12):
        for arm, detail in (("d/low", "low"), ("d/high", "high")):
            failed = arm == "d/high" and i < 2  # two images have no result in high
            rows.append({"item_id": f"i{i}", "arm": arm, "deployment": "d", "detail": detail, "strategy": "whole",
                         "category": "c", "score": None if failed else float((i % 3 == 0) or detail == "high"),
                         "binary": True, "error": "boom" if failed else None, "cost": 1.0 if detail == "low" else 3.0})  # fmt: skip
    table = pd.DataFrame(rows)
    result = compare_arms(table)
    row = result.iloc[0]
    assert row["paired_images"] == 10 and row["unpaired_images"] == 2
    lows = [float(i % 3 == 0) for i in range(2, 12)]
    p, (a_only, b_only) = stats.mcnemar_exact(lows, [1.0] * 10)
    assert row["p_value"] == pytest.approx(p) and (row["a_only"], row["b_only"]) == (a_only, b_only)
    assert row["cost_ratio"] == pytest.approx(3.0)


def test_items_validation_reports_every_bad_row(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "labels.jsonl").write_text("\n".join([
        json.dumps({"image": "ok.png", "question": "q", "expected": "a"}),
        json.dumps({"image": "broken.png", "question": "q", "expected": "a"}),
        json.dumps({"image": "ok.png", "question": "q", "expected": "a", "scorer": "fuzzy"}),
        json.dumps({"image": "ok.png", "expected": "a"}),
        "{not json",
    ]))  # fmt: skip
    items = load_items(tmp_path)
    assert [i.id for i in items] == ["ok"]
    messages = {p.row: p.message for p in items.problems}
    assert set(messages) == {2, 3, 4, 5}
    assert "not a readable image" in messages[2] and "fuzzy" in messages[3]
    assert "no question" in messages[4] and "not JSON" in messages[5]


@pytest.mark.slow
def test_a_changed_model_version_is_a_cache_miss_shown_as_stale(tmp_path: Path) -> None:
    """The same deployment, upgraded (another ``model`` reported): cached answers are re-sent, marked stale."""
    from vizlab.local import BackendConfig, create_app

    folder = tmp_path / "imgs"
    _folder(folder, 4)
    cache = tmp_path / "cache"

    def run(version: str, **kw: Any) -> tuple[Any, int]:
        # The deployment "gpt-4o" serving a dated version: the wire's `model` names it, as Azure's does.
        app = Counting(create_app(BackendConfig(api_key=KEY, deployments=(f"gpt-4o={version}",))))
        with Served(app) as served:  # a new port each time: the cache key is "loopback", not the port
            client = _client(served.url)
            try:
                result = map_prompt(client, str(folder), "What text is written here?", cache_dir=cache, concurrency=2,
                                    progress=False, **kw)  # fmt: skip
            finally:
                client.close()
        return result, app.count

    first, sent = run("gpt-4o-2024-08-06")
    assert sent == 4 and set(first["cache"]) == {"sent"}
    assert set(first["model"]) == {"gpt-4o-2024-08-06"}

    same, sent = run("gpt-4o-2024-08-06")
    assert sent == 0 and set(same["cache"]) == {"hit"}  # nothing changed: 0 requests

    same, sent = run("gpt-4o-2024-08-06", check_version=True)
    assert sent == 1 and set(same["cache"]) <= {"hit", "sent"}  # one probe, the version matches

    upgraded, sent = run("gpt-4o-2024-11-20", check_version=True)
    assert sent == 4  # the probe tells the new version; every old record is a miss
    assert set(upgraded["model"]) == {"gpt-4o-2024-11-20"}
    assert (upgraded["cache"] == "stale").sum() == 3  # the probe itself is a plain send
    assert upgraded.attrs["counts"]["stale"] == 3

    after, sent = run("gpt-4o-2024-11-20")
    assert sent == 0 and set(after["cache"]) == {"hit"}  # the new answers replaced the old


@pytest.mark.slow
def test_a_batch_rerun_is_served_from_the_cache_at_the_batch_price(tmp_path: Path) -> None:
    from vizlab.datasets import builtin_set

    items = builtin_set(per_category=2, categories=("receipts", "colours"))
    with connect(backend="local", verbose=False) as client:
        first = run_experiment(client, items, details=("low", "high"), batch=True, cache_dir=tmp_path, progress=False)
        again = run_experiment(client, items, details=("low", "high"), batch=True, cache_dir=tmp_path, progress=False)
        live = run_experiment(client, items, details=("low", "high"), cache_dir=tmp_path, progress=False)
    assert first.counts["sent"] == 8 and again.counts["sent"] == 0 and (again.table["cache"] == "hit").all()
    assert again.table["cost"].tolist() == pytest.approx(first.table["batch_cost"].tolist())
    assert again.table.drop(columns=["cache"]).equals(first.table.drop(columns=["cache"]))
    # The same records read by a live run are priced live: twice the batch price.
    assert live.table["cost"].tolist() == pytest.approx([2 * c for c in first.table["cost"]], rel=1e-6)
