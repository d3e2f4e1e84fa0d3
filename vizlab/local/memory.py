"""Give the shared backend's freed heap back to the operating system when it goes quiet.

OCR and image decoding allocate and free hundreds of MB per dense request; glibc keeps freed
pages in its arenas (one per thread that allocated), so a backend that served one dense image
holds that peak for the rest of the workshop. ``malloc_trim(0)`` returns the free pages; it costs
a few ms, so the serve loop calls it once after each busy spell, never on a request's path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["ARENA_ENV", "release_free_memory"]

# Set in the shared backend's environment (vizlab.local.shared): glibc makes one malloc arena per
# thread up to 8 per core, each keeping its own freed pages; two bound that (measured on bench 11's
# requests: 353 vs 385 MiB RSS). Other C libraries ignore the variable.
ARENA_ENV = {"MALLOC_ARENA_MAX": "2"}


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to trim
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return freed heap pages to the OS (glibc's ``malloc_trim``); False where there is none."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
