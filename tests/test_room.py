"""vizlab.room in front of the built-in backend, through the official openai SDK, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import ipywidgets
import openai
import pytest
import requests
from PIL import Image

from vizlab.errors import ConfigurationError
from vizlab.local import LocalBackend
from vizlab.room import Room, RoomPanel, RoomPanelState, RoomSettings
from vizlab.room.__main__ import main as room_main
from vizlab.room.pacing import FairPacer, PaceTimeout

UPSTREAM_KEY = "room-test-UPSTREAM-KEY-7f3a9c1e5b"
API_VERSION = "2024-10-21"
ROOT = Path(__file__).resolve().parents[1]


def image_url(width: int = 800, height: int = 600) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 200)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def image_message(url: str, detail: str = "high", n: int = 1) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "What colour is this?"}]
    parts += [{"type": "image_url", "image_url": {"url": url, "detail": detail}} for _ in range(n)]
    return [{"role": "user", "content": parts}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=UPSTREAM_KEY, deployments=("vision",)) as backend:
        yield backend


class Harness:
    """Rooms made for one test, and every byte they answered (searched for the key)."""

    def __init__(self, upstream: LocalBackend, tmp: Path) -> None:
        self.upstream, self.tmp, self.rooms, self.seen = upstream, tmp, [], []
        self.clients: list[openai.OpenAI] = []

    def room(self, *, key: str = UPSTREAM_KEY, offset_h: float = 0.0, **kw: Any) -> Room:
        now = datetime.now(timezone.utc) + timedelta(hours=offset_h)
        settings = dict(upstream_endpoint=self.upstream.url, upstream_deployment="vision",
                        codes=self.tmp / f"room{len(self.rooms)}" / "codes.csv", starts=now - timedelta(hours=1),
                        ends=now + timedelta(hours=1), attendees=3, budget_usd=1.0, max_output=300)
        settings.update(kw)
        room = Room(RoomSettings(**settings), upstream_key=key, log=io.StringIO()).start()
        self.rooms.append(room)
        return room

    def post(self, room: Room, path: str, body: Any, key: str | None, **kw: Any) -> requests.Response:
        headers = {"api-key": key} if key else {}
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        reply = requests.post(room.url + path, data=data, headers={**headers, "content-type": "application/json",
                              **kw.pop("headers", {})}, timeout=60, **kw)  # fmt: skip
        self.seen.append(str(dict(reply.headers)) + reply.text)
        return reply

    def azure(self, room: Room, code: str, version: str = API_VERSION) -> openai.AzureOpenAI:
        client = openai.AzureOpenAI(azure_endpoint=room.url, api_key=code, api_version=version, max_retries=0)
        self.clients.append(client)
        return client

    def v1(self, room: Room, code: str) -> openai.OpenAI:
        client = openai.OpenAI(base_url=room.url + "/openai/v1/", api_key=code, max_retries=0)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for room in self.rooms:
            room.stop()


@pytest.fixture
def harness(upstream: LocalBackend, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(upstream, tmp_path)
    yield h
    h.close()


def codes_of(room: Room) -> list[str]:
    return sorted(room.codes(), key=lambda c: room.codes()[c].attendee)


def usage_of(room: Room) -> dict[str, Any]:
    reply = requests.get(room.url + "/room/usage", headers={"api-key": room.admin_key}, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def error_of(reply: requests.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


# --- attendees through the SDK ----------------------------------------------------------------


@pytest.mark.slow
def test_three_codes_work_through_both_sdk_clients_with_an_image(harness: Harness) -> None:
    room = harness.room()
    codes = codes_of(room)
    assert len(codes) == 3 and len(set(codes)) == 3
    url = image_url()
    for code in codes:
        reply = harness.azure(room, code).chat.completions.create(model="vision", messages=image_message(url), max_tokens=60)
        assert "blue" in reply.choices[0].message.content.lower()
        assert reply.usage is not None and reply.usage.prompt_tokens > 700  # 765 image tokens at high
    v1 = harness.v1(room, codes[0]).chat.completions.create(model="vision", messages=image_message(url, "low"))
    assert v1.usage is not None and v1.usage.prompt_tokens < 120
    # Bearer works as api-key does; the CSV and the printable page carry the same codes.
    bearer = requests.post(room.url + "/openai/v1/chat/completions", timeout=30,
                           json={"model": "vision", "messages": [{"role": "user", "content": "hi"}]},
                           headers={"Authorization": f"Bearer {codes[1]}"})  # fmt: skip
    assert bearer.status_code == 200, bearer.text
    with room.settings.codes.open() as f:
        assert sorted(r["code"] for r in csv.DictReader(f)) == sorted(codes)
    assert all(c in room.codes_page.read_text() for c in codes) and room.url in room.codes_page.read_text()
    rows = {a["attendee"]: a for a in usage_of(room)["attendees"]}
    assert [rows[i]["requests"] for i in (1, 2, 3)] == [2, 2, 1]
    assert rows[1]["image_tokens"] == 765 + 85 and rows[3]["image_tokens"] == 765
    assert rows[1]["usd"] > rows[3]["usd"] > 0


@pytest.mark.slow
def test_streams_and_responses_pass_usage_and_settle(harness: Harness) -> None:
    room = harness.room()
    code = codes_of(room)[0]
    client = harness.v1(room, code)
    chunks = list(client.chat.completions.create(model="vision", messages=image_message(image_url(), "low"),
                                                 stream=True))  # fmt: skip
    assert all(c.usage is None for c in chunks), "the usage chunk the room asked for is not handed to an attendee who did not"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "blue" in text.lower()
    asked = list(client.chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}],
                                                stream=True, stream_options={"include_usage": True}))  # fmt: skip
    assert asked[-1].usage is not None and asked[-1].usage.prompt_tokens > 0
    response = client.responses.create(model="vision", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "colour?"}, {"type": "input_image", "image_url": image_url(), "detail": "low"}]}])
    assert response.usage is not None and response.usage.input_tokens > 85
    with client.responses.stream(model="vision", input="hello") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.usage is not None
    azure = harness.azure(room, code, "2025-04-01-preview").responses.create(
        model="vision", input="hello again")
    assert azure.output_text
    rows = usage_of(room)["attendees"][0]
    assert rows["requests"] == 5 and rows["output_tokens"] > 0
    db = sqlite3.connect(room.settings.store_path)
    sources = [r[0] for r in db.execute("SELECT source FROM usage")]
    db.close()
    assert sources == ["reported"] * 5


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("offset_h, code, words", [(3.0, "EventNotStarted", "starts at"), (-3.0, "EventEnded", "ended at")])
def test_outside_the_window_is_a_403_naming_the_time(harness: Harness, offset_h: float, code: str, words: str) -> None:
    room = harness.room(offset_h=offset_h)
    with pytest.raises(openai.PermissionDeniedError) as info:
        harness.azure(room, codes_of(room)[0]).chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
    body = info.value.response.json()["error"]
    assert body["code"] == code and words in body["message"]
    moment = room.settings.starts if offset_h > 0 else room.settings.ends
    assert moment.isoformat(timespec="minutes") in body["message"]


@pytest.mark.slow
def test_budget_refuses_once_image_requests_pass_it(harness: Harness) -> None:
    room = harness.room(budget_usd=0.01, max_output=100)
    client = harness.azure(room, codes_of(room)[0])
    answered = 0
    with pytest.raises(openai.PermissionDeniedError) as info:
        for _ in range(20):
            client.chat.completions.create(model="vision", messages=image_message(image_url()))
            answered += 1
    # 765 image tokens at gpt-4o's $2.50/1M input plus up to 100 output tokens reserve about $0.0029.
    assert 2 <= answered <= 4
    error = info.value.response.json()["error"]
    assert error["code"] == "BudgetExceeded"
    assert re.search(r"could cost up to \$0\.00\d+ .*765 of them image tokens.*\$0\.00\d+ left of \$0\.01", error["message"])
    spent = usage_of(room)["attendees"][0]
    assert spent["usd"] <= 0.01 and spent["refusals"] == 1 and spent["requests"] == answered
    other = harness.azure(room, codes_of(room)[1]).chat.completions.create(model="vision", messages=image_message(image_url()))
    assert other.choices, "one attendee's budget is theirs alone"


def test_unknown_revoked_and_admin_changes_without_restart(harness: Harness) -> None:
    room = harness.room(budget_usd=0.001, max_output=100)
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}
    path = f"/openai/deployments/vision/chat/completions?api-version={API_VERSION}"
    for key in (None, "room-NOPE-NOPE-NOPE", room.admin_key):
        reply = harness.post(room, path, chat, key)
        assert reply.status_code == 401 and "code" in error_of(reply)["message"]
    admin = {"api-key": room.admin_key}
    assert requests.get(room.url + "/room/usage", headers={"api-key": codes_of(room)[0]}, timeout=10).status_code == 401
    first = codes_of(room)[0]
    assert harness.post(room, path, chat, first).status_code == 200
    revoked = requests.post(room.url + "/room/revoke", json={"attendee": 1}, headers=admin, timeout=10)
    assert revoked.json() == {"revoked": [1]}
    reply = harness.post(room, path, chat, first)
    assert reply.status_code == 403 and error_of(reply)["code"] == "CodeRevoked" and "revoked" in error_of(reply)["message"]
    added = requests.post(room.url + "/room/attendees", json={"count": 2}, headers=admin, timeout=10).json()["added"]
    assert [a["attendee"] for a in added] == [4, 5]
    big = {**chat, "messages": image_message(image_url())}
    assert harness.post(room, path, big, added[0]["code"]).status_code == 403  # $0.001 is less than one image
    raised = requests.post(room.url + "/room/budget", json={"attendee": 4, "budget_usd": 0.05}, headers=admin, timeout=10)
    assert raised.status_code == 200
    assert harness.post(room, path, big, added[0]["code"]).status_code == 200
    assert added[1]["code"] in room.settings.codes.read_text()
    bad = requests.post(room.url + "/room/budget", json={"attendee": 99, "budget_usd": 1}, headers=admin, timeout=10)
    assert bad.status_code == 400 and "attendee" in error_of(bad)["message"]


@pytest.mark.slow
def test_caps_rewrite_detail_and_output_and_refuse_extra_images(harness: Harness) -> None:
    room = harness.room(max_detail="low", max_output=50, max_images=1)
    client = harness.azure(room, codes_of(room)[0])
    raw = client.chat.completions.with_raw_response.create(model="vision", messages=image_message(image_url()),
                                                            max_tokens=1000)  # fmt: skip
    capped = raw.headers["x-vizlab-room-capped"]
    assert "detail->low on 1 image(s)" in capped and "max_tokens 1000->50" in capped
    assert raw.parse().usage.prompt_tokens < 120  # billed at low (85 image tokens), not high (765)
    raw = client.chat.completions.with_raw_response.create(model="vision", messages=[{"role": "user", "content": "hi"}],
                                                            max_completion_tokens=900)  # fmt: skip
    assert "max_completion_tokens 900->50" in raw.headers["x-vizlab-room-capped"]
    assert raw.parse().usage.completion_tokens <= 50
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="vision", messages=image_message(image_url(), n=2))
    assert "2 images" in info.value.response.json()["error"]["message"]
    none = harness.v1(room, codes_of(room)[0]).responses.with_raw_response.create(model="vision", input="hi")
    assert "max_output_tokens set to 50" in none.headers["x-vizlab-room-capped"]
    # The room has one deployment: a notebook's default name (gpt-4o) reaches it, and the reply says so.
    other = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert "deployment gpt-4o->vision" in other.headers["x-vizlab-room-capped"]


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/openai/v1/chat/completions", b"{not json", 400),
        ("/openai/v1/chat/completions", [1, 2], 400),
        ("/openai/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, 400),
        ("/openai/v1/chat/completions", {"model": "vision"}, 400),
        ("/openai/v1/chat/completions", {"model": "vision", "max_tokens": "lots", "messages": [{"role": "user", "content": "x"}]}, 400),
        ("/openai/v1/chat/completions", {"model": "vision", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}, 400),
        ("/openai/v1/responses", {"model": "vision", "input": 7}, 400),
        ("/openai/deployments/vision/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, 400),
        ("/openai/deployments/other/chat/completions?api-version=2024-10-21", {"messages": []}, 400),
        ("/openai/v1/chat/completions", {"model": "x" * 300, "messages": [{"role": "user", "content": "x"}]}, 400),
        ("/openai/nowhere", {}, 404),
        ("/openai/deployments/d%C3%A9j%C3%A0/chat/completions?api-version=2024-10-21", {"messages": [
            {"role": "user", "content": "x"}], "max_tokens": 0}, 400),
    ],
)
def test_bad_requests_get_clean_azure_shaped_4xx(harness: Harness, path: str, body: Any, status: int) -> None:
    room = harness.rooms[0] if harness.rooms else harness.room()
    reply = harness.post(room, path, body, codes_of(room)[0])
    assert reply.status_code == status, reply.text
    assert error_of(reply)["message"]
    assert usage_of(room)["totals"]["requests"] == 0  # nothing forwarded, nothing billed


def test_huge_body_and_foreign_host_are_refused(harness: Harness) -> None:
    room = harness.room(max_body_bytes=100_000)
    reply = harness.post(room, "/openai/v1/chat/completions", b"x" * 200_000, codes_of(room)[0])
    assert reply.status_code == 413 and "limit" in error_of(reply)["message"]
    reply = harness.post(room, "/openai/v1/chat/completions", {}, codes_of(room)[0], headers={"Host": "evil.example:80"})
    assert reply.status_code == 421 and "--allowed-host" in error_of(reply)["message"]


@pytest.mark.slow
def test_upstream_429_is_handed_down_with_retry_after(tmp_path: Path) -> None:
    with LocalBackend(api_key=UPSTREAM_KEY, deployments=("vision",), rpm=1) as busy:
        harness = Harness(busy, tmp_path)
        room = harness.room(max_wait_s=0.5)
        try:
            client = harness.azure(room, codes_of(room)[0])
            client.chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
            with pytest.raises(openai.RateLimitError) as info:
                client.chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
            assert int(info.value.response.headers["retry-after"]) >= 1
            assert "retry after" in info.value.response.json()["error"]["message"]
            row = usage_of(room)["attendees"][0]
            assert row["requests"] == 1 and row["throttled"] == 1
            # No --rpm given: the room learned the deployment's from its x-ratelimit-limit-requests.
            assert usage_of(room)["quota"]["rpm"] == 1 and usage_of(room)["quota"]["learned_from_upstream"] == ["rpm"]
            assert usage_of(room)["quota"]["upstream_429_handed_down"] == 1
        finally:
            harness.close()


def test_upstream_refusing_the_room_key_is_a_502_that_does_not_blame_the_code(harness: Harness) -> None:
    room = harness.room(key="WRONG-upstream-key-123456")
    reply = harness.post(room, "/openai/v1/chat/completions", {"model": "vision", "messages": [{"role": "user", "content": "hi"}]},
                         codes_of(room)[0])  # fmt: skip
    assert reply.status_code == 502 and "facilitator" in error_of(reply)["message"]
    assert "WRONG-upstream-key-123456" not in reply.text


# --- pacing -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_fair_pacer_serves_a_quiet_attendee_before_a_burst() -> None:
    async def run() -> list[int]:
        pacer = FairPacer(tpm=None, rpm=2, max_wait_s=5.0, window_s=0.4)
        order: list[int] = []

        async def go(who: int, delay: float) -> None:
            await asyncio.sleep(delay)
            await pacer.acquire(who, 10)
            order.append(who)

        await asyncio.gather(*(go(1, 0.0) for _ in range(5)), go(2, 0.05))
        return order

    order = asyncio.run(run())
    assert order[:2] == [1, 1] and order[2] == 2, order  # 2 arrived after the burst but goes next


@pytest.mark.slow
def test_fair_pacer_bounds_the_wait() -> None:
    async def run() -> float:
        pacer = FairPacer(tpm=100, rpm=None, max_wait_s=0.3, window_s=60)
        await pacer.acquire(1, 90)
        with pytest.raises(PaceTimeout) as info:
            await pacer.acquire(2, 50)
        return info.value.retry_after_s

    assert 50 < asyncio.run(run()) <= 60


@pytest.mark.slow
def test_room_pacing_429_says_when(harness: Harness) -> None:
    room = harness.room(rpm=1, max_wait_s=0.3)
    client = harness.azure(room, codes_of(room)[0])
    client.chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
    assert "share of the deployment's quota" in info.value.response.json()["error"]["message"]
    assert usage_of(room)["quota"]["rpm"] == 1


# --- the facilitator's view ---------------------------------------------------------------------


@pytest.mark.slow
def test_usage_page_and_panel(harness: Harness) -> None:
    room = harness.room()
    harness.azure(room, codes_of(room)[1]).chat.completions.create(model="vision", messages=image_message(image_url(), "low"))
    page = requests.get(room.url + "/room/", timeout=10)
    assert page.status_code == 200 and "/room/usage" in page.text
    assert not re.search(r"<script[^>]+src=|https?://", page.text), "the page loads nothing from elsewhere"
    state = RoomPanelState(room.url, admin_key=room.admin_key)
    assert state.refresh() and [r["requests"] for r in state.rows()] == [0, 1, 0]
    assert state.spend_series()[1][-1] > 0 and "1 requests" in state.summary()
    assert room.admin_key not in repr(state)
    wrong = RoomPanelState(room.url, admin_key="nope")
    assert not wrong.refresh() and "admin key" in (wrong.error or "")
    panel = RoomPanel(room.url, admin_key=room.admin_key)
    assert isinstance(panel.widget, ipywidgets.VBox) and "<td>1</td>" in panel.table.value
    assert panel.plot.value[:4] == b"\x89PNG"
    harness.azure(room, codes_of(room)[2]).chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
    panel.refresh_button.click()
    assert [r["requests"] for r in panel.state.rows()] == [0, 1, 1]
    assert room.admin_key not in repr(panel)
    live = RoomPanel(room.url, admin_key=room.admin_key, live=True, every_s=0.2)
    try:
        harness.azure(room, codes_of(room)[0]).chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
        deadline = time.monotonic() + 10
        while [r["requests"] for r in live.state.rows()] != [1, 1, 1] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [r["requests"] for r in live.state.rows()] == [1, 1, 1]  # updated by itself, no click
    finally:
        live.stop()


# --- the key never leaves ----------------------------------------------------------------------


@pytest.mark.slow
def test_the_upstream_key_reaches_no_attendee_file_or_log(harness: Harness) -> None:
    room = harness.room(log_prompts=True, budget_usd=0.004, max_output=100)
    code = codes_of(room)[0]
    seen = harness.seen
    for path, body in [
        (f"/openai/deployments/vision/chat/completions?api-version={API_VERSION}", {"messages": image_message(image_url())}),
        ("/openai/v1/chat/completions", {"model": "vision", "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
        ("/openai/v1/responses", {"model": "vision", "input": "hi", "stream": True}),
        ("/openai/v1/responses", {"model": "vision", "input": f"repeat this: {UPSTREAM_KEY[:10]}"}),
        ("/openai/v1/chat/completions", {"model": "vision", "messages": image_message(image_url())}),  # over budget
        ("/openai/v1/chat/completions", b"{bad"),
    ]:
        harness.post(room, path, body, code)
    seen.append(requests.get(room.url + "/room/usage", headers={"api-key": room.admin_key}, timeout=10).text)
    seen.append(requests.get(room.url + "/room/", timeout=10).text)
    room.stop()
    files = [room.settings.codes, room.codes_page, room.settings.log_path, *room.settings.store_path.parent.glob("*.sqlite*")]
    assert room.settings.log_path.read_text().count("attendee 1") >= 4
    blobs = seen + [f.read_bytes().decode("latin-1") for f in files] + [room._console.getvalue()]  # type: ignore[attr-defined]
    assert len(seen) >= 8
    assert not [b[:200] for b in blobs if UPSTREAM_KEY in b]
    assert UPSTREAM_KEY not in repr(room) + repr(room.upstream)


# --- the command line, kill -9 and restart -------------------------------------------------------


def test_cli_refuses_a_lan_bind_without_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = room_main(["serve", "--upstream-endpoint", "local", "--upstream-deployment", "vision", "--attendees", "0",
                      "--budget-usd", "1", "--starts", "2026-01-01T09:00", "--ends", "2026-01-01T17:00",
                      "--codes", str(tmp_path / "c.csv"), "--host", "0.0.0.0"])  # fmt: skip
    assert code == 2 and "--attendees N" in capsys.readouterr().err
    with pytest.raises(ConfigurationError, match="--ends .* is not after --starts"):
        RoomSettings(upstream_endpoint="local", upstream_deployment="v", codes=tmp_path / "c.csv",
                     starts="2026-01-02T09:00", ends="2026-01-01T09:00")  # fmt: skip


def _start_cli(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], str, str]:
    now = datetime.now(timezone.utc)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AZURE_OPENAI_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vizlab.room", "serve", "--upstream-endpoint", "local", "--upstream-deployment", "vision",
         "--attendees", "3", "--budget-usd", "0.05", "--max-output", "100", "--port", str(port),
         "--starts", (now - timedelta(hours=1)).isoformat(), "--ends", (now + timedelta(hours=1)).isoformat(),
         "--codes", str(tmp_path / "codes.csv")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    admin = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("admin key:"):
            admin = line.split()[2]
            break
    assert admin, "the room printed no admin key"
    return proc, f"http://127.0.0.1:{port}", admin


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _local_key(child: int) -> str:
    """The key the room gave its built-in backend, read from the child's environment."""
    env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
    key = next(v.split(b"=", 1)[1].decode() for v in env if v.startswith(b"AZURE_OPENAI_API_KEY="))
    assert key not in Path(f"/proc/{child}/cmdline").read_bytes().decode("latin-1"), "the key is on a command line"
    return key


@pytest.mark.slow
def test_cli_room_keeps_settled_rows_across_kill_9(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, url, admin = _start_cli(tmp_path, port)
    seen: list[str] = []
    try:
        (child,) = _children(proc.pid)
        key = _local_key(child)
        with open(tmp_path / "codes.csv") as f:
            codes = [r["code"] for r in csv.DictReader(f)]
        with openai.AzureOpenAI(azure_endpoint=url, api_key=codes[0], api_version=API_VERSION, max_retries=0) as client:
            for _ in range(3):
                raw = client.chat.completions.with_raw_response.create(model="vision", messages=image_message(image_url(), "low"))
                seen.append(str(dict(raw.headers)) + raw.text)
        before = requests.get(url + "/room/usage", headers={"api-key": admin}, timeout=10).json()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists(), "the built-in backend outlived the killed room"
    proc, url, admin2 = _start_cli(tmp_path, port)
    try:
        assert admin2 == admin
        with open(tmp_path / "codes.csv") as f:
            assert [r["code"] for r in csv.DictReader(f)] == codes
        after = requests.get(url + "/room/usage", headers={"api-key": admin}, timeout=10).json()
        assert after["totals"]["requests"] == before["totals"]["requests"] == 3
        assert after["totals"]["usd"] == pytest.approx(before["totals"]["usd"])
        with openai.OpenAI(base_url=url + "/openai/v1/", api_key=codes[2], max_retries=0) as client:
            reply = client.chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        assert proc.stdout is not None
        proc.stdout.close()
    written = [p.read_bytes().decode("latin-1") for p in tmp_path.iterdir() if p.is_file()]
    assert len(written) >= 4  # codes.csv, codes.html, codes.sqlite (+ WAL), codes.log
    assert not [w[:100] for w in seen + written if key in w]


def test_vizlab_connect_works_against_a_room(harness: Harness, real_env_selection: None) -> None:
    import vizlab

    room = harness.room()
    client = vizlab.connect(endpoint=room.url, api_key=codes_of(room)[0], deployment="vision", verbose=False,
                            env_file=None)  # fmt: skip
    reply = client.chat([{"role": "user", "content": [{"type": "text", "text": "colour?"},
                                                      vizlab.image_part(image_url(), detail="low")]}])  # fmt: skip
    assert "blue" in reply.text.lower() and reply.usage is not None
    assert usage_of(room)["attendees"][0]["requests"] == 1
    assert codes_of(room)[0] not in repr(client)


@pytest.mark.slow
def test_upstream_429_within_the_bound_is_retried_not_handed_down(tmp_path: Path) -> None:
    # One request in flight upstream, each taking 0.3 s: a second one at once gets a 429 with a
    # retry-after of about a second, which the room waits out and retries.
    with LocalBackend(api_key=UPSTREAM_KEY, deployments=("vision",), max_concurrency=1, latency_s=0.3) as busy:
        harness = Harness(busy, tmp_path)
        room = harness.room(max_wait_s=10)
        try:
            async def both() -> list[int]:
                async with openai.AsyncOpenAI(base_url=room.url + "/openai/v1/", api_key=codes_of(room)[0],
                                              max_retries=0) as client:  # fmt: skip
                    calls = [client.chat.completions.with_raw_response.create(
                        model="vision", messages=[{"role": "user", "content": "hi"}]) for _ in range(2)]
                    return [r.status_code for r in await asyncio.gather(*calls)]

            assert asyncio.run(both()) == [200, 200]
            totals = usage_of(room)["totals"]
            assert totals["requests"] == 2 and totals["throttled"] == 0
            assert usage_of(room)["quota"]["upstream_429_retried"] >= 1
        finally:
            harness.close()


@pytest.mark.slow
@pytest.mark.browser
def test_room_page_in_a_real_browser(harness: Harness) -> None:
    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    room = harness.room()
    harness.azure(room, codes_of(room)[2]).chat.completions.create(model="vision", messages=image_message(image_url(), "low"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])  # fmt: skip
        try:
            page = browser.new_page()
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(room.url) else None)
            page.goto(room.url + "/room/")
            page.fill("#key", "wrong")
            page.click("button[type=submit]")
            page.wait_for_function("document.getElementById('status').textContent.includes('admin key')")
            page.fill("#key", room.admin_key)
            page.click("button[type=submit]")
            page.wait_for_selector("#usage tbody tr:nth-child(3)")
            cells = page.locator("#usage tbody tr:nth-child(3) td").all_text_contents()
            assert cells[0] == "3" and cells[2] == "1" and float(cells[6]) > 0
            assert "1 requests" in page.text_content("#totals")
            harness.azure(room, codes_of(room)[0]).chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
            page.wait_for_function("document.querySelector('#usage tbody tr td:nth-child(3)').textContent === '1'",
                                   timeout=10_000)  # the page polls every 3 s  # fmt: skip
            assert outside == []
        finally:
            browser.close()


@pytest.mark.slow
def test_every_request_ends_its_reservation_once(harness: Harness) -> None:
    # A stream the attendee drops, refusals at each step and answered requests: afterwards no
    # reservation is left open, and each forwarded request has exactly one usage row.
    room = harness.room(budget_usd=0.02, max_output=100, max_images=1)
    code = codes_of(room)[0]
    import httpx

    with httpx.Client(timeout=30) as client:
        with client.stream("POST", room.url + "/openai/v1/chat/completions", headers={"api-key": code},
                           json={"model": "vision", "stream": True, "messages": image_message(image_url())}) as r:
            assert r.status_code == 200
            next(r.iter_raw())  # one chunk, then hang up
    harness.post(room, "/openai/v1/chat/completions", {"model": "vision", "messages": image_message(image_url(), n=2)}, code)
    harness.post(room, "/openai/v1/responses", {"model": "vision", "instructions": "Be brief.", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call_output", "call_id": "c1", "output": "42"}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]}, code)
    for _ in range(8):
        harness.post(room, "/openai/v1/chat/completions", {"model": "vision", "messages": image_message(image_url())}, code)
    deadline = time.monotonic() + 5
    db = sqlite3.connect(room.settings.store_path)
    try:
        while db.execute("SELECT COUNT(*) FROM reservations WHERE state='open'").fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        states = dict(db.execute("SELECT state, COUNT(*) FROM reservations GROUP BY state").fetchall())
        rows = db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM usage").fetchone()
        spent = db.execute("SELECT SUM(usd) FROM usage").fetchone()[0]
    finally:
        db.close()
    assert "open" not in states and states.get("settled") == rows[0] == rows[1] >= 3
    assert spent <= 0.02 + 1e-9
    assert usage_of(room)["attendees"][0]["refusals"] >= 2  # two images; then over budget


@pytest.mark.slow
def test_tls_room_with_its_own_certificate(harness: Harness) -> None:
    import hashlib
    import ssl

    import httpx
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    room = harness.room(tls=True)
    cert, key = room.settings.cert_paths
    assert room.url.startswith("https://") and oct(key.stat().st_mode)[-3:] == "600"
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
    assert room.tls_fingerprint == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as http:
        client = openai.OpenAI(base_url=room.url + "/openai/v1/", api_key=codes_of(room)[0], max_retries=0, http_client=http)
        reply = client.chat.completions.create(model="vision", messages=image_message(image_url(), "low"))
    assert "blue" in (reply.choices[0].message.content or "").lower()
    with pytest.raises(openai.APIConnectionError):  # an attendee who does not trust the certificate
        harness.v1(room, codes_of(room)[0]).chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
    # A restart reuses the certificate: the fingerprint attendees checked stays the same.
    room.stop()
    again = harness.room(tls=True, codes=room.settings.codes)
    assert again.tls_fingerprint == room.tls_fingerprint


class TokenCredential:
    """An azure-identity-shaped credential (get_token -> AccessToken) standing in for Entra ID offline."""

    def __init__(self, token: str) -> None:
        self.token, self.scopes = token, []

    def get_token(self, *scopes: str) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.mark.slow
def test_without_a_key_the_room_uses_an_entra_token(tmp_path: Path) -> None:
    token = "entra-TOKEN-for-the-room-9b8c7d"
    credential = TokenCredential(token)
    now = datetime.now(timezone.utc)
    with LocalBackend(api_key=token, deployments=("vision",)) as upstream:  # accepts only that bearer token
        settings = RoomSettings(upstream_endpoint=upstream.url, upstream_deployment="vision", codes=tmp_path / "codes.csv",
                                starts=now - timedelta(hours=1), ends=now + timedelta(hours=1), attendees=1)  # fmt: skip
        room = Room(settings, log=io.StringIO(), credential=credential).start()
        try:
            with openai.OpenAI(base_url=room.url + "/openai/v1/", api_key=codes_of(room)[0], max_retries=0) as client:
                raw = client.chat.completions.with_raw_response.create(model="vision", max_tokens=50,
                                                                       messages=[{"role": "user", "content": "hi"}])  # fmt: skip
            assert raw.status_code == 200 and token not in raw.text + str(dict(raw.headers))
            assert credential.scopes == [("https://cognitiveservices.azure.com/.default",)]  # fetched once, reused
            assert room.upstream.kind == "entra" and token not in repr(room.upstream)
        finally:
            room.stop()
    assert token not in (tmp_path / "codes.log").read_text() + (tmp_path / "codes.csv").read_text()


def test_a_non_ascii_deployment_name_is_noted_not_a_crash(harness: Harness) -> None:
    room = harness.room()
    reply = harness.post(room, "/openai/deployments/d%C3%A9j%C3%A0/chat/completions?api-version=2024-10-21",
                         {"messages": [{"role": "user", "content": "hi"}]}, codes_of(room)[0])  # fmt: skip
    assert reply.status_code == 200 and "deployment d?j?->vision" in reply.headers["x-vizlab-room-capped"]


@pytest.mark.slow
def test_record_then_replay_answers_offline_with_the_recorded_replies(harness: Harness) -> None:
    recording = harness.tmp / "replies.jsonl"
    recorder = harness.room(record=recording)
    code = codes_of(recorder)[0]
    question = image_message(image_url(), "low")
    first = harness.azure(recorder, code).chat.completions.create(model="vision", messages=question)
    streamed = "".join(c.choices[0].delta.content or "" for c in harness.v1(recorder, code).chat.completions.create(
        model="vision", messages=[{"role": "user", "content": "hello"}], stream=True) if c.choices)  # fmt: skip
    answered = harness.v1(recorder, code).responses.create(model="vision", input="hi there")
    lines = recording.read_text().splitlines()
    assert len(lines) == 3
    text = recording.read_text()
    assert code not in text and UPSTREAM_KEY not in text and "base64," not in text
    # The replaying room's upstream refuses its key: whatever it answers came from the recording.
    player = harness.room(key="not-the-key-000000", replay=recording)
    code2 = codes_of(player)[0]
    raw = harness.azure(player, code2).chat.completions.with_raw_response.create(model="vision", messages=question)
    assert raw.parse().choices[0].message.content == first.choices[0].message.content
    assert raw.headers["x-vizlab-recorded"].endswith(first.model)
    again = "".join(c.choices[0].delta.content or "" for c in harness.v1(player, code2).chat.completions.create(
        model="vision", messages=[{"role": "user", "content": "hello"}], stream=True) if c.choices)  # fmt: skip
    assert again == streamed
    assert harness.v1(player, code2).responses.create(model="vision", input="hi there").output_text == answered.output_text
    with pytest.raises(openai.APIStatusError) as info:  # not recorded: forwarded (and refused upstream here)
        harness.v1(player, code2).chat.completions.create(model="vision", messages=[{"role": "user", "content": "new"}])
    assert info.value.status_code == 502
    row = usage_of(player)["attendees"][0]
    assert row["requests"] == 3 and row["usd"] == pytest.approx(usage_of(recorder)["attendees"][0]["usd"])


class _DropFirst:
    """A loopback TCP relay to ``upstream`` that reads the first connection's request and closes it
    unanswered, as a server does to a kept-alive connection it is dropping; later ones pass through."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted == 1:
                conn.recv(65536)
                conn.close()
                continue
            far = socket.create_connection(self.target)
            for a, b in ((conn, far), (far, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()


def test_an_upstream_closing_a_connection_unanswered_is_tried_once_more(upstream: LocalBackend, tmp_path: Path) -> None:
    relay = _DropFirst(upstream.url)
    harness = Harness(upstream, tmp_path)
    try:
        room = harness.room(upstream_endpoint=relay.url)
        reply = harness.post(room, "/openai/deployments/vision/chat/completions?api-version=" + API_VERSION,
                             {"messages": [{"role": "user", "content": "hi"}]}, codes_of(room)[0])  # fmt: skip
        assert reply.status_code == 200, reply.text
        assert relay.accepted == 2
    finally:
        harness.close()
        relay.close()
