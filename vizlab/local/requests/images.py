"""The image parts of a chat request: decoded and checked, or refused with the service's 400."""

from __future__ import annotations

import base64
from typing import Any

from PIL import Image

from vizlab.local import _deps
from vizlab.local.config import BackendConfig
from vizlab.local.http.errors import bad_request
from vizlab.local.requests.validation import ChatRequest, ImageRef
from vizlab.local.samples import PREFIX, sample_bytes, sample_name

__all__ = ["load_images", "image_bytes", "clean_messages"]

_IMAGE_ERROR_CODES = {
    "data_url": "invalid_image_url",
    "not_image": "invalid_image_format",
    "unsupported": "invalid_image_format",
    "corrupt": "invalid_image",
    "bomb": "invalid_image",
    "too_large": "image_too_large",
}
_FORMATS_HINT = "Send one of the supported formats: ['png', 'jpeg', 'gif', 'webp']."


def load_images(chat: ChatRequest, config: BackendConfig, origin: str | None = None) -> list[Image.Image]:
    """Decode every image part (in order) or raise the 400 the service would send. ``origin`` is
    this backend's own address: image URLs of its samples there are accepted (vizlab.local.samples)."""
    decoded: list[Image.Image] = []
    for ref in chat.images:
        sample = None if ref.legacy_base64 else sample_name(ref.url, origin, ref.param)
        data = sample_bytes(sample) if sample else image_bytes(ref)
        try:
            image, mime = _deps.open_checked(data, max_bytes=config.max_image_bytes)
        except _deps.ImageProblem as e:
            hint = _FORMATS_HINT if e.kind in ("not_image", "unsupported", "corrupt") else ""
            raise bad_request(
                _IMAGE_ERROR_CODES.get(e.kind, "invalid_image"),
                f"Invalid image at '{ref.param}': {e.message.rstrip('. ')}. {hint}".strip(),
                ref.param,
            ) from e
        if ref.legacy_base64:
            ref.url = f"data:{mime};base64,{''.join(ref.url.split())}"
        elif sample:  # counted as the downloaded image, as the service counts a fetched URL
            ref.url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        decoded.append(image)
    return decoded


def image_bytes(ref: ImageRef) -> bytes:
    url = ref.url
    try:
        if ref.legacy_base64:
            return _deps.b64decode_legacy(url)
        head = url[:16].lower()
        if head.startswith(("http://", "https://")):
            raise bad_request(
                "invalid_image_url",
                f"Cannot fetch http(s) images at '{ref.param}': the built-in backend has no internet. "
                "Send a data URL instead (vizlab.to_data_url(...)), or the URL of one of its own sample "
                f"images ({PREFIX}NAME.jpg on its own address; GET {PREFIX} lists them).",
                ref.param,
            )
        if not head.startswith("data:"):
            raise bad_request(
                "invalid_image_url",
                f"Invalid image URL at '{ref.param}': expected a data URL ('data:image/png;base64,...') "
                "or an http(s) URL.",
                ref.param,
            )
        data, declared = _deps.decode_data_url(url)
    except _deps.ImageProblem as e:
        raise bad_request(
            "invalid_image_url", f"Invalid image URL at '{ref.param}': {e.message.rstrip('. ')}.", ref.param
        ) from e
    if not declared.startswith("image/"):
        raise bad_request(
            "invalid_image_format",
            f"Invalid MIME type {declared[:40]!r} at '{ref.param}': only image types are supported. {_FORMATS_HINT}",
            ref.param,
        )
    return data


def clean_messages(chat: ChatRequest) -> list[dict[str, Any]]:
    """Messages in the current format with data URLs, without our bookkeeping keys."""
    cleaned: list[dict[str, Any]] = []
    for message in chat.messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if "_ref" in part:
                    ref = chat.images[part["_ref"]]
                    parts.append({"type": "image_url", "image_url": {"url": ref.url, "detail": ref.detail}})
                else:
                    parts.append(part)
            message = {**message, "content": parts}
        cleaned.append(message)
    return cleaned

