"""Message content formats: today's parts and the 2023 preview shape, converted either way.

``"current"`` is today's Chat Completions parts; ``"preview2023"`` the 2023 preview's strings and
``{"image": "<base64>"}`` objects. Trade-offs: ``detail`` does not survive the preview format;
bytes are never re-encoded (the MIME type is sniffed coming back); http(s) URLs cannot go to
preview, and errors name them without their query. Details: docs/internals.md#conversation
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from vizlab.conversation.storage import url_label
from vizlab.conversation.turns import check_detail
from vizlab.errors import ConversationError, VizlabError

__all__ = ["FORMATS", "convert_messages"]


# preview2023: strings and {"image": "<base64>"} objects (seeds/01, api-version 2023-08-01-preview).
FORMATS = ("current", "preview2023")


def convert_messages(messages: Sequence[dict[str, Any]], to: str, *, detail: str = "auto") -> list[dict[str, Any]]:
    """Convert a message list to the ``"current"`` or ``"preview2023"`` content format.

    Either direction, and parts already in the target shape pass through. Preview images are
    base64 of the bytes; data URLs are decoded to get them, and going back the MIME type comes
    from the bytes. ``detail`` does not exist in the preview format: it is dropped going there
    and set to ``detail`` (default ``"auto"``) coming back. http(s) URLs cannot go to preview.

    >>> convert_messages([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "preview2023")
    [{'role': 'user', 'content': ['Hi']}]
    """
    if to not in FORMATS:
        raise ConversationError(f"convert_messages(to={to!r}): use 'current' or 'preview2023'.")
    if isinstance(messages, (str, bytes, dict)) or not isinstance(messages, Sequence):
        raise ConversationError(
            f"convert_messages takes a list of message dicts, not {type(messages).__name__}; "
            "e.g. conversation.messages()."
        )
    detail = check_detail(detail)
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise ConversationError(f"convert_messages: message {i} is not a dict with a 'role': {message!r:.80}")
        content = message.get("content")
        if not isinstance(content, list):
            out.append(dict(message))
            continue
        parts = [_convert_part(part, to, detail, i) for part in content]
        out.append({**message, "content": parts})
    return out


def _convert_part(part: Any, to: str, detail: str, index: int) -> Any:
    from vizlab.images.dataurl import decode_data_url

    if to == "preview2023":
        if isinstance(part, str) or (isinstance(part, dict) and "image" in part):
            return part
        if isinstance(part, dict) and part.get("type") == "text":
            return part.get("text", "")
        if isinstance(part, dict) and part.get("type") == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url, str) or not url.startswith("data:"):
                shown = url_label(url) if isinstance(url, str) else repr(url)[:60]  # never a SAS query
                raise ConversationError(
                    f"Message {index}: image {shown!r} is not a data URL; the preview2023 "
                    "format takes only base64 images. Download it and add it as a file or bytes, "
                    "or keep format='current'."
                )
            _, data = decode_data_url(url)
            return {"image": base64.b64encode(data).decode("ascii")}
    else:
        if isinstance(part, dict) and part.get("type") in ("text", "image_url"):
            return part
        if isinstance(part, str):
            return {"type": "text", "text": part}
        if isinstance(part, dict) and "image" in part:
            from vizlab.images.dataurl import decode_base64_image

            try:
                data = decode_base64_image(part["image"], source=f"message {index}'s {{'image': ...}} part")
            except VizlabError as e:
                raise ConversationError(f"Message {index}: an {{'image': ...}} part is not valid base64: {e}") from e
            return {"type": "image_url", "image_url": {"url": _data_url_from_bytes(data), "detail": detail}}
    raise ConversationError(f"Message {index}: content part {part!r:.80} is neither text nor an image.")


def _data_url_from_bytes(data: bytes) -> str:
    """A data URL for image bytes, unchanged, with the MIME type sniffed from the bytes."""
    from vizlab.images.dataurl import build_data_url
    from vizlab.images.encode import SERVICE_FORMATS
    from vizlab.images.format import sniff_mime

    mime = sniff_mime(data)
    if mime is None or mime not in SERVICE_FORMATS:
        raise ConversationError(
            f"An {{'image': ...}} part holds {mime or 'unrecognised bytes'}, not PNG, JPEG, WEBP or "
            "GIF; re-encode it (vizlab.images.encode_image) before converting."
        )
    return build_data_url(mime, data)
