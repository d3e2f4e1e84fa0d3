"""The Responses API of the built-in backend: request parsing, stored responses, objects, events.

A request becomes Chat-format messages, is answered by the Chat Completions pipeline and written
as a ``response`` object. Stored responses are real: ``previous_response_id`` prepends their
context and bills it again as input, as the service does; ``instructions`` are not carried over.
Streaming follows the service's event sequence. Routes: :mod:`vizlab.local.routes.responses`.
Details and sources: docs/internals.md#local
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from vizlab.local.http.errors import AzureError, bad_request, wrong_type
from vizlab.local.replies.shaping import ReplyOptions, ShapedReply
from vizlab.local.requests.schemas import parse_response_format
from vizlab.local.replies.tools import parse_tools
from vizlab.local.requests.documents import parse_responses_file_part, unsupported_part_type
from vizlab.local.requests.fields import RESPONSES_FIELDS
from vizlab.models.documents import RESPONSES_PART_TYPES
from vizlab.local.requests.limits import MAX_ITEMS, check_array_length, check_metadata
from vizlab.local.requests.validation import FileImageURL

__all__ = [
    "ResponsesRequest",
    "ResponseStore",
    "parse_responses_request",
    "response_object",
    "stream_events",
    "usage_object",
    "NO_IMAGE_ANSWER",
    "StoredResponse",
    "STORE_IMAGE_BYTES",
    "STORE_LIMIT",
    "context_after",
    "new_response_id",
    "not_found",
    "output_items",
]

DETAILS = ("auto", "low", "high", "original")  # original: only where the registry defines it (check_detail)
NO_IMAGE_ANSWER = (
    "I don't see an image in this conversation. Send the image in the input, or continue a stored "
    "response that has it with previous_response_id."
)
STORE_LIMIT = 1000  # stored responses kept per backend (oldest dropped first)
# Bytes of inline images (data URLs) the stored responses may hold together (oldest dropped first):
# vizlab's choice, about ten requests' worth of large images (a 14 MB image is a 19 MB data URL),
# so a long session cannot grow the backend by the 1,000 responses' images (up to 19 GB).
STORE_IMAGE_BYTES = 256 * 1024 * 1024


@dataclass
class ResponsesRequest:
    """A validated Responses request, with its input as Chat-format messages."""

    model: str
    messages: list[dict[str, Any]]  # context (previous turns) + instructions + this input
    new_items: list[dict[str, Any]]  # this request's input items, as the service lists them
    turn_messages: list[dict[str, Any]]  # this input as Chat messages (stored for follow-ups)
    options: ReplyOptions
    max_output_tokens: int | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    image_params: list[str] = field(default_factory=list)  # "input[0].content[1]" per image, in order
    text_format: dict[str, Any] = field(default_factory=lambda: {"type": "text"})
    tools_raw: list[Any] = field(default_factory=list)
    tool_choice_raw: Any = "auto"
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    context_tokens_hint: int = 0


@dataclass
class StoredResponse:
    body: dict[str, Any]
    context: list[dict[str, Any]]  # Chat messages of every turn up to and including this answer
    input_items: list[dict[str, Any]]
    images: tuple[str, ...] = ()  # the distinct inline image data URLs it holds (set by the store)


class ResponseStore:
    """Stored responses of one backend, in memory, bounded, thread-safe.

    Bounded twice: at most ``limit`` responses, and at most ``image_bytes`` bytes of inline images
    (data URLs) across them; past either, the oldest responses are dropped whole (a follow-up to
    one gets the service's 400 ``previous_response_not_found``). The newest is always kept. An
    ``input_image.file_id`` is stored as a reference to the file, not a copy, and costs nothing
    here; equal data URLs are stored once (a chain of follow-ups shares its images).
    """

    def __init__(self, limit: int = STORE_LIMIT, image_bytes: int = STORE_IMAGE_BYTES) -> None:
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit
        self._image_budget = image_bytes
        self._blobs: dict[str, str] = {}  # data URL -> the one copy the store keeps
        self._holders: dict[str, int] = {}  # data URL -> how many stored responses hold it
        self.image_bytes = 0  # bytes of distinct inline images held now

    def put(self, stored: StoredResponse) -> None:
        with self._lock:
            stored.images = self._share_images(stored)
            self._items[stored.body["id"]] = stored
            while len(self._items) > 1 and (len(self._items) > self._limit or self.image_bytes > self._image_budget):
                self._release(self._items.popitem(last=False)[1])

    def get(self, response_id: str, param: str = "response_id") -> StoredResponse:
        with self._lock:
            stored = self._items.get(response_id)
        if stored is None:
            raise not_found(response_id, param)
        return stored

    def delete(self, response_id: str) -> None:
        with self._lock:
            stored = self._items.pop(response_id, None)
            if stored is None:
                raise not_found(response_id, "response_id")
            self._release(stored)

    def _share_images(self, stored: StoredResponse) -> tuple[str, ...]:
        """Point every inline image of ``stored`` at the store's one copy; count the new ones."""
        held: dict[str, None] = {}
        for part in _image_holders(stored.context, stored.input_items):
            url = part["url"] if "url" in part else part["image_url"]
            if isinstance(url, FileImageURL) or not isinstance(url, str) or not url.startswith("data:"):
                continue
            shared = self._blobs.setdefault(url, url)
            if shared not in held and shared not in self._holders:
                self.image_bytes += len(shared)
            part["url" if "url" in part else "image_url"] = shared
            held[shared] = None
        for url in held:
            self._holders[url] = self._holders.get(url, 0) + 1
        return tuple(held)

    def _release(self, stored: StoredResponse) -> None:
        for url in stored.images:
            self._holders[url] -= 1
            if not self._holders[url]:
                del self._holders[url], self._blobs[url]
                self.image_bytes -= len(url)


def _image_holders(context: list[dict[str, Any]], items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The dicts that hold an image URL: Chat ``image_url`` objects and listed ``input_image`` parts."""
    for message in context + items:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image_url" and isinstance(part.get("image_url"), dict):
                yield part["image_url"]
            elif part.get("type") == "input_image" and part.get("image_url") is not None:
                yield part


def not_found(response_id: str, param: str) -> AzureError:
    shown = response_id if len(response_id) <= 80 else response_id[:77] + "..."
    if param == "previous_response_id":
        # OpenAI: 400 "Previous response with id 'resp_...' not found." code previous_response_not_found
        # (as quoted in openai/openai-agents-python issues, 2025).
        return bad_request(
            "previous_response_not_found",
            f"Previous response with id '{shown}' not found. (vizlab local backend: responses are kept in memory "
            "while the backend runs, only when created with store true, and the oldest are dropped past "
            f"{STORE_LIMIT:,} responses or {STORE_IMAGE_BYTES // 2**20} MiB of stored images.)",
            "previous_response_id",
        )
    return AzureError(
        404,
        "not_found",
        f"Response with id '{shown}' not found.",
        param=param,
        type="invalid_request_error",
    )


def parse_responses_request(
    body: Any,
    store: ResponseStore,
    read_file: Callable[[str], tuple[bytes, str]],
) -> ResponsesRequest:
    """Validate a Responses body; raise the service's 400 on the first problem.

    ``read_file(file_id)`` returns ``(bytes, filename)`` of an uploaded file (404 if unknown).
    """
    model, max_output = _check_top_level(body)
    options, text_format = _reply_shape(body)
    request = ResponsesRequest(
        model=model,
        messages=[],
        new_items=[],
        turn_messages=[],
        options=options,
        max_output_tokens=max_output,
        instructions=body.get("instructions"),
        previous_response_id=body.get("previous_response_id"),
        store=body.get("store") is not False,
        stream=bool(body.get("stream")),
        metadata=dict(body.get("metadata") or {}),
        text_format=text_format,
        tools_raw=list(body.get("tools") or []),
        tool_choice_raw=body.get("tool_choice") if body.get("tool_choice") is not None else "auto",
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
    )
    context: list[dict[str, Any]] = []
    if request.previous_response_id is not None:
        context = list(store.get(request.previous_response_id, "previous_response_id").context)
    if "input" not in body or body["input"] is None:
        raise bad_request("missing_required_parameter", "Missing required parameter: 'input'.", "input")
    _parse_input(body["input"], request, read_file)
    # instructions apply to this turn only (Responses API reference, instructions: "the instructions
    # from a previous response will not be carried over", checked 2026); stored turns are billed
    # again as input (OpenAI "Conversation state" guide, checked 2026).
    system = [{"role": "system", "content": request.instructions}] if request.instructions else []
    request.messages = system + context + request.turn_messages
    if options.format_type == "json_object" and not any("json" in t.lower() for t in _texts(request.messages)):
        # The service's words and param for this (seen on Azure; see vizlab.local.requests.validation's Chat twin).
        raise AzureError(
            400,
            None,  # code null on the wire
            "Response input messages must contain the word 'json' in some form to use 'text.format' of type "
            "'json_object'.",
            param="text.format",
        )
    return request


def _check_top_level(body: Any) -> tuple[str, int | None]:
    """The body is an object of known fields with the right types; returns ``(model, max_output_tokens)``."""
    if not isinstance(body, dict):
        raise bad_request("invalid_type", "Invalid type for the request body: expected a JSON object.")
    for key in body:
        if key not in RESPONSES_FIELDS:
            shown = key if len(key) <= 60 else key[:57] + "..."
            raise bad_request("unknown_parameter", f"Unknown parameter: '{shown}'.", shown)
    model = body.get("model")
    if model is None:
        raise bad_request("missing_required_parameter", "Missing required parameter: 'model'.", "model")
    if not isinstance(model, str):
        raise wrong_type("model", "a string")
    for name, want, expected in (
        ("instructions", str, "a string"),
        ("previous_response_id", str, "a string"),
        ("store", bool, "a boolean"),
        ("stream", bool, "a boolean"),
        ("parallel_tool_calls", bool, "a boolean"),
        ("metadata", dict, "an object"),
        ("text", dict, "an object"),
        ("user", str, "a string"),
    ):
        value = body.get(name)
        if value is not None and (not isinstance(value, want) or (want is not bool and isinstance(value, bool))):
            raise wrong_type(name, expected)
    check_metadata(body.get("metadata"))
    max_output = body.get("max_output_tokens")
    if max_output is not None:
        if not isinstance(max_output, int) or isinstance(max_output, bool):
            raise wrong_type("max_output_tokens", "an integer")
        # Responses API reference: max_output_tokens minimum 16 (the service's 400 says "integer below
        # minimum value. Expected a value >= 16"), checked 2026.
        if max_output < 16:
            raise bad_request(
                "integer_below_min_value",
                f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got "
                f"{max_output} instead.",
                "max_output_tokens",
            )
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise wrong_type(name, "a number")
    return model, max_output


def _reply_shape(body: dict[str, Any]) -> tuple[ReplyOptions, dict[str, Any]]:
    """The reply's shape from ``text.format`` and ``tools``, and the format as the response echoes it."""
    options = ReplyOptions()
    text = body.get("text") or {}
    text_format: dict[str, Any] = {"type": "text"}
    if "format" in text and text["format"] is not None:
        kind, schema = parse_response_format(
            text["format"], param="text.format", schema_param="text.format.schema", nested=False
        )
        options.format_type, options.schema = kind, schema
        text_format = dict(text["format"])
        if schema is not None:
            text_format = {
                "type": "json_schema",
                "name": schema.name,
                "schema": schema.schema,
                "strict": schema.strict,
                "description": text["format"].get("description"),
            }
    options.tools = parse_tools(body.get("tools"), body.get("tool_choice"), flat=True)
    return options, text_format


def _texts(messages: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return out


def _parse_input(raw: Any, request: ResponsesRequest, read_file: Callable[[str], tuple[bytes, str]]) -> None:
    if isinstance(raw, str):
        request.turn_messages.append({"role": "user", "content": raw})
        request.new_items.append(_item_message("user", [{"type": "input_text", "text": raw}]))
        return
    if not isinstance(raw, list):
        raise wrong_type("input", "a string or an array of input items")
    if not raw:
        raise bad_request("empty_array", "Invalid 'input': empty array. Expected an array with minimum length 1.", "input")
    check_array_length(raw, MAX_ITEMS, "input")
    calls: dict[str, str] = {}
    for i, item in enumerate(raw):
        path = f"input[{i}]"
        if not isinstance(item, dict):
            raise wrong_type(path, "an object")
        kind = item.get("type", "message")
        if kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise bad_request("missing_required_parameter", f"Missing required parameter: '{path}.{key}'.", f"{path}.{key}")
            calls[item["call_id"]] = item["name"]
            request.turn_messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": item["call_id"], "type": "function",
                         "function": {"name": item["name"], "arguments": item["arguments"]}}
                    ],
                }
            )
            request.new_items.append({"id": item.get("id") or "fc_" + uuid.uuid4().hex[:24], "type": "function_call",
                                      "call_id": item["call_id"], "name": item["name"],
                                      "arguments": item["arguments"], "status": "completed"})
            continue
        if kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str):
                raise bad_request("missing_required_parameter", f"Missing required parameter: '{path}.call_id'.", f"{path}.call_id")
            if not isinstance(output, str):
                raise wrong_type(f"{path}.output", "a string")
            request.turn_messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
            request.new_items.append({"id": "fco_" + uuid.uuid4().hex[:24], "type": "function_call_output",
                                      "call_id": call_id, "output": output, "status": "completed"})
            continue
        if kind != "message":
            raise bad_request(
                "invalid_value",
                f"Invalid value for '{path}.type': {str(kind)[:40]!r}. Supported here: 'message', 'function_call', "
                "'function_call_output'.",
                f"{path}.type",
            )
        role = item.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise bad_request(
                "invalid_value",
                f"Invalid value for '{path}.role': {str(role)[:40]!r}. Supported values are: 'user', 'system', "
                "'developer' and 'assistant'.",
                f"{path}.role",
            )
        content = item.get("content")
        if isinstance(content, str):
            request.turn_messages.append({"role": role, "content": content})
            part_type = "output_text" if role == "assistant" else "input_text"
            request.new_items.append(_item_message(role, [{"type": part_type, "text": content}]))
            continue
        if not isinstance(content, list):
            raise wrong_type(f"{path}.content", "a string or an array of content parts")
        chat_parts: list[dict[str, Any]] = []
        listed: list[dict[str, Any]] = []
        for j, part in enumerate(content):
            chat_part, listed_part = _parse_part(part, f"{path}.content[{j}]", role, request, read_file)
            chat_parts.append(chat_part)
            listed.append(listed_part)
        if role == "assistant":
            request.turn_messages.append({"role": role, "content": " ".join(p.get("text", "") for p in chat_parts)})
        else:
            request.turn_messages.append({"role": role, "content": chat_parts})
        request.new_items.append(_item_message(role, listed))


def _parse_part(
    part: Any, path: str, role: str, request: ResponsesRequest, read_file: Callable[[str], tuple[bytes, str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(part, dict):
        raise wrong_type(path, "an object")
    kind = part.get("type")
    allowed = ("output_text", "refusal") if role == "assistant" else ("input_text", "input_image", "input_file")
    if kind not in allowed and role != "assistant":  # the service's own list (vizlab.document_facts)
        raise unsupported_part_type(path, kind, RESPONSES_PART_TYPES, allowed)
    if kind == "input_file":  # a document (PDF): vizlab.local.documents
        return parse_responses_file_part(path, part)
    if kind not in allowed:
        options = ", ".join(f"'{a}'" for a in allowed)
        raise bad_request(
            "invalid_value",
            f"Invalid value for '{path}.type': {str(kind)[:40]!r}. Supported values for role '{role}' are: {options}.",
            f"{path}.type",
        )
    if kind in ("input_text", "output_text", "refusal"):
        key = "refusal" if kind == "refusal" else "text"
        text = part.get(key)
        if not isinstance(text, str):
            raise bad_request("missing_required_parameter", f"Missing required parameter: '{path}.{key}'.", f"{path}.{key}")
        listed = {"type": kind, key: text}
        if kind == "output_text":
            listed["annotations"] = []
        return {"type": "text", "text": text}, listed
    detail = part.get("detail", "auto")
    if detail is None:
        detail = "auto"
    if detail not in DETAILS:
        raise bad_request(
            "invalid_value",
            f"Invalid value for '{path}.detail': {str(detail)[:40]!r}. Supported values are: 'auto', 'low' and 'high'.",
            f"{path}.detail",
        )
    url, file_id = part.get("image_url"), part.get("file_id")
    if (url is None) == (file_id is None):
        raise bad_request(
            "invalid_value",
            f"Invalid '{path}': give exactly one of 'image_url' (a data URL) or 'file_id' (from the files route).",
            path,
        )
    if file_id is not None:
        if not isinstance(file_id, str):
            raise wrong_type(f"{path}.file_id", "a string")
        read_file(file_id)  # 404 now for an unknown file; its bytes are read after the image-count check
        url_for_chat: str = FileImageURL(file_id)
        listed = {"type": "input_image", "detail": detail, "file_id": file_id, "image_url": None}
    else:
        if not isinstance(url, str):
            raise wrong_type(f"{path}.image_url", "a string")
        url_for_chat = url
        listed = {"type": "input_image", "detail": detail, "file_id": None, "image_url": url}
    request.image_params.append(f"{path}.{'file_id' if file_id is not None else 'image_url'}")
    return {"type": "image_url", "image_url": {"url": url_for_chat, "detail": detail}}, listed


def _item_message(role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "msg_" + uuid.uuid4().hex, "type": "message", "role": role, "content": content, "status": "completed"}


# --- objects ----------------------------------------------------------------------------------


def new_response_id() -> str:
    return "resp_" + uuid.uuid4().hex + uuid.uuid4().hex[:16]


def usage_object(input_tokens: int, output_tokens: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    """Usage in the Responses shape (``input_tokens_details.cached_tokens`` and
    ``output_tokens_details.reasoning_tokens`` always present)."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def output_items(shaped: ShapedReply, status: str) -> list[dict[str, Any]]:
    """The ``output`` list: one message (output_text or refusal) or one function_call per call."""
    if shaped.tool_calls:
        return [
            {
                "id": "fc_" + uuid.uuid4().hex[:24],
                "type": "function_call",
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
                "status": "completed",
            }
            for call in shaped.tool_calls
        ]
    if shaped.refusal is not None:
        part: dict[str, Any] = {"type": "refusal", "refusal": shaped.refusal}
    else:
        part = {"type": "output_text", "text": shaped.content or "", "annotations": [], "logprobs": []}
    return [
        {
            "id": "msg_" + uuid.uuid4().hex,
            "type": "message",
            "role": "assistant",
            "status": "completed" if status == "completed" else "incomplete",
            "content": [part],
        }
    ]


def response_object(
    request: ResponsesRequest,
    *,
    response_id: str,
    created_at: int,
    model_name: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """A ``response`` object as the service returns it."""
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status in ("completed", "incomplete") else None,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "metadata": request.metadata,
        "model": model_name,
        "output": output,
        "parallel_tool_calls": request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": request.store,
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": {"format": request.text_format},
        "tool_choice": request.tool_choice_raw,
        "tools": request.tools_raw,
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
    }


def context_after(request: ResponsesRequest, shaped: ShapedReply) -> list[dict[str, Any]]:
    """The Chat messages a follow-up by previous_response_id continues from: the previous
    context, this turn's input (not its instructions) and this answer."""
    previous = [m for m in request.messages if not (m.get("role") == "system" and m.get("content") == request.instructions and request.instructions)]
    answer: dict[str, Any] = {"role": "assistant", "content": shaped.content or shaped.refusal or ""}
    if shaped.tool_calls:
        answer = {"role": "assistant", "content": None, "tool_calls": shaped.tool_calls}
    return previous + [answer]


def stream_events(
    final: dict[str, Any], shaped: ShapedReply, pieces: Callable[[str], list[str]]
) -> Iterator[dict[str, Any]]:
    """The event sequence of one response, ``final`` being the finished object."""
    seq = iter(range(1_000_000))
    start = {**final, "status": "in_progress", "output": [], "usage": None, "completed_at": None,
             "incomplete_details": None}
    yield {"type": "response.created", "sequence_number": next(seq), "response": start}
    yield {"type": "response.in_progress", "sequence_number": next(seq), "response": start}
    for index, item in enumerate(final["output"]):
        if item["type"] == "function_call":
            yield {"type": "response.output_item.added", "sequence_number": next(seq), "output_index": index,
                   "item": {**item, "arguments": "", "status": "in_progress"}}
            for piece in pieces(item["arguments"]):
                yield {"type": "response.function_call_arguments.delta", "sequence_number": next(seq),
                       "item_id": item["id"], "output_index": index, "delta": piece}
            yield {"type": "response.function_call_arguments.done", "sequence_number": next(seq),
                   "item_id": item["id"], "output_index": index, "arguments": item["arguments"], "name": item["name"]}
            yield {"type": "response.output_item.done", "sequence_number": next(seq), "output_index": index, "item": item}
            continue
        yield {"type": "response.output_item.added", "sequence_number": next(seq), "output_index": index,
               "item": {**item, "status": "in_progress", "content": []}}
        for c_index, part in enumerate(item["content"]):
            empty = {"type": "refusal", "refusal": ""} if part["type"] == "refusal" else \
                {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield {"type": "response.content_part.added", "sequence_number": next(seq), "item_id": item["id"],
                   "output_index": index, "content_index": c_index, "part": empty}
            if part["type"] == "refusal":
                for piece in pieces(part["refusal"]):
                    yield {"type": "response.refusal.delta", "sequence_number": next(seq), "item_id": item["id"],
                           "output_index": index, "content_index": c_index, "delta": piece}
                yield {"type": "response.refusal.done", "sequence_number": next(seq), "item_id": item["id"],
                       "output_index": index, "content_index": c_index, "refusal": part["refusal"]}
            else:
                for piece in pieces(part["text"]):
                    yield {"type": "response.output_text.delta", "sequence_number": next(seq), "item_id": item["id"],
                           "output_index": index, "content_index": c_index, "delta": piece, "logprobs": []}
                yield {"type": "response.output_text.done", "sequence_number": next(seq), "item_id": item["id"],
                       "output_index": index, "content_index": c_index, "text": part["text"], "logprobs": []}
            yield {"type": "response.content_part.done", "sequence_number": next(seq), "item_id": item["id"],
                   "output_index": index, "content_index": c_index, "part": part}
        yield {"type": "response.output_item.done", "sequence_number": next(seq), "output_index": index, "item": item}
    done = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    yield {"type": done, "sequence_number": next(seq), "response": final}
