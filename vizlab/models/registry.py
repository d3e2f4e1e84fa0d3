"""Looking models up: exact names, aliases and dated snapshots, never a bare prefix.

``o1-pro`` is not ``o1``; ``gpt-4o-2024-08-06`` is ``gpt-4o``. An unknown name raises
:class:`~vizlab.errors.UnknownModelError` with the known families and how to :func:`register` one
(an Azure deployment name, say).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
from collections.abc import Iterator
from dataclasses import replace

from vizlab.errors import UnknownModelError
from vizlab.models.families import SNAPSHOTS, builtin
from vizlab.models.types import PROVIDERS, ModelInfo

__all__ = ['lookup', 'families', 'register', 'known_names', 'canonical_name', 'snapshots', 'lifecycle_warning',
           'default_local_model', 'DEFAULT_LOCAL_RULE', 'WARN_DAYS', 'registrations_undone']

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


@contextlib.contextmanager
def registrations_undone() -> Iterator[None]:
    """Inside, :func:`register` (and ``vizlab.tokens.register_model``) work as usual; on leaving,
    the registry is as it was: for tests and notebooks that try a name without keeping it.

    >>> with registrations_undone():
    ...     _ = register("scratch-deployment", like="gpt-4o")
    >>> canonical_name("scratch-deployment") is None
    True
    """
    families, aliases = dict(_FAMILIES), dict(_ALIASES)
    try:
        yield
    finally:
        _FAMILIES.clear()
        _FAMILIES.update(families)
        _ALIASES.clear()
        _ALIASES.update(aliases)


# --- lifecycle ----------------------------------------------------------------------------------

WARN_DAYS = 60  # Azure's notice before a GA retirement (model-retirements page: "at least 60 days")


def _today(today: str | _dt.date | None) -> _dt.date:
    if today is None:
        return _dt.date.today()
    if isinstance(today, _dt.date):
        return today
    try:
        return _dt.date.fromisoformat(str(today))
    except ValueError as e:
        raise ValueError(f"today {today!r} is not an ISO date (YYYY-MM-DD); pass e.g. '2026-12-07'") from e


def _as_date(value: object) -> _dt.date:
    """An ISO date; a month ("2026-10") counts from its first day (never warns late)."""
    text = str(value)
    return _dt.date.fromisoformat(text if len(text) == 10 else text[:7] + "-01")


def lifecycle_warning(model: str, today: str | _dt.date | None = None, provider: str | None = None) -> str | None:
    """A warning when ``model`` is past (or within :data:`WARN_DAYS` of) a retirement date on
    ``provider`` (None: any), with the date, its source and a replacement; None otherwise.

    Disputed dates warn when any source's date is past, and say which source says what.

    >>> print(lifecycle_warning("gpt-5-mini", "2026-12-07", "openai"))  # doctest: +ELLIPSIS
    gpt-5-mini retires on openai on 2026-12-11 (in 4 days) (source dated ...). Replacement: gpt-5.6-luna...
    """
    info = lookup(model)
    when = _today(today)
    if provider is not None and provider not in PROVIDERS:
        raise ValueError(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    lines = []
    for name, life in info.lifecycles.items():
        if (provider is not None and name != provider) or life.retires is None:
            continue
        past = [c for c in life.retires.claims if _as_date(c.value) <= when]
        soon = [c for c in life.retires.claims if 0 < (_as_date(c.value) - when).days <= WARN_DAYS]
        if not past and not soon:
            continue
        claim = (past or soon)[0]
        days = (_as_date(claim.value) - when).days
        line = f"{info.name} retired on {name} on {claim.value}" if days <= 0 else (
            f"{info.name} retires on {name} on {claim.value} (in {days} days)")
        line += f" (source dated {claim.source.as_of})"
        others = [c.value for c in life.retires.claims if c.value != claim.value]
        if life.retires.disputed and others:
            line += f"; disputed: other sources say {', '.join(str(o) for o in others)}"
        replacement = life.replacement or default_local_model(when)
        how = "" if life.replacement else " (vizlab's default rule; the provider names none)"
        lines.append(f"{line}. Replacement: {replacement}{how}. Sources: vizlab.models.lookup({info.name!r}).explain()")
    return "\n".join(lines) or None


# --- the built-in backend's default deployment ---------------------------------------------------

DEFAULT_LOCAL_RULE = (
    "the newest (by release on Azure) generally available vision reasoning model on Azure whose image rule is "
    "published (verified), not past a retirement date on Azure; among models released the same day, the one with "
    "the lowest default input price (what a room on a budget deploys), then by name; rule stated 2026-12-07"
)


def _default_candidates(when: _dt.date) -> Iterator[tuple[_dt.date, ModelInfo]]:
    """(release on Azure, model) for every model the rule admits on ``when``."""
    for info in _FAMILIES.values():
        azure = info.lifecycles.get("azure")
        if not (info.vision and info.reasoning and azure is not None and azure.source.verified):
            continue
        if azure.status != "generally-available" or "image_rule" in info.unverified() or azure.since is None:
            continue
        if _as_date(azure.since) > when:  # not yet released on Azure on that day
            continue
        if azure.retires is not None and any(_as_date(c.value) <= when for c in azure.retires.claims):
            continue
        yield _as_date(azure.since), info


def default_local_model(today: str | _dt.date | None = None) -> str:
    """The built-in backend's default deployment model, by :data:`DEFAULT_LOCAL_RULE`.

    On 2026-12-07 the newest are gpt-5.6 luna, sol and terra, all GA on Azure since 2026-07-09
    (Azure's retirement table, ms.date 2026-09-02), all with the guide's verified gpt-5.6 image
    rule; luna is the cheapest (input 0.20 per 1M against terra 2.00 and sol 5.00 list), so it
    wins. No stored source puts a GPT-6 model GA on Azure by then (that table lists none; a PTU
    sizing page of 2026-09-23 lists gpt-6-sol and gpt-6-astra without a stage), and GPT-6 image
    rules are UNVERIFIED, so the rule skips them. Before the gpt-5.6 release it was gpt-5.5.

    >>> default_local_model("2026-12-07"), default_local_model("2026-07-01")
    ('gpt-5.6-luna', 'gpt-5.5')
    """
    when = _today(today)
    found = list(_default_candidates(when))
    if not found:
        raise UnknownModelError(f"no model in the registry meets the default rule ({DEFAULT_LOCAL_RULE})",
                                model="", known=known_names())  # fmt: skip
    newest = max(since for since, _ in found)
    inf = float("inf")
    same_day = [info for since, info in found if since == newest]
    return min(same_day, key=lambda i: (i.prices.input if i.prices.input is not None else inf, i.name)).name


def _check_table() -> None:
    """Import-time sanity: every vision family has a rule for the newest profile."""
    for info in _FAMILIES.values():
        if info.vision:
            info.image_rule()


_check_table()
