"""The built-in backend over real HTTP on loopback: routes, auth, errors, streaming, quotas."""

from __future__ import annotations

import base64
import io
import json
import re
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests
from conftest import LOCAL_API_KEY, TINY_PNG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vizlab.local import BackendConfig, LocalBackend, create_app

API_VERSION = "2024-10-21"
HEADERS = {"api-key": LOCAL_API_KEY}
TIMEOUT = 30


def png_bytes(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    img = Image.new("RGB", (width, height), color)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_part(url: str, detail: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": url}
    if detail is not None:
        spec["detail"] = detail
    return {"type": "image_url", "image_url": spec}


def user_with_image(text: str = "Describe this picture:", url: str | None = None, detail: str | None = None) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "text", "text": text}, image_part(url or data_url(png_bytes()), detail)]},
    ]


def chat_url(backend: Any, deployment: str = "gpt-4o", api_version: str | None = API_VERSION) -> str:
    url = f"{backend.url}/openai/deployments/{deployment}/chat/completions"
    return url if api_version is None else f"{url}?api-version={api_version}"


def post(backend: Any, body: Any, *, headers: dict[str, str] | None = None, **kw: Any) -> requests.Response:
    return requests.post(chat_url(backend, **kw), headers=HEADERS if headers is None else headers, json=body, timeout=TIMEOUT)


def assert_error(resp: requests.Response, status: int, code: str, param: str | None = "<any>") -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message", "param", "type"} <= set(error)
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    if param != "<any>":
        assert error["param"] == param, error
    return dict(error)


SAFE = {"filtered": False, "severity": "safe"}


def assert_azure_completion(body: dict[str, Any]) -> None:
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert re.fullmatch(r"(gpt|o)[\w.-]*-\d{4}-\d{2}-\d{2}", body["model"])  # the dated model, as Azure reports
    # As recorded on Azure (tests/data/recordings/azure_chat_text.json): jailbreak in the prompt's results.
    assert body["prompt_filter_results"] == [
        {"prompt_index": 0, "content_filter_results": {**{k: SAFE for k in ("hate", "self_harm", "sexual", "violence")},
                                                       "jailbreak": {"filtered": False, "detected": False}}}
    ]
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    assert choice["content_filter_results"] == {
        **{k: SAFE for k in ("hate", "self_harm", "sexual", "violence")},
        **{k: {"filtered": False, "detected": False} for k in ("protected_material_code", "protected_material_text")},
    }
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


# --- the REST quickstart -----------------------------------------------------------------------


def test_rest_quickstart_2023_preview_format(local_backend: Any) -> None:
    """Seed 01: api-key header, 2023-08-01-preview, content as strings and {"image": base64}."""
    b64 = base64.b64encode(png_bytes(120, 80)).decode()
    data = {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": ["Describe this picture:", {"image": b64}]},
        ],
        "max_tokens": 100,
        "stream": False,
    }
    endpoint = chat_url(local_backend, api_version="2023-08-01-preview")
    resp = requests.post(
        endpoint, headers={"Content-Type": "application/json", "api-key": LOCAL_API_KEY}, data=json.dumps(data), timeout=TIMEOUT
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_azure_completion(body)
    assert "120x80" in body["choices"][0]["message"]["content"]
    assert "built-in local analyst, not the deployment's model" in body["choices"][0]["message"]["content"]


def test_rest_quickstart_current_format(local_backend: Any) -> None:
    """Seed 03: text and image_url parts with a data URL, 2024-02-15-preview."""
    resp = post(local_backend, {"messages": user_with_image(), "max_tokens": 2000}, api_version="2024-02-15-preview")
    assert resp.status_code == 200, resp.text
    assert_azure_completion(resp.json())
    assert resp.headers["x-request-id"]


def test_2023_format_refused_on_ga_version(local_backend: Any) -> None:
    b64 = base64.b64encode(png_bytes()).decode()
    body = {"messages": [{"role": "user", "content": ["Describe:", {"image": b64}]}]}
    error = assert_error(post(local_backend, body, api_version="2024-06-01"), 400, "invalid_type", "messages[0].content[0]")
    assert "2023-*-preview" in error["message"] and "image_url" in error["message"]


def test_bearer_auth(local_backend: Any) -> None:
    resp = post(local_backend, {"messages": user_with_image()}, headers={"Authorization": f"Bearer {LOCAL_API_KEY}"})
    assert resp.status_code == 200, resp.text


@pytest.mark.slow
def test_any_key_accepted_when_none_configured() -> None:
    with LocalBackend() as backend:
        ok = post(backend, {"messages": [{"role": "user", "content": "hi"}]}, headers={"api-key": "anything"})
        assert ok.status_code == 200
        assert_error(post(backend, {"messages": [{"role": "user", "content": "hi"}]}, headers={}), 401, "401")


def test_openai_sdk_azure_client(local_backend: Any) -> None:
    client = openai.AzureOpenAI(azure_endpoint=local_backend.url, api_key=LOCAL_API_KEY, api_version=API_VERSION)
    response = client.chat.completions.create(model="gpt-4o-mini", messages=user_with_image(detail="low"), max_tokens=200)  # type: ignore[arg-type]
    assert response.model == "gpt-4o-mini-2024-07-18"  # the deployment's dated registry model
    assert response.choices[0].finish_reason == "stop"
    assert "64x48" in (response.choices[0].message.content or "")
    assert response.usage is not None and response.usage.prompt_tokens > 0


@pytest.mark.slow
def test_openai_sdk_v1_routes(local_backend: Any) -> None:
    for base in ("/openai/v1", "/v1"):
        client = openai.OpenAI(base_url=local_backend.url + base, api_key=LOCAL_API_KEY)
        response = client.chat.completions.create(model="gpt-4o", messages=user_with_image())  # type: ignore[arg-type]
        assert response.choices[0].message.content
    # /v1 is OpenAI's route: its models are the names a client may pass, the deployments here.
    # /openai/v1 is Azure's v1 API: it lists models (tests/test_strict.py).
    openai_route = openai.OpenAI(base_url=local_backend.url + "/v1", api_key=LOCAL_API_KEY)
    assert [m.id for m in openai_route.models.list()] == ["gpt-4o", "gpt-4o-mini"]


def test_v1_route_errors(local_backend: Any) -> None:
    url = local_backend.url + "/v1/chat/completions"
    missing = requests.post(url, headers=HEADERS, json={"messages": [{"role": "user", "content": "hi"}]}, timeout=TIMEOUT)
    assert_error(missing, 400, "missing_required_parameter", "model")
    unknown = requests.post(url, headers=HEADERS, json={"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}, timeout=TIMEOUT)
    assert_error(unknown, 404, "DeploymentNotFound")
    assert_error(requests.get(local_backend.url + "/openai/v1/models", timeout=TIMEOUT), 401, "401")


# --- errors ------------------------------------------------------------------------------------

OK_MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({}, "missing_required_parameter", "messages"),
        ({"messages": []}, "empty_array", "messages"),
        ({"messages": "hi"}, "invalid_type", "messages"),
        ({"messages": [{"content": "hi"}]}, "missing_required_parameter", "messages[0].role"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "invalid_value", "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "missing_required_parameter", "messages[0].content"),
        ({"messages": [{"role": "user", "content": 7}]}, "invalid_type", "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "invalid_type", "messages[0].content[0].text"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "invalid_value", "messages[0].content[0].type"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "missing_required_parameter", "messages[0].content[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(TINY_PNG), "detail": "ultra"}}]}]},
            "invalid_value",
            "messages[0].content[0].image_url.detail",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": data_url(TINY_PNG)}}]}]},
            "invalid_value",
            "messages[0].content[0].type",
        ),
        ({"messages": OK_MESSAGES, "max_tokens": 0}, "integer_below_min_value", "max_tokens"),
        ({"messages": OK_MESSAGES, "max_tokens": -3}, "integer_below_min_value", "max_tokens"),
        ({"messages": OK_MESSAGES, "max_tokens": "5"}, "invalid_type", "max_tokens"),
        ({"messages": OK_MESSAGES, "max_tokens": 5.5}, "invalid_type", "max_tokens"),
        ({"messages": OK_MESSAGES, "max_tokens": True}, "invalid_type", "max_tokens"),
        ({"messages": OK_MESSAGES, "max_completion_tokens": 0}, "integer_below_min_value", "max_completion_tokens"),
        ({"messages": OK_MESSAGES, "temperature": 3}, "decimal_above_max_value", "temperature"),
        ({"messages": OK_MESSAGES, "stream": "yes"}, "invalid_type", "stream"),
        ({"messages": OK_MESSAGES, "stream_options": {"include_usage": True}}, "invalid_value", "stream_options"),
        ({"messages": OK_MESSAGES, "tempature": 1}, "unknown_parameter", "tempature"),
        ([1, 2], "invalid_type", None),
    ],
)
def test_validation_errors(local_backend: Any, body: Any, code: str, param: str | None) -> None:
    error = assert_error(post(local_backend, body), 400, code, param)
    assert error["type"] == "invalid_request_error"


def test_malformed_json(local_backend: Any) -> None:
    for raw in (b"{not json", b"", b"\xff\xfe", b'{"messages": NaN}', b"[" * 100_000):
        resp = requests.post(chat_url(local_backend), headers=HEADERS, data=raw, timeout=TIMEOUT)
        assert_error(resp, 400, "BadRequest", None)


def _image_body(url: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, image_part(url)]}]}


BMP = b"BM" + bytes(12) + (40).to_bytes(4, "little") + bytes(40)


@pytest.mark.parametrize(
    ("url", "code", "needle"),
    [
        ("https://example.com/cat.png", "invalid_image_url", "no internet"),
        ("http://127.0.0.1:9/cat.png", "invalid_image_url", "vizlab.to_data_url"),
        ("file:///etc/passwd", "invalid_image_url", "data URL"),
        ("data:image/png;base64", "invalid_image_url", "comma"),
        ("data:image/png;base64,@@@not-base64", "invalid_image_url", "base64"),
        ("data:text/plain;base64,aGVsbG8=", "invalid_image_url", "image/"),
        (data_url(b"hello, I am not an image at all"), "invalid_image_format", "png"),
        (data_url(BMP, "image/bmp"), "invalid_image_format", "image/bmp"),
        (data_url(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "image/svg+xml"), "invalid_image_format", "svg"),
        (data_url(png_bytes()[:60]), "invalid_image", "damaged"),
    ],
)
def test_image_errors(local_backend: Any, url: str, code: str, needle: str) -> None:
    error = assert_error(post(local_backend, _image_body(url)), 400, code, "messages[0].content[1].image_url.url")
    assert needle.lower() in error["message"].lower()


def test_legacy_image_errors(local_backend: Any) -> None:
    body = {"messages": [{"role": "user", "content": ["Describe:", {"image": "!!!"}]}]}
    assert_error(post(local_backend, body, api_version="2023-12-01-preview"), 400, "invalid_image_url", "messages[0].content[1].image")


def test_too_many_images(local_backend: Any) -> None:
    url = data_url(TINY_PNG)
    content = [{"type": "text", "text": "Compare"}] + [image_part(url) for _ in range(11)]
    error = assert_error(post(local_backend, {"messages": [{"role": "user", "content": content}]}), 400, "BadRequest", "messages")
    assert "11 images" in error["message"] and "10" in error["message"]
    ten = [{"type": "text", "text": "Compare"}] + [image_part(url) for _ in range(10)]
    assert post(local_backend, {"messages": [{"role": "user", "content": ten}]}).status_code == 200


@pytest.mark.slow
def test_image_too_large() -> None:
    with LocalBackend(api_key="k", max_image_bytes=1000) as backend:
        big = png_bytes(400, 400, (10, 200, 90))
        big = big + bytes(2000)  # padding after IEND keeps it a PNG but over the limit
        resp = post(backend, _image_body(data_url(big)), headers={"api-key": "k"})
        error = assert_error(resp, 400, "image_too_large", "messages[0].content[1].image_url.url")
        assert "1,000 bytes" in error["message"]


@pytest.mark.slow
def test_body_too_large() -> None:
    with LocalBackend(api_key="k", max_body_bytes=10_000) as backend:
        resp = post(backend, {"messages": [{"role": "user", "content": "x" * 20_000}]}, headers={"api-key": "k"})
        assert_error(resp, 413, "RequestEntityTooLarge")


def test_auth_errors(local_backend: Any) -> None:
    body = {"messages": OK_MESSAGES}
    missing = assert_error(post(local_backend, body, headers={}), 401, "401")
    assert "missing" in missing["message"]
    wrong = assert_error(post(local_backend, body, headers={"api-key": "nope"}), 401, "401")
    assert wrong["message"].startswith("Access denied due to invalid subscription key or wrong API endpoint")
    assert "nope" not in json.dumps(wrong)
    assert_error(post(local_backend, body, headers={"Authorization": "Bearer nope"}), 401, "401")


def test_unknown_deployment(local_backend: Any) -> None:
    error = assert_error(post(local_backend, {"messages": OK_MESSAGES}, deployment="gpt-35"), 404, "DeploymentNotFound")
    assert error["message"].startswith("The API deployment for this resource does not exist")
    assert "gpt-4o-mini" in error["message"]


@pytest.mark.parametrize(
    "version", [None, "", "2022-12-01", "2024-13-01", "latest", "2024-02-15-previewx", "2024-10-01", "2030-01-01-preview"]
)
def test_bad_api_version(local_backend: Any, version: str | None) -> None:
    """Azure's exact 404 body (vizlab.local.apiversion); the reason is in a header."""
    resp = post(local_backend, {"messages": OK_MESSAGES}, api_version=version)
    assert resp.status_code == 404, resp.text
    assert resp.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert "2024-10-21" in resp.headers["x-vizlab-detail"]


@pytest.mark.parametrize("version", ["2023-08-01-preview", "2024-02-01", "2024-10-21", "2025-04-01-preview"])
def test_supported_api_versions(local_backend: Any, version: str) -> None:
    assert post(local_backend, {"messages": OK_MESSAGES}, api_version=version).status_code == 200


def test_unknown_route_and_method(local_backend: Any) -> None:
    assert_error(requests.get(local_backend.url + "/nothing/here", timeout=TIMEOUT), 404, "404")
    assert_error(requests.get(chat_url(local_backend), headers=HEADERS, timeout=TIMEOUT), 405, "405")


@pytest.mark.parametrize("category", ["violence", "hate", "self_harm", "sexual"])
def test_content_filter(local_backend: Any, category: str) -> None:
    messages = user_with_image(f"Describe this. VIZLAB_TEST_FILTER:{category}")
    error = assert_error(post(local_backend, {"messages": messages}), 400, "content_filter", "prompt")
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    result = error["innererror"]["content_filter_result"]
    assert result[category] == {"filtered": True, "severity": "high"}
    others = {"hate", "self_harm", "sexual", "violence"} - {category}
    assert all(result[o] == SAFE for o in others)
    assert result["jailbreak"] == {"filtered": False, "detected": False}


def test_content_filter_through_sdk(local_backend: Any) -> None:
    client = openai.AzureOpenAI(azure_endpoint=local_backend.url, api_key=LOCAL_API_KEY, api_version=API_VERSION, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "VIZLAB_TEST_FILTER:jailbreak"}])
    assert info.value.code == "content_filter"


def test_openapi_document(local_backend: Any) -> None:
    doc = requests.get(local_backend.url + "/openapi.json", timeout=TIMEOUT).json()
    op = doc["paths"]["/openai/deployments/{deployment}/chat/completions"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert "messages" in schema["properties"]
    assert "/v1/chat/completions" in doc["paths"]


# --- usage, length, streaming ------------------------------------------------------------------


def test_max_tokens_cuts_with_finish_reason_length(local_backend: Any) -> None:
    body = post(local_backend, {"messages": user_with_image(), "max_tokens": 5}).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    full = post(local_backend, {"messages": user_with_image()}).json()["choices"][0]["message"]["content"]
    assert full.startswith(body["choices"][0]["message"]["content"])
    body = post(local_backend, {"messages": user_with_image(), "max_completion_tokens": 3}).json()
    assert body["choices"][0]["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 3


@pytest.mark.slow
def test_usage_matches_vizlab_tokens(local_backend: Any) -> None:
    from vizlab.tokens import count_text_tokens, estimate_request

    big = data_url(png_bytes(1500, 900, (20, 20, 200)))
    for detail in ("low", "high", None):
        messages = user_with_image(url=big, detail=detail)
        body = post(local_backend, {"messages": messages}).json()
        assert body["usage"]["prompt_tokens"] == estimate_request(messages, model="gpt-4o").prompt_tokens
        text = body["choices"][0]["message"]["content"]
        assert body["usage"]["completion_tokens"] == count_text_tokens(text, "gpt-4o")
    legacy = [{"role": "user", "content": ["Describe:", {"image": base64.b64encode(png_bytes(900, 900)).decode()}]}]
    body = post(local_backend, {"messages": legacy}, api_version="2023-08-01-preview").json()
    assert body["usage"]["prompt_tokens"] == estimate_request(legacy, model="gpt-4o").prompt_tokens


@pytest.mark.slow
def test_usage_follows_the_deployments_model_when_it_is_named_after_one() -> None:
    """A deployment named like a known model counts with that model's rules; others with token_model."""
    from vizlab.tokens import count_text_tokens, estimate_request

    messages = user_with_image(url=data_url(png_bytes(1500, 900, (20, 20, 200))), detail="high")
    deployments = ("gpt-4o", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "team-vision")
    with LocalBackend(deployments=deployments, token_model="gpt-4.1") as backend:
        for deployment, model in [
            ("gpt-4o", "gpt-4o"),
            ("gpt-4o-mini", "gpt-4o-mini"),
            ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # a dated name matches its model
            ("team-vision", "gpt-4.1"),  # unknown name: the backend's token_model
        ]:
            body = post(backend, {"messages": messages}, headers={"api-key": "k"}, deployment=deployment).json()
            assert body["usage"]["prompt_tokens"] == estimate_request(messages, model=model).prompt_tokens, deployment
            text = body["choices"][0]["message"]["content"]
            assert body["usage"]["completion_tokens"] == count_text_tokens(text, model)
        mini = post(backend, {"messages": messages}, headers={"api-key": "k"}, deployment="gpt-4o-mini").json()
        big = post(backend, {"messages": messages}, headers={"api-key": "k"}, deployment="gpt-4o").json()
        assert mini["usage"]["prompt_tokens"] > 10 * big["usage"]["prompt_tokens"]  # 2833 + 5667 a tile vs 85 + 170


def parse_sse(resp: requests.Response) -> list[Any]:
    assert resp.headers["content-type"].startswith("text/event-stream")
    events: list[Any] = []
    for block in resp.text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block[len("data: "):]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_streaming_with_requests(local_backend: Any) -> None:
    messages = user_with_image()
    full = post(local_backend, {"messages": messages}).json()
    resp = post(local_backend, {"messages": messages, "stream": True, "stream_options": {"include_usage": True}})
    assert resp.status_code == 200
    events = parse_sse(resp)
    assert events[-1] == "[DONE]"
    first = events[0]
    assert first["choices"] == [] and first["prompt_filter_results"][0]["prompt_index"] == 0
    chunks = [e for e in events[1:-1] if e["choices"]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == full["model"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == full["choices"][0]["message"]["content"]
    assert len(chunks) >= 5  # sent in several pieces
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == full["usage"]


def test_streaming_without_usage_and_with_length(local_backend: Any) -> None:
    resp = post(local_backend, {"messages": user_with_image(), "stream": True, "max_tokens": 4})
    events = parse_sse(resp)
    assert not any("usage" in e for e in events if isinstance(e, dict))
    finals = [e for e in events if isinstance(e, dict) and e["choices"] and e["choices"][0]["finish_reason"]]
    assert finals[-1]["choices"][0]["finish_reason"] == "length"


def test_streaming_with_sdk(local_backend: Any) -> None:
    client = openai.AzureOpenAI(azure_endpoint=local_backend.url, api_key=LOCAL_API_KEY, api_version=API_VERSION)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=user_with_image(), stream=True, stream_options={"include_usage": True}  # type: ignore[arg-type]
    )
    pieces, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    text = "".join(pieces)
    assert "64x48" in text and finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


# --- quotas ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_rpm_429_then_success_after_waiting() -> None:
    with LocalBackend(api_key="k", rpm=2, rate_window_s=1.5) as backend:
        headers = {"api-key": "k"}
        body = {"messages": OK_MESSAGES}
        first = post(backend, body, headers=headers)
        assert first.status_code == 200 and first.headers["x-ratelimit-remaining-requests"] == "1"
        assert post(backend, body, headers=headers).status_code == 200
        limited = post(backend, body, headers=headers)
        error = assert_error(limited, 429, "429")
        assert error["message"].startswith("Requests to the ChatCompletions_Create Operation")
        assert "Please retry after" in error["message"]
        retry_ms = int(limited.headers["retry-after-ms"])
        assert 0 < retry_ms <= 1500
        assert int(limited.headers["retry-after"]) == -(-retry_ms // 1000)
        time.sleep(retry_ms / 1000 + 0.05)
        assert post(backend, body, headers=headers).status_code == 200


@pytest.mark.slow
def test_tpm_429(local_backend: Any) -> None:
    with LocalBackend(api_key="k", tpm=100, rate_window_s=60) as backend:
        headers = {"api-key": "k"}
        ok = post(backend, {"messages": OK_MESSAGES, "max_tokens": 50}, headers=headers)
        assert ok.status_code == 200
        assert int(ok.headers["x-ratelimit-remaining-tokens"]) == 100 - 8 - 50
        limited = post(backend, {"messages": OK_MESSAGES, "max_tokens": 50}, headers=headers)
        assert_error(limited, 429, "429")
        assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.slow
def test_sdk_sees_rate_limit() -> None:
    with LocalBackend(api_key="k", rpm=1, rate_window_s=30) as backend:
        client = openai.AzureOpenAI(azure_endpoint=backend.url, api_key="k", api_version=API_VERSION, max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert info.value.response.headers["retry-after-ms"]


# --- robustness --------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_urls = st.sampled_from(
    [data_url(TINY_PNG), data_url(b"junk"), "data:image/png;base64,", "https://x.test/a.png", "data:,", "", "data:image/gif;base64,R0lGODlh"]
) | st.text(max_size=20)
_image_url = st.fixed_dictionaries({"url": _urls}, optional={"detail": st.sampled_from(["low", "high", "auto", "max", ""]) | _json})
_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=20) | _json}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": _image_url | _json}),
    st.fixed_dictionaries({"image": st.sampled_from([base64.b64encode(TINY_PNG).decode(), "abc", ""]) | _json}),
    st.text(max_size=10),
    _json,
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "bogus"]) | _json},
    optional={"content": st.lists(_part, max_size=3) | st.text(max_size=20) | _json, "name": _json, "tool_call_id": _json},
)
_body = st.one_of(
    st.fixed_dictionaries(
        {"messages": st.lists(_message, max_size=3) | _json},
        optional={
            "max_tokens": st.integers(-5, 50) | _json,
            "stream": st.booleans() | _json,
            "stream_options": _json,
            "n": st.integers(-1, 3) | _json,
            "temperature": _json,
            "stop": _json,
            "model": st.sampled_from(["gpt-4o", "nope"]) | _json,
        },
    ),
    _json,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=_body, version=st.sampled_from(["2023-08-01-preview", "2024-10-21"]), route=st.sampled_from(["azure", "v1"]))
def test_fuzzed_bodies_never_500(local_backend: Any, body: Any, version: str, route: str) -> None:
    url = chat_url(local_backend, api_version=version) if route == "azure" else local_backend.url + "/openai/v1/chat/completions"
    resp = requests.post(url, headers=HEADERS, data=json.dumps(body), timeout=20)
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert set(resp.json()["error"]) >= {"code", "message", "param", "type"}
    elif resp.headers["content-type"].startswith("text/event-stream"):
        assert resp.text.endswith("data: [DONE]\n\n")
    else:
        assert resp.json()["object"] == "chat.completion"


_near_valid_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=20)}),
    st.fixed_dictionaries(
        {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": _urls}, optional={"detail": st.sampled_from(["low", "high", "auto", "max"])})}
    ),
)
_near_valid_body = st.fixed_dictionaries(
    {"messages": st.lists(st.fixed_dictionaries({"role": st.just("user"), "content": st.lists(_near_valid_part, min_size=1, max_size=3)}), min_size=1, max_size=2)},
    optional={"max_tokens": st.integers(1, 30), "stream": st.booleans(), "n": st.integers(1, 2), "stop": st.text(max_size=3)},
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=_near_valid_body)
def test_fuzzed_image_parts_never_500(local_backend: Any, body: Any) -> None:
    """Structurally valid bodies whose image URLs and details are junk, so image paths are reached."""
    resp = requests.post(chat_url(local_backend), headers=HEADERS, data=json.dumps(body), timeout=20)
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert resp.json()["error"]["param"].startswith("messages[")


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_fuzzed_raw_bytes_never_500(local_backend: Any, raw: bytes) -> None:
    resp = requests.post(chat_url(local_backend), headers=HEADERS, data=raw, timeout=20)
    assert resp.status_code in (200, 400), resp.text


def test_concurrent_clients_get_their_own_replies(local_backend: Any) -> None:
    """20 threads, each with its own image size and colour; no reply may be crossed."""
    colours = [(200, 30, 30), (30, 160, 40), (30, 40, 200), (240, 220, 20)]
    names = ["red", "green", "blue", "yellow"]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            width, height = 50 + i, 30 + 2 * i
            question = "What size is it?" if i % 2 else "Which colours do you see?"
            messages = user_with_image(question, data_url(png_bytes(width, height, colours[i % 4])))
            resp = post(local_backend, {"messages": messages})
            results[i] = resp.json()["choices"][0]["message"]["content"]
        except BaseException as e:  # surfaced in the main thread below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    for i in range(20):
        if i % 2:
            assert f"{50 + i}x{30 + 2 * i}" in results[i], results[i]
        else:
            assert f"{names[i % 4]} (100%)" in results[i], results[i]


# --- running it --------------------------------------------------------------------------------


@pytest.mark.slow
def test_backend_lifecycle() -> None:
    backend = LocalBackend(deployments=("a", "b"))
    port = backend.port  # known before start
    assert backend.url == f"http://127.0.0.1:{port}"
    assert backend.start() is backend and backend.start() is backend  # idempotent
    assert requests.get(backend.url + "/healthz", timeout=TIMEOUT).json()["deployments"] == ["a", "b"]
    backend.stop()
    backend.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    with backend:  # restarts on the same port
        assert backend.port == port
        assert requests.get(backend.url + "/healthz", timeout=TIMEOUT).status_code == 200


@pytest.mark.slow
def test_url_after_stop_binds_no_socket() -> None:
    backend = LocalBackend()
    with backend:
        url = backend.url
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    assert backend.url == url and backend.port == int(url.rsplit(":", 1)[1])
    assert backend._sock is None  # nothing left open for the garbage collector to warn about
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/healthz", timeout=5)


def test_refuses_non_loopback_and_bad_settings() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalBackend(host="0.0.0.0")
    with pytest.raises(TypeError, match="unknown settings"):
        LocalBackend(api_kee="x")
    with pytest.raises(ValueError):
        BackendConfig(deployments=())
    assert create_app().title == "vizlab local backend"


@pytest.mark.parametrize(
    "settings",
    [{"rpm": "5"}, {"tpm": 0}, {"latency_s": -1}, {"latency_s": "1"}, {"rate_window_s": 0}, {"max_images": 0},
     {"deployments": ("gpt-4o", "")}, {"batch_delay_s": float("nan")}],
)  # fmt: skip
def test_bad_settings_are_refused_with_their_name(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        BackendConfig(**settings)


def test_config_repr_hides_the_key() -> None:
    assert "s3cret-key" not in repr(BackendConfig(api_key="s3cret-key"))
    assert "s3cret-key" not in repr(LocalBackend(api_key="s3cret-key"))


@pytest.mark.slow
def test_latency_is_simulated_without_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated latency is an asyncio sleep: four requests are inside it at once.

    No wall-clock assertion (speed belongs in bench/): the sleep waits until all four requests
    are in it, which can only happen if one sleeping request does not block the others.
    """
    import asyncio

    real_sleep = asyncio.sleep
    inside = peak = 0

    async def sleep_until_all_are_in(seconds: float) -> None:
        nonlocal inside, peak
        inside += 1  # the server's event loop runs these one at a time: no lock needed
        peak = max(peak, inside)
        try:
            for _ in range(400):  # up to ~20 s before giving up (then peak < 4 fails the test)
                if peak >= 4:
                    return
                await real_sleep(0.05)
        finally:
            inside -= 1

    with LocalBackend(latency_s=0.5, stream_chunk_delay_s=0.0) as backend:
        assert backend.state is not None
        backend.state.sleep = sleep_until_all_are_in  # the simulated latency's wait (a seam of the state)
        threads = [
            threading.Thread(target=post, args=(backend, {"messages": OK_MESSAGES}), kwargs={"headers": {"api-key": "x"}})
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peak == 4


@pytest.fixture
def cli_process() -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vizlab.local", "--port", "0", "--api-key", "cli-key", "--deployment", "gpt-4o", "--deployment", "vision"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.slow
def test_cli_serves_until_interrupted(cli_process: subprocess.Popen[str]) -> None:
    assert cli_process.stdout is not None
    line = cli_process.stdout.readline().strip()
    assert line.startswith("vizlab local backend: http://127.0.0.1:")
    assert line.endswith("(deployments: gpt-4o, vision)")
    url = line.split(": ", 1)[1].split(" ")[0]
    resp = requests.post(
        f"{url}/openai/deployments/vision/chat/completions?api-version={API_VERSION}",
        headers={"api-key": "cli-key"},
        json={"messages": OK_MESSAGES},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200
    cli_process.send_signal(signal.SIGINT)
    assert cli_process.wait(timeout=10) == 0


@pytest.mark.slow
def test_cli_refuses_public_host() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vizlab.local", "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "loopback" in proc.stderr


# --- model limits: context window and max_tokens -----------------------------------------------


def _long_prompt(words: int) -> list[dict[str, Any]]:
    """A system message of ``words`` words (one token each) and a short user turn."""
    return [{"role": "system", "content": "word " * words}, {"role": "user", "content": "Hi"}]


def test_context_window_exceeded_gets_400_with_the_services_message(local_backend: Any) -> None:
    from vizlab.tokens import estimate_request

    messages = _long_prompt(130_000)
    prompt = estimate_request(messages, model="gpt-4o").prompt_tokens
    assert prompt > 128_000
    error = assert_error(post(local_backend, {"messages": messages}), 400, "context_length_exceeded", "messages")
    assert error["type"] == "invalid_request_error"
    assert error["message"] == (
        f"This model's maximum context length is 128000 tokens. However, your messages resulted in {prompt} tokens. "
        "Please reduce the length of the messages."
    )


@pytest.mark.slow
def test_prompt_plus_max_tokens_over_the_window_gets_400(local_backend: Any) -> None:
    from vizlab.tokens import estimate_request

    messages = _long_prompt(120_000)
    prompt = estimate_request(messages, model="gpt-4o").prompt_tokens
    error = assert_error(post(local_backend, {"messages": messages, "max_tokens": 16_384}), 400, "context_length_exceeded", "messages")
    assert error["message"] == (
        f"This model's maximum context length is 128000 tokens. However, you requested {prompt + 16_384} tokens "
        f"({prompt} in the messages, 16384 in the completion). Please reduce the length of the messages or completion."
    )
    fits = post(local_backend, {"messages": messages, "max_tokens": 128_000 - prompt})  # exactly the window
    assert fits.status_code == 200, fits.text
    assert fits.json()["usage"]["prompt_tokens"] == prompt


@pytest.mark.parametrize(("field", "deployment", "limit"), [
    ("max_tokens", "gpt-4o", 16_384), ("max_completion_tokens", "gpt-4o", 16_384), ("max_tokens", "gpt-4o-mini", 16_384),
])  # fmt: skip
def test_max_tokens_over_the_models_output_limit(local_backend: Any, field: str, deployment: str, limit: int) -> None:
    huge = 10**30
    error = assert_error(post(local_backend, {"messages": OK_MESSAGES, field: huge}, deployment=deployment), 400, "invalid_value", field)
    assert error["message"] == (
        f"{field} is too large: {huge}. This model supports at most {limit} completion tokens, whereas you provided {huge}."
    )
    assert_error(post(local_backend, {"messages": OK_MESSAGES, field: limit + 1}, deployment=deployment), 400, "invalid_value", field)
    assert post(local_backend, {"messages": OK_MESSAGES, field: limit}, deployment=deployment).status_code == 200


@pytest.mark.slow
def test_limits_follow_each_deployments_token_model() -> None:
    """gpt-4o: 128 k window, 16,384 out; gpt-4.1: 1,047,576 and 32,768; an unknown name: token_model (o3)."""
    headers = {"api-key": "k"}
    messages = _long_prompt(150_000)
    with LocalBackend(deployments=("gpt-4o", "gpt-4.1-mini-2025-04-14", "team"), token_model="o3") as backend:
        assert_error(post(backend, {"messages": messages}, headers=headers, deployment="gpt-4o"), 400, "context_length_exceeded")
        assert post(backend, {"messages": messages}, headers=headers, deployment="gpt-4.1-mini-2025-04-14").status_code == 200
        assert post(backend, {"messages": messages}, headers=headers, deployment="team").status_code == 200  # o3: 200 k
        body = {"messages": OK_MESSAGES, "max_tokens": 32_768}
        assert post(backend, body, headers=headers, deployment="gpt-4.1-mini-2025-04-14").status_code == 200
        error = assert_error(post(backend, body, headers=headers, deployment="gpt-4o"), 400, "invalid_value", "max_tokens")
        assert "at most 16384 completion tokens" in error["message"]
        # "team" counts as o3, a reasoning model: max_tokens is refused, max_completion_tokens is bounded.
        assert_error(post(backend, body, headers=headers, deployment="team"), 400, "unsupported_parameter", "max_tokens")
        bounded = {"messages": OK_MESSAGES, "max_completion_tokens": 100_001}
        error = assert_error(post(backend, bounded, headers=headers, deployment="team"), 400, "invalid_value")
        assert "at most 100000 completion tokens" in error["message"]


def test_model_limits_table() -> None:
    from vizlab.local.requests.limits import DEFAULT_LIMITS, MODEL_LIMITS, limits_for

    expected = {  # model: (context, max output)
        "gpt-4o": (128_000, 16_384), "gpt-4o-mini": (128_000, 16_384), "gpt-4o-2024-08-06": (128_000, 16_384),
        "gpt-4o-2024-05-13": (128_000, 4_096), "gpt-4.1": (1_047_576, 32_768), "gpt-4.1-nano": (1_047_576, 32_768),
        "gpt-4-turbo": (128_000, 4_096), "o1": (200_000, 100_000), "o3": (200_000, 100_000),
        "o4-mini": (200_000, 100_000), "gpt-5": (400_000, 128_000), "gpt-5-mini": (400_000, 128_000),
        "gpt-5-nano": (400_000, 128_000), "gpt-5-chat-latest": (128_000, 16_384),
    }  # fmt: skip
    for model, (context, output) in expected.items():
        name, limits = limits_for(model)
        assert name is not None and (limits.context, limits.max_output) == (context, output), model
    assert limits_for("my-own-model") == (None, DEFAULT_LIMITS)
    assert all(limits.max_output <= limits.context for limits in MODEL_LIMITS.values())
    # Every model vizlab.tokens knows has listed limits (no silent fallback to the default).
    from vizlab import models
    from vizlab.tokens import known_models

    # (gpt-image-1 is no chat model: the registry lists no context window for it.)
    chat_models = [m for m in known_models() if models.lookup(m).context_window > 0]
    assert [m for m in chat_models if limits_for(m)[0] is None] == []


@pytest.mark.slow
def test_gpt5_caps_the_prompt_at_272k() -> None:
    with LocalBackend(deployments=("gpt-5",)) as backend:
        error = assert_error(post(backend, {"messages": _long_prompt(280_000)}, headers={"api-key": "k"}, deployment="gpt-5"),
                             400, "context_length_exceeded", "messages")  # fmt: skip
        assert error["message"].startswith("Input tokens exceed the configured limit of 272,000 tokens.")


@pytest.mark.slow
def test_unlisted_token_model_uses_the_default_limits_and_says_so() -> None:
    from vizlab import tokens
    from vizlab.models import registry

    # A token rule registered without limits (register_model states none), undone after the test.
    with registry.registrations_undone():
        tokens.register_model("vizlab-test-unlisted", tokens.rule_for("gpt-4o"))
        with LocalBackend(deployments=("vizlab-test-unlisted",)) as backend:
            resp = post(backend, {"messages": OK_MESSAGES, "max_tokens": 4_097}, headers={"api-key": "k"},
                        deployment="vizlab-test-unlisted")  # fmt: skip
            error = assert_error(resp, 400, "invalid_value", "max_tokens")
            assert "at most 4096 completion tokens" in error["message"] and "no limits are listed" in error["message"]


def test_the_prompt_is_counted_once_for_the_check_and_usage(local_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    state = local_backend.state  # the running backend's seams (vizlab.local.state.BackendState)
    real = state.count_prompt

    def counting(messages: list[dict[str, Any]], model: str, **kw: Any) -> Any:
        calls.append(len(json.dumps(messages)))
        return real(messages, model, **kw)

    monkeypatch.setattr(state, "count_prompt", counting)
    ok = post(local_backend, {"messages": _long_prompt(1000)})
    assert ok.status_code == 200 and ok.json()["usage"]["prompt_tokens"] == 1013
    assert len(calls) == 1
    assert_error(post(local_backend, {"messages": _long_prompt(130_000)}), 400, "context_length_exceeded")
    assert len(calls) == 2  # once more: the refused request was counted a single time
    assert_error(post(local_backend, {"messages": _long_prompt(10), "max_tokens": 10**6}), 400, "invalid_value")
    assert len(calls) == 2  # max_tokens is refused before anything is counted


@pytest.mark.slow
def test_refused_requests_use_no_token_quota() -> None:
    with LocalBackend(tpm=1000) as backend:
        headers = {"api-key": "k"}
        assert_error(post(backend, {"messages": OK_MESSAGES, "max_tokens": 20_000}, headers=headers), 400, "invalid_value")
        ok = post(backend, {"messages": OK_MESSAGES, "max_tokens": 10}, headers=headers)
        assert ok.status_code == 200 and int(ok.headers["x-ratelimit-remaining-tokens"]) == 1000 - 8 - 10


# --- quiet disconnects and an orderly stop -------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else f"{r.name}: {r.getMessage()}"
                for r in self.records if r.levelno >= logging.ERROR]  # fmt: skip


@pytest.fixture
def uvicorn_log() -> Iterator[_Records]:
    """Every record uvicorn logs (its loggers do not propagate to the root, so caplog misses them).

    Attach after the backend started: uvicorn.Config re-applies its logging config on start.
    """
    handler = _Records()
    logger = logging.getLogger("uvicorn")
    yield handler
    logger.removeHandler(handler)


def _attach(handler: _Records) -> None:
    logging.getLogger("uvicorn").addHandler(handler)


def _partial_upload(port: int, path: str, headers: dict[str, str], head: bytes, declared: int) -> None:
    """Send the headers and the first bytes of a body, then hang up."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {declared}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + head)
        time.sleep(0.3)  # the handler is now waiting in request.stream() for the rest


@pytest.mark.slow
def test_client_disconnect_mid_upload_is_quiet(uvicorn_log: _Records) -> None:
    with LocalBackend(api_key="k") as backend:
        _attach(uvicorn_log)
        chat = f"/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}"
        _partial_upload(backend.port, chat, {"api-key": "k", "Content-Type": "application/json"}, b'{"messages": [', 100_000)
        files = f"/openai/files?api-version={API_VERSION}"
        form = {"api-key": "k", "Content-Type": "multipart/form-data; boundary=xyz"}
        _partial_upload(backend.port, files, form, b'--xyz\r\nContent-Disposition: form-data; name="file"', 100_000)
        batches = f"/openai/batches?api-version={API_VERSION}"
        _partial_upload(backend.port, batches, {"api-key": "k", "Content-Type": "application/json"}, b'{"input', 5_000)
        time.sleep(0.5)
        # The backend still serves, and nothing was logged as an error.
        assert post(backend, {"messages": OK_MESSAGES}, headers={"api-key": "k"}).status_code == 200
    assert uvicorn_log.errors() == []


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_stop_with_a_request_in_flight_is_orderly(uvicorn_log: _Records, stream: bool) -> None:
    """A request still running when stop() is called: a bounded stop, a 503 (or an ended stream), no ERROR log."""
    settings: dict[str, Any] = {"stream_chunk_delay_s": 1.0} if stream else {"latency_s": 30.0}
    backend = LocalBackend(api_key="k", **settings).start()
    _attach(uvicorn_log)
    inflight = backend._app.state.vizlab_inflight  # type: ignore[union-attr]
    result: dict[str, Any] = {}

    def client() -> None:
        try:
            result["response"] = post(backend, {"messages": user_with_image(), "stream": stream}, headers={"api-key": "k"})
        except requests.RequestException as e:
            result["error"] = e

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 10
    while len(inflight) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(inflight) == 1
    time.sleep(0.2)  # inside the latency sleep / between stream chunks
    started = time.monotonic()
    backend.stop()
    took = time.monotonic() - started
    thread.join(timeout=10)
    assert not thread.is_alive()
    # stop() did not wait out the 30-s request: it was answered 503 (or its stream cut) below.
    # The lower bound cannot flake: the request had its grace period first.
    assert took >= 0.9, f"stop() took {took:.1f} s"
    assert uvicorn_log.errors() == []
    response = result.get("response")
    assert response is not None, result
    if stream:
        assert response.status_code == 200 and "data: [DONE]" not in response.text  # ended early
    else:
        assert_error(response, 503, "ServiceUnavailable")
    with pytest.raises(requests.ConnectionError):
        requests.get(backend.url + "/healthz", timeout=5)


@pytest.mark.slow
def test_stop_lets_quick_requests_finish() -> None:
    """A request that ends within the grace period gets its normal answer."""
    backend = LocalBackend(api_key="k", latency_s=0.4).start()
    inflight = backend._app.state.vizlab_inflight  # type: ignore[union-attr]
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(r=post(backend, {"messages": OK_MESSAGES}, headers={"api-key": "k"})))
    thread.start()
    while len(inflight) == 0:
        time.sleep(0.01)
    backend.stop()
    thread.join(timeout=10)
    assert result["r"].status_code == 200


def _batch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vizlab-batch-") and t.is_alive()]


@pytest.mark.slow
def test_stop_ends_the_batch_workers() -> None:
    backend = LocalBackend(api_key="k", batch_delay_s=30.0, latency_s=0.0).start()
    lines = "".join(
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/chat/completions",
                    "body": {"model": "gpt-4o", "messages": OK_MESSAGES}}) + "\n"
        for i in range(3)
    )  # fmt: skip
    with openai.AzureOpenAI(azure_endpoint=backend.url, api_key="k", api_version=API_VERSION, max_retries=0) as client:
        uploaded = client.files.create(file=("in.jsonl", lines.encode()), purpose="batch")
        batches = [client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h")
                   for _ in range(2)]  # fmt: skip
    store = backend.state.files  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while any(store.get_batch(b.id).completed < 1 for b in batches) and time.monotonic() < deadline:
        time.sleep(0.02)  # each worker answered its first line and sleeps batch_delay_s
    assert len(_batch_threads()) >= 2
    backend.stop()
    # The workers were ended, not waited for: each answered one line of three and was cancelled
    # (below); waiting out batch_delay_s=30 would have completed every line.
    assert _batch_threads() == []
    for b in batches:  # ended as a cancel would end them: the answered line is kept
        snapshot = store.snapshot(store.get_batch(b.id))
        assert snapshot["status"] == "cancelled" and snapshot["request_counts"]["completed"] == 1
        assert snapshot["output_file_id"] is not None
