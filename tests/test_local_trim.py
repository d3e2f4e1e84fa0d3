"""The shared backend hands freed heap back to the OS after a busy spell (vizlab.local.memory)."""

from __future__ import annotations

import ctypes
import os
import sys
import threading

import pytest

from vizlab.local.memory import release_free_memory

GLIBC = sys.platform.startswith("linux") and "glibc" in (os.confstr("CS_GNU_LIBC_VERSION") or "")


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's; elsewhere release_free_memory() is a no-op")
def test_heap_freed_by_worker_threads_goes_back_to_the_os() -> None:
    """The backend's pattern: OCR threads allocate and free large buffers in their own malloc
    arenas, each pinned by a small block still alive, so glibc keeps the freed pages."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    pins: list[int] = []

    def work() -> None:
        blocks = []
        for _ in range(600):
            block = libc.malloc(100 * 1024)
            ctypes.memset(block, 1, 100 * 1024)  # touch it: resident
            blocks.append(block)
            pins.append(libc.malloc(32))
        for block in blocks:
            libc.free(block)

    before = _rss()
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = _rss() - before
    assert release_free_memory()
    released = before + held - _rss()
    try:
        assert held > 60 * 2**20, f"glibc kept only {held / 2**20:.0f} MiB: the premise of this test changed"
        assert released > held * 0.7, f"a trim returned {released / 2**20:.0f} of {held / 2**20:.0f} MiB"
    finally:
        for pin in pins:
            libc.free(pin)
