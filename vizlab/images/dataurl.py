"""Data URLs and base64: building them, checking them strictly, and naming URLs safely in messages.

Trade-offs: one place builds a data URL, into one pre-sized buffer (peak memory under 3x the
file); base64 in C (pybase64) when available; decoding is strict (canonical base64, ``image/*``
only); :func:`describe_url` drops credentials, query and fragment so errors never leak them.
Imports only :mod:`vizlab.errors`. Details: docs/internals.md#images
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from urllib.parse import urlsplit, urlunsplit

from vizlab.errors import DataURLError

__all__ = [
    "build_data_url",
    "data_url_buffer",
    "decode_base64_image",
    "decode_data_url",
    "describe_url",
    "shorten",
    "SCHEME_RE",
]

# base64 in C with SIMD (pybase64, from PyPI) when installed: 2-3.5x the standard library on the
# reference machine (issue 14); the standard library otherwise, with the same strictness.
try:
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover - pybase64 is a dependency; the fallback keeps vizlab usable
    _pybase64 = None  # type: ignore[assignment]


SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")  # 2+ letters: "C:\x" stays a path


_BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def build_data_url(mime: str, data: bytes) -> str:
    """``data:<mime>;base64,<data>``: the only place vizlab builds a data URL.

    >>> build_data_url("image/png", b"\\x89PNG")
    'data:image/png;base64,iVBORw=='
    """
    return data_url_buffer(mime, data).decode("ascii")


_B64_CHUNK = 3 * 64 * 1024  # 192 KiB: a multiple of 3 (no padding between chunks), small next to an image


def data_url_buffer(mime: str, data: bytes) -> bytearray:
    """The data URL as ASCII bytes in one pre-sized buffer, base64 written chunk by chunk.

    One allocation of the final size instead of base64 bytes + str + f-string copies: this keeps
    to_data_url's peak memory under 3x the file (bench/bench_data_urls.py measures it).
    """
    prefix = f"data:{mime};base64,".encode("ascii")
    size = len(prefix) + 4 * ((len(data) + 2) // 3)
    buffer = bytearray(size)
    buffer[: len(prefix)] = prefix
    position = len(prefix)
    encode = _b64encode_chunk
    with memoryview(data) as view:
        for start in range(0, len(view), _B64_CHUNK):
            encoded = encode(view[start : start + _B64_CHUNK])
            buffer[position : position + len(encoded)] = encoded
            position += len(encoded)
    return buffer


def _b64encode_chunk(chunk: memoryview) -> bytes:
    if _pybase64 is not None:
        return bytes(_pybase64.b64encode(chunk))
    return binascii.b2a_base64(chunk, newline=False)


def _b64decode_strict(payload: str) -> bytes:
    """Canonical base64 only (standard alphabet, '=' only as final padding, length a multiple of 4),
    checked in C: pybase64's validating decoder, else the standard library's strict mode (3.11+),
    else a regular expression (3.10). Raises binascii.Error (or UnicodeEncodeError) with the reason."""
    if _pybase64 is not None:
        try:
            return bytes(_pybase64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError):
            pass  # fall through: the standard library says *why* it is invalid
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(payload.encode("ascii"), strict_mode=True)
    if not _BASE64_RE.fullmatch(payload):  # pragma: no cover - Python 3.10 only
        raise binascii.Error("characters outside the base64 alphabet, or misplaced '=' padding")
    return base64.b64decode(payload.encode("ascii"), validate=True)  # pragma: no cover


def decode_base64_image(text: str, *, source: str = "base64 image data") -> bytes:
    """Bytes of the 2023 preview format's ``{"image": "<base64>"}`` payload: whitespace (line
    breaks) ignored, standard alphabet and padding required. Raises :class:`DataURLError`.

    >>> decode_base64_image("iVBO\\nRw==")
    b'\\x89PNG'
    """
    if not isinstance(text, str):
        raise DataURLError(f"{source} is a {type(text).__name__}, not a base64 string.", source=source)
    try:
        return _b64decode_strict("".join(text.split()))
    except (binascii.Error, ValueError) as e:
        raise DataURLError(
            f"{source} is not valid base64 ({e}); encode the image bytes with base64.b64encode "
            "(standard alphabet, '=' padding).",
            source=source,
        ) from e


def decode_data_url(url: str) -> tuple[str, bytes]:
    """Split and check a ``data:<image mime>;base64,<data>`` URL; return (declared MIME, bytes).

    Strict: the ``;base64`` marker, a comma, an ``image/*`` MIME type and canonical base64 (no
    whitespace, no URL-safe alphabet, correct padding) are all required.

    >>> decode_data_url("data:image/png;base64,iVBORw==")
    ('image/png', b'\\x89PNG')
    """
    if not isinstance(url, str):
        raise DataURLError(
            f"decode_data_url() takes a data URL string, not {type(url).__name__}; build one with "
            "vizlab.to_data_url(path_or_bytes).",
            source=type(url).__name__,
        )
    label = _describe_data_url(url)
    if not url[:5].lower() == "data:":
        raise DataURLError(f"{label} does not start with 'data:'; pass a data URL, a path or bytes.", source=label)
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise DataURLError(
            f"{label} has no comma; a data URL is 'data:image/png;base64,<data>'. "
            "Build it with vizlab.to_data_url().",
            source=label,
        )
    params = [p.strip() for p in header.split(";")]
    if params[-1].lower() != "base64":
        raise DataURLError(
            f"{label} is not base64-encoded (no ';base64' before the comma); images must be sent "
            "as 'data:<mime>;base64,<data>'. Build it with vizlab.to_data_url().",
            source=label,
        )
    mime = params[0].lower()
    if not mime.startswith("image/"):
        raise DataURLError(
            f"{label} declares MIME type {mime or '(none)'!r}, not an image/* type; "
            "send an image, e.g. build the URL with vizlab.to_data_url(path).",
            source=label,
        )
    if not payload:
        raise DataURLError(f"{label} has no data after the comma; it holds no image.", source=label)
    try:
        data = _b64decode_strict(payload)  # '=' only at the end, length a multiple of 4
    except (UnicodeEncodeError, binascii.Error, ValueError) as e:
        raise DataURLError(
            f"{label} has invalid base64 data ({e}); it must be standard base64 (A-Z a-z 0-9 + /, "
            "'=' padding, no spaces or line breaks). Re-encode the image with vizlab.to_data_url().",
            source=label,
        ) from e
    return mime, data


def _describe_data_url(url: str) -> str:
    return f"data URL {shorten(url, 40)!r} ({len(url)} chars)"


def describe_url(url: str) -> str:
    """A URL as messages may show it: a data URL elided; any other without user name, password,
    query or fragment, where SAS tokens and signed-URL keys live.

    >>> describe_url("https://u:pw@acct.blob.core.windows.net/c/cat.png?sv=2024&sig=SECRET")
    'https://acct.blob.core.windows.net/c/cat.png?...'
    >>> describe_url("data:image/png;base64," + "A" * 100)
    "data URL 'data:image/png;base64,AAAAAAAAAAAAAAA...' (122 chars)"
    """
    if url[:5].lower() == "data:":
        return _describe_data_url(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:  # a malformed netloc (bad port, unbalanced brackets)
        return shorten(re.split(r"[?#@]", url, maxsplit=1)[0]) + "..."
    shown = urlunsplit((parts.scheme, host if parts.netloc else "", parts.path, "", ""))
    if parts.query or parts.fragment:
        shown += "?..."
    return shorten(shown)


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
