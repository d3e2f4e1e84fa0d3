"""Conversation state for a stateless chat API: turns, images stored once, limits, retention.

Submodules: :mod:`.core` (:class:`Conversation`), :mod:`.turns`, :mod:`.retention` (what each
request re-sends), :mod:`.storage` (the JSON file, atomic saves, URL redaction), :mod:`.costs`
(per-request estimates and totals), :mod:`.formats` (the 2023 preview shape and today's).
"""

from __future__ import annotations

from vizlab.conversation.core import DEFAULT_MAX_IMAGES, Conversation
from vizlab.conversation.formats import convert_messages
from vizlab.conversation.retention import (
    ImageAction,
    KeepAll,
    KeepLast,
    LowDetailOlder,
    Placeholder,
    RetentionPolicy,
    parse_retention,
)
from vizlab.conversation.storage import FILE_FORMAT, FILE_VERSION
from vizlab.conversation.turns import DETAILS, Turn

__all__ = [
    "DEFAULT_MAX_IMAGES",
    "FILE_FORMAT",
    "FILE_VERSION",
    "DETAILS",
    "Turn",
    "ImageAction",
    "RetentionPolicy",
    "KeepAll",
    "KeepLast",
    "LowDetailOlder",
    "Placeholder",
    "parse_retention",
    "Conversation",
    "convert_messages",
]
