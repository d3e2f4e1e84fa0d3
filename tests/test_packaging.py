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


def test_make_lab_installs_the_lab_extra_only_and_silences_the_news_toast() -> None:
    """`make lab`: runtime + JupyterLab (the `lab` extra), no test tools; `make test` adds `dev`."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    lab = {_split(r)[0] for r in extras["lab"]}
    assert lab == {"jupyterlab", "ipykernel"}
    assert not lab & {"pytest", "playwright", "mypy", "nbval"}
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab: \$\(LAB_STAMP\)$", makefile, re.M), "make lab must not wait for the test tools"
    assert 'pip install --quiet -e ".[lab]"' in makefile and 'pip install --quiet -e ".[dev]"' in makefile
    assert re.search(r"^\$\(STAMP\): \$\(LAB_STAMP\)$", makefile, re.M)
    assert "overrides.json" in makefile and "--LabApp.news_url=" in makefile


def test_the_jupyterlab_override_is_valid_for_the_installed_lab() -> None:
    import json
    import sys

    import jsonschema

    overrides = json.loads((ROOT / "notebooks" / "jupyterlab-overrides.json").read_text())
    settings = overrides["@jupyterlab/apputils-extension:notification"]
    assert settings["fetchNews"] == "false"
    schema_file = Path(sys.prefix) / "share/jupyter/lab/schemas/@jupyterlab/apputils-extension/notification.json"
    if schema_file.exists():  # JupyterLab installed here: check the keys against its own schema
        schema = json.loads(schema_file.read_text())
        jsonschema.validate(settings, {k: v for k, v in schema.items() if k in ("type", "properties", "additionalProperties")})
