"""Shared helpers of the benchmarks: the machine, timing, a request-recording server, results.

Every benchmark measures its contestants side by side in the same process and run, so the
ratios it reports are comparable on a noisy machine; absolute times are context only.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

RERUN = "make bench   (or: .venv/bin/python bench/run.py)"


def say(text: str) -> None:
    """Progress on stdout, flushed so it shows while the benchmark runs."""
    print(text, flush=True)


def machine() -> dict[str, str]:
    """Cores, RAM, CPU model and software versions of this machine."""
    import PIL

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = "unknown"
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPU": cpu,
        "Cores": f"{os.cpu_count()} logical ({usable} usable by this process)",
        "RAM": ram,
        "Python": sys.version.split()[0] + f" ({platform.python_implementation()})",
        "OS": platform.platform(),
        "Pillow": PIL.__version__,
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Target:
    """One target of one benchmark, with the figure that decides it."""

    benchmark: str
    target: str
    measured: str
    passed: bool | None  # None: a figure to report, with no target to meet

    @property
    def verdict(self) -> str:
        return "info" if self.passed is None else "PASS" if self.passed else "FAIL"


@dataclass
class Section:
    """What one benchmark reports: its targets and a Markdown body with the side-by-side figures."""

    title: str
    targets: list[Target] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def target(self, target: str, measured: str, passed: bool | None) -> None:
        t = Target(self.title, target, measured, passed)
        self.targets.append(t)
        say(f"  [{t.verdict}] {target}: {measured}")

    def add(self, line: str = "") -> None:
        self.lines.append(line)


# --- a server that records every chat request ------------------------------------------------


@dataclass
class Exchange:
    """One chat request as the server saw it."""

    started: float  # time.monotonic() when the request arrived
    finished: float
    status: int
    body_sha: str  # the same request retried has the same body
    retry_count: int  # the openai SDK's x-stainless-retry-count header
    max_tokens: int
    prompt_tokens: int | None  # from the reply's usage (200 only)
    retry_after_s: float | None  # from retry-after-ms (429 only)


class RecordingApp:
    """ASGI middleware: passes everything to ``app`` and records each chat-completions exchange."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.exchanges = []

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        request = bytearray()
        response = bytearray()
        status: dict[str, Any] = {"code": 0, "headers": {}}

        async def recv() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                request.extend(message.get("body", b""))
            return message

        async def snd(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["headers"] = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                response.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, recv, snd)
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        try:
            body = json.loads(request)
            max_tokens = int(body.get("max_tokens") or 0)
        except (ValueError, AttributeError, TypeError):
            max_tokens = 0
        prompt = None
        if status["code"] == 200:
            try:
                prompt = int(json.loads(response)["usage"]["prompt_tokens"])
            except (ValueError, KeyError, TypeError):
                prompt = None
        after = status["headers"].get("retry-after-ms")
        exchange = Exchange(
            started=started,
            finished=time.monotonic(),
            status=status["code"],
            body_sha=hashlib.sha256(bytes(request)).hexdigest(),
            retry_count=int(headers.get("x-stainless-retry-count", "0") or 0),
            max_tokens=max_tokens,
            prompt_tokens=prompt,
            retry_after_s=None if after is None else int(after) / 1000,
        )
        with self._lock:
            self.exchanges.append(exchange)


class Served:
    """An ASGI app served by uvicorn on a free loopback port in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws="none",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> "Served":
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline:
                self.__exit__()  # no `with` body will run, so nothing else would close the socket
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def recording_backend(**config: Any) -> tuple[RecordingApp, Served]:
    """The built-in backend's app (vizlab.local.create_app) wrapped in a RecordingApp, ready to serve."""
    from vizlab.local import BackendConfig, create_app

    recorder = RecordingApp(create_app(BackendConfig(**config)))
    return recorder, Served(recorder)


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"



def load() -> str:
    """The machine's load averages (1, 5, 15 min) and cores: beside every figure on a shared box."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"
