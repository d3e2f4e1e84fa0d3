"""The backend's own sample images (vizlab.local.samples), over real HTTP on loopback.

The web-URL flow of the seeds: an ``image_url`` part holding an http(s) link. The backend serves
``/samples/NAME.jpg`` and accepts URLs of exactly those on its own origin; anything else keeps
the 400 it always sent, and nothing is ever fetched.
"""

from __future__ import annotations

import io
from typing import Any

import openai
import pytest
import requests
from PIL import Image

import vizlab
from vizlab.local import LocalBackend, samples

API_VERSION = "2024-10-21"


def _ask(backend: LocalBackend, url: str, question: str = "What text is on it?", **extra: Any) -> requests.Response:
    body = {
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": question},
                {"type": "image_url", "image_url": {"url": url, **extra}},
            ]},
        ],
        "max_tokens": 100,
    }
    return requests.post(
        f"{backend.url}/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}",
        headers={"api-key": "k"},
        json=body,
        timeout=30,
    )


@pytest.fixture(scope="module")
def backend() -> Any:
    with LocalBackend(api_key="k") as running:
        yield running


def test_lists_and_serves_every_sample_as_jpeg(backend: LocalBackend) -> None:
    listing = requests.get(f"{backend.url}/samples/", timeout=10).json()["data"]
    assert [entry["name"] for entry in listing] == list(samples.SAMPLES)
    for entry in listing:
        assert entry["url"] == f"{backend.url}/samples/{entry['name']}"
        got = requests.get(entry["url"], timeout=10)
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/jpeg"
        assert got.content == samples.sample_bytes(entry["name"])
        assert len(got.content) == entry["bytes"]
        Image.open(io.BytesIO(got.content)).verify()


def test_unknown_sample_is_an_azure_shaped_404(backend: LocalBackend) -> None:
    got = requests.get(f"{backend.url}/samples/car-crash.jpg", timeout=10)
    assert got.status_code == 404
    error = got.json()["error"]
    assert "car-crash.jpg" in error["message"] and "parking-sign.jpg" in error["message"]


@pytest.mark.slow
def test_sample_url_is_read_and_counted_like_the_image_itself(backend: LocalBackend) -> None:
    url = f"{backend.url}/samples/parking-sign.jpg"
    by_url = _ask(backend, url, detail="high")
    assert by_url.status_code == 200, by_url.text
    text = by_url.json()["choices"][0]["message"]["content"]
    assert "PARKING" in text.replace(" ", "")
    # The same bytes sent as a data URL are billed the same: the service counts the fetched image.
    data_url = vizlab.to_data_url(samples.sample_bytes("parking-sign.jpg"))
    by_data = _ask(backend, data_url, detail="high")
    assert by_url.json()["usage"]["prompt_tokens"] == by_data.json()["usage"]["prompt_tokens"]
    assert by_url.json()["choices"][0]["message"]["content"] == by_data.json()["choices"][0]["message"]["content"]


def test_sample_url_through_the_openai_sdk_on_both_routes(backend: LocalBackend) -> None:
    url = f"{backend.url}/samples/shapes.jpg"
    messages: Any = [{"role": "user", "content": [
        {"type": "text", "text": "How many circles are there?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]}]
    azure = openai.AzureOpenAI(azure_endpoint=backend.url, api_key="k", api_version=API_VERSION)
    v1 = openai.OpenAI(base_url=f"{backend.url}/openai/v1/", api_key="k")
    for sdk in (azure, v1):
        reply = sdk.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=100)
        assert "3 circles" in (reply.choices[0].message.content or "")


@pytest.mark.parametrize(
    "make_url, why",
    [
        (lambda b: "https://example.com/samples/shapes.jpg", "another host"),
        (lambda b: b.url.replace("127.0.0.1", "localhost") + "/samples/shapes.jpg", "another spelling of the host"),
        (lambda b: f"http://127.0.0.1:{b.port + 1 if b.port < 65535 else 1}/samples/shapes.jpg", "another port"),
        (lambda b: b.url.replace("http://", "https://") + "/samples/shapes.jpg", "another scheme"),
        (lambda b: f"{b.url}/openai/v1/models", "not a sample path"),
        (lambda b: f"{b.url}/samples/shapes.jpg?x=1", "a query string"),
    ],
)
def test_other_urls_keep_the_no_internet_400(backend: LocalBackend, make_url: Any, why: str) -> None:
    got = _ask(backend, make_url(backend))
    assert got.status_code == 400, why
    error = got.json()["error"]
    assert error["code"] == "invalid_image_url"
    assert error["param"] == "messages[0].content[1].image_url.url"
    assert "no internet" in error["message"] and "/samples/" in error["message"]


def test_unknown_sample_on_own_origin_lists_what_exists(backend: LocalBackend) -> None:
    got = _ask(backend, f"{backend.url}/samples/car-crash.jpg")
    assert got.status_code == 400
    error = got.json()["error"]
    assert error["code"] == "invalid_image_url"
    assert error["param"] == "messages[0].content[1].image_url.url"
    assert f"{backend.url}/samples/grace-hopper.jpg" in error["message"]


@pytest.mark.slow
def test_a_url_from_another_backend_is_refused(backend: LocalBackend) -> None:
    with LocalBackend(api_key="k") as other:
        got = _ask(backend, f"{other.url}/samples/shapes.jpg")
    assert got.status_code == 400
    assert got.json()["error"]["code"] == "invalid_image_url"


def test_origin_matching_unit() -> None:
    origin = "http://127.0.0.1:8000"
    assert samples.sample_name(f"{origin}/samples/shapes.jpg", origin) == "shapes.jpg"
    assert samples.sample_name(f"{origin}/samples/shapes.jpg", None) is None
    assert samples.sample_name("http://user@127.0.0.1:8000/samples/shapes.jpg", origin) is None
    assert samples.sample_name("data:image/png;base64,AAAA", origin) is None
    assert samples.sample_name("http://[::1", origin) is None
