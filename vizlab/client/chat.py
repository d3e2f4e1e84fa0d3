"""Chat Completions calls of :class:`~vizlab.client.core.Client`: chat, achat, stream.

:class:`ChatCalls` is the client's chat part: given the transport, the model state and the error
mapper, it prepares the request body (with vizlab's estimate made before sending), sends it
through the openai SDK and builds the :class:`~vizlab.client.replies.Reply`.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vizlab import errors
from vizlab.client.errormap import ErrorMapper
from vizlab.client.modelstate import ModelState
from vizlab.client.params import apply_model_params
from vizlab.client.replies import Prepared, Reply, ReplyStream, finish_reason_of, request_id_of, ungrounded_of
from vizlab.errors import redact

# The built-in backend's header naming its analyst (vizlab.local.http.gateway.ANALYST_HEADER; the
# client imports nothing from vizlab.local, so the name is repeated here).
ANALYST_HEADER = "x-vizlab-analyst"

if TYPE_CHECKING:
    from vizlab.client.transport import Transport
    from vizlab.models.types import Cost
    from vizlab.tokens.pricing import PriceTable
    from vizlab.tokens.usage import Usage

DETAILS = ("low", "high", "auto")


def is_conversation(obj: Any) -> bool:
    return callable(getattr(obj, "messages", None)) and callable(getattr(obj, "add_assistant", None))


def request_messages(conversation_or_messages: Any, detail: str | None) -> list[dict[str, Any]]:
    """A deep copy of the messages to send, with every image's detail overridden if asked."""
    if detail is not None and detail not in DETAILS:
        raise errors.UnknownDetailError(
            f"detail={detail!r} is not one of {', '.join(DETAILS)}", detail=detail
        )
    if is_conversation(conversation_or_messages):
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



class ChatCalls:
    """The Chat Completions part of a client: prepare, send (adapting once), build the Reply."""

    def __init__(self, transport: Transport, state: ModelState, mapper: ErrorMapper) -> None:
        self.transport = transport
        self.state = state
        self.mapper = mapper

    @property
    def deployment(self) -> str:
        return self.state.deployment

    def map_error(self, e: BaseException) -> errors.VizlabError:
        return self.mapper.map_error(e)

    def send(self, send: Callable[[dict[str, Any]], Any], prepared: Prepared, *, stacklevel: int) -> Any:
        """``send(body)`` with the deployment's adaptations; on a refusal, one retry per refused
        parameter (the service names one at a time), so it ends after at most that many."""
        prepared.body = self.state.adapted(prepared.body)
        while True:
            try:
                with self.mapper.guard():
                    return self.answered(send(prepared.body), prepared)
            except errors.UnsupportedParameterError as e:
                retry = self.state.adapt(prepared.body, e, stacklevel=stacklevel + 1)  # None once nothing is left
                if retry is None:
                    raise
                prepared.body = retry

    async def asend(
        self, send: Callable[[dict[str, Any]], Awaitable[Any]], prepared: Prepared, *, stacklevel: int
    ) -> Any:
        """:meth:`send` for ``await``."""
        prepared.body = self.state.adapted(prepared.body)
        while True:
            try:
                with self.mapper.guard():
                    return self.answered(await send(prepared.body), prepared)
            except errors.UnsupportedParameterError as e:
                retry = self.state.adapt(prepared.body, e, stacklevel=stacklevel + 1)  # None once nothing is left
                if retry is None:
                    raise
                prepared.body = retry

    @staticmethod
    def answered(response: Any, prepared: Prepared) -> Any:
        headers = getattr(response, "headers", None)
        prepared.answered_by = headers.get(ANALYST_HEADER) if headers is not None else None
        return response

    def prepare(
        self,
        conversation_or_messages: Any,
        *,
        detail: str | None,
        max_tokens: int | None,
        prices: PriceTable | None,
        params: dict[str, Any],
        stream: bool,
    ) -> Prepared:
        if "stream" in params:
            raise TypeError("pass no stream= to chat(): use client.stream(...) to stream a reply")
        if "messages" in params or "model" in params:
            raise TypeError("messages and model are set by vizlab: pass the conversation, and deployment= to connect()")
        state = self.state
        messages = request_messages(conversation_or_messages, detail)
        conversation = conversation_or_messages if is_conversation(conversation_or_messages) else None
        body: dict[str, Any] = {"model": state.deployment, "messages": messages}
        params = state.adapted(params)  # a parameter this deployment refused before is not sent again
        apply_model_params(
            body, info=state.model_info, max_tokens=max_tokens, params=params, registry_applies=state.registry_applies
        )
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True, **(params.get("stream_options") or {})}
        if state.waits_for_reply:
            prepared = Prepared(body, None, state.model_note, conversation, prices)
            prepared.unestimated = (messages, max_tokens)
            return prepared
        estimate, estimate_error = None, None
        try:
            from vizlab.tokens.request import estimate_request

            by_rules: dict[str, Any] = {"rules": state.token_rules} if state.token_rules else {}
            estimate = estimate_request(
                messages, model=state.token_model, max_tokens=max_tokens, prices=prices, **by_rules
            )
        except Exception as e:  # an estimate must never stop a request the service may accept
            estimate_error = redact(f"{type(e).__name__}: {e}", self.transport.secrets())
        return Prepared(body, estimate, estimate_error, conversation, prices)

    def cost(self, usage: Usage | None, prepared: Prepared) -> Cost | None:
        if usage is None:
            return getattr(prepared.estimate, "cost", None)
        from vizlab.tokens.pricing import DEFAULT_PRICES

        table = prepared.prices or DEFAULT_PRICES
        try:
            return table.cost_of(usage, model=self.state.token_model)  # counts cached_tokens at their price
        except errors.VizlabError:  # no price for this model: report tokens, not a made-up cost
            return None

    def build_reply(self, raw: dict[str, Any], prepared: Prepared, latency_s: float, request_id: str | None) -> Reply:
        from vizlab.tokens.usage import Usage

        model = self.reported_model(raw, prepared)  # first: it may fill in the estimate
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
            finish_reason=finish_reason_of(choice),
            usage=usage,
            estimate=prepared.estimate,
            model=model,
            prompt_filter_results=list(prompt_filters) if prompt_filters is not None else None,
            content_filter_results=dict(choice_filters) if isinstance(choice_filters, Mapping) else None,
            latency_s=latency_s,
            raw=raw,
            request=prepared.body,
            cost=self.cost(usage, prepared),
            backend=str(self.transport.backend),
            deployment=self.state.deployment,
            request_id=request_id,
            estimate_error=prepared.estimate_error,
            answered_by=prepared.answered_by,
        )

    def reported_model(self, raw: Mapping[str, Any], prepared: Prepared | None = None) -> str:
        """The model the response names (learned when nothing stronger named it), else the
        deployment; a request sent unestimated is estimated now, by the rules the reply named."""
        reported = raw.get("model")
        state = self.state
        state.learn_model(reported)
        if prepared is not None and prepared.unestimated is not None and state.model_info is not None:
            messages, max_tokens = prepared.unestimated
            prepared.unestimated = None
            try:
                from vizlab.tokens.request import estimate_request

                prepared.estimate = estimate_request(
                    messages, model=state.token_model, max_tokens=max_tokens, prices=prepared.prices
                )
                prepared.estimate_error = (
                    f"model unknown before sending; estimated afterwards by {state.token_model}'s rules, "
                    "once the reply named the model"
                )
            except Exception:  # the late estimate is a courtesy; the note already says none was made
                pass
        return str(reported or state.deployment)

    def deliver(self, reply: Reply, prepared: Prepared, *, stacklevel: int) -> Reply:
        """Warn about a cut reply and append it to the conversation (success only)."""
        if reply.finish_reason in ("length", "content_filter"):
            warnings.warn(reply.warnings()[0], UserWarning, stacklevel=stacklevel)
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

    def complete(self, response: Any, completion: Any, prepared: Prepared, started: float, *, stacklevel: int) -> Reply:
        """The Reply for a finished (non-streamed) call: timed, built, warned about, appended."""
        latency = time.perf_counter() - started
        raw = completion.model_dump(mode="json", exclude_unset=True)
        reply = self.build_reply(raw, prepared, latency, request_id_of(response.headers))
        reply.ungrounded = tuple(ungrounded_of(response.headers))
        return self.deliver(reply, prepared, stacklevel=stacklevel + 1)

    # -- the calls; ``stacklevel`` is what warnings.warn would need in the method itself to name the
    # user's line, and each call passes one more down --

    def chat(self, conversation_or_messages: Any, *, detail: str | None, max_tokens: int | None,
             prices: PriceTable | None, params: dict[str, Any], stacklevel: int) -> Reply:  # fmt: skip
        prepared = self.prepare(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=prices, params=params, stream=False
        )
        started = time.perf_counter()
        sdk = self.transport.sdk
        response = self.send(
            lambda body: sdk.chat.completions.with_raw_response.create(**body), prepared, stacklevel=stacklevel + 1
        )
        with self.mapper.guard():
            completion = response.parse()
        return self.complete(response, completion, prepared, started, stacklevel=stacklevel + 1)

    async def achat(self, conversation_or_messages: Any, *, detail: str | None, max_tokens: int | None,
                    prices: PriceTable | None, params: dict[str, Any], stacklevel: int) -> Reply:  # fmt: skip
        prepared = self.prepare(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=prices, params=params, stream=False
        )
        started = time.perf_counter()
        async with self.transport.make_sdk(asynchronous=True) as sdk:
            response = await self.asend(
                lambda body: sdk.chat.completions.with_raw_response.create(**body), prepared, stacklevel=stacklevel + 1
            )
            with self.mapper.guard():
                completion = response.parse()
        return self.complete(response, completion, prepared, started, stacklevel=stacklevel + 1)

    def stream(self, conversation_or_messages: Any, *, detail: str | None, max_tokens: int | None,
               prices: PriceTable | None, params: dict[str, Any], stacklevel: int) -> ReplyStream:  # fmt: skip
        prepared = self.prepare(
            conversation_or_messages, detail=detail, max_tokens=max_tokens, prices=prices, params=params, stream=True
        )
        prepared.started = time.perf_counter()
        sdk = self.transport.sdk
        response = self.send(
            lambda body: sdk.chat.completions.with_raw_response.create(**body), prepared, stacklevel=stacklevel + 1
        )
        with self.mapper.guard():
            sdk_stream = response.parse()
        return ReplyStream(self, prepared, sdk_stream, request_id_of(response.headers))
