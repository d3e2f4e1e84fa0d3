"""Retention policies: which stored images the next request carries, and at what detail.

Stored images are never thrown away; a policy only decides what a request sends. ``keep_all``
re-sends everything (the model sees every image; cost grows with the square of the image turns),
``keep_last:n`` drops older images, ``low_detail_older:n`` re-sends older ones at low detail, and
``placeholder:n`` replaces them with a short text note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from vizlab.conversation.turns import Turn
from vizlab.errors import ConversationError

__all__ = ['ImageAction', 'RetentionPolicy', 'KeepAll', 'KeepLast', 'LowDetailOlder', 'Placeholder', 'RetentionLike', 'parse_retention']

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

    @property
    def window(self) -> int | None:
        """How many of the latest image turns the plan treats apart from older ones (0: none);
        None when unknown (a policy that only implements :meth:`plan`). With a window,
        :meth:`turn_plan` gives each turn's actions, and totals are summed in one pass."""
        return None

    def turn_plan(self, turn: Turn, recent: bool) -> list[ImageAction]:
        """The actions of one turn, as one of the latest :attr:`window` image turns or older."""
        raise NotImplementedError

    def plan(self, turns: Sequence[Turn]) -> list[list[ImageAction]]:
        """One list of actions per turn, in the turn's image order."""
        window = self.window
        if window is None:
            raise NotImplementedError
        recent = self.recent_image_turns(turns, window)
        return [self.turn_plan(t, i in recent) for i, t in enumerate(turns)]

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

    @property
    def window(self) -> int:
        return 0

    def turn_plan(self, turn: Turn, recent: bool) -> list[ImageAction]:
        return [ImageAction(k, "send", turn.detail) for k in turn.images]


@dataclass(frozen=True)
class KeepLast(RetentionPolicy):
    """Send only the images of the last ``n`` image turns; drop older images, keep their text."""

    n: int = 1

    def __post_init__(self) -> None:
        _check_n("KeepLast", self.n)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"keep_last:{self.n}"

    @property
    def window(self) -> int:
        return self.n

    def turn_plan(self, turn: Turn, recent: bool) -> list[ImageAction]:
        return [ImageAction(k, "send" if recent else "drop", turn.detail) for k in turn.images]


@dataclass(frozen=True)
class LowDetailOlder(RetentionPolicy):
    """Re-send images older than the last ``n`` image turns at ``detail="low"``."""

    n: int = 1

    def __post_init__(self) -> None:
        _check_n("LowDetailOlder", self.n)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"low_detail_older:{self.n}"

    @property
    def window(self) -> int:
        return self.n

    def turn_plan(self, turn: Turn, recent: bool) -> list[ImageAction]:
        return [ImageAction(k, "send", turn.detail if recent else "low") for k in turn.images]


@dataclass(frozen=True)
class Placeholder(RetentionPolicy):
    """Replace images older than the last ``n`` image turns with a short text part."""

    n: int = 1

    def __post_init__(self) -> None:
        _check_n("Placeholder", self.n)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"placeholder:{self.n}"

    @property
    def window(self) -> int:
        return self.n

    def turn_plan(self, turn: Turn, recent: bool) -> list[ImageAction]:
        return [ImageAction(k, "send" if recent else "placeholder", turn.detail) for k in turn.images]


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
