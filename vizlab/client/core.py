"""The :class:`Client` (one backend and deployment) and :func:`connect`, which makes one.

A Client is composed of parts, each given what it needs: the :class:`~vizlab.client.transport.Transport`
(SDK clients, shared across deployments), the :class:`~vizlab.client.modelstate.ModelState` (the
deployment's model and adaptations), the :class:`~vizlab.client.errormap.ErrorMapper`, and one part
per API: chat (:mod:`vizlab.client.chat`), Responses (:mod:`vizlab.client.responses`), counting
(:mod:`vizlab.client.counting`). This module holds the public face: description, lifecycle, switching.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vizlab import errors
from vizlab.client._env import DEFAULT_ENV_FILE, read_settings
from vizlab.client.chat import ChatCalls
from vizlab.client.counting import CountingCalls, EstimateWithCount, ServiceCount
from vizlab.client.errormap import ErrorMapper
from vizlab.client.modelstate import ModelState
from vizlab.client.replies import Reply, ReplyStream
from vizlab.client.responses import ResponsesCalls
from vizlab.client.targets import LOCAL_MODEL_NAME, BackendKind, Target, default_token_model, resolve_target
from vizlab.client.transport import Transport
from vizlab.errors import ConfigurationError
from vizlab.models.types import ModelInfo

if TYPE_CHECKING:
    from vizlab.tokens.pricing import PriceTable

__all__ = ["Client", "connect"]


class Client:
    """A connection to one backend and deployment; make it with :func:`connect`."""

    def __init__(
        self, target: Target, *, token_model: str, timeout: float, max_retries: int, token_model_given: bool = False
    ) -> None:
        transport = Transport(target, timeout=timeout, max_retries=max_retries)
        state = ModelState(target, target.deployment, token_model=token_model, token_model_given=token_model_given)
        self._assemble(transport, state)

    def _assemble(self, transport: Transport, state: ModelState) -> None:
        self._transport = transport
        self._state = state
        self._errors = ErrorMapper(transport, state, known_deployments=self._known_deployments)
        self._chat = ChatCalls(transport, state, self._errors)
        self._responses = ResponsesCalls(self._chat)
        self._counting = CountingCalls(self._chat)

    # -- the connection's facts (the transport part) --

    @property
    def backend(self) -> BackendKind:
        """``BackendKind.AZURE``, ``.OPENAI`` or ``.LOCAL`` (a str: ``client.backend == "azure"`` holds)."""
        return self._transport.backend

    @property
    def endpoint(self) -> str:
        """The endpoint or base URL, without credentials or query."""
        return self._transport.endpoint

    @property
    def api_version(self) -> str | None:
        """The dated api-version on Azure's dated route; None on the v1 route and for OpenAI."""
        return self._transport.api_version

    @property
    def auth(self) -> str:
        """``"key"``, ``"entra-id"`` or ``"none"``."""
        return self._transport.auth

    @property
    def timeout(self) -> float:
        return self._transport.timeout

    @property
    def max_retries(self) -> int:
        return self._transport.max_retries

    @property
    def _target(self) -> Target:
        return self._transport.target

    def _secrets(self) -> list[str | None]:
        return self._transport.secrets()

    # -- the deployment's model (the model-state part) --

    @property
    def deployment(self) -> str:
        return self._state.deployment

    @property
    def token_model(self) -> str:
        """The model whose token rules and prices estimates use."""
        return self._state.token_model

    @token_model.setter
    def token_model(self, value: str) -> None:
        self._state.token_model = value

    @property
    def token_rules(self) -> str | None:
        """A rule profile for estimates (:func:`vizlab.calibrate` sets it), or None."""
        return self._state.token_rules

    @token_rules.setter
    def token_rules(self, value: str | None) -> None:
        self._state.token_rules = value

    @property
    def registry_applies(self) -> bool:
        """True where the registry's parameter rules hold (Azure, OpenAI, the built-in backend)."""
        return self._state.registry_applies

    @property
    def model_info(self) -> ModelInfo | None:
        """The registry entry of the model behind the deployment, once known."""
        return self._state.model_info

    @property
    def model_source(self) -> str | None:
        """Where the model came from: "connect(model=)", "AZURE_OPENAI_MODEL", "built-in backend",
        "deployment name", "connect(token_model=)" or "reported"; None while unknown."""
        return self._state.model_source

    @property
    def model_known(self) -> bool:
        """True once the registry model behind the deployment is known."""
        return self._state.model_info is not None

    @property
    def model_note(self) -> str:
        """'' when a stated source names the model; else one line starting "model unknown" (or
        "model assumed", from the deployment's name) that says which token rules estimates assume,
        if any. Panels show it beside an estimate."""
        return self._state.model_note

    def learn_model(self, reported: object) -> None:
        """Take the model a response reports (``gpt-5-mini-2025-08-07``) when nothing stronger
        named it: its parameter rules and, unless ``token_model=`` was given, its token rules."""
        self._state.learn_model(reported)

    def lifecycle_note(self) -> str:
        """The model's lifecycle and retirement date when the registry states one, else ''.

        e.g. ``"model o1-mini: deprecated, retires 2025-10-27"``
        """
        return self._state.lifecycle_note()

    def adapted(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``body`` with the changes this deployment needed before (none: a plain copy)."""
        return self._state.adapted(body)

    def adapt(self, body: Mapping[str, Any], error: errors.VizlabError) -> dict[str, Any] | None:
        """The body to retry once after ``error`` (the service's unsupported_parameter /
        unsupported_value 400), remembered for this deployment and said once; None: no retry."""
        return self._state.adapt(body, error, stacklevel=5)

    # -- the calls (one part per API) --

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
        return self._chat.chat(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=prices, params=params, stacklevel=3
        )

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
        return await self._chat.achat(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=prices, params=params, stacklevel=3
        )

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
        return self._chat.stream(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=prices, params=params, stacklevel=3
        )

    def respond(
        self,
        conversation_or_messages: Any,
        *,
        detail: str | None = None,
        max_output_tokens: int | None = 1000,
        previous_response_id: str | None = None,
        instructions: str | None = None,
        store: bool = True,
        prices: PriceTable | None = None,
        **params: Any,
    ) -> Reply:
        """Send through the Responses API and return the :class:`Reply` (same object as
        :meth:`chat`). With ``previous_response_id`` only the new turn is sent and the service
        answers from its stored context; ``reply.raw["id"]`` is this response's id."""
        return self._responses.respond(
            conversation_or_messages, detail=detail, max_output_tokens=max_output_tokens,
            previous_response_id=previous_response_id, instructions=instructions, store=store, prices=prices,
            params=params, stacklevel=3,
        )

    def count_input_tokens(
        self, conversation_or_messages: Any, *, detail: str | None = None, instructions: str | None = None
    ) -> ServiceCount:
        """Ask the service how many input tokens this request is (no answer is generated)."""
        return self._counting.count_input_tokens(conversation_or_messages, detail=detail, instructions=instructions)

    def estimate(
        self,
        conversation_or_messages: Any,
        *,
        detail: str | None = None,
        max_tokens: int | None = 1000,
        service_count: bool = False,
    ) -> EstimateWithCount:
        """vizlab's estimate of the request :meth:`chat` would send; with ``service_count=True``
        also the service's own count (:meth:`count_input_tokens`), side by side. Before the first
        reply on a deployment whose model is unknown, it says "model unknown" (``.model_note``)."""
        return self._counting.estimate(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, service_count=service_count
        )

    # -- errors --

    def mapped_errors(self) -> contextlib.AbstractContextManager[None]:
        """A context manager turning openai exceptions into vizlab errors (keys redacted)."""
        return self._errors.guard()

    # -- description --

    def describe(self) -> str:
        """One line naming the backend, endpoint, deployment and auth kind (never the key), and
        the model's retirement date when the registry has one."""
        note = self.lifecycle_note()
        return self._describe_target() + (f"; {note}" if note else "")

    def _describe_target(self) -> str:
        t = self._target
        if t.backend is BackendKind.LOCAL:
            analyst = getattr(t.local.config, "model_name", None) or LOCAL_MODEL_NAME
            model = self.model_info.name if self.model_info is not None else "unknown"
            return (
                f"vizlab: built-in local backend at {self.endpoint} (deployment {self.deployment}, "
                f"model {model} emulated by {analyst})"
            )
        auth = {"key": "key auth", "entra-id": "Microsoft Entra ID auth", "none": "no key"}[t.auth]
        if t.backend is BackendKind.AZURE:
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

    def close(self, *, stop_backend: bool = False) -> None:
        """Release the HTTP connections. The built-in backend keeps running for other kernels
        unless ``stop_backend=True``: then the backend this connection used is stopped too (for a
        backend with settings of its own, such as its own key, that no other notebook shares)."""
        self._transport.close()
        local = self._transport.local
        if stop_backend and local is not None:
            local.stop()

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
        with self.mapped_errors():
            return self._transport.model_ids()

    def _known_deployments(self) -> list[str]:
        """Deployments we can name without another request (the built-in backend's list)."""
        local = self._target.local
        if local is not None:
            names = getattr(local.config, "deployments", None)
            if names:
                return sorted(str(n) for n in names)
        if self.backend is BackendKind.OPENAI:
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
        if token_model is not None:
            rules = token_model
        elif self._target.local is not None:
            rules = str(self._target.local.config.token_model_for(name))
        else:
            rules = default_token_model([name])
        clone = Client.__new__(Client)  # not copy.copy: pickling (and so copying) is refused
        # The transport (pool) is shared; the adaptations are shared too: they are keyed by deployment.
        clone._assemble(
            self._transport, self._state.for_deployment(name, token_model=rules, token_model_given=token_model is not None)
        )
        return clone

    @property
    def sdk(self) -> Any:
        """The official openai client (``AzureOpenAI`` or ``OpenAI``) behind this one, for APIs
        vizlab does not wrap (files, batches...). Wrap calls in :meth:`mapped_errors`."""
        return self._transport.sdk

    @property
    def responses_sdk(self) -> Any:
        """The official openai client this Client sends Responses API calls through (on Azure:
        the v1 route, ``OpenAI(base_url=f"{endpoint}/openai/v1/")``)."""
        return self._transport.responses_sdk()


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
        if target.backend is BackendKind.LOCAL:
            # Estimate with the rules the built-in backend reports usage by on this deployment.
            token_model = str(target.local.config.token_model_for(target.deployment))
        else:
            token_model = default_token_model([target.model, target.deployment])
    client = Client(target, token_model=token_model, timeout=timeout, max_retries=max_retries, token_model_given=given)
    if verbose:
        print(client.describe())
    return client
