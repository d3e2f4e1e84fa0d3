"""Where requests go: the backend, endpoint, deployment, api-version and credentials.

Resolves :func:`vizlab.connect`'s arguments, the environment and ``.env`` into one
:class:`Target`, and starts the built-in backend (once per interpreter and option set) when
nothing else is configured. Keys are held in a :class:`Secret` that never prints itself.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vizlab import errors
from vizlab.errors import ConfigurationError, redact


# Latest GA data-plane inference api-version listed on Microsoft Learn, "Azure OpenAI API
# version lifecycle" (learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle),
# checked 2025: 2024-10-21. It supports image input and stream_options.include_usage.
DEFAULT_API_VERSION = "2024-10-21"
DEFAULT_MODEL = "gpt-4o"
# Token scope for Azure OpenAI with Microsoft Entra ID, as in the 2025 images-in-chats quickstart.
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
LOCAL_MODEL_NAME = "vizlab-local-analyst"
# Local servers (Ollama, vLLM, LM Studio) ignore the key, but the SDK requires one.
DUMMY_KEY = "not-needed"
# A current model of each family the registry lists (vizlab.models: gpt-4o, gpt-4.1, the gpt-5
# reasoning line), so the docs' examples (compare gpt-4o with gpt-4.1-mini...) run offline, and
# one shared backend serves them all instead of one backend (and OCR models) per deployment.
LOCAL_DEFAULT_DEPLOYMENTS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-5.4-mini", "gpt-5.5")
BACKENDS = ("azure", "openai", "local")


# --- secrets ----------------------------------------------------------------------------------


class Secret:
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


def display_url(url: str) -> str:
    """The URL without credentials, query or fragment, e.g. for a one-line description.

    >>> display_url("https://u:p@res.openai.azure.com/openai/v1/?api-key=x")
    'https://res.openai.azure.com/openai/v1'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


# --- the built-in backend, one per interpreter -------------------------------------------------

_local_lock = threading.Lock()
_local_backends: dict[tuple[tuple[str, str], ...], Any] = {}
_atexit_registered = False


def stop_local_backends() -> None:
    with _local_lock:
        backends = list(_local_backends.values())
        _local_backends.clear()
    for backend in backends:
        try:
            backend.stop()
        except Exception:  # at exit, a backend that will not stop must not hide others
            pass


def local_backend(options: Mapping[str, Any]) -> Any:
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
                atexit.register(stop_local_backends)
                _atexit_registered = True
        return backend


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where requests go and how they authenticate; never printed with the key."""

    backend: str
    endpoint: str  # Azure: the resource endpoint; openai: the base URL
    deployment: str  # Azure deployment name, or the model name for the openai backend
    api_version: str | None
    auth: str  # "key", "entra-id" or "none"
    api_key: Secret
    token_provider: Callable[[], str] | None = field(default=None, repr=False)
    local: Any = field(default=None, repr=False)
    model: str | None = None  # the model behind an Azure deployment, when connect(model=) names it


def entra_token_provider(endpoint: str) -> Callable[[], str]:
    """A bearer-token provider from ``DefaultAzureCredential``, checked once now so a missing
    login fails at connect() with advice rather than at the first request."""
    advice = (
        f"no Microsoft Entra ID credential for {display_url(endpoint)}: run `az login` (your "
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


def resolve_target(
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
) -> Target:
    if backend is not None and backend not in BACKENDS:
        raise ConfigurationError(f"backend={backend!r} is not one of {', '.join(BACKENDS)} (or None to choose)")
    if backend is None:
        if local_options is not None:
            backend = "local"  # asking for local settings means the built-in backend
        elif endpoint:
            backend = "azure"
        elif base_url:
            backend = "openai"
        elif env.get("VIZLAB_BACKEND"):
            backend = env["VIZLAB_BACKEND"].strip().lower()
            if backend not in BACKENDS:
                raise ConfigurationError(
                    f"VIZLAB_BACKEND={env['VIZLAB_BACKEND']!r} is not one of {', '.join(BACKENDS)}: "
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
            return Target("azure", endpoint, deployment, api_version, "key", Secret(key), model=model)
        if use_entra_id is False:
            raise ConfigurationError(
                f"use_entra_id=False but no key for {display_url(endpoint)}: pass api_key= or set "
                "AZURE_OPENAI_API_KEY, or allow Entra ID (`az login`)"
            )
        provider = entra_token_provider(endpoint)
        return Target("azure", endpoint, deployment, api_version, "entra-id", Secret(None), provider, model=model)

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
        return Target(
            "openai", base_url or "https://api.openai.com/v1", name, None, auth, Secret(key or DUMMY_KEY)
        )

    # backend == "local"
    options = dict(local_options or {})
    wanted = deployment or model or DEFAULT_MODEL
    deployments = tuple(options.pop("deployments", LOCAL_DEFAULT_DEPLOYMENTS))
    if wanted not in deployments:
        deployments = (*deployments, wanted)
    options["deployments"] = deployments
    local = local_backend(options)
    # The built-in backend accepts any key unless local_options set one.
    key = api_key or options.get("api_key") or "vizlab-local"
    return Target(
        "local", str(local.url), wanted, api_version or DEFAULT_API_VERSION, "key", Secret(key), local=local
    )


def default_token_model(names: Sequence[str | None]) -> str:
    """The first name the model registry knows (exact, alias or dated snapshot), else gpt-4o.

    A model without vision (o3-mini) counts too: its text estimates use its own encoding and
    prices, and an image sent to it is reported as not estimable.
    """
    from vizlab.models import canonical_name

    for name in names:
        if name and canonical_name(name) is not None:
            return name
    return DEFAULT_MODEL

