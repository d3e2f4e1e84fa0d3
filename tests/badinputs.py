"""A corpus of bad (and tricky-but-valid) inputs, made on the fly: nothing binary is committed.

Each :class:`Case` says how its input is made, where it enters vizlab and what must happen:

* ``encoder``: the input is an image source (a file written under a temporary directory, or a
  URL string) given to :func:`vizlab.images.encode_image`.
* ``conversation``: the input is a call to :meth:`vizlab.conversation.Conversation.add_user`.
* ``request``: the input is a raw Chat Completions body posted to the local backend, as a
  hand-written client (``requests``, curl) would send it; vizlab's own encoder never builds it.

``error`` is the vizlab error class expected at the encoder / conversation (None: it works).
``http_status`` is what the local backend must answer to ``body`` over real HTTP: 200, or a
4xx with Azure's error JSON. Cases whose input cannot be put into a request (a path that does
not exist) have no body.

Run ``python tests/badinputs.py`` to list the corpus.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from vizlab.errors import (
    ConversationError,
    CorruptDocumentError,
    CorruptImageError,
    DataURLError,
    DecompressionBombError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    TooManyImagesError,
    UnknownDetailError,
    UnsupportedImageError,
    URLSchemeError,
    VizlabError,
)

MiB = 1024 * 1024
# What an advice phrase in a message looks like: the message must say what to do next.
ADVICE_VERBS = (
    "pass", "convert", "send", "use", "render", "re-export", "re-download", "downscale",
    "build", "check", "resume", "raise", "add", "re-encode", "start",
)

Body = Any  # a JSON-able request body, or raw bytes posted as they are


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, where it enters, what must come out."""

    name: str
    how: str
    enters: str  # "encoder" | "conversation" | "request"
    # encoder: tmp dir -> an image source; conversation: tmp dir -> add_user keyword arguments
    make: Callable[[Path], Any] | None
    error: type[VizlabError] | None  # expected at the encoder / conversation; None = works
    body: Callable[[Path], Body] | None  # what goes over HTTP; None = nothing to post
    http_status: int = 400  # 200 for the inputs that work
    http_code: str | None = None  # the error code the backend must use, when it matters
    warns: type[Warning] | None = None  # a warning the encoder must give (animated GIF)
    check: Callable[[Any], None] | None = None  # extra checks on the encoder's result
    mentions: tuple[str, ...] = ()  # words the error message must contain (besides the input name)
    encode_kwargs: dict[str, Any] = field(default_factory=dict)
    # The error a Conversation raises when it differs from the encoder's (it takes PDFs as documents).
    conversation_error: type[VizlabError] | None = None
    # Known library problems, reported to the owners; the tests are xfail(strict=True) with these.
    known_vizlab_problem: str | None = None
    known_http_problem: str | None = None

    def __str__(self) -> str:
        return self.name


# --- image makers -------------------------------------------------------------------------------


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(img: Image.Image, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def picture(width: int = 160, height: int = 120, mode: str = "RGB") -> Image.Image:
    """A small picture with some structure (a circle and a line), so it is not one colour."""
    img = Image.new("RGB", (width, height), (40, 120, 200))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(240, 200, 40))
    draw.line((0, 0, width - 1, height - 1), fill=(0, 0, 0), width=3)
    return img if mode == "RGB" else img.convert(mode)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_from_rows(width: int, height: int, *, bit_depth: int, colour_type: int, row: bytes) -> bytes:
    """A valid PNG whose every scanline is ``row`` (filter byte included), compressed by zlib."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row * 1000) for _ in range(height // 1000)]
    chunks.append(compressor.compress(row * (height % 1000)))
    chunks.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"".join(chunks))
        + png_chunk(b"IEND", b"")
    )


def crafted_header_png(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` with almost no data: nothing is allocated."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def bomb_png(side: int = 11_000) -> bytes:
    """A real 1-bit PNG of ``side`` x ``side`` zeros: ~15 KB on disk, 121 MP once decoded."""
    row = b"\x00" + bytes((side + 7) // 8)
    return png_from_rows(side, side, bit_depth=1, colour_type=0, row=row)


def oversized_png(total: int = 21 * MiB) -> bytes:
    """A valid PNG made ``total`` bytes long by a private ancillary chunk (ignored by decoders)."""
    base = _png(picture(64, 48))
    filler = bytes(total - len(base) - 12)
    return base[:-12] + png_chunk(b"vzLb", filler) + base[-12:]  # before IEND


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (48, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def cmyk_jpeg(width: int = 1200, height: int = 900) -> bytes:
    return _jpeg(picture(width, height).convert("CMYK"), quality=90)


def png16() -> bytes:
    import numpy as np

    ramp = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    img = Image.fromarray(ramp)  # 16-bit greyscale, mode "I;16"
    assert img.mode == "I;16"
    return _png(img)


HEIC_HEAD = (
    struct.pack(">I", 24) + b"ftyp" + b"heic" + b"\x00\x00\x00\x00" + b"mif1heic"
    + struct.pack(">I", 16) + b"meta" + bytes(8)
)
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SVG_BYTES = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\n'


def write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path

    return make


def write_lazy(name: str, produce: Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        if not path.exists():
            path.write_bytes(produce())
        return path

    return make


# --- request bodies -------------------------------------------------------------------------------


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def mime_from_name(name: str) -> str:
    """What a naive client (the how-to's ``mimetypes.guess_type``) would label the file as."""
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def user_message(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": "What is in this image?"}, *parts]}


def image_request(url: str, detail: str = "auto") -> dict[str, Any]:
    return {"messages": [user_message({"type": "image_url", "image_url": {"url": url, "detail": detail}})], "max_tokens": 50}


def raw_file_request(name: str) -> Callable[[Path], Body]:
    """The file from the case's ``make`` sent as a naive client would: bytes as they are, MIME from the name."""

    def body(tmp: Path) -> Body:
        path = tmp / name
        return image_request(data_url(path.read_bytes(), mime_from_name(name)))

    return body


def vizlab_file_request(name: str, **kw: Any) -> Callable[[Path], Body]:
    """The file sent the vizlab way: to_data_url (MIME from bytes, first frame of an animation)."""

    def body(tmp: Path) -> Body:
        import warnings

        from vizlab.images import to_data_url

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return image_request(to_data_url(tmp / name, **kw))

    return body


def url_request(url: str, **kw: Any) -> Callable[[Path], Body]:
    return lambda tmp: image_request(url, **kw)


def const(body: Body) -> Callable[[Path], Body]:
    return lambda tmp: body


def _small_png_url() -> str:
    return data_url(_png(picture(32, 24)), "image/png")


def eleven_images_request(tmp: Path) -> Body:
    url = _small_png_url()
    parts = [{"type": "image_url", "image_url": {"url": url, "detail": "low"}} for _ in range(11)]
    return {"messages": [user_message(*parts)], "max_tokens": 20}


def _nested(depth: int) -> str:
    return '{"messages": [{"role": "user", "content": ' + "[" * depth + "]" * depth + "}]}"


def _lorem(size: int) -> str:
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ".split()
    text = " ".join(words[i % len(words)] for i in range(size // 6))
    return text[:size]


# --- checks on results that work ------------------------------------------------------------------


def _is_png(encoded: Any) -> None:
    assert encoded.mime == "image/png", encoded
    assert encoded.data_url.startswith("data:image/png;base64,")


def _cmyk_converted(encoded: Any) -> None:
    assert encoded.mime == "image/jpeg"
    assert max(encoded.width, encoded.height) == 512
    with Image.open(io.BytesIO(encoded.data)) as im:
        assert im.mode == "RGB", im.mode


def _first_frame_still(encoded: Any) -> None:
    with Image.open(io.BytesIO(encoded.data)) as im:
        assert getattr(im, "n_frames", 1) == 1
        assert im.convert("RGB").getpixel((0, 0)) == (255, 0, 0)  # the first frame was red


def _passthrough(mime: str, size: tuple[int, int]) -> Callable[[Any], None]:
    def check(encoded: Any) -> None:
        assert encoded.mime == mime and (encoded.width, encoded.height) == size

    return check


# --- the corpus -----------------------------------------------------------------------------------

_JPEG_PHOTO = _jpeg(picture(640, 480), quality=90)

CASES: list[Case] = [
    # ---- files at the encoder ----
    Case("empty_file", "a 0-byte file named empty.jpg", "encoder", write("empty.jpg", b""),
         NotAnImageError, raw_file_request("empty.jpg"), mentions=("empty",)),
    Case("truncated_jpeg", "the first 60% of a 640x480 JPEG (no end-of-image marker)", "encoder",
         write("cut.jpg", _JPEG_PHOTO[: len(_JPEG_PHOTO) * 6 // 10]), CorruptImageError, raw_file_request("cut.jpg"),
         mentions=("truncated",)),
    Case("png_named_jpg", "a PNG saved as photo.jpg (works: the MIME type comes from the bytes)", "encoder",
         write("photo.jpg", _png(picture())), None, raw_file_request("photo.jpg"), http_status=200, check=_is_png),
    Case("text_named_png", "a text file saved as notes.png", "encoder",
         write("notes.png", b"Shopping list: eggs, milk, bread.\n"), NotAnImageError, raw_file_request("notes.png"),
         http_code="invalid_image_format"),
    Case("svg", "an SVG document (drawing.svg)", "encoder", write("drawing.svg", SVG_BYTES), UnsupportedImageError,
         raw_file_request("drawing.svg"), mentions=("SVG", "PNG")),
    Case("pdf", "a minimal PDF document (scan.pdf)", "encoder", write("scan.pdf", PDF_BYTES), UnsupportedImageError,
         raw_file_request("scan.pdf"), mentions=("PDF",), conversation_error=CorruptDocumentError),
    Case("heic", "an ISO-BMFF 'ftyp heic' header (IMG_0001.heic), as iPhones write", "encoder",
         write("IMG_0001.heic", HEIC_HEAD), UnsupportedImageError, raw_file_request("IMG_0001.heic"),
         mentions=("HEIC", "JPEG")),
    Case("animated_gif", "a 3-frame animated GIF (works with a warning: the first frame is sent, as a still)",
         "encoder", write("spinner.gif", animated_gif()), None, vizlab_file_request("spinner.gif"), http_status=200,
         warns=UserWarning, check=_first_frame_still),
    Case("cmyk_jpeg", "a 1200x900 CMYK JPEG, fitted to low (works: converted to RGB JPEG)", "encoder",
         write_lazy("print.jpg", cmyk_jpeg), None, vizlab_file_request("print.jpg", fit="low"), http_status=200,
         check=_cmyk_converted, encode_kwargs={"fit": "low"}),
    Case("cmyk_jpeg_passthrough", "a 1200x900 CMYK JPEG sent as it is (works)", "encoder",
         write_lazy("print2.jpg", cmyk_jpeg), None, raw_file_request("print2.jpg"), http_status=200,
         check=_passthrough("image/jpeg", (1200, 900))),
    Case("png_16bit", "a 64x48 16-bit greyscale PNG (works, sent as it is)", "encoder", write("depth.png", png16()),
         None, raw_file_request("depth.png"), http_status=200, check=_passthrough("image/png", (64, 48))),
    Case("one_pixel", "a 1x1 PNG (works)", "encoder", write("dot.png", _png(Image.new("RGB", (1, 1), (9, 9, 9)))),
         None, raw_file_request("dot.png"), http_status=200, check=_passthrough("image/png", (1, 1))),
    Case("header_30000x30000", "a 100-byte PNG whose IHDR claims 30000x30000 (900 MP); no pixels behind it",
         "encoder", write("huge.png", crafted_header_png(30_000, 30_000)), DecompressionBombError,
         raw_file_request("huge.png"), mentions=("pixels",)),
    Case("decompression_bomb", "a real, valid 1-bit PNG of 11000x11000 zeros: ~15 KB that decode to 121 MP",
         "encoder", write_lazy("bomb.png", bomb_png), DecompressionBombError, raw_file_request("bomb.png"),
         mentions=("pixels",)),
    Case("over_size_limit", "a valid 21 MiB PNG (a 64x48 picture padded by a private chunk), limit 20 MiB",
         "encoder", write_lazy("poster.png", oversized_png), ImageTooLargeError, raw_file_request("poster.png"),
         http_code="image_too_large", mentions=("fit",)),
    Case("raw_over_4x_limit", "a sparse 81 MiB file big-scan.png: refused from its size before it is read",
         "encoder", lambda tmp: _sparse(tmp / "big-scan.png", 81 * MiB), ImageTooLargeError, None),
    Case("missing_file", "a path that does not exist (holiday.png)", "encoder", lambda tmp: tmp / "holiday.png",
         ImageError, None, mentions=("No such image file",)),
    Case("directory", "a directory passed as an image (photos.png/)", "encoder", lambda tmp: _mkdir(tmp / "photos.png"),
         ImageError, None, mentions=("directory",)),
    # ---- URLs at the encoder ----
    Case("data_url_bad_base64", "data:image/png;base64,@@not base64@@", "encoder",
         lambda tmp: "data:image/png;base64,@@not base64@@", DataURLError,
         url_request("data:image/png;base64,@@not base64@@"), http_code="invalid_image_url", mentions=("base64",)),
    Case("data_url_text_plain", "data:text/plain;base64,<hello> (a MIME type that is not an image)", "encoder",
         lambda tmp: "data:text/plain;base64,aGVsbG8=", DataURLError, url_request("data:text/plain;base64,aGVsbG8="),
         mentions=("text/plain",)),
    Case("data_url_no_comma", "data:image/png;base64 with no comma and no data", "encoder",
         lambda tmp: "data:image/png;base64", DataURLError, url_request("data:image/png;base64"),
         http_code="invalid_image_url", mentions=("comma",)),
    Case("data_url_not_base64", "data:image/png,<raw PNG bytes percent-encoded> (no ;base64 marker)", "encoder",
         lambda tmp: "data:image/png,%89PNG%0D%0A", DataURLError, url_request("data:image/png,%89PNG%0D%0A"),
         mentions=("base64",)),
    Case("data_url_png_labelled_jpeg", "a PNG in a data URL labelled image/jpeg (works: sniffed, relabelled)",
         "encoder", lambda tmp: data_url(_png(picture()), "image/jpeg"), None,
         const(image_request(data_url(_png(picture()), "image/jpeg"))), http_status=200, check=_is_png),
    Case("file_url", "file:///etc/passwd", "encoder", lambda tmp: "file:///etc/passwd", URLSchemeError,
         url_request("file:///etc/passwd"), http_code="invalid_image_url", mentions=("file",)),
    Case("javascript_url", "javascript:alert(1)", "encoder", lambda tmp: "javascript:alert(1)", URLSchemeError,
         url_request("javascript:alert(1)"), http_code="invalid_image_url", mentions=("javascript",)),
    # ---- conversation ----
    Case("eleven_images", "add_user with 11 small images in one turn (limit 10 per request)", "conversation",
         lambda tmp: {"text": "Compare these.", "images": [_png(picture(32 + i, 24)) for i in range(11)]},
         TooManyImagesError, eleven_images_request, mentions=("11", "10")),
    Case("eleven_images_over_turns", "6 turns of 2 images under keep_all: the 6th request would carry 12",
         "conversation", lambda tmp: {"turns": [[_png(picture(32 + 2 * i + k, 24)) for k in range(2)] for i in range(6)]},
         TooManyImagesError, None, mentions=("12", "retention")),
    Case("unknown_detail", "detail='ultra' on an image turn", "conversation",
         lambda tmp: {"text": "Look closely.", "images": [_png(picture())], "detail": "ultra"}, UnknownDetailError,
         lambda tmp: image_request(_small_png_url(), detail="ultra"), http_code="invalid_value", mentions=("ultra",)),
    Case("non_string_text", "add_user(42) / a text part whose text is 42", "conversation",
         lambda tmp: {"text": 42}, ConversationError,
         const({"messages": [{"role": "user", "content": [{"type": "text", "text": 42}]}]}), http_code="invalid_type",
         mentions=("42", "str", "Pass the question")),
    # ---- raw requests at the backend ----
    Case("missing_messages", "a body with no 'messages' field", "request", None, None,
         const({"max_tokens": 10}), http_code="missing_required_parameter"),
    Case("system_10mb", "a 10 MB system message (about 1.7 M tokens; gpt-4o's context is 128 k)", "request", None,
         None, lambda tmp: {"messages": [{"role": "system", "content": _lorem(10 * 1000 * 1000)},
                                         {"role": "user", "content": "Hi"}], "max_tokens": 10},
         http_code="context_length_exceeded"),
    Case("wrong_content_type", "a content part of type 'image' (not 'image_url')", "request", None, None,
         lambda tmp: {"messages": [user_message({"type": "image", "image_url": {"url": _small_png_url()}})]},
         http_code="invalid_value"),
    Case("image_url_without_url", "an image_url part whose object has no 'url'", "request", None, None,
         const({"messages": [user_message({"type": "image_url", "image_url": {"detail": "low"}})]}),
         http_code="missing_required_parameter"),
    Case("negative_max_tokens", "max_tokens = -5", "request", None, None,
         const({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": -5}), http_code="integer_below_min_value"),
    Case("nested_junk", "content nested 100,000 arrays deep (parser recursion)", "request", None, None,
         const(_nested(100_000).encode()), http_code=None),
    Case("not_json", "a body that is not JSON at all", "request", None, None, const(b"messages=hello"),),
    Case("json_array_body", "a JSON array instead of an object", "request", None, None,
         const([{"role": "user", "content": "Hi"}]), http_code="invalid_type"),
    Case("empty_messages", "messages = []", "request", None, None, const({"messages": []}), http_code="empty_array"),
    Case("unknown_role", "a message with role 'wizard'", "request", None, None,
         const({"messages": [{"role": "wizard", "content": "Hi"}]}), http_code="invalid_value"),
    Case("image_in_system_message", "an image_url part in the system message", "request", None, None,
         lambda tmp: {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": _small_png_url()}}]},
                                   {"role": "user", "content": "Hi"}]}, http_code="invalid_value"),
    Case("image_url_is_string", "image_url given as a bare string instead of an object", "request", None, None,
         lambda tmp: {"messages": [user_message({"type": "image_url", "image_url": _small_png_url()})]},
         http_code="invalid_type"),
    Case("animated_gif_raw", "the animated GIF sent as it is (the service takes only still GIFs)", "request", None,
         None, const(image_request(data_url(animated_gif(), "image/gif")))),
    Case("lone_surrogate_text", "text containing a lone UTF-16 surrogate escape (\\ud800)", "request", None, None,
         const(b'{"messages": [{"role": "user", "content": "bad \\ud800 text"}], "max_tokens": 5}'), http_status=200),
    Case("nan_temperature", "temperature = NaN (not valid JSON)", "request", None, None,
         const(b'{"messages": [{"role": "user", "content": "Hi"}], "temperature": NaN}')),
    Case("huge_max_tokens", "max_tokens = 10**30 (gpt-4o allows at most 16,384 completion tokens)", "request", None,
         None, const({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10**30}), http_code="invalid_value"),
]


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.truncate(size)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def by_name() -> dict[str, Case]:
    return {case.name: case for case in CASES}


if __name__ == "__main__":
    for case in CASES:
        outcome = case.error.__name__ if case.error else "works" if case.enters != "request" else "-"
        http = "-" if case.body is None else str(case.http_status)
        print(f"{case.name:28} {case.enters:12} {outcome:24} HTTP {http:4} {case.how}")
    print(f"{len(CASES)} cases")
    print(json.dumps(sorted({c.enters for c in CASES})))
