"""No function in vizlab/ grows past cyclomatic complexity 25 (McCabe, counted as radon counts it).

KNOWN lists the functions over the limit today with their complexity now: each may only shrink,
and the test fails when one of them is split below the limit and still listed (so the list only
shrinks). Issue 21 splits them; a new function over 25 fails at once.
"""

from __future__ import annotations

import pytest

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vizlab"
LIMIT = 25


def complexity(node: ast.AST) -> int:
    """1 + decision points: if/elif, loops, except handlers, and/or, conditional expressions,
    comprehension loops and their conditions, match cases. Nested functions count on their own."""
    score = 1
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(child, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.IfExp, ast.ExceptHandler)):
            score += 1
        elif isinstance(child, ast.BoolOp):
            score += len(child.values) - 1
        elif isinstance(child, ast.comprehension):
            score += 1 + len(child.ifs)
        elif isinstance(child, ast.match_case):
            score += 1
        stack.extend(ast.iter_child_nodes(child))
    return score


def measured() -> dict[str, int]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[f"{module}:{node.lineno}:{node.name}"] = complexity(node)
    return found


def _by_name(found: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in found.items():
        module, _, name = key.split(":")
        out[f"{module}.{name}"] = max(out.get(f"{module}.{name}", 0), value)
    return out


# Over the limit, with their complexity: empty since issue 21 split the last ones (2026-12-07).
KNOWN: dict[str, int] = {}


def test_the_counter_counts_branches() -> None:
    tree = ast.parse("def f(x):\n    if x and x > 1:\n        return [y for y in x if y]\n    return 0\n")
    assert complexity(tree.body[0]) == 5  # 1 + if + and + comprehension + its condition


@pytest.mark.slow
def test_no_function_grows_past_the_limit() -> None:
    now = _by_name(measured())
    new = sorted(f"{name} ({value})" for name, value in now.items() if value > LIMIT and name not in KNOWN)
    assert not new, f"functions over complexity {LIMIT}; split them: {new}"
    grown = sorted(f"{name} ({now[name]} > {KNOWN[name]})" for name in KNOWN if now.get(name, 0) > KNOWN[name])
    assert not grown, f"known complex functions grew: {grown}"


@pytest.mark.slow
def test_known_list_only_shrinks() -> None:
    now = _by_name(measured())
    gone = sorted(name for name in KNOWN if now.get(name, 0) <= LIMIT)
    assert not gone, f"no longer over {LIMIT} (or gone): remove from KNOWN: {gone}"
