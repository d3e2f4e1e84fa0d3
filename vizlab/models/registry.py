"""Looking models up: exact names, aliases and dated snapshots, never a bare prefix.

``o1-pro`` is not ``o1``; ``gpt-4o-2024-08-06`` is ``gpt-4o``. An unknown name raises
:class:`~vizlab.errors.UnknownModelError` with the known families and how to :func:`register` one
(an Azure deployment name, say).
"""

from __future__ import annotations

import re
from dataclasses import replace

from vizlab.errors import UnknownModelError
from vizlab.models.families import SNAPSHOTS, builtin
from vizlab.models.types import ModelInfo

__all__ = ['lookup', 'families', 'register', 'known_names', 'canonical_name', 'snapshots']

_FAMILIES: dict[str, ModelInfo] = {}
_ALIASES: dict[str, str] = {}
_SNAPSHOT = re.compile(r"^(?P<base>.+)-(?P<date>\d{4}-\d{2}-\d{2})$")


def _add(info: ModelInfo) -> None:
    _FAMILIES[info.name] = info
    for alias in info.aliases:
        _ALIASES[alias] = info.name


for _info in builtin():
    _add(_info)


def families() -> list[str]:
    """The canonical family names, sorted."""
    return sorted(_FAMILIES)


def known_names() -> list[str]:
    """Families and aliases, sorted (dated snapshots of any of them also work)."""
    return sorted(set(_FAMILIES) | set(_ALIASES))


def _exact(key: str) -> str | None:
    if key in _FAMILIES:
        return key
    return _ALIASES.get(key)


def canonical_name(model: str) -> str | None:
    """The family ``model`` names, or None: exact, alias, or ``<known name>-YYYY-MM-DD``.

    >>> canonical_name("gpt-4o-mini-2024-07-18"), canonical_name("o1-pro"), canonical_name("o1-preview")
    ('gpt-4o-mini', 'o1-pro', None)
    """
    if not isinstance(model, str):
        return None
    key = model.strip().lower()
    found = _exact(key)
    if found is None:
        snap = _SNAPSHOT.match(key)
        if snap:
            found = _exact(snap.group("base"))
    return found


def lookup(model: str) -> ModelInfo:
    """The :class:`ModelInfo` for ``model`` (exact name, alias, or dated snapshot).

    >>> lookup("gpt-4o-2024-08-06").name
    'gpt-4o'
    """
    name = canonical_name(model)
    if name is None:
        raise UnknownModelError(
            f"model {model!r} is not in vizlab's registry. Known families: {', '.join(families())}. "
            "Names match exactly, by alias, or as a dated snapshot ('gpt-4o-2024-08-06'); never by prefix. "
            "For an Azure deployment name, register it: vizlab.models.register('my-deployment', like='gpt-4o')",
            model=str(model),
            known=known_names(),
        )
    key = model.strip().lower()
    if key in SNAPSHOTS:
        return replace(_FAMILIES[name], **SNAPSHOTS[key])  # type: ignore[arg-type]
    return _FAMILIES[name]


def snapshots() -> list[str]:
    """Dated snapshots whose facts (prices, limits) differ from their family's, sorted."""
    return sorted(SNAPSHOTS)


def register(name: str, *, like: str | None = None, info: ModelInfo | None = None) -> ModelInfo:
    """Make ``name`` known: an alias of the family ``like`` names, or a new family ``info``.

    >>> register("my-vision-deployment", like="gpt-4o").name
    'gpt-4o'
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name {name!r} must be a non-empty model or deployment name")
    key = name.strip().lower()
    if (like is None) == (info is None):
        raise ValueError("register(name, like='gpt-4o') for an alias, or register(name, info=ModelInfo(...)); pass one")
    if like is not None:
        target = lookup(like)
        _ALIASES[key] = target.name
        return target
    assert info is not None
    if not isinstance(info, ModelInfo):
        raise TypeError(f"info for {name!r} must be a ModelInfo, not {type(info).__name__}")
    new = replace(info, name=key) if info.name != key else info
    _FAMILIES[key] = new
    return new


def _check_table() -> None:
    """Import-time sanity: every vision family has a rule for the newest profile."""
    for info in _FAMILIES.values():
        if info.vision:
            info.image_rule()


_check_table()
