"""Benchmark 8: vizlab.room under a room of attendees, and kill -9 mid-traffic.

Load: 30 simulated attendees (threads, the official openai SDK), 3 requests each, mixing Azure
chat with an image, v1 streams and Responses, through a room under ``--tpm`` in front of the
built-in backend. Every image has its own size (the analyst's reply states it), so an answer that
went to the wrong attendee is caught. The room's pacing window is shortened to 5 s so the run
stays short. The upstream's own count is read from its ``x-ratelimit-remaining-requests``.

Faults: a room started by the CLI (``python -m vizlab.room serve``) is killed with SIGKILL while
attendees send requests, then restarted on the same files: every answer an attendee received
must have its settled row, and no row may exceed what the upstream answered.
"""

from __future__ import annotations

import base64
import io
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import openai
import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Section, say

KEY = "bench-room-upstream-key-5d1e"
ATTENDEES = 30
PER_ATTENDEE = 3
UPSTREAM_RPM = 100_000  # so the upstream's remaining-requests header counts what it served
ROOT = Path(__file__).resolve().parents[1]


def sized_url(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 60)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def ask(kind: str, url: str, client_azure: Any, client_v1: Any) -> str:
    parts = [{"type": "text", "text": "How big is this image?"}]
    if kind == "azure":
        reply = client_azure.chat.completions.create(
            model="vision", max_tokens=80, messages=[{"role": "user", "content": [
                *parts, {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}])  # fmt: skip
        return reply.choices[0].message.content or ""
    if kind == "stream":
        chunks = client_v1.chat.completions.create(
            model="vision", max_tokens=80, stream=True, messages=[{"role": "user", "content": [
                *parts, {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}])  # fmt: skip
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    response = client_v1.responses.create(model="vision", max_output_tokens=80, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "How big is this image?"}, {"type": "input_image", "image_url": url, "detail": "low"}]}])
    return response.output_text


def load(section: Section) -> None:
    from vizlab.local import LocalBackend
    from vizlab.room import Room, RoomSettings

    now = datetime.now(timezone.utc)
    with LocalBackend(api_key=KEY, deployments=("vision",), rpm=UPSTREAM_RPM) as upstream, \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        settings = RoomSettings(upstream_endpoint=upstream.url, upstream_deployment="vision",
                                codes=Path(tmp) / "codes.csv", starts=now - timedelta(hours=1),
                                ends=now + timedelta(hours=1), attendees=ATTENDEES, budget_usd=1.0, max_output=200,
                                tpm=6_000, max_wait_s=30)  # fmt: skip
        room = Room(settings, upstream_key=KEY, log=io.StringIO()).start()
        room.pacer.window_s = 5.0
        codes = sorted(room.codes(), key=lambda c: room.codes()[c].attendee)
        results: dict[str, int] = {"ok": 0, "lost": 0, "crossed": 0, "429": 0}
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def attendee(i: int, code: str) -> None:
            azure = openai.AzureOpenAI(azure_endpoint=room.url, api_key=code, api_version="2024-10-21", max_retries=0)
            v1 = openai.OpenAI(base_url=room.url + "/openai/v1/", api_key=code, max_retries=0)
            for j, kind in enumerate(["azure", "stream", "responses"][:PER_ATTENDEE]):
                width, height = 300 + i, 200 + j
                began = time.perf_counter()
                try:
                    text = ask(kind, sized_url(width, height), azure, v1)
                    outcome = "ok" if f"{width}x{height}" in text else "crossed"
                except openai.RateLimitError:
                    outcome = "429"
                except Exception as e:  # noqa: BLE001  (any failure is a lost answer here)
                    outcome = "lost"
                    with lock:
                        errors.append(f"attendee {i} {kind}: {type(e).__name__}: {str(e)[:200]}")
                with lock:
                    results[outcome] += 1
                    latencies.append(time.perf_counter() - began)
            azure.close()
            v1.close()

        began = time.perf_counter()
        threads = [threading.Thread(target=attendee, args=(i, c)) for i, c in enumerate(codes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        probe = requests.get(upstream.url + "/openai/v1/models", headers={"api-key": KEY}, timeout=10)
        upstream_count = UPSTREAM_RPM - int(probe.headers["x-ratelimit-remaining-requests"])
        rows = room.store.count_usage()
        waited = room.pacer.waited
        room.stop()
    total = ATTENDEES * PER_ATTENDEE
    latencies.sort()
    section.add(f"- {ATTENDEES} attendees x {PER_ATTENDEE} requests (Azure chat + image, v1 stream + image, "
                f"Responses + image), room --tpm 6000 (window 5 s), upstream: built-in backend")  # fmt: skip
    section.add(f"- wall {wall:.1f} s; latency p50 {latencies[len(latencies) // 2]:.2f} s, "
                f"p95 {latencies[int(len(latencies) * 0.95)]:.2f} s; {waited} requests waited for a turn")  # fmt: skip
    section.add(f"- answers: {results}; usage rows {rows}; upstream served {upstream_count}")
    for line in errors:
        section.add(f"  - lost: {line}")
    section.target("no lost or crossed answers", f"{results['lost']} lost, {results['crossed']} crossed of {total}",
                   results["lost"] == results["crossed"] == 0)  # fmt: skip
    section.target("no 429 handed down when the fair share covers it", f"{results['429']} 429s", results["429"] == 0)
    section.target("pacing engaged (requests that waited their turn)", f"{waited} of {total}", None)
    section.target("usage rows = upstream's count", f"{rows} rows, upstream {upstream_count}", rows == upstream_count)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(upstream_url: str, folder: Path, port: int) -> subprocess.Popen[str]:
    now = datetime.now(timezone.utc)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AZURE_OPENAI_API_KEY": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vizlab.room", "serve", "--upstream-endpoint", upstream_url, "--upstream-deployment",
         "vision", "--attendees", "4", "--budget-usd", "5", "--max-output", "50", "--port", str(port),
         "--starts", (now - timedelta(hours=1)).isoformat(), "--ends", (now + timedelta(hours=1)).isoformat(),
         "--codes", str(folder / "codes.csv")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("admin key:"):
            break
    return proc


def _one_trial(folder: Path, port: int, trial: int) -> tuple[int, int, int, int]:
    """One kill -9 trial on a fresh upstream (its 60 s request window then counts this trial alone):
    (answers received, usage rows added, duplicate rows, requests the upstream served)."""
    from vizlab.local import LocalBackend

    db_path = folder / "codes.sqlite"

    def rows() -> int:
        if not db_path.exists():
            return 0
        db = sqlite3.connect(db_path)
        try:
            return int(db.execute("SELECT COUNT(*) FROM usage").fetchone()[0])
        finally:
            db.close()

    before = rows()
    with LocalBackend(api_key=KEY, deployments=("vision",), rpm=UPSTREAM_RPM) as upstream:
        proc = _start(upstream.url, folder, port)
        codes = [line.split(",")[1] for line in (folder / "codes.csv").read_text().splitlines()[1:]]
        answered: list[str] = []
        lock = threading.Lock()

        def attendee(code: str) -> None:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/openai/v1/", api_key=code, max_retries=0)
            for _ in range(50):
                try:
                    reply = client.chat.completions.create(model="vision", messages=[{"role": "user", "content": "hi"}])
                    with lock:
                        answered.append(reply.id)
                except openai.APIError:
                    break
            client.close()

        threads = [threading.Thread(target=attendee, args=(c,)) for c in codes]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60  # kill mid-traffic: once answers flow, at a random moment
        while not answered and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(random.Random(trial).uniform(0.1, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        for t in threads:
            t.join()
        probe = requests.get(upstream.url + "/openai/v1/models", headers={"api-key": KEY}, timeout=10)
        served = UPSTREAM_RPM - int(probe.headers["x-ratelimit-remaining-requests"])
    db = sqlite3.connect(db_path)
    total, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM usage").fetchone()
    db.close()
    return len(answered), rows() - before, total - distinct, served


def kill_trials(section: Section, trials: int) -> None:
    lost = double = answers = 0
    with tempfile.TemporaryDirectory() as tmp:
        folder, port = Path(tmp), _free_port()
        for trial in range(trials):
            got, added, duplicates, served = _one_trial(folder, port, trial)
            answers += got
            lost += max(0, got - added)  # an answer the attendee saw must have its settled row
            double += duplicates + max(0, added - served)  # never more rows than upstream answers
    section.add(f"- kill -9 mid-traffic, {trials} trials: {answers} answers received in all, "
                f"{lost} without a settled row, {double} billed twice or beyond what the upstream served")  # fmt: skip
    section.target("kill -9 trials were mid-traffic (answers flowed in each)", f"{answers} answers", answers >= trials)
    section.target("kill -9: no settled row lost", f"{lost} lost over {trials} trials", lost == 0)
    section.target("kill -9: nothing billed twice", f"{double}", double == 0)


def run(trials: int = 5) -> Section:
    section = Section("8. vizlab.room: a room of attendees, and kill -9")
    began = time.perf_counter()
    say(f"  load: {ATTENDEES} attendees x {PER_ATTENDEE} requests through the room ...")
    load(section)
    say(f"  faults: {trials} kill -9 trials ...")
    kill_trials(section, trials)
    section.seconds = time.perf_counter() - began
    return section


if __name__ == "__main__":
    count = int(sys.argv[sys.argv.index("--trials") + 1]) if "--trials" in sys.argv else 5
    result = run(count)
    print("\n".join(result.lines))
    sys.exit(0 if all(t.passed for t in result.targets) else 1)
