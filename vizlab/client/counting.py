"""Exact input counts from the service, beside vizlab's estimate (``Client.count_input_tokens``,
``Client.estimate``).

The Responses API's ``POST /responses/input_tokens`` answers ``{"object": "response.input_tokens",
"input_tokens": N}`` (OpenAI API reference, "Get input token counts", read 2026). Where the provider
has no such route (a 404 that is not DeploymentNotFound, or an OpenAI-compatible server) the count
says so instead of guessing. Trade-off: one extra request per count, not billed as tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vizlab.client.chat import ChatCalls, request_messages
from vizlab.client.responses import to_responses_input

if TYPE_CHECKING:
    from vizlab.tokens.request import RequestEstimate

__all__ = ["ServiceCount", "EstimateWithCount", "CountingCalls", "COUNT_ROUTE"]

COUNT_ROUTE = "POST /responses/input_tokens"


@dataclass(frozen=True)
class ServiceCount:
    """The service's own count of a request's input tokens, or None with the reason."""

    input_tokens: int | None
    note: str

    def __str__(self) -> str:
        return f"{self.input_tokens:,} input tokens ({self.note})" if self.input_tokens is not None else self.note


@dataclass(frozen=True)
class EstimateWithCount:
    """vizlab's estimate of a request beside the service's count (when asked for and offered)."""

    estimate: RequestEstimate | None
    estimate_error: str | None
    service: ServiceCount | None
    # '' when a stated source names the model; else "model unknown: ..." / "model assumed: ..." with
    # the token rules the estimate assumes, if any (Client.model_note)
    model_note: str = ""

    def __str__(self) -> str:
        if self.estimate is not None:
            mine = f"vizlab estimate: {self.estimate.prompt_tokens:,} prompt tokens"
            mine += f" ({self.model_note})" if self.model_note else ""
        else:
            mine = f"vizlab estimate: none ({self.estimate_error})"
        return mine if self.service is None else f"{mine} · service count: {self.service}"


class CountingCalls:
    """The counting part of a client: the service's token count and the side-by-side estimate."""

    def __init__(self, chat: ChatCalls) -> None:
        self.chat = chat

    def count_input_tokens(
        self, conversation_or_messages: Any, *, detail: str | None = None, instructions: str | None = None
    ) -> ServiceCount:
        """Ask the service how many input tokens this request is (no answer is generated)."""
        import openai

        chat = self.chat
        endpoint = chat.transport.endpoint
        if not chat.state.registry_applies:
            return ServiceCount(None, f"not offered: {endpoint} is an OpenAI-compatible server without {COUNT_ROUTE}")
        messages = request_messages(conversation_or_messages, detail)
        body: dict[str, Any] = {"model": chat.deployment, "input": to_responses_input(messages)}
        if instructions is not None:
            body["instructions"] = instructions
        sdk = chat.transport.responses_sdk()
        with chat.mapper.guard():
            try:
                result = sdk.responses.input_tokens.count(**body)
            except openai.NotFoundError as e:
                if str(getattr(e, "code", "") or "") == "DeploymentNotFound":
                    raise  # the deployment is wrong, not the route: mapped with advice
                return ServiceCount(None, f"not offered: {endpoint} answered 404 to {COUNT_ROUTE}")
        return ServiceCount(int(result.input_tokens), f"counted by the service, {COUNT_ROUTE}")

    def estimate(
        self, conversation_or_messages: Any, *, detail: str | None, max_tokens: int | None, service_count: bool
    ) -> EstimateWithCount:
        """vizlab's estimate of the request chat() would send; with ``service_count=True`` also the
        service's own count, side by side; and the model note when the model is unknown or assumed."""
        prepared = self.chat.prepare(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=None, params={}, stream=False
        )
        service = self.count_input_tokens(conversation_or_messages, detail=detail) if service_count else None
        return EstimateWithCount(prepared.estimate, prepared.estimate_error, service, self.chat.state.model_note)
