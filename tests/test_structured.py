"""Structured outputs, tool calls and logprobs from the built-in backend, over real HTTP with the
official openai SDK; the strict-schema 400s; the README's fields table against the code."""

from __future__ import annotations

import enum
import json
import re
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import requests
from openai import BadRequestError, OpenAI
from pydantic import BaseModel

import vizlab
from vizlab.datasets import shapes_card, text_card
from vizlab.local import LocalBackend
from vizlab.local.replies.structured import Findings, Ungrounded, fill, fill_schema
from vizlab.local.requests.schemas import check_strict_schema
from vizlab.local.requests import fields as fields_mod
from vizlab.local.requests.validation import KNOWN_PARAMETERS

KEY = "structured-key"


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), stream_chunk_delay_s=0) as b:
        yield b


@pytest.fixture(scope="module")
def client(backend: LocalBackend) -> Iterator[OpenAI]:
    with OpenAI(base_url=backend.url + "/openai/v1", api_key=KEY, max_retries=0) as c:
        yield c


SHAPES_URL = vizlab.to_data_url(shapes_card({"circle": 2, "triangle": 1}, size=(400, 300), seed=3))
SIGN_URL = vizlab.to_data_url(text_card("OPEN 9-5", font_px=60, size=(600, 300)))


def user(text: str, url: str, detail: str = "high") -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url, "detail": detail}}]}]


class Colour(str, enum.Enum):
    red = "red"
    blue = "blue"
    white = "white"


class ShapeReport(BaseModel):
    summary: str
    circle_count: int
    background_colour: Colour
    shapes: list[str]


@pytest.mark.slow
def test_parse_with_pydantic_model(client: OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="gpt-4o", messages=user("Describe the shapes.", SHAPES_URL), response_format=ShapeReport
    )
    message = completion.choices[0].message
    assert message.refusal is None
    parsed = message.parsed
    assert parsed is not None
    assert parsed.circle_count == 2
    assert parsed.background_colour is Colour.white
    assert sorted(parsed.shapes) == ["circle", "circle", "triangle"]
    assert "vizlab's built-in local analyst" in parsed.summary


def test_emulated_header_names_the_features(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=user("Describe.", SHAPES_URL), temperature=0.3, seed=7,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": {
            "type": "object", "properties": {"circles": {"type": "integer"}}}}},
    )
    assert raw.headers["x-vizlab-emulated"] == "json_schema"
    assert raw.headers["x-vizlab-ignored"] == "seed, temperature"
    assert json.loads(raw.parse().choices[0].message.content or "") == {"circles": 2}
    plain = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=user("Hi", SHAPES_URL))
    assert "x-vizlab-emulated" not in plain.headers and "x-vizlab-ignored" not in plain.headers


def test_ungrounded_nullable_field_is_null_and_required_one_is_a_marked_placeholder(client: OpenAI) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["price", "text"],
              "properties": {"price": {"type": ["number", "null"]}, "text": {"type": "string"}}}
    sign = client.chat.completions.create(
        model="gpt-4o", messages=user("Read it.", SIGN_URL),
        response_format={"type": "json_schema", "json_schema": {"name": "sign", "strict": True, "schema": schema}},
    )
    assert json.loads(sign.choices[0].message.content or "") == {"price": None, "text": "OPEN 9-5"}
    strict_price = {**schema, "properties": {**schema["properties"], "price": {"type": "number"}}}
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=user("Read it.", SIGN_URL),
        response_format={"type": "json_schema", "json_schema": {"name": "sign", "strict": True, "schema": strict_price}},
    )
    message = raw.parse().choices[0].message
    assert message.refusal is None  # the contract: strict content always parses and validates
    assert json.loads(message.content or "") == {"price": 0, "text": "OPEN 9-5"}
    assert raw.headers["x-vizlab-ungrounded"] == "price"  # ... and the placeholder is marked


def test_json_object_returns_the_findings(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o", messages=user("Answer in JSON.", SHAPES_URL), response_format={"type": "json_object"}
    )
    found = json.loads(reply.choices[0].message.content or "")
    assert found["emulated"] is True
    assert found["images"][0]["shapes"] == {"circle": 2, "triangle": 1}


STRICT_CASES = [
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
     "In context=(), 'additionalProperties' is required to be supplied and to be false."),
    ({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"],
      "additionalProperties": False},
     "In context=(), 'required' is required to be supplied and to be an array including every key in "
     "properties. Missing 'b'."),
    ({"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}, "required": ["a"],
      "additionalProperties": False},
     "In context=('properties', 'a'), 'minLength' is not permitted."),
    ({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "object", "properties": {}}}},
      "required": ["tags"], "additionalProperties": False},
     "In context=('properties', 'tags', 'items'), 'additionalProperties' is required to be supplied and to be false."),
    ({"type": "object", "properties": {"tags": {"type": "array"}}, "required": ["tags"], "additionalProperties": False},
     "In context=('properties', 'tags'), array schema missing items."),
]


@pytest.mark.parametrize("schema,problem", STRICT_CASES)
def test_strict_schema_refused_like_the_service(backend: LocalBackend, schema: dict[str, Any], problem: str) -> None:
    body = {"model": "gpt-4o", "messages": user("x", SHAPES_URL),
            "response_format": {"type": "json_schema", "json_schema": {"name": "rep", "strict": True, "schema": schema}}}
    resp = requests.post(backend.url + "/openai/v1/chat/completions", json=body, headers={"api-key": KEY}, timeout=30)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error == {"code": None, "message": f"Invalid schema for response_format 'rep': {problem}",
                     "param": "response_format", "type": "invalid_request_error"}
    # The same schema, not strict, is accepted and filled.
    body["response_format"]["json_schema"]["strict"] = False
    ok = requests.post(backend.url + "/openai/v1/chat/completions", json=body, headers={"api-key": KEY}, timeout=30)
    assert ok.status_code == 200, ok.text


def test_strict_function_parameters_refused_with_function_code(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=user("x", SHAPES_URL),
            tools=[{"type": "function", "function": {"name": "f", "strict": True, "parameters": {
                "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}],
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "invalid_function_parameters"
    assert error["param"] == "tools[0].function.parameters"
    assert error["message"].startswith("Invalid schema for function 'f': In context=(), 'additionalProperties'")


TOOL = {"type": "function", "function": {"name": "record_shapes", "description": "Record the shapes", "strict": True,
        "parameters": {"type": "object", "additionalProperties": False, "required": ["circles", "main_colour", "label"],
                       "properties": {"circles": {"type": "integer"}, "main_colour": {"type": "string"},
                                      "label": {"type": ["string", "null"]}}}}}


def test_forced_tool_call_and_tool_follow_up(client: OpenAI) -> None:
    messages: list[Any] = user("Record the shapes.", SHAPES_URL)
    first = client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=[TOOL],
        tool_choice={"type": "function", "function": {"name": "record_shapes"}},
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.function.name == "record_shapes"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, TOOL["function"]["parameters"])  # type: ignore[index]
    assert arguments == {"circles": 2, "main_colour": "white", "label": None}
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"saved": true}'})
    final = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[TOOL])
    assert final.choices[0].finish_reason == "stop"
    text = final.choices[0].message.content or ""
    assert 'record_shapes returned {"saved": true}' in text


def test_auto_tool_choice_answers_in_text_and_says_so(client: OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-4o", messages=user("Shapes?", SHAPES_URL), tools=[TOOL])
    assert reply.choices[0].message.tool_calls is None
    assert "does not choose tools" in (reply.choices[0].message.content or "")


def test_streamed_tool_call_accumulates(client: OpenAI) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=user("Record.", SHAPES_URL), tools=[TOOL],
                                        tool_choice="required") as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls and json.loads(calls[0].function.arguments)["circles"] == 2


def test_logprobs_in_the_service_shape(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=user("What does it say?", SIGN_URL), logprobs=True, top_logprobs=3
    )
    assert raw.headers["x-vizlab-emulated"] == "logprobs"
    reply = raw.parse()
    content = reply.choices[0].message.content or ""
    entries = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert entries is not None
    assert "".join(e.token for e in entries) == content
    assert all(e.logprob == 0.0 and len(e.top_logprobs) == 3 and e.top_logprobs[0].token == e.token for e in entries)
    assert all(len({t.token for t in e.top_logprobs}) == 3 and e.top_logprobs[1].logprob < 0 for e in entries)
    assert bytes(b for e in entries for b in (e.bytes or [])) == content.encode()
    # Streamed, the chunks' entries join to the same tokens.
    tokens: list[str] = []
    for chunk in client.chat.completions.create(model="gpt-4o", messages=user("What does it say?", SIGN_URL),
                                                logprobs=True, stream=True):
        for choice in chunk.choices:
            if choice.logprobs is not None and choice.logprobs.content:
                tokens.extend(e.token for e in choice.logprobs.content)
    assert "".join(tokens) == content


def test_top_logprobs_needs_logprobs(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=user("x", SIGN_URL), top_logprobs=2)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "top_logprobs"


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"width": {"type": "integer"}, "height": {"type": "integer", "maximum": 10}},
     "required": ["width"]},
    {"type": "object", "properties": {"colours": {"type": "array", "items": {"type": "string"}, "maxItems": 1}}},
    {"type": "object", "properties": {"has_text": {"type": "boolean"}, "words": {"type": "array", "items": {"type": "string"}}}},
])
def test_fill_is_valid_against_the_schema(schema: dict[str, Any]) -> None:
    findings = Findings(answer="a", text_lines=["OPEN 9-5"], colours=["white", "black"], width=600, height=300, images=1)
    value = fill_schema(schema, findings)
    jsonschema.validate(value, schema)
    assert value.get("width", 600) == 600 and "height" not in value  # 300 > maximum 10: not forced in


def test_unfillable_field_gets_a_placeholder_listed_by_its_path() -> None:
    done = fill({"type": "object", "properties": {"owner": {"type": "object", "properties": {
        "name": {"type": "string"}}, "required": ["name"]}}, "required": ["owner"]}, Findings(answer="a", images=1))
    assert done.value == {"owner": {"name": ""}} and done.ungrounded == ["owner.name"]


def test_a_schema_no_value_satisfies_is_refused_with_its_path() -> None:
    looped = {"type": "object", "properties": {"me": {"$ref": "#"}}, "required": ["me"], "additionalProperties": False}
    with pytest.raises(Ungrounded) as caught:
        fill(looped, Findings(answer="a", images=1))
    assert caught.value.path.startswith("me.me")


def test_strict_check_accepts_what_the_sdk_sends() -> None:
    from openai.lib._pydantic import to_strict_json_schema

    check_strict_schema(to_strict_json_schema(ShapeReport), what="response_format 'x'", param="response_format", code=None)


def test_every_accepted_chat_field_has_a_stated_treatment() -> None:
    assert set(fields_mod.CHAT_FIELDS) == set(KNOWN_PARAMETERS)
    assert {rule.status for rule in fields_mod.CHAT_FIELDS.values()} <= {"honoured", "emulated", "ignored"}


def test_fields_table_is_generated_from_the_code() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "backend.md").read_text(encoding="utf-8")
    match = re.search(re.escape(fields_mod.README_BEGIN) + r".*?" + re.escape(fields_mod.README_END), doc, re.S)
    assert match, "docs/backend.md lacks the generated fields table; run: python -m vizlab.local.requests.fields"
    assert match.group(0) == fields_mod.readme_block(), (
        "docs/backend.md's fields table differs from the code; regenerate it: python -m vizlab.local.requests.fields"
    )


def test_streamed_parse_accumulates_the_model(client: OpenAI) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=user("Describe the shapes.", SHAPES_URL),
                                        response_format=ShapeReport) as stream:
        deltas = [event for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 1  # it really streamed in pieces
    parsed = final.choices[0].message.parsed
    assert parsed is not None and parsed.circle_count == 2 and parsed.background_colour is Colour.white


def test_text_fields_get_ocr_even_when_the_question_does_not_ask(client: OpenAI) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["sign_text"],
              "properties": {"sign_text": {"type": "string"}}}
    reply = client.chat.completions.create(
        model="gpt-4o", messages=user("Describe the colours.", SIGN_URL),
        response_format={"type": "json_schema", "json_schema": {"name": "s", "strict": True, "schema": schema}},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"sign_text": "OPEN 9-5"}


@pytest.mark.slow
def test_reasoning_deployment_refuses_logprobs() -> None:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o", "think=o4-mini"), stream_chunk_delay_s=0) as b, OpenAI(
        base_url=b.url + "/openai/v1", api_key=KEY, max_retries=0
    ) as sdk:
        with pytest.raises(BadRequestError) as caught:
            sdk.chat.completions.create(model="think", messages=user("Read it.", SIGN_URL), logprobs=True)
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["param"] == "logprobs" and caught.value.body["code"] == "unsupported_parameter"
        # The same request on the gpt-4o deployment is answered, logprobs emulated.
        ok = sdk.chat.completions.create(model="gpt-4o", messages=user("Read it.", SIGN_URL), logprobs=True)
        assert ok.choices[0].logprobs is not None and ok.choices[0].logprobs.content
