"""Where requests go: the backend, endpoint, deployment, api-version and credentials.

Resolves :func:`vizlab.connect`'s arguments, the environment and ``.env`` into one
:class:`Target`. When nothing else is configured it uses the built-in backend: the user's shared
process (:mod:`vizlab.local.shared`), or with ``backend="inprocess"`` one inside this interpreter
(once per option set). Keys are held in a :class:`Secret` that never prints itself.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vizlab.errors import ConfigurationError, redact

# Latest GA data-plane inference api-version listed on Microsoft Learn, "Azure OpenAI API
# version lifecycle" (learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle),
# checked 2025: 2024-10-21. It supports image input and stream_options.include_usage.
DEFAULT_API_VERSION = "2024-10-21"
# The v1 route (`/openai/v1/`) is the Azure default: since August 2025 it "removes the need for dated
# api-version parameters" and takes the plain OpenAI client with a key or an Entra ID token provider
# as api_key (learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle, stored copy 2026).
# OPENAI_API_VERSION or api_version= selects the dated route.
V1_ROUTE = "v1"
DEFAULT_MODEL = "gpt-4o"
# Token scope for Azure OpenAI with Microsoft Entra ID, as in the 2025 images-in-chats quickstart.
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
LOCAL_MODEL_NAME = "vizlab-local-analyst"
# Local servers (Ollama, vLLM, LM Studio) ignore the key, but the SDK requires one.
DUMMY_KEY = "not-needed"
# "inprocess" is the built-in backend inside this interpreter (tests that need its internals).
BACKENDS = ("azure", "openai", "local", "inprocess")


class BackendKind(str, Enum):
    """The kind of backend a client talks to; a str, so ``client.backend == "azure"`` still holds.

    >>> BackendKind("azure") == "azure", f"{BackendKind.LOCAL}"
    (True, 'local')
    """

    AZURE = "azure"  # Azure OpenAI (a resource endpoint and deployments)
    OPENAI = "openai"  # OpenAI, or an OpenAI-compatible server (Ollama, vLLM, LM Studio)
    LOCAL = "local"  # the built-in backend (shared process, or in this interpreter)

    def __str__(self) -> str:  # the plain value in str() and f-strings on every Python version
        return str(self.value)


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
        if backend is not None:  # start() is idempotent: it brings back one stopped by close(stop_backend=True)
            return backend.start()
        try:
            from vizlab.local.server import LocalBackend
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


_shared: dict[str, Any] = {}


def shared_local_backend(options: Mapping[str, Any]) -> Any:
    """The user's shared built-in backend process for these options (checked alive, else started)."""
    from vizlab.local.shared import ensure_shared_backend, options_id

    name = options_id(options)
    with _local_lock:
        known = _shared.get(name)
        if known is not None and known.healthy():
            return known
        try:
            backend = ensure_shared_backend(options)
        except (TypeError, ValueError) as e:  # a misspelt or mistyped local_options entry
            raise ConfigurationError(
                f"local_options could not configure the built-in backend: {redact(str(e))}. Use the "
                "fields of vizlab.local.BackendConfig, e.g. local_options={'rpm': 10, 'latency_s': 0.5}"
            ) from e
        except (OSError, RuntimeError) as e:
            raise ConfigurationError(f"the built-in backend could not start: {redact(str(e))}") from e
        _shared[name] = backend
        return backend


def count_through(shared: Any, key: str) -> None:
    """Let the shared backend count this kernel's text (it holds the encoder; a kernel that built its
    own would hold ~45 MiB more, issue 26). The first shared backend a kernel reaches keeps the job
    while it answers; vizlab.tokens counts here again if it stops."""
    from vizlab.local.counting import SharedCounter
    from vizlab.tokens.text import count_service, use_count_service

    if count_service() is None:
        use_count_service(SharedCounter(str(shared.url), key))


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where requests go and how they authenticate; never printed with the key."""

    backend: BackendKind
    endpoint: str  # Azure: the resource endpoint; openai: the base URL
    deployment: str  # Azure deployment name, or the model name for the openai backend
    api_version: str | None
    auth: str  # "key", "entra-id" or "none"
    api_key: Secret
    token_provider: Callable[[], str] | None = field(default=None, repr=False)
    local: Any = field(default=None, repr=False)
    model: str | None = None  # the model behind an Azure deployment, when connect(model=) or a variable names it
    model_source: str | None = None  # where `model` came from: "connect(model=)" or "AZURE_OPENAI_MODEL"

    def __post_init__(self) -> None:
        object.__setattr__(self, "backend", BackendKind(self.backend))  # "azure" is taken as BackendKind.AZURE

    @property
    def v1(self) -> bool:
        """True on Azure's v1 route (``/openai/v1/``, no api-version)."""
        return self.backend is BackendKind.AZURE and self.api_version is None

    @property
    def v1_base_url(self) -> str:
        """``{endpoint}/openai/v1/`` (an endpoint that already ends in /openai/v1 is kept)."""
        base = self.endpoint.rstrip("/")
        return (base if base.endswith("/openai/v1") else base + "/openai/v1") + "/"


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


@dataclass(frozen=True)
class TargetRequest:
    """What :func:`vizlab.connect` was given, beside the environment and ``.env`` settings."""

    backend: str | None = None
    endpoint: str | None = None
    api_key: str | None = None
    deployment: str | None = None
    api_version: str | None = None
    base_url: str | None = None
    model: str | None = None
    use_entra_id: bool | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    local_options: Mapping[str, Any] | None = None


def choose_backend(request: TargetRequest) -> str:
    """The backend the request names, in the order of docs/internals.md#client: ``backend=``, then
    ``local_options=``, ``endpoint=``, ``base_url=``, VIZLAB_BACKEND, Azure, OpenAI variables, local.

    >>> choose_backend(TargetRequest(base_url="http://localhost:11434/v1"))
    'openai'
    """
    env, backend = request.env, request.backend
    if backend is not None:
        if backend not in BACKENDS:
            raise ConfigurationError(f"backend={backend!r} is not one of {', '.join(BACKENDS)} (or None to choose)")
        return backend
    if request.local_options is not None:  # asking for local settings means the built-in backend
        return "inprocess" if env.get("VIZLAB_BACKEND", "").strip().lower() == "inprocess" else "local"
    if request.endpoint:
        return "azure"
    if request.base_url:
        return "openai"
    if env.get("VIZLAB_BACKEND"):
        named = env["VIZLAB_BACKEND"].strip().lower()
        if named not in BACKENDS:
            raise ConfigurationError(
                f"VIZLAB_BACKEND={env['VIZLAB_BACKEND']!r} is not one of {', '.join(BACKENDS)}: "
                "fix or unset the variable (in the shell or .env)"
            )
        return named
    if env.get("AZURE_OPENAI_ENDPOINT"):
        return "azure"
    if request.api_key or env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"):
        return "openai"
    return "local"


def azure_target(request: TargetRequest) -> Target:
    """Azure OpenAI: the endpoint, deployment, route (v1 unless a dated api-version is named), and a
    key or a Microsoft Entra ID token."""
    env = request.env
    endpoint = request.endpoint or env.get("AZURE_OPENAI_ENDPOINT")
    if not endpoint:
        raise ConfigurationError(
            "backend='azure' needs an endpoint: pass endpoint='https://RESOURCE.openai.azure.com' "
            "or set AZURE_OPENAI_ENDPOINT (Azure portal > your resource > Keys and Endpoint)"
        )
    model = request.model or env.get("AZURE_OPENAI_MODEL")
    source = "connect(model=)" if request.model else ("AZURE_OPENAI_MODEL" if model else None)
    deployment = (
        request.deployment or env.get("AZURE_OPENAI_DEPLOYMENT") or env.get("AZURE_OPENAI_DEPLOYMENT_NAME")
        or model or DEFAULT_MODEL
    )
    api_version = request.api_version or env.get("OPENAI_API_VERSION") or V1_ROUTE
    if "/openai/v1" in endpoint.rstrip("/") + "/":
        api_version = V1_ROUTE  # an endpoint naming the v1 route takes no api-version
    route = None if api_version == V1_ROUTE else api_version
    key = None if request.use_entra_id else (request.api_key or env.get("AZURE_OPENAI_API_KEY"))
    if key:
        return Target(BackendKind.AZURE, endpoint, deployment, route, "key", Secret(key), model=model, model_source=source)
    if request.use_entra_id is False:
        raise ConfigurationError(
            f"use_entra_id=False but no key for {display_url(endpoint)}: pass api_key= or set "
            "AZURE_OPENAI_API_KEY, or allow Entra ID (`az login`)"
        )
    provider = entra_token_provider(endpoint)
    return Target(
        BackendKind.AZURE, endpoint, deployment, route, "entra-id", Secret(None), provider, model=model, model_source=source
    )


def openai_model(request: TargetRequest) -> str:
    return request.model or request.deployment or request.env.get("OPENAI_MODEL") or DEFAULT_MODEL


def openai_target(request: TargetRequest) -> Target:
    """OpenAI itself (api.openai.com): a key is needed."""
    key = request.api_key or request.env.get("OPENAI_API_KEY")
    if not key:
        raise ConfigurationError(
            "backend='openai' needs OPENAI_API_KEY (or api_key=), or OPENAI_BASE_URL / base_url= "
            "for a local OpenAI-compatible server such as Ollama, vLLM or LM Studio"
        )
    return Target(BackendKind.OPENAI, "https://api.openai.com/v1", openai_model(request), None, "key", Secret(key))


def compatible_target(request: TargetRequest) -> Target:
    """An OpenAI-compatible server at ``base_url`` (Ollama, vLLM, LM Studio): the key is optional."""
    base_url = request.base_url or request.env.get("OPENAI_BASE_URL") or ""
    key = request.api_key or request.env.get("OPENAI_API_KEY")
    auth = "key" if key else "none"
    return Target(BackendKind.OPENAI, base_url, openai_model(request), None, auth, Secret(key or DUMMY_KEY))


def local_target(request: TargetRequest, *, in_process: bool) -> Target:
    """The built-in backend: the user's shared process, or (``in_process``) one in this interpreter,
    serving the wanted deployment beside its defaults."""
    options = dict(request.local_options or {})
    from vizlab.local.config import DEFAULT_DEPLOYMENT, DEFAULT_DEPLOYMENTS

    wanted = request.deployment or request.model or DEFAULT_DEPLOYMENT  # named in one place, with the rule
    deployments = tuple(options.pop("deployments", DEFAULT_DEPLOYMENTS))
    if wanted not in deployments:
        deployments = (*deployments, wanted)
    options["deployments"] = deployments
    local = local_backend(options) if in_process else shared_local_backend(options)
    # The built-in backend accepts any key unless local_options set one.
    key = request.api_key or options.get("api_key") or "vizlab-local"
    if not in_process and options.get("api_key") in (None, key):
        count_through(local, key)
    api_version = request.api_version or DEFAULT_API_VERSION
    return Target(BackendKind.LOCAL, str(local.url), wanted, api_version, "key", Secret(key), local=local)


# One builder per backend the request can choose; "openai" with a base URL is an OpenAI-compatible server.
TARGET_BUILDERS: Mapping[str, Callable[[TargetRequest], Target]] = {
    "azure": azure_target,
    "openai": openai_target,
    "openai-compatible": compatible_target,
    "local": lambda request: local_target(request, in_process=False),
    "inprocess": lambda request: local_target(request, in_process=True),
}


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
    """The :class:`Target` that :func:`vizlab.connect`'s arguments and the settings name."""
    request = TargetRequest(
        backend=backend, endpoint=endpoint, api_key=api_key, deployment=deployment, api_version=api_version,
        base_url=base_url, model=model, use_entra_id=use_entra_id, env=env, local_options=local_options,
    )
    chosen = choose_backend(request)
    if chosen == "openai" and (base_url or env.get("OPENAI_BASE_URL")):
        chosen = "openai-compatible"
    return TARGET_BUILDERS[chosen](request)


def default_token_model(names: Sequence[str | None]) -> str:
    """The first name the model registry knows (exact, alias or dated snapshot), else gpt-4o
    (a placeholder: the client says "model unknown" until it learns the model).

    A model without vision (o3-mini) counts too: its text estimates use its own encoding and
    prices, and an image sent to it is reported as not estimable.
    """
    from vizlab.models.registry import canonical_name

    for name in names:
        if name and canonical_name(name) is not None:
            return name
    return DEFAULT_MODEL



def v1_sdk(target: Target, *, asynchronous: bool, **common: Any) -> Any:
    """The openai SDK client for Azure's v1 route: ``OpenAI(base_url=f"{endpoint}/openai/v1/")``
    with the key, or the Entra ID token provider, as ``api_key`` (the SDK refreshes the token)."""
    import openai

    key: Any = target.api_key.reveal()
    provider = target.token_provider
    if provider is not None:
        if asynchronous:
            async def async_provider() -> str:
                return provider()

            key = async_provider
        else:
            key = provider
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=target.v1_base_url, api_key=key, **common)
