"""The image parts of a chat request: decoded and checked, or refused with the service's 400."""

from __future__ import annotations

import base64
from typing import Any

from PIL import Image

from vizlab.local import _deps
from vizlab.local.config import BackendConfig
from vizlab.local.http.errors import AzureError, bad_request
from vizlab.local.requests.validation import ChatRequest, FileImageURL, ImageRef
from vizlab.local.samples import PREFIX, sample_bytes, sample_name

__all__ = ["load_images", "image_bytes", "clean_messages", "upload_mime"]

_IMAGE_ERROR_CODES = {
    "data_url": "invalid_image_url",
    "not_image": "invalid_image_format",
    "unsupported": "invalid_image_format",
    "corrupt": "invalid_image",
    "bomb": "invalid_image",
    "too_large": "image_too_large",
}
_FORMATS_HINT = "Send one of the supported formats: ['png', 'jpeg', 'gif', 'webp']."


def load_images(
    chat: ChatRequest, config: BackendConfig, origin: str | None = None, files: Any = None
) -> list[Image.Image]:
    """Decode every image part (in order) or raise the 400 the service would send. ``origin`` is
    this backend's own address: image URLs of its samples there are accepted (vizlab.local.samples).
    ``files`` is the Files store that ``input_image.file_id`` references resolve in.

    Call it after the image-count check: it is where file references become bytes. A source named
    several times (a file_id, or the same data URL) is decoded once and its image and data URL are
    shared, so 50 mentions of one file cost one decode, not 50 copies.
    """
    decoded: list[Image.Image] = []
    seen: dict[str, tuple[Image.Image, str]] = {}  # source -> (image, data URL), this request only
    for ref in chat.images:
        key = ref.url.file_id if isinstance(ref.url, FileImageURL) else ref.url
        if key in seen:
            image, ref.url = seen[key]
            decoded.append(image)
            continue
        image, url = _load_one(ref, config, origin, files)
        ref.url = url
        seen[key] = (image, url)
        decoded.append(image)
    return decoded


def _load_one(ref: ImageRef, config: BackendConfig, origin: str | None, files: Any) -> tuple[Image.Image, str]:
    """One image part decoded and checked, with the data URL it is counted and answered by."""
    sample = None if ref.legacy_base64 or isinstance(ref.url, FileImageURL) else sample_name(ref.url, origin, ref.param)
    data = sample_bytes(sample) if sample else image_bytes(ref, files)
    try:
        image, mime = _deps.open_checked(data, max_bytes=config.max_image_bytes)
    except _deps.ImageProblem as e:
        hint = _FORMATS_HINT if e.kind in ("not_image", "unsupported", "corrupt") else ""
        raise bad_request(
            _IMAGE_ERROR_CODES.get(e.kind, "invalid_image"),
            f"Invalid image at '{ref.param}': {e.message.rstrip('. ')}. {hint}".strip(),
            ref.param,
        ) from e
    if isinstance(ref.url, FileImageURL):
        return image, f"data:{upload_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"
    if ref.legacy_base64:
        return image, f"data:{mime};base64,{''.join(ref.url.split())}"
    if sample:  # counted as the downloaded image, as the service counts a fetched URL
        return image, f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return image, ref.url


def upload_mime(data: bytes) -> str:
    """The image MIME type of uploaded bytes by their magic number (the decoder then checks them).

    >>> upload_mime(b"\\x89PNG\\r\\n\\x1a\\n...."), upload_mime(b"%PDF-1.7")
    ('image/png', 'application/octet-stream')
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _file_bytes(ref: ImageRef, files: Any) -> bytes:
    """The bytes of an uploaded image file (the Files store's own copy, not a new one)."""
    assert isinstance(ref.url, FileImageURL)
    if files is None:
        raise AzureError(404, "NotFound", f"No such File object: {ref.url.file_id[:80]!r}.", param=ref.param)
    data: bytes = files.get_file(ref.url.file_id).data
    _require_image(upload_mime(data), ref.param)
    return data


def image_bytes(ref: ImageRef, files: Any = None) -> bytes:
    """The bytes of one image part: a data URL decoded, a legacy base64 string, or an uploaded file."""
    url = ref.url
    if isinstance(url, FileImageURL):
        return _file_bytes(ref, files)
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
    _require_image(declared, ref.param)
    return data


def _require_image(declared: str, param: str) -> None:
    """Azure's 400 for a part whose bytes are not an image type."""
    if not declared.startswith("image/"):
        raise bad_request(
            "invalid_image_format",
            f"Invalid MIME type {declared[:40]!r} at '{param}': only image types are supported. {_FORMATS_HINT}",
            param,
        )


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

