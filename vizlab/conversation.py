"""Conversation state for a stateless chat API: turns, images stored once, limits, retention.

Why the whole history is re-sent
--------------------------------
Chat Completions keeps nothing between calls: "The Chat Completions API, unlike the Assistants
API, is not stateful ... If you want to pass the same image to the model multiple times, you
have to pass the image each time you make a request to the API" (Azure, 'How to use the GPT-4
model with Vision', 2023-11-06, seeds/02). The model sees only what one request carries, so
every request re-sends the system message, every earlier question and answer and, for the model
to still *see* an earlier image, that image again. A :class:`Conversation` is the state that
makes this easy: :meth:`Conversation.messages` is the whole list for the next request.

What that costs
---------------
An image is paid for on every request that carries it. On gpt-4o a 1024x1024 photo at
``detail="high"`` is 765 prompt tokens and at ``"low"`` 85 (the rule and its source live in
:mod:`vizlab.tokens`). Ask about a new photo in each of five turns and request *k* carries *k*
photos: 1+2+3+4+5 = 15 photos, 11,475 image tokens, for five questions. Cost grows with the
square of the number of image turns. The service also caps the images in one request (10 per
request: Azure 'Use GPT-4 Turbo with Vision' how-to, 2024-08-21, seeds/03; repeated in the
2025 'vision-enabled chat models' how-to, seeds/05), and re-sent images count, so the eleventh
image of a chat fails even if every turn had only one.

Retention policies: what the next request sends
-----------------------------------------------
Stored images are never thrown away; a policy only decides what a request carries.

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

Content format
--------------
``messages(format="current")`` gives today's parts (``{"type": "text"}`` and ``{"type":
"image_url", "image_url": {"url", "detail"}}``); ``format="preview2023"`` gives the 2023
preview shape, a content list of strings and ``{"image": "<base64>"}`` objects (seeds/01,
api-version 2023-08-01-preview), which has no ``detail`` and no http(s) URLs.
:func:`convert_messages` converts a message list either way; ``detail`` does not survive a trip
through the preview format (it comes back as ``"auto"``).

Saving
------
A conversation holds state only; :meth:`Conversation.save` writes one JSON file (each image
once, base64) atomically, and ``autosave=path`` saves after every change so that a killed
kernel loses nothing: ``Conversation.load(path)`` gives it back.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import glob
import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from vizlab.errors import (
    ConversationError,
    TooManyImagesError,
    UnknownDetailError,
    UnknownModelError,
    VizlabError,
    redact,
)

if TYPE_CHECKING:
    from vizlab.images import EncodedImage, Fit, Source
    from vizlab.pricing import PriceTable
    from vizlab.tokens import RequestEstimate

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

# 10 images per request: Azure 'Use GPT-4 Turbo with Vision' how-to, 2024-08-21 (seeds/03), and
# Azure 'Use vision-enabled chat models' how-to, 2025 (seeds/05). Some deployments allow more
# (50 is reported for newer models; not in our seeds): pass max_images= after checking yours.
DEFAULT_MAX_IMAGES = 10

DETAILS = ("low", "high", "auto")
FORMATS = ("current", "preview2023")
FILE_FORMAT = "vizlab.conversation"
FILE_VERSION = 1

_URL_SCHEMES = ("http://", "https://")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_detail(detail: object, where: str = "detail") -> str:
    if detail not in DETAILS:
        raise UnknownDetailError(
            f"{where}={detail!r} is not a detail level; use one of 'low', 'high' or 'auto'.",
            detail=detail,
        )
    return str(detail)


def _url_key(url: str) -> str:
    """Key of an http(s) image URL in the URL map: SHA-256 of the URL string."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _is_url(source: object) -> bool:
    return isinstance(source, str) and source.lower().startswith(_URL_SCHEMES)


def _url_label(url: str) -> str:
    """A short name for an image URL: its last path segment, never its query (SAS tokens)."""
    parts = urlsplit(url)
    tail = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return tail or parts.netloc or "image URL"


# Query parameters that sign or authorise a URL; a saved file never holds them. Azure Storage
# SAS: sv, ss, srt, sp, se, st, spr, sip, si, sr, sig, skoid, sktid, skt, ske, sks, skv, saoid,
# suoid, scid, sdd, ses, rscc, rscd, rsce, rscl, rsct ("Create a service SAS", learn.microsoft.com
# /rest/api/storageservices/create-service-sas, and "Create an account SAS", read 2026-12-02 from
# memory of the published table); AWS S3 presigned URLs (X-Amz-*) and Google Cloud Storage signed
# URLs (X-Goog-*, GoogleAccessId, Signature, Expires); CloudFront (Policy, Signature, Key-Pair-Id).
# Beyond those, any name that says key, token, secret, password, signature or credential.
_SAS_PARAMS = frozenset(
    "sv ss srt sp se st spr sip si sr sig skoid sktid skt ske sks skv saoid suoid scid sdd ses "
    "rscc rscd rsce rscl rsct googleaccessid signature expires policy key-pair-id".split()
)
_SECRET_PARAM = re.compile(
    r"^(x-amz-|x-goog-)|key|token|secret|passw|pwd|sig|credential|auth|session", re.IGNORECASE
)


def _unsigned_url(url: str) -> tuple[str, list[str]]:
    """``url`` without user info and without its signing / key-like query parameters, and the
    names of what was removed (empty: nothing secret, the URL is returned unchanged).

    >>> _unsigned_url("https://acct.blob.core.windows.net/c/cat.png?sv=2024-11-04&sp=r&sig=SECRET&w=200")
    ('https://acct.blob.core.windows.net/c/cat.png?w=200', ['sv', 'sp', 'sig'])
    """
    parts = urlsplit(url)
    removed: list[str] = []
    netloc = parts.netloc
    if "@" in netloc:
        netloc = netloc.rsplit("@", 1)[1]
        removed.append("user info")
    kept = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.lower() in _SAS_PARAMS or _SECRET_PARAM.search(name):
            removed.append(name)
        else:
            kept.append((name, value))
    if not removed:
        return url, []
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(kept), parts.fragment)), removed


def _describe_unsigned(url: str) -> str:
    """An unsigned URL as a message shows it: scheme, host and path."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _clean_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files that a save killed mid-write (kill -9, power loss) left beside
    ``path``; returns them. A temp file names its writer's PID: one whose process is gone is
    stale; one with no readable PID (or our own PID, from a save interrupted earlier) is stale
    once it is older than a minute, since a save takes far less."""
    removed: list[Path] = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        match = re.fullmatch(rf"\.{re.escape(path.name)}\.(\d+)\..*\.tmp", tmp.name)
        pid = int(match.group(1)) if match else None
        try:
            stale = (pid is not None and pid != os.getpid() and not _pid_alive(pid)) or (
                time.time() - tmp.stat().st_mtime > 60
            )
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep the file
    return True


@dataclass
class Turn:
    """One message of the chat: who said it, its text and the keys of its images."""

    role: str  # "user" | "assistant"
    text: str
    images: list[str] = field(default_factory=list)  # keys into Conversation.images / .urls
    detail: str = "auto"  # "low" | "high" | "auto" for this turn's images
    meta: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "text": self.text,
            "images": list(self.images),
            "detail": self.detail,
            "meta": self.meta,
            "created": self.created,
        }


# --- retention policies -----------------------------------------------------------------------


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


# --- JSON-safe metadata -----------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses and SDK objects become dicts, tuples lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        total = getattr(type(value), "total", None)  # Cost.total is a property worth keeping
        if isinstance(total, property) and "total" not in out:
            out["total"] = _jsonable(getattr(value, "total"))
        return out
    for method in ("to_dict", "model_dump"):  # vizlab objects, pydantic (openai SDK) objects
        fn = getattr(value, method, None)
        if callable(fn):
            return _jsonable(fn())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def _redacted(value: Any) -> Any:
    """``value`` with every string passed through :func:`vizlab.errors.redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- the conversation -------------------------------------------------------------------------


class Conversation:
    """The state of one chat: system message, turns, images stored once, limits, retention.

    Pure: no HTTP, no widgets. A client sends :meth:`messages` and records the reply with
    :meth:`add_assistant`; a widget only wires this object to controls.

    >>> conv = Conversation("Be brief.")
    >>> _ = conv.add_user("Hello")
    >>> conv.messages()
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hello'}]
    """

    def __init__(
        self,
        system: str | None = None,
        *,
        model: str = "gpt-4o",
        max_images: int = DEFAULT_MAX_IMAGES,
        max_image_bytes: int | None = None,
        retention: RetentionLike = "keep_all",
        autosave: str | os.PathLike[str] | None = None,
        fit: Fit = None,
    ) -> None:
        if not isinstance(max_images, int) or isinstance(max_images, bool) or max_images < 1:
            raise ConversationError(
                f"max_images={max_images!r} must be a whole number >= 1 (the service's limit of "
                f"images per request; {DEFAULT_MAX_IMAGES} on Azure, seeds/03)."
            )
        _check_fit(fit)
        self._system = system
        self.model = model
        self.max_images = max_images
        self.max_image_bytes = max_image_bytes
        self._retention = parse_retention(retention)
        self.fit = fit
        self.turns: list[Turn] = []
        self.images: dict[str, EncodedImage] = {}
        self.urls: dict[str, str] = {}
        # Image URLs loaded from a file without their signature (SAS tokens never reach disk):
        # key -> the unsigned URL. Sending one fails until resupply_url() gives the full URL.
        self.urls_to_resupply: dict[str, str] = {}
        self.autosave: Path | None = None
        if autosave is not None:
            target = Path(autosave)
            _clean_stale_temps(target)
            if target.exists():  # re-running the cell after a kernel kill must not wipe the chat
                raise ConversationError(
                    f"autosave={os.fspath(target)!r} already exists and may hold an earlier "
                    "conversation. Resume it with Conversation.open(path) or "
                    "Conversation.load(path, autosave=True), or pass a new path."
                )
            self.autosave = target
            self._autosave_now()

    @classmethod
    def open(cls, path: str | os.PathLike[str], system: str | None = None, **settings: Any) -> Conversation:
        """The conversation autosaved at ``path`` if the file exists, else a new one saving there.

        The notebook idiom: re-running ``conv = Conversation.open("chat.json", "Be brief.")``
        after a kernel restart resumes the chat instead of starting over. ``system`` and
        ``settings`` apply only when a new conversation is created.
        """
        if Path(path).exists():
            return cls.load(path, autosave=True)
        return cls(system, autosave=path, **settings)

    # -- settings that autosave --

    @property
    def system(self) -> str | None:
        """The system message sent first in every request (None or "" sends none)."""
        return self._system

    @system.setter
    def system(self, value: str | None) -> None:
        self._system = value
        self._autosave_now()

    @property
    def retention(self) -> RetentionPolicy:
        """The policy :meth:`messages` uses by default; assign a policy or a string."""
        return self._retention

    @retention.setter
    def retention(self, value: RetentionLike) -> None:
        self._retention = parse_retention(value)
        self._autosave_now()

    # -- mutations --

    def add_user(
        self,
        text: str,
        images: Iterable[Any] | Source = (),
        *,
        detail: str = "auto",
        meta: dict[str, Any] | None = None,
    ) -> Turn:
        """Append a user turn; every check runs before anything changes.

        ``images`` takes anything :func:`vizlab.images.encode_image` does (paths, bytes, PIL
        images, FileUpload records, data URLs), :class:`~vizlab.images.EncodedImage` objects and
        http(s) URLs (kept as URLs). A single source is accepted without a list around it.
        ``meta`` is stored on the turn as JSON data. Raises :class:`UnknownDetailError`,
        :class:`TooManyImagesError` (this turn alone, or the next request under the retention
        policy) or an :class:`~vizlab.errors.ImageError`.
        """
        if not isinstance(text, str):
            raise ConversationError(
                f"add_user(text={text!r}): text must be a str, got {type(text).__name__}. Pass the "
                "question as a string, e.g. add_user(str(value), images) or add_user('Describe this image', images)."
            )
        if meta is not None and not isinstance(meta, dict):
            raise ConversationError(
                f"add_user(meta={meta!r:.60}): meta must be a dict of JSON data, e.g. meta={{'source': 'upload'}}."
            )
        detail = _check_detail(detail)
        sources = self._as_source_list(images)
        if len(sources) > self.max_images:
            raise TooManyImagesError(
                f"add_user got {len(sources)} images; the limit is {self.max_images} images per "
                "request. Send fewer images in this turn, or raise the limit with max_images= if "
                "your deployment allows more.",
                count=len(sources),
                limit=self.max_images,
            )
        new_images: dict[str, EncodedImage] = {}
        new_urls: dict[str, str] = {}
        keys: list[str] = []
        for source in sources:
            if _is_url(source):
                key = _url_key(source)
                new_urls[key] = source
            else:
                image = self._encode(source)
                key = image.sha256
                new_images.setdefault(key, image)
            keys.append(key)
        turn = Turn("user", text, keys, detail, _jsonable(dict(meta or {})))
        sent = self._count_sent(self.turns + [turn], self._retention)
        if sent > self.max_images:
            raise TooManyImagesError(
                f"The next request would send {sent} images (this turn's {len(keys)} plus those "
                f"re-sent from earlier turns under retention={self._retention.name!r}); the limit "
                f"is {self.max_images} per request. Send fewer old images with a retention "
                "policy, e.g. conv.retention = 'keep_last:2' or 'placeholder:1', start a new chat "
                "with clear(), or raise the limit with max_images= if your deployment allows more.",
                count=sent,
                limit=self.max_images,
            )
        for key, image in new_images.items():
            self.images.setdefault(key, image)  # first name wins for identical bytes
        for key, url in new_urls.items():
            self.urls.setdefault(key, url)
        self.turns.append(turn)
        self._autosave_now()
        return turn

    def add_assistant(self, text: str, **meta: Any) -> Turn:
        """Append the model's reply; ``meta`` (usage, estimate, cost...) is stored as JSON data.

        Usual keys: ``finish_reason``, ``usage`` (prompt/completion/total tokens), ``estimate``,
        ``latency_s``, ``model``, ``cost``. Dataclasses and SDK objects are turned into dicts.
        """
        if not isinstance(text, str):
            raise ConversationError(
                f"add_assistant(text={text!r}): text must be a str, got {type(text).__name__}. Pass the reply's "
                "text, e.g. add_assistant(reply.text)."
            )
        turn = Turn("assistant", text, [], "auto", _jsonable(meta))
        self.turns.append(turn)
        self._autosave_now()
        return turn

    def pop_last(self) -> Turn:
        """Remove and return the last turn (undo); images no other turn uses leave the store."""
        if not self.turns:
            raise ConversationError("pop_last(): the conversation has no turns to undo.")
        turn = self.turns.pop()
        self._prune_images()
        self._autosave_now()
        return turn

    def clear(self) -> None:
        """Start a new chat: drop turns and images, keep the system message and settings."""
        self.turns.clear()
        self.images.clear()
        self.urls.clear()
        self.urls_to_resupply.clear()
        self._autosave_now()

    # -- requests --

    def messages(self, *, format: str = "current", retention: RetentionLike | None = None) -> list[dict[str, Any]]:
        """The whole message list for the next request, under ``retention`` (default: own policy).

        Raises :class:`TooManyImagesError` when the images it would send exceed ``max_images``.
        """
        policy = self._retention if retention is None else parse_retention(retention)
        return self._build(self.turns, policy, format, check_limit=True)

    def estimate_next(self, *, max_tokens: int | None = None, prices: PriceTable | None = None) -> RequestEstimate:
        """Token (and cost) estimate of :meth:`messages`, from :func:`vizlab.tokens.estimate_request`."""
        from vizlab.tokens import estimate_request

        return estimate_request(self.messages(), model=self.model, max_tokens=max_tokens, prices=prices)

    def cumulative_tokens(self, retention: RetentionLike | None = None, *, running_total: bool = False) -> list[int]:
        """Estimated prompt tokens of each successive request, one per user turn, under ``retention``.

        Request *k* carries the history up to and including user turn *k*, so this shows how a
        policy would have grown the prompt on this same conversation without re-running it.
        With ``running_total=True`` each entry is the sum so far (what the chat has cost).
        The per-request image limit is not enforced here, so policies can be compared freely.
        """
        policy = self._retention if retention is None else parse_retention(retention)
        out = [est.prompt_tokens for _, _, est in self._request_estimates(policy)]
        if running_total:
            total = 0
            for i, tokens in enumerate(out):
                total += tokens
                out[i] = total
        return out

    def cost_by_turn(self, *, prices: PriceTable | None = None) -> list[dict[str, Any]]:
        """One row per user turn: what its request cost, estimated and (when known) reported.

        Keys: ``turn`` (1-based user turn), ``index`` (in :attr:`turns`), ``images_sent``,
        ``estimated_prompt_tokens``, ``estimated_image_tokens``, ``reported_prompt_tokens`` and
        ``reported_completion_tokens`` (from the reply's ``usage``, else None),
        ``prompt_tokens``/``completion_tokens`` (reported if known, else estimated; completion
        estimated as 0), ``source`` ("reported" or "estimated"), ``cost`` in USD (the reply's
        recorded ``cost`` if any, else the reported usage priced by ``prices`` (default
        :data:`vizlab.pricing.DEFAULT_PRICES`) at this conversation's model, else the estimate's
        cost; None when the model has no price), and running totals ``cumulative_prompt_tokens``,
        ``cumulative_tokens`` and ``cumulative_cost``.
        """
        from vizlab import pricing

        table = pricing.DEFAULT_PRICES if prices is None else prices
        rows: list[dict[str, Any]] = []
        cum_prompt = cum_total = 0
        cum_cost: float | None = 0.0
        requests = self._request_estimates(self._retention, prices=prices)
        for number, (index, sent, est) in enumerate(requests, start=1):
            reply = self._reply_to(index)
            usage = reply.meta.get("usage") if reply is not None else None
            rep_prompt = _usage_field(usage, "prompt_tokens", "input_tokens")
            rep_completion = _usage_field(usage, "completion_tokens", "output_tokens")
            reported = rep_prompt is not None
            prompt = rep_prompt if reported and rep_prompt is not None else est.prompt_tokens
            completion = (rep_completion or 0) if reported else 0
            cost = _cost_total(reply.meta.get("cost")) if reply is not None else None
            if cost is None and reported:
                try:
                    cost = table.cost(prompt, completion, model=self.model).total
                except UnknownModelError:
                    cost = None
            elif cost is None:
                cost = _cost_total(est.cost)
            cum_prompt += prompt
            cum_total += prompt + completion
            cum_cost = None if cum_cost is None or cost is None else cum_cost + cost
            rows.append(
                {
                    "turn": number,
                    "index": index,
                    "images_sent": sent,
                    "estimated_prompt_tokens": est.prompt_tokens,
                    "estimated_image_tokens": est.image_tokens,
                    "reported_prompt_tokens": rep_prompt,
                    "reported_completion_tokens": rep_completion,
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "source": "reported" if reported else "estimated",
                    "cost": cost,
                    "cumulative_prompt_tokens": cum_prompt,
                    "cumulative_tokens": cum_total,
                    "cumulative_cost": cum_cost,
                }
            )
        return rows

    # -- files --

    def to_dict(self) -> dict[str, Any]:
        """The JSON document :meth:`save` writes (meta redacted, each image once as base64)."""
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "saved": _now(),
            "system": self._system,
            "model": self.model,
            "settings": {
                "max_images": self.max_images,
                "max_image_bytes": self.max_image_bytes,
                "retention": self._retention.name,
                "fit": list(self.fit) if isinstance(self.fit, tuple) else self.fit,
            },
            "turns": [{**t.to_dict(), "meta": _redacted(_jsonable(t.meta))} for t in self.turns],
            "images": {
                key: {
                    "mime": img.mime,
                    "width": img.width,
                    "height": img.height,
                    "name": img.name,
                    "original_width": img.original_width,
                    "original_height": img.original_height,
                    "nbytes": img.nbytes,
                    "data": base64.b64encode(img.data).decode("ascii"),
                }
                for key, img in self.images.items()
            },
            "urls": {key: _unsigned_url(url)[0] for key, url in self.urls.items()},
            # keys whose URL was saved without its signature / key-like parameters
            "unsigned_urls": sorted(
                key for key, url in self.urls.items() if _unsigned_url(url)[1] or key in self.urls_to_resupply
            ),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the conversation to ``path`` as JSON, atomically; returns the path."""
        target = Path(path)
        text = json.dumps(self.to_dict(), indent=1, ensure_ascii=False)
        try:
            _atomic_write_text(target, text)
        except OSError as e:
            raise ConversationError(
                f"Could not save the conversation to {os.fspath(target)!r}: {e.strerror or e}. "
                "Check that the folder exists and is writable."
            ) from e
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, autosave: bool = False) -> Conversation:
        """Read a file :meth:`save` (or autosave) wrote; ``autosave=True`` keeps saving there."""
        source = Path(path)
        where = os.fspath(source)
        try:
            raw = source.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            raise ConversationError(f"No conversation file at {where!r}; check the path.") from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConversationError(f"Could not read the conversation file {where!r}: {e}.") from e
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConversationError(
                f"The conversation file {where!r} is damaged: not valid JSON ({e.msg} at line "
                f"{e.lineno}, column {e.colno}). Restore a backup or start a new Conversation."
            ) from e
        try:
            conv = cls._from_dict(doc, where)
        except VizlabError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as e:
            raise ConversationError(
                f"The conversation file {where!r} is damaged: {type(e).__name__}: {e}. "
                "Restore a backup or start a new Conversation."
            ) from e
        if autosave:
            conv.autosave = source
        _clean_stale_temps(source)
        if conv.urls_to_resupply:
            names = ", ".join(
                f"{_url_label(url)} ({_describe_unsigned(url)})" for url in conv.urls_to_resupply.values()
            )
            warnings.warn(
                f"{len(conv.urls_to_resupply)} image URL(s) in {where!r} were saved without their "
                f"signature or key parameters (SAS tokens are never written to disk): {names}. "
                "Re-supply each full URL with conv.resupply_url(url) before sending; until then "
                "messages() refuses to send them.",
                UserWarning,
                stacklevel=2,
            )
        return conv

    def resupply_url(self, url: str) -> list[str]:
        """Give back the full (signed) URL of an image loaded without its signature.

        ``url`` matches a stored image whose saved URL is ``url`` without its signing and
        key-like query parameters (a fresh SAS token for the same blob is fine). Returns the keys
        it replaced; raises ConversationError when no unsigned image has that address.
        """
        if not isinstance(url, str) or not _is_url(url):
            raise ConversationError(f"resupply_url() takes the image's full http(s) URL, got {url!r:.60}.")
        unsigned = _unsigned_url(url)[0]
        matches = [key for key, saved in self.urls_to_resupply.items() if saved == unsigned]
        if not matches:
            waiting = ", ".join(_url_label(u) for u in self.urls_to_resupply.values()) or "none"
            raise ConversationError(
                f"{_url_label(url)!r}: no image of this conversation is waiting for that URL (waiting: "
                f"{waiting}). Pass the same address with its query string (e.g. its SAS token)."
            )
        new_key = _url_key(url)
        for key in matches:
            del self.urls_to_resupply[key]
            del self.urls[key]
            for turn in self.turns:
                turn.images = [new_key if k == key else k for k in turn.images]
        self.urls[new_key] = url
        self._autosave_now()
        return matches

    def to_markdown(self, *, image_dir: str | os.PathLike[str] | None = None) -> str:
        """A readable transcript. With ``image_dir`` each stored image is written there once and
        linked as ``![name](image_dir/file)``; without it, a placeholder line names the image."""
        written: dict[str, str] = {}
        if image_dir is not None:
            folder = Path(image_dir)
            folder.mkdir(parents=True, exist_ok=True)
            for key, img in self.images.items():
                file = folder / f"{key[:16]}{_extension(img.mime)}"
                if not (file.exists() and file.read_bytes() == img.data):
                    file.write_bytes(img.data)
                written[key] = file.as_posix()
        lines = [f"# Conversation ({self.model}, retention {self._retention.name})", ""]
        if self._system:
            lines += ["**System:** " + self._system, ""]
        for turn in self.turns:
            lines += [f"### {turn.role.capitalize()} · {turn.created}", ""]
            if turn.text:
                lines += [turn.text, ""]
            for key in turn.images:
                if key in self.urls:
                    url = _unsigned_url(self.urls[key])[0]  # a transcript never holds a SAS token
                    lines.append(f"![{_url_label(url)}]({url})")
                elif key in written:
                    lines.append(f"![{self._image_label(key)}]({written[key]})")
                else:
                    img = self.images[key]
                    lines.append(
                        f"*[image: {self._image_label(key)}, {img.width}x{img.height}, "
                        f"{img.mime}, {_human_bytes(img.nbytes)}, detail {turn.detail}]*"
                    )
            if turn.images:
                lines.append("")
            if turn.role == "assistant" and turn.meta.get("usage"):
                usage = turn.meta["usage"]
                p = _usage_field(usage, "prompt_tokens")
                c = _usage_field(usage, "completion_tokens")
                lines += [f"<sub>usage: {p} prompt + {c} completion tokens</sub>", ""]
        return "\n".join(lines).rstrip() + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    # -- dunder --

    def __len__(self) -> int:
        return len(self.turns)

    def __repr__(self) -> str:
        turns, images = len(self.turns), len(self.images) + len(self.urls)
        return (
            f"<Conversation {turns} turn{'' if turns == 1 else 's'}, {images} image{'' if images == 1 else 's'} "
            f"stored, model={self.model!r}, retention={self._retention.name!r}>"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Conversation):
            return NotImplemented
        return (
            self._system == other._system
            and self.model == other.model
            and self.max_images == other.max_images
            and self.max_image_bytes == other.max_image_bytes
            and self._retention.name == other._retention.name
            and self.fit == other.fit
            and self.turns == other.turns
            and self.images == other.images
            and self.urls == other.urls
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    # -- internals --

    def _autosave_now(self) -> None:
        if self.autosave is not None:
            self.save(self.autosave)

    @staticmethod
    def _as_source_list(images: Any) -> list[Any]:
        """``images`` as a list; one bare source (a path, bytes, an upload record...) is wrapped."""
        if images is None:
            return []
        if isinstance(images, (str, bytes, bytearray, memoryview, dict, os.PathLike)):
            return [images]
        if not isinstance(images, Iterable) or hasattr(images, "getpixel"):  # PIL images
            return [images]
        return list(images)

    def _encode(self, source: Any) -> EncodedImage:
        from vizlab.images import DEFAULT_MAX_BYTES, encode_image

        limit = self.max_image_bytes if self.max_image_bytes is not None else DEFAULT_MAX_BYTES
        return encode_image(source, fit=self.fit, max_bytes=limit)

    @staticmethod
    def _count_sent(turns: Sequence[Turn], policy: RetentionPolicy) -> int:
        return sum(1 for actions in policy.plan(turns) for a in actions if a.how == "send")

    def _prune_images(self) -> None:
        used = {k for t in self.turns for k in t.images}
        for store in (self.images, self.urls, self.urls_to_resupply):
            for key in [k for k in store if k not in used]:
                del store[key]

    def _image_label(self, key: str) -> str:
        if key in self.urls:
            return _url_label(self.urls[key])
        return self.images[key].name or f"image {key[:8]}"

    def _placeholder_text(self, key: str) -> str:
        if key in self.urls:
            return f"[image: {_url_label(self.urls[key])}, sent earlier]"
        img = self.images[key]
        return f"[image: {self._image_label(key)}, {img.width}x{img.height}, sent earlier]"

    def _image_part(self, key: str, detail: str, fmt: str) -> dict[str, Any]:
        if key in self.urls:
            if fmt == "preview2023":
                raise ConversationError(
                    f"Image URL {_url_label(self.urls[key])!r} cannot be sent in the preview2023 "
                    "format, which takes only base64 images; use format='current', or add the "
                    "image as a file or bytes instead of a URL."
                )
            if key in self.urls_to_resupply:
                raise ConversationError(
                    f"Image URL {_url_label(self.urls[key])!r} was loaded without its signature (SAS "
                    "tokens are not saved), so the service could not fetch it. Give the full URL "
                    "back with conv.resupply_url(url), or remove that turn."
                )
            return {"type": "image_url", "image_url": {"url": self.urls[key], "detail": detail}}
        img = self.images[key]
        if fmt == "preview2023":
            return {"image": base64.b64encode(img.data).decode("ascii")}
        return img.part(detail)

    def _build(
        self,
        turns: Sequence[Turn],
        policy: RetentionPolicy,
        fmt: str,
        *,
        check_limit: bool,
        stored: list[list[tuple[str, str]]] | None = None,
        plan: list[list[ImageAction]] | None = None,
    ) -> list[dict[str, Any]]:
        """The message list. With ``stored`` (a list to fill), stored images are left out of the
        parts and listed there instead, as (key, detail) per message: what the totals size from
        the stored width and height without building (or decoding) a data URL."""
        if fmt not in FORMATS:
            raise ConversationError(f"format={fmt!r} is not a message format; use 'current' or 'preview2023'.")
        if plan is None:
            plan = policy.plan(turns)
        if check_limit:
            sent = sum(1 for actions in plan for a in actions if a.how == "send")
            if sent > self.max_images:
                raise TooManyImagesError(
                    f"This request would send {sent} images under retention={policy.name!r}; the "
                    f"limit is {self.max_images} per request. Choose a retention policy that "
                    "re-sends fewer old images (e.g. 'keep_last:2' or 'placeholder:1'), or raise "
                    "the limit with max_images= if your deployment allows more.",
                    count=sent,
                    limit=self.max_images,
                )
        out: list[dict[str, Any]] = []
        if self._system:
            out.append({"role": "system", "content": self._system})
            if stored is not None:
                stored.append([])
        for turn, actions in zip(turns, plan):
            parts: list[Any] = []
            left_out: list[tuple[str, str]] = []
            if stored is not None:
                stored.append(left_out)
            for action in actions:
                if action.how == "send" and stored is not None and action.key in self.images:
                    left_out.append((action.key, action.detail))
                elif action.how == "send":
                    parts.append(self._image_part(action.key, action.detail, fmt))
                elif action.how == "placeholder":
                    text = self._placeholder_text(action.key)
                    parts.append(text if fmt == "preview2023" else {"type": "text", "text": text})
            if not parts:
                out.append({"role": turn.role, "content": turn.text})
                continue
            if turn.text:
                parts.insert(0, turn.text if fmt == "preview2023" else {"type": "text", "text": turn.text})
            out.append({"role": turn.role, "content": parts})
        return out

    def _request_estimates(
        self, policy: RetentionPolicy, *, prices: PriceTable | None = None
    ) -> list[tuple[int, int, RequestEstimate]]:
        """(turn index, images sent, estimate) of the request after each user turn, under ``policy``.

        Request *k* is planned on the turns up to *k*: "the last n image turns" are counted from
        there, as they were when that request went out.

        Linear in the images: each message's text is counted once (estimate_request on that
        message alone; the count is a sum over messages), each stored image is sized from its
        stored width and height (never re-encoded or decoded), and each (size, detail) is
        costed once. The result equals estimate_request on the whole message list.
        """
        from vizlab import pricing
        from vizlab.tokens import RequestEstimate, estimate_request, explain_image_tokens

        priming = estimate_request([], model=self.model).overhead_tokens
        table = pricing.DEFAULT_PRICES if prices is None else prices
        by_message: dict[Any, RequestEstimate] = {}
        by_size: dict[tuple[int, int, str], Any] = {}
        out = []
        for i, turn in enumerate(self.turns):
            if turn.role != "user":
                continue
            history = self.turns[: i + 1]
            plan = policy.plan(history)
            sent = sum(1 for actions in plan for a in actions if a.how == "send")
            stored: list[list[tuple[str, str]]] = []
            msgs = self._build(history, policy, "current", check_limit=False, stored=stored, plan=plan)
            text = images_total = 0
            overhead = priming
            breakdowns: list[Any] = []
            unsized: list[str] = []
            # A message is fixed by its turn and what the plan does with that turn's images.
            keys: list[Any] = (["system"] if self._system else []) + [
                (n, tuple(actions)) for n, actions in enumerate(plan)
            ]
            for key, message, left_out in zip(keys, msgs, stored):
                part = by_message.get(key)
                if part is None:
                    part = by_message[key] = estimate_request([message], model=self.model, prices=prices)
                text += part.text_tokens
                images_total += part.image_tokens
                overhead += part.overhead_tokens - priming
                breakdowns += part.images
                unsized += part.unsized_images
                for image_key, detail in left_out:
                    img = self.images[image_key]
                    size_key = (img.width, img.height, detail)
                    if size_key not in by_size:
                        by_size[size_key] = explain_image_tokens(img.width, img.height, detail=detail, model=self.model)
                    breakdowns.append(by_size[size_key])
                    images_total += by_size[size_key].tokens
            prompt = text + images_total + overhead
            try:
                cost = table.cost(prompt, 0, model=self.model)
            except UnknownModelError:
                cost = None
            estimate = RequestEstimate(
                model=self.model,
                prompt_tokens=prompt,
                text_tokens=text,
                image_tokens=images_total,
                completion_tokens=0,
                images=breakdowns,
                unsized_images=unsized,
                cost=cost,
                overhead_tokens=overhead,
            )
            out.append((i, sent, estimate))
        return out

    def _reply_to(self, index: int) -> Turn | None:
        """The assistant turn answering the user turn at ``index`` (the next turn), if any."""
        nxt = index + 1
        if nxt < len(self.turns) and self.turns[nxt].role == "assistant":
            return self.turns[nxt]
        return None

    @classmethod
    def _from_dict(cls, doc: Any, where: str) -> Conversation:
        from vizlab.images import EncodedImage

        if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
            raise ConversationError(
                f"{where!r} is not a vizlab conversation file (no \"format\": \"{FILE_FORMAT}\"); "
                "pass a file written by Conversation.save()."
            )
        version = doc.get("version")
        if version != FILE_VERSION:
            raise ConversationError(
                f"The conversation file {where!r} has version {version!r}; this vizlab reads "
                f"version {FILE_VERSION}. Upgrade vizlab, or re-save the file with this one."
            )
        settings = doc.get("settings") or {}
        conv = cls(
            doc.get("system"),
            model=doc["model"],
            max_images=settings.get("max_images", DEFAULT_MAX_IMAGES),
            max_image_bytes=settings.get("max_image_bytes"),
            retention=settings.get("retention", "keep_all"),
            fit=_fit_from_json(settings.get("fit")),
        )
        for key, rec in doc.get("images", {}).items():
            data = base64.b64decode(rec["data"], validate=True)
            if hashlib.sha256(data).hexdigest() != key:
                raise ConversationError(
                    f"The conversation file {where!r} is damaged: image {key[:12]}... does not "
                    "match its SHA-256. Restore a backup or remove that image's turns."
                )
            conv.images[key] = EncodedImage(
                data=data,
                mime=rec["mime"],
                width=rec["width"],
                height=rec["height"],
                name=rec.get("name"),
                original_width=rec.get("original_width", rec["width"]),
                original_height=rec.get("original_height", rec["height"]),
            )
        unsigned = set(doc.get("unsigned_urls", []))
        for key, url in doc.get("urls", {}).items():
            if not isinstance(url, str) or (key not in unsigned and _url_key(url) != key):
                raise ConversationError(f"The conversation file {where!r} is damaged: URL entry {key[:12]}... is wrong.")
            conv.urls[key] = url
            if key in unsigned:
                conv.urls_to_resupply[key] = url
        for n, rec in enumerate(doc.get("turns", []), start=1):
            turn = Turn(
                role=rec["role"],
                text=rec["text"],
                images=list(rec.get("images", [])),
                detail=rec.get("detail", "auto"),
                meta=dict(rec.get("meta", {})),
                created=rec.get("created", ""),
            )
            if turn.detail not in DETAILS:
                raise ConversationError(
                    f"The conversation file {where!r} is damaged: turn {n} has detail "
                    f"{turn.detail!r}, not 'low', 'high' or 'auto'."
                )
            if turn.role not in ("user", "assistant") or not isinstance(turn.text, str):
                raise ConversationError(f"The conversation file {where!r} is damaged: turn {n} is not a user or assistant message.")
            missing = [k for k in turn.images if k not in conv.images and k not in conv.urls]
            if missing:
                raise ConversationError(
                    f"The conversation file {where!r} is damaged: turn {n} uses image "
                    f"{missing[0][:12]}..., which is not stored in the file."
                )
            conv.turns.append(turn)
        return conv


# --- helpers ----------------------------------------------------------------------------------


def _check_fit(fit: object) -> None:
    """Refuse a ``fit`` that :func:`vizlab.images.encode_image` would refuse (its own check), but
    up front and as a ConversationError."""
    from vizlab.images import check_fit as check_fit_for_images

    try:
        check_fit_for_images(fit)
    except ValueError as e:
        raise ConversationError(
            f"fit={fit!r} is not a fit policy; use None (keep the bytes), 'low', 'high' or a "
            "(max_width, max_height) tuple of positive ints."
        ) from e


def _fit_from_json(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _usage_field(usage: Any, *names: str) -> int | None:
    if isinstance(usage, dict):
        for name in names:
            if isinstance(usage.get(name), int):
                return int(usage[name])
    return None


def _cost_total(cost: Any) -> float | None:
    """A float from a recorded cost: a number, a dict with ``total``, or a Cost object."""
    if cost is None or isinstance(cost, bool):
        return None
    if isinstance(cost, (int, float)):
        return float(cost)
    if isinstance(cost, dict):
        total = cost.get("total")
        if isinstance(total, (int, float)):
            return float(total)
        parts = [cost.get("input"), cost.get("output")]
        if all(isinstance(p, (int, float)) for p in parts):
            return float(sum(parts))  # type: ignore[arg-type]
        return None
    total = getattr(cost, "total", None)
    return float(total) if isinstance(total, (int, float)) else None


_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}


def _extension(mime: str) -> str:
    return _EXTENSIONS.get(mime, ".bin")


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


# --- format conversion ------------------------------------------------------------------------


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
    detail = _check_detail(detail)
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
    from vizlab.images import decode_data_url

    if to == "preview2023":
        if isinstance(part, str) or (isinstance(part, dict) and "image" in part):
            return part
        if isinstance(part, dict) and part.get("type") == "text":
            return part.get("text", "")
        if isinstance(part, dict) and part.get("type") == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url, str) or not url.startswith("data:"):
                shown = _url_label(url) if isinstance(url, str) else repr(url)[:60]  # never a SAS query
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
            from vizlab.images import decode_base64_image

            try:
                data = decode_base64_image(part["image"], source=f"message {index}'s {{'image': ...}} part")
            except VizlabError as e:
                raise ConversationError(f"Message {index}: an {{'image': ...}} part is not valid base64: {e}") from e
            return {"type": "image_url", "image_url": {"url": _data_url_from_bytes(data), "detail": detail}}
    raise ConversationError(f"Message {index}: content part {part!r:.80} is neither text nor an image.")


def _data_url_from_bytes(data: bytes) -> str:
    """A data URL for image bytes, unchanged, with the MIME type sniffed from the bytes."""
    from vizlab import images

    mime = images.sniff_mime(data)
    if mime is None or mime not in images.SERVICE_FORMATS:
        raise ConversationError(
            f"An {{'image': ...}} part holds {mime or 'unrecognised bytes'}, not PNG, JPEG, WEBP or "
            "GIF; re-encode it (vizlab.images.encode_image) before converting."
        )
    return images.build_data_url(mime, data)
