"""The resolver: an image source resolved once to its origin and its bytes (or header size).

:func:`resolve` reduces a path, bytes, PIL image, ``FileUpload`` record or URL to a
:class:`Resolved`. Trade-offs: only regular files are read (non-blocking open, fstat: no FIFO or
``/dev/zero`` hangs); reads are bounded whatever ``st_size`` claims; for a size only the header
is read; URLs are never fetched; an upload's browser-given type is ignored. Pixel limits live in
:mod:`vizlab.images.encode`. Details: docs/internals.md#images
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image

from vizlab.errors import ImageError, ImageTooLargeError, NotARegularFileError, URLSchemeError
from vizlab.images.dataurl import SCHEME_RE, decode_data_url, describe_url, shorten
from vizlab.images.header import HeaderSize, read_fd_header_size, read_header_size, read_view_header_size

__all__ = [
    "RAW_INPUT_FACTOR",
    "OPEN_FLAGS",
    "Origin",
    "Read",
    "Resolved",
    "resolve",
    "megabytes",
]


# Inputs bigger than this many times max_bytes are refused before being read or decoded.
RAW_INPUT_FACTOR = 4

# What resolve reads: the whole source, its header's size only, or nothing yet (a path is checked).
Read = Literal["all", "header", "none"]


Origin = Literal["path", "bytes", "upload", "data URL", "URL", "PIL image"]


@dataclass(slots=True)
class Resolved:
    """A source reduced once to its origin and one of: bytes, a file not yet read (with its header
    size when asked for), a PIL image, or an http(s) URL."""

    name: str
    data: bytes | None = None
    path: str | os.PathLike[str] | None = None
    image: Image.Image | None = None
    url: str | None = None
    origin: Origin = "bytes"
    header: HeaderSize | None = None


def resolve(source: object, name: str | None, *, max_bytes: int | None, read: Read = "all") -> Resolved:
    """``source`` resolved once: what it is (:attr:`Resolved.origin`) and its bytes, or for
    ``read="header"`` its header's size (:mod:`vizlab.images.header`; a path is then never read
    whole, bytes never copied when the header is enough). URLs are never fetched."""
    # (Path, os.PathLike): a Path is matched before the slower ABC check
    if read == "header" and (not SCHEME_RE.match(source) if isinstance(source, str) else isinstance(source, (Path, os.PathLike))):
        found = _file_header(source, name)  # type: ignore[arg-type]  # the common case for token estimates, kept lean
        if found is not None:
            return found
        read = "none"  # odd files and every error: checked and worded below, sized by Pillow
    raw_limit = None if max_bytes is None else RAW_INPUT_FACTOR * max_bytes
    if isinstance(source, Image.Image):
        return Resolved(name or f"<PIL image {source.width}x{source.height} {source.mode}>", image=source, origin="PIL image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or f"<bytes {len(source)} B>"
        _check_raw_size(len(source), label, raw_limit)
        return _in_memory(source, label, "bytes", read)
    if isinstance(source, Mapping):
        return _resolve_upload(source, name, raw_limit, read)
    if isinstance(source, str):
        match = SCHEME_RE.match(source)
        if match:
            return _resolve_url(source, match.group(1).lower(), name, raw_limit, read)
        return _resolve_path(Path(source), source, name, raw_limit, read)
    if isinstance(source, os.PathLike):
        path = Path(source)
        return _resolve_path(path, str(path), name, raw_limit, read)
    if isinstance(source, (tuple, list)) and source and isinstance(source[0], Mapping):
        raise TypeError(
            "got a sequence of upload records (FileUpload.value?); pass one record, e.g. upload.value[0]"
        )
    raise TypeError(
        f"cannot use a {type(source).__name__} as an image source; pass a path, bytes, a PIL image, "
        "a FileUpload value record, an EncodedImage, or an http(s)/data: URL"
    )


def _in_memory(source: bytes | bytearray | memoryview, label: str, origin: Origin, read: Read) -> Resolved:
    """Bytes in memory; with ``read="header"`` the header is read first and a view copied only
    if the header is not enough."""
    header = read_view_header_size(source) if read == "header" else None
    if header is not None and not isinstance(source, bytes):
        return Resolved(label, origin=origin, header=header)
    data = source if isinstance(source, bytes) else bytes(source)  # one copy, only if needed
    return Resolved(label, data=data, origin=origin, header=header)


def _resolve_url(source: str, scheme: str, name: str | None, raw_limit: int | None, read: Read) -> Resolved:
    if scheme == "data":
        _, data = decode_data_url(source)
        label = name or f"<data URL {len(data)} B>"
        if raw_limit is not None and len(data) > raw_limit:  # inline: no second trip into this module
            _check_raw_size(len(data), label, raw_limit)
        return Resolved(label, data=data, origin="data URL", header=read_header_size(data) if read == "header" else None)
    if scheme in ("http", "https"):
        return Resolved(name or describe_url(source), url=source, origin="URL")
    raise URLSchemeError(
        f"{describe_url(source)}: URL scheme {scheme!r} is not allowed; images must be http(s) "
        "URLs, data: URLs, paths, bytes or PIL images. For a local file pass its path "
        "(a name containing ':' can be passed as a pathlib.Path).",
        source=describe_url(source),
        scheme=scheme,
    )


def _resolve_upload(record: Mapping[str, object], name: str | None, raw_limit: int | None, read: Read) -> Resolved:
    if "content" not in record:
        raise TypeError(
            f"a mapping source must be an ipywidgets FileUpload value record with a 'content' key; "
            f"got keys {sorted(map(str, record))}"
        )
    label = name or str(record.get("name") or "<upload>")
    content = record["content"]
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise TypeError(f"upload {label!r}: 'content' is a {type(content).__name__}, expected a memoryview or bytes")
    # The record's "type" is the browser's guess from the file name; it is deliberately ignored.
    _check_raw_size(len(content), label, raw_limit)
    return _in_memory(content, label, "upload", read)


def _resolve_path(path: Path, shown: str, name: str | None, raw_limit: int | None, read: Read) -> Resolved:
    label = name or path.name or shown
    try:
        if read == "all":
            with _open_regular(path, shown, label) as fh:
                return Resolved(label, data=_read_bounded(fh, label, raw_limit), origin="path")
        _check_regular(os.stat(path).st_mode, shown, label)
        return Resolved(label, path=path, origin="path")
    except FileNotFoundError as e:
        hint = ""
        if len(shown) > 64 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", shown):
            hint = " It looks like base64: pass base64.b64decode(...) bytes or a 'data:image/...;base64,' URL."
        raise ImageError(
            f"No such image file: {shorten(shown)!r} (relative paths start at {os.getcwd()}). "
            f"Check the path, or pass bytes, a PIL image or an http(s)/data: URL.{hint}",
            source=shorten(shown),
        ) from e
    except IsADirectoryError as e:
        raise ImageError(f"{shorten(shown)!r} is a directory, not an image file; pass one file.", source=label) from e
    except ImageError:
        raise
    except ValueError as e:  # "embedded null byte": not a path the OS can open
        raise ImageError(
            f"{shorten(shown)!r} is not a usable file path ({e}); pass the path of an image file, bytes "
            "or a data: URL.",
            source=shorten(repr(shown)),
        ) from e
    except OSError as e:
        raise ImageError(f"Cannot read image file {shorten(shown)!r}: {e.strerror or e}. Check its permissions.", source=label) from e


def _file_header(path: str | os.PathLike[str], name: str | None) -> Resolved | None:
    """A path's header size (vizlab's own parser), or None to take the checked route (odd files,
    odd names and every error, which that route words).

    One non-blocking open (a FIFO cannot hang it), one fstat (special files are refused by the
    checked route), one 4 KB read (and a ``pread`` with read-ahead past big JPEG APP segments or to
    a WEBP's EXIF and XMP chunks); never the pixel data, and no ``pathlib`` on the way (it cost more
    than the read).
    """
    shown = os.fspath(path)
    base = shown.rpartition(os.sep)[2] if os.altsep is None else os.path.basename(shown)  # basename, faster
    if not (name or base) or base in (".", ".."):  # a name only pathlib words right
        return None
    try:
        fd = os.open(shown, OPEN_FLAGS)  # shown, not path: a Path would be converted again
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        header = read_fd_header_size(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    if header is None:
        return None
    return Resolved(name or base, None, path, None, None, "path", header)  # positional: half the cost


_FILE_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
)


def _check_regular(mode: int, shown: str, label: str) -> None:
    """Refuse anything but a regular file: /dev/zero never ends, a FIFO with no writer blocks."""
    if stat.S_ISREG(mode):
        return
    kind = next((k for test, k in _FILE_KINDS if test(mode)), "special file")
    if kind == "directory":
        raise IsADirectoryError(21, "Is a directory", shown)
    raise NotARegularFileError(
        f"{shorten(shown)!r} is a {kind}, not a regular file, so vizlab did not read it (it could "
        "never end or block forever). Save the image to a file and pass that path, or pass bytes.",
        source=label,
        kind=kind,
    )


@contextlib.contextmanager
def _open_regular(path: Path, shown: str, label: str) -> Iterator[io.BufferedReader]:
    """Open ``path`` for reading only if it is a regular file, checked before and after opening.

    The stat before refuses devices and FIFOs without touching them; the open is non-blocking
    (a FIFO swapped in between cannot hang it) and the fstat after closes that race.
    """
    _check_regular(os.stat(path).st_mode, shown, label)
    fd = os.open(path, OPEN_FLAGS)
    try:
        _check_regular(os.fstat(fd).st_mode, shown, label)
    except BaseException:
        os.close(fd)
        raise
    with open(fd, "rb") as fh:
        yield fh


_READ_CHUNK = 1 << 20


def _read_bounded(fh: io.BufferedReader, label: str, raw_limit: int | None) -> bytes:
    """The whole file, but never more than ``raw_limit`` bytes, whatever ``st_size`` claims
    (files in /proc say 0; a file can grow while it is read)."""
    claimed = os.fstat(fh.fileno()).st_size
    _check_raw_size(claimed, label, raw_limit)
    limit = sys.maxsize if raw_limit is None else raw_limit
    data = fh.read(claimed + 1) if claimed else b""  # +1: sees whether the file is longer than it said
    if len(data) <= claimed and claimed:
        return data
    parts = [data]
    total = len(data)
    while True:
        chunk = fh.read(min(_READ_CHUNK, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            _check_raw_size(total, label, raw_limit)
    return b"".join(parts)


def _check_raw_size(size: int, name: str, raw_limit: int | None) -> None:
    if raw_limit is not None and size > raw_limit:
        raise ImageTooLargeError(
            f"{name} is {megabytes(size)}, more than {RAW_INPUT_FACTOR} x the {megabytes(raw_limit // RAW_INPUT_FACTOR)} "
            "image limit, so vizlab will not read it. Downscale or recompress it with another tool "
            "first (or pass a larger max_bytes if your service allows it).",
            source=name,
            size=size,
            limit=raw_limit,
        )


OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def megabytes(n: int) -> str:
    """``n`` bytes as "12.3 MB" (MiB), as size messages show them."""
    return f"{n / (1024 * 1024):.1f} MB"
