"""Plain state objects behind the panels: everything a panel does, with no widgets and no kernel.

Each panel is a thin view over one of these classes, tested by calling methods and reading
attributes; vizlab's other modules are imported lazily. Decisions: a failed send leaves the
conversation as before Send; Stop keeps what was streamed; estimates and reported numbers sit
side by side, read from the turn's ``meta``. Details: docs/internals.md#widgets
"""

from __future__ import annotations

import html
import io
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vizlab.conversation.costs import cost_total
from vizlab.conversation.storage import human_bytes
from vizlab.errors import VizlabError, redact
from vizlab.widgets.documents import PageImages, document_row, document_thumbnail_png, encode_attachment, is_document

if TYPE_CHECKING:
    from vizlab.client.core import Client
    from vizlab.images.encode import EncodedImage
    from vizlab.tokens.image import ImageTokenBreakdown

__all__ = [
    "DETAILS",
    "LARGE_UPLOAD_NOTE",
    "UploadRow",
    "UploadState",
    "CompareColumn",
    "CompareState",
    "elide_data_urls",
    "thumbnail_png",
    "tile_grid_png",
]

DETAILS = ("low", "high", "auto")

# Jupyter Server's websocket takes messages up to tornado's default websocket_max_message_size,
# 10 MiB (tornado/websocket.py, _default_max_message_size = 10 * 1024 * 1024, tornado 6.6.1 as
# installed, read 2026); a bigger upload is dropped by the server without an error reaching the
# kernel. The Makefile's `make lab` raises it; the panels' buttons avoid it (vizlab.widgets.intake).
LARGE_UPLOAD_NOTE = (
    "Upload, a drop and a paste all send files in 1 MB pieces with a progress bar, up to 80 MB each: a bigger file "
    "is refused before sending. Where the panel's script cannot run, the button sends a file in one message, which "
    "the Jupyter websocket drops over about 10 MB (`make lab` raises that to 100 MB); pass the file's path instead."
)

_DATA_URL_RE = re.compile(r"data:([A-Za-z0-9.+/-]+);base64,([A-Za-z0-9+/=\s]+)")

THUMBNAIL_BOX = (96, 96)  # vizlab's choice, as the 120-px chat thumbnails and 360-px grids


# --- small helpers --------------------------------------------------------------------------------


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
    from vizlab.images.encode import open_image

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

    from vizlab.images.encode import open_image
    from vizlab.models.types import PatchRule
    from vizlab.tokens.image import TILE, explain_image_tokens, rule_for

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


def model_note(client: Any) -> str:
    """What the panels say of the model beside an estimate: ``"on gpt-4o"``, or the client's own
    note while the model behind the deployment is unknown or assumed (``Client.model_note``,
    issue 19). The one place panels ask."""
    note = getattr(client, "model_note", "")
    return note if isinstance(note, str) and note else f"on {client.token_model}"


def known_model(client: Any) -> str | None:
    """The client's token model when a stated source names the model, else None."""
    note = getattr(client, "model_note", "")
    return None if isinstance(note, str) and note else str(client.token_model)


def waits_for_reply(client: Any) -> bool:
    """True when the client makes no estimate before a reply names the model (Azure or OpenAI
    with a deployment the registry does not know): the panels then show none either."""
    return not getattr(client, "model_known", True) and bool(getattr(client, "registry_applies", False))


def client_secrets(client: Any) -> Any:
    """The key ``client`` holds (a vizlab Client's private accessor), for redact(); () if none."""
    return client._secrets() if client is not None and hasattr(client, "_secrets") else ()


def error_text(e: BaseException, client: Any = None) -> str:
    """One line for the error area: the class name says what kind of failure; never a key.

    vizlab's own errors are redacted already; anything else (an httpx error from inside a
    stream, a bug) is redacted here, with ``client``'s own key as well as key-shaped strings.
    """
    return redact(f"{type(e).__name__}: {e}", client_secrets(client))


def fmt_int(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


def fmt_cost(total: Any) -> str:
    return f"${total:.4f}" if isinstance(total, (int, float)) else "$?"


def get_field(obj: Any, key: str) -> Any:
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
    pages: int = 0  # a PDF's page count (0 for an image)

    @property
    def summary(self) -> str:
        cost = "" if self.cost is None else f" · {fmt_cost(self.cost)}"
        size = f"{self.pages} page{'s' * (self.pages != 1)}" if self.pages else f"{self.width}x{self.height} px"
        return f"{self.name} · {self.mime} · {size} · {human_bytes(self.nbytes)} · {self.tokens:,} tokens{cost}"


class UploadState:
    """Images (and PDFs) picked for sending, with their token cost for one model and detail.

    A PDF is kept whole; :attr:`pdf_as` says whether it goes as a file part or as page images
    (:mod:`vizlab.widgets.documents`), and its row's estimate follows that choice.

    >>> state = UploadState(model="gpt-4o", detail="low")
    >>> state.add([b"not an image"], names=["notes.txt"])  # doctest: +ELLIPSIS
    ["notes.txt: ..."]
    >>> state.images
    []
    """

    def __init__(self, *, model: str = "gpt-4o", detail: str = "auto") -> None:
        self.model = model
        self.detail = detail
        self._images: list[EncodedImage] = []
        self._thumbnails: dict[str, bytes] = {}
        self.errors: list[str] = []  # messages about the files of the last add()
        self.pdf_as = "file"  # how PDFs go: vizlab.widgets.documents.PDF_MODES
        self.page_images = PageImages()

    @property
    def images(self) -> list[EncodedImage]:
        """What was added, in order: images, and PDFs kept whole."""
        return list(self._images)

    def outgoing(self) -> list[EncodedImage]:
        """What a chat attaches from here: the images, each PDF as itself or as its pages (:attr:`pdf_as`)."""
        return self.page_images.expand(self._images, self.pdf_as)

    def thumbnail(self, image: EncodedImage) -> bytes:
        key = image.sha256
        if key not in self._thumbnails:
            self._thumbnails[key] = document_thumbnail_png(image) if is_document(image) else thumbnail_png(image)
        return self._thumbnails[key]

    def add(self, sources: Iterable[Any], *, names: Sequence[str | None] = ()) -> list[str]:
        """Encode each source (FileUpload record, path, bytes...); bad ones become messages.

        Good images are kept whatever happens to the others; an image already here (same bytes)
        is not added twice. Returns (and stores in :attr:`errors`) one message per bad file,
        naming it and saying what is wrong.
        """
        self.errors = []
        have = {img.sha256 for img in self._images}
        for i, source in enumerate(sources):
            name = names[i] if i < len(names) else None
            label = name or source_label(source, i)
            try:
                image = encode_attachment(source, name)
                self.thumbnail(image)
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
        from vizlab.tokens.image import explain_image_tokens

        return explain_image_tokens(image.width, image.height, detail=self.detail, model=self.model)

    def rows(self) -> list[UploadRow]:
        from vizlab.tokens.pricing import DEFAULT_PRICES

        rows = []
        for img in self._images:
            if is_document(img):
                rows.append(self._document_row(img))
                continue
            bd = self.breakdown(img)
            try:
                cost: float | None = DEFAULT_PRICES.cost(bd.tokens, model=self.model).total
            except VizlabError:  # a model with a token rule but no price: show tokens only
                cost = None
            rows.append(UploadRow(img.name, img.mime, img.width, img.height, img.nbytes, bd.tokens, bd.explain(), cost))
        return rows

    def _document_row(self, document: EncodedImage) -> UploadRow:
        from vizlab.tokens.pricing import DEFAULT_PRICES

        row = document_row(document, model=self.model, mode=self.pdf_as, detail=self.detail, pages=self.page_images)
        try:
            cost: float | None = DEFAULT_PRICES.cost(row.tokens, model=self.model).total
        except VizlabError:
            cost = None
        return UploadRow(document.name, document.mime, document.width, document.height, document.nbytes, row.tokens,
                         f"{row.line()}\n{row.explanation}", cost, pages=row.pages)  # fmt: skip

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
        cost = "" if any(c is None for c in costs) else f" · {fmt_cost(sum(c or 0.0 for c in costs))} input"
        docs = sum(1 for r in rows if r.pages)
        images = len(rows) - docs
        what = " + ".join(([f"{images} image{'s' * (images != 1)}"] if images or not docs else []) + ([f"{docs} PDF{'s' * (docs != 1)}"] if docs else []))
        return (
            f"Total: {what} · {human_bytes(self.total_bytes)} · "
            f"{sum(r.tokens for r in rows):,} {'input' if docs else 'image'} tokens on {self.model} at detail {self.detail}{cost}"
        )


def source_label(source: Any, index: int) -> str:
    if isinstance(source, Mapping) and source.get("name"):
        return str(source["name"])
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return f"image {index + 1}"


# --- compare --------------------------------------------------------------------------------------


@dataclass
class CompareColumn:
    """One arm's result: a detail level, on one deployment (and its token rules)."""

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
    deployment: str = ""
    token_model: str = ""
    label: str = ""
    seen_size: tuple[int, int] | None = None  # the pixels the model sees (scaled image)

    @property
    def stats(self) -> str:
        lat = "? s" if self.latency_s is None else f"{self.latency_s:.2f} s"
        return (
            f"image {fmt_int(self.image_tokens)} tokens · prompt estimated {fmt_int(self.estimated_prompt)}, "
            f"reported {fmt_int(self.reported_prompt)} · completion {fmt_int(self.completion)} · "
            f"{fmt_cost(self.cost)} · {lat}"
        )


# The largest side a compare picture is drawn at: the service's scaled image at high detail is at
# most 2048 px (its first fit), usually 768 on the short side; past this the PNG gets heavy.
SEEN_MAX_SIDE = 1536

class CompareState:
    """One image and one question sent to several arms at once, one :class:`CompareColumn` each.

    An arm is a detail level on the client's deployment (``"low"``, ``"high"``, ``"auto"``: the
    default arms) or a ``(deployment, detail)`` pair on the same endpoint, e.g.
    ``[("gpt-4o", "high"), ("gpt-4.1-mini", "high")]``, each with its own token rules. The
    requests go out in parallel (:meth:`run`); each column is filled as its answer arrives.
    Columns are keyed by the detail for the default arms, else ``"deployment · detail"``.
    """

    def __init__(
        self,
        client: Client,
        image: Any = None,
        question: str = "Describe this image.",
        *,
        max_tokens: int = 300,
        arms: Sequence[str | tuple[str, str]] | None = None,
    ) -> None:
        self.client = client
        self.question = question
        self.max_tokens = max_tokens
        self.image: EncodedImage | None = None
        self.error = ""
        self.arms = self._parse_arms(arms)
        self.columns: dict[str, CompareColumn] = self._empty_columns()
        if image is not None:
            self.set_image(image)

    def _parse_arms(self, arms: Sequence[str | tuple[str, str]] | None) -> list[tuple[str, str, str]]:
        """``(key, deployment, detail)`` per arm; a bad arm is a ValueError saying what to pass."""
        if arms is None:
            return [(d, self.client.deployment, d) for d in DETAILS]
        parsed = []
        for arm in arms:
            if isinstance(arm, str):
                deployment, detail = self.client.deployment, arm
            elif isinstance(arm, (tuple, list)) and len(arm) == 2 and all(isinstance(x, str) for x in arm):
                deployment, detail = arm[0], arm[1]
            else:
                raise ValueError(
                    f"compare arm {arm!r} is not a detail or a (deployment, detail) pair; pass e.g. 'high' or "
                    "('gpt-4.1-mini', 'high')"
                )
            if detail not in DETAILS:
                raise ValueError(f"compare arm {arm!r}: detail {detail!r} is not one of {', '.join(DETAILS)}")
            parsed.append((deployment, detail))
        if not parsed:
            raise ValueError("compare arms are empty: pass at least one, e.g. ['low', 'high']")
        one_deployment = len({d for d, _ in parsed}) == 1 and parsed[0][0] == self.client.deployment
        keys = [detail if one_deployment else f"{dep} · {detail}" for dep, detail in parsed]
        if len(set(keys)) != len(keys):
            raise ValueError(f"compare arms repeat one another: {keys}; give each arm once")
        return [(k, dep, detail) for k, (dep, detail) in zip(keys, parsed)]

    def _client_for(self, deployment: str) -> Client:
        if deployment == self.client.deployment:
            return self.client
        return self.client.with_deployment(deployment)

    def _empty_columns(self) -> dict[str, CompareColumn]:
        cols = {}
        for key, dep, detail in self.arms:
            try:
                model = self._client_for(dep).token_model
            except VizlabError:
                model = self.client.token_model
            cols[key] = CompareColumn(detail, deployment=dep, token_model=model, label=key)
        return cols

    def set_image(self, source: Any) -> EncodedImage:
        """Use ``source`` (path, bytes, upload record...); the pictures are drawn at once."""
        from vizlab.images.encode import encode_image

        self.image = encode_image(source)
        self.columns = self._empty_columns()
        for col in self.columns.values():
            self._draw_grid(col)
        return self.image

    def _draw_grid(self, col: CompareColumn) -> None:
        assert self.image is not None
        png, bd = tile_grid_png(self.image, model=col.token_model or self.client.token_model, detail=col.detail,
                                max_side=SEEN_MAX_SIDE)  # fmt: skip
        col.grid_png, col.explanation, col.image_tokens, col.seen_size = png, bd.explain(), bd.tokens, bd.scaled

    def run(self, on_column: Callable[[CompareColumn], None] | None = None) -> dict[str, CompareColumn]:
        """Ask the question on every arm at once (returns when all are in); errors land in each column."""
        from concurrent.futures import ThreadPoolExecutor

        if self.image is None:
            self.error = "Choose an image first."
            return self.columns
        self.error = ""
        self.columns = self._empty_columns()
        lock = threading.Lock()

        def one(key: str) -> None:
            col = self.columns[key]
            try:
                self._draw_grid(col)  # again: the client (and its token rules) may have changed
            except Exception as e:  # lands in the column, like a failed request
                col.error = error_text(e, self.client)
            else:
                self._ask(col)
            if on_column is not None:
                with lock:  # one widget update at a time
                    on_column(col)

        # The client warns (UserWarning) about cut replies; the columns show them. One filter for
        # all threads: catch_warnings is process-wide, so it is not entered per thread.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with ThreadPoolExecutor(max_workers=max(1, len(self.columns)), thread_name_prefix="vizlab-compare") as pool:
                for future in [pool.submit(one, key) for key in self.columns]:
                    future.result()
        return self.columns

    def _ask(self, col: CompareColumn) -> None:
        from vizlab.conversation.core import Conversation

        assert self.image is not None
        try:
            client = self._client_for(col.deployment)
            conv = Conversation(model=client.token_model)
            conv.add_user(self.question, [self.image], detail=col.detail)
            reply = client.chat(conv, max_tokens=self.max_tokens)
        except Exception as e:
            col.error = error_text(e, self.client)
            return
        col.answer = reply.text
        col.finish_reason = reply.finish_reason
        col.estimated_prompt = get_field(reply.estimate, "prompt_tokens")
        col.reported_prompt = get_field(reply.usage, "prompt_tokens")
        col.completion = get_field(reply.usage, "completion_tokens")
        col.cost = cost_total(reply.cost)
        col.latency_s = reply.latency_s


def escape(text: str) -> str:
    """HTML-escape text for an ipywidgets.HTML value, keeping line breaks."""
    return html.escape(text).replace("\n", "<br>")

