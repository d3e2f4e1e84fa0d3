"""Image sources to data URLs and chat content parts, with the MIME type read from the bytes.

The how-to this project follows guesses the MIME type from the file name; a PNG saved as
``.jpg`` (or an upload whose browser-reported ``type`` is wrong) then goes out labelled
wrongly. Here the type always comes from the magic bytes, and every input is checked before
it is sent.

Trade-offs this module makes:

* **Pass-through over re-encoding.** JPEG, PNG, WEBP and still GIF are sent byte for byte
  when ``fit`` is None (or ``fit`` would not change the size): no quality loss, no work, and
  the SHA-256 of what is sent is the SHA-256 of the file. Any other raster format Pillow reads
  (BMP, TIFF, ICO, PPM, TGA...) is converted to PNG (lossless); AVIF/HEIC that a Pillow plugin
  can read become JPEG. Re-encoded images keep their ICC colour profile but lose EXIF, XMP and
  comments (camera GPS does not leave the machine). Photos (JPEG, lossy WEBP, AVIF/HEIC) are
  re-encoded as JPEG quality 85; graphics (PNG, GIF, BMP, lossless WEBP...) and anything with
  an alpha channel as PNG.
* **Cheap integrity checks on pass-through.** Decoding a 12 MP photo only to prove it is
  whole costs ~100 ms and ~36 MB, so pass-through checks structure instead: PNG runs
  ``Image.verify()`` (walks the chunks and their CRCs without inflating pixels); JPEG must
  have an end-of-image marker (FF D9) after its first start-of-scan, which tolerates trailing
  data such as zero padding, Motion-Photo videos and MPO/Ultra-HDR second images; WEBP's RIFF
  length must fit in the data; GIF (small, palette) is decoded. A JPEG damaged *inside* its
  scan data but with an intact end marker is therefore not caught here; the service decodes it
  as best it can, as a browser would.
* **Bombs are refused from the header.** ``width * height`` is checked against
  :data:`MAX_PIXELS` before any pixel is decoded. Pillow's own guard (a warning above
  89.5 MP, an error above 179 MP) is folded into ours, so callers see one error class and no
  stray ``DecompressionBombWarning``. (The warning is silenced with ``warnings.catch_warnings``,
  which is process-wide and not thread-safe on Python < 3.14.)
* **Size limits.** The output must be at most ``max_bytes``. The raw input is only refused
  before reading when it is more than 4 x ``max_bytes``: below that, ``fit`` may still
  shrink it under the limit, so the check happens after fitting.
* **http(s) URLs are never fetched.** :func:`to_data_url` and :func:`image_part` pass them
  through unchanged (the service fetches them); everything that needs the pixels
  (:func:`encode_image`, :func:`image_size`, :func:`open_image`) refuses them. Any other URL
  scheme (``file:``, ``javascript:``, ``ftp:``...) is refused everywhere.
* **"high" geometry is the token estimator's.** :func:`fit_size` scales exactly as
  ``vizlab.tokens.scale_for_high`` does, so the image we send is the image that was costed.

Programming mistakes (a ``fit`` or source of the wrong type) raise ``ValueError`` /
``TypeError``; problems with the image itself raise :class:`vizlab.errors.ImageError`
subclasses that name the input.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import functools
import hashlib
import io
import os
import re
import stat
import struct
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union
from urllib.parse import urlsplit, urlunsplit

from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from vizlab import geometry, imageheader, models
from vizlab.errors import (
    CorruptImageError,
    DataURLError,
    DecompressionBombError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    NotARegularFileError,
    UnknownDetailError,
    UnsupportedImageError,
    URLSchemeError,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_PIXELS",
    "SERVICE_FORMATS",
    "DETAIL_LEVELS",
    "EncodedImage",
    "sniff_mime",
    "encode_image",
    "to_data_url",
    "image_part",
    "decode_data_url",
    "build_data_url",
    "decode_base64_image",
    "describe_url",
    "image_size",
    "open_image",
    "fit_size",
    "check_fit",
]

# 20 MB per image: "Up to 20MB per image", OpenAI "Images and vision" guide, image input
# requirements (platform.openai.com/docs/guides/images), read 2026-11-21 from a stored copy.
# Azure's "GPT-4 Turbo with Vision concepts" page lists a "maximum input image size" too (the copy
# read 2026-11-21 was cut before the number). Taken as MiB: the looser reading of "MB".
DEFAULT_MAX_BYTES: int = 20 * 1024 * 1024

# Decompression-bomb limit, in pixels of the header's width x height. 100 MP decodes to about
# 300 MB of RGB (400 MB RGBA), the most we are willing to let one cell allocate. It is a little
# above Pillow's own warning threshold (Image.MAX_IMAGE_PIXELS = 89,478,485 in Pillow 10-13),
# passes every ordinary camera and phone photo (12-64 MP), and refuses crafted headers such as
# 30000 x 30000 (900 MP). Phones' 108/200 MP full-resolution modes are refused too: those files
# are also over the 20 MB limit; set ``vizlab.images.MAX_PIXELS`` higher to accept them (it is
# read at call time). Pillow's hard error above 2 x Image.MAX_IMAGE_PIXELS still applies.
MAX_PIXELS: int = 100_000_000

# What the service accepts: "PNG, JPEG, WEBP, non-animated GIF", OpenAI "Images and vision"
# guide, image input requirements (platform.openai.com/docs/guides/images), read 2026-11-21.
SERVICE_FORMATS: frozenset[str] = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})

# detail values of an image_url part: Azure OpenAI "Use vision-enabled chat models" how-to,
# "Detail parameter settings" (low, high, auto; auto is the default), read 2026-11-21.
# "original" (gpt-5.4 and later): OpenAI "Images and vision" guide, newest revision (vizlab.models).
DETAIL_LEVELS: frozenset[str] = frozenset(models.DETAILS)

# "low": the model sees a 512 x 512 version (Azure how-to, detail parameter; OpenAI guide: "Low-
# resolution: 512px x 512px"), read 2026-11-21. "high" is gpt-4o's tile rule in vizlab.models (2048 box,
# short side 768, the other side rounded down: newest guide revision), cited there.
LOW_BOX = 512
_GPT4O_RULE = models.lookup("gpt-4o").image_rule()
assert isinstance(_GPT4O_RULE, models.TileRule)
_HIGH_RULE: models.TileRule = _GPT4O_RULE

# Inputs bigger than this many times max_bytes are refused before being read or decoded.
RAW_INPUT_FACTOR = 4

JPEG_QUALITY = 85  # photos re-encoded after fit: visually lossless at the sizes the model sees

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Image.Image, "EncodedImage", Mapping[str, Any]]
Fit = Union[None, str, tuple[int, int]]

# Sniffed kinds that are real files but not something the service (or Pillow) takes.
_UNSUPPORTED_KINDS = {
    "image/svg+xml": "svg",
    "application/pdf": "pdf",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/avif": "avif",
}
_PHOTO_MIMES = {"image/jpeg", "image/avif", "image/heic", "image/heif"}
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")  # 2+ letters: "C:\x" stays a path
_BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_HEAD_BYTES = imageheader.HEAD_BYTES  # enough for every signature sniff_mime looks at

# base64 in C with SIMD (pybase64, from PyPI) when installed: 2-3.5x the standard library on the
# reference machine (issue 14); the standard library otherwise, with the same strictness.
try:
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover - pybase64 is a dependency; the fallback keeps vizlab usable
    _pybase64 = None  # type: ignore[assignment]


# --- the value everything returns ---------------------------------------------------------------


@dataclass(frozen=True)
class EncodedImage:
    """An image ready to send: bytes, their MIME type (sniffed), pixel size."""

    data: bytes
    mime: str
    width: int
    height: int
    name: str
    original_width: int
    original_height: int

    def __repr__(self) -> str:  # the default repr would print megabytes of bytes
        return (
            f"EncodedImage(name={self.name!r}, mime={self.mime!r}, {self.width}x{self.height}, "
            f"original {self.original_width}x{self.original_height}, {self.nbytes} B)"
        )

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of :attr:`data`: a content address (the same image is stored once)."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def data_url(self) -> str:
        """``data:<mime>;base64,<data>`` (built by :func:`build_data_url`)."""
        return build_data_url(self.mime, self.data)

    def part(self, detail: str = "auto") -> dict[str, Any]:
        """The Chat Completions content part for this image.

        >>> img = EncodedImage(b"...", "image/png", 1, 1, "x", 1, 1)
        >>> img.part("low")["image_url"]["detail"]
        'low'
        """
        return {"type": "image_url", "image_url": {"url": self.data_url, "detail": _check_detail(detail)}}


# --- public functions ---------------------------------------------------------------------------


def build_data_url(mime: str, data: bytes) -> str:
    """``data:<mime>;base64,<data>``: the only place vizlab builds a data URL.

    >>> build_data_url("image/png", b"\\x89PNG")
    'data:image/png;base64,iVBORw=='
    """
    return _data_url_buffer(mime, data).decode("ascii")


_B64_CHUNK = 3 * 64 * 1024  # 192 KiB: a multiple of 3 (no padding between chunks), small next to an image


def _data_url_buffer(mime: str, data: bytes) -> bytearray:
    """The data URL as ASCII bytes in one pre-sized buffer, base64 written chunk by chunk.

    One allocation of the final size instead of base64 bytes + str + f-string copies: this keeps
    to_data_url's peak memory under 3x the file (bench/bench_data_urls.py measures it).
    """
    prefix = f"data:{mime};base64,".encode("ascii")
    size = len(prefix) + 4 * ((len(data) + 2) // 3)
    buffer = bytearray(size)
    buffer[: len(prefix)] = prefix
    position = len(prefix)
    encode = _b64encode_chunk
    with memoryview(data) as view:
        for start in range(0, len(view), _B64_CHUNK):
            encoded = encode(view[start : start + _B64_CHUNK])
            buffer[position : position + len(encoded)] = encoded
            position += len(encoded)
    return buffer


def _b64encode_chunk(chunk: memoryview) -> bytes:
    if _pybase64 is not None:
        return bytes(_pybase64.b64encode(chunk))
    return binascii.b2a_base64(chunk, newline=False)


def _b64decode_strict(payload: str) -> bytes:
    """Canonical base64 only (standard alphabet, '=' only as final padding, length a multiple of 4),
    checked in C: pybase64's validating decoder, else the standard library's strict mode (3.11+),
    else a regular expression (3.10). Raises binascii.Error (or UnicodeEncodeError) with the reason."""
    if _pybase64 is not None:
        try:
            return bytes(_pybase64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError):
            pass  # fall through: the standard library says *why* it is invalid
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(payload.encode("ascii"), strict_mode=True)
    if not _BASE64_RE.fullmatch(payload):  # pragma: no cover - Python 3.10 only
        raise binascii.Error("characters outside the base64 alphabet, or misplaced '=' padding")
    return base64.b64decode(payload.encode("ascii"), validate=True)  # pragma: no cover


def decode_base64_image(text: str, *, source: str = "base64 image data") -> bytes:
    """Bytes of the 2023 preview format's ``{"image": "<base64>"}`` payload: whitespace (line
    breaks) ignored, standard alphabet and padding required. Raises :class:`DataURLError`.

    >>> decode_base64_image("iVBO\\nRw==")
    b'\\x89PNG'
    """
    if not isinstance(text, str):
        raise DataURLError(f"{source} is a {type(text).__name__}, not a base64 string.", source=source)
    try:
        return _b64decode_strict("".join(text.split()))
    except (binascii.Error, ValueError) as e:
        raise DataURLError(
            f"{source} is not valid base64 ({e}); encode the image bytes with base64.b64encode "
            "(standard alphabet, '=' padding).",
            source=source,
        ) from e


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of ``data`` from its magic bytes alone, or None if it is not recognised.

    Recognises the formats we send or convert (JPEG, PNG, GIF, WEBP, BMP, TIFF) and, so that
    errors can name them, SVG, PDF and the ISO-BMFF images (HEIC, HEIF, AVIF).

    >>> sniff_mime(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
    'image/png'
    >>> sniff_mime(b"hello") is None
    True
    """
    head = bytes(data[:_HEAD_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    # "BM" alone matches text ("BMW..."); also require a known DIB header size at offset 14:
    # BITMAPCOREHEADER 12, BITMAPINFOHEADER 40, V2/V3 52/56, OS/2 v2 64, V4 108, V5 124 (Microsoft
    # Win32 "Bitmap Header Types"; the sizes Pillow's BmpImagePlugin accepts; not re-verified here).
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack("<I", head[14:18])[0] in (12, 40, 52, 56, 64, 108, 124):
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "image/tiff"
    if head.startswith(b"%PDF"):
        return "application/pdf"
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    text = text.lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!--", b"<!doctype")) and b"<svg" in text):
        return "image/svg+xml"
    return None


def encode_image(
    source: Source,
    *,
    fit: Fit = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str | None = None,
) -> EncodedImage:
    """Read, check and (if asked) fit an image, returning bytes ready to send.

    ``source`` is a path (str or Path), bytes-like, a PIL image, an ipywidgets 8 ``FileUpload``
    value record, an :class:`EncodedImage` (returned as is when ``fit`` is None) or a ``data:``
    URL. http(s) URLs are not fetched: pass them to :func:`image_part` instead.
    ``fit`` is None (keep the bytes), ``"low"``, ``"high"`` or a ``(max_w, max_h)`` box; see
    :func:`fit_size`. ``name`` overrides the name used in messages and on the result.

    >>> encode_image(b"\\x89PNG\\r\\n\\x1a\\n\\x00\\x00\\x00\\rIHDR\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x01"
    ...              b"\\x08\\x06\\x00\\x00\\x00\\x1f\\x15\\xc4\\x89\\x00\\x00\\x00\\rIDATx\\x9cc\\xf8\\xcf"
    ...              b"\\xc0\\xf0\\x1f\\x00\\x05\\x00\\x01\\xff\\x89\\x99=\\x1d\\x00\\x00\\x00\\x00IEND\\xaeB`\\x82").mime
    'image/png'
    """
    check_fit(fit)
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive number of bytes (int), got {max_bytes!r}")
    if isinstance(source, EncodedImage) and fit is None:
        image = source if name is None else dataclasses.replace(source, name=name)
        _check_output_size(image.nbytes, image.name, max_bytes, fit)
        return image
    resolved = _resolve(source, name, max_bytes=max_bytes)
    if resolved.url is not None:
        raise ImageError(
            f"{resolved.name}: vizlab does not fetch http(s) URLs, so it cannot read, check or fit "
            "this image. Pass the URL to image_part() or to_data_url() to let the service fetch it, "
            "or download the file and pass its path.",
            source=resolved.name,
        )
    if resolved.image is not None:
        return _encode_pil(resolved.image, resolved.name, fit, max_bytes)
    assert resolved.data is not None
    return _encode_bytes(resolved.data, resolved.name, fit, max_bytes)


def to_data_url(source: Source, *, fit: Fit = None, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """``data:<mime>;base64,...`` for ``source``; an http(s) URL comes back unchanged (not fetched).

    A ``data:`` URL is validated and returned in canonical form (MIME sniffed from its bytes).
    """
    url = _http_url(source)
    if url is not None:
        _refuse_fit_for_url(url, fit)
        return url
    image = encode_image(source, fit=fit, max_bytes=max_bytes)
    if isinstance(source, EncodedImage) and image is source:
        return image.data_url  # the caller keeps the bytes alive anyway
    buffer = _data_url_buffer(image.mime, image.data)
    del image  # release the image bytes before the str is made: peak ~2.7x the file, not 3.7x
    return buffer.decode("ascii")


def image_part(
    source: Source,
    *,
    detail: str = "auto",
    fit: Fit = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    """A Chat Completions content part ``{"type": "image_url", "image_url": {url, detail}}``.

    An http(s) URL goes into the part unchanged: the service fetches it, vizlab does not.

    >>> image_part("https://example.com/cat.png", detail="low")["image_url"]
    {'url': 'https://example.com/cat.png', 'detail': 'low'}
    """
    _check_detail(detail)
    url = _http_url(source)
    if url is not None:
        _refuse_fit_for_url(url, fit)
        return {"type": "image_url", "image_url": {"url": url, "detail": detail}}
    return encode_image(source, fit=fit, max_bytes=max_bytes).part(detail)


def decode_data_url(url: str) -> tuple[str, bytes]:
    """Split and check a ``data:<image mime>;base64,<data>`` URL; return (declared MIME, bytes).

    Strict: the ``;base64`` marker, a comma, an ``image/*`` MIME type and canonical base64 (no
    whitespace, no URL-safe alphabet, correct padding) are all required.

    >>> decode_data_url("data:image/png;base64,iVBORw==")
    ('image/png', b'\\x89PNG')
    """
    if not isinstance(url, str):
        raise DataURLError(
            f"decode_data_url() takes a data URL string, not {type(url).__name__}; build one with "
            "vizlab.to_data_url(path_or_bytes).",
            source=type(url).__name__,
        )
    label = _describe_data_url(url)
    if not url[:5].lower() == "data:":
        raise DataURLError(f"{label} does not start with 'data:'; pass a data URL, a path or bytes.", source=label)
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise DataURLError(
            f"{label} has no comma; a data URL is 'data:image/png;base64,<data>'. "
            "Build it with vizlab.to_data_url().",
            source=label,
        )
    params = [p.strip() for p in header.split(";")]
    if params[-1].lower() != "base64":
        raise DataURLError(
            f"{label} is not base64-encoded (no ';base64' before the comma); images must be sent "
            "as 'data:<mime>;base64,<data>'. Build it with vizlab.to_data_url().",
            source=label,
        )
    mime = params[0].lower()
    if not mime.startswith("image/"):
        raise DataURLError(
            f"{label} declares MIME type {mime or '(none)'!r}, not an image/* type; "
            "send an image, e.g. build the URL with vizlab.to_data_url(path).",
            source=label,
        )
    if not payload:
        raise DataURLError(f"{label} has no data after the comma; it holds no image.", source=label)
    try:
        data = _b64decode_strict(payload)  # '=' only at the end, length a multiple of 4
    except (UnicodeEncodeError, binascii.Error, ValueError) as e:
        raise DataURLError(
            f"{label} has invalid base64 data ({e}); it must be standard base64 (A-Z a-z 0-9 + /, "
            "'=' padding, no spaces or line breaks). Re-encode the image with vizlab.to_data_url().",
            source=label,
        ) from e
    return mime, data


def image_size(source: Source, *, name: str | None = None) -> tuple[int, int]:
    """(width, height) as displayed, read from the header only: no pixel is decoded.

    EXIF orientations 5-8 (quarter turns) swap width and height. Fast enough to run over
    thousands of files for token estimates: a path is opened lazily, never read whole.
    Refuses the same inputs :func:`encode_image` refuses (bombs, SVG, PDF, URLs...).
    ``name`` is how messages name the input (default: the file name, or a short description).
    (PNG orientation is seen only if its eXIf chunk precedes the pixel data, as writers do.)
    """
    if isinstance(source, EncodedImage):
        return source.width, source.height
    if isinstance(source, os.PathLike) or (isinstance(source, str) and not _SCHEME_RE.match(source)):
        fast = _file_header_size(source, name)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        fast = _bytes_header_size(source, name)
    else:
        fast = None
    if fast is not None:
        return fast
    resolved = _resolve(source, name, max_bytes=None, read_files=False)
    if resolved.url is not None:
        raise ImageError(
            f"{resolved.name}: vizlab does not fetch http(s) URLs, so it cannot read this image's "
            "size. Download the file and pass its path.",
            source=resolved.name,
        )
    if resolved.image is not None:
        return _oriented_size(resolved.image)
    with _open_checked(resolved) as im:
        return _oriented_size(im)


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _file_header_size(path: str | os.PathLike[str], name: str | None) -> tuple[int, int] | None:
    """The displayed size from vizlab's own header parser (:mod:`vizlab.imageheader`), or None to
    take the general path (odd files, and every error, which that path words and raises).

    One non-blocking open, one fstat, one 4 KB read (a few small ``pread`` calls more for big
    JPEG APP segments or a WEBP EXIF chunk); never the pixel data, never a special file.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)  # non-blocking: a FIFO cannot hang it; fstat refuses it next
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, _HEAD_BYTES)
        found = imageheader.read_header_size(head, functools.partial(_pread, fd))
    except OSError:
        return None
    finally:
        os.close(fd)
    return _checked_header(found, lambda: name or Path(path).name or os.fspath(path))


def _pread(fd: int, offset: int, size: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, size)  # pragma: no cover


def _bytes_header_size(data: bytes | bytearray | memoryview, name: str | None) -> tuple[int, int] | None:
    raw = data if isinstance(data, bytes) else bytes(data[:_HEAD_BYTES])
    fetch = None if isinstance(data, bytes) else (lambda offset, size: bytes(data[offset : offset + size]))
    return _checked_header(imageheader.read_header_size(raw, fetch), lambda: name or f"<bytes {len(data)} B>")


def _checked_header(found: imageheader.HeaderSize | None, label: Callable[[], str]) -> tuple[int, int] | None:
    """``found``'s displayed size after the bomb check (from the header), or None."""
    if found is None:
        return None
    pixels = found.width * found.height
    if pixels > MAX_PIXELS:
        raise _bomb(label(), pixels)
    if Image.MAX_IMAGE_PIXELS is not None and pixels > 2 * Image.MAX_IMAGE_PIXELS:
        return None  # MAX_PIXELS was raised past Pillow's hard limit: let Pillow refuse it
    return found.displayed


def open_image(source: Source) -> Image.Image:
    """The image fully decoded, EXIF orientation applied, first frame of an animation.

    The result owns its pixels (no open file behind it). A PIL image passed in is not modified.
    """
    resolved = _resolve(source, None, max_bytes=None)
    if resolved.url is not None:
        raise ImageError(
            f"{resolved.name}: vizlab does not fetch http(s) URLs. Download the file and pass its path.",
            source=resolved.name,
        )
    if resolved.image is not None:
        with _pil_guard(resolved.name, recognised=True):
            return ImageOps.exif_transpose(resolved.image)
    with _open_checked(resolved) as im, _pil_guard(resolved.name, recognised=True):
        im.load()
        return ImageOps.exif_transpose(im)


def fit_size(width: int, height: int, fit: Fit) -> tuple[int, int]:
    """The size an image of ``width`` x ``height`` is sent at under ``fit``; never upscales.

    * None: unchanged.
    * ``"low"``: fit within 512 x 512.
    * ``"high"``: fit within 2048 x 2048 (sides rounded), then, if the short side is over 768,
      scale so it is exactly 768 (long side rounded down), as the service does and exactly as
      ``vizlab.tokens.scale_for_high``.
    * ``(max_w, max_h)``: fit within that box.

    Aspect ratio is kept to within rounding; each side is ``max(1, round(side * scale))``.

    >>> fit_size(4000, 3000, "high")
    (1024, 768)
    >>> fit_size(2048, 4096, "high")
    (768, 1536)
    >>> fit_size(640, 480, "high")
    (640, 480)
    >>> fit_size(1000, 250, "low")
    (512, 128)
    """
    check_fit(fit)
    if isinstance(width, bool) or isinstance(height, bool) or not isinstance(width, int) or not isinstance(height, int):
        raise TypeError(f"fit_size needs integer width and height, got {width!r} x {height!r}")
    if width < 1 or height < 1:
        raise ValueError(f"fit_size needs a positive width and height, got {width} x {height}")
    if fit is None:
        return width, height
    if fit == "high":
        # The service's own resize (gpt-4o's tile rule in the registry's newest revision), by the
        # same geometry the token count uses, so the image sent is exactly the image that was costed.
        rule = _HIGH_RULE
        fw, fh = geometry.fit_in_box(width, height, rule.box)
        return geometry.scale_short_side(fw, fh, rule.short_side, rounding=rule.short_rounding)
    box_w, box_h = fit if isinstance(fit, tuple) else (LOW_BOX, LOW_BOX)
    return _fit_box(width, height, box_w, box_h)


def _fit_box(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """Scale down (never up) to fit ``box_w`` x ``box_h``; each side ``max(1, round(side * s))``."""
    scale = min(1.0, box_w / width, box_h / height)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


# --- resolving a source -------------------------------------------------------------------------


@dataclass
class _Resolved:
    """A source reduced to one of: bytes, a file not yet read, a PIL image, or an http(s) URL."""

    name: str
    data: bytes | None = None
    path: Path | None = None
    image: Image.Image | None = None
    url: str | None = None


def _resolve(source: Source, name: str | None, *, max_bytes: int | None, read_files: bool = True) -> _Resolved:
    raw_limit = None if max_bytes is None else RAW_INPUT_FACTOR * max_bytes
    if isinstance(source, EncodedImage):
        return _Resolved(name or source.name, data=source.data)
    if isinstance(source, Image.Image):
        return _Resolved(name or f"<PIL image {source.width}x{source.height} {source.mode}>", image=source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = source if isinstance(source, bytes) else bytes(source)  # one copy, only if needed
        label = name or f"<bytes {len(data)} B>"
        _check_raw_size(len(data), label, raw_limit)
        return _Resolved(label, data=data)
    if isinstance(source, Mapping):
        return _resolve_upload(source, name, raw_limit)
    if isinstance(source, str):
        match = _SCHEME_RE.match(source)
        if match:
            scheme = match.group(1).lower()
            if scheme == "data":
                _, data = decode_data_url(source)
                label = name or f"<data URL {len(data)} B>"
                _check_raw_size(len(data), label, raw_limit)
                return _Resolved(label, data=data)
            if scheme in ("http", "https"):
                return _Resolved(name or describe_url(source), url=source)
            raise URLSchemeError(
                f"{describe_url(source)}: URL scheme {scheme!r} is not allowed; images must be http(s) "
                "URLs, data: URLs, paths, bytes or PIL images. For a local file pass its path "
                "(a name containing ':' can be passed as a pathlib.Path).",
                source=describe_url(source),
                scheme=scheme,
            )
        return _resolve_path(Path(source), source, name, raw_limit, read_files)
    if isinstance(source, os.PathLike):
        path = Path(source)
        return _resolve_path(path, str(path), name, raw_limit, read_files)
    if isinstance(source, (tuple, list)) and source and isinstance(source[0], Mapping):
        raise TypeError(
            "got a sequence of upload records (FileUpload.value?); pass one record, e.g. upload.value[0]"
        )
    raise TypeError(
        f"cannot use a {type(source).__name__} as an image source; pass a path, bytes, a PIL image, "
        "a FileUpload value record, an EncodedImage, or an http(s)/data: URL"
    )


def _resolve_upload(record: Mapping[str, Any], name: str | None, raw_limit: int | None) -> _Resolved:
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
    data = content if isinstance(content, bytes) else bytes(content)
    _check_raw_size(len(data), label, raw_limit)
    return _Resolved(label, data=data)


def _resolve_path(path: Path, shown: str, name: str | None, raw_limit: int | None, read: bool) -> _Resolved:
    label = name or path.name or shown
    try:
        if read:
            with _open_regular(path, shown, label) as fh:
                data: bytes | None = _read_bounded(fh, label, raw_limit)
        else:
            _check_regular(os.stat(path).st_mode, shown, label)
            data = None
    except FileNotFoundError as e:
        hint = ""
        if len(shown) > 64 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", shown):
            hint = " It looks like base64: pass base64.b64decode(...) bytes or a 'data:image/...;base64,' URL."
        raise ImageError(
            f"No such image file: {_short(shown)!r} (relative paths start at {os.getcwd()}). "
            f"Check the path, or pass bytes, a PIL image or an http(s)/data: URL.{hint}",
            source=_short(shown),
        ) from e
    except IsADirectoryError as e:
        raise ImageError(f"{_short(shown)!r} is a directory, not an image file; pass one file.", source=label) from e
    except ImageError:
        raise
    except ValueError as e:  # "embedded null byte": not a path the OS can open
        raise ImageError(
            f"{_short(shown)!r} is not a usable file path ({e}); pass the path of an image file, bytes "
            "or a data: URL.",
            source=_short(repr(shown)),
        ) from e
    except OSError as e:
        raise ImageError(f"Cannot read image file {_short(shown)!r}: {e.strerror or e}. Check its permissions.", source=label) from e
    return _Resolved(label, data=data, path=None if read else path)


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
        f"{_short(shown)!r} is a {kind}, not a regular file, so vizlab did not read it (it could "
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
    fd = os.open(path, _OPEN_FLAGS)
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


# --- encoding ----------------------------------------------------------------------------------


def _encode_bytes(data: bytes, name: str, fit: Fit, max_bytes: int) -> EncodedImage:
    mime = _sniff_or_refuse(data, name)
    with _open_checked(_Resolved(name, data=data), mime=mime) as im, _pil_guard(name, recognised=mime is not None):
        width, height = _oriented_size(im)
        target = fit_size(width, height, fit)
        frames = _frame_count(im)
        if frames == 1 and mime in SERVICE_FORMATS and target == (width, height):
            assert mime is not None
            _check_output_size(len(data), name, max_bytes, fit)
            _verify_passthrough(im, data, mime, name)
            return EncodedImage(data, mime, width, height, name, width, height)
        photo = frames == 1 and (mime in _PHOTO_MIMES or (mime == "image/webp" and _webp_is_lossy(data)))
        drafted = _draft_for(im, target)
        im.load()
        frame = ImageOps.exif_transpose(im)
    if frames > 1:  # warned outside _pil_guard, whose catch_warnings must not swallow it
        warnings.warn(
            f"{name} has {frames} frames (an animation or multi-page file); only the first "
            "frame is sent, as a still image.",
            UserWarning,
            stacklevel=3,
        )
    out, out_mime = _render(frame, target, photo=photo, name=name, drafted=drafted)
    _check_output_size(len(out), name, max_bytes, fit)
    return EncodedImage(out, out_mime, target[0], target[1], name, width, height)


def _encode_pil(image: Image.Image, name: str, fit: Fit, max_bytes: int) -> EncodedImage:
    frames = _frame_count(image)
    if frames > 1:
        warnings.warn(
            f"{name} has {frames} frames (an animation or multi-page file); only the current "
            "frame is sent, as a still image.",
            UserWarning,
            stacklevel=3,
        )
    with _pil_guard(name, recognised=True):
        frame = ImageOps.exif_transpose(image)
    width, height = frame.size
    target = fit_size(width, height, fit)
    photo = image.format in ("JPEG", "MPO", "AVIF", "HEIF")
    out, out_mime = _render(frame, target, photo=photo, name=name)
    _check_output_size(len(out), name, max_bytes, fit)
    return EncodedImage(out, out_mime, target[0], target[1], name, width, height)


def _render(
    frame: Image.Image, target: tuple[int, int], *, photo: bool, name: str, drafted: bool = False
) -> tuple[bytes, str]:
    """Resize and encode a decoded, upright frame as JPEG (photos) or PNG.

    LANCZOS, except after a JPEG draft: libjpeg's DCT scaling has already low-passed the image,
    so ``Image.thumbnail``'s own resize (BICUBIC, reducing_gap 2.0) finishes it, faster and with
    a PSNR of ~46 dB against a full decode + LANCZOS on a textured 12 MP photo (bench/bench_fit.py).
    """
    source_mode = frame.mode
    has_alpha = frame.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in frame.info
    icc = frame.info.get("icc_profile") if source_mode not in ("CMYK", "LAB", "YCbCr") else None
    out_format = "JPEG" if photo and not has_alpha else "PNG"
    if frame.size != target:
        if frame.mode == "1":
            frame = frame.convert("L")
        elif frame.mode not in ("L", "LA", "RGB", "RGBA", "CMYK", "I;16"):
            frame = frame.convert("RGBA" if has_alpha else "RGB")  # P would resize with NEAREST
        if drafted:
            frame = frame.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
        else:
            frame = frame.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if out_format == "JPEG" and frame.mode not in ("L", "RGB"):
        frame = frame.convert("RGB")
    elif out_format == "PNG" and frame.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        frame = frame.convert("RGBA" if has_alpha else "RGB")
    options: dict[str, Any] = {}
    transparency = frame.info.get("transparency")
    if out_format == "PNG" and transparency is not None and frame.mode == source_mode:
        options["transparency"] = transparency
    if icc:
        options["icc_profile"] = icc
    if out_format == "JPEG":
        options.update(quality=JPEG_QUALITY, optimize=True)
    frame.info = {}  # drop EXIF, XMP, comments, text chunks: only pixels and the colour profile go
    buf = io.BytesIO()
    try:
        frame.save(buf, format=out_format, **options)
    except (OSError, ValueError) as e:
        raise UnsupportedImageError(
            f"{name}: cannot re-encode a {frame.mode}-mode image as {out_format} ({e}); "
            "convert it to 8-bit RGB PNG or JPEG first.",
            source=name,
            kind=frame.mode,
        ) from e
    return buf.getvalue(), "image/jpeg" if out_format == "JPEG" else "image/png"


def _draft_for(im: Image.Image, target: tuple[int, int]) -> bool:
    """Let libjpeg decode a JPEG at 1/2, 1/4 or 1/8 scale when it is being shrunk a lot.

    Asks for the target itself: libjpeg picks the smallest scale still at least that big, whose
    DCT-domain downscale is already a good low-pass filter, and LANCZOS does the rest. Asking
    for twice the target (as ``Image.thumbnail`` does) picks scale 1 for every 12 MP phone photo
    sent at 1024x768, so the whole photo was decoded; at the target it is 2.4-2.6x faster with a
    PSNR over 35 dB against the full decode (tests/test_images.py, bench/bench_fit.py).
    ``target`` is upright; draft works on the stored orientation.
    """
    if not isinstance(im, JpegImagePlugin.JpegImageFile):
        return False
    tw, th = target
    if _orientation(im) in (5, 6, 7, 8):
        tw, th = th, tw
    if tw * 2 <= im.width and th * 2 <= im.height:
        return im.draft(im.mode, (tw, th)) is not None
    return False


# --- checks ------------------------------------------------------------------------------------


def _sniff_or_refuse(data: bytes, name: str) -> str | None:
    """Sniff ``data``; raise for empty input and for kinds Pillow cannot read (SVG, PDF)."""
    if not data:
        raise NotAnImageError(f"{name} is empty (0 bytes); pass a PNG, JPEG, WEBP or GIF image.", source=name)
    mime = sniff_mime(data)
    if mime == "image/svg+xml":
        raise UnsupportedImageError(
            f"{name} is an SVG (vector) image, which the service does not accept. Render it to PNG "
            "first, e.g. with cairosvg.svg2png(url=...) or `rsvg-convert -o out.png in.svg`.",
            source=name,
            kind="svg",
        )
    if mime == "application/pdf":
        raise UnsupportedImageError(
            f"{name} is a PDF document, not an image. Render the page you need to PNG first, e.g. "
            "`pdftoppm -png -r 150 in.pdf page` or PyMuPDF's page.get_pixmap().save('page.png').",
            source=name,
            kind="pdf",
        )
    return mime


def _unsupported_container(mime: str, name: str) -> UnsupportedImageError:
    kind = _UNSUPPORTED_KINDS[mime]
    return UnsupportedImageError(
        f"{name} is a {kind.upper()} image, which the service does not accept and this Pillow "
        "cannot read. Convert it to JPEG or PNG first, e.g. `pip install pillow-heif` then "
        "pillow_heif.register_heif_opener() (vizlab then converts it), or `heif-convert in.heic "
        "out.jpg` / macOS `sips -s format jpeg in.heic --out out.jpg`.",
        source=name,
        kind=kind,
    )


@contextlib.contextmanager
def _pil_guard(name: str, *, recognised: bool) -> Iterator[None]:
    """Map Pillow's errors to ours; silence its bomb warning (our own limit is checked instead).

    ``recognised``: the bytes carried a known signature, so a failure means damage
    (CorruptImageError) rather than "not an image at all" (NotAnImageError).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            yield
        except ImageError:
            raise
        except Image.DecompressionBombError as e:
            found = re.search(r"\((\d+) pixels\)", str(e))
            pixels = int(found.group(1)) if found else 0
            raise _bomb(name, pixels) from e
        except UnidentifiedImageError as e:
            if recognised:
                raise CorruptImageError(
                    f"{name} starts like an image but Pillow cannot read its header; the file is "
                    "damaged or truncated. Re-export or re-download it.",
                    source=name,
                ) from e
            raise NotAnImageError(_not_an_image_message(name, b""), source=name) from e
        except (OSError, SyntaxError, EOFError, ValueError, struct.error, IndexError, MemoryError) as e:
            if not recognised:
                raise NotAnImageError(
                    f"{name} is not an image in a format vizlab recognises (Pillow guessed a format "
                    f"but could not decode it: {e}). Pass a PNG, JPEG, WEBP or GIF.",
                    source=name,
                ) from e
            raise CorruptImageError(
                f"{name} is damaged or truncated: Pillow could not decode it ({e}). "
                "Re-export or re-download the file.",
                source=name,
            ) from e


@contextlib.contextmanager
def _open_checked(resolved: _Resolved, *, mime: str | None = None) -> Iterator[Image.Image]:
    """Open lazily (header only), refusing non-images and bombs; the image is closed on exit."""
    name = resolved.name
    if resolved.path is not None:
        with open(resolved.path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
        mime = _sniff_or_refuse(head, name)
        fp: Any = resolved.path
    else:
        assert resolved.data is not None
        if mime is None:
            mime = _sniff_or_refuse(resolved.data, name)
        head = resolved.data[:_HEAD_BYTES]
        fp = io.BytesIO(resolved.data)
    with _pil_guard(name, recognised=mime is not None):
        try:
            im = Image.open(fp)
        except UnidentifiedImageError as e:
            if mime in _UNSUPPORTED_KINDS:
                raise _unsupported_container(mime, name) from e
            if mime is None:
                raise NotAnImageError(_not_an_image_message(name, head), source=name) from e
            raise
    with im, _pil_guard(name, recognised=mime is not None):
        width, height = _oriented_size(im)
        if width * height > MAX_PIXELS:
            raise _bomb(name, width * height)
        yield im


def _bomb(name: str, pixels: int) -> DecompressionBombError:
    return DecompressionBombError(
        f"{name} claims {pixels:,} pixels, over the {MAX_PIXELS:,}-pixel limit, so it was not decoded "
        "(it could be a decompression bomb). If you trust the file, downscale it with another tool "
        "or raise vizlab.images.MAX_PIXELS.",
        source=name,
        pixels=pixels,
        limit=MAX_PIXELS,
    )


def _not_an_image_message(name: str, head: bytes) -> str:
    if not head:
        return f"{name} is not an image in any format vizlab or Pillow recognises; pass a PNG, JPEG, WEBP or GIF."
    sample = head[:64]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and "".join(text.split()).isprintable():
        looks = "text " + repr(text[:24] + ("..." if len(text) > 24 else ""))
    else:
        looks = "bytes " + sample[:8].hex(" ")
    return (
        f"{name} is not an image: it starts with {looks}, which matches no image format. vizlab reads "
        "the format from the bytes, not the file name; pass a PNG, JPEG, WEBP or GIF."
    )


def _check_raw_size(size: int, name: str, raw_limit: int | None) -> None:
    if raw_limit is not None and size > raw_limit:
        raise ImageTooLargeError(
            f"{name} is {_mb(size)}, more than {RAW_INPUT_FACTOR} x the {_mb(raw_limit // RAW_INPUT_FACTOR)} "
            "image limit, so vizlab will not read it. Downscale or recompress it with another tool "
            "first (or pass a larger max_bytes if your service allows it).",
            source=name,
            size=size,
            limit=raw_limit,
        )


def _check_output_size(size: int, name: str, max_bytes: int, fit: Fit) -> None:
    if size > max_bytes:
        advice = (
            'Pass fit="high" (the size the service uses for detail "high") or fit="low" (512 px) '
            "to shrink it"
            if fit is None
            else f"Even with fit={fit!r} it is too big: pass a smaller fit such as fit=\"low\" or (1024, 1024)"
        )
        raise ImageTooLargeError(
            f"{name} is {_mb(size)} encoded, over the {_mb(max_bytes)} limit per image. {advice}.",
            source=name,
            size=size,
            limit=max_bytes,
        )


def _verify_passthrough(im: Image.Image, data: bytes, mime: str, name: str) -> None:
    """Prove bytes sent unchanged are whole, without decoding the pixels (except small GIFs)."""
    problem = None
    if mime == "image/png":
        with Image.open(io.BytesIO(data)) as fresh:  # verify() needs a fresh, unloaded image
            fresh.verify()
    elif mime == "image/jpeg":
        if not _jpeg_has_end_after_scan(data):
            problem = "it has no end-of-image marker after its image data (truncated?)"
    elif mime == "image/webp":
        riff_size = struct.unpack("<I", data[4:8])[0]
        if len(data) < riff_size + 8:
            problem = f"its RIFF header promises {riff_size + 8} bytes but only {len(data)} are there (truncated?)"
    elif mime == "image/gif":
        im.load()
    if problem:
        raise CorruptImageError(f"{name} is a damaged {mime} file: {problem}. Re-export or re-download it.", source=name)


def _jpeg_has_end_after_scan(data: bytes) -> bool:
    """True if an EOI marker (FF D9) follows the first start-of-scan (FF DA).

    Walks the marker segments so an EXIF thumbnail's own FF D9 (inside APP1, before the scan)
    does not count. Entropy-coded data cannot contain FF D9 (0xFF is stuffed as FF 00). Marker
    codes (SOS FF DA, EOI FF D9, TEM FF 01, RST FF D0-D7 with no length field) are those of ITU-T
    T.81 (1992), Table B.1.
    """
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:
            return data.rfind(b"\xff\xd9", pos) != -1
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers carry no length
            pos += 2
            continue
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return False


def _webp_is_lossy(data: bytes) -> bool:
    """A WEBP carries a lossy "VP8 " chunk (photo) rather than only lossless "VP8L"."""
    return b"VP8 " in data[12:4096]


def _sniff_ftyp(head: bytes) -> str | None:
    """HEIC / HEIF / AVIF from an ISO-BMFF ``ftyp`` box; None for video (mp4, mov...)."""
    box_size = struct.unpack(">I", head[:4])[0]
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if brands & {b"avif", b"avis"}:
        return "image/avif"
    if brands & {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}:
        return "image/heic"
    if brands & {b"mif1", b"msf1", b"heif"}:
        return "image/heif"
    return None


def _frame_count(im: Image.Image) -> int:
    """Frames the service would not see: animation frames, TIFF pages. MPO's second image
    (stereo pair, Ultra-HDR gain map) is part of a JPEG the service reads, so it counts as 1."""
    if im.format == "MPO":
        return 1
    return int(getattr(im, "n_frames", 1))


def _orientation(im: Image.Image) -> int:
    """EXIF orientation from the header, without decoding (Pillow's PNG getexif() would load).

    TIFF counts as upright: Pillow's TIFF plugin already reports the displayed size and turns the
    pixels on load (TiffImagePlugin._setup / load, Pillow 8+), so swapping again would be wrong.
    """
    if im.format == "TIFF":
        return 1
    if im.format == "PNG":
        raw = im.info.get("exif")
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
    else:
        exif = im.getexif()
    value = exif.get(0x0112, 1)  # 0x0112: the EXIF Orientation tag
    return value if isinstance(value, int) else 1


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    width, height = im.size
    return (height, width) if _orientation(im) in (5, 6, 7, 8) else (width, height)


def check_fit(fit: object) -> None:
    """Raise ValueError unless ``fit`` is None, "low", "high" or a (max_w, max_h) tuple of positive ints."""
    if fit is None or fit in ("low", "high"):
        return
    if (
        isinstance(fit, tuple)
        and len(fit) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in fit)
    ):
        return
    raise ValueError(f'fit must be None, "low", "high" or a (max_width, max_height) tuple of positive ints, got {fit!r}')


def _check_detail(detail: str) -> str:
    if not isinstance(detail, str) or detail not in DETAIL_LEVELS:  # a list is unhashable
        raise UnknownDetailError(
            f"detail must be one of 'auto', 'low', 'high', got {detail!r}", detail=detail
        )
    return detail


def _http_url(source: object) -> str | None:
    if isinstance(source, str):
        match = _SCHEME_RE.match(source)
        if match and match.group(1).lower() in ("http", "https"):
            return source
    return None


def _refuse_fit_for_url(url: str, fit: Fit) -> None:
    if fit is not None:
        raise ImageError(
            f"{describe_url(url)}: cannot apply fit={fit!r} to an http(s) URL because vizlab does not fetch "
            "it. Pass fit=None (the service scales it), or download the file and pass its path.",
            source=describe_url(url),
        )


def _describe_data_url(url: str) -> str:
    return f"data URL {_short(url, 40)!r} ({len(url)} chars)"


def describe_url(url: str) -> str:
    """A URL as messages may show it: a data URL elided; any other without user name, password,
    query or fragment, where SAS tokens and signed-URL keys live.

    >>> describe_url("https://u:pw@acct.blob.core.windows.net/c/cat.png?sv=2024&sig=SECRET")
    'https://acct.blob.core.windows.net/c/cat.png?...'
    >>> describe_url("data:image/png;base64," + "A" * 100)
    "data URL 'data:image/png;base64,AAAAAAAAAAAAAAA...' (122 chars)"
    """
    if url[:5].lower() == "data:":
        return _describe_data_url(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:  # a malformed netloc (bad port, unbalanced brackets)
        return _short(re.split(r"[?#@]", url, maxsplit=1)[0]) + "..."
    shown = urlunsplit((parts.scheme, host if parts.netloc else "", parts.path, "", ""))
    if parts.query or parts.fragment:
        shown += "?..."
    return _short(shown)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"
