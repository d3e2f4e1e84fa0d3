"""Issue 22 hardening: stalled bodies, bad files as rows, non-finite caps, CSV formula cells."""

from __future__ import annotations

import json
import socket
import threading
import time

from vizlab.local.server import LocalBackend

HOST = b"Host: 127.0.0.1\r\n"


def _post_head(length: int) -> bytes:
    return (
        b"POST /openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21 HTTP/1.1\r\n" + HOST
        + b"api-key: k\r\nContent-Type: application/json\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n"
    )


def test_stalled_bodies_are_closed() -> None:
    with LocalBackend(api_key="k", body_timeout_s=1.0) as backend:
        sockets = [socket.create_connection(("127.0.0.1", backend.port), timeout=15) for _ in range(20)]
        began = time.monotonic()
        closed = 0
        try:
            for sock in sockets:
                sock.sendall(_post_head(1000) + b'{"messages": [')  # and then nothing
            for sock in sockets:
                try:
                    closed += sock.recv(1024) == b""
                except (ConnectionResetError, socket.timeout):
                    pass
        finally:
            for sock in sockets:
                sock.close()
        assert closed == 20
        assert time.monotonic() - began < 10


def test_a_slow_but_moving_body_is_served() -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 50}).encode()
    with LocalBackend(api_key="k", body_timeout_s=1.0) as backend:
        with socket.create_connection(("127.0.0.1", backend.port), timeout=15) as sock:
            sock.sendall(_post_head(len(body)))
            for i in range(0, len(body), len(body) // 4 + 1):
                sock.sendall(body[i : i + len(body) // 4 + 1])
                threading.Event().wait(0.4)  # 1.6 s in all, never 1 s without a byte
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_overload_gets_azures_429_with_both_retry_headers_by_default() -> None:
    import requests

    from vizlab.local.config import DEFAULT_MAX_CONCURRENCY

    n = DEFAULT_MAX_CONCURRENCY + 8
    with LocalBackend(api_key="k", latency_s=3.0) as backend:
        url = f"{backend.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        gate = threading.Barrier(n)
        out: list[requests.Response] = []

        def ask() -> None:
            gate.wait()
            out.append(requests.post(url, json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 20},
                                     headers={"api-key": "k"}, timeout=60))  # fmt: skip

        threads = [threading.Thread(target=ask) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    busy = [r for r in out if r.status_code == 429]
    assert len(busy) >= 8 and len(out) == n
    assert all(int(r.headers["retry-after-ms"]) >= 1 and int(r.headers["retry-after"]) >= 1 for r in busy)
    assert {r.status_code for r in out} == {200, 429}
