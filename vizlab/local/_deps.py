"""The backend's only doors into vizlab.images and vizlab.tokens.

The server and the analyst call these small functions and nothing else from those modules, so
the wire protocol does not depend on their exact signatures: a change there is a change here.
Errors from vizlab.images become :class:`ImageProblem` with a ``kind`` the server maps to the
service's error code.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from vizlab.errors import (
    CorruptImageError,
    DataURLError,
    DecompressionBombError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    UnsupportedImageError,
    VizlabError,
)
from vizlab.images.dataurl import decode_base64_image
from vizlab.images.dataurl import decode_data_url as decode_data_url_impl
from vizlab.images.encode import LOW_BOX as LOW_BOX_impl
from vizlab.images.encode import SERVICE_FORMATS, open_image
from vizlab.images.format import sniff_mime
from vizlab.tokens.image import TILE as TILE_impl
from vizlab.tokens.image import match_model as match_model_impl
from vizlab.tokens.image import resolve_detail as resolve_detail_impl
from vizlab.tokens.image import rule_for
from vizlab.tokens.image import scale_for_high as scale_for_high_impl
from vizlab.tokens.request import estimate_request
from vizlab.tokens.text import ENCODINGS, build_encoding, encoding_for

SUPPORTED_MIMES = tuple(sorted(SERVICE_FORMATS))
# The service's geometry, from the modules that cite it: the low-detail view's box and the tile.
LOW_BOX: int = LOW_BOX_impl
TILE: int = TILE_impl


class ImageProblem(Exception):
    """Why an image part cannot be used; ``kind`` picks the error code the server answers with."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "data_url" | "not_image" | "unsupported" | "corrupt" | "too_large" | "bomb"
        self.message = message


# --- tokens -----------------------------------------------------------------------------------


def prompt_tokens(messages: list[dict[str, Any]], model: str) -> int:
    """Prompt tokens of ``messages`` for ``model``: exactly vizlab.tokens.estimate_request's count.

    Assistant ``refusal`` parts (which the estimator does not take) are counted as text.
    """
    return prompt_count(messages, model).tokens


@dataclass(frozen=True)
class PromptCount:
    """A prompt's tokens and each image's share, in the order the images appear; ``refused``: the
    service's refusals of images the model's rule does not accept (gpt-5.6 original over 30,000 patches)."""

    tokens: int
    image_tokens: tuple[int, ...]
    refused: tuple[str, ...] = ()


def _request_extras(request: Mapping[str, Any] | None, api: str) -> dict[str, Any]:
    """The parts of a request body besides its messages that are billed: tools, tool_choice, the
    structured-output schema (Chat ``response_format`` or Responses ``text.format``), reasoning mode."""
    if not request:
        return {"api": api}
    text = request.get("text")
    schema = request.get("response_format") or (text.get("format") if isinstance(text, Mapping) else None)
    reasoning = request.get("reasoning")
    return {"api": api, "tools": request.get("tools") or None, "tool_choice": request.get("tool_choice"),
            "response_format": schema if isinstance(schema, Mapping) else None,
            "reasoning": reasoning if isinstance(reasoning, Mapping) else None}  # fmt: skip


def prompt_count(
    messages: list[dict[str, Any]], model: str, *, rules: str | None = None,
    numbers: Mapping[str, float] | None = None, request: Mapping[str, Any] | None = None, api: str = "chat",
) -> PromptCount:  # fmt: skip
    """:func:`prompt_tokens` by the rule profile ``rules`` (None: newest), with the image rule's
    numbers replaced by ``numbers`` (``base`` / ``per_tile`` on tile rules, ``multiplier`` on
    patch rules) when given: a backend billing by made-up numbers, for calibration tests.
    ``request``: the body, whose tools, tool_choice and schema are billed as vizlab.tokens counts them."""
    counted = [_refusals_as_text(m) for m in messages]
    extra: dict[str, Any] = {} if rules is None else {"rules": rules}
    estimate = estimate_request(counted, model=model, max_tokens=None, **extra, **_request_extras(request, api))
    images = tuple(int(b.tokens) for b in estimate.images)
    refused = tuple(str(r) for r in estimate.refused)
    if not numbers:
        return PromptCount(int(estimate.prompt_tokens), images, refused)
    billed = tuple(_made_up(b, numbers) for b in estimate.images)
    return PromptCount(int(estimate.prompt_tokens) - sum(images) + sum(billed), billed, refused)


def _made_up(breakdown: Any, numbers: Mapping[str, float]) -> int:
    if getattr(breakdown, "patches", None) is not None:  # a patch rule
        multiplier = numbers.get("multiplier", breakdown.multiplier)
        return int(math.ceil(breakdown.patches * multiplier - 1e-9))
    base = int(numbers.get("base", breakdown.base))
    per_tile = int(numbers.get("per_tile", breakdown.per_tile))
    return base if breakdown.detail_used == "low" else base + per_tile * int(breakdown.tiles)


def prompt_units(messages: list[dict[str, Any]], model: str, image_tokens: tuple[int, ...]) -> list[tuple[str, int]]:
    """The prompt as ``(identity, weight)`` units for the prompt cache (vizlab.local.replies.caching):
    every text token weighs 1, every image its tokens (``image_tokens``, in order)."""
    enc = _encoding(model)
    units: list[tuple[str, int]] = []
    images = iter(image_tokens)
    for message in messages:
        units.append((f"<|{message.get('role')}|>", 0))
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, Mapping) else image
                detail = image.get("detail", "auto") if isinstance(image, Mapping) else "auto"
                digest = hashlib.sha256(str(url).encode()).hexdigest()[:32]
                units.append((f"<|image {digest} {detail}|>", next(images, 0)))
            else:
                text = part.get("text") or part.get("refusal") or ""
                units.extend((str(i), 1) for i in enc.encode_ordinary(str(text)))
    return units


def _refusals_as_text(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, list) and any(p.get("type") == "refusal" for p in content):
        parts = [
            {"type": "text", "text": p["refusal"]} if p.get("type") == "refusal" else p for p in content
        ]
        return {**message, "content": parts}
    return message


def has_token_rule(model: str) -> bool:
    """True if vizlab.tokens has an image rule for ``model`` (exact name or dated suffix)."""
    try:
        rule_for(model)
    except VizlabError:
        return False
    return True


def match_model(model: str, names: Any) -> str | None:
    """The entry of ``names`` that ``model`` names, by vizlab.tokens' rule (exact, else the
    longest ``name + "-"`` prefix), or None."""
    return match_model_impl(model, names)


def text_tokens(text: str, model: str) -> int:
    """Tokens of a completion's text, as vizlab.tokens.count_text_tokens counts them."""
    return len(_encoding(model).encode_ordinary(text))  # here, never through a count service


TEXT_ENCODINGS = frozenset(ENCODINGS)  # the encodings a kernel may ask the count route for


def count_in_encoding(encoding: str, texts: list[str]) -> list[int]:
    """Tokens of each text in ``encoding`` (a name in TEXT_ENCODINGS), counted here, never elsewhere."""
    counter = build_encoding(encoding)
    return [len(counter.encode_ordinary(t)) for t in texts]


@functools.lru_cache(maxsize=8)
def _encoding(model: str) -> Any:
    return encoding_for(model)


@functools.lru_cache(maxsize=8)
def max_token_bytes(model: str) -> int:
    """The longest token of ``model``'s encoding, in bytes (128 for o200k_base and cl100k_base).

    >>> max_token_bytes("gpt-4o")
    128
    """
    return max(len(piece) for piece in _encoding(model).token_byte_values())


def token_pieces(text: str, model: str) -> list[bytes]:
    """The bytes of each token of ``text`` in ``model``'s encoding (for emulated logprobs).

    >>> token_pieces("Hi there", "gpt-4o")
    [b'Hi', b' there']
    """
    enc = _encoding(model)
    return [enc.decode_single_token_bytes(t) for t in enc.encode_ordinary(text)]


def truncate_to_tokens(text: str, limit: int, model: str) -> str:
    """The longest token-prefix of ``text`` that counts as at most ``limit`` tokens.

    >>> truncate_to_tokens("Hello there, friend", 2, "gpt-4o")
    'Hello there'
    """
    enc = _encoding(model)
    ids = enc.encode_ordinary(text)
    if len(ids) <= limit:
        return text
    keep = limit
    while keep > 0:
        # A cut can split a multi-byte character: drop the replacement char, then re-count.
        prefix = str(enc.decode(ids[:keep])).rstrip("\ufffd")
        if text_tokens(prefix, model) <= limit:
            return prefix
        keep -= 1
    return ""


def scale_for_high(width: int, height: int) -> tuple[int, int]:
    """The size the service tiles at ``detail: high`` (fit 2048 box, short side 768, no upscaling)."""
    w, h = scale_for_high_impl(width, height)
    return int(w), int(h)


def resolve_detail(detail: str, width: int, height: int, model: str) -> str:
    """``auto`` resolved to ``low`` or ``high`` by vizlab.tokens' stated policy; ``original`` (checked
    against the deployment's model before this) is kept: the analyst reads it as it reads high."""
    if detail == "original":
        return detail
    try:
        return str(resolve_detail_impl(width, height, detail, model=model))
    except VizlabError:  # an unknown token model: fall back to the gpt-4o rules
        return str(resolve_detail_impl(width, height, detail))


# --- images -----------------------------------------------------------------------------------


def decode_data_url(url: str) -> tuple[bytes, str]:
    """``data:image/png;base64,...`` to (bytes, declared mime). Raises ImageProblem."""
    try:
        mime, data = decode_data_url_impl(url)
    except DataURLError as e:
        raise ImageProblem("data_url", str(e)) from e
    return data, mime


def b64decode_legacy(text: str) -> bytes:
    """The 2023 preview ``{"image": "<base64>"}`` payload: whitespace ignored, padding required."""
    try:
        return decode_base64_image(text, source="the base64 image data")
    except DataURLError as e:
        raise ImageProblem("data_url", str(e)) from e


def open_checked(data: bytes, *, max_bytes: int) -> tuple[Image.Image, str]:
    """Validate encoded image bytes like the service; return (RGB image, sniffed mime)."""
    if len(data) > max_bytes:
        raise ImageProblem(
            "too_large",
            f"the image is {len(data):,} bytes; the limit is {max_bytes:,} bytes per image. "
            'Shrink it first, e.g. vizlab.to_data_url(path, fit="high")',
        )
    mime = sniff_mime(data)
    if mime is None:
        raise ImageProblem("not_image", "the data does not represent an image (no known image signature)")
    if mime not in SERVICE_FORMATS:
        raise ImageProblem("unsupported", f"{mime} images are not accepted by the service")
    try:
        if mime == "image/gif":
            with Image.open(io.BytesIO(data)) as probe:
                if getattr(probe, "is_animated", False):
                    raise ImageProblem("unsupported", "animated GIFs are not accepted (only still GIFs)")
        img = open_image(data)
    except ImageProblem:
        raise
    except DecompressionBombError as e:
        raise ImageProblem("bomb", str(e)) from e
    except ImageTooLargeError as e:
        raise ImageProblem("too_large", str(e)) from e
    except UnsupportedImageError as e:
        raise ImageProblem("unsupported", str(e)) from e
    except NotAnImageError as e:
        raise ImageProblem("not_image", str(e)) from e
    except (CorruptImageError, ImageError) as e:
        raise ImageProblem("corrupt", str(e)) from e
    except Exception as e:  # Pillow raises many types for damaged files
        raise ImageProblem("corrupt", f"the image data is truncated or damaged ({type(e).__name__})") from e
    return _to_rgb(img), mime


def _to_rgb(img: Image.Image) -> Image.Image:
    """Flatten transparency onto white (as a viewer shows it) and convert to RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def mime_of_data_url(url: str) -> str | None:
    """The declared MIME type of a data URL, without decoding it."""
    if url[:5].lower() != "data:":
        return None
    return url[5:].split(",", 1)[0].split(";", 1)[0].strip().lower() or None
