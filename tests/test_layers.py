"""Layers point one way: no import circles inside vizlab/, no private name taken from another module.

Every ``import`` / ``from ... import`` anywhere in a module counts (top level, inside functions, under
``if TYPE_CHECKING``), as the project's before-stop checker counts them: two modules are in a circle
when each reaches the other through any chain of imports.

KNOWN_VIOLATIONS lists the ones that exist today, each with the helper who owns the fix; the test
fails on any violation not listed (and on a listed one that is gone, so the list only shrinks).
"""

from __future__ import annotations

import ast
from pathlib import Path

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


def test_no_new_circle_or_private_import():
    known = {(kind, what) for kind, what, _owner in KNOWN_VIOLATIONS}
    new = sorted(_violations() - known)
    assert not new, "new layering violations (fix them; do not add them to KNOWN_VIOLATIONS):\n" + "\n".join(
        f"{kind}: {what}" for kind, what in new
    )


def test_known_violations_are_still_real():
    # A fixed violation must leave the list, so the list cannot hide a future one.
    gone = sorted({(kind, what) for kind, what, _ in KNOWN_VIOLATIONS} - _violations())
    assert not gone, "fixed, remove from KNOWN_VIOLATIONS: " + ", ".join(what for _, what in gone)


def test_registry_and_geometry_are_the_bottom_layer():
    edges, _ = _graph()
    assert edges.get("vizlab.geometry", set()) == set()
    assert edges.get("vizlab.models", set()) <= {"vizlab.errors"}
    for low, high in [("vizlab.tokens", "vizlab.pricing"), ("vizlab.images", "vizlab.tokens")]:
        assert not _reaches(edges, low, high), f"{low} must not import {high} (directly or not)"


def test_the_walker_counts_imports_inside_functions():
    # tokens -> images happens only inside functions (images are decoded lazily there).
    edges, _ = _graph()
    assert "vizlab.images" in edges["vizlab.tokens"]
    tree = ast.parse((PACKAGE / "tokens.py").read_text(encoding="utf-8"))
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert "vizlab.images" not in top
