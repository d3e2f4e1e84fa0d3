"""Total validation of a Chat Completions request body, by hand, with the service's messages.

Total means: any JSON value at all goes in, and either a :class:`ChatRequest` or an
:class:`~vizlab.local.http.errors.AzureError` (400) comes out, never another exception. Each error
names the parameter path the way OpenAI does (``messages[1].content[0].image_url.detail``).

Trade-off: we check what the service checks for the fields a vision chat uses, and accept the
other documented parameters after a type check (they do not change the analyst's answer).
Unknown top-level parameters are refused, as the service does, so a typo is caught offline.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from vizlab.local.http.errors import AzureError, bad_request
from vizlab.local.replies.shaping import ReplyOptions
from vizlab.local.requests.schemas import json_type, parse_response_format
from vizlab.local.requests.limits import MAX_ITEMS, check_array_length, check_metadata
from vizlab.local.replies.tools import parse_tools
from vizlab.local.requests.documents import chat_user_part

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
DETAILS = ("auto", "low", "high", "original")  # original: only where the registry defines it (check_detail)

# Documented Chat Completions parameters (OpenAI API reference and Azure OpenAI REST reference,
# checked 2025); accepted after a type check, most of them do not change the analyst's answer.
KNOWN_PARAMETERS = frozenset(
    {
        "messages", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
        "stream", "stream_options", "stop", "presence_penalty", "frequency_penalty", "logit_bias",
        "logprobs", "top_logprobs", "user", "seed", "response_format", "tools", "tool_choice",
        "functions", "function_call", "parallel_tool_calls", "data_sources", "dataSources",
        "enhancements", "store", "metadata", "reasoning_effort", "modalities", "prediction",
        "audio", "service_tier", "user_security_context", "prompt_cache_key",
        "safety_identifier", "verbosity", "web_search_options",
    }
)


class FileImageURL(str):
    """The ``image_url.url`` of a Responses ``input_image.file_id``: a reference to the uploaded
    file, resolved to a data URL only after the image-count check, once per file per request
    (:func:`vizlab.local.requests.images.load_images`). A JSON body cannot make one.

    >>> url = FileImageURL("file-abc")
    >>> url, url.file_id
    ('file:file-abc', 'file-abc')
    """

    file_id: str

    def __new__(cls, file_id: str) -> "FileImageURL":
        made = super().__new__(cls, f"file:{file_id}")
        made.file_id = file_id
        return made


@dataclass
class ImageRef:
    """One image part of a request: where it is, and what the client sent."""

    param: str  # e.g. "messages[1].content[1].image_url.url"
    url: str  # a data URL (2023 base64 parts are turned into one after sniffing) or http(s)
    detail: str
    legacy_base64: bool = False  # True for the 2023 preview {"image": "<base64>"} form


@dataclass
class ChatRequest:
    """A validated request: messages in the current content format, and the knobs we honour."""

    messages: list[dict[str, Any]]
    images: list[ImageRef] = field(default_factory=list)
    max_tokens: int | None = None
    max_tokens_param: str = "max_tokens"  # the name the client used: max_tokens or max_completion_tokens
    stream: bool = False
    include_usage: bool = False
    n: int = 1
    stop: list[str] = field(default_factory=list)
    model: str | None = None
    texts: list[str] = field(default_factory=list)  # all prompt text, for the content filter
    # The reply's shape: response_format, tools / tool_choice, logprobs (vizlab.local.replies.shaping).
    options: ReplyOptions = field(default_factory=ReplyOptions)
    body: dict[str, Any] = field(default_factory=dict)  # as sent, for the x-vizlab-ignored report


_TYPE_NAMES = {"null": "null", "boolean": "a boolean", "integer": "an integer", "number": "a decimal",
               "string": "a string", "array": "an array", "object": "an object"}  # fmt: skip


def _type_name(value: Any) -> str:
    """The service's words for a JSON value's type (``json_type``'s names with an article)."""
    if value is not None and not isinstance(value, (bool, int, float, str, list, dict)):
        return type(value).__name__
    return _TYPE_NAMES[json_type(value)]


def _invalid_type(param: str, expected: str, value: Any) -> AzureError:
    return bad_request(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param,
    )


def _invalid_value(param: str, value: Any, supported: tuple[str, ...]) -> AzureError:
    shown = repr(value) if isinstance(value, str) and len(value) <= 60 else _type_name(value)
    options = ", ".join(f"'{s}'" for s in supported)
    return bad_request(
        "invalid_value", f"Invalid value for '{param}': {shown}. Supported values are: {options}.", param
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    if name not in body or body[name] is None:
        return
    value = body[name]
    if not _is_number(value):
        raise _invalid_type(name, "a number", value)
    if value < low:
        raise bad_request(
            "decimal_below_min_value",
            f"Invalid '{name}': decimal below minimum value. Expected a value >= {low}, but got {value} instead.",
            name,
        )
    if value > high:
        raise bad_request(
            "decimal_above_max_value",
            f"Invalid '{name}': decimal above maximum value. Expected a value <= {high}, but got {value} instead.",
            name,
        )


def _check_int(body: dict[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if not _is_int(value):
        raise _invalid_type(name, "an integer", value)
    if value < low:
        raise bad_request(
            "integer_below_min_value",
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
            name,
        )
    if high is not None and value > high:
        raise bad_request(
            "integer_above_max_value",
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got {value} instead.",
            name,
        )
    return int(value)


def _check_type(body: dict[str, Any], name: str, kind: type, expected: str) -> None:
    if name in body and body[name] is not None:
        value = body[name]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise _invalid_type(name, expected, value)


_LEGACY_VERSION = re.compile(r"^2023-\d\d-\d\d-preview$")


def legacy_format_allowed(api_version: str | None) -> bool:
    """The 2023 preview content format (strings and {"image": base64}) is accepted on 2023-*-preview."""
    return bool(api_version and _LEGACY_VERSION.match(api_version))


def parse_chat_request(body: Any, *, api_version: str | None, require_model: bool) -> ChatRequest:
    """Validate a decoded JSON body; raise AzureError (400) on the first problem found.

    The order of the checks is the order of the errors: the body's type, unknown parameters,
    ``model``, the numbers and types of the knobs, the reply's shape, streaming, ``stop``, then
    ``messages`` (their count before any one of them is read).
    """
    model = _check_top_level(body, require_model)
    max_tokens = _check_int(body, "max_tokens", 1)
    max_completion = _check_int(body, "max_completion_tokens", 1)
    if max_tokens is not None and max_completion is not None:
        raise bad_request(
            "invalid_request_error",
            "Set either 'max_tokens' or 'max_completion_tokens', not both.",
            "max_tokens",
        )
    n = _check_knobs(body)
    reply_options = _reply_options(body)
    stream, include_usage = _stream_flags(body)
    stop = _parse_stop(body.get("stop"))
    raw_messages = _raw_messages(body)
    request = ChatRequest(
        messages=[],
        max_tokens=max_tokens if max_tokens is not None else max_completion,
        max_tokens_param="max_completion_tokens" if max_completion is not None else "max_tokens",
        stream=stream,
        include_usage=include_usage,
        n=n,
        stop=stop,
        model=model,
        options=reply_options,
        body=body,
    )
    legacy = legacy_format_allowed(api_version)
    for i, message in enumerate(raw_messages):
        request.messages.append(_parse_message(i, message, legacy, api_version, request))
    check_response_format(body.get("response_format"), request.texts)
    return request


def _check_top_level(body: Any, require_model: bool) -> str | None:
    """The body is an object of known parameters; returns its ``model`` (a string, or None)."""
    if not isinstance(body, dict):
        raise bad_request(
            "invalid_type",
            f"Invalid type for the request body: expected a JSON object, but got {_type_name(body)} instead.",
        )
    for key in body:
        if key not in KNOWN_PARAMETERS:
            shown = key if len(key) <= 60 else key[:57] + "..."
            raise bad_request("unknown_parameter", f"Unrecognized request argument supplied: {shown}", shown)
    model = body.get("model")
    if require_model and model is None:
        raise bad_request(
            "missing_required_parameter",
            "Missing required parameter: 'model' (the deployment name on /v1 routes).",
            "model",
        )
    if model is not None and not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    return model


def _check_knobs(body: dict[str, Any]) -> int:
    """Ranges and types of the sampling and bookkeeping parameters; returns ``n``."""
    # Ranges from OpenAI's Chat Completions API reference (read 2026): top_logprobs "between 0 and
    # 20" and temperature "between 0 and 2" (as mirrored in the SDK docs of several clients), top_p a
    # probability mass (0-1), seed a 64-bit integer. n's upper bound 128 is from Azure's inference
    # OpenAPI spec as remembered: NOT VERIFIED here (no stored copy found).
    n = _check_int(body, "n", 1, 128) or 1
    _check_int(body, "seed", -(2**63), 2**63 - 1)
    _check_int(body, "top_logprobs", 0, 20)
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "presence_penalty", -2, 2)
    _check_number(body, "frequency_penalty", -2, 2)
    _check_type(body, "user", str, "a string")
    _check_type(body, "logprobs", bool, "a boolean")
    _check_type(body, "parallel_tool_calls", bool, "a boolean")
    _check_type(body, "store", bool, "a boolean")
    _check_type(body, "logit_bias", dict, "an object")
    _check_type(body, "metadata", dict, "an object")
    check_metadata(body.get("metadata"))
    _check_type(body, "response_format", dict, "an object")
    _check_type(body, "tools", list, "an array")
    _check_type(body, "functions", list, "an array")
    return n


def _reply_options(body: dict[str, Any]) -> ReplyOptions:
    """The reply's shape: logprobs, ``response_format`` and tools, each checked."""
    reply_options = ReplyOptions(logprobs=bool(body.get("logprobs")), top_logprobs=body.get("top_logprobs") or 0)
    if reply_options.top_logprobs and not reply_options.logprobs:
        # OpenAI API reference, top_logprobs: "logprobs must be set to true if this parameter is used".
        raise bad_request(
            "invalid_value",
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
            "top_logprobs",
        )
    if body.get("response_format") is not None:
        reply_options.format_type, reply_options.schema = parse_response_format(body["response_format"])
    reply_options.tools = parse_tools(body.get("tools"), body.get("tool_choice"))
    return reply_options


def _stream_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    """``(stream, include_usage)`` from ``stream`` and ``stream_options``."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    if options is None:
        return bool(stream), False
    if not isinstance(options, dict):
        raise _invalid_type("stream_options", "an object", options)
    if not stream:
        raise bad_request(
            "invalid_value",
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    usage_flag = options.get("include_usage")
    if usage_flag is not None and not isinstance(usage_flag, bool):
        raise _invalid_type("stream_options.include_usage", "a boolean", usage_flag)
    return bool(stream), bool(usage_flag)


def _raw_messages(body: dict[str, Any]) -> list[Any]:
    """``messages``: present, an array, not empty, not over the item limit (before any is read)."""
    if "messages" not in body or body["messages"] is None:
        raise bad_request("missing_required_parameter", "Missing required parameter: 'messages'.", "messages")
    raw_messages = body["messages"]
    if not isinstance(raw_messages, list):
        raise _invalid_type("messages", "an array", raw_messages)
    if not raw_messages:
        raise bad_request(
            "empty_array",
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
        )
    check_array_length(raw_messages, MAX_ITEMS, "messages")  # before any message is validated or counted
    return raw_messages


# --- the json_object rule -------------------------------------------------------------------
# The structure of response_format and tools is checked where they are parsed
# (vizlab.local.requests.schemas, vizlab.local.replies.tools). One refusal needs the messages: json_object with
# no "json" anywhere in them is a 400 on the service with this message, param "messages" and code
# null (the Chat text as quoted in public client docs and code, stored copies read 2026-12; the
# Responses API's twin, "Response input messages must contain the word 'json' in some form to use
# 'text.format' of type 'json_object'.", param "text.format", code null, seen live on Azure).


def check_response_format(response_format: Any, texts: list[str]) -> None:
    """400 for ``json_object`` when no message text contains "json" (any case)."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_object":
        return
    if not any("json" in text.lower() for text in texts):
        raise AzureError(
            400,
            None,
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            param="messages",
        )


def _parse_stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        if len(stop) > 4:
            raise bad_request(
                "array_above_max_length",
                "Invalid 'stop': array too long. Expected an array with maximum length 4, "
                f"but got an array with length {len(stop)} instead.",
                "stop",
            )
        for j, item in enumerate(stop):
            if not isinstance(item, str):
                raise _invalid_type(f"stop[{j}]", "a string", item)
        return [s for s in stop if s]
    raise _invalid_type("stop", "a string or an array of strings", stop)


def _parse_message(
    i: int, message: Any, legacy: bool, api_version: str | None, request: ChatRequest
) -> dict[str, Any]:
    path = f"messages[{i}]"
    if not isinstance(message, dict):
        raise _invalid_type(path, "an object", message)
    if "role" not in message:
        raise bad_request("missing_required_parameter", f"Missing required parameter: '{path}.role'.", f"{path}.role")
    role = message["role"]
    if not isinstance(role, str):
        raise _invalid_type(f"{path}.role", "a string", role)
    if role not in ROLES:
        raise _invalid_value(f"{path}.role", role, ROLES)
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise _invalid_type(f"{path}.name", "a string", name)
    out: dict[str, Any] = {"role": role}
    if name is not None:
        out["name"] = name

    if role == "tool":
        tool_call_id = message.get("tool_call_id")
        if not isinstance(tool_call_id, str):
            if tool_call_id is None:
                raise bad_request(
                    "missing_required_parameter",
                    f"Missing required parameter: '{path}.tool_call_id'.",
                    f"{path}.tool_call_id",
                )
            raise _invalid_type(f"{path}.tool_call_id", "a string", tool_call_id)
        out["tool_call_id"] = tool_call_id
    if role == "assistant" and message.get("tool_calls") is not None:
        if not isinstance(message["tool_calls"], list):
            raise _invalid_type(f"{path}.tool_calls", "an array", message["tool_calls"])
        out["tool_calls"] = message["tool_calls"]

    content_path = f"{path}.content"
    if "content" not in message or message["content"] is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            out["content"] = None
            return out
        raise bad_request(
            "missing_required_parameter", f"Missing required parameter: '{content_path}'.", content_path
        )
    content = message["content"]
    if isinstance(content, str):
        request.texts.append(content)
        out["content"] = content
        return out
    if not isinstance(content, list):
        raise _invalid_type(content_path, "one of a string or array of objects", content)
    if not content and role == "user":
        raise bad_request(
            "empty_array",
            f"Invalid '{content_path}': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            content_path,
        )
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        parts.append(_parse_part(f"{content_path}[{j}]", role, part, legacy, api_version, request))
    out["content"] = parts
    return out


_CURRENT_FORMAT_HINT = (
    'Use the current content format: {"type": "text", "text": "..."} and '
    '{"type": "image_url", "image_url": {"url": "data:image/png;base64,...", "detail": "auto"}}.'
)


def _parse_part(
    path: str, role: str, part: Any, legacy: bool, api_version: str | None, request: ChatRequest
) -> dict[str, Any]:
    if isinstance(part, str) or (isinstance(part, dict) and "image" in part and "type" not in part):
        return _parse_legacy_part(path, role, part, legacy, api_version, request)
    if not isinstance(part, dict):
        raise _invalid_type(path, "an object", part)
    if "type" not in part:
        raise bad_request("missing_required_parameter", f"Missing required parameter: '{path}.type'.", f"{path}.type")
    kind = part["type"]
    if not isinstance(kind, str):
        raise _invalid_type(f"{path}.type", "a string", kind)
    allowed: tuple[str, ...] = ("text", "image_url", "file") if role == "user" else ("text",)
    if role == "assistant":
        allowed = ("text", "refusal")
    document = chat_user_part(path, role, kind, part, allowed)  # a file part, or the service's list of types
    if document is not None:
        return document
    if kind not in allowed:
        if kind == "image_url":
            raise bad_request(
                "invalid_value",
                f"Invalid value for '{path}.type': image_url parts are only allowed in messages with role 'user'.",
                f"{path}.type",
            )
        raise _invalid_value(f"{path}.type", kind, allowed)

    if kind in ("text", "refusal"):
        if kind not in part:
            raise bad_request(
                "missing_required_parameter", f"Missing required parameter: '{path}.{kind}'.", f"{path}.{kind}"
            )
        text = part[kind]
        if not isinstance(text, str):
            raise _invalid_type(f"{path}.{kind}", "a string", text)
        request.texts.append(text)
        return {"type": kind, kind: text}

    return _parse_image_url_part(path, part, request)


def _parse_legacy_part(
    path: str, role: str, part: Any, legacy: bool, api_version: str | None, request: ChatRequest
) -> dict[str, Any]:
    """A 2023 preview part: a bare string, or ``{"image": <base64>}`` (refused on other versions)."""
    if not legacy:
        raise bad_request(
            "invalid_type" if isinstance(part, str) else "invalid_value",
            f"Invalid content part '{path}': bare strings and {{\"image\": <base64>}} objects are the "
            f"2023 preview format, accepted only with api-version 2023-*-preview "
            f"(this request used {api_version or 'no api-version'}). {_CURRENT_FORMAT_HINT}",
            path,
        )
    if isinstance(part, str):
        request.texts.append(part)
        return {"type": "text", "text": part}
    assert isinstance(part, dict)
    image = part["image"]
    if role != "user":
        raise bad_request(
            "invalid_value", f"Image content parts are only allowed in user messages ('{path}').", path
        )
    if not isinstance(image, str):
        raise _invalid_type(f"{path}.image", "a base64 string", image)
    extra = set(part) - {"image", "detail"}
    if extra:
        raise bad_request("unknown_parameter", f"Unrecognized key in '{path}': {sorted(extra)[0]!r}.", path)
    detail = _parse_detail(f"{path}.detail", part.get("detail"))
    ref = ImageRef(param=f"{path}.image", url=image, detail=detail, legacy_base64=True)
    request.images.append(ref)
    # Placeholder URL; the server swaps in a data URL once it has sniffed the bytes.
    return {"type": "image_url", "image_url": {"url": image, "detail": detail}, "_ref": len(request.images) - 1}


def _parse_image_url_part(path: str, part: dict[str, Any], request: ChatRequest) -> dict[str, Any]:
    """An ``image_url`` part: its URL and detail checked, recorded as an :class:`ImageRef`."""
    if "image_url" not in part:
        raise bad_request(
            "missing_required_parameter", f"Missing required parameter: '{path}.image_url'.", f"{path}.image_url"
        )
    image_url = part["image_url"]
    if not isinstance(image_url, dict):
        raise _invalid_type(f"{path}.image_url", "an object", image_url)
    if "url" not in image_url:
        raise bad_request(
            "missing_required_parameter",
            f"Missing required parameter: '{path}.image_url.url'.",
            f"{path}.image_url.url",
        )
    url = image_url["url"]
    if not isinstance(url, str):
        raise _invalid_type(f"{path}.image_url.url", "a string", url)
    detail = _parse_detail(f"{path}.image_url.detail", image_url.get("detail"))
    request.images.append(ImageRef(param=f"{path}.image_url.url", url=url, detail=detail))
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}, "_ref": len(request.images) - 1}


def _parse_detail(param: str, detail: Any) -> str:
    if detail is None:
        return "auto"
    if not isinstance(detail, str):
        raise _invalid_type(param, "a string", detail)
    if detail not in DETAILS:
        raise _invalid_value(param, detail, DETAILS)
    return detail
