"""Tests use seams, not patches: no test monkeypatches a private (``_name``) part of vizlab.

An AST scan of tests/ (as tests/test_layers.py scans vizlab/) finds every ``monkeypatch.setattr`` /
``monkeypatch.delattr`` whose target reaches a private name: a private attribute (``"_FAMILIES"``),
a private module or class on the way (``_deps.prompt_count``, ``runner._Encoder``), or a dotted
string naming one. Roots imported from outside vizlab (``openai._base_client``) are not vizlab's
internals and pass. Use a parameter, a fixture, a public method or ``httpx.MockTransport`` instead.

KNOWN lists the patches that remain, each with the area that owns the fix; the test fails on a
new one and on a listed one that is gone, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# (test file, patched target as written) -> owner of the fix.
KNOWN: dict[tuple[str, str], str] = {}


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a Name / Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> the module (or module.name) it was imported as, anywhere in the file."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def private_patches(path: Path) -> list[str]:
    """The targets (as written, ``root.attr``) of monkeypatch calls in ``path`` that reach a private name of vizlab."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = _imports(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("setattr", "delattr") or _dotted(node.func.value) != "monkeypatch" or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):  # monkeypatch.setattr("pkg.mod.name", v)
            written = resolved = first.value
        else:
            target = _dotted(first) or "<expression>"
            attr = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else "?"
            written = f"{target}.{attr}"
            root, _, rest = written.partition(".")
            resolved = f"{imported.get(root, root)}.{rest}"
            if root in imported and not imported[root].startswith("vizlab"):
                continue  # another library's internals (openai._base_client), not vizlab's
        if resolved.startswith(("os.", "sys.", "pathlib.", "time.")):
            continue
        if any(_private(part) for part in resolved.split(".")):
            found.append(written)
    return found


def test_the_scan_finds_private_patches(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "from vizlab.local import _deps\nimport openai._base_client as base\nfrom vizlab.models import registry\n"
        "def test(monkeypatch, conv):\n"
        "    monkeypatch.setattr(registry, '_FAMILIES', {})\n"
        "    monkeypatch.setattr(_deps, 'prompt_count', len)\n"
        "    monkeypatch.setattr(conv, '_autosave_now', len)\n"
        "    monkeypatch.setattr('vizlab.client.targets._shared', {})\n"
        "    monkeypatch.setattr(base, 'time', None)\n"
        "    monkeypatch.setattr(registry, 'lookup', len)\n",
        encoding="utf-8",
    )
    assert private_patches(sample) == [
        "registry._FAMILIES", "_deps.prompt_count", "conv._autosave_now", "vizlab.client.targets._shared",
    ]


def test_no_test_patches_a_private_name_of_vizlab() -> None:
    found = {(path.name, target) for path in sorted(TESTS.glob("*.py")) for target in private_patches(path)}
    new = sorted(found - set(KNOWN))
    assert not new, f"tests patch private names of vizlab; use a seam the code offers (a parameter, a fixture, a public method, httpx.MockTransport): {new}"
    gone = sorted(set(KNOWN) - found)
    assert not gone, f"no longer patched: remove from KNOWN in tests/test_seams.py: {gone}"
