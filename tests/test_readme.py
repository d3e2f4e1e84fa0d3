"""The README's Python examples (and docs/experiments.md's) run as written, and print what their comments promise."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(*names: str) -> list[str]:
    text = "\n".join((ROOT / name).read_text() for name in names or ("README.md", "docs/experiments.md"))
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_the_examples() -> None:
    assert len(_python_blocks("README.md")) >= 4


def test_readme_is_short_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) < 15_000
    for target in re.findall(r"\]\(((?:docs|notebooks)/[^)#]+)", text):
        assert (ROOT / target).exists(), target


@pytest.mark.slow
def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # chat.json lands here, and no .env is picked up
    namespace: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in _python_blocks():
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    lines = out.getvalue().splitlines()
    assert "data:image/jpeg;base64," in lines
    assert "765" in lines
    assert "1445 1105" in lines
    assert any(line.endswith("= 1105 tokens") for line in lines)
    assert any("vizlab-local-analyst" in line for line in lines)
    assert (tmp_path / "chat.json").exists()
    assert any(line.startswith("ExperimentResult(8 rows, sent 8, cached 0") for line in lines)
    assert "local analyst (OCR), not a vision model" in lines
