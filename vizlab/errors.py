"""Every error vizlab raises, under one base class.

Each subclass keeps the facts a caller needs as attributes (the input that was wrong, the
limit, the HTTP status, the retry delay), so code can react without parsing messages, and each
message says what was wrong and what to do next. Low-level errors are chained with ``from``.

Messages never contain an API key: :func:`redact` is applied to any text that came from outside
(a server body, an exception from a library) before it goes into a message.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

__all__ = [
    "VizlabError",
    "ImageError",
    "NotAnImageError",
    "CorruptImageError",
    "NotARegularFileError",
    "DecompressionBombError",
    "ImageTooLargeError",
    "UnsupportedImageError",
    "DataURLError",
    "URLSchemeError",
    "DocumentError",
    "EncryptedDocumentError",
    "CorruptDocumentError",
    "EmptyDocumentError",
    "DocumentTooLargeError",
    "DocumentBombError",
    "UnsupportedDocumentError",
    "UnknownModelError",
    "UnknownDetailError",
    "ConversationError",
    "TooManyImagesError",
    "ConfigurationError",
    "APIError",
    "AuthenticationError",
    "DeploymentNotFoundError",
    "BadRequestError",
    "UnsupportedParameterError",
    "InvalidImageRequestError",
    "ContentFilterError",
    "RateLimitError",
    "RequestTimeoutError",
    "BackendUnavailableError",
    "redact",
]

# Shapes of secrets that must never be echoed: OpenAI keys, 32-hex Azure keys, bearer tokens.
_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\b[0-9a-fA-F]{32}\b"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]{8,}"),
    re.compile(r"(?i)(api[-_]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"),
]


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with known secrets and anything shaped like a key replaced by ``***``.

    >>> redact("api-key: 0123456789abcdef0123456789abcdef")
    'api-key: ***'
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "***", text)
        else:
            text = pattern.sub("***", text)
    return text


class VizlabError(Exception):
    """Base class of every error vizlab raises."""


# --- images -----------------------------------------------------------------------------------


class ImageError(VizlabError, ValueError):
    """An image source could not be used. ``source`` names the input (file name or a short repr)."""

    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(message)
        self.source = source


class NotAnImageError(ImageError):
    """The bytes are not an image in any format vizlab recognises."""


class CorruptImageError(ImageError):
    """The bytes start like an image but are truncated or damaged."""


class NotARegularFileError(ImageError):
    """The path is a device, FIFO, socket or directory, not a file: it was not read.

    ``kind`` says what it is ("character device", "FIFO", "directory"...).
    """

    def __init__(self, message: str, *, source: str = "", kind: str = "") -> None:
        super().__init__(message, source=source)
        self.kind = kind


class DecompressionBombError(ImageError):
    """The header claims more pixels than is safe to decode."""

    def __init__(self, message: str, *, source: str = "", pixels: int = 0, limit: int = 0) -> None:
        super().__init__(message, source=source)
        self.pixels = pixels
        self.limit = limit


class ImageTooLargeError(ImageError):
    """The encoded image is over the byte limit."""

    def __init__(self, message: str, *, source: str = "", size: int = 0, limit: int = 0) -> None:
        super().__init__(message, source=source)
        self.size = size
        self.limit = limit


class UnsupportedImageError(ImageError):
    """A real file of a kind the service does not accept (SVG, PDF, HEIC without a plugin...)."""

    def __init__(self, message: str, *, source: str = "", kind: str = "") -> None:
        super().__init__(message, source=source)
        self.kind = kind


class DataURLError(ImageError):
    """A ``data:`` URL is malformed (no comma, bad base64, not an image MIME type...)."""


class URLSchemeError(ImageError):
    """A URL whose scheme is not http, https or data (``file://``, ``javascript:``...)."""

    def __init__(self, message: str, *, source: str = "", scheme: str = "") -> None:
        super().__init__(message, source=source)
        self.scheme = scheme


# --- documents (PDF) --------------------------------------------------------------------------


class DocumentError(VizlabError, ValueError):
    """A document (PDF) could not be used. ``source`` names the input (file name or a short repr)."""

    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(message)
        self.source = source


class EncryptedDocumentError(DocumentError):
    """The PDF is encrypted (needs a password): the service cannot read it either."""


class CorruptDocumentError(DocumentError):
    """The bytes start like a PDF (or claim to be one) but cannot be parsed: truncated or damaged."""


class EmptyDocumentError(DocumentError):
    """The PDF parses but has no pages."""


class DocumentTooLargeError(DocumentError):
    """Over a page or byte limit. ``what`` is "pages" or "bytes"; ``size`` and ``limit`` in those units."""

    def __init__(self, message: str, *, source: str = "", what: str = "", size: int = 0, limit: int = 0) -> None:
        super().__init__(message, source=source)
        self.what = what
        self.size = size
        self.limit = limit


class DocumentBombError(DocumentError):
    """A page whose size is absurd (rendering it would need more pixels than is safe)."""

    def __init__(self, message: str, *, source: str = "", page: int = 0, pixels: int = 0, limit: int = 0) -> None:
        super().__init__(message, source=source)
        self.page = page
        self.pixels = pixels
        self.limit = limit


class UnsupportedDocumentError(DocumentError):
    """A file type the chosen provider / API does not take as a document (``kind``: "docx"...)."""

    def __init__(self, message: str, *, source: str = "", kind: str = "", provider: str = "") -> None:
        super().__init__(message, source=source)
        self.kind = kind
        self.provider = provider


# --- tokens -----------------------------------------------------------------------------------


class UnknownModelError(VizlabError, KeyError):
    """A model name with no token rule or price. ``known`` lists the names that work."""

    def __init__(self, message: str, *, model: str = "", known: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.model = model
        self.known = sorted(known)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnknownDetailError(VizlabError, ValueError):
    """A ``detail`` value other than low, high or auto."""

    def __init__(self, message: str, *, detail: object = None) -> None:
        super().__init__(message)
        self.detail = detail


# --- conversation -----------------------------------------------------------------------------


class ConversationError(VizlabError):
    """A conversation cannot be built, sent, saved or loaded as asked."""


class TooManyImagesError(ConversationError, ValueError):
    """More images in one request than the limit allows."""

    def __init__(self, message: str, *, count: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.count = count
        self.limit = limit


# --- client and backends ----------------------------------------------------------------------


class ConfigurationError(VizlabError):
    """vizlab could not work out which backend to use, or how to authenticate to it."""


class APIError(VizlabError):
    """A backend answered with an error. ``status`` is the HTTP status (None if none came back)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body


class AuthenticationError(APIError):
    """401/403: the key or token was refused, or the endpoint belongs to another resource."""


class DeploymentNotFoundError(APIError):
    """404: no deployment (or model) of that name at this endpoint."""

    def __init__(self, message: str, *, deployment: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.deployment = deployment


class BadRequestError(APIError):
    """400: the service refused the request as malformed."""


class InvalidImageRequestError(BadRequestError):
    """400: the service refused an image (format, size, count, unreachable URL)."""


class ContentFilterError(BadRequestError):
    """400 ``content_filter``: the prompt was blocked. ``categories`` lists what triggered it."""

    def __init__(self, message: str, *, categories: Iterable[str] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.categories = list(categories)


class RateLimitError(APIError):
    """429 after all retries. ``retry_after`` is the last delay the service asked for, in s."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RequestTimeoutError(APIError):
    """No answer within the timeout."""


class BackendUnavailableError(APIError):
    """The backend could not be reached at all (refused, DNS, closed)."""


class UnsupportedParameterError(BadRequestError):
    """A request parameter the model refuses (at this reasoning effort); raised before sending, or
    mapped from the service's 400 ``unsupported_parameter`` / ``unsupported_value``.

    ``param`` names the parameter, ``model`` the registry family, ``effort`` the reasoning effort.
    """

    def __init__(self, message: str, *, param: str, model: str, effort: str | None = None, **kw: Any) -> None:
        kw.setdefault("code", "unsupported_parameter")
        super().__init__(message, **kw)
        self.param = param
        self.model = model
        self.effort = effort
