"""Image width and height from a file's first bytes, without Pillow (``image_size``'s fast path).

Reads JPEG, PNG, GIF, WEBP, BMP and classic TIFF sizes (and the EXIF orientation that can swap
them) from a bounded prefix, so estimating a folder of thousands of photos costs little more
than their first kilobytes. Trade-offs: Pillow's answer or none (anything unusual returns None
and Pillow decides); pixel data is not validated. The format specifications followed are cited
beside :data:`HEAD_BYTES`. Details: docs/internals.md#images
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Callable
from typing import NamedTuple

__all__ = [
    "HEAD_BYTES",
    "MAX_SCAN_BYTES",
    "READ_AHEAD",
    "HeaderSize",
    "read_ahead",
    "read_header_size",
    "read_fd_header_size",
    "read_view_header_size",
]

# Format facts: JPEG markers ITU-T T.81 (1992) Table B.1 (SOF0-SOF15 except C4 DHT, C8 JPG, CC DAC);
# PNG IHDR/eXIf: PNG Specification 3rd edition (W3C, 2025) 11.2.1 and 11.3.3.5; GIF89a (1990)
# sections 18 and 20; WEBP container: RFC 9649 (2024) sections 2.5-2.7; BMP: Microsoft Win32
# "Bitmap Header Types"; TIFF 6.0 (Adobe, 1992) section 2; EXIF 2.32 (CIPA DC-008, 2019) 4.6.4 tag
# 0x0112. Checked against Pillow 13.0's plugins (JpegImagePlugin, PngImagePlugin, GifImagePlugin,
# WebPImagePlugin _get_size, BmpImagePlugin, Image.getexif), read 2026-12-02.
HEAD_BYTES = 4096  # one read: holds the header of nearly every PNG, GIF, WEBP, BMP and TIFF
MAX_SCAN_BYTES = 1 << 20  # JPEG segments / WEBP chunks walked past before giving up (to Pillow)
READ_AHEAD = 1024  # bytes read past what a file read asks for (see read_ahead)

_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')  # Pillow's own pattern
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")

_HAS_PREAD = hasattr(os, "pread")  # not on Windows

# fetch(offset, size) -> the bytes there (fewer at the end of the file)
Fetch = Callable[[int, int], bytes]


class HeaderSize(NamedTuple):
    """Stored size and EXIF orientation (1 when absent) of one image, from its header."""

    width: int
    height: int
    orientation: int = 1

    @property
    def displayed(self) -> tuple[int, int]:
        """(width, height) as shown: orientations 5-8 are quarter turns, which swap them."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


def read_header_size(head: bytes, fetch: Fetch | None = None) -> HeaderSize | None:
    """Size and orientation from ``head`` (the file's first bytes); None to ask Pillow instead.

    ``fetch(offset, size)`` reads further bytes of the same file when a header runs past
    ``head`` (large JPEG APP segments, WEBP EXIF chunks at the end); without it only ``head`` is used.

    >>> png = b"\\x89PNG\\r\\n\\x1a\\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0)
    >>> png += struct.pack(">I", zlib.crc32(png[12:29])) + struct.pack(">I", 0) + b"IDAT"
    >>> read_header_size(png)
    HeaderSize(width=640, height=480, orientation=1)
    """
    if fetch is None:
        fetch = _slicer(head)
    try:
        if head[:3] == b"\xff\xd8\xff":
            return _jpeg(head, fetch)
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            return _png(head, fetch)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(head, fetch)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp(head, fetch)
        if head[:2] == b"BM":
            return _bmp(head)
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(head, fetch)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def read_fd_header_size(fd: int) -> HeaderSize | None:
    """:func:`read_header_size` of an open file: one read of :data:`HEAD_BYTES`, then ``pread``
    for what lies further (the caller opens, checks and closes the file; OSError passes up)."""
    if _HAS_PREAD:
        return read_header_size(os.read(fd, HEAD_BYTES), read_ahead(lambda offset, size: os.pread(fd, size, offset)))
    return read_header_size(os.read(fd, HEAD_BYTES), read_ahead(_fd_reader(fd)))  # pragma: no cover - Windows


def read_view_header_size(data: bytes | bytearray | memoryview) -> HeaderSize | None:
    """:func:`read_header_size` of image bytes in memory, never copying more than the header reads."""
    if isinstance(data, bytes):
        return read_header_size(data)
    return read_header_size(bytes(data[:HEAD_BYTES]), lambda offset, size: bytes(data[offset : offset + size]))


def read_ahead(fetch: Fetch) -> Fetch:
    """``fetch`` reading :data:`READ_AHEAD` bytes more than asked, and answering from that block.

    Why: a system call costs more than copying a kilobyte, and what lies past the head comes in
    runs (a WEBP's EXIF then XMP chunk at the end; a JPEG's DQT then SOF after a big APP
    segment), so the next small read is usually a slice of the last. Segments skipped over
    are still never read. One block is kept; memory is never worth it (slicing is free there).
    """
    start, block = 0, b""

    def read(offset: int, size: int) -> bytes:
        nonlocal start, block
        end = offset + size
        if start <= offset and end <= start + len(block):
            return block[offset - start : end - start]
        start, block = offset, fetch(offset, size + READ_AHEAD)
        return block[:size]

    return read


def _fd_reader(fd: int) -> Fetch:  # pragma: no cover - Windows (no pread)
    def seek_and_read(offset: int, size: int) -> bytes:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, size)

    return seek_and_read


def _slicer(data: bytes) -> Fetch:
    return lambda offset, size: data[offset : offset + size]


def _read(head: bytes, fetch: Fetch, offset: int, size: int) -> bytes:
    if offset + size <= len(head):
        return head[offset : offset + size]
    return fetch(offset, size)


# --- EXIF orientation ---------------------------------------------------------------------------


def _exif_orientation(tiff: bytes) -> int | None:
    """Orientation tag of IFD0 in a TIFF-structured EXIF block; 0 if absent, None if unreadable
    (struct.error past the end, which read_header_size turns into None too)."""
    start = 6 if tiff[:6] == b"Exif\x00\x00" else 0
    order = _TIFF_ORDER.get(tiff[start : start + 2])
    if order is None:
        return None
    u16, u32, entry = order
    if u16.unpack_from(tiff, start + 2)[0] != 42:
        return None
    ifd = start + u32.unpack_from(tiff, start + 4)[0]
    found = 0
    for at in range(ifd + 2, ifd + 2 + 12 * u16.unpack_from(tiff, ifd)[0], 12):
        tag, kind, number = entry.unpack_from(tiff, at)
        if tag != 0x0112:
            continue
        if number != 1:
            return None
        if kind == 3:  # SHORT
            found = u16.unpack_from(tiff, at + 8)[0]
        elif kind == 4:  # LONG
            found = u32.unpack_from(tiff, at + 8)[0]
        else:
            return None
    return found


# byte order mark -> (SHORT, LONG, IFD entry's tag, type, count), compiled once
_TIFF_ORDER = {
    order: (struct.Struct(e + "H"), struct.Struct(e + "I"), struct.Struct(e + "HHI"))
    for order, e in ((b"II", "<"), (b"MM", ">"))
}


def _xmp_orientation(xmp: bytes) -> int | None:
    match = _XMP_ORIENTATION.search(xmp)
    return int(match[2]) if match else None


# --- the formats --------------------------------------------------------------------------------


def _jpeg(head: bytes, fetch: Fetch) -> HeaderSize | None:
    pos = 2
    exif: bytes | None = None
    xmp: bytes | None = None
    while pos < MAX_SCAN_BYTES:  # _read inlined, as in _png_orientation
        marker = head[pos : pos + 4] if pos + 4 <= len(head) else _read(head, fetch, pos, 4)
        if len(marker) < 4 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code == 0xFF:  # fill byte
            pos += 1
            continue
        if code == 0x01 or 0xD0 <= code <= 0xD7:
            pos += 2
            continue
        if code in (0xD9, 0xDA):  # end or scan before any frame header: let Pillow say what is wrong
            return None
        length = marker[2] << 8 | marker[3]  # big-endian, as every JPEG length
        if length < 2:
            return None
        if code in _JPEG_SOF:
            return _jpeg_frame(_read(head, fetch, pos + 4, 5), exif, xmp)
        if code == 0xE1:
            body = _read(head, fetch, pos + 4, length - 2)
            if len(body) < length - 2:
                return None
            if body[:6] == b"Exif\x00\x00":
                if exif is not None:  # Pillow concatenates a second one: rare, let it
                    return None
                exif = body
            elif body.startswith(b"http://ns.adobe.com/xap/1.0/\x00"):
                xmp = body.split(b"\x00", 1)[1]
        pos += 2 + length
    return None


def _jpeg_frame(frame: bytes, exif: bytes | None, xmp: bytes | None) -> HeaderSize | None:
    """The size in a SOF segment's first 5 bytes, turned by the EXIF (else XMP) seen before it."""
    if len(frame) < 5:
        return None
    height, width = struct.unpack(">HH", frame[1:5])
    if width == 0 or height == 0:  # height 0: defined later by a DNL marker
        return None
    orientation = 0
    if exif is not None:
        found = _exif_orientation(exif)
        if found is None:
            return None
        orientation = found
    if orientation == 0 and xmp is not None:  # no EXIF tag: Pillow's getexif() reads XMP
        orientation = _xmp_orientation(xmp) or 0
    return HeaderSize(width, height, orientation or 1)

def _png(head: bytes, fetch: Fetch) -> HeaderSize | None:
    """IHDR's size, with the orientation of the chunks before the pixel data (where Pillow's
    open stops, and where the spec puts eXIf). Every chunk's CRC is checked, as Pillow's
    ``ChunkStream.crc`` does for ancillary chunks too unless ``LOAD_TRUNCATED_IMAGES`` is set."""
    ihdr = _read(head, fetch, 8, 25)
    if len(ihdr) < 25:
        return None
    length, kind, width, height = _PNG_IHDR.unpack_from(ihdr)
    if length != 13 or kind != b"IHDR" or zlib.crc32(ihdr[4:21]) != _U32_BE.unpack_from(ihdr, 21)[0]:
        return None  # Pillow refuses a bad header checksum
    if width == 0 or height == 0:
        return None
    orientation = _png_orientation(head, fetch)
    return None if orientation is None else HeaderSize(width, height, orientation)


def _png_orientation(head: bytes, fetch: Fetch) -> int | None:
    """The orientation (1 without one) from the chunks after IHDR up to the pixel data; None if
    one of them is truncated, has a bad CRC or an unreadable EXIF profile."""
    exif: int | None = None  # the orientation of an eXIf chunk or a raw EXIF profile (0: no tag)
    xmp = 0
    pos = 33
    # _read inlined (it is a call per chunk): the chunks before IDAT are nearly always in head
    while pos < MAX_SCAN_BYTES:
        end = pos + 8
        chunk = head[pos:end] if end <= len(head) else _read(head, fetch, pos, 8)
        if len(chunk) < 8:
            return None
        size, kind = _PNG_CHUNK.unpack(chunk)
        if kind in _PNG_PIXELS:
            return exif or xmp or 1
        end += size + 4
        # type, data, CRC
        chunk = head[pos + 4 : end] if end <= len(head) else _read(head, fetch, pos + 4, size + 8)
        if len(chunk) < size + 8 or zlib.crc32(chunk[: size + 4]) != _U32_BE.unpack_from(chunk, size + 4)[0]:
            return None  # the CRC covers type and data
        if kind == b"eXIf":
            exif = _exif_orientation(chunk[4 : size + 4])
            if exif is None:
                return None
        elif kind in _PNG_TEXT:
            keyword, _, rest = chunk[4 : size + 4].partition(b"\x00")
            if keyword == _PNG_EXIF_KEY and exif is None:
                exif = _png_exif_text_orientation(kind, rest)
                if exif is None:
                    return None
            elif keyword == _PNG_XMP_KEY and not xmp:
                xmp = _png_xmp_orientation(kind, rest)
        pos += 12 + size
    return None


_PNG_IHDR = struct.Struct(">I4sII")
_PNG_CHUNK = struct.Struct(">I4s")
_U32_BE = struct.Struct(">I")
_PNG_PIXELS = (b"IDAT", b"IEND", b"fdAT")
_PNG_EXIF_KEY = b"Raw profile type exif"
_PNG_XMP_KEY = b"XML:com.adobe.xmp"


def _png_text(kind: bytes, rest: bytes) -> bytes | None:
    """The text of a tEXt, zTXt or iTXt chunk (``rest``: what follows its keyword and NUL), as
    Pillow's PngImagePlugin reads it (compressed text inflated, within MAX_SCAN_BYTES)."""
    if kind == b"tEXt":
        return rest
    if kind == b"zTXt":
        return _inflate(rest[1:]) if rest[:1] == b"\x00" else None
    flag, method, rest = rest[:1], rest[1:2], rest[2:]
    rest = rest.split(b"\x00", 2)[-1]  # language tag, translated keyword
    if flag == b"\x01":
        return _inflate(rest) if method == b"\x00" else None
    return rest


def _inflate(data: bytes) -> bytes | None:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_SCAN_BYTES)
    except zlib.error:
        return None
    return out if inflater.eof else None


def _png_exif_text_orientation(kind: bytes, rest: bytes) -> int | None:
    """Orientation from a "Raw profile type exif" text chunk (ImageMagick's hex dump, which
    Pillow's getexif reads); 0 without the tag, None if unreadable."""
    text = _png_text(kind, rest)
    if text is None:
        return None
    try:
        raw = bytes.fromhex("".join(text.decode("latin-1").split("\n")[3:]))
    except ValueError:
        return None
    return _exif_orientation(raw)


def _png_xmp_orientation(kind: bytes, rest: bytes) -> int:
    """tiff:Orientation in an XMP text chunk (0 when absent), as Pillow's getexif falls back to.
    Uncompressed text without the tag's name is answered without parsing (a macOS screenshot's)."""
    compressed = kind == b"zTXt" or (kind == b"iTXt" and rest[:1] == b"\x01")
    if not compressed and b"tiff:Orientation" not in rest:
        return 0
    text = _png_text(kind, rest)
    return (_xmp_orientation(text) or 0) if text else 0


def _gif(head: bytes, fetch: Fetch) -> HeaderSize | None:
    screen = _read(head, fetch, 6, 7)
    if len(screen) < 7:
        return None
    width, height = struct.unpack("<HH", screen[:4])
    flags = screen[4]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < MAX_SCAN_BYTES:
        introducer = _read(head, fetch, pos, 1)
        if introducer == b"!":  # extension: label, then sub-blocks until a zero length
            pos += 2
            while True:
                length = _read(head, fetch, pos, 1)
                if not length:
                    return None
                pos += 1 + length[0]
                if length[0] == 0:
                    break
        elif introducer == b",":  # the first frame: Pillow grows the size to hold it
            desc = _read(head, fetch, pos + 1, 8)
            if len(desc) < 8:
                return None
            x0, y0, w, h = struct.unpack("<HHHH", desc)
            width, height = max(width, x0 + w), max(height, y0 + h)
            if width == 0 or height == 0:
                return None
            return HeaderSize(width, height)
        else:
            return None
    return None


def _webp(head: bytes, fetch: Fetch) -> HeaderSize | None:
    kind = head[12:16]
    if kind == b"VP8 ":
        if len(head) < 30 or head[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", head[26:30])
        size = HeaderSize(width & 0x3FFF, height & 0x3FFF)
    elif kind == b"VP8L":
        if len(head) < 25 or head[20] != 0x2F:
            return None
        bits = struct.unpack("<I", head[21:25])[0]
        size = HeaderSize((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    elif kind == b"VP8X":
        if len(head) < 30:
            return None
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        if head[20] & 0x0C:  # EXIF or XMP: walk the chunk headers to them
            return _webp_orientation(head, fetch, width, height)
        size = HeaderSize(width, height)
    else:
        return None
    if size.width == 0 or size.height == 0:
        return None
    return size


def _webp_orientation(head: bytes, fetch: Fetch, width: int, height: int) -> HeaderSize | None:
    """The canvas size with the orientation of the EXIF chunk, else of the XMP chunk (as Pillow's
    getexif falls back to XMP); EXIF is usually the last chunk, so only chunk headers are read."""
    end = 8 + struct.unpack("<I", head[4:8])[0]
    pos = 12
    steps = 0
    exif: int | None = None
    xmp = 0
    while pos + 8 <= end and steps < 100_000:
        chunk = _read(head, fetch, pos, 8)
        if len(chunk) < 8:
            return None
        kind, length = _RIFF_CHUNK.unpack(chunk)
        if kind == b"EXIF" or kind == b"XMP ":
            if length > MAX_SCAN_BYTES:
                return None
            body = _read(head, fetch, pos + 8, length)
            if len(body) < length:
                return None
            if kind == b"EXIF" and exif is None:
                exif = _exif_orientation(body)
                if exif is None:
                    return None
            elif kind == b"XMP " and not xmp and not exif:  # a nonzero EXIF tag wins anyway
                xmp = _xmp_orientation(body) or 0
        pos += 8 + length + (length & 1)
        steps += 1
    return HeaderSize(width, height, exif or xmp or 1)


_RIFF_CHUNK = struct.Struct("<4sI")


def _bmp(head: bytes) -> HeaderSize | None:
    if len(head) < 30:
        return None
    header_size = struct.unpack("<I", head[14:18])[0]
    if header_size == 12:  # BITMAPCOREHEADER: unsigned 16-bit sides
        width, height = struct.unpack("<HH", head[18:22])
        bits = struct.unpack("<H", head[24:26])[0]
        compression = 0
    elif header_size in (40, 52, 56, 64, 108, 124):
        if len(head) < 34:
            return None
        width, height = struct.unpack("<ii", head[18:26])
        bits = struct.unpack("<H", head[28:30])[0]
        compression = struct.unpack("<I", head[30:34])[0]
        height = abs(height)  # negative: rows stored top-down
    else:
        return None
    if compression != 0 or bits not in (1, 4, 8, 24, 32) or width <= 0 or height <= 0:
        return None  # the rest Pillow checks (bit fields, RLE, palettes) before giving a size
    return HeaderSize(width, height)


def _tiff(head: bytes, fetch: Fetch) -> HeaderSize | None:
    e = "<" if head[:2] == b"II" else ">"
    ifd = struct.unpack(e + "I", head[4:8])[0]
    count_raw = _read(head, fetch, ifd, 2)
    if len(count_raw) < 2:
        return None
    count = struct.unpack(e + "H", count_raw)[0]
    table = _read(head, fetch, ifd + 2, 12 * count)
    if len(table) < 12 * count:
        return None
    values: dict[int, int] = {}
    for n in range(count):
        tag, kind, number = struct.unpack(e + "HHI", table[12 * n : 12 * n + 8])
        if tag not in (256, 257, 274):
            continue
        if number != 1:
            return None
        if kind == 3:
            values[tag] = struct.unpack(e + "H", table[12 * n + 8 : 12 * n + 10])[0]
        elif kind == 4:
            values[tag] = struct.unpack(e + "I", table[12 * n + 8 : 12 * n + 12])[0]
        else:
            return None
    width, height = values.get(256, 0), values.get(257, 0)
    if width == 0 or height == 0:
        return None
    return HeaderSize(width, height, values.get(274, 1))
