"""Agent frameworks users run against the built-in backend (issue 20): pydantic-ai with an image
and a structured output, openai-agents with an image and a forced tool call. Real packages over
real HTTP; skipped, with the reason, when a package is not installed."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any, Iterator, Literal

import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from vizlab.datasets import text_card
from vizlab.local import LocalBackend

KEY = "agents-key"


class Card(BaseModel):
    text: str
    word_count: int
    kind: Literal["text", "shape", "colour"]


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), stream_chunk_delay_s=0) as b:
        yield b


@pytest.fixture(scope="module")
def png() -> bytes:
    buf = io.BytesIO()
    text_card("HELLO", font_px=80, size=(500, 250)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_pydantic_ai_structured_output_from_an_image(backend: LocalBackend, png: bytes) -> None:
    pytest.importorskip("pydantic_ai", reason="pydantic-ai is in the dev extra")
    from pydantic_ai import Agent, BinaryContent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    async def run() -> Any:
        async with AsyncOpenAI(base_url=backend.url + "/openai/v1", api_key=KEY, max_retries=0) as client:
            agent = Agent(OpenAIChatModel("gpt-4o", provider=OpenAIProvider(openai_client=client)), output_type=Card)
            return await agent.run(["Read the card.", BinaryContent(data=png, media_type="image/png")])

    assert asyncio.run(run()).output == Card(text="HELLO", word_count=1, kind="text")


@pytest.mark.slow
def test_openai_agents_forced_tool_on_an_image(backend: LocalBackend, png: bytes) -> None:
    pytest.importorskip("agents", reason="openai-agents is in the dev extra")
    from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    seen: list[Any] = []

    @function_tool
    def record_text(text: str, confidence: float) -> str:
        """Record the text read from the image, with the OCR confidence."""
        seen.append((text, confidence))
        return f"saved {text}"

    url = "data:image/png;base64," + base64.b64encode(png).decode()

    async def run() -> Any:
        async with AsyncOpenAI(base_url=backend.url + "/openai/v1", api_key=KEY, max_retries=0) as client:
            agent = Agent(name="reader", instructions="Read images.", tools=[record_text],
                          model=OpenAIChatCompletionsModel(model="gpt-4o", openai_client=client),
                          model_settings=ModelSettings(tool_choice="record_text"),
                          tool_use_behavior="stop_on_first_tool")
            return await Runner.run(agent, [{"role": "user", "content": [
                {"type": "input_text", "text": "Record what it says."},
                {"type": "input_image", "image_url": url, "detail": "high"}]}])  # type: ignore[list-item]

    assert asyncio.run(run()).final_output == "saved HELLO"
    assert seen and seen[0][0] == "HELLO" and 0.7 <= seen[0][1] <= 1.0
