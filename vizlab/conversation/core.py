"""Conversation state for a stateless chat API: turns, images stored once, limits, retention.

Chat Completions keeps nothing between calls, so every request re-sends the whole history and
every image the model should still see; :meth:`Conversation.messages` is that list. The price:
image tokens grow with the square of the image turns, and re-sent images count against the
per-request image limit. Retention policies (:mod:`vizlab.conversation.retention`) choose what
a request carries; saving is an explicit call (:mod:`vizlab.conversation.storage`), costs live in
:mod:`vizlab.conversation.costs`. Details: docs/internals.md#conversation
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizlab.conversation.costs import request_estimates, running_totals
from vizlab.conversation.formats import FORMATS
from vizlab.conversation.retention import ImageAction, RetentionLike, RetentionPolicy, parse_retention
from vizlab.conversation.storage import (
    atomic_write_text,
    check_header,
    clean_stale_temps,
    describe_unsigned,
    image_label,
    is_url,
    jsonable,
    read_document,
    read_images,
    read_turns,
    read_urls,
    to_document,
    to_markdown,
    unsigned_url,
    url_key,
    url_label,
)
from vizlab.conversation.turns import Turn, check_detail
from vizlab.errors import ConversationError, TooManyImagesError, VizlabError

if TYPE_CHECKING:
    from vizlab.images.encode import EncodedImage, Fit, Source
    from vizlab.tokens.pricing import PriceTable
    from vizlab.tokens.request import RequestEstimate

__all__ = ["DEFAULT_MAX_IMAGES", "Conversation"]

# 10 images per request: Azure 'Use GPT-4 Turbo with Vision' how-to, 2024-08-21 (seeds/03), and
# Azure 'Use vision-enabled chat models' how-to, 2025 (seeds/05). Some deployments allow more
# (50 is reported for newer models; not in our seeds): pass max_images= after checking yours.
DEFAULT_MAX_IMAGES = 10


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
            clean_stale_temps(target)
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
        detail = check_detail(detail)
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
            if is_url(source):
                key = url_key(source)
                new_urls[key] = source
            else:
                image = self._encode(source)
                key = image.sha256
                new_images.setdefault(key, image)
            keys.append(key)
        turn = Turn("user", text, keys, detail, jsonable(dict(meta or {})))
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
        turn = Turn("assistant", text, [], "auto", jsonable(meta))
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

    def drop_turns(self, start: int, stop: int | None = None) -> list[Turn]:
        """Remove ``turns[start:stop]`` (an edit or a delete); images no turn uses leave the store."""
        if not isinstance(start, int) or not 0 <= start < len(self.turns):
            raise ConversationError(
                f"drop_turns(start={start!r}): there is no turn {start!r}; pass an index from 0 to {len(self.turns) - 1}."
            )
        gone = self.turns[start:stop]
        del self.turns[start:stop]
        self._prune_images()
        self._autosave_now()
        return gone

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
        from vizlab.tokens.request import estimate_request

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
        return running_totals(out) if running_total else out

    def cost_by_turn(self, *, prices: PriceTable | None = None) -> list[dict[str, Any]]:
        """One row per user turn: what its request cost, estimated and (when known) reported.

        Keys: ``turn`` (1-based user turn), ``index`` (in :attr:`turns`), ``images_sent``,
        ``estimated_prompt_tokens``, ``estimated_image_tokens``, ``reported_prompt_tokens`` and
        ``reported_completion_tokens`` (from the reply's ``usage``, else None),
        ``prompt_tokens``/``completion_tokens`` (reported if known, else estimated; completion
        estimated as 0), ``source`` ("reported" or "estimated"), ``cost`` in USD (the reply's
        recorded ``cost`` if any, else the reported usage priced by ``prices`` (default
        :data:`vizlab.tokens.pricing.DEFAULT_PRICES`) at this conversation's model, else the estimate's
        cost; None when the model has no price), and running totals ``cumulative_prompt_tokens``,
        ``cumulative_tokens`` and ``cumulative_cost``.
        """
        from vizlab.conversation.costs import cost_rows

        requests = self._request_estimates(self._retention, prices=prices)
        return cost_rows(self.turns, requests, model=self.model, prices=prices)

    # -- files --

    def to_dict(self) -> dict[str, Any]:
        """The JSON document :meth:`save` writes (meta redacted, each image once as base64;
        :func:`vizlab.conversation.storage.to_document`)."""
        return to_document(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the conversation to ``path`` as JSON, atomically; returns the path."""
        target = Path(path)
        text = json.dumps(self.to_dict(), indent=1, ensure_ascii=False)
        try:
            atomic_write_text(target, text)
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
        doc = read_document(source)
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
        clean_stale_temps(source)
        if conv.urls_to_resupply:
            names = ", ".join(
                f"{url_label(url)} ({describe_unsigned(url)})" for url in conv.urls_to_resupply.values()
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
        if not isinstance(url, str) or not is_url(url):
            raise ConversationError(f"resupply_url() takes the image's full http(s) URL, got {url!r:.60}.")
        unsigned = unsigned_url(url)[0]
        matches = [key for key, saved in self.urls_to_resupply.items() if saved == unsigned]
        if not matches:
            waiting = ", ".join(url_label(u) for u in self.urls_to_resupply.values()) or "none"
            raise ConversationError(
                f"{url_label(url)!r}: no image of this conversation is waiting for that URL (waiting: "
                f"{waiting}). Pass the same address with its query string (e.g. its SAS token)."
            )
        new_key = url_key(url)
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
        return to_markdown(self, image_dir=image_dir)

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
        from vizlab.images.documents import encode_document
        from vizlab.images.encode import DEFAULT_MAX_BYTES, encode_image

        document = encode_document(source)  # a PDF (by its bytes) is stored once and sent as a file part
        if document is not None:
            return document

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
        return image_label(key, self.images, self.urls)

    def _placeholder_text(self, key: str) -> str:
        if key in self.urls:
            return f"[image: {url_label(self.urls[key])}, sent earlier]"
        img = self.images[key]
        if img.mime == "application/pdf":
            return f"[document: {self._image_label(key)}, sent earlier]"
        return f"[image: {self._image_label(key)}, {img.width}x{img.height}, sent earlier]"

    def _image_part(self, key: str, detail: str, fmt: str) -> dict[str, Any]:
        if key in self.urls:
            if fmt == "preview2023":
                raise ConversationError(
                    f"Image URL {url_label(self.urls[key])!r} cannot be sent in the preview2023 "
                    "format, which takes only base64 images; use format='current', or add the "
                    "image as a file or bytes instead of a URL."
                )
            if key in self.urls_to_resupply:
                raise ConversationError(
                    f"Image URL {url_label(self.urls[key])!r} was loaded without its signature (SAS "
                    "tokens are not saved), so the service could not fetch it. Give the full URL "
                    "back with conv.resupply_url(url), or remove that turn."
                )
            return {"type": "image_url", "image_url": {"url": self.urls[key], "detail": detail}}
        img = self.images[key]
        if img.mime == "application/pdf":  # a document: the Chat file part (no detail)
            if fmt == "preview2023":
                raise ConversationError(f"Document {img.name!r} cannot be sent in the preview2023 format; use format='current'.")
            return {"type": "file", "file": {"filename": img.name, "file_data": img.data_url}}
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
                stored_image = action.key in self.images and self.images[action.key].mime != "application/pdf"
                if action.how == "send" and stored is not None and stored_image:
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
        """(turn index, images sent, estimate) of the request after each user turn, under ``policy``
        (:func:`vizlab.conversation.costs.request_estimates`)."""
        return request_estimates(
            self.turns, policy, build=self._build, system=self._system, model=self.model, images=self.images, prices=prices
        )
    @classmethod
    def _from_dict(cls, doc: Any, where: str) -> Conversation:
        settings = check_header(doc, where)
        conv = cls(
            doc.get("system"),
            model=doc["model"],
            max_images=settings.get("max_images", DEFAULT_MAX_IMAGES),
            max_image_bytes=settings.get("max_image_bytes"),
            retention=settings.get("retention", "keep_all"),
            fit=_fit_from_json(settings.get("fit")),
        )
        conv.images.update(read_images(doc, where))
        urls, to_resupply = read_urls(doc, where)
        conv.urls.update(urls)
        conv.urls_to_resupply.update(to_resupply)
        conv.turns.extend(read_turns(doc, where, conv.images, conv.urls))
        return conv


# --- helpers ----------------------------------------------------------------------------------


def _check_fit(fit: object) -> None:
    """Refuse a ``fit`` that :func:`vizlab.images.encode_image` would refuse (its own check), but
    up front and as a ConversationError."""
    from vizlab.images.encode import check_fit as check_fit_for_images

    try:
        check_fit_for_images(fit)
    except ValueError as e:
        raise ConversationError(
            f"fit={fit!r} is not a fit policy; use None (keep the bytes), 'low', 'high' or a "
            "(max_width, max_height) tuple of positive ints."
        ) from e


def _fit_from_json(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
