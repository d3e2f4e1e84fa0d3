"""Tests for vizlab.images.header's reads past the head (issue 23): what is fetched, and when the
answer goes to Pillow. Every expected size is Pillow's full decode with its EXIF orientation."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from vizlab.errors import ImageError
from vizlab.images import header as imageheader
from vizlab.images import image_size


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _decoded(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return ImageOps.exif_transpose(im).size


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _xmp(orientation: int | None, padding: int = 0) -> bytes:
    tag = "" if orientation is None else f' tiff:Orientation="{orientation}"'
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"{tag}/></rdf:RDF></x:xmpmeta>'
            + " " * padding).encode()  # fmt: skip


def _png_after_ihdr(extra: bytes, size: tuple[int, int] = (120, 70)) -> bytes:
    """A real PNG from Pillow with ``extra`` chunks spliced in right after IHDR (before IDAT)."""
    data = _save(Image.new("RGB", size, (200, 30, 30)), "PNG")
    return data[:33] + extra + data[33:]


class Reads:
    """A fetch that records what the parser asks for beyond the head."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, size: int) -> bytes:
        self.calls.append((offset, size))
        return self.data[offset : offset + size]


def _parse(data: bytes) -> tuple[imageheader.HeaderSize | None, Reads]:
    """The header as a file is read (read_fd_header_size's read_ahead), counting what is fetched."""
    reads = Reads(data)
    return imageheader.read_header_size(data[: imageheader.HEAD_BYTES], imageheader.read_ahead(reads)), reads


def _itxt(keyword: bytes, text: bytes) -> bytes:
    return _chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + text)  # no compression, no language


# --- PNG --------------------------------------------------------------------------------------


def test_png_text_chunk_with_a_bad_crc_goes_to_pillow_which_refuses_it() -> None:
    """The CRC of an ancillary chunk is checked, not skipped: Pillow's ChunkStream.crc refuses a
    bad one unless LOAD_TRUNCATED_IMAGES is set, so skipping it would size a file Pillow cannot open."""
    text = _chunk(b"tEXt", b"Software\x00matplotlib")
    bad = text[:-4] + struct.pack(">I", (zlib.crc32(b"tEXtSoftware\x00matplotlib") + 1) & 0xFFFFFFFF)
    data = _png_after_ihdr(bad)
    assert imageheader.read_header_size(data) is None
    with pytest.raises(Exception, match="checksum|cannot identify"):
        Image.open(io.BytesIO(data)).load()
    with pytest.raises(ImageError):
        image_size(data)
    assert imageheader.read_header_size(_png_after_ihdr(text)) == (120, 70, 1)  # the good CRC is read


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_png_exif_after_a_big_itxt_is_found_with_one_read_past_the_head(orientation: int, tmp_path: Path) -> None:
    """A 10 KB XMP packet (no orientation) pushes the eXIf chunk past HEAD_BYTES: one fetch holds both."""
    xmp = _itxt(b"XML:com.adobe.xmp", _xmp(None, padding=10_000))
    data = _png_after_ihdr(xmp + _chunk(b"eXIf", _exif(orientation)))
    parsed, reads = _parse(data)
    assert parsed is not None and parsed.orientation == orientation
    assert parsed.displayed == _decoded(data)
    assert len(reads.calls) == 1, reads.calls
    path = tmp_path / "shot.png"
    path.write_bytes(data)
    assert image_size(path) == image_size(data) == _decoded(data)


def test_png_stops_at_the_first_idat() -> None:
    """Chunks after the pixel data are never read: Pillow's open stops there too."""
    data = _save(Image.new("RGB", (40, 30)), "PNG")
    late = data[:-12] + _chunk(b"eXIf", _exif(6)) + data[-12:]  # eXIf after IDAT: ignored by both
    parsed, reads = _parse(late + bytes(8000))
    assert parsed == (40, 30, 1) and reads.calls == []


def test_png_text_chunks_other_than_exif_and_xmp_do_not_change_the_answer() -> None:
    extra = _chunk(b"tEXt", b"Raw profile type exi\x00not the exif key") + _itxt(b"XML:com.adobe.xmp", _xmp(5))
    data = _png_after_ihdr(extra)
    assert imageheader.read_header_size(data) == (120, 70, 5)
    assert imageheader.read_header_size(data).displayed == _decoded(data)  # type: ignore[union-attr]


def test_png_truncated_inside_a_text_chunk_goes_to_pillow() -> None:
    data = _png_after_ihdr(_itxt(b"XML:com.adobe.xmp", _xmp(None, padding=6000)))
    assert imageheader.read_header_size(data[:5000]) is None
    assert _parse(data[:5000])[0] is None


# --- WEBP -------------------------------------------------------------------------------------


def test_webp_vp8x_without_exif_or_xmp_flags_reads_nothing_further() -> None:
    img = Image.new("RGBA", (90, 40), (30, 30, 200, 128))  # alpha: a VP8X canvas with no metadata
    data = _save(img, "WEBP", quality=80)
    assert data[12:16] == b"VP8X" and data[20] & 0x0C == 0
    parsed, reads = _parse(data)
    assert parsed == (90, 40, 1) and reads.calls == []


@pytest.mark.parametrize("orientation", [None, 6])
def test_webp_with_xmp_only_reads_its_orientation(orientation: int | None) -> None:
    """The EXIF flag is 0 but XMP's tiff:Orientation still counts (Pillow's getexif falls back to it)."""
    data = _save(Image.new("RGB", (90, 40), (30, 30, 200)), "WEBP", quality=80, xmp=_xmp(orientation))
    assert data[20] & 0x08 == 0 and data[20] & 0x04
    parsed, _ = _parse(data)
    assert parsed is not None and parsed.displayed == _decoded(data)
    assert parsed.orientation == (orientation or 1)


def test_webp_exif_and_xmp_at_the_end_cost_one_read() -> None:
    """Phone WEBPs: pixels, then EXIF, then XMP. One fetch past the head holds both."""
    img = Image.effect_noise((300, 200), 80).convert("RGB")  # noise: the pixel chunk outgrows the head
    data = _save(img, "WEBP", quality=90, exif=_exif(8), xmp=_xmp(3))
    assert len(data) > imageheader.HEAD_BYTES
    parsed, reads = _parse(data)
    assert parsed == (300, 200, 8)  # EXIF wins over XMP, as in Pillow
    assert parsed.displayed == _decoded(data)
    assert len(reads.calls) == 1, reads.calls
    assert imageheader.read_header_size(data[:-10], Reads(data[:-10])) is None  # truncated XMP: Pillow decides


def test_read_ahead_answers_from_its_block_and_refetches_outside_it() -> None:
    data = bytes(range(256)) * 40
    reads = Reads(data)
    fetch = imageheader.read_ahead(reads)
    assert fetch(5000, 8) == data[5000:5008]
    assert fetch(5008, 100) == data[5008:5108] and fetch(4990, 4) == data[4990:4994]  # after, then before
    assert fetch(10_230, 100) == data[10_230:]  # past the end: fewer bytes, as a file read gives
    ahead = imageheader.READ_AHEAD
    assert reads.calls == [(5000, 8 + ahead), (4990, 4 + ahead), (10_230, 100 + ahead)]


@pytest.mark.parametrize("kind", ["png-big-itxt", "webp-tail", "jpeg-comment"])
def test_files_read_through_the_fd_give_the_same_answer(kind: str, tmp_path: Path) -> None:
    if kind == "png-big-itxt":
        data = _png_after_ihdr(_itxt(b"XML:com.adobe.xmp", _xmp(None, padding=9000)) + _chunk(b"eXIf", _exif(6)))
    elif kind == "webp-tail":
        data = _save(Image.effect_noise((300, 200), 80).convert("RGB"), "WEBP", quality=90, exif=_exif(5), xmp=_xmp(3))
    else:
        data = _save(Image.new("RGB", (64, 48)), "JPEG", exif=_exif(7), comment=b"c" * 30_000)
    path = tmp_path / "image"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        from_file = imageheader.read_fd_header_size(fd)
    finally:
        os.close(fd)
    assert from_file is not None and from_file == imageheader.read_header_size(data)
    assert from_file.displayed == _decoded(data) == image_size(path)


# --- JPEG -------------------------------------------------------------------------------------


def test_jpeg_frame_after_a_big_segment_costs_one_small_read() -> None:
    img = Image.new("RGB", (64, 48), (10, 120, 30))
    data = _save(img, "JPEG", exif=_exif(6), comment=b"c" * 30_000)
    parsed, reads = _parse(data)
    assert parsed == (64, 48, 6) and parsed.displayed == _decoded(data)
    assert len(reads.calls) == 1 and reads.calls[0][1] <= 4 + imageheader.READ_AHEAD, reads.calls
