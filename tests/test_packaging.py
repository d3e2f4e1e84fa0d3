"""The project's set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _split(requirement: str) -> tuple[str, str]:
    """('Pillow>=10.1') -> ('pillow', '>=10.1'): normalised name and version spec."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, match.group(2).replace(" ", "")


def _pyproject_runtime() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return dict(_split(r) for r in data["project"]["dependencies"])


def _environment_pip() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    found: dict[str, str] = {}
    for line in lines[start + 1 :]:
        item = line.strip()
        if not item.startswith("- "):
            break
        item = item[2:].strip()
        if not item.startswith("-e"):
            name, spec = _split(item)
            found[name] = spec
    return found


def test_environment_yml_names_every_runtime_package() -> None:
    missing = set(_pyproject_runtime()) - set(_environment_pip())
    assert not missing, f"environment.yml lacks runtime packages from pyproject.toml: {sorted(missing)}"


def test_environment_yml_adds_only_jupyterlab() -> None:
    # environment.yml may add the lab itself (for `jupyter lab`), nothing else unknown to pyproject.
    extra = set(_environment_pip()) - set(_pyproject_runtime())
    assert extra == {"jupyterlab"}, f"environment.yml names packages pyproject.toml does not: {sorted(extra)}"


def test_version_specs_agree() -> None:
    env = _environment_pip()
    for name, spec in _pyproject_runtime().items():
        assert env.get(name) == spec, f"{name}: pyproject.toml says {spec!r}, environment.yml says {env.get(name)!r}"
