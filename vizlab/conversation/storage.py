"""The conversation file: the saved JSON document, atomic writes, URL redaction, the transcript.

Trade-offs: every save rewrites the whole file atomically (O(images) per change; a crash leaves
the old file or the new one); secrets never reach disk (metadata redacted, signed URLs saved
without their keys and refused until re-supplied); a damaged file is refused, not repaired.
Works on any object shaped like :class:`SavedState`, so it never imports
:mod:`vizlab.conversation`. Details: docs/internals.md#conversation
"""

from __future__ import annotations

import base64
import dataclasses
import glob
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from vizlab.conversation.costs import usage_field
from vizlab.conversation.retention import RetentionPolicy
from vizlab.conversation.turns import DETAILS, Turn, now_iso
from vizlab.errors import ConversationError, redact

if TYPE_CHECKING:
    from vizlab.images.encode import EncodedImage

__all__ = [
    "FILE_FORMAT",
    "FILE_VERSION",
    "SavedState",
    "url_key",
    "is_url",
    "url_label",
    "unsigned_url",
    "describe_unsigned",
    "clean_stale_temps",
    "jsonable",
    "atomic_write_bytes",
    "atomic_write_text",
    "human_bytes",
    "to_document",
    "read_document",
    "check_header",
    "read_images",
    "read_urls",
    "read_turns",
    "image_label",
    "to_markdown",
]


FILE_FORMAT = "vizlab.conversation"


FILE_VERSION = 1


_URL_SCHEMES = ("http://", "https://")


def url_key(url: str) -> str:
    """Key of an http(s) image URL in the URL map: SHA-256 of the URL string."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def is_url(source: object) -> bool:
    return isinstance(source, str) and source.lower().startswith(_URL_SCHEMES)


def url_label(url: str) -> str:
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


def unsigned_url(url: str) -> tuple[str, list[str]]:
    """``url`` without user info and without its signing / key-like query parameters, and the
    names of what was removed (empty: nothing secret, the URL is returned unchanged).

    >>> unsigned_url("https://acct.blob.core.windows.net/c/cat.png?sv=2024-11-04&sp=r&sig=SECRET&w=200")
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


def describe_unsigned(url: str) -> str:
    """An unsigned URL as a message shows it: scheme, host and path."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def clean_stale_temps(path: Path) -> list[Path]:
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


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses and SDK objects become dicts, tuples lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        total = getattr(type(value), "total", None)  # Cost.total is a property worth keeping
        if isinstance(total, property) and "total" not in out:
            out["total"] = jsonable(getattr(value, "total"))
        return out
    for method in ("to_dict", "model_dump"):  # vizlab objects, pydantic (openai SDK) objects
        fn = getattr(value, method, None)
        if callable(fn):
            return jsonable(fn())
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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never half: a
    temp file beside it (named with this PID, for :func:`clean_stale_temps`), fsynced, then renamed.
    The one copy (conversations, batch files and manifests use it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}


def _extension(mime: str) -> str:
    return _EXTENSIONS.get(mime, ".bin")


def human_bytes(n: int) -> str:
    """``human_bytes(2048)`` -> ``'2.0 KB'`` (powers of 1024, as file managers show them; the one copy).

    >>> human_bytes(512), human_bytes(3 * 1024 * 1024)
    ('512 B', '3.0 MB')
    """
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")



class SavedState(Protocol):
    """What the file and the transcript read of a conversation."""

    model: str
    max_images: int
    max_image_bytes: int | None
    fit: Any
    turns: list[Turn]
    images: dict[str, EncodedImage]
    urls: dict[str, str]
    urls_to_resupply: dict[str, str]

    @property
    def system(self) -> str | None: ...

    @property
    def retention(self) -> RetentionPolicy: ...


# --- writing ---------------------------------------------------------------------------------


def to_document(conv: SavedState) -> dict[str, Any]:
    """The JSON document ``Conversation.save`` writes (meta redacted, each image once as base64)."""
    return {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "saved": now_iso(),
        "system": conv.system,
        "model": conv.model,
        "settings": {
            "max_images": conv.max_images,
            "max_image_bytes": conv.max_image_bytes,
            "retention": conv.retention.name,
            "fit": list(conv.fit) if isinstance(conv.fit, tuple) else conv.fit,
        },
        "turns": [{**t.to_dict(), "meta": _redacted(jsonable(t.meta))} for t in conv.turns],
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
            for key, img in conv.images.items()
        },
        "urls": {key: unsigned_url(url)[0] for key, url in conv.urls.items()},
        # keys whose URL was saved without its signature / key-like parameters
        "unsigned_urls": sorted(
            key for key, url in conv.urls.items() if unsigned_url(url)[1] or key in conv.urls_to_resupply
        ),
    }


# --- reading ---------------------------------------------------------------------------------


def read_document(source: Path) -> Any:
    """The parsed JSON of the file at ``source``; ConversationError if missing, unreadable or not JSON."""
    where = os.fspath(source)
    try:
        raw = source.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConversationError(f"No conversation file at {where!r}; check the path.") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConversationError(f"Could not read the conversation file {where!r}: {e}.") from e
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ConversationError(
            f"The conversation file {where!r} is damaged: not valid JSON ({e.msg} at line "
            f"{e.lineno}, column {e.colno}). Restore a backup or start a new Conversation."
        ) from e


def check_header(doc: Any, where: str) -> Mapping[str, Any]:
    """Refuse a document that is not a vizlab conversation file of this version; return its settings."""
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
    return doc.get("settings") or {}


def read_images(doc: Mapping[str, Any], where: str) -> dict[str, EncodedImage]:
    """The stored images, each checked against its SHA-256 key."""
    from vizlab.images.encode import EncodedImage

    out: dict[str, EncodedImage] = {}
    for key, rec in doc.get("images", {}).items():
        data = base64.b64decode(rec["data"], validate=True)
        if hashlib.sha256(data).hexdigest() != key:
            raise ConversationError(
                f"The conversation file {where!r} is damaged: image {key[:12]}... does not "
                "match its SHA-256. Restore a backup or remove that image's turns."
            )
        out[key] = EncodedImage(
            data=data,
            mime=rec["mime"],
            width=rec["width"],
            height=rec["height"],
            name=rec.get("name"),
            original_width=rec.get("original_width", rec["width"]),
            original_height=rec.get("original_height", rec["height"]),
        )
    return out


def read_urls(doc: Mapping[str, Any], where: str) -> tuple[dict[str, str], dict[str, str]]:
    """(key -> URL, key -> URL saved unsigned and waiting to be re-supplied)."""
    urls: dict[str, str] = {}
    to_resupply: dict[str, str] = {}
    unsigned = set(doc.get("unsigned_urls", []))
    for key, url in doc.get("urls", {}).items():
        if not isinstance(url, str) or (key not in unsigned and url_key(url) != key):
            raise ConversationError(f"The conversation file {where!r} is damaged: URL entry {key[:12]}... is wrong.")
        urls[key] = url
        if key in unsigned:
            to_resupply[key] = url
    return urls, to_resupply


def read_turns(doc: Mapping[str, Any], where: str, known: Mapping[str, Any], urls: Mapping[str, str]) -> list[Turn]:
    """The turns, each checked: a known role, a detail level, and images that are stored."""
    turns: list[Turn] = []
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
        missing = [k for k in turn.images if k not in known and k not in urls]
        if missing:
            raise ConversationError(
                f"The conversation file {where!r} is damaged: turn {n} uses image "
                f"{missing[0][:12]}..., which is not stored in the file."
            )
        turns.append(turn)
    return turns


# --- the Markdown transcript -----------------------------------------------------------------


def image_label(key: str, images: Mapping[str, EncodedImage], urls: Mapping[str, str]) -> str:
    """How a transcript or placeholder names an image: its URL's last segment, or its name."""
    if key in urls:
        return url_label(urls[key])
    return images[key].name or f"image {key[:8]}"


def to_markdown(conv: SavedState, *, image_dir: str | os.PathLike[str] | None = None) -> str:
    """A readable transcript. With ``image_dir`` each stored image is written there once and
    linked as ``![name](image_dir/file)``; without it, a placeholder line names the image."""
    written: dict[str, str] = {}
    if image_dir is not None:
        folder = Path(image_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for key, img in conv.images.items():
            file = folder / f"{key[:16]}{_extension(img.mime)}"
            if not (file.exists() and file.read_bytes() == img.data):
                file.write_bytes(img.data)
            written[key] = file.as_posix()
    lines = [f"# Conversation ({conv.model}, retention {conv.retention.name})", ""]
    if conv.system:
        lines += ["**System:** " + conv.system, ""]
    for turn in conv.turns:
        lines += [f"### {turn.role.capitalize()} · {turn.created}", ""]
        if turn.text:
            lines += [turn.text, ""]
        for key in turn.images:
            if key in conv.urls:
                url = unsigned_url(conv.urls[key])[0]  # a transcript never holds a SAS token
                lines.append(f"![{url_label(url)}]({url})")
            elif key in written:
                lines.append(f"![{image_label(key, conv.images, conv.urls)}]({written[key]})")
            else:
                img = conv.images[key]
                lines.append(
                    f"*[image: {image_label(key, conv.images, conv.urls)}, {img.width}x{img.height}, "
                    f"{img.mime}, {human_bytes(img.nbytes)}, detail {turn.detail}]*"
                )
        if turn.images:
            lines.append("")
        if turn.role == "assistant" and turn.meta.get("usage"):
            usage = turn.meta["usage"]
            p = usage_field(usage, "prompt_tokens")
            c = usage_field(usage, "completion_tokens")
            lines += [f"<sub>usage: {p} prompt + {c} completion tokens</sub>", ""]
    return "\n".join(lines).rstrip() + "\n"
