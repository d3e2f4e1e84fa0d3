"""The bad-input corpus (tests/badinputs.py) at every door: encoder, conversation, local backend.

At the encoder and conversation each bad input must raise the vizlab error class the corpus
names, with a message that names the input and says what to do; the inputs that are merely
unusual must work. At the local backend, over real HTTP, each body must get Azure's error JSON
with a 4xx (or a 200 for the inputs that work): never a 500, never a hang (every request has a
timeout). A hypothesis fuzzer then posts malformed bodies and looks for a 5xx.
"""

from __future__ import annotations

import base64
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import requests
from badinputs import ADVICE_VERBS, CASES, Case, animated_gif
from conftest import LOCAL_API_KEY, TINY_PNG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vizlab.conversation import Conversation
from vizlab.errors import ImageError, VizlabError
from vizlab.images import encode_image

API_VERSION = "2024-10-21"
TIMEOUT = (5, 60)  # connect, read: a hang fails the test instead of stalling the suite


def _params(cases: list[Case], problem: str) -> list[Any]:
    out = []
    for case in cases:
        reason = getattr(case, problem)
        marks = [pytest.mark.xfail(strict=True, reason=f"library problem: {reason}")] if reason else []
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out


VIZLAB_CASES = _params([c for c in CASES if c.enters in ("encoder", "conversation")], "known_vizlab_problem")
HTTP_CASES = _params([c for c in CASES if c.body is not None], "known_http_problem")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("badinputs")


def test_the_corpus_is_complete() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 25
    assert {c.enters for c in CASES} == {"encoder", "conversation", "request"}
    for case in CASES:
        assert case.how and case.enters in ("encoder", "conversation", "request")
        assert case.make is not None or case.body is not None, case.name
        if case.enters == "request":
            assert case.make is None and case.error is None


def says_what_to_do(message: str) -> bool:
    """An advice verb as a word of its own ("pass ...", "Convert ..."), not inside a name like add_user."""
    return re.search(r"(?<![\w.])(" + "|".join(map(re.escape, ADVICE_VERBS)) + r")(?![\w(])", message, re.I) is not None


def _name_of(source: Any) -> str:
    """What an error message must contain to name this input."""
    if isinstance(source, Path):
        return source.name
    if isinstance(source, str):
        return source[:18]
    raise AssertionError(f"no name for {type(source).__name__}")


def _check_message(case: Case, error: BaseException, source: Any | None) -> None:
    message = str(error)
    if source is not None:
        assert _name_of(source) in message, f"message does not name the input: {message}"
        if isinstance(error, ImageError):
            assert error.source, "ImageError.source is empty"
    for word in case.mentions:
        assert word.lower() in message.lower(), f"{word!r} missing from: {message}"
    assert says_what_to_do(message), f"message does not say what to do: {message}"


def _content(conv: Conversation) -> dict[str, Any]:
    doc = conv.to_dict()
    doc.pop("saved", None)  # a timestamp, not content
    return doc


def _run_conversation(conv: Conversation, spec: dict[str, Any]) -> Any:
    if "turns" in spec:
        for images in spec["turns"]:
            conv.add_user("What changed?", images)
            conv.add_assistant("Something.")
        return conv
    return conv.add_user(**spec)


@pytest.mark.slow
@pytest.mark.parametrize("case", VIZLAB_CASES)
def test_encoder_and_conversation(case: Case, corpus_dir: Path) -> None:
    assert case.make is not None
    source = case.make(corpus_dir)
    conv = Conversation(fit=case.encode_kwargs.get("fit"))
    if case.enters == "encoder":
        def run() -> Any:
            return encode_image(source, **case.encode_kwargs)

        def run_conv() -> Any:
            return conv.add_user("What is this?", source)
    else:
        def run() -> Any:
            return _run_conversation(conv, source)

        run_conv = run

    if case.error is None:
        if case.warns is not None:
            with pytest.warns(case.warns, match="first frame"):
                result = run()
            with pytest.warns(case.warns, match="first frame"):
                run_conv()
        else:
            result = run()
            run_conv()
        if case.check is not None:
            case.check(result)
        # The conversation holds the same image and sends it under the sniffed MIME type.
        (stored,) = conv.images.values()
        assert stored.sha256 == result.sha256
        assert stored.data_url.startswith(f"data:{result.mime};base64,")
        return

    before = _content(conv)
    with pytest.raises(VizlabError) as info:
        run()
    assert type(info.value) is case.error, f"{type(info.value).__name__}: {info.value}"
    _check_message(case, info.value, source if case.enters == "encoder" else None)
    if case.enters == "encoder":
        # The same input through a conversation: the same error, and nothing changes.
        with pytest.raises(case.conversation_error or case.error):
            run_conv()
        assert _content(conv) == before and len(conv) == 0 and not conv.images
    elif "turns" in source:
        assert len(conv) == 10, "the refused turn must not be added"


def _post(backend: Any, body: Any) -> requests.Response:
    url = f"{backend.url}/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}"
    headers = {"api-key": LOCAL_API_KEY}
    if isinstance(body, (bytes, bytearray)):
        return requests.post(url, data=bytes(body), headers={**headers, "content-type": "application/json"}, timeout=TIMEOUT)
    return requests.post(url, json=body, headers=headers, timeout=TIMEOUT)


def _assert_azure_error(response: requests.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    payload = response.json()
    assert set(payload) == {"error"}, payload
    error = payload["error"]
    assert isinstance(error.get("code"), str) and error["code"], payload
    assert isinstance(error.get("message"), str) and error["message"], payload
    return dict(error)


@pytest.mark.slow
@pytest.mark.parametrize("case", HTTP_CASES)
def test_local_backend(case: Case, corpus_dir: Path, local_backend: Any) -> None:
    assert case.body is not None
    if case.make is not None:
        case.make(corpus_dir)  # the body reads the file the case makes
    response = _post(local_backend, case.body(corpus_dir))
    if case.http_status == 200:
        assert response.status_code == 200, response.text[:300]
        reply = response.json()["choices"][0]["message"]["content"]
        assert isinstance(reply, str) and reply
        return
    error = _assert_azure_error(response)
    assert response.status_code == case.http_status, f"{response.status_code}: {error}"
    if case.http_code is not None:
        assert error["code"] == case.http_code, error


def test_naive_png_named_jpg_is_relabelled_by_the_backend(corpus_dir: Path, local_backend: Any) -> None:
    """A client that labels a PNG 'image/jpeg' (from the .jpg name) is still understood."""
    from badinputs import by_name, data_url, image_request, picture

    png = io.BytesIO()
    picture(200, 100).save(png, format="PNG")
    response = _post(local_backend, image_request(data_url(png.getvalue(), "image/jpeg")))
    assert response.status_code == 200, response.text[:300]
    assert "200x100" in response.json()["choices"][0]["message"]["content"]
    assert by_name()["png_named_jpg"].error is None


# --- fuzzing ------------------------------------------------------------------------------------

_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
_json = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


def _tiny_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()


_IMAGE_BYTES = st.sampled_from([TINY_PNG, _tiny_jpeg(), animated_gif(), b"", b"GIF89a", TINY_PNG[:30]]) | st.binary(
    max_size=48
) | st.builds(lambda head, tail: head + tail, st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP"]),
              st.binary(max_size=40))
_MIME = st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "", "image/svg+xml"]) | st.text(
    max_size=10
)
_URL = (
    st.builds(lambda mime, data: f"data:{mime};base64,{base64.b64encode(data).decode()}", _MIME, _IMAGE_BYTES)
    | st.sampled_from(["", "data:", "data:image/png;base64,", "data:image/png;base64,====", "http://", "file:///etc/passwd",
                       "javascript:alert(1)", "data:image/png;base64,iVBORw0KGgo"])
    | st.text(max_size=30)
)
_DETAIL = st.sampled_from(["low", "high", "auto", "low", "high", "ultra", ""]) | _leaf
_IMAGE_URL = st.fixed_dictionaries({"url": _URL}, optional={"detail": _DETAIL})
_IMAGE_PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": _IMAGE_URL}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": _IMAGE_URL}),
    st.fixed_dictionaries({"type": st.just("image_url")}, optional={"image_url": _json | _IMAGE_URL}),
)
_TEXT_PART = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "text", "image", "refusal", "input_text"])}, optional={"text": st.text(max_size=20) | _leaf}
)
_PART = st.one_of(_IMAGE_PART, _IMAGE_PART, _TEXT_PART, _json, st.fixed_dictionaries({"image": st.text(max_size=20) | _leaf}))
_CONTENT = st.one_of(st.lists(_PART, min_size=1, max_size=4), st.lists(_PART, max_size=4), st.text(max_size=30), _leaf)
_ROLE = st.sampled_from(["user", "user", "user", "system", "assistant", "developer", "wizard"])
_MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": _ROLE, "content": _CONTENT}),
    st.fixed_dictionaries({"role": _ROLE, "content": _CONTENT}),
    st.fixed_dictionaries({"role": _ROLE | _leaf}, optional={"content": _CONTENT, "name": _leaf}),
    _json,
)
_WELL_SHAPED = st.fixed_dictionaries(
    {"messages": st.lists(_MESSAGE, min_size=1, max_size=3)},
    optional={"max_tokens": st.integers(-2, 40), "temperature": st.floats(-1, 3), "n": st.integers(-1, 3),
              "stream": st.booleans()},
)
# Mostly well-shaped bodies, so the fuzzer gets past the top-level checks into parts and images.
_BODY = st.one_of(
    _WELL_SHAPED,
    _WELL_SHAPED,
    _WELL_SHAPED,
    st.fixed_dictionaries(
        {"messages": st.lists(_MESSAGE, max_size=3) | _json},
        optional={"max_tokens": _leaf, "temperature": _leaf, "n": _leaf, "stream": _leaf, "stop": _json, "model": _leaf},
    ),
    _json,
)


def _check_never_5xx(response: requests.Response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:400]}"
    if response.status_code >= 400:
        _assert_azure_error(response)
    elif "text/event-stream" not in response.headers.get("content-type", ""):
        assert "choices" in response.json()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=_BODY)
def test_fuzzed_request_bodies_never_get_a_5xx(local_backend: Any, body: Any) -> None:
    _check_never_5xx(_post(local_backend, body))


# Well-formed requests whose images are fuzzed: reaches data-URL parsing, sniffing and decoding.
_IMAGE_BODY = st.builds(
    lambda parts, max_tokens: {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, *parts]}],
        "max_tokens": max_tokens,
    },
    st.lists(st.fixed_dictionaries({"type": st.just("image_url"), "image_url": _IMAGE_URL}), min_size=1, max_size=3),
    st.integers(1, 30),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=_IMAGE_BODY)
def test_fuzzed_image_parts_never_get_a_5xx(local_backend: Any, body: Any) -> None:
    _check_never_5xx(_post(local_backend, body))


_VALID_BODY = json.dumps(
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Colour?"},
                                                {"type": "image_url", "image_url": {"url": "data:image/png;base64,"
                                                 + base64.b64encode(TINY_PNG).decode(), "detail": "low"}}]}],
     "max_tokens": 20}
).encode()


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, len(_VALID_BODY) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_byte_mutated_bodies_never_get_a_5xx(local_backend: Any, edits: list[tuple[int, int]]) -> None:
    body = bytearray(_VALID_BODY)
    for index, value in edits:
        body[index] = value
    _check_never_5xx(_post(local_backend, bytes(body)))


def test_the_works_cases_are_really_sent_as_sniffed(corpus_dir: Path) -> None:
    """png_named_jpg through image_part: the part's data URL says image/png."""
    from vizlab.images import image_part

    path = corpus_dir / "really-a-png.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (10, 10), (1, 2, 3)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        part = image_part(path, detail="low")
    assert part["image_url"]["url"].startswith("data:image/png;base64,")
