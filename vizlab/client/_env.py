"""Settings from the environment and an optional ``.env`` file, read without side effects.

The ``.env`` file (python-dotenv's ``dotenv_values``) is laid *under* ``os.environ``: a variable
already set always wins, and nothing is written back, so two connects never leak settings into
each other. A relative ``env_file`` is looked for in the current directory, then in the source
checkout's root (beside ``pyproject.toml``); an absolute one is used as given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from vizlab.errors import ConfigurationError

__all__ = ["DEFAULT_ENV_FILE", "find_env_file", "read_settings"]

DEFAULT_ENV_FILE = ".env"

# vizlab/_env.py -> the checkout root holds pyproject.toml (absent in an installed wheel).
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def find_env_file(env_file: str | os.PathLike[str] | None) -> Path | None:
    """Return the ``.env`` file to read, or None.

    A missing file is fine for the default name (most setups have none); a path the caller
    chose explicitly must exist, or the settings they meant to use would be silently ignored.

    >>> find_env_file(None) is None
    True
    """
    if env_file is None:
        return None
    path = Path(env_file).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path]
    if not path.is_absolute() and (_SOURCE_ROOT / "pyproject.toml").is_file():
        candidates.append(_SOURCE_ROOT / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if os.fspath(env_file) != DEFAULT_ENV_FILE:
        looked = ", ".join(str(c) for c in candidates)
        raise ConfigurationError(
            f"env_file={os.fspath(env_file)!r} was not found (looked in {looked}): "
            "pass the path of an existing file, or env_file=None to read none"
        )
    return None


def read_settings(
    env_file: str | os.PathLike[str] | None = DEFAULT_ENV_FILE,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Merge the ``.env`` file (if any) under the environment; empty values count as unset.

    >>> read_settings(None, {"A": "1", "B": ""})
    {'A': '1'}
    """
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    path = find_env_file(env_file)
    if path is not None:
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return {k: v for k, v in merged.items() if v.strip()}
