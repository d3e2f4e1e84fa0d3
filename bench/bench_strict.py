"""Backend strictness figures (issue 14 holes 2 and 7): slowloris descriptors and /healthz latency
during a 60 MB body, each with the guard and without it, measured in one run.

    .venv/bin/python bench/bench_strict.py
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import requests
from _common import Section, say

from vizlab.local import LocalBackend
from vizlab.local.http import intake


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def slowloris(header_timeout_s: float, n: int = 200, wait_s: float = 3.0) -> tuple[int, int, int]:
    """Descriptors before, with n half-sent requests open, and wait_s later."""
    with LocalBackend(api_key="k", header_timeout_s=header_timeout_s) as backend:
        before = fds()
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", backend.port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(s)
        time.sleep(0.5)
        during = fds()
        time.sleep(wait_s)
        # Our own ends stay open until closed below: count the server's ends only.
        alive = sum(1 for s in socks if not _closed_by_peer(s))
        for s in socks:
            s.close()
        return before, during, alive


def _closed_by_peer(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def healthz_during_big_body(threaded: bool) -> tuple[float, float]:
    """(worst /healthz latency while a 60 MB text body is posted and parsed, that request's time)."""
    old = intake.THREADED_PARSE_BYTES
    intake.THREADED_PARSE_BYTES = old if threaded else 1 << 62
    try:
        with LocalBackend(api_key="k") as backend:
            body = json.dumps({"messages": [{"role": "user", "content": "word " * 12_000_000}]}).encode()
            url = f"{backend.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
            done = threading.Event()
            took: list[float] = []

            def big() -> None:
                t = time.perf_counter()
                requests.post(url, data=body, headers={"api-key": "k", "content-type": "application/json"}, timeout=120)
                took.append(time.perf_counter() - t)
                done.set()

            worst = 0.0
            threading.Thread(target=big).start()
            while not done.is_set():
                t = time.perf_counter()
                requests.get(backend.url + "/healthz", timeout=60)
                worst = max(worst, time.perf_counter() - t)
                time.sleep(0.01)
            return worst, took[0]
    finally:
        intake.THREADED_PARSE_BYTES = old


def run() -> Section:
    """Benchmark 7: both guards, each side by side with the same backend without it."""
    section = Section("7. the built-in backend under hostile clients")
    section.add("Baseline: the same backend with the guard off (uvicorn's own behaviour), in the same run.")
    section.add("")
    section.add("| Case | Without the guard | With the guard |")
    section.add("|---|---|---|")
    held = {}
    for label, timeout in (("off", 1e6), ("on", 1.0)):
        before, during, alive = slowloris(timeout)
        held[label] = (before, during, alive)
        say(f"  slowloris x200, guard {label}: descriptors {before} -> {during}; server still holding {alive} after 3 s")
    section.add(f"| 200 half-sent requests: connections the server still holds after 3 s | {held['off'][2]} | "
                f"{held['on'][2]} |")
    section.target("header timeout 1 s: 0 of 200 slowloris connections held after 3 s",
                   f"{held['on'][2]} held (without the guard: {held['off'][2]})", held["on"][2] == 0)
    worst = {}
    for threaded in (False, True):
        worst[threaded], took = healthz_during_big_body(threaded)
        where = "worker thread" if threaded else "event loop"
        say(f"  /healthz during a 60 MB body, parse on the {where}: worst {worst[threaded] * 1000:.0f} ms "
            f"(the big request {took:.2f} s)")
    section.add(f"| worst /healthz latency while a 60 MB body is parsed | {worst[False] * 1000:.0f} ms | "
                f"{worst[True] * 1000:.0f} ms |")
    section.target("/healthz stays under 250 ms while a 60 MB body is parsed",
                   f"worst {worst[True] * 1000:.0f} ms (parse on the event loop: {worst[False] * 1000:.0f} ms)",
                   worst[True] < 0.25)
    return section


def main() -> None:
    for line in run().lines:
        print(line)


if __name__ == "__main__":
    main()
