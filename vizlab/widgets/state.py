"""Plain state objects behind the panels: everything a panel does, with no widgets and no kernel.

Each panel in :mod:`vizlab.widgets` is a thin view over one of these classes, so the logic is
tested by calling methods (``UploadState.add``, ``ChatState.send``, ``CompareState.run``) and
reading attributes. They import vizlab's other modules lazily, at first use.

Decisions made here (and documented in the panels' docstrings):

* **A failed send leaves the conversation as it was before Send.** The client already refuses
  to append an assistant turn on failure; :meth:`ChatState.send` also removes the user turn it
  added, keeps the attachments pending and hands the prompt back, so pressing Send again is a
  clean retry (no doubled question in the history).
* **Stop keeps what was streamed.** As in the Azure AI Foundry playground, the partial answer
  stays in the transcript (and in the conversation, as an assistant turn with
  ``finish_reason="cancelled"``), so what you saw is what the next request carries.
* **Estimates and reported numbers sit side by side**, read from the assistant turn's ``meta``
  (which the client fills and the conversation saves), so a reloaded autosave shows the same
  figures as the live chat.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizlab.errors import VizlabError, redact

if TYPE_CHECKING:
    from vizlab.client import Client, Reply
    from vizlab.conversation import Conversation
    from vizlab.images import EncodedImage
    from vizlab.tokens import ImageTokenBreakdown

__all__ = [
    "DETAILS",
    "LARGE_UPLOAD_NOTE",
    "UploadRow",
    "UploadState",
    "TurnView",
    "ChatState",
    "CompareColumn",
    "CompareState",
    "elide_data_urls",
    "thumbnail_png",
    "tile_grid_png",
    "human_bytes",
]

DETAILS = ("low", "high", "auto")

# Jupyter Server's websocket takes messages up to tornado's default websocket_max_message_size,
# 10 MiB (tornado/websocket.py, _default_max_message_size = 10 * 1024 * 1024, tornado 6.6.1 as
# installed, read 2026); a bigger upload is
# dropped by the server without an error reaching the kernel. The Makefile's `make lab` raises it.
LARGE_UPLOAD_NOTE = (
    "Uploads over about 10 MB never reach the kernel: Jupyter's websocket drops them without an "
    "error. Start JupyterLab with `make lab` (it raises ServerApp.tornado_settings "
    "websocket_max_message_size), or pass the image's path instead."
)

_DATA_URL_RE = re.compile(r"data:([A-Za-z0-9.+/-]+);base64,([A-Za-z0-9+/=\s]+)")

THUMBNAIL_BOX = (96, 96)  # vizlab's choice, as the 120-px chat thumbnails and 360-px grids


# --- small helpers --------------------------------------------------------------------------------


def human_bytes(n: int) -> str:
    """``human_bytes(2048)`` -> ``'2.0 KB'`` (powers of 1024, as file managers show them)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def elide_data_urls(value: Any) -> Any:
    """``value`` (JSON data) with every base64 data URL shortened to its MIME type and length.

    >>> elide_data_urls({"url": "data:image/png;base64," + "A" * 12345})
    {'url': 'data:image/png;base64,…(12,345 chars)'}
    """
    if isinstance(value, str):
        return _DATA_URL_RE.sub(lambda m: f"data:{m.group(1)};base64,…({len(m.group(2)):,} chars)", value)
    if isinstance(value, Mapping):
        return {k: elide_data_urls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [elide_data_urls(v) for v in value]
    return value


def thumbnail_png(image: EncodedImage | Any, box: tuple[int, int] = THUMBNAIL_BOX) -> bytes:
    """A small PNG of ``image`` (anything :func:`vizlab.images.open_image` takes), within ``box``."""
    from vizlab.images import open_image

    im = open_image(image)
    im.thumbnail(box)
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def tile_grid_png(
    image: EncodedImage | Any,
    *,
    model: str = "gpt-4o",
    detail: str = "high",
    max_side: int = 360,
) -> tuple[bytes, ImageTokenBreakdown]:
    """PNG of the image as the service scales it, with the 512-px tile grid drawn over it.

    The picture is the ``scaled`` size of :func:`vizlab.tokens.explain_image_tokens` (the 512 box
    at low detail, the 2048 box then short side 768 at high), shrunk to ``max_side`` for display;
    the grid lines fall where the service cuts its tiles. A label in the bottom-left corner gives
    the detail used, the scaled size, the tiles and the tokens. Drawn with PIL (fast, no figure).
    """
    from PIL import Image, ImageDraw

    from vizlab.images import open_image
    from vizlab.tokens import TILE, PatchRule, explain_image_tokens, rule_for

    im = open_image(image).convert("RGB")
    bd = explain_image_tokens(im.width, im.height, detail=detail, model=model)
    sw, sh = bd.scaled
    shown = im.resize((sw, sh), Image.Resampling.LANCZOS)
    ratio = min(1.0, max_side / max(sw, sh))
    view = shown.resize((max(1, round(sw * ratio)), max(1, round(sh * ratio))), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(view)
    w, h = view.size
    if bd.tiles:  # tile rule at high detail: the 512-px cuts, in scaled pixels
        rule = rule_for(model)
        step = rule.patch if isinstance(rule, PatchRule) else TILE
        colour = (255, 40, 40) if bd.patches is None else (255, 160, 0)
        for x in range(step, sw, step):
            draw.line([(round(x * ratio), 0), (round(x * ratio), h)], fill=colour, width=2 if bd.patches is None else 1)
        for y in range(step, sh, step):
            draw.line([(0, round(y * ratio)), (w, round(y * ratio))], fill=colour, width=2 if bd.patches is None else 1)
        draw.rectangle([(0, 0), (w - 1, h - 1)], outline=colour, width=2)
    else:  # low: one fixed-cost view, no tiles
        draw.rectangle([(0, 0), (w - 1, h - 1)], outline=(40, 90, 255), width=3)
    label = f"{bd.detail_used}: {sw}x{sh}, " + (f"{bd.tiles_x}x{bd.tiles_y} tiles, " if bd.tiles else "") + f"{bd.tokens} tokens"
    # Bottom left, where text cards and documents rarely start; sized to stay readable when a
    # notebook column shows the picture at about 3/4 of its size.
    face = _label_font(max(11, round(max(w, h) / 24)))
    while getattr(face, "size", 0) > 9 and draw.textlength(label, font=face) + 10 > w:
        face = _label_font(face.size - 1)
    if draw.textlength(label, font=face) + 10 > w:  # a narrow picture: the number alone
        label = f"{bd.tokens} tok"
    left, top, right, bottom = draw.textbbox((0, 0), label, font=face)
    box_h = bottom - top + 6
    draw.rectangle([(0, h - box_h), (right - left + 10, h)], fill=(0, 0, 0))
    draw.text((5 - left, h - box_h + 3 - top), label, font=face, fill=(255, 255, 255))
    buf = io.BytesIO()
    view.save(buf, format="PNG")
    return buf.getvalue(), bd


def _label_font(px: int) -> Any:
    """DejaVu Sans (matplotlib's) at ``px`` pixels, else Pillow's built-in font at that size."""
    from PIL import ImageFont

    try:
        from vizlab.datasets import font

        return font(px)
    except (ImportError, OSError):
        return ImageFont.load_default(size=px)


def _client_secrets(client: Any) -> Any:
    """The key ``client`` holds (a vizlab Client's private accessor), for redact(); () if none."""
    return client._secrets() if client is not None and hasattr(client, "_secrets") else ()


def _error_text(e: BaseException, client: Any = None) -> str:
    """One line for the error area: the class name says what kind of failure; never a key.

    vizlab's own errors are redacted already; anything else (an httpx error from inside a
    stream, a bug) is redacted here, with ``client``'s own key as well as key-shaped strings.
    """
    return redact(f"{type(e).__name__}: {e}", _client_secrets(client))


def _fmt_int(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


def _fmt_cost(total: Any) -> str:
    return f"${total:.4f}" if isinstance(total, (int, float)) else "$?"


def _cost_total(cost: Any) -> float | None:
    if cost is None:
        return None
    if isinstance(cost, Mapping):
        total = cost.get("total")
    else:
        total = getattr(cost, "total", None)
    return float(total) if isinstance(total, (int, float)) else None


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


# --- upload ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadRow:
    """What the upload panel shows for one image."""

    name: str
    mime: str
    width: int
    height: int
    nbytes: int
    tokens: int
    explanation: str
    cost: float | None

    @property
    def summary(self) -> str:
        cost = "" if self.cost is None else f" · {_fmt_cost(self.cost)}"
        return (
            f"{self.name} · {self.mime} · {self.width}x{self.height} px · {human_bytes(self.nbytes)}"
            f" · {self.tokens:,} tokens{cost}"
        )


class UploadState:
    """Images picked for sending, with their token cost for one model and detail.

    >>> state = UploadState(model="gpt-4o", detail="low")
    >>> state.add([b"not an image"], names=["notes.txt"])  # doctest: +ELLIPSIS
    ['notes.txt: ...']
    >>> state.images
    []
    """

    def __init__(self, *, model: str = "gpt-4o", detail: str = "auto") -> None:
        self.model = model
        self.detail = detail
        self._images: list[EncodedImage] = []
        self._thumbnails: dict[str, bytes] = {}
        self.errors: list[str] = []  # messages about the files of the last add()

    @property
    def images(self) -> list[EncodedImage]:
        return list(self._images)

    def thumbnail(self, image: EncodedImage) -> bytes:
        key = image.sha256
        if key not in self._thumbnails:
            self._thumbnails[key] = thumbnail_png(image)
        return self._thumbnails[key]

    def add(self, sources: Iterable[Any], *, names: Sequence[str | None] = ()) -> list[str]:
        """Encode each source (FileUpload record, path, bytes...); bad ones become messages.

        Good images are kept whatever happens to the others; an image already here (same bytes)
        is not added twice. Returns (and stores in :attr:`errors`) one message per bad file,
        naming it and saying what is wrong.
        """
        from vizlab.images import encode_image

        self.errors = []
        have = {img.sha256 for img in self._images}
        for i, source in enumerate(sources):
            name = names[i] if i < len(names) else None
            label = name or _source_label(source, i)
            try:
                image = encode_image(source, name=name) if name else encode_image(source)
                self._thumbnails.setdefault(image.sha256, thumbnail_png(image))
            except (VizlabError, OSError, TypeError, ValueError) as e:
                self.errors.append(f"{label}: {redact(str(e))}")
                continue
            if image.sha256 not in have:
                have.add(image.sha256)
                self._images.append(image)
        return list(self.errors)

    def add_path(self, path: str) -> list[str]:
        """:meth:`add` for a path typed into the panel; an empty one is an error, not a no-op."""
        path = path.strip()
        if not path:
            self.errors = ["Type a path to an image file first."]
            return list(self.errors)
        return self.add([path])

    def remove(self, index: int) -> None:
        image = self._images.pop(index)
        self._thumbnails.pop(image.sha256, None)

    def clear(self) -> None:
        self._images.clear()
        self._thumbnails.clear()
        self.errors = []

    def breakdown(self, image: EncodedImage) -> ImageTokenBreakdown:
        from vizlab.tokens import explain_image_tokens

        return explain_image_tokens(image.width, image.height, detail=self.detail, model=self.model)

    def rows(self) -> list[UploadRow]:
        from vizlab.pricing import DEFAULT_PRICES

        rows = []
        for img in self._images:
            bd = self.breakdown(img)
            try:
                cost: float | None = DEFAULT_PRICES.cost(bd.tokens, model=self.model).total
            except VizlabError:  # a model with a token rule but no price: show tokens only
                cost = None
            rows.append(UploadRow(img.name, img.mime, img.width, img.height, img.nbytes, bd.tokens, bd.explain(), cost))
        return rows

    @property
    def total_tokens(self) -> int:
        return sum(r.tokens for r in self.rows())

    @property
    def total_bytes(self) -> int:
        return sum(img.nbytes for img in self._images)

    def total_line(self) -> str:
        rows = self.rows()
        if not rows:
            return "No images yet."
        costs = [r.cost for r in rows]
        cost = "" if any(c is None for c in costs) else f" · {_fmt_cost(sum(c or 0.0 for c in costs))} input"
        return (
            f"Total: {len(rows)} image{'s' * (len(rows) != 1)} · {human_bytes(self.total_bytes)} · "
            f"{sum(r.tokens for r in rows):,} image tokens on {self.model} at detail {self.detail}{cost}"
        )


def _source_label(source: Any, index: int) -> str:
    if isinstance(source, Mapping) and source.get("name"):
        return str(source["name"])
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return f"image {index + 1}"


# --- chat -----------------------------------------------------------------------------------------


@dataclass
class TurnView:
    """One transcript entry as the chat panel draws it."""

    role: str
    text: str
    images: list[EncodedImage] = field(default_factory=list)
    detail: str = "auto"
    stats: str = ""
    warnings: list[str] = field(default_factory=list)


def turn_warnings(meta: Mapping[str, Any]) -> list[str]:
    """Advice for a reply cut short, from the ``finish_reason`` kept in the turn's meta."""
    reason = meta.get("finish_reason")
    if reason == "length":
        return [
            "The answer was cut off by max_tokens (finish_reason 'length'): raise max tokens, "
            "or ask for a shorter answer."
        ]
    if reason == "content_filter":
        return [
            "The content filter removed part of the answer (finish_reason 'content_filter'): "
            "rephrase the prompt."
        ]
    if reason == "cancelled":
        return ["Stopped: the answer is partial (finish_reason 'cancelled')."]
    return []


def turn_stats(meta: Mapping[str, Any]) -> str:
    """``prompt 783 tokens (estimated 783) · completion 77 · $0.0027 · 0.95 s · finish stop``."""
    usage = meta.get("usage")
    estimate = meta.get("estimate")
    est = _get(estimate, "prompt_tokens")
    if usage:
        prompt = f"prompt {_fmt_int(_get(usage, 'prompt_tokens'))} tokens (estimated {_fmt_int(est)})"
        completion = f"completion {_fmt_int(_get(usage, 'completion_tokens'))}"
    else:
        prompt = f"prompt ~{_fmt_int(est)} tokens (estimated; none reported)"
        completion = "completion ?"
    latency = meta.get("latency_s")
    lat = f"{latency:.2f} s" if isinstance(latency, (int, float)) else "? s"
    return f"{prompt} · {completion} · {_fmt_cost(_cost_total(meta.get('cost')))} · {lat} · finish {meta.get('finish_reason')}"


class ChatState:
    """A chat with one client: system message, attachments, send/stop, stats, export, autosave.

    ``send()`` is synchronous (the panel runs it in a thread); ``cancel()`` may be called from
    any thread while it runs. ``autosave=path`` resumes the conversation saved there if the file
    exists, else starts a new one that saves there after every change.
    """

    def __init__(
        self,
        client: Client,
        conversation: Conversation | None = None,
        *,
        autosave: str | os.PathLike[str] | None = None,
        max_tokens: int = 1000,
        detail: str = "auto",
        export_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        from vizlab.conversation import Conversation

        self._client = client
        if conversation is None:
            if autosave is not None:
                conversation = Conversation.open(autosave, model=client.token_model)
            else:
                conversation = Conversation(model=client.token_model)
        elif autosave is not None:  # the conversation given starts saving there (overwrites)
            conversation.autosave = Path(autosave)
            conversation.save(autosave)
        self.conversation: Conversation = conversation
        self.max_tokens = max_tokens
        self.detail = detail
        self.export_dir = Path(export_dir) if export_dir is not None else None
        self.attachments: list[EncodedImage] = []
        self.last_reply: Reply | None = None
        self.error: str = ""
        self.busy = False
        self.streamed_text = ""
        self._stream: Any = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    # -- client and deployment --

    @property
    def client(self) -> Client:
        return self._client

    @client.setter
    def client(self, client: Client) -> None:
        """Swap the client (a fixed key, another endpoint); the conversation is kept."""
        self._client = client
        self.conversation.model = client.token_model

    def deployments(self) -> list[str]:
        """Names for the deployment picker: the backend's list where it is one of deployments.

        Azure's GET models lists the models a resource offers, not its deployment names, so
        for Azure only the connected deployment is offered (pass another client to switch).
        """
        current = self._client.deployment
        names: list[str] = []
        if self._client.backend != "azure":
            try:
                names = list(self._client.models())
            except (VizlabError, OSError):
                names = []
        return [current] + [n for n in names if n != current]

    def select_deployment(self, name: str) -> None:
        """Send the next requests to deployment ``name`` on the same endpoint and key."""
        if name == self._client.deployment:
            return
        self.client = self._client.with_deployment(name)  # same endpoint, key and HTTP pool

    # -- setup --

    def apply_system(self, text: str) -> None:
        """Use ``text`` as the system message from the next request on ("" removes it)."""
        self.conversation.system = text.strip() or None

    def attach(self, source: Any) -> EncodedImage:
        """Add an image to the next message; raises :class:`vizlab.errors.ImageError` if bad."""
        from vizlab.images import encode_image

        image = encode_image(source)
        if all(a.sha256 != image.sha256 for a in self.attachments):
            self.attachments.append(image)
        return image

    def attach_all(self, sources: Iterable[Any]) -> list[str]:
        """Attach each source; the good ones are kept, each bad one becomes a ``"name: reason"``.

        Sets (and returns) :attr:`error` as those messages joined by "; ", or "" when all were good.
        """
        problems = []
        for i, source in enumerate(sources):
            try:
                self.attach(source)
            except Exception as e:  # shown in the panel; a bad file must not stop the others
                problems.append(redact(f"{_source_label(source, i)}: {e}", _client_secrets(self._client)))
        self.error = "; ".join(problems)
        return problems

    def clear_attachments(self) -> None:
        self.attachments = []

    # -- sending --

    def claim(self, prompt: str) -> bool:
        """Reserve the state for sending ``prompt``; False if it cannot go now.

        An empty prompt with no attachments sets :attr:`error`; a request already running does
        not (its own outcome is what :attr:`error` reports when it ends). :meth:`send` claims for
        itself. A panel claims on the UI thread before it starts the worker, so a second click is
        refused at once and a Stop pressed before the worker runs is not forgotten (the cancel
        flag is cleared here, not in the worker).
        """
        with self._lock:
            if self.busy:
                return False
            if not prompt.strip() and not self.attachments:
                self.error = "Type a question (or attach an image) before pressing Send."
                return False
            self.busy = True
            self._cancel.clear()
        self.error = ""
        self.streamed_text = ""
        return True

    def release(self) -> None:
        """Give back a :meth:`claim` that will not be sent (the worker could not start)."""
        with self._lock:
            self.busy = False

    def send(
        self,
        prompt: str,
        *,
        on_chunk: Callable[[str], None] | None = None,
        max_tokens: int | None = None,
        detail: str | None = None,
        claimed: bool = False,
    ) -> bool:
        """Send ``prompt`` with the attachments and stream the answer; True on success.

        ``on_chunk`` gets the text so far after each chunk. On failure :attr:`error` says
        why, the conversation is as before Send and the attachments stay pending. If the answer
        arrived but saving it failed (an autosave folder gone), the answer is kept, :attr:`error`
        says what failed, and True is returned. ``claimed=True``: :meth:`claim` was already called.
        """
        if not claimed and not self.claim(prompt):
            if self.busy:
                self.error = "A request is already running; press Stop first."
            return False
        conv = self.conversation
        before = len(conv.turns)
        sent = list(self.attachments)
        try:
            conv.add_user(prompt, sent, detail=detail or self.detail)
            reply = self._stream_reply(on_chunk, max_tokens if max_tokens is not None else self.max_tokens)
        except Exception as e:  # shown in the panel; anything unexpected must not wedge the UI
            self.error = _error_text(e, self._client)
            if len(conv.turns) > before + 1 and conv.turns[-1].role == "assistant":
                # The answer is in: only saving it failed. Keep it; the user saw it.
                self._drop_sent(sent)
                return True
            self._roll_back(before)
            return False
        finally:
            self._stream = None
            self.busy = False
        self.last_reply = reply
        self._drop_sent(sent)
        self.error = ""  # a second send refused meanwhile does not outlive this one
        return True

    def _drop_sent(self, sent: list[EncodedImage]) -> None:
        """Clear the attachments that went out; one attached while the answer streamed stays."""
        gone = {img.sha256 for img in sent}
        self.attachments = [a for a in self.attachments if a.sha256 not in gone]

    def _roll_back(self, length: int) -> None:
        """Drop the turns added since the conversation had ``length`` (a failed send's user turn)."""
        conv = self.conversation
        while len(conv.turns) > length:
            try:
                conv.pop_last()
            except VizlabError:  # the turn is gone from memory; only its autosave failed
                pass

    def _stream_reply(self, on_chunk: Callable[[str], None] | None, max_tokens: int) -> Reply:
        # The client warns (UserWarning) about cut replies; the transcript shows them instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            stream = self._client.stream(self.conversation, max_tokens=max_tokens)
            # Leaving the block early (on_chunk failing, an interrupt) closes the HTTP stream.
            with stream:
                self._stream = stream
                if self._cancel.is_set():  # Stop pressed while the request was being sent
                    stream.cancel()
                for _ in stream:
                    self.streamed_text = stream.text
                    if on_chunk is not None:
                        on_chunk(self.streamed_text)
                    if self._cancel.is_set():
                        stream.cancel()
                        break
        # ReplyStream sets .reply before its iteration can end: at the end of the stream, or in
        # cancel() (from either thread) before the reader can notice and stop.
        reply = stream.reply
        if reply is None:
            raise VizlabError("the answer stream ended without a reply; press Send to try again")
        if reply.finish_reason == "cancelled":  # the client does not append a stopped reply
            self.conversation.add_assistant(
                reply.text,
                finish_reason="cancelled",
                usage=None,
                estimate=reply.estimate,
                latency_s=reply.latency_s,
                model=reply.model,
                cost=None,
            )
        return reply

    def cancel(self) -> None:
        """Stop the running request (from any thread); the partial answer is kept."""
        self._cancel.set()
        stream = self._stream
        if stream is not None:
            stream.cancel()

    def new_chat(self) -> bool:
        """Forget the turns and images (the system message stays), as the playground's New chat.

        Refused (False, :attr:`error` says why) while a request runs: its answer would land in
        the new chat.
        """
        if self.busy:
            self.error = "A request is still running: press Stop and wait for it to end, then New chat."
            return False
        self.conversation.clear()
        self.attachments = []
        self.last_reply = None
        self.error = ""
        self.streamed_text = ""
        return True

    # -- reading --

    def turn_views(self) -> list[TurnView]:
        conv = self.conversation
        views = []
        for turn in conv.turns:
            images = [conv.images[k] for k in turn.images if k in conv.images]
            if turn.role == "assistant":
                views.append(TurnView("assistant", turn.text, [], turn.detail, turn_stats(turn.meta), turn_warnings(turn.meta)))
            else:
                desc = ", ".join(f"{i.name} {i.width}x{i.height}" for i in images)
                stats = f"{len(images)} image{'s' * (len(images) != 1)} at detail {turn.detail}: {desc}" if images else ""
                views.append(TurnView(turn.role, turn.text, images, turn.detail, stats, []))
        return views

    def totals(self) -> dict[str, Any]:
        """Sums over the assistant turns: requests, estimated and reported tokens, cost, latency."""
        out: dict[str, Any] = {"requests": 0, "estimated_prompt": 0, "prompt": 0, "completion": 0, "cost": 0.0, "latency_s": 0.0}
        for turn in self.conversation.turns:
            if turn.role != "assistant":
                continue
            meta = turn.meta
            out["requests"] += 1
            out["estimated_prompt"] += _get(meta.get("estimate"), "prompt_tokens") or 0
            out["prompt"] += _get(meta.get("usage"), "prompt_tokens") or 0
            out["completion"] += _get(meta.get("usage"), "completion_tokens") or 0
            out["cost"] += _cost_total(meta.get("cost")) or 0.0
            latency = meta.get("latency_s")
            out["latency_s"] += latency if isinstance(latency, (int, float)) else 0.0
        return out

    def totals_line(self) -> str:
        t = self.totals()
        if not t["requests"]:
            return "No requests yet."
        return (
            f"Total: {t['requests']} request{'s' * (t['requests'] != 1)} · prompt {t['prompt']:,} tokens "
            f"(estimated {t['estimated_prompt']:,}) · completion {t['completion']:,} · "
            f"{_fmt_cost(t['cost'])} · {t['latency_s']:.2f} s"
        )

    def raw_json(self) -> str:
        """The exact request and response of the last turn, data URLs shortened, keys redacted."""
        reply = self.last_reply
        if reply is None:
            return "No request sent yet in this session."
        doc = {"request": elide_data_urls(reply.request), "response": elide_data_urls(reply.raw)}
        return redact(json.dumps(doc, indent=2, ensure_ascii=False))

    # -- files --

    def _export_base(self) -> Path:
        folder = self.export_dir if self.export_dir is not None else Path.cwd()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return folder / f"chat-{stamp}"

    def export_json(self) -> Path:
        """Save the conversation as JSON (Conversation.save) next to the notebook; returns the path."""
        path = self._export_base().with_suffix(".json")
        return self.conversation.save(path)

    def export_markdown(self) -> Path:
        """Write the transcript as Markdown, images in a folder beside it; returns the path."""
        base = self._export_base()
        path = base.with_suffix(".md")
        if self.conversation.images:
            folder = base.parent / (base.name + "-images")
            text = self.conversation.to_markdown(image_dir=folder)
            # to_markdown links images by the folder path given; make the links relative to the file
            text = text.replace(f"]({folder.as_posix()}/", f"]({folder.name}/")
        else:
            text = self.conversation.to_markdown()
        path.write_text(text, encoding="utf-8")
        return path


# --- compare --------------------------------------------------------------------------------------


@dataclass
class CompareColumn:
    """One detail level's result."""

    detail: str
    answer: str = ""
    estimated_prompt: int | None = None
    reported_prompt: int | None = None
    completion: int | None = None
    cost: float | None = None
    latency_s: float | None = None
    finish_reason: str | None = None
    grid_png: bytes = b""
    explanation: str = ""
    image_tokens: int | None = None
    error: str = ""

    @property
    def stats(self) -> str:
        lat = "? s" if self.latency_s is None else f"{self.latency_s:.2f} s"
        return (
            f"image {_fmt_int(self.image_tokens)} tokens · prompt estimated {_fmt_int(self.estimated_prompt)}, "
            f"reported {_fmt_int(self.reported_prompt)} · completion {_fmt_int(self.completion)} · "
            f"{_fmt_cost(self.cost)} · {lat}"
        )


class CompareState:
    """One image and one question sent at low, high and auto; one :class:`CompareColumn` each."""

    def __init__(
        self,
        client: Client,
        image: Any = None,
        question: str = "Describe this image.",
        *,
        max_tokens: int = 300,
    ) -> None:
        self.client = client
        self.question = question
        self.max_tokens = max_tokens
        self.image: EncodedImage | None = None
        self.columns: dict[str, CompareColumn] = {d: CompareColumn(d) for d in DETAILS}
        self.error = ""
        if image is not None:
            self.set_image(image)

    def set_image(self, source: Any) -> EncodedImage:
        """Use ``source`` (path, bytes, upload record...); the tile grids are drawn at once."""
        from vizlab.images import encode_image

        self.image = encode_image(source)
        self.columns = {d: CompareColumn(d) for d in DETAILS}
        for d in DETAILS:
            self._draw_grid(self.columns[d])
        return self.image

    def _draw_grid(self, col: CompareColumn) -> None:
        assert self.image is not None
        png, bd = tile_grid_png(self.image, model=self.client.token_model, detail=col.detail)
        col.grid_png, col.explanation, col.image_tokens = png, bd.explain(), bd.tokens

    def run(self, on_column: Callable[[CompareColumn], None] | None = None) -> dict[str, CompareColumn]:
        """Ask the question at each detail in turn (synchronous); errors land in each column."""
        if self.image is None:
            self.error = "Choose an image first."
            return self.columns
        self.error = ""
        for d in DETAILS:
            col = self.columns[d] = CompareColumn(d)
            try:
                self._draw_grid(col)  # again: the client (and its token rules) may have changed
            except Exception as e:  # lands in the column, like a failed request
                col.error = _error_text(e, self.client)
            else:
                self._ask(col)
            if on_column is not None:
                on_column(col)
        return self.columns

    def _ask(self, col: CompareColumn) -> None:
        from vizlab.conversation import Conversation

        assert self.image is not None
        conv = Conversation(model=self.client.token_model)
        conv.add_user(self.question, [self.image], detail=col.detail)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                reply = self.client.chat(conv, max_tokens=self.max_tokens)
        except Exception as e:
            col.error = _error_text(e, self.client)
            return
        col.answer = reply.text
        col.finish_reason = reply.finish_reason
        col.estimated_prompt = _get(reply.estimate, "prompt_tokens")
        col.reported_prompt = _get(reply.usage, "prompt_tokens")
        col.completion = _get(reply.usage, "completion_tokens")
        col.cost = _cost_total(reply.cost)
        col.latency_s = reply.latency_s


def escape(text: str) -> str:
    """HTML-escape text for an ipywidgets.HTML value, keeping line breaks."""
    return html.escape(text).replace("\n", "<br>")
