"""Turns and retention policies: what one chat message is, and what the next request re-sends.

Chat Completions keeps nothing between calls, so every request re-sends the history and, for
the model to still *see* an earlier image, that image again. An image is paid for on every
request that carries it, and the service caps the images in one request (10 on Azure), so a
policy decides what a request carries. Stored images are never thrown away; a policy only
plans, per turn, which images are sent, downgraded, replaced or dropped.

Trade-offs of each policy (the strings :func:`parse_retention` reads):

``keep_all``
    Re-send every image every turn. The model can compare the newest photo with the first;
    tokens grow fastest and the image limit arrives soonest.
``keep_last:n``
    Send only the images of the last *n* user turns that had images; older images are dropped,
    their text kept. Cheapest, but the model no longer sees old images and, asked about one,
    may answer from its earlier words or guess.
``low_detail_older:n``
    Re-send older images at ``detail="low"`` (a 512x512 view, 85 tokens each on gpt-4o instead
    of the full tile count). The model still sees them roughly; small text is lost. They still
    count toward the per-request image limit.
``placeholder:n``
    Replace older images with a short text part (``[image: photo.jpg, 1024x768, sent
    earlier]``): as cheap as ``keep_last`` plus a few text tokens, and the model knows an image
    was there, so it can say it can no longer see it instead of guessing.

Text is always kept. This module is the bottom of the conversation layers: it imports only
:mod:`vizlab.errors`; :mod:`vizlab.conversation` re-exports everything here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Union

from vizlab.errors import ConversationError, UnknownDetailError

__all__ = [
    "DETAILS",
    "now_iso",
    "check_detail",
    "Turn",
    "ImageAction",
    "RetentionPolicy",
    "KeepAll",
    "KeepLast",
    "LowDetailOlder",
    "Placeholder",
    "RetentionLike",
    "parse_retention",
]


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


@dataclass(frozen=True)
class ImageAction:
    """What one request does with one image of one turn.

    ``how`` is ``"send"`` (as an image part at ``detail``), ``"placeholder"`` (a short text
    part instead) or ``"drop"`` (nothing).
    """

    key: str
    how: str
    detail: str


class RetentionPolicy:
    """Maps the turn list to what the next request sends of each turn's images.

    Subclasses set :attr:`name` (the string :func:`parse_retention` reads back) and implement
    :meth:`plan`. Text is always kept; only images are dropped, downgraded or replaced.
    """

    name: str = "retention"

    def plan(self, turns: Sequence[Turn]) -> list[list[ImageAction]]:
        """One list of actions per turn, in the turn's image order."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def recent_image_turns(turns: Sequence[Turn], n: int) -> set[int]:
        """Indices of the last ``n`` user turns that had images.

        >>> t = [Turn("user", "a", ["k1"]), Turn("assistant", "b"), Turn("user", "c", ["k2"])]
        >>> sorted(RetentionPolicy.recent_image_turns(t, 1))
        [2]
        """
        with_images = [i for i, t in enumerate(turns) if t.role == "user" and t.images]
        return set(with_images[-n:]) if n > 0 else set()


def _check_n(cls_name: str, n: object) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConversationError(
            f"{cls_name}(n={n!r}): n must be a whole number >= 1 (the number of recent image "
            "turns sent in full; the newest turn's images are always sent)."
        )


@dataclass(frozen=True)
class KeepAll(RetentionPolicy):
    """Re-send every image every turn: what the API needs for the model to still see them."""

    @property
    def name(self) -> str:  # type: ignore[override]
        return "keep_all"

    def plan(self, turns: Sequence[Turn]) -> list[list[ImageAction]]:
        return [[ImageAction(k, "send", t.detail) for k in t.images] for t in turns]


@dataclass(frozen=True)
class KeepLast(RetentionPolicy):
    """Send only the images of the last ``n`` image turns; drop older images, keep their text."""

    n: int = 1

    def __post_init__(self) -> None:
        _check_n("KeepLast", self.n)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"keep_last:{self.n}"

    def plan(self, turns: Sequence[Turn]) -> list[list[ImageAction]]:
        recent = self.recent_image_turns(turns, self.n)
        return [
            [ImageAction(k, "send" if i in recent else "drop", t.detail) for k in t.images]
            for i, t in enumerate(turns)
        ]


@dataclass(frozen=True)
class LowDetailOlder(RetentionPolicy):
    """Re-send images older than the last ``n`` image turns at ``detail="low"``."""

    n: int = 1

    def __post_init__(self) -> None:
        _check_n("LowDetailOlder", self.n)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"low_detail_older:{self.n}"

    def plan(self, turns: Sequence[Turn]) -> list[list[ImageAction]]:
        recent = self.recent_image_turns(turns, self.n)
        return [
            [ImageAction(k, "send", t.detail if i in recent else "low") for k in t.images]
            for i, t in enumerate(turns)
        ]


@dataclass(frozen=True)
class Placeholder(RetentionPolicy):
    """Replace images older than the last ``n`` image turns with a short text part."""

    n: int = 1

    def __post_init__(self) -> None:
        _check_n("Placeholder", self.n)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"placeholder:{self.n}"

    def plan(self, turns: Sequence[Turn]) -> list[list[ImageAction]]:
        recent = self.recent_image_turns(turns, self.n)
        return [
            [ImageAction(k, "send" if i in recent else "placeholder", t.detail) for k in t.images]
            for i, t in enumerate(turns)
        ]


_POLICIES: dict[str, type[RetentionPolicy]] = {
    "keep_all": KeepAll,
    "keep_last": KeepLast,
    "low_detail_older": LowDetailOlder,
    "placeholder": Placeholder,
}


RetentionLike = Union[RetentionPolicy, str]


def parse_retention(spec: RetentionLike) -> RetentionPolicy:
    """A policy from a policy or a string such as ``"keep_last:2"``.

    >>> parse_retention("low_detail_older:1")
    LowDetailOlder(n=1)
    >>> parse_retention("keep_all").name
    'keep_all'
    """
    if isinstance(spec, RetentionPolicy):
        return spec
    if not isinstance(spec, str):
        raise ConversationError(
            f"retention={spec!r} is not a retention policy; pass a RetentionPolicy or a string "
            "like 'keep_all', 'keep_last:2', 'low_detail_older:1' or 'placeholder:1'."
        )
    name, _, arg = spec.strip().lower().replace("-", "_").partition(":")
    cls = _POLICIES.get(name)
    if cls is None:
        raise ConversationError(
            f"retention={spec!r} is not a known policy; use one of 'keep_all', 'keep_last:N', "
            "'low_detail_older:N' or 'placeholder:N'."
        )
    if cls is KeepAll:
        if arg:
            raise ConversationError(f"retention={spec!r}: keep_all takes no number; use 'keep_all'.")
        return KeepAll()
    if not arg:
        return cls()
    try:
        n = int(arg)
    except ValueError:
        raise ConversationError(
            f"retention={spec!r}: {arg!r} is not a whole number; write e.g. '{name}:2'."
        ) from None
    return cls(n)  # type: ignore[call-arg]
