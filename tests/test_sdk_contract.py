"""Every response shape the built-in backend gives, checked against contracts nobody here wrote:
openai-python's own pydantic types (validated with ``strict=True``: no coercion, every required
field present with its type) and the example responses printed in the seeds (key by key, type by
type: every key the service's example has, ours has, with the same JSON type)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from openai.types import Batch, FileObject, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseItemList, ResponseStreamEvent
from openai.types.shared import ErrorObject
from pydantic import TypeAdapter

import vizlab
from vizlab.datasets import text_card
from vizlab.local import LocalBackend

KEY = "contract-key"
SEEDS = Path("/work/shared/seeds")
SIGN_URL = vizlab.to_data_url(text_card("OPEN 9-5", font_px=60, size=(600, 300)))
USER = [{"role": "user", "content": [{"type": "text", "text": "What does it say?"},
                                     {"type": "image_url", "image_url": {"url": SIGN_URL, "detail": "high"}}]}]
RESPONSES_INPUT = [{"role": "user", "content": [{"type": "input_text", "text": "Read"},
                                                {"type": "input_image", "image_url": SIGN_URL, "detail": "low"}]}]
TOOL = {"type": "function", "function": {"name": "save", "parameters": {
    "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "sign", "strict": True, "schema": {
    "type": "object", "additionalProperties": False, "required": ["text"], "properties": {"text": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), stream_chunk_delay_s=0) as b:
        yield b


def post(backend: LocalBackend, path: str, body: Any, **kw: Any) -> requests.Response:
    return requests.post(backend.url + path, json=body, headers={"api-key": KEY}, timeout=60, **kw)


def sse_payloads(resp: requests.Response) -> list[dict[str, Any]]:
    out = []
    for line in resp.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:]))
    return out


CHAT_BODIES = {
    "plain": {},
    "json_schema": {"response_format": JSON_SCHEMA},
    # The service refuses json_object unless a message says "json" (vizlab.local.validation).
    "json_object": {"response_format": {"type": "json_object"},
                    "messages": [{"role": "system", "content": "Reply in JSON."}, *USER]},
    "tool_call": {"tools": [TOOL], "tool_choice": "required"},
    "logprobs": {"logprobs": True, "top_logprobs": 2},
    "refusal": {"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": {
        "type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]}}}},
    "length": {"max_tokens": 3},
}


@pytest.mark.parametrize("kind", sorted(CHAT_BODIES))
def test_chat_completion_validates_strictly(backend: LocalBackend, kind: str) -> None:
    resp = post(backend, "/openai/v1/chat/completions", {"model": "gpt-4o", "messages": USER, **CHAT_BODIES[kind]})
    assert resp.status_code == 200, resp.text
    ChatCompletion.model_validate(resp.json(), strict=True)


@pytest.mark.parametrize("kind", sorted(CHAT_BODIES))
def test_chat_chunks_validate_strictly(backend: LocalBackend, kind: str) -> None:
    body = {"model": "gpt-4o", "messages": USER, "stream": True, "stream_options": {"include_usage": True},
            **CHAT_BODIES[kind]}
    chunks = sse_payloads(post(backend, "/openai/v1/chat/completions", body))
    # Azure opens with a chunk carrying only prompt_filter_results (id "", object ""): the SDK skips
    # it without validating; it is compared with Azure's shape, not the SDK type.
    first, rest = chunks[0], chunks[1:]
    assert first == {"id": "", "object": "", "created": 0, "model": "", "choices": [],
                     "prompt_filter_results": first["prompt_filter_results"]}
    assert rest and all(ChatCompletionChunk.model_validate(c, strict=True) for c in rest)
    assert rest[-1]["usage"]["total_tokens"] > 0


ERRORS = [
    ("/openai/v1/chat/completions", {"model": "gpt-4o", "messages": []}, 400),
    ("/openai/v1/chat/completions", {"model": "nope", "messages": USER}, 400),  # Azure v1: unknown_model
    ("/v1/chat/completions", {"model": "nope", "messages": USER}, 404),
    ("/openai/v1/chat/completions", {"model": "gpt-4o", "messages": USER, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {"type": "object"}}}}, 400),
    ("/openai/v1/responses", {"model": "gpt-4o", "input": "x", "previous_response_id": "resp_missing"}, 400),
    ("/openai/v1/responses", {"model": "gpt-4o"}, 400),
]


@pytest.mark.parametrize("path,body,status", ERRORS)
def test_error_bodies_validate(backend: LocalBackend, path: str, body: Any, status: int) -> None:
    resp = post(backend, path, body)
    assert resp.status_code == status
    payload = resp.json()
    assert set(payload) == {"error"}
    error = payload["error"]
    if status == 404:
        # Azure's gateway errors (DeploymentNotFound, 401, 429) carry code and message but no type, unlike
        # OpenAI's ErrorObject (type: str); the backend follows Azure here (see vizlab.local.errors).
        assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["type"] is None
    else:
        ErrorObject.model_validate(error, strict=True)


RESPONSES_BODIES = {
    "plain": {"input": RESPONSES_INPUT},
    "string": {"input": "hello", "instructions": "Be brief."},
    "json_schema": {"input": RESPONSES_INPUT, "text": {"format": {"type": "json_schema", "name": "s", "strict": True,
                    "schema": JSON_SCHEMA["json_schema"]["schema"]}}},  # type: ignore[index]
    "tool_call": {"input": RESPONSES_INPUT, "tool_choice": "required", "tools": [
        {"type": "function", "name": "save", "parameters": TOOL["function"]["parameters"]}]},  # type: ignore[index]
    "incomplete": {"input": RESPONSES_INPUT, "max_output_tokens": 16},
    "refusal": {"input": RESPONSES_INPUT, "text": {"format": {"type": "json_schema", "name": "p", "schema": {
        "type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]}}}},
}


@pytest.mark.parametrize("kind", sorted(RESPONSES_BODIES))
def test_responses_objects_and_events_validate_strictly(backend: LocalBackend, kind: str) -> None:
    body = {"model": "gpt-4o", **RESPONSES_BODIES[kind]}
    resp = post(backend, "/openai/v1/responses", body)
    assert resp.status_code == 200, resp.text
    created = Response.model_validate(resp.json(), strict=True)
    got = requests.get(f"{backend.url}/openai/v1/responses/{created.id}", headers={"api-key": KEY}, timeout=30)
    Response.model_validate(got.json(), strict=True)
    items = requests.get(f"{backend.url}/openai/v1/responses/{created.id}/input_items",
                         headers={"api-key": KEY}, timeout=30)
    ResponseItemList.model_validate(items.json(), strict=True)
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    events = sse_payloads(post(backend, "/openai/v1/responses", {**body, "stream": True}))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        adapter.validate_python(event, strict=True)
    assert events[-1]["type"] in ("response.completed", "response.incomplete")


def test_files_batches_models_validate(backend: LocalBackend) -> None:
    line = json.dumps({"custom_id": "1", "method": "POST", "url": "/chat/completions",
                       "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}})
    up = requests.post(f"{backend.url}/openai/v1/files", headers={"api-key": KEY}, timeout=30,
                       files={"file": ("in.jsonl", line.encode())}, data={"purpose": "batch"})
    assert up.status_code == 200, up.text
    file = FileObject.model_validate(up.json(), strict=True)
    batch = post(backend, "/openai/v1/batches", {"input_file_id": file.id, "endpoint": "/chat/completions",
                                                "completion_window": "24h"})
    assert batch.status_code == 200, batch.text
    Batch.model_validate(batch.json(), strict=True)
    # /v1 is OpenAI's route (its models are the deployments): OpenAI's Model type, strictly.
    models = requests.get(f"{backend.url}/v1/models", headers={"api-key": KEY}, timeout=30).json()
    assert models["object"] == "list" and models["data"]
    for entry in models["data"]:
        Model.model_validate(entry, strict=True)
    # /openai/v1 is Azure's: it lists models in Azure's shape (no created/owned_by; see
    # vizlab.local.models_api), so it is checked against that schema instead.
    import jsonschema

    from vizlab.local.routes.models import MODEL_LIST_SCHEMA

    azure = requests.get(f"{backend.url}/openai/v1/models", headers={"api-key": KEY}, timeout=30).json()
    jsonschema.validate(azure, MODEL_LIST_SCHEMA)


# --- the seeds' printed responses, key by key and type by type ---------------------------------


def _seed_examples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(SEEDS.glob("*")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r'\{\s*"id":\s*"chatcmpl-.*?\n\}', text, re.S):
            try:
                example = json.loads(match.group(0))
            except json.JSONDecodeError:
                continue
            if isinstance(example["choices"][0].get("finish_reason"), str):  # the 2023 enhancements shape differs
                found.append((path.name, example))
    return found


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object",
            type(None): "null"}[type(value)]


def _compare(seed: Any, ours: Any, path: str, problems: list[str]) -> None:
    if _json_type(seed) != _json_type(ours):
        problems.append(f"{path}: seed has {_json_type(seed)}, ours {_json_type(ours)}")
        return
    if isinstance(seed, dict):
        for key, value in seed.items():
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            else:
                _compare(value, ours[key], f"{path}.{key}", problems)
    elif isinstance(seed, list) and seed and ours:
        _compare(seed[0], ours[0], f"{path}[0]", problems)


def test_seed_examples_are_found() -> None:
    assert len(_seed_examples()) >= 2


@pytest.mark.parametrize("seed_name,example", _seed_examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_chat_reply_matches_the_seed_example(backend: LocalBackend, seed_name: str, example: dict[str, Any]) -> None:
    ours = post(backend, "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                {"messages": USER}).json()
    problems: list[str] = []
    _compare(example, ours, "$", problems)
    assert problems == []
