"""The built-in backend is as strict as the service: api-versions, models API, headers, refusals,
Host check, pacing. Each rule over real sockets, at the backend end (raw HTTP) and at the client
end (the official openai SDK sees the service's error)."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import openai
import pytest
import requests
from conftest import LOCAL_API_KEY

from vizlab.local import LocalBackend
from vizlab.local.http.apiversion import GA_API_VERSIONS, KNOWN_API_VERSIONS, PREVIEW_API_VERSIONS
from vizlab.models import families, lookup

HEADERS = {"api-key": LOCAL_API_KEY}
TIMEOUT = 30
API_VERSION = "2024-10-21"
HI = [{"role": "user", "content": "hi"}]
RATE_HEADERS = [
    f"x-ratelimit-{kind}-{what}" for kind in ("limit", "remaining", "reset") for what in ("requests", "tokens")
]


def chat(backend: Any, body: Any, *, version: str | None = API_VERSION, deployment: str = "gpt-4o", **kw: Any) -> requests.Response:
    url = f"{backend.url}/openai/deployments/{deployment}/chat/completions"
    params = {} if version is None else {"api-version": version}
    return requests.post(url, params=params, json=body, headers=kw.pop("headers", HEADERS), timeout=TIMEOUT, **kw)


def azure_sdk(backend: Any, version: str = API_VERSION) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=backend.url, api_key=LOCAL_API_KEY, api_version=version, max_retries=0)


def v1_sdk(backend: Any, base: str = "/openai/v1") -> openai.OpenAI:
    return openai.OpenAI(base_url=backend.url + base, api_key=LOCAL_API_KEY, max_retries=0)


def error_of(resp: requests.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


# --- api-version ------------------------------------------------------------------------------


def test_the_version_list_is_the_published_one() -> None:
    assert set(GA_API_VERSIONS) == {"2023-05-15", "2024-02-01", "2024-06-01", "2024-10-21"}
    assert all(v.endswith("-preview") for v in PREVIEW_API_VERSIONS)
    assert KNOWN_API_VERSIONS == tuple(sorted(set(GA_API_VERSIONS + PREVIEW_API_VERSIONS)))


@pytest.mark.parametrize("version", ["2024-10-01", "2030-01-01-preview", "2022-12-01", "2024-06-01-preview", "v1", None])
def test_made_up_api_versions_get_azures_404(local_backend: Any, version: str | None) -> None:
    resp = chat(local_backend, {"messages": HI}, version=version)
    assert resp.status_code == 404
    assert resp.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert "api-version" in resp.headers["x-vizlab-detail"]
    # The same on the other dated routes.
    for path in ("/openai/models", "/openai/files", "/openai/batches"):
        other = requests.get(local_backend.url + path, params={"api-version": version} if version else {}, headers=HEADERS, timeout=TIMEOUT)
        assert other.status_code == 404 and other.json() == {"error": {"code": "404", "message": "Resource not found"}}, path
    if version is not None:
        with azure_sdk(local_backend, version) as sdk, pytest.raises(openai.NotFoundError) as caught:
            sdk.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
        assert caught.value.status_code == 404


@pytest.mark.parametrize("version", KNOWN_API_VERSIONS)
def test_every_published_version_is_accepted(local_backend: Any, version: str) -> None:
    assert chat(local_backend, {"messages": HI}, version=version).status_code == 200


def test_v1_routes_take_no_dated_version(local_backend: Any) -> None:
    url = local_backend.url + "/openai/v1/chat/completions"
    body = {"model": "gpt-4o", "messages": HI}
    assert requests.post(url, json=body, headers=HEADERS, timeout=TIMEOUT).status_code == 200
    for ok in ("preview", "latest"):
        assert requests.post(url, params={"api-version": ok}, json=body, headers=HEADERS, timeout=TIMEOUT).status_code == 200
    dated = requests.post(url, params={"api-version": API_VERSION}, json=body, headers=HEADERS, timeout=TIMEOUT)
    error = error_of(dated, 400)
    assert error["code"] == "BadRequest" and error["message"] == "API version not supported"
    assert "no api-version" in dated.headers["x-vizlab-detail"]
    # The SDK on the v1 route sends none, and works.
    with v1_sdk(local_backend) as sdk:
        assert sdk.chat.completions.create(model="gpt-4o", messages=HI).choices[0].message.content  # type: ignore[arg-type]


# --- models API -------------------------------------------------------------------------------


def test_azure_models_list_lists_models_from_the_registry(local_backend: Any) -> None:
    with azure_sdk(local_backend) as sdk:
        page = sdk.models.list()
    ids = [m.id for m in page.data]
    offered = [f for f in families() if lookup(f).lifecycle != "retired"]
    assert ids == offered
    assert "gpt-4o" in ids and "gpt-4.5" not in ids  # gpt-4.5 retired 2025-07-14
    entry = {m.id: m for m in page.data}["gpt-4.1-nano"].model_dump()
    assert entry["object"] == "model" and entry["status"] == "succeeded"
    assert entry["capabilities"]["chat_completion"] is True and entry["capabilities"]["embeddings"] is False
    assert entry["lifecycle_status"] == lookup("gpt-4.1-nano").lifecycle == "deprecated"
    assert set(entry["deprecation"]) == {"inference"}
    # The v1 route answers the same list.
    with v1_sdk(local_backend) as v1:
        assert [m.id for m in v1.models.list().data] == ids


def test_models_retrieve_and_its_404(local_backend: Any) -> None:
    with azure_sdk(local_backend) as sdk:
        model = sdk.models.retrieve("gpt-4o-2024-08-06")
    # gpt-4o is deprecated on both providers now (vizlab.models.lifecycles) and still served
    assert model.id == "gpt-4o-2024-08-06" and model.model_dump()["lifecycle_status"] == "deprecated"
    with v1_sdk(local_backend) as v1, pytest.raises(openai.NotFoundError) as caught:
        v1.models.retrieve("gpt-4.5")
    assert "retired on 2025-07-14" in str(caught.value)
    missing = requests.get(local_backend.url + "/openai/models/nope", params={"api-version": API_VERSION}, headers=HEADERS, timeout=TIMEOUT)
    assert error_of(missing, 404)["code"] == "model_not_found"


def test_retirement_dates_are_unix_seconds_from_the_registry(local_backend: Any) -> None:
    from vizlab.local.routes.models import model_entry

    entry = model_entry(lookup("gpt-4.5"))
    assert entry["deprecation"]["inference"] == 1752451200  # 2025-07-14T00:00:00Z
    assert model_entry(lookup("gpt-4o"))["deprecation"]["inference"] == 1799884800  # 2027-01-14, OpenAI (soonest default)
    # gpt-5.5: 2027-10-26 in Azure's table of 2026-09-02, the default over the 07-07 copy's 2027-04-23 (DISPUTED)
    assert model_entry(lookup("gpt-5.5"))["deprecation"]["inference"] == 1824508800
    assert model_entry(lookup("gpt-6-astra"))["deprecation"]["inference"] is None  # none published: null


# --- headers on every response ------------------------------------------------------------------


def _all_kinds_of_response(backend: Any) -> dict[str, requests.Response]:
    url = backend.url
    return {
        "200 chat": chat(backend, {"messages": HI}),
        "400 body": chat(backend, {"messages": []}),
        "401 key": chat(backend, {"messages": HI}, headers={}),
        "404 version": chat(backend, {"messages": HI}, version="2030-01-01"),
        "404 deployment": chat(backend, {"messages": HI}, deployment="nope"),
        "404 route": requests.get(url + "/nothing", timeout=TIMEOUT),
        "405 method": requests.get(url + f"/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}", headers=HEADERS, timeout=TIMEOUT),
        "200 models": requests.get(url + "/openai/models", params={"api-version": API_VERSION}, headers=HEADERS, timeout=TIMEOUT),
        "404 file": requests.get(url + "/openai/files/file-nope", params={"api-version": API_VERSION}, headers=HEADERS, timeout=TIMEOUT),
        "200 healthz": requests.get(url + "/healthz", timeout=TIMEOUT),
    }


def test_request_ids_and_quota_headers_on_every_response(local_backend: Any) -> None:
    for name, resp in _all_kinds_of_response(local_backend).items():
        assert resp.status_code == int(name.split()[0]), (name, resp.text)
        assert resp.headers.get("x-request-id"), name
        assert resp.headers.get("apim-request-id") == resp.headers["x-request-id"], name
        for header in RATE_HEADERS:
            assert header in resp.headers, (name, header)
        # No quota configured: Azure's -1 / -1 / 0.
        assert resp.headers["x-ratelimit-limit-requests"] == "-1" and resp.headers["x-ratelimit-reset-tokens"] == "0"
    ids = {r.headers["x-request-id"] for r in _all_kinds_of_response(local_backend).values()}
    assert len(ids) == 10  # a fresh id per response


@pytest.mark.slow
def test_quota_headers_follow_the_configured_quota() -> None:
    with LocalBackend(api_key="k", rpm=3, tpm=100_000) as backend:
        seen = []
        for _ in range(4):
            resp = requests.post(
                f"{backend.url}/openai/deployments/gpt-4o/chat/completions", params={"api-version": API_VERSION},
                json={"messages": HI, "max_tokens": 10}, headers={"api-key": "k"}, timeout=TIMEOUT,
            )  # fmt: skip
            seen.append(resp)
        assert [r.status_code for r in seen] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining-requests"] for r in seen] == ["2", "1", "0", "0"]
        assert all(r.headers["x-ratelimit-limit-requests"] == "3" for r in seen)
        assert all(r.headers["x-ratelimit-limit-tokens"] == "100000" for r in seen)
        remaining_tokens = [int(r.headers["x-ratelimit-remaining-tokens"]) for r in seen[:3]]
        assert remaining_tokens == sorted(remaining_tokens, reverse=True) and remaining_tokens[0] < 100_000
        assert 0 < int(seen[3].headers["x-ratelimit-reset-requests"]) <= 60
        assert int(seen[3].headers["retry-after-ms"]) > 0


@pytest.mark.slow
def test_quota_headers_name_the_deployment_of_a_responses_request_too() -> None:
    """Each deployment has its own quota; a Responses request reports its own, not the first one's."""
    with LocalBackend(api_key="k", rpm=3, deployments=("gpt-4o", "gpt-4o-mini")) as backend:
        for _ in range(2):
            chat = requests.post(
                f"{backend.url}/openai/deployments/gpt-4o/chat/completions", params={"api-version": API_VERSION},
                json={"messages": HI, "max_tokens": 10}, headers={"api-key": "k"}, timeout=TIMEOUT,
            )  # fmt: skip
        assert chat.headers["x-ratelimit-remaining-requests"] == "1"
        resp = requests.post(f"{backend.url}/openai/v1/responses", json={"model": "gpt-4o-mini", "input": "hi"},
                             headers={"api-key": "k"}, timeout=TIMEOUT)  # fmt: skip
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-ratelimit-remaining-requests"] == "2"  # gpt-4o-mini's own quota, one used


# --- refusals in validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, code, param",
    [
        ({"response_format": {"type": "json_object"}}, "<null>", "messages"),
        ({"response_format": {"type": "yaml"}}, "invalid_value", "response_format.type"),
        ({"response_format": {}}, "invalid_value", "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "missing_required_parameter", "response_format.json_schema"),
        ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}, "missing_required_parameter", "response_format.json_schema.name"),
        ({"tools": [{"type": "function"}]}, "missing_required_parameter", "tools[0].function"),
        ({"tools": [{"type": "function", "function": {"description": "x"}}]}, "missing_required_parameter", "tools[0].function.name"),
        ({"tools": [{"type": "retrieval"}]}, "invalid_value", "tools[0].type"),
        ({"tools": ["f"]}, "invalid_type", "tools[0]"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"}, None, None),
    ],
)
def test_response_format_and_tools_the_service_refuses(
    local_backend: Any, extra: dict[str, Any], code: str | None, param: str | None
) -> None:
    if code is None:  # the well-formed control case: accepted
        assert chat(local_backend, {"messages": HI, **extra}).status_code == 200
        return
    expected_code = None if code == "<null>" else code  # the service sends code null for this one
    error = error_of(chat(local_backend, {"messages": HI, **extra}), 400)
    assert (error["code"], error["param"]) == (expected_code, param), error
    with azure_sdk(local_backend) as sdk, pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=HI, **extra)  # type: ignore[arg-type]
    assert caught.value.code == expected_code and caught.value.param == param


def test_json_object_with_json_in_the_messages_is_accepted(local_backend: Any) -> None:
    messages = [{"role": "system", "content": "Answer in JSON."}, *HI]
    assert chat(local_backend, {"messages": messages, "response_format": {"type": "json_object"}}).status_code == 200
    assert chat(local_backend, {"messages": HI, "response_format": {"type": "text"}}).status_code == 200


def test_the_json_message_is_the_services() -> None:
    from vizlab.local.http.errors import AzureError
    from vizlab.local.requests.validation import check_response_format

    with pytest.raises(AzureError) as caught:
        check_response_format({"type": "json_object"}, ["no such word"])
    assert caught.value.message == (
        "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
    )
    check_response_format({"type": "json_object"}, ["Reply as JSON"])  # any case counts


# --- DNS rebinding: the Host header -----------------------------------------------------------


def _raw(backend: Any, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", backend.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _get_models(host: str) -> bytes:
    return (
        f"GET /openai/models?api-version={API_VERSION} HTTP/1.1\r\nHost: {host}\r\napi-key: {LOCAL_API_KEY}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("host", ["rebind.attacker.example:8000", "evil.example", "127.0.0.1.nip.io", "10.0.0.1"])
def test_foreign_host_headers_get_421(local_backend: Any, host: str) -> None:
    raw = _raw(local_backend, _get_models(host))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 421 "), head[:80]
    error = json.loads(body)["error"]
    assert error["code"] == "421" and "DNS rebinding" in error["message"]
    assert b"x-request-id:" in head.lower()


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "localhost", "127.0.0.2"])
def test_loopback_host_headers_are_served(local_backend: Any, host: str) -> None:
    raw = _raw(local_backend, _get_models(host.format(port=local_backend.port)))
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:200]


@pytest.mark.slow
def test_configured_hosts_are_served() -> None:
    with LocalBackend(api_key="k", allowed_hosts=("notebook.internal",)) as backend:
        ok = requests.get(backend.url + "/healthz", headers={"Host": "notebook.internal:8888"}, timeout=TIMEOUT)
        assert ok.status_code == 200
        other = requests.get(backend.url + "/healthz", headers={"Host": "other.internal"}, timeout=TIMEOUT)
        assert other.status_code == 421


# --- pacing: the concurrency limit -------------------------------------------------------------


@pytest.mark.slow
def test_concurrency_limit_answers_429_with_retry_after_ms() -> None:
    """Three requests at once against a limit of two, each held 5 s in its simulated latency: two
    are served, the third is refused at once with Azure's 429 shape; afterwards one is served again."""
    with LocalBackend(api_key="k", max_concurrency=2, latency_s=5.0) as backend:
        url = f"{backend.url}/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}"
        results: list[requests.Response] = []
        start = threading.Barrier(3)

        def ask() -> None:
            start.wait()
            results.append(requests.post(url, json={"messages": HI}, headers={"api-key": "k"}, timeout=TIMEOUT))

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status_code for r in results) == [200, 200, 429]
        refused = next(r for r in results if r.status_code == 429)
        error = refused.json()["error"]
        assert error["code"] == "429" and "concurrency limit" in error["message"]
        assert int(refused.headers["retry-after-ms"]) > 0 and int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-request-id"] and "x-ratelimit-remaining-requests" in refused.headers
        # Not an inference route: never paced. And once the two are done, the next is served.
        assert requests.get(backend.url + "/healthz", timeout=TIMEOUT).status_code == 200
        assert requests.post(url, json={"messages": HI}, headers={"api-key": "k"}, timeout=TIMEOUT).status_code == 200


@pytest.mark.slow
def test_the_sdk_retries_a_concurrency_429_and_succeeds() -> None:
    with LocalBackend(api_key="k", max_concurrency=1, latency_s=0.5) as backend:
        client = openai.AzureOpenAI(azure_endpoint=backend.url, api_key="k", api_version=API_VERSION, max_retries=5)
        replies: list[str] = []

        def ask() -> None:
            reply = client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
            replies.append(reply.choices[0].message.content or "")

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client.close()
        assert len(replies) == 3 and all(replies)


# --- hole 2: big bodies are refused early and parsed off the event loop --------------------------


@pytest.mark.slow
def test_a_prompt_longer_than_the_window_in_characters_is_refused_before_counting(
    local_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 MB of text: refused with context_length_exceeded from the character floor, with no token
    count (the tokenizer is never called) and no image decoded."""
    calls: list[int] = []
    state = local_backend.state  # the running backend's seams (vizlab.local.state.BackendState)
    real = state.count_prompt
    monkeypatch.setattr(state, "count_prompt", lambda messages, model, **kw: calls.append(1) or real(messages, model, **kw))
    text = "word " * 12_000_000  # 60 MB; gpt-4o's window is 128,000 tokens, at most 128 bytes each
    resp = chat(local_backend, {"messages": [{"role": "user", "content": text}]})
    error = error_of(resp, 400)
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert "at least 468,750" in error["message"].replace("468750", "468,750")
    assert calls == []
    # Just under the floor, the prompt is counted (and refused by the real count).
    assert chat(local_backend, {"messages": [{"role": "user", "content": "word " * 40_000}]}).status_code == 200
    assert calls == [1]


def test_healthz_answers_while_a_big_body_is_being_parsed(local_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON parse of a big body is held (in the test) until /healthz has answered: if the
    parse ran on the event loop, /healthz could not answer and the test would fail on its timeout."""
    from vizlab.local.http.intake import parse_json

    parsing, release = threading.Event(), threading.Event()
    real = parse_json

    def held(raw: bytes) -> Any:
        parsing.set()
        release.wait(timeout=60)
        return real(raw)

    monkeypatch.setattr(local_backend.state, "parse_json", held)  # the backend's parser seam
    big = {"messages": [{"role": "user", "content": "word " * 100_000}]}  # 500 KB: parsed in a thread
    results: list[requests.Response] = []
    sender = threading.Thread(target=lambda: results.append(chat(local_backend, big)))
    sender.start()
    try:
        assert parsing.wait(timeout=60), "the big body never reached the parser"
        health = requests.get(local_backend.url + "/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        release.set()
        sender.join()
    assert results and results[0].status_code == 200


# --- hole 7: slow or incomplete headers are dropped --------------------------------------------


def _open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self/fd (Linux)")
def test_slowloris_sockets_are_closed_and_descriptors_come_back() -> None:
    with LocalBackend(api_key="k", header_timeout_s=1.0) as backend:
        baseline = _open_fds()
        sockets: list[socket.socket] = []
        closed = 0
        try:
            for i in range(60):
                sock = socket.create_connection(("127.0.0.1", backend.port), timeout=30)
                sockets.append(sock)
                if i % 3:  # two in three start a request and never finish its headers; the rest send nothing
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            assert _open_fds() >= baseline + 60
            for sock in sockets:
                try:
                    closed += sock.recv(1024) == b""  # the server closed it
                except (ConnectionResetError, socket.timeout):
                    pass
        finally:
            for sock in sockets:
                sock.close()
        assert closed == 60
        # The server's ends are gone too (a few descriptors of slack for the loop's own files).
        for _ in range(100):
            if _open_fds() <= baseline + 4:
                break
            threading.Event().wait(0.05)
        assert _open_fds() <= baseline + 4
        # A normal client is served throughout.
        assert requests.get(backend.url + "/healthz", timeout=TIMEOUT).status_code == 200


@pytest.mark.slow
def test_a_trickled_request_is_dropped_before_its_headers_end() -> None:
    """One byte at a time does not keep the connection: the clock is on the whole header, not per byte."""
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {'a' * 200}\r\n\r\n".encode()
    with LocalBackend(api_key="k", header_timeout_s=1.0) as backend:
        sock = socket.create_connection(("127.0.0.1", backend.port), timeout=30)
        sent = 0
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                sent += 1
                threading.Event().wait(0.05)  # 200+ bytes at 20 per second: over 10 s in all
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            sock.close()
        assert sent < len(request), "the server waited for the whole trickled header"


@pytest.mark.slow
def test_a_keep_alive_connection_is_served_then_guarded_again() -> None:
    """A complete request on a fresh connection is served; on the same connection, a next request
    that never finishes its headers is dropped too."""
    with LocalBackend(api_key="k", header_timeout_s=1.0) as backend:
        sock = socket.create_connection(("127.0.0.1", backend.port), timeout=30)
        with sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            first = sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
            rest = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            assert b"HTTP/1.1 200" not in rest  # closed, not answered
