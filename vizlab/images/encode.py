"""Image sources to data URLs and chat content parts, with the MIME type read from the bytes.

Trade-offs: JPEG, PNG, WEBP and still GIF pass through byte for byte (no loss, same SHA-256);
other formats are re-encoded, dropping EXIF; bombs are refused from the header
(:data:`MAX_PIXELS`); the output must fit ``max_bytes``; http(s) URLs are passed on, never
fetched; ``fit_size`` scales exactly as the token estimator does. Errors with the image raise
:class:`vizlab.errors.ImageError` subclasses naming the input. Siblings: ``dataurl``, ``files``,
``format``. Details: docs/internals.md#images
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import re
import struct
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from vizlab import geometry
from vizlab.errors import (
    CorruptImageError,
    DecompressionBombError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    UnknownDetailError,
    UnsupportedImageError,
)
from vizlab.images.dataurl import (
    SCHEME_RE,
    build_data_url,
    data_url_buffer,
    describe_url,
)
from vizlab.images.files import Resolved, megabytes, resolve
from vizlab.images.format import (
    HEAD_BYTES,
    UNSUPPORTED_KINDS,
    not_an_image_message,
    sniff_or_refuse,
    unsupported_container,
)
from vizlab.images.header import read_header_size
from vizlab.models.registry import lookup
from vizlab.models.types import DETAILS, TileRule

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_PIXELS",
    "SERVICE_FORMATS",
    "DETAIL_LEVELS",
    "EncodedImage",
    "ImagePart",
    "encode_image",
    "to_data_url",
    "image_part",
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
DETAIL_LEVELS: frozenset[str] = frozenset(DETAILS)

# "low": the model sees a 512 x 512 version (Azure how-to, detail parameter; OpenAI guide: "Low-
# resolution: 512px x 512px"), read 2026-11-21. "high" is gpt-4o's tile rule in vizlab.models (2048 box,
# short side 768, the other side rounded down: newest guide revision), cited there.
LOW_BOX = 512
_GPT4O_RULE = lookup("gpt-4o").image_rule()
assert isinstance(_GPT4O_RULE, TileRule)
_HIGH_RULE: TileRule = _GPT4O_RULE

JPEG_QUALITY = 85  # photos re-encoded after fit: visually lossless at the sizes the model sees

# Mapping: an ipywidgets 8 FileUpload value record (name, type, size, content, last_modified)
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Image.Image, "EncodedImage", Mapping[str, object]]
Fit = Union[None, str, tuple[int, int]]

_PHOTO_MIMES = {"image/jpeg", "image/avif", "image/heic", "image/heif"}



# --- the value everything returns ---------------------------------------------------------------


@dataclass(frozen=True)
class EncodedImage:
    """An image ready to send: bytes, their MIME type (sniffed), pixel size.

    ``measured`` is True when vizlab's encoder read ``width`` and ``height`` from the bytes (not
    given by a caller or a saved file): only then does :meth:`part` carry the size to the estimate.
    """

    data: bytes
    mime: str
    width: int
    height: int
    name: str
    original_width: int
    original_height: int
    measured: bool = field(default=False, compare=False, repr=False)

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
        detail = _check_detail(detail)
        if self.measured:  # the size is the one read from these bytes: the estimate need not read it again
            return ImagePart.of(self, detail)
        return {"type": "image_url", "image_url": {"url": self.data_url, "detail": detail}}


class ImagePart(dict[str, Any]):
    """A Chat Completions ``image_url`` part that also carries the size vizlab's encoder read.

    To every reader (JSON, the openai SDK, ``==``, ``copy.deepcopy``) it is the plain dict
    ``{"type": "image_url", "image_url": {"url", "detail"}}``. ``url`` is the URL string it was
    built with and ``size`` the image's (width, height) as displayed, or None when the encoder did
    not read it (:attr:`EncodedImage.measured`). The request estimate takes ``size`` only while the
    part still holds that very string, instead of decoding the data URL to read the header again.

    Built by :meth:`of`; constructed like a dict (``ImagePart(pairs)``, as ``dataclasses.asdict``
    and ``copy`` do) it carries no size, so the estimate reads the header as for any dict.

    >>> img = EncodedImage(b"...", "image/png", 3, 2, "x", 3, 2, measured=True)
    >>> part = ImagePart.of(img, "low")
    >>> part == {"type": "image_url", "image_url": {"url": img.data_url, "detail": "low"}}, part.size
    (True, (3, 2))
    >>> ImagePart(part).size is None
    True
    """

    __slots__ = ("url", "size")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url: str | None = None
        self.size: tuple[int, int] | None = None

    @classmethod
    def of(cls, image: EncodedImage, detail: str) -> ImagePart:
        """The part for ``image`` at ``detail``, carrying the size the encoder read (if it did)."""
        url = image.data_url  # built here, once: the string the estimate checks by identity
        part = cls(type="image_url", image_url={"url": url, "detail": detail})
        part.url = url
        part.size = (image.width, image.height) if image.measured else None
        return part


# --- public functions ---------------------------------------------------------------------------


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
    # resolved once (files), sniffed once (format), sized once (header), then fit and encoded here
    mime = sniff_or_refuse(resolved.data, resolved.name)
    found = read_header_size(resolved.data)
    size = None if found is None else found.displayed
    return _encode_bytes(resolved.data, resolved.name, mime, size, fit, max_bytes)


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
    buffer = data_url_buffer(image.mime, image.data)
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
    resolved = resolve(source, name, max_bytes=None, read="header")
    found = resolved.header
    if found is not None:
        pixels = found.width * found.height
        # Pillow's own hard limit (2 x Image.MAX_IMAGE_PIXELS) refuses with the same error
        if pixels > MAX_PIXELS or (Image.MAX_IMAGE_PIXELS is not None and pixels > 2 * Image.MAX_IMAGE_PIXELS):
            raise _bomb(resolved.name, pixels)
        return found.displayed
    if resolved.url is not None:
        raise ImageError(
            f"{resolved.name}: vizlab does not fetch http(s) URLs, so it cannot read this image's "
            "size. Download the file and pass its path.",
            source=resolved.name,
        )
    if resolved.image is not None:
        return oriented_size(resolved.image)
    with _open_checked(resolved) as im:
        return oriented_size(im)


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
    return geometry.fit_in_box(width, height, box_w, box_h)


# --- resolving a source (vizlab.images.files does the reading) ------------------------------------


def _resolve(source: Source, name: str | None, *, max_bytes: int | None) -> Resolved:
    """``source`` as bytes, a PIL image or an http(s) URL; an :class:`EncodedImage` is its bytes
    (the lower module does not know the type)."""
    if isinstance(source, EncodedImage):
        return Resolved(name or source.name, data=source.data)
    return resolve(source, name, max_bytes=max_bytes)


# --- encoding ----------------------------------------------------------------------------------


def _encode_bytes(
    data: bytes, name: str, mime: str | None, size: tuple[int, int] | None, fit: Fit, max_bytes: int
) -> EncodedImage:
    """Fit and encode bytes already sniffed (``mime``) and sized (``size``: the header's displayed
    size, or None to take Pillow's); every step on the decoded image happens here, once."""
    with _open_checked(Resolved(name, data=data), mime=mime, size=size) as im, _pil_guard(name, recognised=mime is not None):
        width, height = oriented_size(im) if size is None else size
        target = fit_size(width, height, fit)
        frames = frame_count(im)
        if frames == 1 and mime in SERVICE_FORMATS and target == (width, height):
            assert mime is not None
            _check_output_size(len(data), name, max_bytes, fit)
            verify_passthrough(im, data, mime, name)
            return EncodedImage(data, mime, width, height, name, width, height, measured=True)
        photo = frames == 1 and (mime in _PHOTO_MIMES or (mime == "image/webp" and webp_is_lossy(data)))
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
    return EncodedImage(out, out_mime, target[0], target[1], name, width, height, measured=True)


def _encode_pil(image: Image.Image, name: str, fit: Fit, max_bytes: int) -> EncodedImage:
    frames = frame_count(image)
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
    return EncodedImage(out, out_mime, target[0], target[1], name, width, height, measured=True)


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
    if orientation(im) in (5, 6, 7, 8):
        tw, th = th, tw
    if tw * 2 <= im.width and th * 2 <= im.height:
        return im.draft(im.mode, (tw, th)) is not None
    return False


# --- what the decoder says: frames, orientation, pass-through integrity -----------------------------


def verify_passthrough(im: Image.Image, data: bytes, mime: str, name: str) -> None:
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


def webp_is_lossy(data: bytes) -> bool:
    """A WEBP carries a lossy "VP8 " chunk (photo) rather than only lossless "VP8L"."""
    return b"VP8 " in data[12:4096]


def frame_count(im: Image.Image) -> int:
    """Frames the service would not see: animation frames, TIFF pages. MPO's second image
    (stereo pair, Ultra-HDR gain map) is part of a JPEG the service reads, so it counts as 1."""
    if im.format == "MPO":
        return 1
    return int(getattr(im, "n_frames", 1))


def orientation(im: Image.Image) -> int:
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


def oriented_size(im: Image.Image) -> tuple[int, int]:
    width, height = im.size
    return (height, width) if orientation(im) in (5, 6, 7, 8) else (width, height)


# --- checks ------------------------------------------------------------------------------------


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
            raise NotAnImageError(not_an_image_message(name, b""), source=name) from e
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
def _open_checked(
    resolved: Resolved, *, mime: str | None = None, size: tuple[int, int] | None = None
) -> Iterator[Image.Image]:
    """Open lazily (header only), refusing non-images and bombs; the image is closed on exit.

    ``mime`` and ``size`` are the sniffed type and the header's displayed size when known.
    """
    name = resolved.name
    fp: str | os.PathLike[str] | io.BytesIO
    if resolved.path is not None:
        with open(resolved.path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
        mime = sniff_or_refuse(head, name)
        fp = resolved.path
    else:
        assert resolved.data is not None
        if mime is None:
            mime = sniff_or_refuse(resolved.data, name)
        head = resolved.data[:HEAD_BYTES]
        fp = io.BytesIO(resolved.data)
    with _pil_guard(name, recognised=mime is not None):
        try:
            im = Image.open(fp)
        except UnidentifiedImageError as e:
            if mime in UNSUPPORTED_KINDS:
                raise unsupported_container(mime, name) from e
            if mime is None:
                raise NotAnImageError(not_an_image_message(name, head), source=name) from e
            raise
    with im, _pil_guard(name, recognised=mime is not None):
        width, height = oriented_size(im) if size is None else size
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


def _check_output_size(size: int, name: str, max_bytes: int, fit: Fit) -> None:
    if size > max_bytes:
        advice = (
            'Pass fit="high" (the size the service uses for detail "high") or fit="low" (512 px) '
            "to shrink it"
            if fit is None
            else f"Even with fit={fit!r} it is too big: pass a smaller fit such as fit=\"low\" or (1024, 1024)"
        )
        raise ImageTooLargeError(
            f"{name} is {megabytes(size)} encoded, over the {megabytes(max_bytes)} limit per image. {advice}.",
            source=name,
            size=size,
            limit=max_bytes,
        )


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
        match = SCHEME_RE.match(source)
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


