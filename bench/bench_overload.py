"""Overload as Azure answers it (issue 22): 200 clients at once against the built-in backend.

Raw requests (no retries) show the 429s and their retry-after headers; the openai SDK with its
retries set explicitly (2, its default, and 10) and the experiment runner show how many of the
200 requests complete. The backend runs in its own process on loopback (the shared backend,
in a temporary state dir, stopped at the end); 0.5 s of simulated latency per request.

    .venv/bin/python bench/bench_overload.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from _common import Section, say

CLIENTS = 200
LATENCY_S = 0.5
API_VERSION = "2024-10-21"


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else (values[0] if values else 0.0)


def at_once(fn: Any, n: int = CLIENTS) -> list[Any]:
    """Run ``fn()`` in n threads released together; return their results (or exceptions)."""
    out: list[Any] = [None] * n
    gate = threading.Barrier(n)

    def one(i: int) -> None:
        gate.wait()
        try:
            out[i] = fn()
        except Exception as e:  # a failed client is a figure, not a crash of the bench
            out[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return out


def raw(url: str) -> tuple[int, float, dict[str, str]]:
    began = time.monotonic()
    r = requests.post(
        f"{url}/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}",
        json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 50},
        headers={"api-key": "k"}, timeout=120,
    )  # fmt: skip
    return r.status_code, time.monotonic() - began, dict(r.headers)


def sdk_run(url: str, retries: int) -> tuple[int, float]:
    import openai

    sdk = openai.AzureOpenAI(azure_endpoint=url, api_key="k", api_version=API_VERSION, max_retries=retries, timeout=120)
    began = time.monotonic()
    results = at_once(lambda: sdk.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello"}], max_tokens=50))
    sdk.close()
    return sum(not isinstance(r, Exception) for r in results), time.monotonic() - began


def runner_run(client: Any, folder: Path) -> tuple[int, int, float, int]:
    from vizlab.experiments.runner import run_experiment

    began = time.monotonic()
    result = run_experiment(client, str(folder), prompt="What colour is this?", details=("low",),
                            concurrency=CLIENTS, cache_dir=folder / "cache", progress=False, max_tokens=50)  # fmt: skip
    rows = result.table
    ok = int(rows["error"].isna().sum())
    return ok, len(rows), time.monotonic() - began, int(result.manifest["pacer"]["429s_retried"])


def images(folder: Path) -> None:
    from PIL import Image

    for i in range(CLIENTS):
        Image.new("RGB", (32, 24), (i % 256, 40, 200 - i % 200)).save(folder / f"img{i:03d}.png")


def run() -> Section:
    section = Section("8. overload: 200 clients at once")
    state = tempfile.mkdtemp(prefix="vizlab-bench-state-")
    os.environ["VIZLAB_STATE_DIR"] = state
    import vizlab
    from vizlab.local.shared import stop_shared_backends

    try:
        limited = vizlab.connect(local_options={"latency_s": LATENCY_S, "api_key": "k"}, verbose=False, env_file=None)
        unlimited = vizlab.connect(local_options={"latency_s": LATENCY_S, "api_key": "k", "max_concurrency": None},
                                   verbose=False, env_file=None)  # fmt: skip
        section.add(f"{CLIENTS} threads released together, {LATENCY_S} s simulated latency, backend in its own process.")
        section.add("")
        section.add("| Case | completed | 429 | p95 latency | total |")
        section.add("|---|---|---|---|---|")
        figures: dict[str, Any] = {}
        for label, client in (("no limit (before)", unlimited), ("default limit", limited)):
            began = time.monotonic()
            out = [r for r in at_once(lambda c=client: raw(c.endpoint)) if not isinstance(r, Exception)]
            total = time.monotonic() - began
            ok = [r for r in out if r[0] == 200]
            busy = [r for r in out if r[0] == 429]
            headed = sum(1 for r in busy if "retry-after" in r[2] and "retry-after-ms" in r[2])
            figures[label] = (len(ok), len(busy), headed)
            lat = p95([r[1] for r in ok])
            say(f"  raw, {label}: {len(ok)} ok, {len(busy)} x 429 ({headed} with both retry headers), p95 {lat:.2f} s")
            section.add(f"| raw requests, {label} | {len(ok)} | {len(busy)} | {lat:.2f} s | {total:.1f} s |")
        for retries in (2, 10):
            done, took = sdk_run(limited.endpoint, retries)
            figures[f"sdk{retries}"] = done
            say(f"  openai SDK max_retries={retries}: {done}/{CLIENTS} completed in {took:.1f} s")
            section.add(f"| openai SDK, max_retries={retries} | {done} | (retried) | | {took:.1f} s |")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            images(folder)
            ok, rows, took, retried = runner_run(limited, folder)
        figures["runner"] = ok
        say(f"  run_experiment concurrency={CLIENTS}: {ok}/{rows} rows answered, {retried} x 429 waited out, {took:.1f} s")
        section.add(f"| run_experiment, concurrency={CLIENTS} | {ok} of {rows} | {retried} waited out | | {took:.1f} s |")
        busy_default = figures["default limit"]
        section.target("200 clients get 429s with retry-after and retry-after-ms by default",
                       f"{busy_default[1]} x 429, {busy_default[2]} with both headers",
                       busy_default[1] > 0 and busy_default[1] == busy_default[2])
        section.target("the runner completes every request", f"{figures['runner']} of {CLIENTS}",
                       figures["runner"] == CLIENTS)
    finally:
        stop_shared_backends(Path(state))
    return section


def main() -> None:
    for line in run().lines:
        print(line)


if __name__ == "__main__":
    sys.exit(main())
