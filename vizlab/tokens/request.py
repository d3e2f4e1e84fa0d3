"""Whole-request estimates, offline, for Chat Completions and the Responses API.

Overhead follows the OpenAI cookbook ("How to count tokens with tiktoken", 2024-2025): 3 tokens per
message, 1 per name, 3 priming the reply. Tools, schemas, tool calls and results follow
:mod:`vizlab.tokens.tools`' rule with constants measured on recorded exchanges (each cited below).
An https image of unknown size counts at its bound and is flagged; caching never makes the
estimate low. The result shares its shape with reported usage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from vizlab.errors import (
    ConversationError,
    DataURLError,
    UnknownDetailError,
    UnknownModelError,
    URLSchemeError,
)
from vizlab.models.lifecycles import INSTRUCTIONS_DISPUTE
from vizlab.models.registry import lookup
from vizlab.models.types import NEWEST, CachingRule, Cost
from vizlab.tokens import documents as document_tokens
from vizlab.tokens.documents import DocumentTokenBreakdown
from vizlab.tokens.image import (
    ImageTokenBreakdown,
    check_policy,
    check_size,
    explain_image_tokens,
    image_token_bound,
)
from vizlab.tokens.text import count_texts, encoding_name_for
from vizlab.tokens.tools import BUILTIN_TOOL_TYPES, function_of, render_functions, render_schema
from vizlab.tokens.usage import Usage, field_of

__all__ = ['RequestEstimate', 'estimate_request', 'TOKENS_PER_MESSAGE', 'TOKENS_PER_NAME', 'REPLY_PRIMING_TOKENS',
           'TOKENS_PER_TOOL_CALL', 'TOOLS_OVERHEAD', 'TOOLS_WITH_SYSTEM', 'TOOL_CHOICE_NAMED', 'TOOL_CHOICE_KEYWORD',
           'SCHEMA_OVERHEAD', 'EMPTY_INSTRUCTIONS_TOKENS', 'ENCRYPTED_CHARS_PER_TOKEN', 'MESSAGE_TOKENS', 'PRO_MODE_TOKENS',
           'ADDITIONAL_TOOLS_TOKENS']

# --- usage and request estimates --------------------------------------------------------------

# OpenAI cookbook "How to count tokens with tiktoken" (num_tokens_from_messages, gpt-4o / gpt-4 models,
# as of 2024-2025): every message costs 3, a name 1 more, and every reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
# Tools: the namespace text (vizlab.tokens.tools) plus these constants, per group ("plain": a
# non-reasoning model on either API; "reasoning-chat" / "reasoning-responses"). Start: hmarr/
# openai-chat-tokens (gpt-3.5 / gpt-4, 2023): +9 with functions, -4 when a system message exists,
# +1 tool_choice none, +4 + name for a named one. Re-measured on tests/data/recorded/ (pydantic-ai
# cassettes, 2025-2026; tests/test_recorded_usage.py): each constant is the largest residual seen.
TOOLS_OVERHEAD = {"plain": 9, "reasoning-chat": 89, "reasoning-responses": 9}  # 89: +73..80 on 38 gpt-5-mini Chat cases
TOOLS_WITH_SYSTEM = {"plain": -4, "reasoning-chat": -4, "reasoning-responses": -3}
TOKENS_PER_TOOL_CALL = {"plain": 8, "reasoning-chat": 17, "reasoning-responses": 18}  # a call and its result
# A Responses "additional_tools" item (tools announced mid-conversation): +75 over the namespace text
# on gpt-5.6 (1 recorded exchange, 2026).
ADDITIONAL_TOOLS_TOKENS = 75
TOOL_CHOICE_NAMED = 4
TOOL_CHOICE_KEYWORD = 1
SCHEMA_OVERHEAD = {"plain": 9, "reasoning-chat": 9, "reasoning-responses": 9}
# Responses with instructions="" (empty): +221, +223, +226 billed on gpt-4o (3 recorded exchanges,
# 2025, and the same image request billed 230 more than on Chat): the service then supplies its
# own system text. Counted at the largest.
# 230: 1,349 billed for what Chat billed 1,119 (same image and text); o3-mini: +57 (1 exchange); not
# seen on gpt-5 or computer-use-preview.
EMPTY_INSTRUCTIONS_TOKENS = {"gpt-4o": 230, "o3-mini": 57}
# Encrypted reasoning items re-sent within a tool-call turn are billed; offline only their size is
# known. Bound: one token per 4 base64 characters (billed 201 for 1,932 characters and about 1,650
# for 9,572 on gpt-5, 2 recorded exchanges, 2025).
ENCRYPTED_CHARS_PER_TOKEN = 4
# Reasoning models on Responses: each message costs one more than the cookbook's 3 (gpt-5, 6 recorded
# multi-message exchanges under by 1 per message at 3).
MESSAGE_TOKENS = {"plain": TOKENS_PER_MESSAGE, "reasoning-chat": TOKENS_PER_MESSAGE, "reasoning-responses": 4}
# reasoning={"mode": "pro"} (gpt-5.6-sol): 1,549 billed for a 19-token prompt (1 recorded exchange, 2026).
PRO_MODE_TOKENS = 1530


class _Pricer(Protocol):
    """What :func:`estimate_request` needs of a price table (:class:`vizlab.tokens.pricing.PriceTable`)."""

    def cost(self, prompt_tokens: int, completion_tokens: int = 0, *, model: str, batch: bool = False,
             cached_tokens: int = 0, cache_write_tokens: int = 0) -> Cost: ...  # fmt: skip


@dataclass
class RequestEstimate:
    """vizlab's count of a request before sending it, shaped to sit beside the reported usage.

    ``completion_tokens`` is ``max_completion_tokens`` / ``max_tokens`` (an upper bound) or 0.
    ``unsized_images`` lists http(s) image URLs (query string dropped) whose size is unknown offline;
    each is counted at the family's upper bound for its detail, so ``bounded`` is True and the
    prompt count is an upper bound, not an exact figure. ``cacheable_tokens``: how much of the
    prompt the family's caching rule could serve from the cache on a repeat (0 below its minimum);
    ``cost`` assumes no hit (and, where writes are billed, a write of that prefix).
    """

    model: str
    prompt_tokens: int
    text_tokens: int
    image_tokens: int
    completion_tokens: int
    images: list[ImageTokenBreakdown]
    unsized_images: list[str]
    cost: Cost | None
    overhead_tokens: int = 0
    rules: str = NEWEST
    cacheable_tokens: int = 0
    cache_write_tokens: int = 0
    notes: list[str] = field(default_factory=list)
    # Document (PDF) parts; their text is inside text_tokens and their page images inside image_tokens.
    documents: list[DocumentTokenBreakdown] = field(default_factory=list)
    tool_tokens: int = 0  # tool definitions, structured-output schema, tool_choice (text and overhead)
    refused: list[str] = field(default_factory=list)  # what the service would refuse, in its words
    disputed: list[str] = field(default_factory=list)  # facts of this model the sources disagree on

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def bounded(self) -> bool:
        """True if some image was counted at an upper bound (its size was unknown)."""
        return bool(self.unsized_images)

    def as_usage(self) -> Usage:
        details = {"image_tokens": self.image_tokens, "text_tokens": self.text_tokens}
        return Usage(self.prompt_tokens, self.completion_tokens, self.total_tokens, details)

    def explain(self) -> str:
        """The estimate line by line: text, each image, overhead, output bound, caching, cost."""
        kind = "UPPER BOUND" if self.bounded else "estimate"
        lines = [
            f"{self.model} (rules {self.rules}): {self.prompt_tokens} prompt tokens ({kind}) = "
            f"{self.text_tokens} text + {self.image_tokens} image + {self.overhead_tokens} overhead"
        ]
        if self.tool_tokens:
            lines.append(f"  tools and schema: {self.tool_tokens} tokens (of the text and overhead above; "
                         "vizlab.tokens.tools' rule)")
        lines += ["  " + b.explain().replace("\n", "\n    ") for b in self.images]
        lines += ["  " + d.explain().replace("\n", "\n  ") for d in self.documents]
        lines += [f"  REFUSED by the service: {r}" for r in self.refused]
        lines += [f"  DISPUTED: {d}" for d in self.disputed]
        if self.completion_tokens:
            lines.append(f"  output bound: {self.completion_tokens} tokens (max_completion_tokens / max_tokens)")
        if self.cacheable_tokens:
            lines.append(
                f"  caching: up to {self.cacheable_tokens} prompt tokens cacheable on a repeat; the cost assumes "
                + ("a cache write of them (billed on this family)" if self.cache_write_tokens else "no cache hit")
            )
        lines += [f"  note: {n}" for n in self.notes]
        if self.cost is not None:
            lines.append(f"  cost: {self.cost}")
        return "\n".join(lines)


def _image_size(image: bytes | str, source: str) -> tuple[int, int]:
    """Width and height as displayed, from the header only: :func:`vizlab.images.image_size`,
    the one place vizlab reads image sizes (it refuses what the encoder refuses). A data URL is
    decoded there too, so the image goes down the image modules once."""
    from vizlab.images.encode import image_size

    try:
        return image_size(image, name=f"image in {source}")
    except DataURLError as e:  # say which message and part, as every other error here does
        raise DataURLError(f"{source}: {e}", source=source) from e


def _check_data_url(image: bytes | str, source: str) -> None:
    """Raise for a data URL that does not decode, named as :func:`_image_size` names it."""
    if isinstance(image, str) and image[:5].lower() == "data:":
        from vizlab.images.dataurl import decode_data_url

        try:
            decode_data_url(image)
        except DataURLError as e:
            raise DataURLError(f"{source}: {e}", source=source) from e


def _known_size(part: Mapping[str, Any], url: Any) -> tuple[int, int] | None:
    """The size vizlab's encoder read for this part's image, when the part is an
    :class:`vizlab.images.encode.ImagePart` still holding the URL it was built with; else None, and
    the header is read (a data URL from anywhere else is never taken on trust)."""
    if type(part) is dict:
        return None  # a plain dict carries no size; skip the import
    from vizlab.images.encode import ImagePart

    return part.size if isinstance(part, ImagePart) and part.url is url else None


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]  # query strings can carry SAS tokens


class _Counter:
    """Walks messages once, adding text, image and overhead tokens."""

    def __init__(self, model: str, auto_policy: str | None, rules: str | None,
                 image_sizes: Mapping[str, tuple[int, int]]) -> None:  # fmt: skip
        self.model = model
        self.info = lookup(model)
        self.rules = rules
        self.encoding = encoding_name_for(model)
        self.pending: list[str] = []  # texts counted together at the end (one call to a count service)
        self.auto_policy = auto_policy
        self.sizes = {_strip_query(k): v for k, v in image_sizes.items()}
        self.text = 0
        self.images: list[ImageTokenBreakdown] = []
        self.image_total = 0
        self.unsized: list[str] = []
        self.documents: list[DocumentTokenBreakdown] = []
        self.notes: list[str] = []
        self.group = "plain"

    def add_document(self, where: str, part: Mapping[str, Any]) -> None:
        """A Chat ``file`` / Responses ``input_file`` part: text layer + page images (vizlab.document_tokens)."""
        counted = document_tokens.count_part(
            part, where, model=self.model, vision=self.info.vision,
            text_tokens=self.tokens_of,
            page_image_tokens=lambda w, h, detail: explain_image_tokens(
                w, h, detail=detail, model=self.model, auto_policy=self.auto_policy, rules=self.rules).tokens,
        )
        if counted is None:
            self.notes.append(f"{where}: document not counted offline (a file_id / file_url, whose bytes are not "
                              "here, or a non-PDF document); send a PDF's bytes with vizlab.file_part to estimate it")
            return
        self.documents.append(counted)
        self.text += counted.text_tokens
        self.image_total += counted.image_tokens

    def count_text(self, text: str) -> None:
        """Add ``text``'s tokens to :attr:`text` (at :meth:`settle`)."""
        self.pending.append(text)

    def tokens_of(self, text: str) -> int:
        """``text``'s tokens, now."""
        return count_texts([text], self.encoding)[0]

    def settle(self) -> None:
        """Count the texts :meth:`count_text` collected, all in one call."""
        self.text += sum(count_texts(self.pending, self.encoding))
        self.pending = []

    def add_image(self, where: str, image: bytes | str, detail: Any, known: tuple[int, int] | None = None) -> None:
        """One image: bytes or a data URL (sized from its header, or ``known``: the size vizlab's
        encoder read when it built the part), else an http(s) URL or file id."""
        detail = "auto" if detail is None else detail
        if not self.info.vision:
            _check_data_url(image, where)  # a broken data URL is named first, as it always was
            raise ConversationError(
                f"{where}: {self.info.name} takes no image input (no vision); remove the image or use a vision "
                "model such as 'gpt-4o' (vizlab.models.lookup(name).vision says which do)"
            )
        if isinstance(image, str) and image[:5].lower() != "data:":
            key = _strip_query(image)
            if key in self.sizes:
                width, height = self.sizes[key]
            else:
                bound = image_token_bound(detail=detail, model=self.model, auto_policy=self.auto_policy,
                                          rules=self.rules, url=key)  # fmt: skip
                self.unsized.append(key)
                self.images.append(bound)
                self.image_total += bound.tokens
                return
        elif known is not None:
            width, height = known
        else:
            width, height = _image_size(image, where)
        try:
            breakdown = explain_image_tokens(width, height, detail=detail, model=self.model,
                                             auto_policy=self.auto_policy, rules=self.rules)  # fmt: skip
        except UnknownDetailError as e:
            raise UnknownDetailError(f"{where}: {e}", detail=detail) from e
        self.images.append(breakdown)
        self.image_total += breakdown.tokens

    def image_url(self, where: str, url: Any, detail: Any, known: tuple[int, int] | None = None) -> None:
        if not isinstance(url, str):
            raise ConversationError(f"{where}: an image needs a 'url' / 'image_url' string, got {url!r:.80}")
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme in ("data", "http", "https"):
            self.add_image(where, url, detail, known)
        else:
            raise URLSchemeError(
                f"{where}: image URL scheme {scheme or '(none)'!r} is not http, https or data; "
                "send a data URL (vizlab.to_data_url) or a public https URL",
                source=where,
                scheme=scheme,
            )

    def content(self, where: str, content: Any) -> None:
        if content is None or isinstance(content, str):
            if content:
                self.count_text(content)
            return
        if not isinstance(content, list):
            raise ConversationError(
                f"{where}: content must be a string or a list of parts, not {type(content).__name__}"
            )
        for j, part in enumerate(content):
            here = f"{where} part {j}"
            kind = part.get("type") if isinstance(part, Mapping) else None
            if isinstance(part, str):  # 2023 preview format
                self.count_text(part)
            elif not isinstance(part, Mapping):
                raise ConversationError(f"{here}: a part must be a dict or a string, not {type(part).__name__}")
            elif "image" in part and "type" not in part:  # 2023 preview format: {"image": "<base64>"}
                if not isinstance(part["image"], str):
                    raise ConversationError(f"{here}: 'image' must be a base64 string")
                from vizlab.images.dataurl import decode_base64_image

                data = decode_base64_image(part["image"], source=f"{here} ('image' base64)")
                self.add_image(here, data, part.get("detail"))
            elif kind in ("text", "input_text", "output_text"):  # Chat and Responses text parts
                if not isinstance(part.get("text"), str):
                    raise ConversationError(f"{here}: a {kind} part needs a 'text' string")
                self.count_text(part["text"])
            elif kind == "image_url":
                spec = part.get("image_url")
                url, detail = (spec, None) if isinstance(spec, str) else (field_of(spec, "url"), field_of(spec, "detail"))
                self.image_url(here, url, detail, _known_size(part, url))
            elif kind == "input_image":  # Responses API: {"type": "input_image", "image_url": ..., "detail": ...}
                if part.get("image_url") is None and isinstance(part.get("file_id"), str):
                    # A Files API id: size unknown offline, counted at the bound like an https URL.
                    self.add_image(here, f"file:{part['file_id']}", part.get("detail"))
                else:
                    self.image_url(here, part.get("image_url"), part.get("detail"))
            elif kind in ("file", "input_file"):  # documents (PDF): vizlab.document_tokens
                self.add_document(here, part)
            else:
                raise ConversationError(
                    f"{here}: part type {kind!r} is not 'text', 'image_url', 'file', 'input_text', 'input_image' "
                    "or 'input_file'; vizlab estimates text, image and document parts only"
                )


# Keys of a message that are addresses, not text the model reads.
_NOT_TEXT = frozenset({"tool_call_id", "call_id", "id", "status", "type", "encrypted_content", "role"})


def _message(counter: _Counter, where: str, message: Any) -> int:
    """Count one chat message or Responses input item; return its overhead tokens."""
    if not isinstance(message, Mapping):
        raise ConversationError(f"{where} must be a dict with 'role' and 'content', not {type(message).__name__}")
    kind = message.get("type")
    if kind in ("function_call", "function_call_output", "reasoning", "custom_tool_call", "custom_tool_call_output"):
        return _item(counter, where, message)
    if not isinstance(message.get("role"), str):
        raise ConversationError(
            f"{where} has no 'role' string; add role 'system', 'user' or 'assistant' (or give a Responses item a "
            "'type': function_call, function_call_output or reasoning)"
        )
    overhead = MESSAGE_TOKENS[counter.group]
    counter.count_text(message["role"])
    for key, value in message.items():
        if key == "content":
            counter.content(where, value)
        elif key == "tool_calls" and isinstance(value, list):
            overhead += _tool_calls(counter, where, value)
        elif key == "tools" and isinstance(value, list):  # a Responses "additional_tools" item
            text, extra = _tool_tokens(counter, value, None, None, [])
            counter.text += text
            overhead += extra + ADDITIONAL_TOOLS_TOKENS
        elif key in _NOT_TEXT or not isinstance(value, str):
            continue
        else:
            counter.count_text(value)
            overhead += TOKENS_PER_NAME if key == "name" else 0
    return overhead


def _tool_calls(counter: _Counter, where: str, calls: list[Any]) -> int:
    """An assistant's tool calls: each one's name and arguments, plus :data:`TOKENS_PER_TOOL_CALL`."""
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping):
            raise ConversationError(f"{where} tool_calls[{j}] needs a 'function' with 'name' and 'arguments'")
        counter.count_text(str(fn.get("name", "")))
        counter.count_text(str(fn.get("arguments", "")))
    return TOKENS_PER_TOOL_CALL[counter.group] * len(calls)


def _item(counter: _Counter, where: str, item: Mapping[str, Any]) -> int:
    """A Responses function_call, function_call_output or reasoning item."""
    kind = item["type"]
    if kind in ("function_call", "custom_tool_call"):
        counter.count_text(str(item.get("name", "")))
        counter.count_text(str(item.get("arguments", item.get("input", ""))))
        return TOKENS_PER_TOOL_CALL[counter.group]
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        counter.content(f"{where} output", output if isinstance(output, (str, list)) else json.dumps(output))
        return TOKENS_PER_MESSAGE
    for part in item.get("summary") or []:  # reasoning: the readable summary
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            counter.count_text(part["text"])
    encrypted = item.get("encrypted_content")
    if isinstance(encrypted, str) and encrypted:
        counter.text += -(-len(encrypted) // ENCRYPTED_CHARS_PER_TOKEN)
        counter.notes.append(
            f"{where}: encrypted reasoning counted at its bound (1 token per {ENCRYPTED_CHARS_PER_TOKEN} characters); "
            "the service bills it only within the tool-call turn that produced it"
        )
    return 0


def _tool_tokens(counter: _Counter, tools: Any, tool_choice: Any, response_format: Any,
                 messages: list[Any]) -> tuple[int, int]:  # fmt: skip
    """(text tokens, overhead tokens) of the tool definitions, tool_choice and output schema."""
    text = overhead = 0
    group = counter.group
    if tools:
        if not isinstance(tools, list):
            raise ConversationError(f"tools must be a list of tool dicts, not {type(tools).__name__}")
        functions = [t for t in tools if function_of(t) is not None]
        hosted = [t for t in tools if function_of(t) is None]
        if functions:
            text += counter.tokens_of(render_functions(functions))
            overhead += TOOLS_OVERHEAD[group]
            if any(m.get("role") in ("system", "developer") for m in messages if isinstance(m, Mapping)):
                overhead += TOOLS_WITH_SYSTEM[group]
        for tool in hosted:  # hosted tools: the service's own text, not countable offline
            counter.notes.append(f"hosted tool {tool.get('type')!r}: its definition is the service's own text, "
                                 "not counted (may add tokens)")
            if tool.get("type") not in BUILTIN_TOOL_TYPES:
                text += counter.tokens_of(json.dumps(tool))
    if isinstance(tool_choice, Mapping):
        name = (tool_choice.get("function") or tool_choice).get("name", "")
        text += counter.tokens_of(str(name))
        overhead += TOOL_CHOICE_NAMED
    elif tool_choice in ("none", "required"):
        overhead += TOOL_CHOICE_KEYWORD
    if response_format is not None:
        schema = render_schema(response_format)
        if schema:
            text += counter.tokens_of(schema)
            overhead += SCHEMA_OVERHEAD[group]
    return text, overhead


_RESPONSES_ITEMS = frozenset({"function_call", "function_call_output", "reasoning", "message"})
_RESPONSES_PARTS = frozenset({"input_text", "input_image", "output_text", "input_file"})


def _api(api: str | None, messages: list[Any], instructions: str | None) -> str:
    """``api`` if given, else "responses" when the input has Responses items or parts, else "chat"."""
    if api is not None:
        if api not in ("chat", "responses"):
            raise ValueError(f"api {api!r} is not 'chat' or 'responses'; leave it None to infer it from the input")
        return api
    if instructions is not None:
        return "responses"
    for m in messages:
        if isinstance(m, Mapping) and m.get("type") in _RESPONSES_ITEMS:
            return "responses"
        parts = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(parts, list) and any(isinstance(p, Mapping) and p.get("type") in _RESPONSES_PARTS for p in parts):
            return "responses"
    return "chat"


def _group(info: Any, api: str) -> str:
    """Which measured overhead set applies: reasoning models on Chat Completions add a tool harness."""
    return f"reasoning-{api}" if info.reasoning else "plain"


def _disputed_notes(info: Any, instructions: str | None = None) -> list[str]:
    skip = {"image_rule"} | (set() if instructions else {INSTRUCTIONS_DISPUTE})  # shown only where it applies
    out = [f"{k}: {d}" for k, d in info.disputes.items() if d.disputed and k not in skip]
    return out


def _instructions_drift(counter: _Counter) -> int:
    """Responses instructions billed differently on two dates (a registry dispute): the larger claim."""
    dispute = counter.info.disputes.get(INSTRUCTIONS_DISPUTE)
    if dispute is None or not dispute.disputed:
        return 0
    extra = max(int(str(c.value)) for c in dispute.claims)
    counter.notes.append(f"instructions: +{extra} tokens, the larger claim of a DISPUTED fact (never under; both "
                         f"claims in the DISPUTED line above)")
    return extra


def _cacheable(prompt: int, rule: CachingRule) -> int:
    """Prompt tokens the caching rule could serve on a repeat: the minimum prefix plus whole steps."""
    if not rule.supported or prompt < rule.min_prefix:
        return 0
    return rule.min_prefix + (prompt - rule.min_prefix) // rule.step * rule.step


def _bound(name: str, value: int | None) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} {value!r} must be a non-negative integer or None")
    return value


def _checked_sizes(image_sizes: Mapping[str, tuple[int, int]] | None) -> Mapping[str, tuple[int, int]]:
    """``image_sizes`` checked: a dict of url -> (width, height), each a size an image can have."""
    sizes = {} if image_sizes is None else image_sizes
    if not isinstance(sizes, Mapping):
        raise TypeError(f"image_sizes must be a dict of url -> (width, height), not {type(sizes).__name__}")
    for url, size in sizes.items():
        if not (isinstance(size, tuple) and len(size) == 2):
            raise ValueError(f"image_sizes[{url!r}] = {size!r} must be a (width, height) tuple")
        check_size(*size)
    return sizes


def _preamble(
    counter: _Counter, messages: list[dict[str, Any]], instructions: str | None, reasoning: Mapping[str, Any] | None
) -> tuple[list[dict[str, Any]], int]:
    """The messages with ``instructions`` first, and the overhead before them: reply priming, the
    service's text for empty instructions, and pro mode's own prompt (each measured)."""
    overhead = REPLY_PRIMING_TOKENS
    if instructions == "" and counter.info.name in EMPTY_INSTRUCTIONS_TOKENS:
        extra = EMPTY_INSTRUCTIONS_TOKENS[counter.info.name]
        overhead += extra
        counter.notes.append(f"instructions='' (empty): the service adds its own system text ({extra} tokens "
                             "measured); omit instructions instead")
    if instructions:
        messages = [{"role": "developer", "content": instructions}, *messages]
        overhead += _instructions_drift(counter)
    if isinstance(reasoning, Mapping) and reasoning.get("mode") == "pro":
        overhead += PRO_MODE_TOKENS
        counter.notes.append(f"reasoning mode 'pro': {PRO_MODE_TOKENS} prompt tokens of the service's own (measured)")
    return messages, overhead


def _cost(info: Any, prices: _Pricer | None, prompt: int, completion: int, *, model: str, cache_write_tokens: int) -> Any:
    """The cost by ``prices`` (default: the registry's), or None when no price is known for ``model``."""
    try:
        table = info.prices if prices is None else prices
        return table.cost(prompt, completion, model=model, cache_write_tokens=cache_write_tokens)
    except UnknownModelError:
        return None


def estimate_request(
    messages: list[dict[str, Any]] | str,
    *,
    model: str = "gpt-4o",
    max_tokens: int | None = None,
    max_completion_tokens: int | None = None,
    prices: _Pricer | None = None,
    auto_policy: str | None = None,
    rules: str | None = None,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    tools: list[Any] | None = None,
    tool_choice: Any = None,
    response_format: Any = None,
    instructions: str | None = None,
    api: str | None = None,
    reasoning: Mapping[str, Any] | None = None,
) -> RequestEstimate:
    """Count a Chat Completions or Responses request offline: text, images, overhead, plus its cost.

    ``messages``: chat messages (text / image_url parts, or a string content), Responses input items
    (``input_text`` / ``input_image`` parts; a plain string is one user message), or the 2023
    preview format (strings and ``{"image": "<base64>"}``). ``image_sizes={url: (w, h)}`` gives the
    size of http(s) images (otherwise counted at the family's upper bound, and flagged). The output
    bound is ``max_completion_tokens`` (what reasoning models take), else ``max_tokens``.
    ``prices``: a :class:`vizlab.tokens.pricing.PriceTable`; default the registry's prices.
    ``tools`` / ``tool_choice`` / ``response_format`` (Chat's, or Responses' ``text.format``) and
    Responses ``instructions`` are counted by :mod:`vizlab.tokens.tools`' rule; assistant
    ``tool_calls``, ``tool`` messages and Responses ``function_call`` / ``function_call_output`` /
    ``reasoning`` items too. Reasoning models bill reasoning tokens as output: the output bound
    (``max_completion_tokens``) covers them, so the worst-case cost holds.

    >>> estimate_request([{"role": "user", "content": "hi"}]).prompt_tokens
    8
    """
    if auto_policy is not None:
        check_policy(auto_policy)
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list):
        raise ConversationError(f"messages must be a list of dicts (or a string), not {type(messages).__name__}")
    counter = _Counter(model, auto_policy, rules, _checked_sizes(image_sizes))
    counter.group = _group(counter.info, _api(api, messages, instructions))
    messages, overhead = _preamble(counter, messages, instructions, reasoning)
    for i, message in enumerate(messages):
        overhead += _message(counter, f"message {i}", message)
    tool_text, tool_overhead = _tool_tokens(counter, tools, tool_choice, response_format, messages)
    overhead += tool_overhead
    counter.settle()
    completion = _bound("max_tokens", max_tokens)
    if max_completion_tokens is not None:
        completion = _bound("max_completion_tokens", max_completion_tokens)
    prompt = counter.text + tool_text + counter.image_total + overhead
    info = counter.info
    cacheable = _cacheable(prompt, info.caching)
    writes = cacheable if info.caching.writes_billed else 0
    notes = list(counter.notes)
    if counter.unsized:
        notes.append(
            f"{len(counter.unsized)} image(s) of unknown size counted at the upper bound: "
            "pass image_sizes={url: (width, height)} for an exact count"
        )
    if info.reasoning and max_tokens is not None and max_completion_tokens is None:
        notes.append(f"{info.name} refuses max_tokens: send max_completion_tokens (counted as the output bound here)")
    estimate = RequestEstimate(
        model=model,
        prompt_tokens=prompt,
        text_tokens=counter.text + tool_text,
        image_tokens=counter.image_total,
        completion_tokens=completion,
        images=counter.images,
        unsized_images=counter.unsized,
        cost=None,
        overhead_tokens=overhead,
        rules=rules or NEWEST,
        cacheable_tokens=cacheable,
        cache_write_tokens=writes,
        notes=notes,
        documents=counter.documents,
        tool_tokens=tool_text + tool_overhead,
        refused=[b.refused for b in counter.images if b.refused],
        disputed=_disputed_notes(info, instructions),
    )
    estimate.cost = _cost(info, prices, prompt, completion, model=model, cache_write_tokens=writes)
    return estimate
