"""Send conversations with images to a vision chat model and get back a measured :class:`Reply`.

**Which backend** :func:`connect` reaches, first match wins:

1. Explicit arguments: ``backend=`` ("azure", "openai" or "local"); else ``endpoint=`` means
   Azure OpenAI, ``base_url=`` an OpenAI-compatible server, ``api_key=`` alone OpenAI.
   ``VIZLAB_BACKEND`` ("local", "azure" or "openai") forces the choice among the variables
   below; ``VIZLAB_BACKEND=local`` keeps a shell's Azure settings out of a workshop or a test run.
2. ``AZURE_OPENAI_ENDPOINT``: Azure OpenAI with ``AZURE_OPENAI_API_KEY``, or keyless
   Microsoft Entra ID when no key is set (azure-identity's ``DefaultAzureCredential``, so
   ``az login`` is enough). ``AZURE_OPENAI_DEPLOYMENT`` names the deployment (default
   ``gpt-4o``), ``OPENAI_API_VERSION`` the api-version (default :data:`DEFAULT_API_VERSION`).
3. ``OPENAI_API_KEY`` and/or ``OPENAI_BASE_URL``: OpenAI, or any OpenAI-compatible server
   (Ollama, vLLM, LM Studio: ``OPENAI_BASE_URL`` alone is enough, those servers ignore the key).
   ``OPENAI_MODEL`` (or ``model=``) names the model, default ``gpt-4o``.
4. Nothing set: the built-in local backend (:mod:`vizlab.local`), started once per interpreter
   on 127.0.0.1 on a free port in a background thread, shared by every ``connect()`` and stopped
   at exit. It speaks Azure's wire protocol and is reached through ``AzureOpenAI``, so the same
   code path is exercised offline as against the real service.

A ``.env`` file (current directory, then the source checkout root) is read first; variables
already set in the environment win over it. Azure's newer ``/openai/v1`` API needs no
api-version and works with the plain OpenAI client:
``connect(backend="openai", base_url="https://RES.openai.azure.com/openai/v1", api_key=KEY)``.

**What calls return.** :meth:`Client.chat` and :meth:`Client.achat` return a :class:`Reply`
(text, finish_reason, the usage the service reported next to vizlab's own estimate made
before sending, cost, latency, content-filter results, the exact request body and the raw
response JSON). :meth:`Client.stream` returns a :class:`ReplyStream`: iterate it for text as it
arrives, then read ``.reply``. Given a :class:`~vizlab.conversation.Conversation`, a successful
call appends the assistant turn; a failed or cancelled call leaves it exactly as it was. A plain
list of messages is never mutated. A reply cut short (``finish_reason`` "length" or
"content_filter") raises a ``UserWarning`` saying what to do, also listed by ``Reply.warnings()``.

**Errors** are the classes of :mod:`vizlab.errors`, chained to the openai exception, with
messages that name the endpoint and deployment and say what to do next: 401/403
:class:`~vizlab.errors.AuthenticationError`, 404 :class:`~vizlab.errors.DeploymentNotFoundError`,
400 :class:`~vizlab.errors.ContentFilterError` / :class:`~vizlab.errors.InvalidImageRequestError`
/ :class:`~vizlab.errors.BadRequestError`, 429 :class:`~vizlab.errors.RateLimitError` (only once
the SDK's own retries, which honour ``retry-after-ms`` / ``retry-after``, are spent), no answer
within ``timeout`` :class:`~vizlab.errors.RequestTimeoutError`, nothing listening
:class:`~vizlab.errors.BackendUnavailableError`. Keys never appear in a message, a repr, the
one-line description or a saved reply: outside text passes through :func:`vizlab.errors.redact`.

Trade-offs: retries are the openai SDK's (``max_retries``; it sleeps for the server's
``retry-after-ms``/``retry-after`` when that is at most 120 s, else backs off 0.5 s doubling to
8 s, and does not retry when the server asks for more than 120 s). ``achat`` opens a fresh async
SDK client per call so it is safe across event loops (one extra TCP handshake per call).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import hashlib
import math
import os
import threading
import time
import warnings as _warnings
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit, urlunsplit

from vizlab import errors
from vizlab._env import DEFAULT_ENV_FILE, read_settings
from vizlab.errors import ConfigurationError, redact

if TYPE_CHECKING:
    from vizlab.pricing import Cost, PriceTable
    from vizlab.tokens import RequestEstimate, Usage

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_MODEL",
    "ENTRA_SCOPE",
    "Client",
    "Reply",
    "ReplyStream",
    "connect",
]

# Latest GA data-plane inference api-version listed on Microsoft Learn, "Azure OpenAI API
# version lifecycle" (learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle),
# checked 2025: 2024-10-21. It supports image input and stream_options.include_usage.
DEFAULT_API_VERSION = "2024-10-21"
DEFAULT_MODEL = "gpt-4o"
# Token scope for Azure OpenAI with Microsoft Entra ID, as in the 2025 images-in-chats quickstart.
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
LOCAL_MODEL_NAME = "vizlab-local-analyst"
# Local servers (Ollama, vLLM, LM Studio) ignore the key, but the SDK requires one.
_DUMMY_KEY = "not-needed"
_LOCAL_DEFAULT_DEPLOYMENTS = ("gpt-4o", "gpt-4o-mini")
_BACKENDS = ("azure", "openai", "local")
_DETAILS = ("low", "high", "auto")

# The SDK honours a server-directed retry delay only up to this (openai/_constants.py
# MAX_RETRY_AFTER_DELAY = 2 * 60, with INITIAL_RETRY_DELAY 0.5 and MAX_RETRY_DELAY 8.0; read in
# openai 3.52.0, the version installed here); longer asks are not retried.
_SDK_MAX_RETRY_AFTER_S = 120.0


# --- secrets ----------------------------------------------------------------------------------


class _Secret:
    """A key that does not print itself: repr, str and vars() of its holder show ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def reveal(self) -> str | None:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "***" if self._value else "None"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a vizlab key is not picklable, so it cannot end up in a saved file")


def _display_url(url: str) -> str:
    """The URL without credentials, query or fragment, e.g. for a one-line description.

    >>> _display_url("https://u:p@res.openai.azure.com/openai/v1/?api-key=x")
    'https://res.openai.azure.com/openai/v1'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _redact_obj(obj: Any, secrets: Sequence[str | None]) -> Any:
    """Redact every string inside a JSON-like structure (error bodies may echo anything)."""
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, Mapping):
        return {k: _redact_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact_obj(v, secrets) for v in obj]
    return obj


# --- the built-in backend, one per interpreter -------------------------------------------------

_local_lock = threading.Lock()
_local_backends: dict[tuple[tuple[str, str], ...], Any] = {}
_atexit_registered = False


def _stop_local_backends() -> None:
    with _local_lock:
        backends = list(_local_backends.values())
        _local_backends.clear()
    for backend in backends:
        try:
            backend.stop()
        except Exception:  # at exit, a backend that will not stop must not hide others
            pass


def _local_backend(options: Mapping[str, Any]) -> Any:
    """Start (once) and return the built-in backend for these options."""
    global _atexit_registered
    # Keyed by the options, with the key hashed so no plain key sits in a module global.
    key = tuple(sorted(
        (k, hashlib.sha256(repr(v).encode()).hexdigest() if k == "api_key" else repr(v)) for k, v in options.items()
    ))
    with _local_lock:
        backend = _local_backends.get(key)
        if backend is None:
            try:
                from vizlab.local import LocalBackend
            except ImportError as e:
                raise ConfigurationError(
                    f"the built-in backend could not be imported ({e}): reinstall vizlab with "
                    "`pip install -e .`, or set AZURE_OPENAI_ENDPOINT / OPENAI_BASE_URL"
                ) from e
            kwargs = {"host": "127.0.0.1", "port": 0, **options}
            try:
                backend = LocalBackend(**kwargs).start()
            except (TypeError, ValueError) as e:  # a misspelt or mistyped local_options entry
                raise ConfigurationError(
                    f"local_options could not configure the built-in backend: {redact(str(e))}. Use the "
                    "fields of vizlab.local.BackendConfig, e.g. local_options={'rpm': 10, 'latency_s': 0.5}"
                ) from e
            _local_backends[key] = backend
            if not _atexit_registered:
                atexit.register(_stop_local_backends)
                _atexit_registered = True
        return backend


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """Where requests go and how they authenticate; never printed with the key."""

    backend: str
    endpoint: str  # Azure: the resource endpoint; openai: the base URL
    deployment: str  # Azure deployment name, or the model name for the openai backend
    api_version: str | None
    auth: str  # "key", "entra-id" or "none"
    api_key: _Secret
    token_provider: Callable[[], str] | None = field(default=None, repr=False)
    local: Any = field(default=None, repr=False)


def _entra_token_provider(endpoint: str) -> Callable[[], str]:
    """A bearer-token provider from ``DefaultAzureCredential``, checked once now so a missing
    login fails at connect() with advice rather than at the first request."""
    advice = (
        f"no Microsoft Entra ID credential for {_display_url(endpoint)}: run `az login` (your "
        "account needs the 'Cognitive Services OpenAI User' role on the resource), or set "
        "AZURE_OPENAI_API_KEY to use key authentication"
    )
    try:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider
    except ImportError as e:
        raise ConfigurationError(f"{advice} (azure-identity is not installed: {e})") from e
    try:
        provider: Callable[[], str] = get_bearer_token_provider(DefaultAzureCredential(), ENTRA_SCOPE)
        provider()  # the token is cached by the provider, so this costs nothing later
    except Exception as e:  # azure-identity raises CredentialUnavailableError and kin
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigurationError(f"{advice}. Details: {redact(first_line)}") from e
    return provider


def _resolve_target(
    *,
    backend: str | None,
    endpoint: str | None,
    api_key: str | None,
    deployment: str | None,
    api_version: str | None,
    base_url: str | None,
    model: str | None,
    use_entra_id: bool | None,
    env: Mapping[str, str],
    local_options: Mapping[str, Any] | None,
) -> _Target:
    if backend is not None and backend not in _BACKENDS:
        raise ConfigurationError(f"backend={backend!r} is not one of {', '.join(_BACKENDS)} (or None to choose)")
    if backend is None:
        if local_options is not None:
            backend = "local"  # asking for local settings means the built-in backend
        elif endpoint:
            backend = "azure"
        elif base_url:
            backend = "openai"
        elif env.get("VIZLAB_BACKEND"):
            backend = env["VIZLAB_BACKEND"].strip().lower()
            if backend not in _BACKENDS:
                raise ConfigurationError(
                    f"VIZLAB_BACKEND={env['VIZLAB_BACKEND']!r} is not one of {', '.join(_BACKENDS)}: "
                    "fix or unset the variable (in the shell or .env)"
                )
        elif env.get("AZURE_OPENAI_ENDPOINT"):
            backend = "azure"
        elif api_key or env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"):
            backend = "openai"
        else:
            backend = "local"

    if backend == "azure":
        endpoint = endpoint or env.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ConfigurationError(
                "backend='azure' needs an endpoint: pass endpoint='https://RESOURCE.openai.azure.com' "
                "or set AZURE_OPENAI_ENDPOINT (Azure portal > your resource > Keys and Endpoint)"
            )
        deployment = (
            deployment or env.get("AZURE_OPENAI_DEPLOYMENT") or env.get("AZURE_OPENAI_DEPLOYMENT_NAME")
            or model or DEFAULT_MODEL
        )
        api_version = api_version or env.get("OPENAI_API_VERSION") or DEFAULT_API_VERSION
        key = None if use_entra_id else (api_key or env.get("AZURE_OPENAI_API_KEY"))
        if key:
            return _Target("azure", endpoint, deployment, api_version, "key", _Secret(key))
        if use_entra_id is False:
            raise ConfigurationError(
                f"use_entra_id=False but no key for {_display_url(endpoint)}: pass api_key= or set "
                "AZURE_OPENAI_API_KEY, or allow Entra ID (`az login`)"
            )
        provider = _entra_token_provider(endpoint)
        return _Target("azure", endpoint, deployment, api_version, "entra-id", _Secret(None), provider)

    if backend == "openai":
        base_url = base_url or env.get("OPENAI_BASE_URL")
        key = api_key or env.get("OPENAI_API_KEY")
        if not key and not base_url:
            raise ConfigurationError(
                "backend='openai' needs OPENAI_API_KEY (or api_key=), or OPENAI_BASE_URL / base_url= "
                "for a local OpenAI-compatible server such as Ollama, vLLM or LM Studio"
            )
        name = model or deployment or env.get("OPENAI_MODEL") or DEFAULT_MODEL
        auth = "key" if key else "none"
        return _Target(
            "openai", base_url or "https://api.openai.com/v1", name, None, auth, _Secret(key or _DUMMY_KEY)
        )

    # backend == "local"
    options = dict(local_options or {})
    wanted = deployment or model or DEFAULT_MODEL
    deployments = tuple(options.pop("deployments", _LOCAL_DEFAULT_DEPLOYMENTS))
    if wanted not in deployments:
        deployments = (*deployments, wanted)
    options["deployments"] = deployments
    local = _local_backend(options)
    # The built-in backend accepts any key unless local_options set one.
    key = api_key or options.get("api_key") or "vizlab-local"
    return _Target(
        "local", str(local.url), wanted, api_version or DEFAULT_API_VERSION, "key", _Secret(key), local=local
    )


def _default_token_model(names: Sequence[str | None]) -> str:
    """The first name vizlab.tokens has an image rule for (dated suffixes match), else gpt-4o."""
    from vizlab.tokens import rule_for

    for name in names:
        if not name:
            continue
        try:
            rule_for(name)
        except errors.UnknownModelError:
            continue
        return name
    return DEFAULT_MODEL


def connect(
    *,
    backend: str | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    deployment: str | None = None,
    api_version: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    token_model: str | None = None,
    use_entra_id: bool | None = None,
    env_file: str | os.PathLike[str] | None = DEFAULT_ENV_FILE,
    # vizlab's choices, not the service's: the openai SDK's own defaults are timeout=600 s
    # (connect 5 s) and max_retries=2 (openai/_constants.py, openai 3.52.0 as installed, read 2026).
    timeout: float = 60.0,
    max_retries: int = 4,
    verbose: bool = True,
    local_options: dict[str, Any] | None = None,
) -> Client:
    """Return a :class:`Client` for the first backend configured (see the module docstring).

    ``token_model`` picks the token rules and prices used for estimates (default: the
    deployment/model name when vizlab.tokens knows it, else gpt-4o; on the built-in backend, else
    its ``token_model``, exactly the rules it reports usage by). ``timeout`` (seconds) bounds
    each wait of one attempt: connecting, and every read, so a stream may run longer while chunks
    keep coming. ``max_retries`` is how often the SDK retries 408/409/429/5xx, timeouts and
    refused connections, so the worst case is about ``(max_retries + 1) * timeout`` plus back-off.

    >>> client = connect(verbose=False)            # doctest: +SKIP  (built-in backend)
    >>> client.chat([{"role": "user", "content": "hello"}]).text  # doctest: +SKIP
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0 or not math.isfinite(timeout):
        raise ConfigurationError(f"timeout={timeout!r} must be a positive number of seconds")
    for arg, value in (
        ("backend", backend), ("endpoint", endpoint), ("deployment", deployment), ("api_version", api_version),
        ("base_url", base_url), ("model", model), ("token_model", token_model),
    ):
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{arg}= must be a string, not {type(value).__name__}")
    if api_key is not None and not isinstance(api_key, str):  # never echo what may be a key
        raise ConfigurationError(f"api_key= must be a string, not {type(api_key).__name__}")
    if local_options is not None and not isinstance(local_options, Mapping):
        raise ConfigurationError(
            f"local_options= must be a dict of built-in backend settings (e.g. {{'rpm': 10}}), "
            f"not {type(local_options).__name__}"
        )
    if env_file is not None and not isinstance(env_file, (str, os.PathLike)):
        raise ConfigurationError(f"env_file= must be a path (str or Path) or None, not {type(env_file).__name__}")
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigurationError(f"max_retries={max_retries!r} must be a whole number >= 0")
    env = read_settings(env_file)
    target = _resolve_target(
        backend=backend, endpoint=endpoint, api_key=api_key, deployment=deployment,
        api_version=api_version, base_url=base_url, model=model, use_entra_id=use_entra_id,
        env=env, local_options=local_options,
    )
    if token_model is None:
        if target.backend == "local":
            # Estimate with the rules the built-in backend reports usage by on this deployment.
            token_model = str(target.local.config.token_model_for(target.deployment))
        else:
            token_model = _default_token_model([target.deployment, model])
    client = Client(target, token_model=token_model, timeout=timeout, max_retries=max_retries)
    if verbose:
        print(client.describe())
    return client


# --- request preparation ----------------------------------------------------------------------


def _is_conversation(obj: Any) -> bool:
    return callable(getattr(obj, "messages", None)) and callable(getattr(obj, "add_assistant", None))


def _request_messages(conversation_or_messages: Any, detail: str | None) -> list[dict[str, Any]]:
    """A deep copy of the messages to send, with every image's detail overridden if asked."""
    if detail is not None and detail not in _DETAILS:
        raise errors.UnknownDetailError(
            f"detail={detail!r} is not one of {', '.join(_DETAILS)}", detail=detail
        )
    if _is_conversation(conversation_or_messages):
        messages = conversation_or_messages.messages(format="current")
    elif isinstance(conversation_or_messages, str):
        messages = [{"role": "user", "content": conversation_or_messages}]
    elif isinstance(conversation_or_messages, Sequence):
        messages = list(conversation_or_messages)
    else:
        raise TypeError(
            "chat() takes a vizlab Conversation, a list of message dicts or a string, "
            f"not {type(conversation_or_messages).__name__}"
        )
    if not messages:
        raise errors.ConversationError("there is nothing to send: add a user message first")
    messages = copy.deepcopy(messages)
    if detail is not None:
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and part.get("type") == "image_url":
                        image_url = part.get("image_url")
                        if isinstance(image_url, dict):
                            image_url["detail"] = detail
                        elif isinstance(image_url, str):
                            part["image_url"] = {"url": image_url, "detail": detail}
    return messages


def _request_id(headers: Mapping[str, str]) -> str | None:
    """The service's request id: Azure's ``apim-request-id``, else OpenAI's ``x-request-id``."""
    return headers.get("apim-request-id") or headers.get("x-request-id")


def _finish_reason(choice: Mapping[str, Any]) -> str | None:
    reason = choice.get("finish_reason")
    if isinstance(reason, Mapping):  # the 2023 vision-enhancement shape: {"type": "stop", ...}
        reason = reason.get("type")
    return None if reason is None else str(reason)


@dataclass
class _Prepared:
    """Everything fixed before sending: the request body, the estimate and where to append."""

    body: dict[str, Any]
    estimate: RequestEstimate | None
    estimate_error: str | None
    conversation: Any
    prices: PriceTable | None
    started: float = 0.0


# --- replies ----------------------------------------------------------------------------------


def _fmt_int(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _cost_total(cost: Any) -> float | None:
    total = getattr(cost, "total", cost)
    try:
        return None if total is None else float(total)
    except (TypeError, ValueError):
        return None


@dataclass(repr=False)
class Reply:
    """One answer from the model, with what was sent, what it cost and how long it took."""

    text: str
    finish_reason: str | None
    usage: Usage | None
    estimate: RequestEstimate | None  # None only when vizlab could not estimate the request
    model: str
    prompt_filter_results: list[Any] | None
    content_filter_results: dict[str, Any] | None
    latency_s: float
    raw: dict[str, Any]
    request: dict[str, Any]
    cost: Cost | None
    backend: str
    deployment: str = ""
    request_id: str | None = None
    estimate_error: str | None = None

    def warnings(self) -> list[str]:
        """Advice about this reply: cut by max_tokens, blocked by the filter, not estimated."""
        notes: list[str] = []
        if self.finish_reason == "length":
            limit = self.request.get("max_tokens") or self.request.get("max_completion_tokens")
            notes.append(
                f"the reply was cut off at max_tokens={limit} (finish_reason 'length'): "
                "raise max_tokens, or ask for a shorter answer"
            )
        elif self.finish_reason == "content_filter":
            flagged = _filtered_categories(self.content_filter_results) or ["unknown"]
            notes.append(
                "the content filter omitted part of the reply (finish_reason 'content_filter', "
                f"categories: {', '.join(flagged)}): rephrase the prompt, or check "
                "reply.content_filter_results"
            )
        elif self.finish_reason == "cancelled":
            notes.append("the stream was cancelled: the text is partial and was not added to the conversation")
        if self.estimate_error:
            notes.append(f"no token estimate before sending: {self.estimate_error}")
        return notes

    def summary(self) -> str:
        """One line: prompt tokens (and the estimate), completion tokens, cost, latency, finish."""
        est = getattr(self.estimate, "prompt_tokens", None)
        if self.usage is not None:
            prompt = f"prompt {_fmt_int(self.usage.prompt_tokens)} tokens"
            if est is not None:
                prompt += f" (estimate {_fmt_int(est)})"
            completion = f"completion {_fmt_int(self.usage.completion_tokens)}"
        else:
            prompt = f"prompt ~{_fmt_int(est)} tokens (estimate; no usage reported)"
            completion = "completion ?"
        total = _cost_total(self.cost)
        cost = "$?" if total is None else f"${total:.4f}"
        return f"{prompt} · {completion} · {cost} · {self.latency_s:.2f} s · finish: {self.finish_reason}"

    def __str__(self) -> str:
        lines = [self.text, "", self.summary()]
        lines += [f"warning: {w}" for w in self.warnings()]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        parts = [self.text or "*(no text)*", "", "---", f"<small>{self.summary()}</small>"]
        parts += [f"> ⚠️ {w}" for w in self.warnings()]
        return "\n".join(parts)

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return (
            f"Reply(text={text!r}, finish_reason={self.finish_reason!r}, model={self.model!r}, "
            f"backend={self.backend!r}, latency_s={self.latency_s:.3f})"
        )


def _filtered_categories(results: Any) -> list[str]:
    """Names of the categories whose ``filtered`` flag is true in Azure's filter results."""
    if not isinstance(results, Mapping):
        return []
    return [str(k) for k, v in results.items() if isinstance(v, Mapping) and v.get("filtered") is True]


# --- errors -----------------------------------------------------------------------------------


def _retry_after_s(headers: Any) -> float | None:
    """The delay the service asked for, from ``retry-after-ms`` or ``retry-after`` (seconds)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) / divisor
        except ValueError:
            continue
    return None


def _looks_like_image_problem(code: str, param: str, message: str) -> bool:
    haystack = f"{code} {param} {message}".lower()
    return "image" in haystack


class Client:
    """A connection to one backend and deployment; make it with :func:`connect`."""

    def __init__(self, target: _Target, *, token_model: str, timeout: float, max_retries: int) -> None:
        self._target = target
        self.backend: str = target.backend
        self.deployment: str = target.deployment
        self.token_model: str = token_model
        self.endpoint: str = _display_url(target.endpoint)
        self.api_version: str | None = target.api_version
        self.auth: str = target.auth
        self.timeout = timeout
        self.max_retries = max_retries
        self._sdk = self._make_sdk(asynchronous=False)

    # -- SDK clients --

    def _make_sdk(self, *, asynchronous: bool) -> Any:
        import openai

        t = self._target
        common: dict[str, Any] = {"timeout": self.timeout, "max_retries": self.max_retries}
        if t.backend in ("azure", "local"):
            auth: dict[str, Any] = (
                {"azure_ad_token_provider": t.token_provider}
                if t.token_provider is not None
                else {"api_key": t.api_key.reveal()}
            )
            cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
            return cls(azure_endpoint=t.endpoint, api_version=t.api_version, **auth, **common)
        cls_oa = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        return cls_oa(base_url=t.endpoint, api_key=t.api_key.reveal(), **common)

    # -- description --

    def describe(self) -> str:
        """One line naming the backend, endpoint, deployment and auth kind (never the key)."""
        t = self._target
        if t.backend == "local":
            model = getattr(t.local.config, "model_name", None) or LOCAL_MODEL_NAME
            return f"vizlab: built-in local backend at {self.endpoint} (deployment {self.deployment}, model {model})"
        auth = {"key": "key auth", "entra-id": "Microsoft Entra ID auth", "none": "no key"}[t.auth]
        if t.backend == "azure":
            return (
                f"vizlab: Azure OpenAI at {self.endpoint} (deployment {self.deployment}, "
                f"api-version {self.api_version}, {auth})"
            )
        host = urlsplit(self.endpoint).hostname or ""
        if "/openai/v1" in self.endpoint:
            kind = "Azure OpenAI v1 API"
        elif host == "api.openai.com":
            kind = "OpenAI"
        else:
            kind = "OpenAI-compatible server"
        return f"vizlab: {kind} at {self.endpoint} (model {self.deployment}, {auth})"

    def __repr__(self) -> str:
        return f"<vizlab.Client {self.describe().removeprefix('vizlab: ')}; token_model {self.token_model}>"

    __str__ = describe

    def __getstate__(self) -> Any:
        raise TypeError("a vizlab Client holds a live connection and a key; it cannot be pickled")

    # -- lifecycle --

    def close(self) -> None:
        """Release the HTTP connections (the shared built-in backend keeps running)."""
        self._sdk.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- models --

    def models(self) -> list[str]:
        """Model ids from the backend's GET models (on Azure: the models the resource offers,
        which are not necessarily your deployment names)."""
        import openai

        with self._sdk_errors():
            if self.backend == "local":
                # The built-in backend lists its deployments at /v1/models, the OpenAI route.
                with openai.OpenAI(
                    base_url=self._target.endpoint.rstrip("/") + "/v1",
                    api_key=self._target.api_key.reveal(),
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                ) as sdk:
                    return sorted(m.id for m in sdk.models.list())
            return sorted(m.id for m in self._sdk.models.list())

    def _known_deployments(self) -> list[str]:
        """Deployments we can name without another request (the built-in backend's list)."""
        local = self._target.local
        if local is not None:
            names = getattr(local.config, "deployments", None)
            if names:
                return sorted(str(n) for n in names)
        if self.backend == "openai":
            try:  # one quick GET; a 404 on a model name is worth listing the real ones
                return self.models()
            except errors.VizlabError:
                return []
        return []

    def with_deployment(self, name: str, *, token_model: str | None = None) -> Client:
        """A client for deployment ``name`` on the same endpoint, credentials and HTTP pool.

        Token rules follow the new name when vizlab knows it (``gpt-4o-mini``...), else stay.
        """
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"with_deployment() needs a deployment name (a non-empty str), got {name!r}")
        clone = Client.__new__(Client)  # not copy.copy: pickling (and so copying) is refused
        clone.__dict__.update(self.__dict__)
        clone.deployment = name
        if token_model is not None:
            clone.token_model = token_model
        elif self._target.local is not None:
            clone.token_model = str(self._target.local.config.token_model_for(name))
        else:
            clone.token_model = _default_token_model([name, self.token_model])
        return clone

    @property
    def sdk(self) -> Any:
        """The official openai client (``AzureOpenAI`` or ``OpenAI``) behind this one, for APIs
        vizlab does not wrap (files, batches...). Wrap calls in :meth:`mapped_errors`."""
        return self._sdk

    def mapped_errors(self) -> contextlib.AbstractContextManager[None]:
        """A context manager turning openai exceptions into vizlab errors (keys redacted)."""
        return self._sdk_errors()

    # -- errors --

    @contextlib.contextmanager
    def _sdk_errors(self) -> Iterator[None]:
        """Turn openai (and azure-identity token) exceptions into vizlab errors, chained."""
        import openai

        try:
            yield
        except openai.OpenAIError as e:
            raise self._map_error(e) from e
        except Exception as e:
            if type(e).__module__.startswith("azure."):  # a token provider failing mid-session
                raise self._map_error(e) from e
            raise

    def _secrets(self) -> list[str | None]:
        return [self._target.api_key.reveal()]

    def _map_error(self, e: BaseException) -> errors.VizlabError:
        """The vizlab error for an openai (or azure-identity) exception, message redacted."""
        import openai

        secrets = self._secrets()
        where = self.endpoint
        dep = self.deployment

        def clean(text: str) -> str:
            return redact(text, secrets)

        if isinstance(e, openai.APITimeoutError):
            return errors.RequestTimeoutError(clean(
                f"no answer from {where} (deployment {dep}) within timeout={self.timeout:g} s after "
                f"{self.max_retries} retries: the service may be busy or the request large; raise "
                "timeout= in connect(), send fewer or smaller images, or try again"
            ))
        if isinstance(e, openai.APIConnectionError):
            if urlsplit(where).hostname in ("127.0.0.1", "localhost", "::1"):
                hint = (
                    "For the built-in backend run `python -m vizlab.local` or call connect() with no "
                    "arguments; for Ollama, vLLM or LM Studio start the server first"
                )
            else:
                hint = "Check the endpoint URL, your network and proxy settings"
            cause = e.__cause__ or e.__context__
            detail = f" ({type(cause).__name__})" if cause is not None else ""
            return errors.BackendUnavailableError(clean(
                f"could not reach {where}{detail}: is the server running? {hint}."
            ))
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            headers = e.response.headers
            request_id = _request_id(headers)
            return self._map_body(
                status, e.body, request_id=request_id, headers=headers, fallback=str(e.message)
            )
        if isinstance(e, openai.APIError):  # an error event in the middle of a stream
            return self._map_body(None, e.body, request_id=None, headers=None, fallback=str(e.message))
        if type(e).__module__.startswith("azure."):
            return errors.AuthenticationError(clean(
                f"could not get a Microsoft Entra ID token for {where}: run `az login` again, or set "
                f"AZURE_OPENAI_API_KEY. Details: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"
            ))
        return ConfigurationError(clean(f"the openai SDK refused the request: {e}"))

    def _map_body(
        self, status: int | None, body: Any, *, request_id: str | None, headers: Any, fallback: str
    ) -> errors.APIError:
        secrets = self._secrets()
        body = _redact_obj(body, secrets)
        err = body if isinstance(body, Mapping) else {}
        code = str(err.get("code") or "")
        param = str(err.get("param") or "")
        service_msg = redact(str(err.get("message") or fallback), secrets).strip().rstrip(".")
        where = self.endpoint
        dep = self.deployment
        kw: dict[str, Any] = {"status": status, "code": code or None, "request_id": request_id, "body": body}

        def msg(text: str) -> str:
            return redact(text, secrets)

        if status in (401, 403):
            if self.auth == "entra-id":
                advice = (
                    "check your account has the 'Cognitive Services OpenAI User' role on this resource "
                    "(it can take minutes to apply), or set AZURE_OPENAI_API_KEY"
                )
            elif self.backend == "openai":
                advice = "check OPENAI_API_KEY (or api_key=) is valid for this server and base_url"
            else:
                advice = "check AZURE_OPENAI_API_KEY belongs to this resource, or the endpoint"
            return errors.AuthenticationError(
                msg(f"the key was refused by {where} ({status}): {advice}. Service said: {service_msg}"), **kw
            )
        if status == 404:
            known = self._known_deployments()
            listing = f" Deployments/models there: {', '.join(known)}." if known else ""
            where_to_look = (
                "check the deployment name in the Azure AI Foundry portal (Deployments), which may differ "
                "from the model name, or set AZURE_OPENAI_DEPLOYMENT"
                if self.backend != "openai"
                else "check the model name (client.models() lists them), or set OPENAI_MODEL"
            )
            return errors.DeploymentNotFoundError(
                msg(f"no deployment or model {dep!r} at {where} (404): {where_to_look}.{listing} "
                    f"Service said: {service_msg}"),
                deployment=dep, **kw,
            )
        if status == 429:
            retry_after = _retry_after_s(headers)
            wait = f" The service asked to wait {retry_after:g} s." if retry_after is not None else ""
            beyond = (
                " That is longer than the SDK waits by itself (120 s)."
                if retry_after is not None and retry_after > _SDK_MAX_RETRY_AFTER_S else ""
            )
            return errors.RateLimitError(
                msg(f"rate limit at {where} (deployment {dep}) still hit after {self.max_retries} retries.{wait}"
                    f"{beyond} Wait and try again, send fewer tokens per minute (lower detail, fewer images), "
                    f"or raise the deployment's quota. Service said: {service_msg}"),
                retry_after=retry_after, **kw,
            )
        inner_raw = err.get("innererror")
        inner: Mapping[str, Any] = inner_raw if isinstance(inner_raw, Mapping) else {}
        filter_results = (
            inner.get("content_filter_result") or inner.get("content_filter_results")
            or err.get("content_filter_result") or err.get("content_filter_results")
        )
        categories = _filtered_categories(filter_results)
        is_filter = (
            code == "content_filter" or str(inner.get("code") or "") == "ResponsibleAIPolicyViolation"
            or bool(categories)
        )
        if is_filter and status in (400, None):
            named = ", ".join(categories) if categories else "unspecified"
            return errors.ContentFilterError(
                msg(f"the prompt was blocked by the content filter at {where} (categories: {named}): rephrase "
                    f"the text or use another image; the filter results are in err.body. Service said: {service_msg}"),
                categories=categories, **kw,
            )
        # Limits in the advice: 10 images per request (Azure seeds/03), 20 MB per image (OpenAI
        # "Images and vision" guide, checked 2025).
        if status in (400, 413, 415, 422) and _looks_like_image_problem(code, param, service_msg):
            return errors.InvalidImageRequestError(
                msg(f"{where} refused an image ({status}): {service_msg}. Check every image is a PNG, JPEG, "
                    "GIF or WEBP under 20 MB, at most 10 per request, and that URLs are publicly reachable "
                    "(or send data URLs with vizlab.image_part)"),
                **kw,
            )
        if status in (400, 413, 415, 422):
            return errors.BadRequestError(
                msg(f"{where} refused the request ({status}{', ' + code if code else ''}): {service_msg}. "
                    "Check the parameters passed to chat() (reply.request shows the body)"),
                **kw,
            )
        if status == 408:
            return errors.RequestTimeoutError(
                msg(f"{where} timed out the request (408) after {self.max_retries} retries: try again, or send "
                    f"less. Service said: {service_msg}"), **kw,
            )
        if status is not None and status >= 500:
            return errors.APIError(
                msg(f"{where} failed with {status} after {self.max_retries} retries: the service is having "
                    f"trouble, try again later. Service said: {service_msg}"), **kw,
            )
        return errors.APIError(
            msg(f"{where} answered {status if status is not None else 'an error'} for deployment {dep}: {service_msg}"),
            **kw,
        )

    # -- chat --

    def _prepare(
        self,
        conversation_or_messages: Any,
        *,
        detail: str | None,
        max_tokens: int | None,
        prices: PriceTable | None,
        params: dict[str, Any],
        stream: bool,
    ) -> _Prepared:
        if "stream" in params:
            raise TypeError("pass no stream= to chat(): use client.stream(...) to stream a reply")
        if "messages" in params or "model" in params:
            raise TypeError("messages and model are set by vizlab: pass the conversation, and deployment= to connect()")
        messages = _request_messages(conversation_or_messages, detail)
        conversation = conversation_or_messages if _is_conversation(conversation_or_messages) else None
        body: dict[str, Any] = {"model": self.deployment, "messages": messages}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        body.update(params)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True, **(params.get("stream_options") or {})}
        estimate, estimate_error = None, None
        try:
            from vizlab.tokens import estimate_request

            estimate = estimate_request(messages, model=self.token_model, max_tokens=max_tokens, prices=prices)
        except Exception as e:  # an estimate must never stop a request the service may accept
            estimate_error = redact(f"{type(e).__name__}: {e}", self._secrets())
        return _Prepared(body, estimate, estimate_error, conversation, prices)

    def _cost(self, usage: Usage | None, prepared: _Prepared) -> Cost | None:
        if usage is None:
            return getattr(prepared.estimate, "cost", None)
        from vizlab.pricing import DEFAULT_PRICES

        table = prepared.prices or DEFAULT_PRICES
        try:
            return table.cost_of(usage, model=self.token_model)  # counts cached_tokens at their price
        except errors.VizlabError:  # no price for this model: report tokens, not a made-up cost
            return None

    def _build_reply(
        self, raw: dict[str, Any], prepared: _Prepared, latency_s: float, request_id: str | None
    ) -> Reply:
        from vizlab.tokens import Usage

        choices = raw.get("choices") or []
        choice: Mapping[str, Any] = choices[0] if choices and isinstance(choices[0], Mapping) else {}
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, Mapping) else None
        text = content if isinstance(content, str) else ""
        usage = Usage.from_openai(raw["usage"]) if raw.get("usage") else None
        prompt_filters = raw.get("prompt_filter_results") or raw.get("prompt_annotations")
        choice_filters = choice.get("content_filter_results")
        return Reply(
            text=text,
            finish_reason=_finish_reason(choice),
            usage=usage,
            estimate=prepared.estimate,
            model=str(raw.get("model") or self.deployment),
            prompt_filter_results=list(prompt_filters) if prompt_filters is not None else None,
            content_filter_results=dict(choice_filters) if isinstance(choice_filters, Mapping) else None,
            latency_s=latency_s,
            raw=raw,
            request=prepared.body,
            cost=self._cost(usage, prepared),
            backend=self.backend,
            deployment=self.deployment,
            request_id=request_id,
            estimate_error=prepared.estimate_error,
        )

    def _deliver(self, reply: Reply, prepared: _Prepared, *, stacklevel: int) -> Reply:
        """Warn about a cut reply and append it to the conversation (success only)."""
        if reply.finish_reason in ("length", "content_filter"):
            _warnings.warn(reply.warnings()[0], UserWarning, stacklevel=stacklevel + 1)
        conv = prepared.conversation
        if conv is not None and reply.finish_reason != "cancelled":
            conv.add_assistant(
                reply.text,
                finish_reason=reply.finish_reason,
                usage=reply.usage,
                estimate=reply.estimate,
                latency_s=reply.latency_s,
                model=reply.model,
                cost=reply.cost,
            )
        return reply

    def _complete(self, response: Any, completion: Any, prepared: _Prepared, started: float) -> Reply:
        """The Reply for a finished (non-streamed) call: timed, built, warned about, appended."""
        latency = time.perf_counter() - started
        raw = completion.model_dump(mode="json", exclude_unset=True)
        reply = self._build_reply(raw, prepared, latency, _request_id(response.headers))
        return self._deliver(reply, prepared, stacklevel=3)  # warn at the caller of chat()/achat()

    def chat(
        self,
        conversation_or_messages: Any,
        *,
        detail: str | None = None,
        max_tokens: int | None = 1000,
        prices: PriceTable | None = None,
        **params: Any,
    ) -> Reply:
        """Send the messages and return the :class:`Reply`; extra ``params`` (temperature,
        seed...) go into the request body as given."""
        prepared = self._prepare(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=prices,
            params=params, stream=False,
        )
        started = time.perf_counter()
        with self._sdk_errors():
            response = self._sdk.chat.completions.with_raw_response.create(**prepared.body)
            completion = response.parse()
        return self._complete(response, completion, prepared, started)

    async def achat(
        self,
        conversation_or_messages: Any,
        *,
        detail: str | None = None,
        max_tokens: int | None = 1000,
        prices: PriceTable | None = None,
        **params: Any,
    ) -> Reply:
        """:meth:`chat` for ``await`` (a fresh async SDK client per call, closed after it)."""
        prepared = self._prepare(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=prices,
            params=params, stream=False,
        )
        started = time.perf_counter()
        with self._sdk_errors():
            async with self._make_sdk(asynchronous=True) as sdk:
                response = await sdk.chat.completions.with_raw_response.create(**prepared.body)
                completion = response.parse()
        return self._complete(response, completion, prepared, started)

    def stream(
        self,
        conversation_or_messages: Any,
        *,
        detail: str | None = None,
        max_tokens: int | None = 1000,
        prices: PriceTable | None = None,
        **params: Any,
    ) -> ReplyStream:
        """Start a streamed request (errors before the first byte raise here) and return a
        :class:`ReplyStream` to iterate."""
        prepared = self._prepare(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=prices,
            params=params, stream=True,
        )
        prepared.started = time.perf_counter()
        with self._sdk_errors():
            response = self._sdk.chat.completions.with_raw_response.create(**prepared.body)
            sdk_stream = response.parse()
        return ReplyStream(self, prepared, sdk_stream, _request_id(response.headers))


class ReplyStream:
    """Text chunks as they arrive; afterwards ``.reply`` holds the :class:`Reply` with usage.

    ``cancel()`` stops early: the HTTP stream is closed, the conversation is not appended, and
    ``.reply`` keeps the partial text with ``finish_reason`` "cancelled". Leaving a ``with``
    block before the end cancels.
    """

    def __init__(self, client: Client, prepared: _Prepared, sdk_stream: Any, request_id: str | None) -> None:
        self._client = client
        self._prepared = prepared
        self._sdk_stream = sdk_stream
        self._request_id = request_id
        self._parts: list[str] = []
        self._chunks: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._done = False
        self._cancelled = False
        self.reply: Reply | None = None
        self._iterator = self._events()

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    def __iter__(self) -> Iterator[str]:
        return self._iterator

    def _events(self) -> Generator[str, None, None]:
        import openai

        try:
            for chunk in self._sdk_stream:
                if self._cancelled:
                    return
                data = chunk.model_dump(mode="json", exclude_unset=True)
                self._chunks.append(data)
                for choice in data.get("choices") or []:
                    delta = choice.get("delta") or {}
                    piece = delta.get("content")
                    if choice.get("index", 0) == 0 and isinstance(piece, str) and piece:
                        self._parts.append(piece)
                        yield piece
        except openai.OpenAIError as e:
            if self._cancelled:
                return
            self._done = True
            raise self._client._map_error(e) from e
        except Exception:
            if self._cancelled:  # closing the stream from another thread breaks its read
                return
            raise
        with self._lock:
            if self._cancelled or self._done:
                return
            self._done = True
        latency = time.perf_counter() - self._prepared.started
        reply = self._client._build_reply(self._assemble(), self._prepared, latency, self._request_id)
        self.reply = self._client._deliver(reply, self._prepared, stacklevel=2)

    def _assemble(self) -> dict[str, Any]:
        """One chat.completion-shaped dict from the chunks (Azure sends prompt filter results
        in a chunk with no choices, and usage in a last chunk with no choices)."""
        raw: dict[str, Any] = {"object": "chat.completion", "choices": []}
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": self.text}}
        prompt_filters: list[Any] = []
        for data in self._chunks:
            for key in ("id", "created", "model", "system_fingerprint"):
                if data.get(key):
                    raw[key] = data[key]
            if data.get("usage"):
                raw["usage"] = data["usage"]
            prompt_filters += data.get("prompt_filter_results") or []
            for ch in data.get("choices") or []:
                if ch.get("index", 0) != 0:
                    continue
                if ch.get("finish_reason") is not None:
                    choice["finish_reason"] = ch["finish_reason"]
                if ch.get("content_filter_results"):
                    choice.setdefault("content_filter_results", {}).update(ch["content_filter_results"])
        choice.setdefault("finish_reason", None)
        raw["choices"] = [choice]
        if prompt_filters:
            raw["prompt_filter_results"] = prompt_filters
        raw["stream_chunks"] = len(self._chunks)
        return raw

    def cancel(self) -> None:
        """Stop now: close the HTTP stream; ``.reply`` gets the partial text, finish "cancelled"."""
        with self._lock:
            if self._done or self._cancelled:
                return
            # The reply is set before the reading thread can notice the cancel and stop, so a
            # reader that ends its loop always finds it.
            latency = time.perf_counter() - self._prepared.started
            raw = self._assemble()
            raw["choices"][0]["finish_reason"] = "cancelled"
            self.reply = self._client._build_reply(raw, self._prepared, latency, self._request_id)
            self._cancelled = True
        self._sdk_stream.close()
        try:
            self._iterator.close()
        except ValueError:  # iterating in another thread right now; it stops at its next read
            pass

    def close(self) -> None:
        """Cancel if not finished; a no-op after the end."""
        self.cancel()

    def __enter__(self) -> ReplyStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "done" if self._done else "streaming"
        return f"<vizlab.ReplyStream {state}, {len(self.text)} chars from {self._client.deployment}>"

