"""One chat completion: limits, quota, the analyst, the reply.

Order of checks in :func:`complete` (each refusal costs no quota and counts nothing it need not):
image count, ``max_tokens`` against the model's output limit, the prompt content filter, image
decoding, one token count (the context-window check and ``usage.prompt_tokens``), the RPM/TPM
quota, then the analyst's answer, cut at ``stop`` and ``max_tokens``.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any, Mapping

from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from vizlab.errors import VizlabError
from vizlab.local import _deps
from vizlab.local.analyst.answer import IDENTITY, NO_IMAGE_ANSWER
from vizlab.local.config import BackendConfig
from vizlab.local.state import BackendState
from vizlab.local.http.errors import AzureError, bad_request
from vizlab.local.http.ratelimit import retry_headers
from vizlab.local.replies.caching import checkpoints
from vizlab.local.replies.filters import check_prompt, completion_results, prompt_filter_results
from vizlab.local.replies.shaping import ShapedReply, shape_reply
from vizlab.local.replies.streaming import stream_chat
from vizlab.local.replies.structured import Findings, needs_text
from vizlab.local.replies.document_answers import answer_documents
from vizlab.local.requests.documents import has_documents, prepare_documents
from vizlab.local.requests.fields import CHAT_FIELDS, FieldRule, report_headers
from vizlab.local.requests.images import clean_messages, load_images
from vizlab.local.requests.limits import DEFAULT_LIMITS, ModelLimits, check_refused, image_limit, limits_for
from vizlab.local.requests.reasoning import check_reasoning_params, effort_of, reasoning_tokens
from vizlab.local.requests.validation import ChatRequest
from vizlab.models.types import ModelInfo

__all__ = ['Completion', 'complete', 'run_completion', 'count_prompt', 'UNGROUNDED_HEADER']

UNGROUNDED_HEADER = "x-vizlab-ungrounded"

# BackendConfig's own max_images default: a backend that keeps it follows the registry per model and API.
_DEFAULT_MAX_IMAGES: int = BackendConfig.__dataclass_fields__["max_images"].default  # type: ignore[assignment]

@dataclass
class Completion:
    """One answered request, before it is written as a Chat or a Responses body."""

    shaped: ShapedReply
    prompt_tokens: int
    completion_tokens: int  # of one choice, reasoning tokens included
    headers: dict[str, str]
    cached_tokens: int = 0  # of the prompt, from the prompt-cache emulation (vizlab.local.replies.caching)
    reasoning_tokens: int = 0  # of one choice, emulated (vizlab.local.requests.reasoning)


async def complete(
    state: BackendState, chat: ChatRequest, deployment: str, api_version: str, *, origin: str | None = None
) -> Response:
    done = await run_completion(state, chat, deployment, api_version, origin=origin)
    shaped, prompt_tokens, headers = done.shaped, done.prompt_tokens, done.headers
    usage = usage_of(  # n choices are n completions
        prompt_tokens, done.completion_tokens * chat.n, cached=done.cached_tokens,
        reasoning=done.reasoning_tokens * chat.n,
    )
    # The service's id shape: "chatcmpl-" + 29 characters (e.g. "chatcmpl-9G3RjWu79ipgraHFsTFS9XD1zgjgI"
    # in an Azure response shown in Jayanthkcai/Artificial-Intelligence RESTAPI.md, 2024-04).
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:29]
    created = int(time.time())
    if chat.stream:
        return StreamingResponse(
            stream_chat(completion_id, created, shaped, usage, chat, state.config,
                        prompt_filter_results(state.config.token_model_for(deployment), bool(chat.images)),
                        deployment),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": state.config.reported_model(deployment),
        "system_fingerprint": "fp_vizlab_local",
        "prompt_filter_results": prompt_filter_results(state.config.token_model_for(deployment), bool(chat.images)),
        "choices": [
            {
                "index": i,
                "finish_reason": shaped.finish_reason,
                "logprobs": shaped.logprobs,
                "message": shaped.message(),
                "content_filter_results": completion_results(),
            }
            for i in range(chat.n)
        ],
        "usage": usage,
    }
    return JSONResponse(body, headers=headers)


async def count_prompt(state: BackendState, chat: ChatRequest, deployment: str, *, origin: str | None = None) -> int:
    """The prompt tokens :func:`run_completion` would bill for ``chat`` (images decoded and
    counted the same way), without the quota or an answer: the token-counting endpoint."""
    config = state.config
    check_vision(chat, config.model_info(deployment))
    decoded = await run_in_threadpool(load_images, chat, config, origin, state.files) if chat.images else []
    del decoded  # decoding checks the images as a request would; the count reads the parts
    try:
        counted = await run_in_threadpool(
            partial(state.count_prompt, rules=config.billing_rules, numbers=config.billing_numbers,
                    request=chat.body, api="responses"),  # counted as the Responses route bills it
            clean_messages(chat), config.token_model_for(deployment),
        )
    except VizlabError as e:
        raise bad_request("BadRequest", f"The request could not be counted: {e}", "input") from e
    return int(counted.tokens)


async def run_completion(
    state: BackendState,
    chat: ChatRequest,
    deployment: str,
    api_version: str,
    *,
    origin: str | None = None,
    fields: Mapping[str, FieldRule] = CHAT_FIELDS,
    operation: str = "ChatCompletions_Create",
    no_image_answer: str | None = None,
) -> Completion:
    """Checks, quota, the analyst's answer in the requested shape, and the reply's headers
    (``x-vizlab-emulated`` / ``x-vizlab-ignored`` from ``fields``). Used by both APIs."""
    config = state.config
    token_model = config.token_model_for(deployment)
    info = config.model_info(deployment)
    api = "responses" if operation == "Responses_Create" else "chat"
    max_images, refusal = image_limit(config.max_images, _DEFAULT_MAX_IMAGES, info, api)
    if len(chat.images) > max_images:
        raise bad_request(
            "BadRequest",
            refusal or f"Too many images in request: {len(chat.images)} images were provided, but the limit is "
            f"{max_images} images per chat request. Send fewer images or split the request.",
            "input" if refusal else "messages",
        )
    check_vision(chat, info)
    check_detail(chat, info)
    check_reasoning_params(chat.body, info)
    limits_name, limits = limits_for(token_model)
    check_max_tokens(chat, token_model, limits_name, limits)
    check_context_floor(chat, token_model, limits_name, limits)
    await run_in_threadpool(check_prompt, chat.texts)
    decoded = await run_in_threadpool(load_images, chat, config, origin, state.files) if chat.images else []
    messages = clean_messages(chat)
    documents = has_documents(messages)
    if documents:  # PDFs: file ids resolved, limits checked (vizlab.local.documents)
        messages = await run_in_threadpool(prepare_documents, messages, state.files)
    try:
        # Counted once: this count is both the context-window check and usage.prompt_tokens.
        counted = await run_in_threadpool(
            partial(state.count_prompt, rules=config.billing_rules, numbers=config.billing_numbers,
                    request=chat.body, api=api),
            messages, token_model,
        )
    except VizlabError as e:  # validation should have caught it; answer 400, not 500
        raise bad_request("BadRequest", f"The request could not be counted: {e}", "messages") from e
    check_refused(counted.refused)
    prompt_tokens = counted.tokens
    check_context(prompt_tokens, chat, token_model, limits_name, limits)

    cost = prompt_tokens + (chat.max_tokens or 0)
    admission = state.limiters[deployment].admit(cost)
    if not admission.allowed:
        seconds = max(1, math.ceil(admission.retry_after_s))
        which = "call" if admission.limit_kind == "requests" else "token"
        raise AzureError(
            429,
            "429",
            f"Requests to the {operation} Operation under Azure OpenAI API version {api_version} "
            # Azure's 429 text: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version
            # V have exceeded call|token rate limit ... Please retry after N seconds." (microsoft/action-python#12,
            # 2023-05-03; openai/openai-node#1108, 2024-09-30).
            f"have exceeded {which} rate limit of your current vizlab local backend quota for deployment "
            f"{deployment!r} (rpm={config.rpm}, tpm={config.tpm}, window {config.rate_window_s:g} s). "
            f"Please retry after {seconds} seconds."
            + (
                f" This request alone needs {cost} tokens (prompt + max_tokens), more than the tpm quota: "
                "lower max_tokens or send a smaller image."
                if config.tpm is not None and cost > config.tpm
                else ""
            ),
            type=None,
            headers=retry_headers(admission.retry_after_s),
        )
    if config.latency_s > 0:
        await state.sleep(config.latency_s)  # asyncio.sleep unless a test gave the state another

    text = await run_in_threadpool(answer_documents, state.analyst, messages, IDENTITY, token_model,
                                        config.ocr_page_cap) if documents else None
    if text is None:
        text = await run_in_threadpool(state.analyst.answer, messages, max_tokens=chat.max_tokens, decoded=decoded)
    if no_image_answer is not None and text == NO_IMAGE_ANSWER:
        text = no_image_answer  # the API's own words (the Responses API is not stateless)
    thinking = 0
    if info is not None and info.reasoning:  # reasoning is spent first, inside max_completion_tokens
        planned = reasoning_tokens(await run_in_threadpool(_deps.text_tokens, text, token_model), effort_of(chat.body, info))
        thinking = planned if chat.max_tokens is None else min(planned, chat.max_tokens)
    shaped = await run_in_threadpool(_shape, state, chat, text, messages, decoded, token_model, thinking)
    completion_tokens = await run_in_threadpool(_deps.text_tokens, shaped.billed_text, token_model)
    cached = await run_in_threadpool(_cached_tokens, state, deployment, info, messages, token_model, counted)
    headers: dict[str, str] = {}  # ids and x-ratelimit-* come from vizlab.local.http.gateway, on every response
    emulated = [*shaped.emulated, "reasoning_tokens"] if info is not None and info.reasoning else shaped.emulated
    if documents:  # the page-image rule of documents is vizlab's assumption (vizlab.document_facts)
        emulated = [*emulated, "document_tokens"]
    headers.update(report_headers(chat.body, fields, emulated))
    if shaped.ungrounded:  # fields holding placeholders: nothing the analyst found grounds them
        headers[UNGROUNDED_HEADER] = ", ".join(shaped.ungrounded)[:4000]
    return Completion(shaped, prompt_tokens, completion_tokens + thinking, headers, cached, thinking)


def check_vision(chat: ChatRequest, info: ModelInfo | None) -> None:
    """A model without vision (the registry's ``vision=False``, e.g. o3-mini) refuses image parts.

    The service's answer, quoted for gpt-3.5-turbo (vllm-project/vllm#11629, 2025-01-29):
    ``{"message": "Invalid content type. image_url is only supported by certain models.",
    "type": "invalid_request_error", "param": "messages.[0].content.[1].type", "code": null}``.
    An unknown model (a registered rule or a fine-tune) is let through: we cannot tell.
    """
    if not chat.images or info is None or info.vision:
        return
    first = chat.images[0].param
    # "messages[1].content[1].image_url.url" -> the service's "messages.[1].content.[1].type"
    parts = first.split(".")
    where = ".".join(p.replace("[", ".[") for p in parts[:2]) if len(parts) >= 2 else first
    raise AzureError(
        400,
        None,
        f"Invalid content type. image_url is only supported by certain models. The deployment's model "
        f"{info.name!r} has no vision; deploy a vision model (e.g. gpt-4o, gpt-4.1-mini) or send text only.",
        param=f"{where}.type",
    )


def check_detail(chat: ChatRequest, info: ModelInfo | None) -> None:
    """``detail: "original"`` only where the registry defines it (gpt-5.4, gpt-5.5, ...); elsewhere
    the service's 400 for an unsupported value. An unknown model is let through."""
    if info is None:
        return
    allowed = {d for rule in info.rules.values() for d in getattr(rule, "details", ())}
    for image in chat.images:
        if image.detail == "original" and "original" not in allowed:
            raise bad_request(
                "invalid_value",
                f"Invalid value: 'original'. Supported values are: 'auto', 'low' and 'high' (model {info.name} has no "
                "'original' detail; gpt-5.4 and later do).",
                image.param.rsplit(".", 1)[0] + ".detail",
            )


def usage_of(prompt_tokens: int, completion_tokens: int, *, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    """The usage object with both details objects, as the service sends them on every reply
    (``prompt_tokens_details`` {audio_tokens, cached_tokens}, ``completion_tokens_details``
    {accepted_prediction_tokens, audio_tokens, reasoning_tokens, rejected_prediction_tokens}: the
    fields of openai-python's CompletionUsage, 3.x as installed, and of Azure's replies since
    api-version 2024-10-21). Reasoning tokens are inside ``completion_tokens``."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": cached},
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0, "audio_tokens": 0, "reasoning_tokens": reasoning,
            "rejected_prediction_tokens": 0,
        },
    }  # fmt: skip


def _cached_tokens(
    state: BackendState, deployment: str, info: ModelInfo | None, messages: list[dict[str, Any]], model: str,
    counted: _deps.PromptCount,
) -> int:  # fmt: skip
    """cached_tokens by the family's documented caching rule (vizlab.local.replies.caching)."""
    rule = info.caching if info is not None else None
    if rule is None or not rule.supported or counted.tokens < rule.min_prefix:
        return 0
    units = _deps.prompt_units(messages, model, counted.image_tokens)
    marks = checkpoints(units, min_prefix=rule.min_prefix, step=rule.step)
    cached = state.cache.lookup_and_store(deployment, marks, ttl_s=state.config.prompt_cache_ttl_s)
    return min(cached, counted.tokens)


def _shape(
    state: BackendState, chat: ChatRequest, text: str, messages: list[dict[str, Any]], decoded: Any, token_model: str,
    reserved: int = 0,
) -> ShapedReply:
    """The answer in the shape the request asked for (vizlab.local.replies.shaping)."""
    options = chat.options
    # Findings (with OCR) only when the reply is filled from them: a plain answer reads text only
    # when its question needs it (vizlab.local.analyst).
    wanted = options.format_type != "text" or (options.tools is not None and options.tools.calls_wanted)
    # OCR when the shape may hold text: json_object lists it; a schema or tool naming text fields.
    schemas: list[Any] = [options.schema.schema] if options.schema is not None else []
    if options.tools is not None and options.tools.calls_wanted:
        schemas += [t.parameters for t in options.tools.tools]
    need_text = options.format_type == "json_object" or any(needs_text(x) for x in schemas)
    facts = state.analyst.findings(messages, decoded=decoded, need_text=need_text) if chat.images and wanted else []
    findings = Findings.from_facts(facts, text, prompt=_last_user_text(messages))
    return shape_reply(
        chat.options, text, findings, messages, token_model,
        lambda content: apply_limits(content, chat, token_model, reserved=reserved),
    )


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message (its text parts joined)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _unlisted_note(token_model: str, limits_name: str | None) -> str:
    """A note for models without published limits here (empty for the listed ones)."""
    if limits_name is not None:
        return ""
    return (
        f" (vizlab local backend: no limits are listed for token model {token_model[:60]!r}; the default "
        f"{DEFAULT_LIMITS.context} context / {DEFAULT_LIMITS.max_output} completion tokens apply.)"
    )


def check_max_tokens(chat: ChatRequest, token_model: str, limits_name: str | None, limits: ModelLimits) -> None:
    """400 ``invalid_value`` for max_tokens over the model's output limit (vizlab.local.requests.limits)."""
    if chat.max_tokens is None or chat.max_tokens <= limits.max_output:
        return
    name = chat.max_tokens_param
    raise bad_request(
        "invalid_value",
        # Quoted for gpt-4o (tailcallhq/forgecode#1185, 2025-07-22; code null in ChatGPTNextWeb/NextChat#3195,
        # 2023-11-08). Naming max_completion_tokens when that was sent is our choice (no quote found).
        f"{name} is too large: {chat.max_tokens}. This model supports at most {limits.max_output} completion "
        f"tokens, whereas you provided {chat.max_tokens}." + _unlisted_note(token_model, limits_name),
        name,
    )


def check_context_floor(chat: ChatRequest, token_model: str, limits_name: str | None, limits: ModelLimits) -> None:
    """400 ``context_length_exceeded`` before anything is decoded or counted, when the text alone
    cannot fit: a token is at most ``max_token_bytes`` bytes (128 in o200k_base and
    cl100k_base, read from the encodings) and a character at least one byte, so ``chars / 128``
    tokens is a floor. A prompt over the window by that floor is refused at once, without
    tokenising megabytes of text (issue 14, hole 2: 126 MB of text peaked at 3 GB and 18 s)."""
    window = min(limits.context, limits.max_input) if limits.max_input is not None else limits.context
    chars = sum(len(text) for text in chat.texts)
    per_token = _deps.max_token_bytes(token_model)
    if chars <= window * per_token:
        return
    floor = -(-chars // per_token)
    raise bad_request(
        "context_length_exceeded",
        f"This model's maximum context length is {window} tokens. However, your messages resulted in at least "
        f"{floor} tokens ({chars:,} characters of text, and no token is longer than {per_token} bytes). "
        "Please reduce the length of the messages." + _unlisted_note(token_model, limits_name),
        "messages",
    )


def check_context(
    prompt_tokens: int, chat: ChatRequest, token_model: str, limits_name: str | None, limits: ModelLimits
) -> None:
    """400 ``context_length_exceeded`` when the prompt (plus max_tokens) does not fit the window."""
    note = _unlisted_note(token_model, limits_name)
    if limits.max_input is not None and prompt_tokens > limits.max_input:
        raise bad_request(
            "context_length_exceeded",
            # gpt-5's input cap (272,000 of 400,000): "Input tokens exceed the configured limit of 272,000
            # tokens. Your messages resulted in 297,006 tokens." (community.openai.com/t/1344734, 2025-08);
            # its code was not quoted, so we send context_length_exceeded.
            f"Input tokens exceed the configured limit of {limits.max_input:,} tokens. Your messages resulted in "
            f"{prompt_tokens:,} tokens. Please reduce the length of the messages." + note,
            "messages",
        )
    if prompt_tokens > limits.context:
        raise bad_request(
            "context_length_exceeded",
            f"This model's maximum context length is {limits.context} tokens. However, your messages resulted in "
            f"{prompt_tokens} tokens. Please reduce the length of the messages." + note,
            "messages",
        )
    if chat.max_tokens is not None and prompt_tokens + chat.max_tokens > limits.context:
        raise bad_request(
            "context_length_exceeded",
            # "... However, you requested 8256 tokens (64 in the messages, 8192 in the completion). Please
            # reduce the length of the messages or completion." (NextChat#3195, 2023-11-08).
            f"This model's maximum context length is {limits.context} tokens. However, you requested "
            f"{prompt_tokens + chat.max_tokens} tokens ({prompt_tokens} in the messages, {chat.max_tokens} in the "
            "completion). Please reduce the length of the messages or completion." + note,
            "messages",
        )


def apply_limits(text: str, chat: ChatRequest, model: str, *, reserved: int = 0) -> tuple[str, str]:
    """Cut at the first stop sequence, then at max_tokens less ``reserved`` (reasoning tokens);
    return (text, finish_reason)."""
    for stop in chat.stop:
        at = text.find(stop)
        if at >= 0:
            text = text[:at]
    if chat.max_tokens is not None:
        cut = _deps.truncate_to_tokens(text, max(0, chat.max_tokens - reserved), model)
        if cut != text:
            return cut, "length"
    return text, "stop"
