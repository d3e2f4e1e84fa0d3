"""What the bytes are: MIME type from magic bytes, orientation and frames, cheap integrity checks.

The type comes from the bytes, never the file name; SVG and PDF are named with how to convert
them. Trade-off: pass-through images get structural checks, not a decode (a 12 MP decode costs
~100 ms and ~36 MB), so a JPEG damaged inside its scan data is not caught here. Orientation is
read from the header without loading pixels. Details: docs/internals.md#images
"""

from __future__ import annotations

import io
import struct

from PIL import Image

from vizlab.errors import CorruptImageError, NotAnImageError, UnsupportedImageError
from vizlab.images import header as imageheader

__all__ = [
    "HEAD_BYTES",
    "UNSUPPORTED_KINDS",
    "sniff_mime",
    "sniff_or_refuse",
    "unsupported_container",
    "not_an_image_message",
    "verify_passthrough",
    "webp_is_lossy",
    "frame_count",
    "orientation",
    "oriented_size",
]


HEAD_BYTES = imageheader.HEAD_BYTES  # enough for every signature sniff_mime looks at


# Sniffed kinds that are real files but not something the service (or Pillow) takes.
UNSUPPORTED_KINDS = {
    "image/svg+xml": "svg",
    "application/pdf": "pdf",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/avif": "avif",
}


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of ``data`` from its magic bytes alone, or None if it is not recognised.

    Recognises the formats we send or convert (JPEG, PNG, GIF, WEBP, BMP, TIFF) and, so that
    errors can name them, SVG, PDF and the ISO-BMFF images (HEIC, HEIF, AVIF).

    >>> sniff_mime(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
    'image/png'
    >>> sniff_mime(b"hello") is None
    True
    """
    head = bytes(data[:HEAD_BYTES])
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


def sniff_or_refuse(data: bytes, name: str) -> str | None:
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
            f"{name} is a PDF document, not an image (its bytes say so, whatever its name): send it as "
            "the service takes PDFs with vizlab.file_part(source), or its pages as images with "
            "vizlab.page_parts(source, pages=[1], dpi=150).",
            source=name,
            kind="pdf",
        )
    return mime


def unsupported_container(mime: str, name: str) -> UnsupportedImageError:
    kind = UNSUPPORTED_KINDS[mime]
    return UnsupportedImageError(
        f"{name} is a {kind.upper()} image, which the service does not accept and this Pillow "
        "cannot read. Convert it to JPEG or PNG first, e.g. `pip install pillow-heif` then "
        "pillow_heif.register_heif_opener() (vizlab then converts it), or `heif-convert in.heic "
        "out.jpg` / macOS `sips -s format jpeg in.heic --out out.jpg`.",
        source=name,
        kind=kind,
    )


def not_an_image_message(name: str, head: bytes) -> str:
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
