"""vizlab.client over real HTTP on loopback, against the built-in backend (no SDK mocks).

Every request goes through the openai SDK to a :class:`vizlab.local.LocalBackend`: the shared
``local_backend`` fixture (key ``LOCAL_API_KEY``) or a small one started for a test that needs
other settings (a rate limit, latency, a distinctive key).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import pickle
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LOCAL_API_KEY, make_image_bytes

from vizlab import errors, images
from vizlab.client import DEFAULT_API_VERSION, Client, Reply, connect
from vizlab.client.replies import finish_reason_of
from vizlab.client.targets import display_url

# These tests exercise connect()'s own choice from the environment (conftest forces the
# built-in backend for every other module).
pytestmark = pytest.mark.usefixtures("real_env_selection")
from vizlab.conversation import Conversation
from vizlab.local import LocalBackend
from vizlab.local.config import DEFAULT_DEPLOYMENT, DEFAULT_DEPLOYMENTS
from vizlab.models import lookup

# Not shaped like any real key (no sk-, not 32 hex), so only vizlab's own redaction can hide it.
FAKE_KEY = "vizlab-FAKE-KEY-Zq8rT2wX"

ENV_VARS = (
    "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_DEPLOYMENT_NAME",
    "AZURE_OPENAI_AD_TOKEN", "OPENAI_API_VERSION", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL",
)
SUMMARY = re.compile(
    r"prompt [\d,]+ tokens \(estimate [\d,]+\) · completion [\d,]+ · \$\d+\.\d{4} · \d+\.\d\d s · finish: \w+"
)


def image_url(width: int = 64, height: int = 48) -> str:
    return "data:image/png;base64," + base64.b64encode(make_image_bytes(width, height)).decode("ascii")


def ask(text: str = "What is in this image?", url: str | None = None) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    content.append({"type": "image_url", "image_url": {"url": url or image_url(), "detail": "auto"}})
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]


def free_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def client(local_backend: Any) -> Iterator[Client]:
    """Azure protocol with key auth, pointed at the shared built-in backend."""
    with connect(
        backend="azure", endpoint=local_backend.url, api_key=LOCAL_API_KEY, env_file=None, verbose=False
    ) as c:
        yield c


@pytest.fixture(scope="module")
def fake_key_backend() -> Iterator[LocalBackend]:
    """A backend whose one valid key is FAKE_KEY, so successes and errors all carry it."""
    with LocalBackend(api_key=FAKE_KEY, deployments=("gpt-4o",)) as backend:
        yield backend


# --- first answer, shapes, conversation ------------------------------------------------------


def test_first_answer_has_text_usage_estimate_filters_and_raw(client: Client) -> None:
    messages = ask()
    reply = client.chat(messages)
    assert reply.text and reply.finish_reason == "stop"
    assert reply.model == "gpt-4o-2024-11-20" and reply.backend == "azure"  # the dated model, as Azure reports
    assert reply.answered_by == "vizlab-local-analyst"
    assert reply.usage is not None and reply.estimate is not None
    assert reply.usage.prompt_tokens == reply.estimate.prompt_tokens  # same published rules
    assert reply.estimate.image_tokens > 0
    assert reply.prompt_filter_results and reply.content_filter_results
    assert reply.raw["choices"][0]["message"]["content"] == reply.text
    assert reply.raw["usage"]["prompt_tokens"] == reply.usage.prompt_tokens
    assert reply.request == {"model": "gpt-4o", "messages": messages, "max_tokens": 1000}
    assert reply.cost is not None and reply.cost.total > 0
    assert reply.latency_s > 0 and reply.request_id
    assert reply.warnings() == []
    assert SUMMARY.search(str(reply)) and str(reply).startswith(reply.text)
    assert SUMMARY.search(reply._repr_markdown_())
    assert "vizlab-local-analyst" in repr(reply)


def test_plain_string_is_one_user_message(client: Client) -> None:
    reply = client.chat("Hello")
    assert reply.request["messages"] == [{"role": "user", "content": "Hello"}]
    assert reply.text


def test_detail_overrides_the_request_copy_only(client: Client) -> None:
    messages = ask()
    before = copy.deepcopy(messages)
    reply = client.chat(messages, detail="low")
    assert reply.request["messages"][1]["content"][1]["image_url"]["detail"] == "low"
    assert messages == before  # the caller's list is not mutated
    assert reply.usage is not None and reply.estimate is not None
    assert reply.estimate.image_tokens == 85  # gpt-4o low detail: a flat 85 tokens


def _header_reads(run: Any) -> int:
    """How many times ``run()`` reads an image header (vizlab.images.header.read_header_size), in this thread."""
    from vizlab.images import header

    reads = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_name == "read_header_size" and code.co_filename == header.__file__:
            reads.append(code)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return len(reads)


def test_chat_reads_each_image_header_once_per_call(client: Client) -> None:
    # image_part read the header when it built the part; the estimate takes that size. A data URL
    # the caller wrote is read once (its size is never taken on trust).
    replies: list[Reply] = []
    built = images.image_part(make_image_bytes(300, 200), detail="low")
    written = {"type": "image_url", "image_url": {"url": image_url(64, 48), "detail": "low"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is in these images?"}, built, written]}]
    assert _header_reads(lambda: replies.append(client.chat(messages))) == 1
    estimate = replies[0].estimate
    assert estimate is not None and [b.original for b in estimate.images] == [(300, 200), (64, 48)]
    conv = Conversation("Be brief.")
    assert _header_reads(lambda: conv.add_user("What colour is this?", [make_image_bytes(64, 48)])) == 1
    assert _header_reads(lambda: replies.append(client.chat(conv, detail="high"))) == 0
    assert replies[1].estimate is not None and replies[1].estimate.images[0].original == (64, 48)


def test_unknown_detail_is_refused_before_sending(client: Client) -> None:
    with pytest.raises(errors.UnknownDetailError):
        client.chat(ask(), detail="ultra")


def test_conversation_gets_the_reply_appended(client: Client) -> None:
    conv = Conversation("Be brief.")
    conv.add_user("What colour is this?", [make_image_bytes(64, 48)])
    reply = client.chat(conv, detail="high")
    assert len(conv.turns) == 2
    turn = conv.turns[-1]
    assert turn.role == "assistant" and turn.text == reply.text
    assert turn.meta["finish_reason"] == "stop" and turn.meta["model"] == "gpt-4o-2024-11-20"
    assert turn.meta["usage"]["prompt_tokens"] == reply.usage.prompt_tokens  # type: ignore[union-attr]
    assert {"estimate", "latency_s", "cost"} <= set(turn.meta)
    assert conv.messages()[1]["content"][1]["image_url"]["detail"] == "auto"  # stored detail kept


def test_failed_request_leaves_the_conversation_exactly_as_it_was(local_backend: Any) -> None:
    conv = Conversation()
    conv.add_user("Hi", [make_image_bytes(32, 32)])
    before = copy.deepcopy(conv)
    with connect(
        backend="azure", endpoint=local_backend.url, api_key=LOCAL_API_KEY, deployment="no-such-deployment",
        env_file=None, verbose=False,
    ) as c:
        with pytest.raises(errors.DeploymentNotFoundError) as info:
            c.chat(conv)
    assert conv == before and len(conv.turns) == 1
    err = info.value
    # The v1 route (the client's default on Azure) answers 400 unknown_model, as recorded (tests/data/recordings).
    assert err.deployment == "no-such-deployment" and err.status == 400 and err.code == "unknown_model"
    assert "'no-such-deployment'" in str(err) and "AZURE_OPENAI_DEPLOYMENT" in str(err)
    assert isinstance(err.__cause__, Exception)  # chained to the openai error


# --- errors -----------------------------------------------------------------------------------


def test_wrong_key_is_authentication_error(local_backend: Any) -> None:
    with connect(
        backend="azure", endpoint=local_backend.url, api_key="wrong", env_file=None, verbose=False
    ) as c:
        with pytest.raises(errors.AuthenticationError) as info:
            c.chat("hi")
    assert info.value.status == 401
    assert local_backend.url in str(info.value) and "AZURE_OPENAI_API_KEY" in str(info.value)


def test_content_filter_names_the_category_and_keeps_the_conversation(client: Client) -> None:
    conv = Conversation()
    conv.add_user("VIZLAB_TEST_FILTER:violence please describe")
    before = copy.deepcopy(conv)
    with pytest.raises(errors.ContentFilterError) as info:
        client.chat(conv)
    assert info.value.categories == ["violence"]
    assert info.value.status == 400 and info.value.code == "content_filter"
    assert "violence" in str(info.value) and "rephrase" in str(info.value)
    assert conv == before


def test_broken_base64_image_is_invalid_image_request(client: Client) -> None:
    broken = "data:image/png;base64,iVBORw0KGgo%%%%not-base64%%%%"
    with pytest.raises(errors.InvalidImageRequestError) as info:
        client.chat(ask(url=broken))
    assert info.value.status == 400 and "image" in str(info.value).lower()
    assert isinstance(info.value, errors.BadRequestError)


def test_other_bad_request_is_bad_request_error(client: Client) -> None:
    with pytest.raises(errors.BadRequestError) as info:
        client.chat("hi", temperature=7)
    assert not isinstance(info.value, (errors.InvalidImageRequestError, errors.ContentFilterError))
    assert info.value.status == 400


@pytest.mark.slow
def test_rate_limit_is_retried_after_the_servers_delay_then_succeeds() -> None:
    # rate_window_s shortens the quota window (a backend extra), so retry-after is about 1 s.
    with LocalBackend(api_key=LOCAL_API_KEY, rpm=1, rate_window_s=1.0) as backend:
        with connect(
            backend="azure", endpoint=backend.url, api_key=LOCAL_API_KEY, max_retries=3, env_file=None,
            verbose=False,
        ) as c:
            c.chat("first")
            started = time.perf_counter()
            reply = c.chat("second")
            waited = time.perf_counter() - started
    assert reply.text
    # It waited (a lower bound cannot flake); how fast it went is bench/'s business.
    assert waited >= 0.5, f"waited {waited:.2f} s; the server asked for about 1 s"


@pytest.mark.slow
def test_rate_limit_without_retries_reports_retry_after() -> None:
    with LocalBackend(api_key=LOCAL_API_KEY, rpm=1, rate_window_s=30.0) as backend:
        with connect(
            backend="azure", endpoint=backend.url, api_key=LOCAL_API_KEY, max_retries=0, env_file=None,
            verbose=False,
        ) as c:
            c.chat("first")
            with pytest.raises(errors.RateLimitError) as info:
                c.chat("second")
    err = info.value
    assert err.status == 429 and err.retry_after is not None and 1 <= err.retry_after <= 30
    assert "wait" in str(err).lower()


@pytest.mark.slow
def test_timeout_is_request_timeout_error_within_the_bound() -> None:
    with LocalBackend(api_key=LOCAL_API_KEY, latency_s=2.0) as backend:
        with connect(
            backend="azure", endpoint=backend.url, api_key=LOCAL_API_KEY, timeout=0.5, max_retries=0,
            env_file=None, verbose=False,
        ) as c:
            # The backend answers after 2 s; a RequestTimeoutError (not a reply) shows the 0.5 s
            # bound was applied, without a wall-clock assertion.
            with pytest.raises(errors.RequestTimeoutError) as info:
                c.chat("hi")
    assert "timeout=0.5" in str(info.value)


@pytest.mark.parametrize("backend", ["azure", "openai"])
def test_closed_port_is_backend_unavailable(backend: str) -> None:
    url = f"http://127.0.0.1:{free_closed_port()}"
    kwargs: dict[str, Any] = {"endpoint": url} if backend == "azure" else {"base_url": url + "/v1"}
    with connect(backend=backend, api_key="k", max_retries=0, env_file=None, verbose=False, **kwargs) as c:
        with pytest.raises(errors.BackendUnavailableError) as info:
            c.chat("hi")
        with pytest.raises(errors.BackendUnavailableError):
            c.models()
    assert "could not reach" in str(info.value) and "python -m vizlab.local" in str(info.value)


# --- length, streaming, cancel, async ---------------------------------------------------------


def test_length_finish_reason_warns_with_advice(client: Client) -> None:
    with pytest.warns(UserWarning, match="raise max_tokens"):
        reply = client.chat(ask("Describe this image in full detail"), max_tokens=3)
    assert reply.finish_reason == "length"
    assert any("max_tokens=3" in w for w in reply.warnings())
    assert "warning:" in str(reply)


def test_stream_yields_chunks_then_a_reply_with_usage(client: Client) -> None:
    conv = Conversation()
    conv.add_user("Describe this image in detail", [make_image_bytes(200, 100)])
    stream = client.stream(conv)
    chunks = list(stream)
    assert len(chunks) >= 2
    reply = stream.reply
    assert reply is not None and reply.text == "".join(chunks)
    assert reply.finish_reason == "stop" and reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.request["stream"] is True and reply.request["stream_options"] == {"include_usage": True}
    assert reply.prompt_filter_results and reply.model == "gpt-4o-2024-11-20"
    assert reply.answered_by == "vizlab-local-analyst"
    assert conv.turns[-1].text == reply.text


def test_stream_length_warns_at_the_end(client: Client) -> None:
    with pytest.warns(UserWarning, match="max_tokens"):
        with client.stream("Describe yourself in detail please", max_tokens=4) as stream:
            text = "".join(stream)
    assert stream.reply is not None and stream.reply.finish_reason == "length" and stream.reply.text == text


def test_stream_cancel_stops_early_and_leaves_the_conversation(client: Client) -> None:
    conv = Conversation()
    conv.add_user("Describe this image in detail", [make_image_bytes(200, 100)])
    before = copy.deepcopy(conv)
    stream = client.stream(conv)
    first = next(iter(stream))
    stream.cancel()
    assert list(stream) == []  # nothing more arrives
    assert stream.reply is not None and stream.reply.finish_reason == "cancelled"
    assert stream.reply.text == first and stream.reply.usage is None
    assert conv == before
    stream.cancel()  # idempotent


@pytest.mark.slow
def test_cancel_from_another_thread_ends_the_reading_loop(local_backend: Any) -> None:
    import threading

    with LocalBackend(api_key=LOCAL_API_KEY, stream_chunk_delay_s=0.2) as slow:
        with connect(backend="azure", endpoint=slow.url, api_key=LOCAL_API_KEY, env_file=None, verbose=False) as c:
            stream = c.stream(ask("Describe this image in detail"))
            received: list[str] = []
            first = threading.Event()

            def read() -> None:
                for piece in stream:
                    received.append(piece)
                    first.set()

            reader = threading.Thread(target=read)
            reader.start()
            assert first.wait(5)
            stream.cancel()
            reader.join(5)
            assert not reader.is_alive()
    assert stream.reply is not None and stream.reply.finish_reason == "cancelled"
    assert stream.reply.text == "".join(received)[: len(stream.reply.text)]


def test_leaving_the_with_block_early_cancels(client: Client) -> None:
    with client.stream("Describe yourself in detail please") as stream:
        for _ in stream:
            break
    assert stream.reply is not None and stream.reply.finish_reason == "cancelled"


def test_stream_errors_are_mapped_before_iteration(client: Client) -> None:
    with pytest.raises(errors.ContentFilterError):
        client.stream("VIZLAB_TEST_FILTER:hate")


def test_achat_works_and_appends(client: Client) -> None:
    conv = Conversation()
    conv.add_user("What is this?", [make_image_bytes(64, 48)])

    async def main() -> tuple[Reply, Reply]:
        return await asyncio.gather(client.achat(conv), client.achat(ask()))

    first, second = asyncio.run(main())
    assert first.text and second.text and first.usage is not None
    assert conv.turns[-1].text == first.text


def test_achat_maps_errors(local_backend: Any) -> None:
    with connect(
        backend="azure", endpoint=local_backend.url, api_key="wrong", env_file=None, verbose=False
    ) as c:
        with pytest.raises(errors.AuthenticationError):
            asyncio.run(c.achat("hi"))


# --- choosing the backend ---------------------------------------------------------------------


@pytest.mark.slow
def test_no_settings_start_the_shared_built_in_backend(clean_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    first = connect(env_file=None)
    second = connect(env_file=None, verbose=False)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    date = lookup(DEFAULT_DEPLOYMENT).retires  # the registry's date (Azure's table) is said on connect
    retires = f"; model {DEFAULT_DEPLOYMENT}: retires {date}" if date else ""
    assert re.fullmatch(
        rf"vizlab: built-in local backend at http://127\.0\.0\.1:\d+ \(deployment {re.escape(DEFAULT_DEPLOYMENT)}, "
        rf"model {re.escape(DEFAULT_DEPLOYMENT)} emulated by vizlab-local-analyst\)"
        + re.escape(retires) + r"\n",
        out,
    )
    assert first.backend == "local" and first.endpoint == second.endpoint  # one backend, reused
    assert first.describe() == out.strip() and first.token_model == DEFAULT_DEPLOYMENT  # a current reasoning model
    assert first.chat("hello").backend == "local"
    assert first.models() == sorted(DEFAULT_DEPLOYMENTS)
    first.close()
    second.close()


@pytest.mark.slow
@pytest.mark.parametrize(("deployment", "token_model"), [("gpt-4o-mini", "gpt-4o-mini"), ("team-vision", "gpt-4o")])
def test_built_in_backend_estimates_with_the_rules_it_reports_by(clean_env: Any, deployment: str, token_model: str) -> None:
    """The client's token_model is the one the built-in backend counts usage with on that deployment."""
    image = images.image_part(make_image_bytes(900, 600), detail="high")
    with connect(deployment=deployment, env_file=None, verbose=False) as c:
        assert c.token_model == token_model
        reply = c.chat([{"role": "user", "content": [{"type": "text", "text": "Describe"}, image]}])
    assert reply.usage is not None and reply.estimate is not None
    assert reply.usage.prompt_tokens == reply.estimate.prompt_tokens


def test_azure_from_environment(clean_env: pytest.MonkeyPatch, local_backend: Any) -> None:
    clean_env.setenv("AZURE_OPENAI_ENDPOINT", local_backend.url)
    clean_env.setenv("AZURE_OPENAI_API_KEY", LOCAL_API_KEY)
    clean_env.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-mini")
    with connect(env_file=None, verbose=False) as c:
        assert (c.backend, c.deployment, c.api_version, c.auth) == ("azure", "gpt-4o-mini", None, "key")  # v1 route
        assert c.token_model == "gpt-4o-mini"  # known to vizlab.tokens
        assert c.chat("hi").request["model"] == "gpt-4o-mini"
        assert c.describe() == (
            f"vizlab: Azure OpenAI at {local_backend.url} (deployment gpt-4o-mini, model gpt-4o-mini, v1 API, key auth); "
            "model gpt-4o-mini: deprecated, retires 2026-10-01"
        )
    clean_env.setenv("OPENAI_API_VERSION", DEFAULT_API_VERSION)  # the dated route stays selectable
    with connect(env_file=None, verbose=False) as c:
        assert c.api_version == DEFAULT_API_VERSION and c.chat("hi").text
        assert c.describe() == (
            f"vizlab: Azure OpenAI at {local_backend.url} (deployment gpt-4o-mini, model gpt-4o-mini, "
            f"api-version {DEFAULT_API_VERSION}, key auth); model gpt-4o-mini: deprecated, retires 2026-10-01"
        )


def test_openai_base_url_from_environment(clean_env: pytest.MonkeyPatch, local_backend: Any) -> None:
    clean_env.setenv("OPENAI_BASE_URL", local_backend.url + "/v1")
    clean_env.setenv("OPENAI_API_KEY", LOCAL_API_KEY)
    with connect(env_file=None, verbose=False) as c:
        assert c.backend == "openai" and c.deployment == "gpt-4o"
        assert c.chat(ask()).usage is not None
        assert c.models() == ["gpt-4o", "gpt-4o-mini"]
        assert "OpenAI-compatible server" in c.describe()


@pytest.mark.slow
def test_openai_base_url_alone_sends_a_dummy_key(clean_env: pytest.MonkeyPatch) -> None:
    local = connect(env_file=None, verbose=False)  # the shared backend accepts any key
    clean_env.setenv("OPENAI_BASE_URL", local.endpoint + "/v1")
    with connect(env_file=None, verbose=False) as c:
        assert c.backend == "openai" and c.auth == "none" and "no key" in c.describe()
        assert c.chat("hi").text


def test_azure_v1_base_url_style_with_the_openai_client(local_backend: Any) -> None:
    opts: dict[str, Any] = {"api_key": LOCAL_API_KEY, "env_file": None, "verbose": False}
    with connect(backend="openai", base_url=local_backend.url + "/openai/v1", **opts) as c:
        assert "Azure OpenAI v1 API" in c.describe()
        assert c.chat("hi").text
    with connect(backend="openai", base_url=local_backend.url + "/openai/v1", model="nope", **opts) as c:
        with pytest.raises(errors.DeploymentNotFoundError) as info:
            c.chat("hi")
    assert info.value.deployment == "nope" and "gpt-4o-mini" in str(info.value)  # what is there


def test_dotenv_file_in_the_working_directory(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, local_backend: Any
) -> None:
    (tmp_path / ".env").write_text(
        f"AZURE_OPENAI_ENDPOINT={local_backend.url}\nAZURE_OPENAI_API_KEY={LOCAL_API_KEY}\n"
        "AZURE_OPENAI_DEPLOYMENT=gpt-4o-mini\n"
    )
    clean_env.chdir(tmp_path)
    clean_env.setenv("AZURE_OPENAI_DEPLOYMENT", "gpt-4o")  # the environment wins over the file
    with connect(verbose=False) as c:
        assert c.backend == "azure" and c.deployment == "gpt-4o"
        assert c.chat("hi").text
    import os

    assert "AZURE_OPENAI_ENDPOINT" not in os.environ  # read, not exported


def test_explicit_missing_env_file_is_an_error(clean_env: Any, tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="not found"):
        connect(env_file=tmp_path / "missing.env", verbose=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "bogus"}, "not one of"),
        ({"backend": "azure"}, "AZURE_OPENAI_ENDPOINT"),
        ({"backend": "openai"}, "OPENAI_API_KEY"),
        ({"backend": "azure", "endpoint": "https://x.openai.azure.com", "use_entra_id": False}, "no key"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_configuration_errors(clean_env: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=match):
        connect(env_file=None, verbose=False, **kwargs)


class _FakeCredential:
    """Stands in for DefaultAzureCredential (azure-identity); the SDK and HTTP stay real."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken
        from azure.identity import CredentialUnavailableError

        assert scopes == ("https://cognitiveservices.azure.com/.default",)
        if self.token is None:
            raise CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token")
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.mark.slow
def test_entra_id_sends_a_bearer_token(clean_env: pytest.MonkeyPatch, local_backend: Any) -> None:
    import azure.identity

    clean_env.setattr(azure.identity, "DefaultAzureCredential", lambda: _FakeCredential(LOCAL_API_KEY))
    clean_env.setenv("AZURE_OPENAI_ENDPOINT", local_backend.url)  # and no key: keyless
    with connect(env_file=None, verbose=False) as c:
        assert c.auth == "entra-id" and "Microsoft Entra ID auth" in c.describe()
        assert c.chat("hi").text  # the backend accepts its key as a bearer token
        assert asyncio.run(c.achat("hi")).text


def test_missing_entra_credential_says_az_login(clean_env: pytest.MonkeyPatch, local_backend: Any) -> None:
    import azure.identity

    clean_env.setattr(azure.identity, "DefaultAzureCredential", lambda: _FakeCredential(None))
    with pytest.raises(errors.ConfigurationError, match="az login") as info:
        connect(backend="azure", endpoint=local_backend.url, env_file=None, verbose=False)
    assert "AZURE_OPENAI_API_KEY" in str(info.value)


# --- keys never leak --------------------------------------------------------------------------


def _all_text(obj: Any) -> str:
    parts = [str(obj), repr(obj)]
    for attr in ("body", "message", "__cause__", "__context__"):
        value = getattr(obj, attr, None)
        if value is not None:
            parts += [str(value), repr(value)]
    return "\n".join(parts)


def test_the_key_is_in_no_repr_description_reply_or_saved_file(
    fake_key_backend: LocalBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = fake_key_backend.url + "/?api-key=" + FAKE_KEY  # even a key pasted into the URL
    c = connect(backend="azure", endpoint=fake_key_backend.url, api_key=FAKE_KEY, env_file=None)
    shown = [c.describe(), repr(c), str(c), str(vars(c)), capsys.readouterr().out]
    assert display_url(endpoint) == fake_key_backend.url
    conv = Conversation()
    conv.add_user("What is this?", [make_image_bytes(32, 32)])
    reply = c.chat(conv)
    stream = c.stream("Describe yourself in detail please")
    chunks = "".join(stream)
    shown += [str(reply), repr(reply), reply._repr_markdown_(), str(reply.raw), str(reply.request), chunks,
              repr(stream), str(stream.reply), conv.save(tmp_path / "conv.json").read_text()]
    for text in shown:
        assert FAKE_KEY not in text
    with pytest.raises(TypeError):
        pickle.dumps(c)
    c.close()


def _provoke(kind: str, backend: LocalBackend) -> BaseException:
    url = backend.url
    opts: dict[str, Any] = {"env_file": None, "verbose": False, "max_retries": 0}
    calls = {
        "auth": lambda: connect(backend="azure", endpoint=url, api_key=FAKE_KEY + "x", **opts).chat("hi"),
        "deployment": lambda: connect(
            backend="azure", endpoint=url, api_key=FAKE_KEY, deployment="nope", **opts
        ).chat("hi"),
        "filter": lambda: connect(backend="azure", endpoint=url, api_key=FAKE_KEY, **opts).chat(
            "VIZLAB_TEST_FILTER:violence " + FAKE_KEY
        ),
        "image": lambda: connect(backend="azure", endpoint=url, api_key=FAKE_KEY, **opts).chat(
            ask(url="data:image/png;base64,%%%")
        ),
        "bad": lambda: connect(backend="azure", endpoint=url, api_key=FAKE_KEY, **opts).chat("hi", temperature=9),
        "down": lambda: connect(
            backend="azure", endpoint=f"http://127.0.0.1:{free_closed_port()}", api_key=FAKE_KEY, **opts
        ).chat("hi"),
        "config": lambda: connect(backend="azure", api_key=FAKE_KEY, **opts),
    }
    with pytest.raises(errors.VizlabError) as info:
        calls[kind]()
    return info.value


@pytest.mark.parametrize("kind", ["auth", "deployment", "filter", "image", "bad", "down", "config"])
def test_the_key_is_in_no_error(kind: str, fake_key_backend: LocalBackend, clean_env: Any) -> None:
    err = _provoke(kind, fake_key_backend)
    assert FAKE_KEY not in _all_text(err)


@pytest.mark.slow
def test_the_key_is_in_no_rate_limit_or_timeout_error() -> None:
    opts: dict[str, Any] = {"env_file": None, "verbose": False, "max_retries": 0, "api_key": FAKE_KEY}
    with LocalBackend(api_key=FAKE_KEY, rpm=1, rate_window_s=30.0) as backend:
        with connect(backend="azure", endpoint=backend.url, **opts) as c:
            c.chat("first")
            with pytest.raises(errors.RateLimitError) as limited:
                c.chat("second")
    with LocalBackend(api_key=FAKE_KEY, latency_s=1.0) as backend:
        with connect(backend="azure", endpoint=backend.url, timeout=0.2, **opts) as c:
            with pytest.raises(errors.RequestTimeoutError) as slow:
                c.chat("third")
    for err in (limited.value, slow.value):
        assert FAKE_KEY not in _all_text(err)


# --- error shapes the built-in backend does not send: the service's answer through httpx.MockTransport ---

RESOURCE = "https://res.openai.azure.com"


def _answering(status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """An openai SDK client (Azure's v1 route) whose every request gets this error answer, served by
    ``httpx.MockTransport`` through the SDK's ``http_client=`` seam: no server, no patched internals."""
    import httpx
    import openai

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": error}, headers=headers or {})

    return openai.OpenAI(base_url=f"{RESOURCE}/openai/v1/", api_key=FAKE_KEY, max_retries=0,
                         http_client=httpx.Client(transport=httpx.MockTransport(answer)))  # fmt: skip


def _mapped(client: Client, status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """The vizlab error ``client.mapped_errors()`` makes of that answer to a chat request."""
    sdk = _answering(status, error, headers)
    with pytest.raises(errors.VizlabError) as info, client.mapped_errors():
        sdk.chat.completions.create(model=client.deployment, messages=[{"role": "user", "content": "hi"}])
    sdk.close()
    return info.value


@pytest.fixture
def offline_azure(clean_env: Any) -> Iterator[Client]:
    """An Azure client that sends nothing (its errors come from _answering)."""
    with connect(backend="azure", endpoint=RESOURCE, api_key=FAKE_KEY, deployment="vision", env_file=None,
                 verbose=False) as c:  # fmt: skip
        yield c


def test_an_echoed_key_in_an_error_body_is_redacted(offline_azure: Client) -> None:
    body = {"code": "BadRequest", "message": f"bad key {FAKE_KEY}", "innererror": {"echo": [FAKE_KEY]}}
    err = _mapped(offline_azure, 400, body)
    assert isinstance(err, errors.BadRequestError) and err.status == 400
    assert FAKE_KEY not in _all_text(err) and FAKE_KEY not in str(err.body)


def test_top_level_filter_results_and_long_retry_after(offline_azure: Client) -> None:
    body = {"code": "BadRequest", "message": "filtered", "content_filter_result": {"sexual": {"filtered": True}}}
    err = _mapped(offline_azure, 400, body)
    assert isinstance(err, errors.ContentFilterError) and err.categories == ["sexual"]
    limited = _mapped(offline_azure, 429, {"message": "slow down"}, {"retry-after": "300", "x-request-id": "r"})
    assert isinstance(limited, errors.RateLimitError) and limited.retry_after == 300 and limited.request_id == "r"
    assert "longer than the SDK waits" in str(limited)
    failed = _mapped(offline_azure, 503, {"message": "busy"})
    assert type(failed) is errors.APIError and failed.status == 503


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (401, {"code": "401", "message": "Access denied"}, errors.AuthenticationError),
        (404, {"code": "DeploymentNotFound", "message": "no such deployment"}, errors.DeploymentNotFoundError),
        (400, {"code": "unknown_model", "message": "Unknown model: vision"}, errors.DeploymentNotFoundError),
        (400, {"code": "unsupported_parameter", "param": "max_tokens", "message": "Use 'max_completion_tokens'"},
         errors.UnsupportedParameterError),
        (400, {"code": "content_filter", "message": "blocked"}, errors.ContentFilterError),
        (400, {"code": "BadRequest", "message": "Invalid image data"}, errors.InvalidImageRequestError),
        (413, {"code": "too_large", "message": "body too large"}, errors.BadRequestError),
        (408, {"code": "timeout", "message": "took too long"}, errors.RequestTimeoutError),
        (418, {"code": "teapot", "message": "short and stout"}, errors.APIError),
    ],
)  # fmt: skip
def test_each_status_maps_to_its_error(offline_azure: Client, status: int, error: dict[str, Any], kind: type) -> None:
    err = _mapped(offline_azure, status, error)
    assert type(err) is kind and err.status == status
    assert RESOURCE in str(err) and error["message"] in str(err)


def test_finish_reason_of_the_2023_enhancements_shape() -> None:
    assert finish_reason_of({"finish_reason": {"type": "stop", "stop": "<|fim_suffix|>"}}) == "stop"
    assert finish_reason_of({"finish_reason": "length"}) == "length"
    assert finish_reason_of({}) is None


def test_display_url_drops_credentials_and_query() -> None:
    assert display_url("https://user:pw@res.openai.azure.com/?api-key=abc") == "https://res.openai.azure.com"


def test_local_options_choose_the_builtin_backend_even_with_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    client = connect(local_options={}, api_key="any-key-will-do", verbose=False, env_file=None)
    assert client.backend == "local"
    assert client.endpoint.startswith("http://127.0.0.1:")


# --- arguments of the wrong type get a vizlab error naming the argument -------------------------


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"timeout": "5"}, "timeout="),
        ({"deployment": 5}, "deployment="),
        ({"backend": ["azure"]}, "backend="),
        ({"api_key": 12345678}, "api_key="),
        ({"env_file": 5}, "env_file="),
        ({"local_options": {"rpm": "5"}}, "rpm"),
        ({"local_options": {"latency": 1}}, "latency"),
        ({"local_options": [("rpm", 5)]}, "local_options="),
    ],
)
def test_connect_refuses_mistyped_arguments_with_configuration_error(clean_env: Any, kwargs: dict[str, Any], needle: str) -> None:
    kwargs.setdefault("env_file", None)
    with pytest.raises(errors.ConfigurationError) as info:
        connect(verbose=False, **kwargs)
    assert needle in str(info.value)
    assert "12345678" not in str(info.value)


@pytest.mark.slow
def test_local_backend_key_is_in_no_repr_or_global(clean_env: Any) -> None:
    from vizlab.client import targets as client_module

    secret = "plain-local-secret"
    with connect(local_options={"api_key": secret}, env_file=None, verbose=False) as c:
        local = c._target.local
        assert secret not in repr(local.config) and secret not in repr(local) and secret not in repr(c)
        assert secret not in repr(client_module._local_backends)
        assert c.chat("hi").text


def test_with_deployment_shares_the_connection_and_follows_the_models_rules(local_backend: Any) -> None:
    from conftest import LOCAL_API_KEY

    client = connect(backend="azure", endpoint=local_backend.url, api_key=LOCAL_API_KEY,
                     deployment="gpt-4o", verbose=False, env_file=None)
    mini = client.with_deployment("gpt-4o-mini")
    assert (mini.deployment, client.deployment) == ("gpt-4o-mini", "gpt-4o")
    assert mini.sdk is client.sdk
    reply = mini.chat([{"role": "user", "content": "hello"}], max_tokens=500)
    assert reply.request["model"] == "gpt-4o-mini"
    with pytest.raises(errors.ConfigurationError):
        client.with_deployment("")
    client.close()  # closes the pool both share


def test_vizlab_backend_variable_forces_the_builtin_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:9")  # would refuse connections
    monkeypatch.setenv("VIZLAB_BACKEND", "local")
    client = connect(verbose=False, env_file=None)
    assert client.backend == "local"
    monkeypatch.setenv("VIZLAB_BACKEND", "lcoal")
    with pytest.raises(errors.ConfigurationError, match="VIZLAB_BACKEND"):
        connect(verbose=False, env_file=None)
