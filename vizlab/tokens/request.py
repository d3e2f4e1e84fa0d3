"""Whole-request estimates, offline, for Chat Completions and the Responses API.

Overhead follows the OpenAI cookbook ("How to count tokens with tiktoken", 2024-2025): 3 tokens per
message, 1 per name, 3 priming the reply. An https image of unknown size counts at its bound and
is flagged; caching never makes the estimate low. The result shares its shape with reported usage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from vizlab.errors import (
    ConversationError,
    DataURLError,
    UnknownDetailError,
    UnknownModelError,
    URLSchemeError,
)
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
from vizlab.tokens.text import encoding_for
from vizlab.tokens.usage import Usage, field_of

__all__ = ['RequestEstimate', 'estimate_request', 'TOKENS_PER_MESSAGE', 'TOKENS_PER_NAME', 'REPLY_PRIMING_TOKENS']

# --- usage and request estimates --------------------------------------------------------------

# OpenAI cookbook "How to count tokens with tiktoken" (num_tokens_from_messages, gpt-4o / gpt-4 models,
# as of 2024-2025): every message costs 3, a name 1 more, and every reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


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
        lines += ["  " + b.explain().replace("\n", "\n    ") for b in self.images]
        lines += ["  " + d.explain().replace("\n", "\n  ") for d in self.documents]
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


def _image_size(data: bytes, source: str) -> tuple[int, int]:
    """Width and height as displayed, from the header only: :func:`vizlab.images.image_size`,
    the one place vizlab reads image sizes (it refuses what the encoder refuses)."""
    from vizlab.images.encode import image_size

    return image_size(data, name=f"image in {source}")


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]  # query strings can carry SAS tokens


class _Counter:
    """Walks messages once, adding text, image and overhead tokens."""

    def __init__(self, model: str, auto_policy: str | None, rules: str | None,
                 image_sizes: Mapping[str, tuple[int, int]]) -> None:  # fmt: skip
        self.model = model
        self.info = lookup(model)
        self.rules = rules
        self.encoding = encoding_for(model)
        self.auto_policy = auto_policy
        self.sizes = {_strip_query(k): v for k, v in image_sizes.items()}
        self.text = 0
        self.images: list[ImageTokenBreakdown] = []
        self.image_total = 0
        self.unsized: list[str] = []
        self.documents: list[DocumentTokenBreakdown] = []
        self.notes: list[str] = []

    def add_document(self, where: str, part: Mapping[str, Any]) -> None:
        """A Chat ``file`` / Responses ``input_file`` part: text layer + page images (vizlab.document_tokens)."""
        counted = document_tokens.count_part(
            part, where, model=self.model, vision=self.info.vision,
            text_tokens=lambda text: len(self.encoding.encode_ordinary(text)),
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
        self.text += len(self.encoding.encode_ordinary(text))

    def add_image(self, where: str, data: bytes | None, url: str | None, detail: Any) -> None:
        detail = "auto" if detail is None else detail
        if not self.info.vision:
            raise ConversationError(
                f"{where}: {self.info.name} takes no image input (no vision); remove the image or use a vision "
                "model such as 'gpt-4o' (vizlab.models.lookup(name).vision says which do)"
            )
        if data is None:
            assert url is not None
            key = _strip_query(url)
            if key in self.sizes:
                width, height = self.sizes[key]
            else:
                bound = image_token_bound(detail=detail, model=self.model, auto_policy=self.auto_policy,
                                          rules=self.rules, url=key)  # fmt: skip
                self.unsized.append(key)
                self.images.append(bound)
                self.image_total += bound.tokens
                return
        else:
            width, height = _image_size(data, where)
        try:
            breakdown = explain_image_tokens(width, height, detail=detail, model=self.model,
                                             auto_policy=self.auto_policy, rules=self.rules)  # fmt: skip
        except UnknownDetailError as e:
            raise UnknownDetailError(f"{where}: {e}", detail=detail) from e
        self.images.append(breakdown)
        self.image_total += breakdown.tokens

    def image_url(self, where: str, url: Any, detail: Any) -> None:
        if not isinstance(url, str):
            raise ConversationError(f"{where}: an image needs a 'url' / 'image_url' string, got {url!r:.80}")
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            from vizlab.images.dataurl import decode_data_url

            try:
                _, data = decode_data_url(url)
            except DataURLError as e:  # say which message and part, as every other error here does
                raise DataURLError(f"{where}: {e}", source=where) from e
            self.add_image(where, data, None, detail)
        elif scheme in ("http", "https"):
            self.add_image(where, None, url, detail)
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
                self.add_image(here, data, None, part.get("detail"))
            elif kind in ("text", "input_text", "output_text"):  # Chat and Responses text parts
                if not isinstance(part.get("text"), str):
                    raise ConversationError(f"{here}: a {kind} part needs a 'text' string")
                self.count_text(part["text"])
            elif kind == "image_url":
                spec = part.get("image_url")
                url, detail = (spec, None) if isinstance(spec, str) else (field_of(spec, "url"), field_of(spec, "detail"))
                self.image_url(here, url, detail)
            elif kind == "input_image":  # Responses API: {"type": "input_image", "image_url": ..., "detail": ...}
                if part.get("image_url") is None and isinstance(part.get("file_id"), str):
                    # A Files API id: size unknown offline, counted at the bound like an https URL.
                    self.add_image(here, None, f"file:{part['file_id']}", part.get("detail"))
                else:
                    self.image_url(here, part.get("image_url"), part.get("detail"))
            elif kind in ("file", "input_file"):  # documents (PDF): vizlab.document_tokens
                self.add_document(here, part)
            else:
                raise ConversationError(
                    f"{here}: part type {kind!r} is not 'text', 'image_url', 'file', 'input_text', 'input_image' "
                    "or 'input_file'; vizlab estimates text, image and document parts only"
                )


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
) -> RequestEstimate:
    """Count a Chat Completions or Responses request offline: text, images, overhead, plus its cost.

    ``messages``: chat messages (text / image_url parts, or a string content), Responses input items
    (``input_text`` / ``input_image`` parts; a plain string is one user message), or the 2023
    preview format (strings and ``{"image": "<base64>"}``). ``image_sizes={url: (w, h)}`` gives the
    size of http(s) images (otherwise counted at the family's upper bound, and flagged). The output
    bound is ``max_completion_tokens`` (what reasoning models take), else ``max_tokens``.
    ``prices``: a :class:`vizlab.tokens.pricing.PriceTable`; default the registry's prices.

    >>> estimate_request([{"role": "user", "content": "hi"}]).prompt_tokens
    8
    """
    if auto_policy is not None:
        check_policy(auto_policy)
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list):
        raise ConversationError(f"messages must be a list of dicts (or a string), not {type(messages).__name__}")
    sizes = {} if image_sizes is None else image_sizes
    if not isinstance(sizes, Mapping):
        raise TypeError(f"image_sizes must be a dict of url -> (width, height), not {type(sizes).__name__}")
    for url, size in sizes.items():
        if not (isinstance(size, tuple) and len(size) == 2):
            raise ValueError(f"image_sizes[{url!r}] = {size!r} must be a (width, height) tuple")
        check_size(*size)
    counter = _Counter(model, auto_policy, rules, sizes)
    overhead = REPLY_PRIMING_TOKENS
    for i, message in enumerate(messages):
        where = f"message {i}"
        if not isinstance(message, Mapping):
            raise ConversationError(f"{where} must be a dict with 'role' and 'content', not {type(message).__name__}")
        if not isinstance(message.get("role"), str):
            raise ConversationError(f"{where} has no 'role' string; add role 'system', 'user' or 'assistant'")
        overhead += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                counter.content(where, value)
            elif key == "type" and value == "message":  # Responses input item wrapper
                continue
            elif isinstance(value, str):
                counter.count_text(value)
                if key == "name":
                    overhead += TOKENS_PER_NAME
    completion = _bound("max_tokens", max_tokens)
    if max_completion_tokens is not None:
        completion = _bound("max_completion_tokens", max_completion_tokens)
    prompt = counter.text + counter.image_total + overhead
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
        text_tokens=counter.text,
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
    )
    try:
        if prices is None:
            estimate.cost = info.prices.cost(prompt, completion, model=model, cache_write_tokens=writes)
        else:
            estimate.cost = prices.cost(prompt, completion, model=model, cache_write_tokens=writes)
    except UnknownModelError:
        estimate.cost = None
    return estimate
