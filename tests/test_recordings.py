"""Contract tests from real recordings: each exchange in tests/data/recordings (a real Azure OpenAI or
OpenAI reply, with its source) is sent again to the built-in backend, and the reply's shape is
compared with the recording's: field names, nesting, types, the stream's event sequence and the
recorded headers. A field the service sent that the backend lacks fails, unless listed in
ALLOWED_MISSING with its reason. Images are replaced by a generated card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

import vizlab
from vizlab.datasets import text_card
from vizlab.local import LocalBackend

KEY = "recordings-key"
RECORDINGS = Path(__file__).parent / "data" / "recordings"
CARD_URL = vizlab.to_data_url(text_card("KIWI", font_px=80, size=(400, 200)))

# Fields real replies carry that the backend leaves out, and why.
ALLOWED_MISSING = {
    "service_tier": "OpenAI's tier of service, and Azure's in streams: the backend has one tier; Azure's non-stream "
                    "gpt-4.1 recording (azure_chat_text.json) has none either",
    "latency_checkpoint": "Azure-internal timings on the usage chunk (undocumented, 2026-09 record)",
    "routing": "Azure-internal serving replica on the usage chunk (undocumented, 2026-09 record)",
}


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), stream_chunk_delay_s=0) as b:
        yield b


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDINGS / name).read_text(encoding="utf-8")))


def _with_card(value: Any) -> Any:
    """The recorded request with every removed image replaced by the test card."""
    if isinstance(value, dict):
        return {k: (CARD_URL if k == "url" and v == "<image removed>" else _with_card(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_card(v) for v in value]
    return value


def _send(backend: LocalBackend, recording: dict[str, Any]) -> requests.Response:
    body = _with_card(recording["request"])
    if recording["service"] == "azure":  # Azure's dated route, the deployment in the path
        url = f"{backend.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        body.pop("model", None)
    else:  # OpenAI's route
        url, body["model"] = f"{backend.url}/v1/chat/completions", "gpt-4o"
    return requests.post(url, json=body, headers={"api-key": KEY, "authorization": f"Bearer {KEY}"}, timeout=60)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def shape_differences(recorded: Any, got: Any, path: str = "$") -> list[str]:
    """Where ``got`` lacks a field of ``recorded`` or holds another type (a recorded null is not compared).

    >>> shape_differences({"a": 1, "b": {"c": "x"}, "d": None}, {"a": 2, "b": {}})
    ['$.b.c: missing', '$.d: missing']
    """
    if recorded is None:
        return []
    if _kind(recorded) != _kind(got):
        return [f"{path}: recorded {_kind(recorded)}, got {_kind(got)}"]
    problems: list[str] = []
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            if key not in got:
                if key not in ALLOWED_MISSING:
                    problems.append(f"{path}.{key}: missing")
                continue
            problems += shape_differences(value, got[key], f"{path}.{key}")
    elif isinstance(recorded, list) and recorded and got:
        problems += shape_differences(recorded[0], got[0], f"{path}[0]")
    elif isinstance(recorded, list) and recorded and not got:
        problems.append(f"{path}: recorded a non-empty array, got an empty one")
    return problems


@pytest.mark.parametrize("name", ["azure_chat_text.json", "openai_chat_image.json", "openai_chat_tool.json"])
def test_reply_has_the_recorded_shape(backend: LocalBackend, name: str) -> None:
    recording = _load(name)
    assert recording["source"]["what"]  # every recording says where it comes from
    resp = _send(backend, recording)
    assert resp.status_code == recording["status"], resp.text
    assert shape_differences(recording["response"], resp.json()) == []
    for header in recording.get("headers", []):
        assert resp.headers[header].split(";")[0] == "application/json"


def _stream_kind(chunk: dict[str, Any]) -> str:
    if not chunk.get("object"):
        return "prompt_filter"
    if not chunk["choices"]:
        return "usage"
    choice = chunk["choices"][0]
    if choice.get("finish_reason"):
        return "finish"
    return "role" if "role" in choice["delta"] else "content"


def test_stream_has_the_recorded_sequence_and_chunk_shapes(backend: LocalBackend) -> None:
    recording = _load("azure_chat_stream.json")
    resp = _send(backend, recording)
    assert resp.status_code == 200
    events = [line[6:] for line in resp.text.splitlines() if line.startswith("data: ")]
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    kinds = [_stream_kind(c) for c in chunks] + (["[DONE]"] if events[-1] == "[DONE]" else [])
    collapsed = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
    assert collapsed == recording["sequence"]
    first_of = {kind: chunk for kind, chunk in zip(kinds, chunks)}
    for kind, recorded in recording["chunks"].items():
        assert shape_differences(recorded, first_of[kind]) == [], kind


def test_an_unlisted_missing_field_fails() -> None:
    assert shape_differences({"system_fingerprint": "fp"}, {}) == ["$.system_fingerprint: missing"]
    assert shape_differences({"service_tier": "default"}, {}) == []  # listed, with its reason
