"""The transport part of a :class:`~vizlab.client.core.Client`: one target's openai SDK clients.

One :class:`Transport` per connection, shared by every deployment a client switches to
(``with_deployment``): the synchronous SDK client and its HTTP pool, the Responses client on
Azure's v1 route, an async client made per call. Trade-off: the Responses client is made on first
use, so a client that only chats opens one pool.
"""

from __future__ import annotations

from typing import Any

from vizlab.client.targets import BackendKind, Target, display_url, v1_sdk

__all__ = ["Transport"]


class Transport:
    """Where requests go (a :class:`~vizlab.client.targets.Target`) and the SDK clients that send them."""

    def __init__(self, target: Target, *, timeout: float, max_retries: int) -> None:
        self.target = target
        self.backend: BackendKind = target.backend
        self.endpoint: str = display_url(target.endpoint)
        self.api_version: str | None = target.api_version
        self.auth: str = target.auth
        self.timeout = timeout
        self.max_retries = max_retries
        self.sdk: Any = self.make_sdk(asynchronous=False)
        self._responses_client: Any = None

    @property
    def local(self) -> Any:
        """The built-in backend behind this connection, or None."""
        return self.target.local

    @property
    def shared_pid(self) -> int | None:
        """The process id of the shared built-in backend (outside this kernel), or None."""
        return getattr(self.target.local, "pid", None)

    def secrets(self) -> list[str | None]:
        """What error messages and notes must never show (the key)."""
        return [self.target.api_key.reveal()]

    def make_sdk(self, *, asynchronous: bool) -> Any:
        """A new openai SDK client for this target (``AzureOpenAI`` on a dated route, else ``OpenAI``)."""
        import openai

        t = self.target
        common: dict[str, Any] = {"timeout": self.timeout, "max_retries": self.max_retries}
        if t.v1:  # Azure's v1 route: the plain OpenAI client, a key or an Entra ID token provider
            return v1_sdk(t, asynchronous=asynchronous, **common)
        if t.backend in (BackendKind.AZURE, BackendKind.LOCAL):
            auth: dict[str, Any] = (
                {"azure_ad_token_provider": t.token_provider}
                if t.token_provider is not None
                else {"api_key": t.api_key.reveal()}
            )
            cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
            return cls(azure_endpoint=t.endpoint, api_version=t.api_version, **auth, **common)
        cls_oa = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        return cls_oa(base_url=t.endpoint, api_key=t.api_key.reveal(), **common)

    def responses_sdk(self) -> Any:
        """The SDK client for the Responses API. On Azure (and the built-in backend) that is the
        v1 route, ``OpenAI(base_url=f"{endpoint}/openai/v1/")``: dated api-versions before
        2025-03-01-preview have no Responses API, and the v1 API needs none (Azure OpenAI
        "Responses API" how-to, 2026). Elsewhere it is the chat client itself."""
        t = self.target
        if t.backend not in (BackendKind.AZURE, BackendKind.LOCAL) or t.v1:
            return self.sdk
        if self._responses_client is None:
            self._responses_client = v1_sdk(t, asynchronous=False, timeout=self.timeout, max_retries=self.max_retries)
        return self._responses_client

    def model_ids(self) -> list[str]:
        """Model ids from the backend's GET models (raw SDK errors: the caller maps them)."""
        import openai

        if self.backend is BackendKind.LOCAL:
            # The built-in backend lists its deployments at /v1/models, the OpenAI route.
            with openai.OpenAI(
                base_url=self.target.endpoint.rstrip("/") + "/v1",
                api_key=self.target.api_key.reveal(),
                timeout=self.timeout,
                max_retries=self.max_retries,
            ) as sdk:
                return sorted(m.id for m in sdk.models.list())
        return sorted(m.id for m in self.sdk.models.list())

    def close(self) -> None:
        """Release the HTTP connections (the shared built-in backend keeps running)."""
        self.sdk.close()
        if self._responses_client is not None:
            self._responses_client.close()
            self._responses_client = None
