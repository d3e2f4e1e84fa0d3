"""What vizlab does for the Jupyter kernel it is imported in: hand freed memory back after each cell.

Decoding images and drawing figures free hundreds of MB inside a cell, and glibc keeps freed
pages for the process; a workshop laptop with eight open notebooks pays for every kernel's peak
(bench 11: 51 MiB of notebook 08's 328 MiB was freed but held). After each cell
vizlab calls ``malloc_trim`` (vizlab.local.memory; 0.1 ms when there is nothing to return, a few
ms when there is). Outside IPython, or with ``VIZLAB_TRIM=0``, nothing is registered.
"""

from __future__ import annotations

import os
from typing import Any

from vizlab.local.memory import release_free_memory

__all__ = ["TRIM_ENV", "install_trim"]

TRIM_ENV = "VIZLAB_TRIM"
_installed: list[Any] = []  # the shell the hook is registered with (at most one)


def _after_cell(*_: Any) -> None:
    release_free_memory()


def install_trim() -> bool:
    """Register the after-cell trim with the running IPython shell; False when there is none, it
    is already there, or ``VIZLAB_TRIM=0``."""
    if os.environ.get(TRIM_ENV, "1").strip() == "0" or _installed:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "events"):
        return False
    shell.events.register("post_run_cell", _after_cell)
    _installed.append(shell)
    return True
