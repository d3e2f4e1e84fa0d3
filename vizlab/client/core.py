"""The :class:`Client` (one backend and deployment) and :func:`connect`, which makes one.

The calls live in mixins, one module per API: :mod:`vizlab.client.chat` (Chat Completions),
:mod:`vizlab.client.responses` (the Responses API); error mapping in
:mod:`vizlab.client.errormap`. This module holds what every call shares: the SDK client, the
one-line description, the lifecycle and deployment switching.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from vizlab import errors
from vizlab.client._env import DEFAULT_ENV_FILE, read_settings
from vizlab.client.counting import CountingCalls
from vizlab.client.params import applies_registry, model_info_for
from vizlab.client.targets import LOCAL_MODEL_NAME, Target, default_token_model, display_url, resolve_target, v1_sdk
from vizlab.errors import ConfigurationError
from vizlab.models.types import ModelInfo

__all__ = ["Client", "connect"]


class Client(CountingCalls):
    """A connection to one backend and deployment; make it with :func:`connect`."""

    def __init__(
        self, target: Target, *, token_model: str, timeout: float, max_retries: int, token_model_given: bool = False
    ) -> None:
        self._target = target
        self.backend: str = target.backend
        self.deployment: str = target.deployment
        self.token_model: str = token_model
        self.endpoint: str = display_url(target.endpoint)
        self.api_version: str | None = target.api_version
        self.auth: str = target.auth
        self.timeout = timeout
        self.max_retries = max_retries
        self.token_rules: str | None = None  # a rule profile for estimates (vizlab.calibrate sets it)
        self.registry_applies: bool = applies_registry(target.backend, target.endpoint)
        self._token_model_given = token_model_given
        self._adaptations: dict[str, dict[str, str | None]] = {}  # per deployment (vizlab.client.adapt)
        self._warned_adaptations: set[tuple[str, str]] = set()
        self.model_info: ModelInfo | None = None
        self.model_source: str | None = None
        self._set_model(target.deployment)
        self._sdk = self._make_sdk(asynchronous=False)

    def _set_model(self, deployment: str) -> None:
        """Learn the deployment's model, in order: ``connect(model=)``, ``AZURE_OPENAI_MODEL``, the
        built-in backend's own mapping, the deployment's name when the registry knows it, and
        (later, :meth:`learn_model`) the model each response reports. Unknown until then."""
        local = self._target.local
        candidates: list[tuple[str | None, str]] = []
        if local is not None:
            model_for = getattr(local.config, "model_for", None)
            candidates.append((model_for(deployment) if callable(model_for) else None, "built-in backend"))
        elif deployment == self._target.deployment and self._target.model:
            candidates.append((self._target.model, self._target.model_source or "connect(model=)"))
        candidates.append((deployment, "deployment name"))
        if self._token_model_given:
            candidates.append((self.token_model, "connect(token_model=)"))
        self.model_info, self.model_source = None, None
        for name, source in candidates:
            info = model_info_for([name])
            if info is not None:
                self.model_info, self.model_source = info, source
                return

    @property
    def model_known(self) -> bool:
        """True once the registry model behind the deployment is known (see :meth:`_set_model`)."""
        return self.model_info is not None

    def learn_model(self, reported: object) -> None:
        """Take the model a response reports (``gpt-5-mini-2025-08-07``) when nothing stronger
        named it: its parameter rules and, unless ``token_model=`` was given, its token rules."""
        from vizlab.models.registry import canonical_name, lookup, snapshots

        if not isinstance(reported, str) or self.model_source not in (None, "deployment name"):
            return
        if canonical_name(reported) is None:
            return
        info = lookup(reported)
        if self.model_info is not None and self.model_info.name == info.name and self.model_source == "reported":
            return
        self.model_info, self.model_source = info, "reported"
        if not self._token_model_given:
            self.token_model = reported.strip().lower() if reported.strip().lower() in snapshots() else info.name

    def lifecycle_note(self) -> str:
        """The model's lifecycle and retirement date when the registry states one, else ''.

        e.g. ``"model o1-mini: deprecated, retires 2025-10-27"``
        """
        info = self.model_info
        if info is None:
            return ""
        parts = [] if info.lifecycle == "generally-available" else [info.lifecycle]
        if info.retires:
            parts.append(f"retires {info.retires}")
        return f"model {info.name}: {', '.join(parts)}" if parts else ""

    # -- SDK clients --

    def _make_sdk(self, *, asynchronous: bool) -> Any:
        import openai

        t = self._target
        common: dict[str, Any] = {"timeout": self.timeout, "max_retries": self.max_retries}
        if t.v1:  # Azure's v1 route: the plain OpenAI client, a key or an Entra ID token provider
            return v1_sdk(t, asynchronous=asynchronous, **common)
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
        """One line naming the backend, endpoint, deployment and auth kind (never the key), and
        the model's retirement date when the registry has one."""
        note = self.lifecycle_note()
        return self._describe_target() + (f"; {note}" if note else "")

    def _describe_target(self) -> str:
        t = self._target
        if t.backend == "local":
            analyst = getattr(t.local.config, "model_name", None) or LOCAL_MODEL_NAME
            model = self.model_info.name if self.model_info is not None else "unknown"
            return (
                f"vizlab: built-in local backend at {self.endpoint} (deployment {self.deployment}, "
                f"model {model} emulated by {analyst})"
            )
        auth = {"key": "key auth", "entra-id": "Microsoft Entra ID auth", "none": "no key"}[t.auth]
        if t.backend == "azure":
            route = "v1 API" if t.v1 else f"api-version {self.api_version}"
            model = f"model {self.model_info.name}" if self.model_info is not None else "model unknown until it answers"
            return f"vizlab: Azure OpenAI at {self.endpoint} (deployment {self.deployment}, {model}, {route}, {auth})"
        host = urlsplit(self.endpoint).hostname or ""
        if "/openai/v1" in self.endpoint:
            kind = "Azure OpenAI v1 API"
        elif host == "api.openai.com":
            kind = "OpenAI"
        else:
            kind = "OpenAI-compatible server"
        return f"vizlab: {kind} at {self.endpoint} (model {self.deployment}, {auth})"

    def __repr__(self) -> str:
        return f"<vizlab.Client {self._describe_target().removeprefix('vizlab: ')}; token_model {self.token_model}>"

    __str__ = describe

    def __getstate__(self) -> Any:
        raise TypeError("a vizlab Client holds a live connection and a key; it cannot be pickled")

    # -- lifecycle --

    def close(self) -> None:
        """Release the HTTP connections (the shared built-in backend keeps running)."""
        self._sdk.close()
        if self._responses_client is not None:  # the v1 client of respond() (vizlab.client.responses)
            self._responses_client.close()
            self._responses_client = None

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
        clone.__dict__.update(self.__dict__)  # the adaptations dict is shared: it is keyed by deployment
        clone.deployment = name
        clone._token_model_given = token_model is not None
        if token_model is not None:
            clone.token_model = token_model
        elif self._target.local is not None:
            clone.token_model = str(self._target.local.config.token_model_for(name))
        else:
            clone.token_model = default_token_model([name])
        clone._set_model(name)
        return clone

    @property
    def sdk(self) -> Any:
        """The official openai client (``AzureOpenAI`` or ``OpenAI``) behind this one, for APIs
        vizlab does not wrap (files, batches...). Wrap calls in :meth:`mapped_errors`."""
        return self._sdk



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
    """Return a :class:`Client` for the first backend configured (the order: docs/internals.md#client).

    ``token_model`` picks the token rules and prices used for estimates (default: the
    deployment/model name when vizlab.tokens knows it, else gpt-4o; on the built-in backend, else
    its ``token_model``, exactly the rules it reports usage by). ``timeout`` (seconds) bounds
    each wait of one attempt: connecting, and every read, so a stream may run longer while chunks
    keep coming. ``max_retries`` is how often the SDK retries 408/409/429/5xx, timeouts and
    refused connections, so the worst case is about ``(max_retries + 1) * timeout`` plus back-off.

    >>> client = connect(verbose=False)  # the built-in backend  # doctest: +SKIP
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
    target = resolve_target(
        backend=backend, endpoint=endpoint, api_key=api_key, deployment=deployment,
        api_version=api_version, base_url=base_url, model=model, use_entra_id=use_entra_id,
        env=env, local_options=local_options,
    )
    given = token_model is not None
    if token_model is None:
        if target.backend == "local":
            # Estimate with the rules the built-in backend reports usage by on this deployment.
            token_model = str(target.local.config.token_model_for(target.deployment))
        else:
            token_model = default_token_model([target.model, target.deployment])
    client = Client(target, token_model=token_model, timeout=timeout, max_retries=max_retries, token_model_given=given)
    if verbose:
        print(client.describe())
    return client
