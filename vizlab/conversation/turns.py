"""A conversation's record: one :class:`Turn` per message, with its images by reference.

Images are stored once per conversation (content-addressed); a turn names them by key, with the
detail it asked for. Timestamps are ISO 8601 in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from vizlab.errors import UnknownDetailError

__all__ = ['DETAILS', 'now_iso', 'check_detail', 'Turn']

DETAILS = ("low", "high", "auto")


def now_iso() -> str:
    """The current UTC time to the second, ISO 8601: when a turn was made or a file saved."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_detail(detail: object, where: str = "detail") -> str:
    """``detail`` if it is one of :data:`DETAILS`, else :class:`UnknownDetailError` naming ``where``."""
    if detail not in DETAILS:
        raise UnknownDetailError(
            f"{where}={detail!r} is not a detail level; use one of 'low', 'high' or 'auto'.",
            detail=detail,
        )
    return str(detail)


@dataclass
class Turn:
    """One message of the chat: who said it, its text and the keys of its images."""

    role: str  # "user" | "assistant"
    text: str
    images: list[str] = field(default_factory=list)  # keys into Conversation.images / .urls
    detail: str = "auto"  # "low" | "high" | "auto" for this turn's images
    meta: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "text": self.text,
            "images": list(self.images),
            "detail": self.detail,
            "meta": self.meta,
            "created": self.created,
        }
