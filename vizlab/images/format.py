"""What the bytes are: the MIME type from magic bytes (the one sniffer), and how to say what they are not.

The type comes from the bytes, never the file name; SVG and PDF are named with how to convert
them, HEIC/AVIF with how to open them. Checks that need the decoder (frames, orientation,
pass-through integrity) live with the encoder, :mod:`vizlab.images.encode`, which runs them once
per image. Details: docs/internals.md#images
"""

from __future__ import annotations

import struct


from vizlab.errors import NotAnImageError, UnsupportedImageError
from vizlab.images import header as imageheader

__all__ = [
    "HEAD_BYTES",
    "UNSUPPORTED_KINDS",
    "sniff_mime",
    "sniff_or_refuse",
    "unsupported_container",
    "not_an_image_message",
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
