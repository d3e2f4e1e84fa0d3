"""The built-in backend keeps a client's contract (issue 20) and bounds what it is sent (issue 22):
strict schemas always validate, forced tools are always called, top_logprobs gives N, what the
service accepts is accepted, and no schema, pattern or body size can stall or crash it. Over real
HTTP with the official openai SDK and vizlab's client."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterator, Literal

import jsonschema
import pytest
import requests
from openai import BadRequestError, OpenAI
from pydantic import BaseModel

import vizlab
from vizlab.datasets import text_card
from vizlab.local import LocalBackend
from vizlab.local.replies.structured import Findings, fill

KEY = "contract-key"
TIMEOUT = 30


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o", "gpt-5.4"), stream_chunk_delay_s=0) as b:
        yield b


@pytest.fixture(scope="module")
def client(backend: LocalBackend) -> Iterator[OpenAI]:
    with OpenAI(base_url=backend.url + "/openai/v1", api_key=KEY, max_retries=0) as c:
        yield c


WORD_URL = vizlab.to_data_url(text_card("HELLO", font_px=80, size=(500, 250)))
RECEIPT_URL = vizlab.to_data_url(text_card("ACME STORE\nCoffee 3.50\nTotal: 12.40", font_px=40, size=(600, 300)))


def user(text: str, url: str | None = None) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if url:
        parts.append({"type": "image_url", "image_url": {"url": url, "detail": "high"}})
    return [{"role": "user", "content": parts}]


class Card(BaseModel):
    text: str
    word_count: int
    kind: Literal["text", "shape", "colour"]
    lines: list[str]


def post(backend: LocalBackend, path: str, body: Any, **kw: Any) -> requests.Response:
    headers = {"api-key": KEY, **kw.pop("headers", {})}
    return requests.post(backend.url + path, headers=headers, timeout=TIMEOUT, **({"json": body} | kw))


# --- strict structured outputs ------------------------------------------------------------------


def test_parse_card_on_a_one_word_image(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.parse(
        model="gpt-4o", messages=user("Read the card.", WORD_URL), response_format=Card  # type: ignore[arg-type]
    )
    parsed = raw.parse().choices[0].message.parsed
    assert parsed == Card(text="HELLO", word_count=1, kind="text", lines=["HELLO"])
    assert "x-vizlab-ungrounded" not in raw.headers


@pytest.mark.slow
def test_streamed_and_responses_card_validate_the_same(client: OpenAI) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=user("Read.", WORD_URL),  # type: ignore[arg-type]
                                        response_format=Card) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_completion().choices[0].message.parsed
    response = client.responses.parse(model="gpt-4o", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Read."}, {"type": "input_image", "image_url": WORD_URL, "detail": "high"}]}],
        text_format=Card)
    assert streamed == response.output_parsed == Card(text="HELLO", word_count=1, kind="text", lines=["HELLO"])


class Receipt(BaseModel):
    merchant: str
    total: float
    headline: str
    currency: str | None
    confidence: float


def test_receipt_fields_grounded_by_what_they_are_and_placeholders_marked(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.parse(
        model="gpt-4o", messages=user("Read the receipt.", RECEIPT_URL), response_format=Receipt  # type: ignore[arg-type]
    )
    parsed = raw.parse().choices[0].message.parsed
    assert parsed is not None and parsed.total == 12.4 and parsed.merchant == "ACME STORE"
    assert parsed.headline != parsed.merchant  # two fields never share a string by accident
    assert parsed.currency is None and 0.7 <= parsed.confidence <= 1.0  # the OCR engine's confidence
    listed = [x.strip() for x in raw.headers.get("x-vizlab-ungrounded", "").split(",") if x.strip()]
    assert set(listed) <= {"headline"}


def test_vizlab_reply_shows_the_placeholders(backend: LocalBackend) -> None:
    with vizlab.connect(backend="openai", base_url=backend.url + "/openai/v1", api_key=KEY, model="gpt-4o",
                        env_file=None, verbose=False) as c:
        conv = vizlab.Conversation()
        conv.add_user("Read.", [text_card("HELLO", font_px=80, size=(500, 250))], detail="high")
        schema = {"type": "object", "additionalProperties": False, "required": ["text", "price"],
                  "properties": {"text": {"type": "string"}, "price": {"type": "number"}}}
        reply = c.chat(conv, response_format={"type": "json_schema", "json_schema": {
            "name": "r", "strict": True, "schema": schema}})
    assert json.loads(reply.text) == {"text": "HELLO", "price": 0}
    assert reply.ungrounded == ("price",)
    assert any("price" in note and "missing" in note for note in reply.warnings())


def test_chart_labels_get_distinct_lines() -> None:
    findings = Findings(answer="a", images=1, text_lines=["Sales 2026", "Month", "Units"])
    schema = {"type": "object", "properties": {"title": {"type": "string"}, "x_axis_label": {"type": "string"},
                                               "y_axis_label": {"type": "string"}},
              "required": ["title", "x_axis_label", "y_axis_label"], "additionalProperties": False}
    done = fill(schema, findings)
    assert done.value == {"title": "Sales 2026", "x_axis_label": "Month", "y_axis_label": "Units"}


def test_json_object_follows_a_schema_in_the_prompt(client: OpenAI) -> None:
    schema = Card.model_json_schema()
    reply = client.chat.completions.create(model="gpt-4o", response_format={"type": "json_object"}, messages=[
        {"role": "system", "content": "Answer in json that matches the following json_schema:\n\n"
                                      f"{json.dumps(schema, indent=2)}\n\nReturn an instance, not the schema."},
        *user("Read the card.", WORD_URL)])
    assert Card.model_validate_json(reply.choices[0].message.content or "") == Card(
        text="HELLO", word_count=1, kind="text", lines=["HELLO"])


# --- forced tools --------------------------------------------------------------------------------

WEATHER = {"type": "function", "function": {"name": "get_weather", "strict": True, "parameters": {
    "type": "object", "additionalProperties": False, "required": ["location", "unit"],
    "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}}
READ = {"type": "function", "function": {"name": "record_text", "strict": True, "parameters": {
    "type": "object", "additionalProperties": False, "required": ["text", "confidence"],
    "properties": {"text": {"type": "string"}, "confidence": {"type": "number"}}}}}


@pytest.mark.parametrize("tool,messages", [
    (WEATHER, [{"role": "user", "content": "What is the weather in Paris?"}]),
    (READ, user("Record what it says.", WORD_URL)),
])
def test_a_forced_tool_is_always_called_and_the_follow_up_answers(
    client: OpenAI, tool: dict[str, Any], messages: list[Any]
) -> None:
    name = tool["function"]["name"]
    first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[tool],  # type: ignore[list-item]
                                           tool_choice={"type": "function", "function": {"name": name}})
    call = (first.choices[0].message.tool_calls or [])[0]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    jsonschema.validate(arguments, tool["function"]["parameters"])
    if name == "get_weather":
        assert arguments["location"] == "Paris"
    else:
        assert arguments["text"] == "HELLO" and 0.7 <= arguments["confidence"] <= 1.0
    follow = [*messages, first.choices[0].message.model_dump(exclude_none=True),
              {"role": "tool", "tool_call_id": call.id, "content": '{"ok": true}'}]
    final = client.chat.completions.create(model="gpt-4o", messages=follow, tools=[tool])  # type: ignore[list-item]
    assert final.choices[0].finish_reason == "stop" and f'{name} returned {{"ok": true}}' in (
        final.choices[0].message.content or "")


def test_top_logprobs_gives_n_alternatives(client: OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-4o", messages=user("Read.", WORD_URL), logprobs=True,
                                           top_logprobs=2)
    entries = reply.choices[0].logprobs.content or []  # type: ignore[union-attr]
    assert entries and all(len(e.top_logprobs) == 2 and e.top_logprobs[1].token != e.token for e in entries)


# --- accepted as the service accepts --------------------------------------------------------------


def test_dollar_schema_and_api_version_v1_are_accepted(backend: LocalBackend) -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
              "required": ["text"], "properties": {"text": {"type": "string"}}}
    body = {"model": "gpt-4o", "messages": user("Read.", WORD_URL), "response_format": {
        "type": "json_schema", "json_schema": {"name": "s", "strict": True, "schema": schema}}}
    for version in ("v1", "preview", "latest"):
        resp = post(backend, f"/openai/v1/chat/completions?api-version={version}", body)
        assert resp.status_code == 200, resp.text
        assert json.loads(resp.json()["choices"][0]["message"]["content"]) == {"text": "HELLO"}


def test_detail_original_where_the_registry_defines_it(backend: LocalBackend) -> None:
    def ask(model: str) -> requests.Response:
        return post(backend, "/openai/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": WORD_URL, "detail": "original"}}]}]})

    assert ask("gpt-5.4").status_code == 200
    refused = ask("gpt-4o")
    assert refused.status_code == 400 and refused.json()["error"]["param"].endswith(".detail")


def test_unknown_model_and_old_responses_version_as_the_service_answers(backend: LocalBackend) -> None:
    unknown = post(backend, "/openai/v1/chat/completions", {"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_model"
    old = post(backend, "/openai/responses?api-version=2024-10-21", {"model": "gpt-4o", "input": "hi"})
    assert old.status_code == 400


def test_stream_chunks_carry_the_recorded_fields(backend: LocalBackend) -> None:
    resp = post(backend, "/openai/v1/chat/completions", {"model": "gpt-4o", "stream": True,
                "stream_options": {"include_usage": True}, "messages": [{"role": "user", "content": "hi"}]})
    chunks = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: {")]
    body = chunks[1:]
    assert all("obfuscation" in c for c in body)
    assert all(c["usage"] is None for c in body[:-1]) and body[-1]["usage"]["total_tokens"] > 0
    assert body[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}


# --- bounded (issue 22) ----------------------------------------------------------------------------


def _schema_body(schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "response_format": {
        "type": "json_schema", "json_schema": {"name": "s", "strict": strict, "schema": schema}}}


@pytest.mark.parametrize("pattern", [r"^(.+)+X$", r"^([A-Za-z']+\s?)*$"])
def test_catastrophic_patterns_return_at_once_and_healthz_keeps_answering(backend: LocalBackend, pattern: str) -> None:
    # The analyst's prose answer (letters, digits, punctuation) is the candidate a backtracking
    # engine would try these patterns on: Python's re never returned on it (issue 22).
    schema = {"type": "object", "additionalProperties": False, "required": ["summary"],
              "properties": {"summary": {"type": "string", "pattern": pattern}}}
    body = _schema_body(schema)
    body["messages"] = user("Describe the image in detail.", WORD_URL)
    health: list[float] = []

    def probe() -> None:
        started = time.perf_counter()
        requests.get(backend.url + "/healthz", timeout=5)
        health.append(time.perf_counter() - started)

    started = time.perf_counter()
    thread = threading.Thread(target=probe)
    thread.start()
    resp = post(backend, "/openai/v1/chat/completions", body)
    thread.join()
    assert time.perf_counter() - started < 5 and health and health[0] < 2
    assert resp.status_code == 200
    content = resp.json()["choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(content), schema)


def test_a_lookaround_pattern_gets_the_service_400(backend: LocalBackend) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["email"],
              "properties": {"email": {"type": "string", "pattern": "^(?=.*@).+$"}}}
    error = post(backend, "/openai/v1/chat/completions", _schema_body(schema)).json()["error"]
    assert error["code"] == "invalid_json_schema" and "lookaround is not supported" in error["message"]


def test_deep_and_self_referencing_schemas_are_400_or_fast(backend: LocalBackend) -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(100):
        deep = {"anyOf": [deep, {"type": "null"}]}
    schema = {"type": "object", "additionalProperties": False, "required": ["x"], "properties": {"x": deep}}
    for strict in (True, False):
        resp = post(backend, "/openai/v1/chat/completions", _schema_body(schema, strict))
        assert resp.status_code == 400 and "nested deeper" in resp.json()["error"]["message"]
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    resp = post(backend, "/openai/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
                                                         "tools": [tool], "tool_choice": "required"})
    assert resp.status_code == 400
    fan = {"$defs": {"n": {"type": "object", "additionalProperties": False, "required": ["a", "b", "c", "d"],
                           "properties": {k: {"$ref": "#/$defs/n"} for k in "abcd"}}},
           "type": "object", "additionalProperties": False, "required": ["root"], "properties": {"root": {"$ref": "#/$defs/n"}}}
    started = time.perf_counter()
    resp = post(backend, "/openai/v1/chat/completions", _schema_body(fan))
    assert time.perf_counter() - started < 5 and resp.status_code == 200 and len(resp.content) < 100_000
    assert resp.json()["choices"][0]["message"]["refusal"]  # no finite value exists: refused, not expanded


@pytest.mark.slow
def test_size_limits_get_the_service_400(backend: LocalBackend) -> None:
    hi = [{"role": "user", "content": "hi"}]
    tools = [{"type": "function", "function": {"name": f"f{i}"}} for i in range(10_000)]
    resp = post(backend, "/openai/v1/chat/completions", {"model": "gpt-4o", "messages": hi, "tools": tools})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "array_above_max_length"
    metadata = {f"k{i}": "v" for i in range(10_000)}
    resp = post(backend, "/openai/v1/chat/completions", {"model": "gpt-4o", "messages": hi, "metadata": metadata})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "metadata"
    resp = post(backend, "/openai/v1/responses", {"model": "gpt-4o", "input": "hi", "metadata": metadata})
    assert resp.status_code == 400
    body = json.dumps({"model": "gpt-4o", "messages": hi}).encode("utf-16")
    resp = post(backend, "/openai/v1/chat/completions", None, data=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400
    started = time.perf_counter()
    many = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}] * 1_000_000}
    resp = post(backend, "/openai/v1/chat/completions", many)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "array_above_max_length"
    assert time.perf_counter() - started < 20


def test_a_pattern_no_finding_matches_gets_a_matching_placeholder() -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["code"],
              "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"}}}
    done = fill(schema, Findings(answer="a", images=1, text_lines=["hello"]))
    assert done.value == {"code": "AAA-00"} and done.ungrounded == ["code"]


def test_bad_request_error_names_the_field(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                       metadata={f"k{i}": "v" for i in range(17)})
    assert "at most 16" in str(caught.value)
