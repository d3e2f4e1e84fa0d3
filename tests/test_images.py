"""Tests for vizlab.images: sniffing, pass-through, conversion, fitting, and every refusal."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw, JpegImagePlugin

from vizlab import images
from vizlab.errors import (
    CorruptImageError,
    DataURLError,
    DecompressionBombError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    UnknownDetailError,
    UnsupportedImageError,
    URLSchemeError,
)
from vizlab.images import (
    DEFAULT_MAX_BYTES,
    MAX_PIXELS,
    SERVICE_FORMATS,
    EncodedImage,
    decode_data_url,
    encode_image,
    fit_size,
    image_part,
    image_size,
    open_image,
    sniff_mime,
    to_data_url,
)

# --- helpers that make test inputs in memory ---------------------------------------------------


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with a token IDAT: a bomb without the memory."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00"))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_with_orientation(width: int, height: int, orientation: int, **kw: object) -> bytes:
    """A JPEG stored width x height, left half red and right half blue, with an EXIF orientation."""
    img = Image.new("RGB", (width, height), (0, 0, 255))
    ImageDraw.Draw(img).rectangle((0, 0, width // 2 - 1, height - 1), fill=(255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(img, "JPEG", exif=exif.tobytes(), quality=95, **kw)


def animated_gif(frames: int = 3, size: tuple[int, int] = (40, 30)) -> bytes:
    imgs = [Image.new("RGB", size, (i * 60, 255 - i * 60, 0)) for i in range(frames)]
    return _save(imgs[0], "GIF", save_all=True, append_images=imgs[1:], duration=100, loop=0)


def noisy_photo(width: int, height: int) -> Image.Image:
    """A photo-like image (gradient plus noise) that does not compress to nothing."""
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    return Image.blend(noise, gradient, 0.5)


def _rgb(img: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    r, g, b = img.convert("RGB").getpixel(xy)  # type: ignore[misc]
    return int(r), int(g), int(b)


HEIC_HEADER = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + bytes(64)
SVG = b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"


def upload_record(name: str, content: bytes, browser_type: str) -> dict[str, object]:
    """What ipywidgets 8 FileUpload.value[0] holds: content is a memoryview; type is a guess."""
    return {"name": name, "type": browser_type, "size": len(content), "content": memoryview(content), "last_modified": 0}


# --- sniff_mime: the type comes from the bytes ------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_sniff_mime_recognises_raster_formats(image_bytes: Callable[..., bytes], fmt: str, mime: str) -> None:
    assert sniff_mime(image_bytes(16, 8, fmt)) == mime


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (SVG, "image/svg+xml"),
        (b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        (b"<!-- made by hand -->\n<svg/>", "image/svg+xml"),
        (PDF, "application/pdf"),
        (HEIC_HEADER, "image/heic"),
        (struct.pack(">I", 20) + b"ftypmif1\x00\x00\x00\x00mif1", "image/heif"),
        (struct.pack(">I", 24) + b"ftypavif\x00\x00\x00\x00avifmif1", "image/avif"),
        (struct.pack(">I", 20) + b"ftypisom\x00\x00\x02\x00isom", None),  # an MP4 video
        (b"BMW is a car, not a bitmap", None),
        (b"<html><body>404</body></html>", None),
        (b"", None),
    ],
)
def test_sniff_mime_recognises_non_raster_kinds(data: bytes, mime: str | None) -> None:
    assert sniff_mime(data) == mime


def test_png_named_jpg_is_sent_as_png(image_file: Callable[..., Path]) -> None:
    path = image_file("holiday.jpg", 20, 10, "PNG")
    encoded = encode_image(path)
    assert encoded.mime == "image/png"
    assert to_data_url(path).startswith("data:image/png;base64,")
    assert encoded.name == "holiday.jpg"


def test_text_named_png_is_not_an_image_and_the_message_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("shopping list: eggs, milk\n")
    with pytest.raises(NotAnImageError, match="notes.png") as info:
        encode_image(path)
    assert "text" in str(info.value)
    assert info.value.source == "notes.png"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (bytes(range(256)) * 8, "not an image"),
        (b"\x00" * 500, "not an image"),
    ],
    ids=["empty", "binary-noise", "zeros"],
)
def test_non_images_raise_not_an_image(data: bytes, words: str) -> None:
    with pytest.raises(NotAnImageError, match=words):
        encode_image(data)


def test_empty_file_says_it_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.jpg"
    path.write_bytes(b"")
    with pytest.raises(NotAnImageError, match=r"blank\.jpg is empty"):
        encode_image(path)


# --- pass-through and conversion -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
@pytest.mark.parametrize("fit", [None, "high", (500, 500)])
def test_service_formats_pass_through_byte_for_byte(image_bytes: Callable[..., bytes], fmt: str, fit: Any) -> None:
    data = image_bytes(64, 48, fmt)
    encoded = encode_image(data, fit=fit)  # fits that leave a 64x48 image unchanged keep the bytes
    assert encoded.data == data
    assert encoded.mime == f"image/{fmt.lower()}"
    assert (encoded.width, encoded.height) == (64, 48)
    assert encoded.mime in SERVICE_FORMATS


def test_sixteen_bit_png_passes_through() -> None:
    data = _save(Image.new("I;16", (30, 20), 40000), "PNG")
    encoded = encode_image(data)
    assert encoded.data == data
    assert encoded.mime == "image/png"
    assert open_image(data).mode == "I;16"


def test_sixteen_bit_png_can_be_fitted() -> None:
    data = _save(Image.new("I;16", (300, 200), 40000), "PNG")
    encoded = encode_image(data, fit=(150, 150))
    assert (encoded.width, encoded.height) == (150, 100)
    assert Image.open(io.BytesIO(encoded.data)).size == (150, 100)


def test_one_by_one_png_works(tiny_png: bytes) -> None:
    encoded = encode_image(tiny_png, fit="high")
    assert (encoded.width, encoded.height, encoded.mime) == (1, 1, "image/png")
    assert encoded.data == tiny_png
    assert image_size(tiny_png) == (1, 1)
    assert open_image(tiny_png).size == (1, 1)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "PPM", "TGA"])
def test_other_raster_formats_become_png_losslessly(fmt: str) -> None:
    original = noisy_photo(40, 30)
    encoded = encode_image(_save(original, fmt))
    assert encoded.mime == "image/png"
    assert sniff_mime(encoded.data) == "image/png"
    with Image.open(io.BytesIO(encoded.data)) as out:
        assert out.size == (40, 30)
        assert out.convert("RGB").tobytes() == original.tobytes()  # lossless


def test_ico_with_alpha_becomes_png() -> None:
    encoded = encode_image(_save(Image.new("RGBA", (32, 32), (0, 255, 0, 128)), "ICO"))
    assert encoded.mime == "image/png"
    with Image.open(io.BytesIO(encoded.data)) as out:
        assert out.mode == "RGBA"
        assert out.getpixel((5, 5)) == (0, 255, 0, 128)


def test_animated_gif_warns_and_sends_one_frame() -> None:
    data = animated_gif(frames=3)
    with pytest.warns(UserWarning, match=r"party\.gif has 3 frames.*only the first frame"):
        encoded = encode_image(data, name="party.gif")
    assert encoded.mime in ("image/png", "image/gif")
    with Image.open(io.BytesIO(encoded.data)) as out:
        assert getattr(out, "n_frames", 1) == 1
        assert out.size == (40, 30)
        with Image.open(io.BytesIO(data)) as first:
            assert out.convert("L").tobytes() == first.convert("L").tobytes()


def test_still_gif_does_not_warn(image_bytes: Callable[..., bytes]) -> None:
    data = image_bytes(20, 20, "GIF")
    assert encode_image(data).data == data  # warnings are errors here: a warning would fail this


def test_metadata_is_stripped_when_re_encoding() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "SecretEditor"  # Software
    data = _save(noisy_photo(400, 300), "JPEG", exif=exif.tobytes())
    encoded = encode_image(data, fit=(200, 200))
    assert b"SecretCam" in data
    assert b"SecretCam" not in encoded.data and b"SecretEditor" not in encoded.data
    with Image.open(io.BytesIO(encoded.data)) as out:
        assert len(out.getexif()) == 0


# --- errors from real bad inputs ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
@pytest.mark.parametrize("fit", [None, (32, 32)])
def test_truncated_files_are_corrupt(fmt: str, fit: Any) -> None:
    data = _save(noisy_photo(120, 90).convert("P") if fmt == "GIF" else noisy_photo(120, 90), fmt)
    with pytest.raises(CorruptImageError, match="cut.img") as info:
        encode_image(data[: len(data) * 6 // 10], fit=fit, name="cut.img")
    assert info.value.source == "cut.img"


def test_truncated_jpeg_is_corrupt_even_with_an_exif_thumbnail() -> None:
    # A thumbnail in an APP segment carries its own FF D9 before the main scan; it must not count.
    thumb = _save(Image.new("RGB", (16, 16), "red"), "JPEG")
    assert thumb[-2:] == b"\xff\xd9"
    photo = _save(noisy_photo(200, 150), "JPEG")
    data = photo[:2] + b"\xff\xeb" + struct.pack(">H", len(thumb) + 2) + thumb + photo[2:]
    assert encode_image(data).data == data  # whole: passes
    with pytest.raises(CorruptImageError, match="end-of-image"):
        encode_image(data[: len(data) - 400])


def test_jpeg_with_trailing_padding_or_data_passes(image_bytes: Callable[..., bytes]) -> None:
    data = image_bytes(64, 48, "JPEG")
    for tail in (bytes(100), b"\x00\x00\x00\x18ftypmp42 a motion-photo video"):
        assert encode_image(data + tail).data == data + tail


def test_truncated_png_header_is_corrupt(image_bytes: Callable[..., bytes]) -> None:
    with pytest.raises(CorruptImageError):
        encode_image(image_bytes(64, 48, "PNG")[:20])


@pytest.mark.parametrize(
    ("data", "kind", "advice"),
    [
        (SVG, "svg", "PNG"),
        (PDF, "pdf", r"vizlab\.file_part"),
        (HEIC_HEADER, "heic", "pillow-heif"),
    ],
)
def test_unsupported_kinds_say_how_to_convert(data: bytes, kind: str, advice: str) -> None:
    for call in (encode_image, image_size, open_image):
        with pytest.raises(UnsupportedImageError, match=advice) as info:
            call(data)
        assert info.value.kind == kind


def test_avif_that_pillow_reads_is_converted() -> None:
    data = _save(Image.new("RGB", (32, 32), (10, 10, 200)), "AVIF")
    assert sniff_mime(data) == "image/avif"
    encoded = encode_image(data)
    assert encoded.mime == "image/jpeg"  # a photo codec: re-encoded as JPEG
    assert (encoded.width, encoded.height) == (32, 32)


@pytest.mark.parametrize(
    ("width", "height"),
    [(30_000, 30_000), (12_000, 9_000)],  # over Pillow's hard limit; between its warning and ours
    ids=["900MP", "108MP"],
)
def test_decompression_bombs_are_refused_from_the_header(tmp_path: Path, width: int, height: int) -> None:
    data = png_header_only(width, height)
    assert len(data) < 100  # nothing was allocated to build it
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    for call in (encode_image, image_size, open_image):
        for source in (path, data):
            with pytest.raises(DecompressionBombError, match="MAX_PIXELS") as info:
                call(source)
            assert (info.value.pixels, info.value.limit) == (width * height, MAX_PIXELS)
    with pytest.raises(DecompressionBombError, match="bomb.png"):
        encode_image(path, fit="low")


def test_sizes_between_pillows_warning_and_our_limit_do_not_warn() -> None:
    data = png_header_only(10_000, 9_500)  # 95 MP: Pillow would warn; warnings are errors here
    assert Image.MAX_IMAGE_PIXELS is not None and 10_000 * 9_500 > Image.MAX_IMAGE_PIXELS
    assert 10_000 * 9_500 <= MAX_PIXELS
    assert image_size(data) == (10_000, 9_500)


def test_twelve_megapixel_photo_is_under_the_bomb_limit() -> None:
    assert 4000 * 3000 <= MAX_PIXELS < 30_000 * 30_000
    assert image_size(png_header_only(4000, 3000)) == (4000, 3000)


def test_over_max_bytes_suggests_fit(image_bytes: Callable[..., bytes]) -> None:
    data = image_bytes(64, 48, "PNG")
    with pytest.raises(ImageTooLargeError, match='fit="high"') as info:
        encode_image(data, max_bytes=100, name="chart.png")
    assert (info.value.size, info.value.limit) == (len(data), 100)
    assert "chart.png" in str(info.value)


@pytest.mark.slow
def test_fit_can_bring_a_big_image_under_the_limit() -> None:
    data = _save(noisy_photo(1600, 1200), "PNG")
    limit = len(data) // 3
    with pytest.raises(ImageTooLargeError):
        encode_image(data, max_bytes=limit)
    encoded = encode_image(data, fit="low", max_bytes=limit)
    assert encoded.nbytes <= limit


def test_far_oversized_input_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.bmp"
    path.write_bytes(b"BM" + bytes(5000))
    with pytest.raises(ImageTooLargeError, match=r"huge\.bmp.*will not read") as info:
        encode_image(path, max_bytes=1000)
    assert info.value.size == 5002


def test_default_max_bytes_is_twenty_mebibytes() -> None:
    assert DEFAULT_MAX_BYTES == 20 * 1024 * 1024


# --- sources ---------------------------------------------------------------------------------------


def test_file_upload_record_ignores_the_browsers_type(image_bytes: Callable[..., bytes]) -> None:
    data = image_bytes(30, 20, "PNG")
    record = upload_record("scan.jpg", data, browser_type="image/jpeg")
    encoded = encode_image(record)
    assert encoded.mime == "image/png"
    assert encoded.data == data
    assert encoded.name == "scan.jpg"
    assert image_size(record) == (30, 20)


def test_file_upload_value_tuple_gets_a_helpful_type_error(tiny_png: bytes) -> None:
    with pytest.raises(TypeError, match=r"value\[0\]"):
        encode_image((upload_record("a.png", tiny_png, "image/png"),))  # type: ignore[arg-type]


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda f: f.__name__)
def test_bytes_like_sources(tiny_png: bytes, wrap: Callable[[bytes], object]) -> None:
    encoded = encode_image(wrap(tiny_png))  # type: ignore[arg-type]
    assert encoded.data == tiny_png
    assert encoded.name == f"<bytes {len(tiny_png)} B>"


def test_str_and_path_sources_agree(image_file: Callable[..., Path]) -> None:
    path = image_file("a.png", 12, 9, "PNG")
    assert encode_image(str(path)) == encode_image(path)


def test_pil_image_source_is_encoded_as_png() -> None:
    img = noisy_photo(50, 40)
    encoded = encode_image(img)
    assert encoded.mime == "image/png"
    assert Image.open(io.BytesIO(encoded.data)).convert("RGB").tobytes() == img.tobytes()
    assert encoded.name == "<PIL image 50x40 RGB>"


def test_encoded_image_source_is_returned_as_is(tiny_png: bytes) -> None:
    encoded = encode_image(tiny_png)
    assert encode_image(encoded) is encoded
    assert encode_image(encoded, name="renamed.png").name == "renamed.png"


def test_missing_path_raises_image_error_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope" / "cat.png")
    with pytest.raises(ImageError, match="cat.png") as info:
        encode_image(missing)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert "No such image file" in str(info.value)


def test_windows_drive_path_is_a_path_not_a_url() -> None:
    with pytest.raises(ImageError, match="No such image file") as info:
        encode_image(r"C:\Users\me\cat.png")
    assert not isinstance(info.value, URLSchemeError)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("file:///etc/passwd", "file"),
        ("javascript:alert(1)", "javascript"),
        ("ftp://example.com/cat.png", "ftp"),
        ("FILE:///tmp/x.png", "file"),
    ],
)
def test_other_url_schemes_are_refused_everywhere(url: str, scheme: str) -> None:
    for call in (encode_image, to_data_url, image_part, image_size, open_image):
        with pytest.raises(URLSchemeError) as info:
            call(url)
        assert info.value.scheme == scheme


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="directory"):
        encode_image(tmp_path)


def test_unsupported_source_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="int"):
        encode_image(42)  # type: ignore[arg-type]


# --- http(s) URLs pass through, unfetched ------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://example.com/a.jpg?x=1"])
def test_http_url_passes_through_image_part_and_to_data_url(url: str) -> None:
    assert image_part(url, detail="high") == {"type": "image_url", "image_url": {"url": url, "detail": "high"}}
    assert to_data_url(url) == url


def test_http_url_cannot_be_encoded_fitted_or_measured() -> None:
    url = "https://example.com/cat.png"
    with pytest.raises(ImageError, match="does not fetch"):
        encode_image(url)
    with pytest.raises(ImageError, match="fit"):
        image_part(url, fit="low")
    with pytest.raises(ImageError, match="does not fetch"):
        image_size(url)


# --- data URLs -------------------------------------------------------------------------------------


def test_data_url_round_trip(image_bytes: Callable[..., bytes]) -> None:
    data = image_bytes(20, 10, "JPEG")
    url = to_data_url(data)
    assert url == "data:image/jpeg;base64," + base64.b64encode(data).decode()
    assert decode_data_url(url) == ("image/jpeg", data)
    assert to_data_url(url) == url
    assert encode_image(url).data == data


def test_data_url_with_wrong_declared_mime_is_rebuilt_canonical(tiny_png: bytes) -> None:
    lying = "data:image/jpeg;base64," + base64.b64encode(tiny_png).decode()
    assert to_data_url(lying) == "data:image/png;base64," + base64.b64encode(tiny_png).decode()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("image/png;base64,iVBORw0KGgo=", "does not start with 'data:'"),
        ("data:image/png;base64", "no comma"),
        ("data:image/png,iVBORw0KGgo=", "not base64"),
        ("data:text/plain;base64,aGVsbG8=", "not an image"),
        ("data:;base64,aGVsbG8=", "not an image"),
        ("data:image/png;base64,", "no data"),
        ("data:image/png;base64,iVBO Rw0K", "invalid base64"),
        ("data:image/png;base64,iVBORw0KGgo", "invalid base64"),  # missing padding
        ("data:image/png;base64,iVBORw==AAAA", "invalid base64"),  # padding in the middle
        ("data:image/png;base64,iVBO-_w0KGgo=", "invalid base64"),  # URL-safe alphabet
        ("data:image/png;base64,iVBORw0KGgo\u00e9", "invalid base64"),
    ],
)
def test_malformed_data_urls(url: str, words: str) -> None:
    with pytest.raises(DataURLError, match=words):
        decode_data_url(url)


def test_malformed_data_url_as_a_source_raises_data_url_error() -> None:
    with pytest.raises(DataURLError):
        image_part("data:image/png;base64,@@@@")


def test_data_url_error_message_does_not_echo_megabytes() -> None:
    url = "data:text/plain;base64," + "A" * 1_000_000
    with pytest.raises(DataURLError) as info:
        decode_data_url(url)
    assert len(str(info.value)) < 500


# --- EncodedImage ----------------------------------------------------------------------------------


def test_encoded_image_properties(tiny_png: bytes) -> None:
    import hashlib

    encoded = encode_image(tiny_png, name="dot.png")
    assert encoded.sha256 == hashlib.sha256(tiny_png).hexdigest()
    assert encoded.nbytes == len(tiny_png)
    assert encoded.data_url == "data:image/png;base64," + base64.b64encode(tiny_png).decode()
    assert encoded.part() == {"type": "image_url", "image_url": {"url": encoded.data_url, "detail": "auto"}}
    assert image_part(tiny_png, detail="low") == encoded.part("low")
    assert "dot.png" in repr(encoded) and str(len(tiny_png)) in repr(encoded)


@pytest.mark.parametrize("detail", ["medium", "HIGH", ""])
def test_unknown_detail_is_refused(tiny_png: bytes, detail: str) -> None:
    with pytest.raises(UnknownDetailError):
        image_part(tiny_png, detail=detail)
    with pytest.raises(UnknownDetailError):
        image_part("https://example.com/a.png", detail=detail)


# --- EXIF orientation ------------------------------------------------------------------------------


@pytest.mark.parametrize(("orientation", "swapped"), [(1, False), (3, False), (6, True), (8, True)])
def test_orientation_is_read_from_the_header(orientation: int, swapped: bool) -> None:
    data = jpeg_with_orientation(80, 40, orientation)
    expected = (40, 80) if swapped else (80, 40)
    assert image_size(data) == expected
    assert open_image(data).size == expected
    encoded = encode_image(data)
    assert (encoded.width, encoded.height) == expected
    assert (encoded.original_width, encoded.original_height) == expected


def test_orientation_6_is_applied_when_re_encoding() -> None:
    # Stored 80x40, left half red; orientation 6 means "rotate 90 degrees clockwise to display",
    # so upright the red half is on top.
    data = jpeg_with_orientation(80, 40, 6)
    upright = open_image(data)
    assert _rgb(upright, (20, 5))[0] > 200  # red on top
    assert _rgb(upright, (20, 75))[2] > 200  # blue at the bottom
    encoded = encode_image(data, fit=(20, 20))
    assert (encoded.width, encoded.height) == (10, 20)
    assert (encoded.original_width, encoded.original_height) == (40, 80)
    with Image.open(io.BytesIO(encoded.data)) as out:
        assert out.size == (10, 20)
        assert out.getexif().get(0x0112) is None
        assert _rgb(out, (5, 2))[0] > 200
        assert _rgb(out, (5, 18))[2] > 200


def test_open_image_takes_the_first_frame_and_owns_its_pixels() -> None:
    data = animated_gif(frames=3)
    img = open_image(data)
    assert img.size == (40, 30)
    with Image.open(io.BytesIO(data)) as first:
        assert img.convert("L").tobytes() == first.convert("L").tobytes()
    img.load()  # no file handle behind it; a ResourceWarning would fail the test


def test_open_image_of_a_path(image_file: Callable[..., Path]) -> None:
    img = open_image(image_file("x.bmp", 30, 20, "BMP"))
    assert (img.size, img.mode) == ((30, 20), "RGB")


def test_image_size_does_not_read_the_whole_file(image_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path = image_file("big.png", 300, 200, "PNG")

    def refuse(*_: object, **__: object) -> bytes:
        raise AssertionError("image_size read the whole file")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert image_size(path) == (300, 200)


# --- fitting ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "fit", "expected"),
    [
        ((4000, 3000), "high", (1024, 768)),
        ((2048, 4096), "high", (768, 1536)),
        ((1024, 1024), "high", (768, 768)),
        ((8000, 1000), "high", (2048, 256)),
        ((640, 480), "high", (640, 480)),
        ((700, 3000), "high", (478, 2048)),
        ((4000, 3000), "low", (512, 384)),
        ((300, 200), "low", (300, 200)),
        ((1000, 250), "low", (512, 128)),
        ((4000, 3000), (800, 800), (800, 600)),
        ((4000, 3000), (1000, 100), (133, 100)),
        ((100, 50), (800, 800), (100, 50)),
        ((10_000, 1), "low", (512, 1)),
        ((5, 5), None, (5, 5)),
    ],
)
def test_fit_size_examples(size: tuple[int, int], fit: object, expected: tuple[int, int]) -> None:
    assert fit_size(*size, fit) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("fit", ["medium", "HIGH", (0, 10), (10, -1), (10.0, 10), (True, 5), [10, 10], (10, 10, 10), 512])
def test_bad_fit_is_a_value_error(fit: object, tiny_png: bytes) -> None:
    with pytest.raises(ValueError, match="fit must be"):
        fit_size(10, 10, fit)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fit must be"):
        encode_image(tiny_png, fit=fit)  # type: ignore[arg-type]


@pytest.mark.parametrize(("w", "h"), [(0, 10), (10, -1)])
def test_fit_size_needs_positive_sizes(w: int, h: int) -> None:
    with pytest.raises(ValueError):
        fit_size(w, h, "high")


sizes = st.integers(min_value=1, max_value=50_000)
fits = st.one_of(
    st.none(),
    st.sampled_from(["low", "high"]),
    st.tuples(st.integers(min_value=1, max_value=5000), st.integers(min_value=1, max_value=5000)),
)


@pytest.mark.slow
@given(width=sizes, height=sizes, fit=fits)
def test_fit_size_properties(width: int, height: int, fit: Any) -> None:
    w, h = fit_size(width, height, fit)
    assert 1 <= w <= width and 1 <= h <= height  # never upscales
    if fit is None:
        assert (w, h) == (width, height)
    boxes: dict[Any, tuple[int, int]] = {"low": (512, 512), "high": (2048, 2048)}
    box = fit if isinstance(fit, tuple) else boxes.get(fit)
    if box is not None:
        assert w <= box[0] and h <= box[1]
    if fit == "high":
        assert min(w, h) <= 768
    # aspect ratio kept to within rounding: each side is off by at most one pixel per rounding
    # step (two for "high"), and a side clamped to 1 can be off by at most 1
    slack = 2 if fit == "high" else 1
    assert abs(w * height - h * width) <= slack * (width + height)
    # the short side follows the scale of the long side (whose rounding error is relatively least)
    long_in, short_in, long_out, short_out = (width, height, w, h) if width >= height else (height, width, h, w)
    assert abs(short_out - short_in * long_out / long_in) <= slack + 1


@pytest.mark.slow
def test_fit_size_high_matches_the_token_estimator() -> None:
    from vizlab import (
        tokens,  # imported, not importorskip'd: a broken import must fail here
    )

    @given(width=sizes, height=sizes)
    def same(width: int, height: int) -> None:
        assert fit_size(width, height, "high") == tokens.scale_for_high(width, height)

    same()
    for width, height in [(4000, 3000), (2048, 4096), (5000, 3001), (3001, 5000), (1, 50_000), (769, 769)]:
        assert fit_size(width, height, "high") == tokens.scale_for_high(width, height)


@pytest.mark.slow
def test_fit_high_on_a_big_jpeg_is_much_smaller_and_upright() -> None:
    data = _save(noisy_photo(4000, 3000), "JPEG", quality=90)
    encoded = encode_image(data, fit="high")
    assert (encoded.width, encoded.height) == (1024, 768)
    assert (encoded.original_width, encoded.original_height) == (4000, 3000)
    assert encoded.mime == "image/jpeg"
    assert encoded.nbytes * 8 < len(data)
    with Image.open(io.BytesIO(encoded.data)) as out:
        assert out.size == (1024, 768)


def test_fit_low_on_png_stays_png_and_within_512(image_bytes: Callable[..., bytes]) -> None:
    encoded = encode_image(image_bytes(1500, 700, "PNG"), fit="low")
    assert encoded.mime == "image/png"
    assert (encoded.width, encoded.height) == (512, 239)
    assert Image.open(io.BytesIO(encoded.data)).size == (512, 239)


def test_tuple_fit_on_palette_png_keeps_transparency() -> None:
    img = Image.new("P", (200, 100), 0)  # index 0 transparent red, index 1 opaque blue
    img.putpalette([255, 0, 0, 0, 0, 255])
    ImageDraw.Draw(img).rectangle((0, 0, 99, 99), fill=1)
    encoded = encode_image(_save(img, "PNG", transparency=0), fit=(100, 100))
    assert (encoded.width, encoded.height, encoded.mime) == (100, 50, "image/png")
    with Image.open(io.BytesIO(encoded.data)) as out:
        rgba = out.convert("RGBA")
        assert rgba.getpixel((10, 25))[3] == 255 and rgba.getpixel((90, 25))[3] == 0


def test_cmyk_jpeg_with_fit_comes_out_rgb_jpeg(image_bytes: Callable[..., bytes]) -> None:
    data = _save(Image.new("CMYK", (400, 300), (0, 255, 255, 0)), "JPEG")
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    encoded = encode_image(data, fit=(200, 200))
    assert (encoded.mime, encoded.width, encoded.height) == ("image/jpeg", 200, 150)
    with Image.open(io.BytesIO(encoded.data)) as out:
        assert out.mode == "RGB"
        r, g, b = out.convert("RGB").getpixel((100, 75))
        assert r > 200 and g < 60 and b < 60  # C=0 M=Y=255: red


@pytest.mark.slow
def test_lossless_webp_fitted_becomes_png_and_lossy_webp_becomes_jpeg() -> None:
    img = noisy_photo(400, 300)
    lossless = encode_image(_save(img, "WEBP", lossless=True), fit=(200, 200))
    lossy = encode_image(_save(img, "WEBP", quality=80), fit=(200, 200))
    assert (lossless.mime, lossy.mime) == ("image/png", "image/jpeg")


def test_fit_never_upscales_an_encoded_image(image_bytes: Callable[..., bytes]) -> None:
    data = image_bytes(100, 80, "BMP")
    encoded = encode_image(data, fit=(1000, 1000))
    assert (encoded.width, encoded.height) == (100, 80)


@pytest.mark.slow
def test_re_fitting_an_encoded_image(image_bytes: Callable[..., bytes]) -> None:
    first = encode_image(image_bytes(1000, 800, "PNG"), fit="high", name="pic.png")
    second = encode_image(first, fit="low")
    assert (second.width, second.height, second.name) == (512, 410, "pic.png")


def test_module_constants_match_the_brief() -> None:
    assert isinstance(images.MAX_PIXELS, int)
    assert SERVICE_FORMATS == {"image/jpeg", "image/png", "image/webp", "image/gif"}
    assert isinstance(EncodedImage(b"", "image/png", 1, 1, "x", 1, 1).sha256, str)


# --- URLs in messages ---------------------------------------------------------------------------

SAS_URL = "https://user:pw@acct.blob.core.windows.net/c/cat.png?sv=2024-01-01&sig=SECRETSIGNATURE"


@pytest.mark.parametrize(
    "call",
    [
        lambda: images.encode_image(SAS_URL),
        lambda: images.image_size(SAS_URL),
        lambda: images.open_image(SAS_URL),
        lambda: images.image_part(SAS_URL, fit="high"),
        lambda: images.to_data_url(SAS_URL, fit="low"),
        lambda: images.encode_image(SAS_URL.replace("https", "ftp")),
    ],
)
def test_errors_about_urls_never_show_credentials_or_query(call: Callable[[], Any]) -> None:
    with pytest.raises(ImageError) as info:
        call()
    text = f"{info.value} {info.value.source}"
    assert "cat.png" in text
    assert "SECRET" not in text and "sig=" not in text and "pw@" not in text


def test_describe_url_keeps_what_identifies_the_image() -> None:
    assert images.describe_url("https://example.com:8443/a/b.png#frag") == "https://example.com:8443/a/b.png?..."
    assert images.describe_url("https://example.com/a.png") == "https://example.com/a.png"
    assert images.describe_url("http://[::1") .endswith("...")  # malformed netloc: cut, not raised


def test_data_url_is_built_in_one_place_and_round_trips(tiny_png: bytes) -> None:
    url = images.build_data_url("image/png", tiny_png)
    assert url == images.EncodedImage(tiny_png, "image/png", 1, 1, "x", 1, 1).data_url
    assert images.decode_data_url(url) == ("image/png", tiny_png)


@pytest.mark.parametrize("text", ["iVBO\nRw==", " iVBORw== ", "iVBO\r\nRw=="])
def test_decode_base64_image_ignores_line_breaks(text: str) -> None:
    assert images.decode_base64_image(text) == b"\x89PNG"


@pytest.mark.parametrize("text", ["!!!", "iVBORw", "iVBO-_w==", 42])
def test_decode_base64_image_refuses_bad_input_with_a_vizlab_error(text: Any) -> None:
    with pytest.raises(DataURLError, match="base64"):
        images.decode_base64_image(text, source="my image")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: images.encode_image("holiday\x00.png"), ImageError),  # was ValueError: embedded null byte
        (lambda: images.decode_data_url(42), DataURLError),  # was TypeError: object of type 'int' has no len()
        (lambda: images.image_part("https://example.com/a.png", detail=["high"]), UnknownDetailError),  # was unhashable 'list'
    ],
)
def test_bad_arguments_get_vizlab_errors_not_raw_python_ones(call: Callable[[], Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        call()


def test_max_bytes_must_be_a_positive_int(tiny_png: bytes) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        images.encode_image(tiny_png, max_bytes="10")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 196607, 196608, 196609, 2 * 196608 + 1, 1_000_003])
def test_data_url_buffer_matches_plain_base64_across_chunk_boundaries(size: int) -> None:
    import base64 as _b64
    import os as _os

    from vizlab.images import build_data_url

    data = _os.urandom(size)
    assert build_data_url("image/png", data) == "data:image/png;base64," + _b64.b64encode(data).decode()


def test_to_data_url_of_a_path_equals_the_encoded_image_url(image_file: Callable[..., Path]) -> None:
    from vizlab.images import encode_image, to_data_url

    path = image_file("p.jpg", 300, 200, "JPEG")
    assert to_data_url(path) == encode_image(path).data_url


# --- issue 14: vizlab's own header parser, fit="high" by draft, special files -------------------

from hypothesis import HealthCheck, settings  # noqa: E402
from PIL import ImageOps  # noqa: E402

from vizlab.errors import NotARegularFileError  # noqa: E402
from vizlab.images import header as imageheader  # noqa: E402

_HEADER_FORMATS = ["JPEG", "JPEG-progressive", "PNG", "GIF", "GIF-animated", "WEBP", "WEBP-lossless",
                   "WEBP-animated", "BMP", "TIFF"]


def _make_for_header(fmt: str, width: int, height: int, orientation: int | None, seed: int) -> bytes:
    img = Image.new("RGB", (width, height), (seed % 256, 90, 200))
    ImageDraw.Draw(img).rectangle((0, 0, width // 2, height // 3), fill=(20, seed % 200, 30))
    kw: dict[str, Any] = {}
    if orientation is not None and fmt.split("-")[0] in ("JPEG", "PNG", "WEBP", "TIFF"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    if fmt == "JPEG-progressive":
        return _save(img, "JPEG", progressive=True, quality=80, **kw)
    if fmt == "WEBP-lossless":
        return _save(img, "WEBP", lossless=True, **kw)
    if fmt in ("WEBP-animated", "GIF-animated"):
        second = Image.new("RGB", (width, height), (0, 200, 0))
        return _save(img, fmt.split("-")[0], save_all=True, append_images=[second], **kw)
    return _save(img, fmt, **kw)


def _displayed_by_decoding(data: bytes) -> tuple[int, int]:
    """The reference: Pillow decodes every pixel and applies the EXIF orientation."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return ImageOps.exif_transpose(im).size


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fmt=st.sampled_from(_HEADER_FORMATS),
    width=st.integers(1, 900),
    height=st.integers(1, 900),
    orientation=st.one_of(st.none(), st.integers(1, 8)),
    seed=st.integers(0, 10_000),
)
def test_header_parser_gives_the_sizes_pillow_decodes(
    fmt: str, width: int, height: int, orientation: int | None, seed: int, tmp_path: Path
) -> None:
    data = _make_for_header(fmt, width, height, orientation, seed)
    expected = _displayed_by_decoding(data)
    parsed = imageheader.read_header_size(data[: imageheader.HEAD_BYTES], lambda o, n: data[o : o + n])
    assert parsed is not None, f"{fmt} fell back to Pillow"  # the fast path really ran
    assert parsed.displayed == expected
    path = tmp_path / f"x-{seed}.img"
    path.write_bytes(data)
    assert image_size(path) == image_size(data) == expected


def _real_photos() -> list[bytes]:
    """Camera photos: matplotlib's grace_hopper.jpg and crops / resizes of it (no two alike),
    with EXIF rotations and a big APP segment (an ICC-sized comment) before the frame header."""
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        original = fh.read()
    photo = Image.open(io.BytesIO(original)).convert("RGB")
    out = [original]
    for k, (box, size) in enumerate([((0, 0, 400, 500), (400, 500)), ((50, 80, 512, 600), (923, 1076)),
                                     ((10, 10, 300, 200), (145, 95)), ((0, 0, 512, 600), (2000, 2344))]):
        img = photo.crop(box).resize(size, Image.Resampling.BICUBIC)
        exif = Image.Exif()
        exif[0x0112] = (6, 8, 3, 5)[k]
        out.append(_save(img, "JPEG", quality=88, exif=exif.tobytes(), comment=b"x" * 60_000))
        out.append(_save(img, "WEBP", quality=80, exif=exif.tobytes()))
    return out


@pytest.mark.slow
def test_header_parser_on_real_photos_matches_a_full_decode(tmp_path: Path) -> None:
    for n, data in enumerate(_real_photos()):
        path = tmp_path / f"photo{n}"
        path.write_bytes(data)
        assert image_size(path) == _displayed_by_decoding(data), n
        assert imageheader.read_header_size(data) is not None


def _xmp(orientation: int | None) -> bytes:
    tag = "" if orientation is None else f' tiff:Orientation="{orientation}"'
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/"'
            f'{tag} exif:PixelXDimension="300"/></rdf:RDF></x:xmpmeta>').encode()


def _raw_exif_profile(orientation: int) -> str:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = exif.tobytes()  # already starts with the "Exif" marker
    return f"\nexif\n{len(data):8d}\n" + data.hex()  # ImageMagick's layout, as Pillow reads it


def _png_with_text(kind: str, orientation: int | None) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    img = Image.new("RGB", (120, 70), (200, 30, 30))
    info = PngInfo()
    info.add_text("Software", "Matplotlib version3.9.0, https://matplotlib.org/")  # every savefig
    if kind == "xmp-itxt":  # a macOS screenshot's XMP
        info.add_itxt("XML:com.adobe.xmp", _xmp(orientation).decode(), zip=False)
    elif kind == "xmp-itxt-zipped":
        info.add_itxt("XML:com.adobe.xmp", _xmp(orientation).decode(), zip=True)
    elif kind == "raw-exif-text" and orientation is not None:
        info.add_text("Raw profile type exif", _raw_exif_profile(orientation))
    elif kind == "raw-exif-ztxt" and orientation is not None:
        info.add_text("Raw profile type exif", _raw_exif_profile(orientation), zip=True)
    return _save(img, "PNG", pnginfo=info)


@pytest.mark.parametrize("orientation", [None, 1, 6, 8])
@pytest.mark.parametrize("kind", ["software-only", "xmp-itxt", "xmp-itxt-zipped", "raw-exif-text", "raw-exif-ztxt"])
def test_png_text_chunks_are_read_not_handed_to_pillow(kind: str, orientation: int | None) -> None:
    """Issue 23: every matplotlib savefig and macOS screenshot has text chunks before IDAT."""
    data = _png_with_text(kind, orientation)
    parsed = imageheader.read_header_size(data[: imageheader.HEAD_BYTES], lambda o, n: data[o : o + n])
    assert parsed is not None, "fell back to Pillow"
    assert parsed.displayed == _displayed_by_decoding(data)


@pytest.mark.parametrize("exif_orientation", [None, 1, 3, 6])
@pytest.mark.parametrize("xmp_orientation", [None, 1, 8])
def test_webp_with_xmp_and_exif_is_read_from_the_header(exif_orientation: int | None, xmp_orientation: int | None) -> None:
    """Issue 23: WEBP with XMP (VP8X canvas) no longer falls back; EXIF wins over XMP as in Pillow."""
    img = Image.new("RGB", (90, 40), (30, 30, 200))
    kw: dict[str, Any] = {"xmp": _xmp(xmp_orientation)}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif.tobytes()
    data = _save(img, "WEBP", quality=80, **kw)
    parsed = imageheader.read_header_size(data[: imageheader.HEAD_BYTES], lambda o, n: data[o : o + n])
    assert parsed is not None, "fell back to Pillow"
    assert parsed.displayed == _displayed_by_decoding(data)


def test_png_with_a_broken_exif_profile_goes_to_pillow() -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Raw profile type exif", "\nexif\n      8\nnot hex at all")
    data = _save(Image.new("RGB", (10, 10)), "PNG", pnginfo=info)
    assert imageheader.read_header_size(data) is None


@pytest.mark.slow
def test_header_parser_reads_a_bounded_prefix(image_bytes: Callable[..., bytes], tmp_path: Path) -> None:
    data = _real_photos()[1]  # a 60 KB comment before the frame header: found by seeking, not reading
    reads: list[tuple[int, int]] = []

    def fetch(offset: int, size: int) -> bytes:
        reads.append((offset, size))
        return data[offset : offset + size]

    assert imageheader.read_header_size(data[:4096], fetch) is not None
    assert sum(size for _, size in reads) < 2048  # segment headers only, not the 60 KB comment


@pytest.mark.parametrize(
    "data",
    [
        png_header_only(64, 48)[:20],  # truncated inside IHDR
        png_header_only(64, 48)[:29] + b"\x00\x00\x00\x00" + png_header_only(64, 48)[33:],  # bad IHDR CRC
        b"\xff\xd8\xff\xd9",  # JPEG that ends before its frame header
        b"GIF89a\x01\x00",
        b"RIFF\x10\x00\x00\x00WEBPVP8 ",
    ],
    ids=["png-truncated", "png-bad-crc", "jpeg-no-frame", "gif-short", "webp-short"],
)
def test_odd_headers_go_to_pillow_and_get_its_error(data: bytes) -> None:
    assert imageheader.read_header_size(data) is None
    with pytest.raises(ImageError):
        image_size(data)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    import numpy as np

    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = float((diff**2).mean())
    return 10 * np.log10(255.0**2 / mse) if mse else float("inf")


@pytest.mark.slow
def test_fit_high_by_draft_keeps_tokens_and_quality(tmp_path: Path) -> None:
    import numpy as np

    from vizlab.tokens import image_tokens

    # A 12 MP photo-like JPEG: gradient plus texture that survives the downscale (as a scene's
    # detail does), so aliasing from a careless shrink would show in the PSNR.
    rng = np.random.default_rng(3)
    x = np.linspace(0, 255, 4000, dtype=np.float32)
    y = np.linspace(0, 255, 3000, dtype=np.float32)
    pixels = np.stack([x[None, :] * 0.7 + 40 + 0 * y[:, None], y[:, None] * 0.6 + 30 + 0 * x[None, :],
                       (x[None, :] + y[:, None]) * 0.3], axis=-1)
    coarse = rng.standard_normal((750, 1000, 3), dtype=np.float32) * 14
    pixels += np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)
    data = _save(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), "JPEG", quality=90)
    fitted = encode_image(data, fit="high")
    assert (fitted.width, fitted.height) == (1024, 768)
    assert image_tokens(fitted.width, fitted.height, detail="high") == image_tokens(4000, 3000, detail="high")
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        reference = im.resize((1024, 768), Image.Resampling.LANCZOS)  # full decode, full-quality resize
    # Both sent the same way (JPEG at vizlab's quality), so the PSNR measures the resize alone:
    # the re-encode itself costs this texture ~29 dB whichever pixels it is given.
    sent_reference = _save(reference, "JPEG", quality=images.JPEG_QUALITY, optimize=True)
    with Image.open(io.BytesIO(fitted.data)) as sent, Image.open(io.BytesIO(sent_reference)) as full:
        assert _psnr(sent.convert("RGB"), full.convert("RGB")) >= 35.0
    draws: list[tuple[int, int]] = []
    original_draft = Image.Image.draft

    def spy(self: Image.Image, mode: Any, size: Any) -> Any:
        draws.append(size)
        return original_draft(self, mode, size)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Image.Image, "draft", spy)
        mp.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
        encode_image(data, fit="high")
    assert draws == [(1024, 768)]  # asked at the target, so libjpeg decodes at 1/2 scale


def test_devices_fifos_and_sockets_are_refused_without_reading(tmp_path: Path) -> None:
    import os
    import socket
    import threading

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # no writer: opening it for reading would block forever
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock_path))
        for source, kind in (("/dev/zero", "character device"), (fifo, "FIFO"), (sock_path, "socket")):
            for call in (to_data_url, encode_image, image_size, open_image):
                outcome: list[BaseException] = []
                worker = threading.Thread(target=lambda: outcome.append(_raised(call, source)), daemon=True)
                worker.start()
                worker.join(timeout=20)
                assert not worker.is_alive(), f"{call.__name__}({source}) blocked"
                error = outcome[0]
                assert isinstance(error, NotARegularFileError), (call.__name__, source, error)
                assert kind in str(error) and str(source) in str(error) and error.kind.startswith(kind)


def _raised(call: Callable[..., Any], source: Any) -> BaseException:
    try:
        call(source)
    except BaseException as e:  # the test inspects what was raised
        return e
    raise AssertionError(f"{call.__name__}({source!r}) did not refuse")


def test_reads_are_bounded_whatever_st_size_says() -> None:
    proc = Path("/proc/self/maps")  # a regular file whose st_size is 0 but whose text is not
    assert proc.stat().st_size == 0 and len(proc.read_bytes()) > 4 * 100
    with pytest.raises(ImageTooLargeError, match="maps"):
        to_data_url(proc, max_bytes=100)
    with pytest.raises(NotAnImageError):
        to_data_url(proc)  # read whole (it is small), then refused for what it is
