"""Layers point one way: no import circles inside vizlab/, no private name taken from another module,
no name re-exported by a module that does not define it (package __init__ files aside), and the
folders' order: models and geometry at the bottom, then images, tokens, conversation, client,
then widgets and experiments; vizlab.local imports nothing from the client side.

Every ``import`` / ``from ... import`` anywhere in a module counts (top level, inside functions, under
``if TYPE_CHECKING``), as the project's before-stop checker counts them: two modules are in a circle
when each reaches the other through any chain of imports.

KNOWN_VIOLATIONS lists the ones that exist today, each with the helper who owns the fix; the test
fails on any violation not listed (and on a listed one that is gone, so the list only shrinks).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vizlab"

# (kind, what, owner). Owners remove their entries when they fix them.
KNOWN_VIOLATIONS: set[tuple[str, str, str]] = set()


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        mods[name] = f
    return mods


def _resolve(module: str | None, level: int, here: str, is_package: bool) -> str | None:
    if level == 0:
        return module
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


@functools.lru_cache(maxsize=1)
def _graph() -> tuple[dict[str, set[str]], list[str]]:
    mods = _modules()
    edges: dict[str, set[str]] = {}
    private: list[str] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = _resolve(node.module, node.level, name, is_package)
                if not module or not (module == "vizlab" or module.startswith("vizlab.")):
                    continue
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    if sub in mods:  # `from vizlab import errors` imports the module vizlab.errors
                        edges.setdefault(name, set()).add(sub)
                        continue
                    edges.setdefault(name, set()).add(module)
                    if alias.name.startswith("_") and not alias.name.startswith("__") and module != name:
                        private.append(f"{name} takes {alias.name} from {module}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("vizlab."):
                        edges.setdefault(name, set()).add(alias.name)
    return {k: {m for m in v if m in mods and m != k} for k, v in edges.items()}, private


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, stack = set(), [start]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def _violations() -> set[tuple[str, str]]:
    edges, private = _graph()
    found = set()
    for a, targets in edges.items():
        for b in targets:
            # a imports b directly and b reaches back to a: a circle (the checker's definition).
            if _reaches(edges, b, a):
                x, y = sorted((a, b))
                found.add(("circle", f"{x} <-> {y}"))
    found |= {("private", line) for line in private}
    return found


@pytest.mark.slow
def test_no_new_circle_or_private_import():
    known = {(kind, what) for kind, what, _owner in KNOWN_VIOLATIONS}
    new = sorted(_violations() - known)
    assert not new, "new layering violations (fix them; do not add them to KNOWN_VIOLATIONS):\n" + "\n".join(
        f"{kind}: {what}" for kind, what in new
    )


@pytest.mark.slow
def test_known_violations_are_still_real():
    # A fixed violation must leave the list, so the list cannot hide a future one.
    gone = sorted({(kind, what) for kind, what, _ in KNOWN_VIOLATIONS} - _violations())
    assert not gone, "fixed, remove from KNOWN_VIOLATIONS: " + ", ".join(what for _, what in gone)


def _package_of(module: str) -> str:
    """The layer a module belongs to: its folder under vizlab/ (or the top-level module itself)."""
    parts = module.split(".")
    return ".".join(parts[:2])


# Each layer may import only from the layers listed before it (and from itself).
LAYERS = [
    ("vizlab.errors", "vizlab.geometry"),
    ("vizlab.models",),
    ("vizlab.images",),
    ("vizlab.tokens",),
    ("vizlab.conversation", "vizlab.datasets", "vizlab.document_samples", "vizlab.tables"),
    ("vizlab.local",),
    ("vizlab.client", "vizlab.kernel"),
    ("vizlab.batch",),
    ("vizlab.experiments", "vizlab.plots"),
    ("vizlab.widgets", "vizlab.room"),
]


def _rank(module: str) -> int | None:
    top = _package_of(module)
    for rank, layer in enumerate(LAYERS):
        if top in layer:
            return rank
    return None


def test_imports_point_down_the_layers():
    edges, _ = _graph()
    upward = []
    for a, targets in edges.items():
        ra = _rank(a)
        for b in targets:
            rb = _rank(b)
            if ra is not None and rb is not None and rb > ra:
                upward.append(f"{a} -> {b}")
    assert not upward, "imports that climb a layer:\n" + "\n".join(sorted(upward))


def test_every_module_has_a_layer():
    edges, _ = _graph()
    homeless = sorted(m for m in _modules() if m != "vizlab" and _rank(m) is None)
    assert not homeless, f"modules outside every layer in LAYERS: {homeless}"


def test_the_backend_imports_nothing_from_the_client_side():
    edges, _ = _graph()
    client_side = ("vizlab.client", "vizlab.widgets", "vizlab.experiments", "vizlab.batch", "vizlab.room")
    bad = sorted(f"{a} -> {b}" for a, ts in edges.items() if a.startswith("vizlab.local") for b in ts
                 if _package_of(b) in client_side)
    assert not bad, bad


def test_registry_and_geometry_are_the_bottom_layer():
    edges, _ = _graph()
    assert edges.get("vizlab.geometry", set()) == set()
    for module, targets in edges.items():
        if module.startswith("vizlab.models"):
            assert {_package_of(t) for t in targets} <= {"vizlab.errors", "vizlab.models"}, (module, targets)


@pytest.mark.slow
def test_no_module_re_exports_a_name_it_does_not_define():
    # Package __init__ files list public names; every other module's __all__ holds only its own.
    bad = []
    for name, path in _modules().items():
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = set()
        exported: list[str] = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Name):
                            defined.add(sub.id)
                if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                    exported = [e.value for e in node.value.elts]  # type: ignore[attr-defined]
        bad += [f"{name}.{n}" for n in exported if n not in defined]
    assert not bad, f"re-exported outside a package __init__: {bad}"


def test_the_top_level_holds_few_modules():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert len(top) <= 8, top


def test_the_walker_counts_imports_inside_functions():
    # conversation.costs imports the token estimator only inside functions.
    edges, _ = _graph()
    assert "vizlab.tokens.request" in edges["vizlab.conversation.costs"]
    tree = ast.parse((PACKAGE / "conversation" / "costs.py").read_text(encoding="utf-8"))
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert "vizlab.tokens.request" not in top


def test_the_architecture_page_matches_the_tree():
    # Every module file is named on docs/ARCHITECTURE.md, and every vizlab/ path it names exists.
    import re

    page = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"vizlab/[\w/]+\.py", page))
    missing_files = sorted(p for p in named if not (PACKAGE.parent / p).exists())
    assert not missing_files, f"docs/ARCHITECTURE.md names files that do not exist: {missing_files}"
    unnamed = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if path.name == "__init__.py" and rel != "vizlab/__init__.py":
            continue
        if rel not in named and f"{path.name}" not in page:
            unnamed.append(rel)
    assert not unnamed, f"modules the architecture page does not mention: {sorted(unnamed)}"


@pytest.mark.slow
def test_module_docstrings_are_short():
    # What a module is for and its trade-offs, in at most 10 lines; the long notes live in docs/internals.md.
    long = []
    for path in PACKAGE.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
        if doc and doc.count("\n") + 1 > 10:
            long.append(f"{path.relative_to(PACKAGE.parent)} ({doc.count(chr(10)) + 1} lines)")
    assert not long, f"module docstrings over 10 lines: {sorted(long)}"
