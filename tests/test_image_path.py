"""One image's path through vizlab.images and the token estimate, traced call by call (issue 21).

The modules an image passes through, highest first (each imports only modules after it):
request estimate, image tokens, then encode (fit and encode) > files (the resolver) > dataurl >
format (the sniffer) > header (the size reader). A "climb" is a call made by one of these modules
into a function of a module higher than the one that ran just before it: data bouncing back up.
Calls straight from the user's code (image_part, estimate_request) start a walk and are not climbs.
Before issue 21 a path went through 25 stops with 11 climbs; the straight path had 13 and 3, and has
9 and 2 now that the part carries the size it read to the estimate (one header read per image).
"""

from __future__ import annotations

import ast
import base64
import copy
import io
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from PIL import Image

import vizlab.images.dataurl
import vizlab.images.encode
import vizlab.images.files
import vizlab.images.format
import vizlab.images.header
import vizlab.tokens.image
import vizlab.tokens.request
from vizlab.images.encode import image_part
from vizlab.tokens.request import estimate_request

ORDER = [
    vizlab.tokens.request,
    vizlab.tokens.image,
    vizlab.images.encode,
    vizlab.images.files,
    vizlab.images.dataurl,
    vizlab.images.format,
    vizlab.images.header,
]
RANK = {module.__file__: rank for rank, module in enumerate(ORDER)}
NAME = {module.__file__: module.__name__.rsplit(".", 1)[-1] for module in ORDER}


class Walk:
    """The modules entered, in order (a run of calls within one module is one stop), and the climbs."""

    def __init__(self) -> None:
        self.stops: list[str] = []
        self.climbs: list[str] = []
        self.calls: Counter[str] = Counter()
        self._last: int | None = None

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or frame.f_code.co_filename not in RANK:
            return
        rank = RANK[frame.f_code.co_filename]
        where = f"{NAME[frame.f_code.co_filename]}.{frame.f_code.co_name}"
        self.calls[where] += 1
        caller = frame.f_back  # the nearest of these modules up the stack (through contextlib, Pillow...)
        while caller is not None and caller.f_code.co_filename not in RANK:
            caller = caller.f_back
        from_inside = caller is not None
        if from_inside and self._last is not None and rank < self._last:
            self.climbs.append(f"{self.stops[-1]} -> {where}")
        if self._last != rank:
            self.stops.append(where)
        self._last = rank


def trace(run: Callable[[], object]) -> Walk:
    walk = Walk()
    sys.setprofile(walk.profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return walk


def _photo(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"photo.{fmt.lower()}"
    Image.new("RGB", (1500, 900), (200, 40, 40)).save(path, fmt)
    return path


def _sources(tmp_path: Path) -> dict[str, object]:
    png = _photo(tmp_path, "PNG")
    data = png.read_bytes()
    return {
        "path": png,
        "jpeg path": str(_photo(tmp_path, "JPEG")),
        "bytes": data,
        "upload": {"name": "photo.png", "type": "image/png", "size": len(data), "content": memoryview(data)},
        "data URL": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
        "https URL": "https://example.com/photo.png",
    }


@pytest.mark.parametrize("kind", ["path", "jpeg path", "bytes", "upload", "data URL", "https URL"])
@pytest.mark.parametrize("fit", [None, "high"])
def test_one_image_climbs_back_up_at_most_three_times(tmp_path: Path, kind: str, fit: str | None) -> None:
    source = _sources(tmp_path)[kind]
    fit = None if kind == "https URL" else fit

    def run() -> None:
        part = image_part(source, detail="high", fit=fit)  # type: ignore[arg-type]
        estimate_request([{"role": "user", "content": [{"type": "text", "text": "What is it?"}, part]}], model="gpt-4o")

    run()  # imports and caches warmed outside the trace
    walk = trace(run)
    assert len(walk.climbs) <= 3, f"{kind}: {len(walk.climbs)} climbs: {walk.climbs}\nstops: {walk.stops}"
    if kind != "https URL":
        # resolved, sniffed, sized, fit and encoded once: the part carries its size to the estimate
        assert walk.calls["files.resolve"] == 1, walk.calls
        assert walk.calls["format.sniff_or_refuse"] == 1, walk.calls
        assert walk.calls["encode.fit_size"] == 1, walk.calls
        assert walk.calls["encode._encode_bytes"] == 1, walk.calls
        assert walk.calls["header.read_header_size"] == 1, walk.calls  # for the part; the estimate reads none


def test_the_tracer_sees_a_climb(tmp_path: Path) -> None:
    # The count can fail: open_image sniffs (format), then goes back up to encode's Pillow guard.
    path = _photo(tmp_path, "PNG")
    walk = trace(lambda: vizlab.images.encode.open_image(path))
    assert "format.sniff_or_refuse -> encode._pil_guard" in walk.climbs, walk.stops


def test_the_order_is_the_import_order() -> None:
    # The order is not chosen to suit the count: no module imports one above it (lazy imports too).
    names = [module.__name__ for module in ORDER]
    for rank, module in enumerate(ORDER):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {f"{node.module}.{a.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     for a in node.names if node.module}  # fmt: skip
        above = sorted(name for name in imported if name in names[:rank])
        assert not above, f"{module.__name__} imports {above}, above it in ORDER"


# --- the size a part carries to the estimate (the header read once per image) -------------------------


def _headers_read(run: Callable[[], object]) -> int:
    return trace(run).calls["header.read_header_size"]


def _rotated_jpeg() -> bytes:
    img = Image.new("RGB", (300, 120), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # a quarter turn: displayed 120 x 300
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _gif_frames() -> bytes:
    frames = [Image.new("RGB", (90, 40), (i * 80, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("source", "fit"),
    [
        ("png", None), ("png", "low"), ("png", "high"), ("png", (333, 77)), ("jpeg", None), ("jpeg", "high"),
        ("rotated jpeg", None), ("rotated jpeg", "low"), ("animated gif", None), ("pil", None), ("pil", "low"),
    ],
)
@pytest.mark.parametrize("detail", ["low", "high", "auto"])
@pytest.mark.filterwarnings("ignore:.*frames:UserWarning")
def test_a_part_carries_its_size_and_the_estimate_is_unchanged(
    tmp_path: Path, source: str, fit: Any, detail: str
) -> None:
    made = {
        "png": lambda: _photo(tmp_path, "PNG"),
        "jpeg": lambda: _photo(tmp_path, "JPEG"),
        "rotated jpeg": _rotated_jpeg,
        "animated gif": _gif_frames,
        "pil": lambda: Image.new("RGB", (2500, 1300), (10, 120, 30)),
    }[source]()
    part = image_part(made, detail=detail, fit=fit)
    assert isinstance(part, vizlab.images.encode.ImagePart)
    plain = json.loads(json.dumps(part))  # the same part as a user would write it: no size carried
    assert type(plain) is dict and plain == part
    assert part.size == vizlab.images.encode.image_size(part["image_url"]["url"])
    for model in ("gpt-4o", "gpt-4.1-mini", "gpt-5"):
        carried = estimate_request([{"role": "user", "content": [part]}], model=model)
        read = estimate_request([{"role": "user", "content": [plain]}], model=model)
        assert carried.prompt_tokens == read.prompt_tokens and carried.images == read.images, model
    assert _headers_read(lambda: estimate_request([{"role": "user", "content": [part]}])) == 0
    assert _headers_read(lambda: estimate_request([{"role": "user", "content": [plain]}])) == 1


def test_a_size_is_trusted_only_for_the_url_and_the_image_vizlab_read(tmp_path: Path) -> None:
    part = image_part(_photo(tmp_path, "PNG"), detail="high")
    copied = copy.deepcopy(part)  # Client.chat sends a deep copy of the messages
    assert copied.size == part.size and _headers_read(lambda: estimate_request([{"role": "user", "content": [copied]}])) == 0
    # a URL put in afterwards (here a 40 x 2000 strip) is read, and counted at its own size
    other = vizlab.images.encode.to_data_url(Image.new("RGB", (40, 2000)))
    part["image_url"]["url"] = other
    assert _headers_read(lambda: estimate_request([{"role": "user", "content": [part]}])) == 1
    swapped = estimate_request([{"role": "user", "content": [part]}])
    assert swapped.images[0].original == (40, 2000)
    # an EncodedImage whose size a caller gave (or a saved file held) is not measured: its part is plain
    given = vizlab.images.encode.EncodedImage(_photo(tmp_path, "PNG").read_bytes(), "image/png", 1, 1, "x", 1, 1)
    assert type(given.part("high")) is dict
    counted = estimate_request([{"role": "user", "content": [given.part("high")]}])
    assert counted.images[0].original == (1500, 900)
