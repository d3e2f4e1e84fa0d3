"""Sample images the built-in backend serves on its own origin, so the web-URL flow runs offline.

``GET /samples/NAME.jpg`` serves a few images made in memory; image URLs pointing at exactly
those paths on the backend's own loopback origin resolve to bytes in-process, never fetched;
every other http(s) URL keeps the 400. Trade-off: "own origin" is the socket's address, not the
``Host`` header, and download timeouts and redirects are not emulated.
Details and examples: docs/internals.md#local
"""

from __future__ import annotations

import functools
import io
from typing import Any, Callable
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image

from vizlab import datasets
from vizlab.local.http.errors import AzureError, bad_request

PREFIX = "/samples/"
_JPEG_QUALITY = 95  # at 90 the analyst miscounts shapes blurred by JPEG artefacts


def _grace_hopper() -> Image.Image:
    return datasets.sample_photo("grace_hopper.jpg")


def _parking_sign() -> Image.Image:
    # 40 px text on a 1024x768 card: readable at detail low and high alike.
    return datasets.text_card("NO PARKING\nMON-FRI 8-18", font_px=40, size=(1024, 768))


def _shapes() -> Image.Image:
    return datasets.shapes_card({"circle": 3, "triangle": 2}, size=(1024, 768), seed=7)


# name -> (what it shows, how to make it)
SAMPLES: dict[str, tuple[str, Callable[[], Image.Image]]] = {
    "grace-hopper.jpg": ("the portrait of Grace Hopper that matplotlib ships (512x600)", _grace_hopper),
    "parking-sign.jpg": ("a sign reading 'NO PARKING / MON-FRI 8-18' (1024x768)", _parking_sign),
    "shapes.jpg": ("three circles and two triangles on white (1024x768)", _shapes),
}


@functools.lru_cache(maxsize=None)
def sample_bytes(name: str) -> bytes:
    """The JPEG bytes of sample ``name`` (made once per process). Unknown names: ``KeyError``."""
    _, make = SAMPLES[name]
    buffer = io.BytesIO()
    make().convert("RGB").save(buffer, format="JPEG", quality=_JPEG_QUALITY)
    return buffer.getvalue()


def origin_of(request: Request) -> str | None:
    """``http://HOST:PORT`` of the socket ``request`` arrived on, or None when unknown."""
    server = request.scope.get("server")
    if not server or server[1] is None:
        return None
    host, port = server
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


def sample_name(url: str, origin: str | None, param: str | None = None) -> str | None:
    """The sample ``url`` names when it is ``{origin}/samples/NAME`` exactly; else None.

    A known origin and path with an unknown NAME raises the 400 that lists what exists, since the
    URL can only have been meant for this backend.

    >>> sorted(SAMPLES)
    ['grace-hopper.jpg', 'parking-sign.jpg', 'shapes.jpg']
    >>> sample_name("http://127.0.0.1:8000/samples/shapes.jpg", "http://127.0.0.1:8000")
    'shapes.jpg'
    >>> sample_name("https://example.com/samples/shapes.jpg", "http://127.0.0.1:8000") is None
    True
    """
    if origin is None:
        return None
    try:
        parts, mine = urlsplit(url), urlsplit(origin)
    except ValueError:
        return None
    if (parts.scheme, parts.hostname, parts.port) != (mine.scheme, mine.hostname, mine.port):
        return None
    if not parts.path.startswith(PREFIX) or parts.query or parts.fragment or parts.username:
        return None
    name = parts.path[len(PREFIX):]
    if name not in SAMPLES:
        raise bad_request(
            "invalid_image_url",
            f"No sample image {name[:60]!r} on this backend ({origin}). Available: "
            + ", ".join(f"{origin}{PREFIX}{n}" for n in SAMPLES)
            + ".",
            param,
        )
    return name


def catalogue(origin: str | None) -> list[dict[str, Any]]:
    """One entry per sample: name, URL on ``origin``, what it shows, size in bytes."""
    base = origin or ""
    return [
        {"name": name, "url": f"{base}{PREFIX}{name}", "shows": shows, "bytes": len(sample_bytes(name))}
        for name, (shows, _) in SAMPLES.items()
    ]


# ``GET /samples/`` (the list, JSON) and ``GET /samples/NAME.jpg`` (the JPEG), no key, like a public
# blob the service would download.
router = APIRouter()


@router.get(PREFIX, include_in_schema=False)
async def list_samples(request: Request) -> JSONResponse:
    return JSONResponse({"object": "list", "data": catalogue(origin_of(request))})


@router.get(PREFIX + "{name}", include_in_schema=False)
async def get_sample(request: Request, name: str) -> Response:
    if name not in SAMPLES:
        raise AzureError(
            404,
            "404",
            f"No sample image {name[:60]!r}. Available: {', '.join(SAMPLES)} (list: GET {PREFIX}).",
            type=None,
        )
    return Response(sample_bytes(name), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
