"""The checks every API route shares, as FastAPI dependencies: the key, the api-version, the body.

FastAPI runs a route's dependencies in the order its parameters declare them, and the first one
to raise answers; so a route's signature is its order of checks (key, api-version, deployment,
body size, JSON). Trade-off: a typed query parameter of the route itself (``limit: int``) is
validated after every dependency has run, so one that must fail first sits inside the access
dependency (:func:`paged_access`). Order, rules and statuses: tests/test_route_order.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from fastapi import APIRouter, Depends, Query, Request

from vizlab.local.state import BackendState
from vizlab.local.http.apiversion import check_api_version, check_v1_api_version
from vizlab.local.http.errors import AzureError
from vizlab.local.http.intake import authenticate, read_body, read_json

__all__ = ["backend_state", "api_access", "checked_version", "mount", "paged_access", "checked_page", "Page",
           "json_body", "raw_body", "v1_version", "DATED", "V1", "V1_NAMED", "CHAT_BODY"]


def backend_state(request: Request) -> BackendState:
    """The state of the app serving ``request`` (settings, limiters, stores)."""
    state: BackendState = request.app.state.vizlab
    return state


VersionCheck = Callable[[str | None], Any]


def api_access(version_of: VersionCheck) -> Callable[..., Awaitable[Any]]:
    """A dependency: the key (401), then ``version_of(api-version)`` (404 / 400); returns its result.

    >>> dated = api_access(check_api_version)  # a route then takes: version: str = Depends(dated)
    """

    async def access(request: Request, api_version: str | None = Query(None, alias="api-version")) -> Any:
        authenticate(request, backend_state(request).config)
        request.state.vizlab_api_version = version = version_of(api_version)
        return version

    return access


async def checked_version(request: Request) -> Any:
    """The api-version as the route's access dependency checked it (for routes mounted per prefix)."""
    return request.state.vizlab_api_version


Route = tuple[str, str, Callable[..., Any], str]  # method, path under the prefix, endpoint, summary


def mount(router: APIRouter, prefix: str, access: Callable[..., Any], tag: str, routes: tuple[Route, ...],
          **extra: Any) -> None:
    """Add ``routes`` under ``prefix``, each behind ``access`` (run before the endpoint's own
    dependencies), summaries tagged "(tag)". ``extra``: per-path keyword arguments of add_api_route."""
    for method, path, endpoint, summary in routes:
        router.add_api_route(
            prefix + path, endpoint, methods=[method], summary=f"{summary} ({tag})",
            dependencies=[Depends(access)], **extra.get(path, {}),
        )


# The two routes families: dated (a published api-version or Azure's 404) and v1 (none, or 400).
def v1_version(api_version: str | None) -> str:
    """The v1 routes' version check, naming the version "v1" (where a version is reported)."""
    return check_v1_api_version(api_version) or "v1"


DATED = api_access(check_api_version)
V1 = api_access(check_v1_api_version)  # None: the v1 routes take no dated version
V1_NAMED = api_access(v1_version)


@dataclass(frozen=True)
class Page:
    """A list route's paging: the version the access check returned, the order and the size asked for."""

    version: Any
    order: str
    limit: int


def _page_query(order: str = Query("desc"), limit: int = Query(20)) -> tuple[str, int]:
    return order, limit


def paged_access(version_of: VersionCheck) -> Callable[..., Awaitable[Page]]:
    """:func:`api_access` for a list route whose typed paging parameters are checked first, as
    FastAPI checks a route's own query parameters before its body runs (a bad ``limit`` is a 400
    even without a key)."""

    async def access(
        request: Request,
        page: tuple[str, int] = Depends(_page_query),
        api_version: str | None = Query(None, alias="api-version"),
    ) -> Page:
        authenticate(request, backend_state(request).config)
        request.state.vizlab_page = checked = Page(version_of(api_version), *page)
        return checked

    return access


async def checked_page(request: Request) -> Page | None:
    """The paging :func:`paged_access` checked. None when its query failed validation: FastAPI then
    still solves this dependency, but answers the 400 instead of calling the route."""
    page: Page | None = getattr(request.state, "vizlab_page", None)
    return page


def json_body(limit_of: Callable[[BackendState], int]) -> Callable[..., Awaitable[Any]]:
    """A dependency: the JSON body, read up to ``limit_of(state)`` bytes (413 beyond, 400 if not JSON)."""

    async def body(request: Request) -> Any:
        state = backend_state(request)
        return await read_json(request, limit_of(state), state.parse_json)

    return body


def raw_body(limit: int, too_large: Callable[[int], AzureError]) -> Callable[..., Awaitable[bytes]]:
    """A dependency: the raw body, read up to ``limit`` bytes (``too_large(limit)`` beyond)."""

    async def body(request: Request) -> bytes:
        return await read_body(request, limit, too_large)

    return body


CHAT_BODY = json_body(lambda state: state.config.body_limit)  # room for max_images images
