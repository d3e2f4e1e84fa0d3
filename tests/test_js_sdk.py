"""The official npm ``openai`` SDK (pinned in tests/js/package.json) against the built-in backend:
a structured-output request and a Responses API request with a follow-up by id. Skipped, with the
reason, where node or the installed package is missing (``npm ci`` in tests/js installs it;
``make setup`` and ``.ci/run`` do that when npm exists)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import vizlab
from vizlab.datasets import text_card
from vizlab.local import LocalBackend

JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")
INSTALLED = (JS / "node_modules" / "openai" / "package.json").exists()

pytestmark = pytest.mark.skipif(
    NODE is None or not INSTALLED,
    reason="node is not installed" if NODE is None else "the npm openai package is not installed: run `npm ci` in tests/js",
)


@pytest.mark.slow
def test_npm_openai_structured_output_and_responses() -> None:
    assert NODE is not None
    pinned = json.loads((JS / "package.json").read_text())["dependencies"]["openai"]
    installed = json.loads((JS / "node_modules" / "openai" / "package.json").read_text())["version"]
    assert installed == pinned, f"tests/js has openai {installed}, package.json pins {pinned}: run `npm ci` in tests/js"
    with LocalBackend(api_key="js-key", deployments=("gpt-4o",), stream_chunk_delay_s=0) as backend:
        env = {
            **os.environ,
            "VIZLAB_BASE_URL": backend.url + "/openai/v1",
            "VIZLAB_API_KEY": "js-key",
            "VIZLAB_IMAGE_URL": vizlab.to_data_url(text_card("OPEN 9-5", font_px=60, size=(600, 300))),
        }
        done = subprocess.run([NODE, str(JS / "emulation.mjs")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["structured"] == {"text": "OPEN 9-5", "line_count": 1}
    assert result["emulated"] == "json_schema"
    assert "OPEN 9-5" in result["first"]["text"]
    assert "OPEN 9-5" in result["follow"]["text"] and result["follow"]["previous"] == result["first"]["id"]
    assert result["follow"]["input_tokens"] > result["first"]["input_tokens"]
    assert result["refused"]["status"] == 400 and "additionalProperties" in result["refused"]["message"]


AI_SDK = (JS / "node_modules" / "ai" / "package.json").exists() and (JS / "node_modules" / "@ai-sdk" / "azure").exists()


@pytest.mark.slow
@pytest.mark.skipif(not AI_SDK, reason="the npm ai / @ai-sdk/azure packages are not installed: run `npm ci` in tests/js")
def test_vercel_ai_sdk_and_zod_response_format() -> None:
    """OpenAI's zodResponseFormat and the Vercel AI SDK's generateObject (both add `$schema`; the
    Azure provider sends api-version=v1) with an image, and a forced tool, through node."""
    assert NODE is not None
    with LocalBackend(api_key="js-key", deployments=("gpt-4o",), stream_chunk_delay_s=0) as backend:
        env = {
            **os.environ,
            "VIZLAB_BACKEND_URL": backend.url,
            "VIZLAB_API_KEY": "js-key",
            "VIZLAB_IMAGE_URL": vizlab.to_data_url(text_card("HELLO", font_px=80, size=(500, 250))),
        }
        done = subprocess.run([NODE, str(JS / "aisdk.mjs")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    card = {"text": "HELLO", "word_count": 1, "kind": "text"}
    assert result["zod"] == result["object"] == result["responses"] == card
    [call] = result["tool"]
    assert call["name"] == "record_text" and call["input"]["text"] == "HELLO" and 0.7 <= call["input"]["confidence"] <= 1
