"""One image's path through vizlab.images and the token estimate, traced call by call (issue 21).

The modules an image passes through, highest first (each imports only modules after it):
request estimate, image tokens, then encode (fit and encode) > files (the resolver) > dataurl >
format (the sniffer) > header (the size reader). A "climb" is a call made by one of these modules
into a function of a module higher than the one that ran just before it: data bouncing back up.
Calls straight from the user's code (image_part, estimate_request) start a walk and are not climbs.
Before issue 21 a path went through 25 stops with 11 climbs; the straight path has 13 and 3.
"""

from __future__ import annotations

import ast
import base64
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
        # resolved twice (the part, then the estimate reads its data URL), sniffed once, fit and encoded once
        assert walk.calls["files.resolve"] == 2, walk.calls
        assert walk.calls["format.sniff_or_refuse"] == 1, walk.calls
        assert walk.calls["encode.fit_size"] == 1, walk.calls
        assert walk.calls["encode._encode_bytes"] == 1, walk.calls
        assert walk.calls["header.read_header_size"] == 2, walk.calls  # once for the part, once for the estimate


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
