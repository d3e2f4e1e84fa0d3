"""LangChain (langchain-openai), a client nobody here wrote, against the built-in backend over real HTTP.

Issue 11 found ``with_structured_output(..., method="function_calling")`` returning None offline.
Here it returns the Pydantic object, filled from the image, by each of LangChain's methods; and
the plain image chat works through ``AzureChatOpenAI`` as a user would write it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel, Field

from vizlab.client import DEFAULT_API_VERSION
from vizlab.datasets import text_card
from vizlab.images import to_data_url
from vizlab.local import LocalBackend

langchain_openai = pytest.importorskip("langchain_openai", reason="langchain-openai is in the dev extras")
from langchain_core.messages import HumanMessage  # noqa: E402

KEY = "langchain-test-key"


class Sign(BaseModel):
    """What a sign says."""

    text: str = Field(description="the text written on the sign")
    words: int = Field(description="how many words it has")


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with pytest.MonkeyPatch.context() as mp, LocalBackend(api_key=KEY) as b:
        mp.setenv("LANGCHAIN_TRACING_V2", "false")  # LangSmith would phone home; undone after the module
        yield b


def _llm(backend: LocalBackend) -> object:
    return langchain_openai.AzureChatOpenAI(azure_endpoint=backend.url, api_key=KEY, api_version=DEFAULT_API_VERSION,
                                            azure_deployment="gpt-4o", max_retries=0, timeout=60)  # fmt: skip


def _message() -> HumanMessage:
    url = to_data_url(text_card("EXIT 12", font_px=48, size=(360, 140), origin=(30, 40)))
    return HumanMessage(content=[{"type": "text", "text": "What does the sign say?"},
                                 {"type": "image_url", "image_url": {"url": url, "detail": "high"}}])  # fmt: skip


@pytest.mark.slow
def test_an_image_chat_through_azure_chat_openai(backend: LocalBackend) -> None:
    reply = _llm(backend).invoke([_message()])  # type: ignore[attr-defined]
    assert "EXIT 12" in reply.content
    usage = reply.response_metadata["token_usage"]
    assert usage["prompt_tokens"] > 255  # one 512-px tile at high: 85 + 170, plus the text


@pytest.mark.slow
@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_with_structured_output_returns_the_object_filled_from_the_image(backend: LocalBackend, method: str) -> None:
    llm = _llm(backend).with_structured_output(Sign, method=method)  # type: ignore[attr-defined]
    sign = llm.invoke([_message()])
    assert isinstance(sign, Sign), sign
    assert "EXIT 12" in sign.text


@pytest.mark.slow
def test_json_mode_gets_a_json_object_of_the_findings_not_a_schema_it_was_never_sent(backend: LocalBackend) -> None:
    """json_mode sends no schema, only ``json_object``: a model follows the prompt's keys, the analyst
    cannot (README: json_object is emulated as its findings). LangChain's parser then says so."""
    llm = _llm(backend).with_structured_output(Sign, method="json_mode", include_raw=True)  # type: ignore[attr-defined]
    message = _message()
    message.content[0]["text"] += " Answer in JSON."  # type: ignore[index]
    out = llm.invoke([message])
    assert out["parsed"] is None and out["parsing_error"] is not None
    import json

    findings = json.loads(out["raw"].content)
    assert findings["emulated"] is True and findings["images"][0]["text_lines"] == ["EXIT 12"]
