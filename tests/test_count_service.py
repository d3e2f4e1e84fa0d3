"""Text counted by the shared backend instead of in each kernel (issue 26; vizlab.tokens.text's
count service, vizlab.local.counting, vizlab.local.routes.counting)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import vizlab
from vizlab.local.counting import COUNT_PATH, SharedCounter
from vizlab.local.server import LocalBackend
from vizlab.tokens.request import estimate_request
from vizlab.tokens.text import (
    CACHE_ENTRIES,
    build_encoding,
    count_service,
    count_texts,
    use_count_service,
)

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["", "hello world", "Grüße, 東京! 🚀", "<|endoftext|> is plain text here", "a" * 5000,
         "line one\nline two\r\n\tindented", "x" * 4096]  # fmt: skip


def _here(texts: list[str], encoding: str) -> list[int]:
    enc = build_encoding(encoding)
    return [len(enc.encode_ordinary(t)) for t in texts]


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_the_route_counts_as_the_kernel_would(encoding: str) -> None:
    with LocalBackend() as backend:
        answer = requests.post(backend.url + COUNT_PATH, json={"encoding": encoding, "texts": TEXTS},
                               headers={"api-key": "any"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200
    assert answer.json() == {"encoding": encoding, "counts": _here(TEXTS, encoding)}


@pytest.mark.parametrize(
    ("body", "param"),
    [({"encoding": "p50k_base", "texts": ["a"]}, "encoding"), ({"encoding": "o200k_base", "texts": "a"}, "texts"),
     ({"encoding": "o200k_base", "texts": ["a", 3]}, "texts"), (["a"], None)],
)  # fmt: skip
def test_the_route_refuses_a_bad_body_in_azures_shape(body: object, param: str | None) -> None:
    with LocalBackend() as backend:
        answer = requests.post(backend.url + COUNT_PATH, json=body, headers={"api-key": "any"}, timeout=30)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param and error["message"]


def test_the_route_is_behind_the_backends_key_and_not_in_its_api() -> None:
    with LocalBackend(api_key="the-key") as backend:
        wrong = requests.post(backend.url + COUNT_PATH, json={"encoding": "o200k_base", "texts": ["a"]},
                              headers={"api-key": "not-the-key"}, timeout=30)  # fmt: skip
        schema = requests.get(backend.url + "/openapi.json", timeout=30).json()
    assert wrong.status_code == 401
    assert COUNT_PATH not in schema["paths"]


def test_an_estimate_counts_its_texts_in_one_call_with_the_same_result() -> None:
    """A fake service isolates the batching: it counts with the real encoder and logs its calls."""
    calls: list[int] = []

    def service(encoding: str, texts: list[str]) -> list[int]:
        calls.append(len(texts))
        return _here(texts, encoding)

    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": f"part {i}"} for i in range(10)]},
                {"role": "assistant", "content": "Sure."}]  # fmt: skip
    here = estimate_request(messages, model="gpt-5.4")
    before = use_count_service(service)
    try:
        there = estimate_request(messages, model="gpt-5.4")
        again = estimate_request(messages, model="gpt-5.4")
    finally:
        use_count_service(before)
    assert there.prompt_tokens == here.prompt_tokens and there.text_tokens == here.text_tokens
    assert calls == [len({"system", "Be brief.", "user", "assistant", "Sure.", *(f"part {i}" for i in range(10))})]
    assert again.prompt_tokens == here.prompt_tokens  # answered from memory: no second call


def test_a_failing_service_is_dropped_and_counting_carries_on_here() -> None:
    def broken(encoding: str, texts: list[str]) -> list[int]:
        raise ConnectionRefusedError("the backend stopped")

    before = use_count_service(broken)
    try:
        assert count_texts(TEXTS, "o200k_base") == _here(TEXTS, "o200k_base")
        assert count_service() is None
    finally:
        use_count_service(before)


def test_a_service_that_answers_the_wrong_number_of_counts_is_not_believed() -> None:
    before = use_count_service(lambda encoding, texts: [1])
    try:
        assert count_texts(["one two three", "four"], "o200k_base") == _here(["one two three", "four"], "o200k_base")
        assert count_service() is None
    finally:
        use_count_service(before)


def test_memory_of_counts_is_bounded() -> None:
    before = use_count_service(lambda encoding, texts: [1] * len(texts))
    try:
        count_texts([f"t{i}" for i in range(CACHE_ENTRIES + 500)], "o200k_base")
        from vizlab.tokens import text

        assert len(text._counting.cache) == CACHE_ENTRIES  # noqa: SLF001 (the bound under test)
    finally:
        use_count_service(before)


def test_a_stopped_shared_backend_leaves_counts_unchanged() -> None:
    with LocalBackend() as backend:
        counter = SharedCounter(backend.url, "any")
        assert counter("o200k_base", ["hello world"]) == [2]
    before = use_count_service(counter)  # now stopped: refused at once
    try:
        assert count_texts(["hello world", "again"], "o200k_base") == _here(["hello world", "again"], "o200k_base")
        assert count_service() is None
    finally:
        use_count_service(before)
    assert "any" not in repr(counter)


@pytest.mark.slow
def test_a_kernel_on_the_shared_backend_builds_no_encoder(tmp_path: Path) -> None:
    """A fresh interpreter, as a kernel: it chats with an image, estimates and counts, and never
    builds tiktoken's encoder (~45 MiB); its numbers equal those counted here."""
    code = """
import json, vizlab, vizlab.datasets
from vizlab.tokens.text import build_encoding, count_service
from vizlab.tokens.request import estimate_request
client = vizlab.connect(verbose=False, env_file=None)
estimate_request([], model="gpt-5.4")  # no text at all: nothing to count, nothing to build
part = vizlab.image_part(vizlab.datasets.colour_card("red"), detail="low")
reply = client.chat([{"role": "user", "content": [{"type": "text", "text": "Which colour?"}, part]}], max_tokens=400)
est = estimate_request([{"role": "user", "content": "How many tokens is this sentence?"}], model="gpt-5.4")
print(json.dumps({"built": build_encoding.cache_info().currsize, "service": type(count_service()).__name__,
                  "prompt": est.prompt_tokens, "count": vizlab.count_text_tokens("Grüße, 東京!", "gpt-4"),
                  "usage": reply.usage.prompt_tokens}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI", "OPENAI_"))}
    env.pop("VIZLAB_BACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["built"] == 0 and seen["service"] == "SharedCounter"
    assert seen["prompt"] == estimate_request([{"role": "user", "content": "How many tokens is this sentence?"}],
                                              model="gpt-5.4").prompt_tokens  # fmt: skip
    assert seen["count"] == vizlab.count_text_tokens("Grüße, 東京!", "gpt-4")
    assert seen["usage"] > 0
