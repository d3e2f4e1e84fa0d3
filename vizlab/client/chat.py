"""Chat Completions calls of :class:`~vizlab.client.core.Client`: chat, achat, stream.

:class:`ChatCalls` is a mixin: it prepares the request body (with vizlab's estimate made before
sending), sends it through the openai SDK and builds the :class:`~vizlab.client.replies.Reply`.
"""

from __future__ import annotations

import copy
import time
import warnings as _warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vizlab import errors
from vizlab.client.adapt import ParameterAdaptedWarning, adaptation_for, apply_adaptations, describe_adaptation
from vizlab.client.errormap import ErrorMapping
from vizlab.client.params import apply_model_params
from vizlab.client.replies import Prepared, Reply, ReplyStream, finish_reason_of, request_id_of, ungrounded_of
from vizlab.errors import redact

# The built-in backend's header naming its analyst (vizlab.local.http.gateway.ANALYST_HEADER; the
# client imports nothing from vizlab.local, so the name is repeated here).
ANALYST_HEADER = "x-vizlab-analyst"

if TYPE_CHECKING:
    from vizlab.models.types import Cost, ModelInfo
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



class ChatCalls(ErrorMapping):
    """Mixin: the Chat Completions calls."""

    token_model: str
    model_info: ModelInfo | None
    token_rules: str | None
    registry_applies: bool
    deployment: str
    model_source: str | None
    _sdk: Any
    _adaptations: dict[str, dict[str, str | None]]
    _warned_adaptations: set[tuple[str, str]]

    def _make_sdk(self, *, asynchronous: bool) -> Any:
        raise NotImplementedError

    def learn_model(self, reported: object) -> None:
        raise NotImplementedError

    # -- adapting to a refused parameter (vizlab.client.adapt) --

    def adapted(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``body`` with the changes this deployment needed before (none: a plain copy)."""
        return apply_adaptations(body, self._adaptations.get(self.deployment, {}))

    def adapt(self, body: Mapping[str, Any], error: errors.VizlabError) -> dict[str, Any] | None:
        """The body to retry once after ``error`` (the service's unsupported_parameter /
        unsupported_value 400), remembered for this deployment and said once; None: no retry."""
        if not isinstance(error, errors.UnsupportedParameterError):
            return None
        change = adaptation_for(body, error.param)
        if change is None:
            return None
        param, replacement = change
        self._adaptations.setdefault(self.deployment, {})[param] = replacement
        if (self.deployment, param) not in self._warned_adaptations:
            self._warned_adaptations.add((self.deployment, param))
            code = str(getattr(error, "code", None) or "unsupported_parameter")
            _warnings.warn(describe_adaptation(self.deployment, param, replacement, code), ParameterAdaptedWarning,
                           stacklevel=4)  # fmt: skip
        return self.adapted(body)

    def _send(self, send: Callable[[dict[str, Any]], Any], prepared: Prepared) -> Any:
        """``send(body)`` with the deployment's adaptations; on a refusal, one retry per refused
        parameter (the service names one at a time), so it ends after at most that many."""
        prepared.body = self.adapted(prepared.body)
        while True:
            try:
                with self._sdk_errors():
                    return self._answered(send(prepared.body), prepared)
            except errors.UnsupportedParameterError as e:
                retry = self.adapt(prepared.body, e)  # None once nothing adaptable is left
                if retry is None:
                    raise
                prepared.body = retry

    @staticmethod
    def _answered(response: Any, prepared: Prepared) -> Any:
        headers = getattr(response, "headers", None)
        prepared.answered_by = headers.get(ANALYST_HEADER) if headers is not None else None
        return response

    async def _asend(self, send: Callable[[dict[str, Any]], Awaitable[Any]], prepared: Prepared) -> Any:
        """:meth:`_send` for ``await``."""
        prepared.body = self.adapted(prepared.body)
        while True:
            try:
                with self._sdk_errors():
                    return self._answered(await send(prepared.body), prepared)
            except errors.UnsupportedParameterError as e:
                retry = self.adapt(prepared.body, e)  # None once nothing adaptable is left
                if retry is None:
                    raise
                prepared.body = retry

    def _prepare(
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
        messages = request_messages(conversation_or_messages, detail)
        conversation = conversation_or_messages if is_conversation(conversation_or_messages) else None
        body: dict[str, Any] = {"model": self.deployment, "messages": messages}
        params = self.adapted(params)  # a parameter this deployment refused before is not sent again
        apply_model_params(
            body, info=self.model_info, max_tokens=max_tokens, params=params, registry_applies=self.registry_applies
        )
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True, **(params.get("stream_options") or {})}
        estimate, estimate_error = None, None
        if self.model_info is None and self.registry_applies and self.model_source is None and not self._target_is_local():
            estimate_error = (
                f"model unknown: vizlab learns the model behind deployment {self.deployment} from the first reply; "
                "name it with connect(model=...) or AZURE_OPENAI_MODEL to estimate before sending"
            )
            prepared = Prepared(body, None, estimate_error, conversation, prices)
            prepared.unestimated = (messages, max_tokens)
            return prepared
        try:
            from vizlab.tokens.request import estimate_request

            by_rules: dict[str, Any] = {"rules": self.token_rules} if self.token_rules else {}
            estimate = estimate_request(
                messages, model=self.token_model, max_tokens=max_tokens, prices=prices, **by_rules
            )
        except Exception as e:  # an estimate must never stop a request the service may accept
            estimate_error = redact(f"{type(e).__name__}: {e}", self._secrets())
        return Prepared(body, estimate, estimate_error, conversation, prices)

    def _cost(self, usage: Usage | None, prepared: Prepared) -> Cost | None:
        if usage is None:
            return getattr(prepared.estimate, "cost", None)
        from vizlab.tokens.pricing import DEFAULT_PRICES

        table = prepared.prices or DEFAULT_PRICES
        try:
            return table.cost_of(usage, model=self.token_model)  # counts cached_tokens at their price
        except errors.VizlabError:  # no price for this model: report tokens, not a made-up cost
            return None

    def _build_reply(
        self, raw: dict[str, Any], prepared: Prepared, latency_s: float, request_id: str | None
    ) -> Reply:
        from vizlab.tokens.usage import Usage

        model = self._reported_model(raw, prepared)  # first: it may fill in the estimate
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
            cost=self._cost(usage, prepared),
            backend=self.backend,
            deployment=self.deployment,
            request_id=request_id,
            estimate_error=prepared.estimate_error,
            answered_by=prepared.answered_by,
        )

    def _target_is_local(self) -> bool:
        return getattr(getattr(self, "_target", None), "local", None) is not None

    def _reported_model(self, raw: Mapping[str, Any], prepared: Prepared | None = None) -> str:
        """The model the response names (learned when nothing stronger named it), else the
        deployment; a request sent unestimated is estimated now, by the rules the reply named."""
        reported = raw.get("model")
        self.learn_model(reported)
        if prepared is not None and prepared.unestimated is not None and self.model_info is not None:
            messages, max_tokens = prepared.unestimated
            prepared.unestimated = None
            try:
                from vizlab.tokens.request import estimate_request

                prepared.estimate = estimate_request(
                    messages, model=self.token_model, max_tokens=max_tokens, prices=prepared.prices
                )
                prepared.estimate_error = (
                    f"model unknown before sending; estimated afterwards by {self.token_model}'s rules, "
                    "once the reply named the model"
                )
            except Exception:  # the late estimate is a courtesy; the note already says none was made
                pass
        return str(reported or self.deployment)

    def _deliver(self, reply: Reply, prepared: Prepared, *, stacklevel: int) -> Reply:
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

    def _complete(self, response: Any, completion: Any, prepared: Prepared, started: float) -> Reply:
        """The Reply for a finished (non-streamed) call: timed, built, warned about, appended."""
        latency = time.perf_counter() - started
        raw = completion.model_dump(mode="json", exclude_unset=True)
        reply = self._build_reply(raw, prepared, latency, request_id_of(response.headers))
        reply.ungrounded = tuple(ungrounded_of(response.headers))
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
        response = self._send(lambda body: self._sdk.chat.completions.with_raw_response.create(**body), prepared)
        with self._sdk_errors():
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
        async with self._make_sdk(asynchronous=True) as sdk:
            response = await self._asend(lambda body: sdk.chat.completions.with_raw_response.create(**body), prepared)
            with self._sdk_errors():
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
        response = self._send(lambda body: self._sdk.chat.completions.with_raw_response.create(**body), prepared)
        with self._sdk_errors():
            sdk_stream = response.parse()
        return ReplyStream(self, prepared, sdk_stream, request_id_of(response.headers))

