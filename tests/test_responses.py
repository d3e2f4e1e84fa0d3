"""The Responses API of the built-in backend over real HTTP with the official openai SDK."""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator

import pytest
import requests
from openai import AzureOpenAI, BadRequestError, NotFoundError, OpenAI
from pydantic import BaseModel

import vizlab
from vizlab.datasets import text_card
from vizlab.local import LocalBackend

KEY = "responses-key"
SIGN_URL = vizlab.to_data_url(text_card("OPEN 9-5", font_px=60, size=(600, 300)))


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), stream_chunk_delay_s=0) as b:
        yield b


@pytest.fixture(scope="module")
def client(backend: LocalBackend) -> Iterator[OpenAI]:
    with OpenAI(base_url=backend.url + "/openai/v1", api_key=KEY, max_retries=0) as c:
        yield c


def image_input(text: str, detail: str = "high", **image: Any) -> list[dict[str, Any]]:
    part = {"type": "input_image", "detail": detail, **(image or {"image_url": SIGN_URL})}
    return [{"role": "user", "content": [{"type": "input_text", "text": text}, part]}]


@pytest.mark.slow
def test_create_with_image_then_follow_up_from_stored_context(client: OpenAI) -> None:
    first = client.responses.create(model="gpt-4o", input=image_input("What does the sign say?"))
    assert first.status == "completed" and first.object == "response"
    assert 'OPEN 9-5' in first.output_text
    usage = first.usage
    assert usage is not None and usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    # No image in the follow-up: the answer comes from the stored context (the image of turn 1).
    second = client.responses.create(model="gpt-4o", previous_response_id=first.id, input="Read it again.")
    assert 'OPEN 9-5' in second.output_text
    assert second.previous_response_id == first.id
    assert second.usage is not None and second.usage.input_tokens > usage.input_tokens + usage.output_tokens
    # Without previous_response_id the same question has nothing to look at.
    alone = client.responses.create(model="gpt-4o", input="Read it again.")
    assert "OPEN 9-5" not in alone.output_text


def test_instructions_are_not_carried_over(client: OpenAI) -> None:
    first = client.responses.create(model="gpt-4o", input=image_input("Read"), instructions="Be brief. " * 50)
    second = client.responses.create(model="gpt-4o", input=image_input("Read"), previous_response_id=first.id)
    assert first.instructions and second.instructions is None
    assert first.usage and second.usage
    # turn 2 bills turn 1's input and answer again, but not its 150-word instructions
    assert second.usage.input_tokens < 2 * first.usage.input_tokens + first.usage.output_tokens


@pytest.mark.slow
def test_retrieve_input_items_delete(client: OpenAI) -> None:
    created = client.responses.create(model="gpt-4o", input=image_input("Read", detail="low"))
    assert client.responses.retrieve(created.id).id == created.id
    items = client.responses.input_items.list(created.id)
    assert [i.type for i in items.data] == ["message"]
    content = items.data[0].content  # type: ignore[union-attr]
    assert [p.type for p in content] == ["input_text", "input_image"]
    client.responses.delete(created.id)
    with pytest.raises(NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(BadRequestError) as caught:
        client.responses.create(model="gpt-4o", input="x", previous_response_id=created.id)
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "previous_response_not_found"


def test_store_false_is_not_kept(client: OpenAI) -> None:
    created = client.responses.create(model="gpt-4o", input="hello", store=False)
    with pytest.raises(NotFoundError):
        client.responses.retrieve(created.id)


def test_file_id_image(client: OpenAI) -> None:
    data = base64.b64decode(SIGN_URL.split(",", 1)[1])
    uploaded = client.files.create(file=("sign.png", data, "image/png"), purpose="vision")
    reply = client.responses.create(model="gpt-4o", input=image_input("Read", file_id=uploaded.id))
    assert "OPEN 9-5" in reply.output_text


@pytest.mark.slow
def test_stream_accumulates_into_the_final_response(client: OpenAI) -> None:
    types: list[str] = []
    with client.responses.stream(model="gpt-4o", input=image_input("What does it say?")) as stream:
        for event in stream:
            types.append(event.type)
        final = stream.get_final_response()
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert "response.output_text.delta" in types
    assert "OPEN 9-5" in final.output_text and final.usage is not None


class Sign(BaseModel):
    text: str
    line_count: int


def test_text_format_parse_and_tools(client: OpenAI) -> None:
    parsed = client.responses.parse(model="gpt-4o", input=image_input("Read"), text_format=Sign)
    assert parsed.output_parsed == Sign(text="OPEN 9-5", line_count=1)
    tool = {"type": "function", "name": "save_text", "strict": True, "parameters": {
        "type": "object", "additionalProperties": False, "required": ["text"], "properties": {"text": {"type": "string"}}}}
    called = client.responses.create(model="gpt-4o", input=image_input("Save it"), tools=[tool], tool_choice="required")
    call = called.output[0]
    assert call.type == "function_call" and json.loads(call.arguments) == {"text": "OPEN 9-5"}
    follow = client.responses.create(
        model="gpt-4o", previous_response_id=called.id, tools=[tool],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "saved"}],
    )
    assert "save_text returned saved" in follow.output_text


def test_strict_text_format_refused_with_schema_path(backend: LocalBackend) -> None:
    body = {"model": "gpt-4o", "input": "x", "text": {"format": {"type": "json_schema", "name": "s", "strict": True,
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}}
    resp = requests.post(backend.url + "/openai/v1/responses", json=body, headers={"api-key": KEY}, timeout=30)
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "code": "invalid_json_schema", "param": "text.format.schema", "type": "invalid_request_error",
        "message": "Invalid schema for response_format 's': In context=(), 'additionalProperties' is required to "
                   "be supplied and to be false.",
    }


def test_max_output_tokens_gives_incomplete(client: OpenAI) -> None:
    reply = client.responses.create(model="gpt-4o", input=image_input("Describe"), max_output_tokens=16)
    assert reply.status == "incomplete" and reply.incomplete_details is not None
    assert reply.incomplete_details.reason == "max_output_tokens"
    assert reply.usage is not None and reply.usage.output_tokens <= 16


@pytest.mark.parametrize("body,param", [
    ({"input": "x"}, "model"),
    ({"model": "gpt-4o"}, "input"),
    ({"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
     "input[0].content[0].type"),
    ({"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_image", "detail": "max",
                                                                  "image_url": SIGN_URL}]}]},
     "input[0].content[0].detail"),
    ({"model": "gpt-4o", "input": "x", "temprature": 1}, "temprature"),
    ({"model": "gpt-4o", "input": image_input("x", image_url="data:image/png;base64,AAAA")},
     "input[0].content[1].image_url"),
])
def test_bad_requests_name_the_parameter(backend: LocalBackend, body: dict[str, Any], param: str) -> None:
    resp = requests.post(backend.url + "/openai/v1/responses", json=body, headers={"api-key": KEY}, timeout=30)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


def test_azure_dated_route(backend: LocalBackend) -> None:
    with AzureOpenAI(azure_endpoint=backend.url, api_key=KEY, api_version="2025-04-01-preview", max_retries=0) as az:
        reply = az.responses.create(model="gpt-4o", input=image_input("Read"))
        assert "OPEN 9-5" in reply.output_text
        assert az.responses.retrieve(reply.id).id == reply.id
    resp = requests.post(backend.url + "/openai/responses", json={"model": "gpt-4o", "input": "x"},
                         headers={"api-key": KEY}, timeout=30)
    assert resp.status_code == 404  # a dated route needs its api-version
    old = requests.post(backend.url + "/openai/responses?api-version=2024-10-21", json={"model": "gpt-4o", "input": "x"},
                        headers={"api-key": KEY}, timeout=30)
    assert old.status_code == 400 and "only for api-version 2025-03-01-preview and later" in old.json()["error"]["message"]


@pytest.mark.slow
def test_client_respond_conversation_both_apis_and_continuation(backend: LocalBackend) -> None:
    from vizlab.datasets import text_card as card

    client = vizlab.connect(backend="local", endpoint=backend.url, api_key=KEY, deployment="gpt-4o")
    conv = vizlab.Conversation()
    conv.add_user("What does the sign say?", [card("OPEN 9-5", font_px=60, size=(600, 300))], detail="high")
    by_chat = client.chat(conv.messages(format="current"))  # a copy: the conversation is not appended to
    first = client.respond(conv)
    assert type(first) is type(by_chat)
    assert "OPEN 9-5" in first.text and first.finish_reason == "stop"
    assert first.usage is not None and first.estimate is not None
    assert first.usage.prompt_tokens == first.estimate.prompt_tokens == by_chat.usage.prompt_tokens  # type: ignore[union-attr]
    assert conv.messages()[-1]["role"] == "assistant"
    conv.add_user("Read it again.")
    follow = client.respond(conv, previous_response_id=first.raw["id"])
    assert "OPEN 9-5" in follow.text
    sent = follow.request["input"]
    assert sent == [{"role": "user", "content": "Read it again."}]
    assert follow.usage is not None and follow.estimate is not None
    # Sent: one short text turn. Billed: the stored context (image included) again, plus it.
    assert follow.usage.prompt_tokens > follow.estimate.prompt_tokens + first.usage.prompt_tokens - 10
    assert client.responses_sdk.base_url.path.endswith("/openai/v1/")  # dated versions lack the Responses API
    client.close()


def test_json_object_needs_json_in_the_input(backend: LocalBackend) -> None:
    body = {"model": "gpt-4o", "input": "Describe it.", "text": {"format": {"type": "json_object"}}}
    resp = requests.post(backend.url + "/openai/v1/responses", json=body, headers={"api-key": KEY}, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "text.format"
    body["instructions"] = "Answer in JSON."
    ok = requests.post(backend.url + "/openai/v1/responses", json=body, headers={"api-key": KEY}, timeout=30)
    assert ok.status_code == 200 and json.loads(ok.json()["output"][0]["content"][0]["text"])["emulated"] is True
