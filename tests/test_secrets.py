"""No key-shaped string is committed: notebooks (outputs included), docs, and exported files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The shapes real keys take. The same pattern guards the repository's before-stop hook.
KEY_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_-]{20,}"),  # OpenAI keys
    re.compile(r"""api[-_]?key\\?["']?\s*[:=]\s*\\?["'][0-9a-fA-F]{32}"""),  # Azure key assigned
    re.compile(r"""(?i)bearer\s+eyJ[A-Za-z0-9_-]{20,}"""),  # Entra ID access tokens (JWT)
]
TEXT_SUFFIXES = {".ipynb", ".md", ".py", ".json", ".jsonl", ".txt", ".cfg", ".toml", ".yml", ".yaml", ".env", ".html"}


def _tracked_and_exported_files() -> list[Path]:
    """Every file git tracks, plus untracked files notebooks export (not ignored ones)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
        files = [ROOT / line for line in out.splitlines() if line]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in ROOT.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts]
    return [p for p in files if p.is_file() and p.suffix in TEXT_SUFFIXES]


def find_keys(text: str) -> list[str]:
    return [m.group(0) for pattern in KEY_PATTERNS for m in pattern.finditer(text)]


@pytest.mark.parametrize(
    "text",
    [
        'client = AzureOpenAI(api_key="0123456789abcdef0123456789abcdef")',
        "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload",
    ],
)
def test_scanner_finds_key_shapes(text: str) -> None:
    assert find_keys(text), f"the scanner missed a key in {text!r}"


def test_scanner_ignores_hashes_and_placeholders() -> None:
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert find_keys(f'image sha256 {sha256}; api_key="<your-key>"; api-key: os.environ["KEY"]') == []


def test_no_committed_or_exported_file_holds_a_key() -> None:
    files = _tracked_and_exported_files()
    assert any(p.suffix == ".py" for p in files), "the scan found no files: is the repository there?"
    offenders = {}
    for path in files:
        if path.resolve() == Path(__file__).resolve():
            continue  # this file holds deliberate examples
        hits = find_keys(path.read_text(errors="replace"))
        if hits:
            offenders[str(path.relative_to(ROOT))] = [h[:12] + "…" for h in hits]
    assert not offenders, f"key-shaped strings found (first characters shown): {offenders}"
