"""The JavaScript quickstart (tests/js/quickstart.cjs) with the official npm `openai` package,
against the built-in backend over real HTTP; and the seed's own sample, which node refuses.

Skipped, with the reason, where node or the npm package is absent (``npm ci`` in tests/js, which
``make setup`` and ``.ci/run`` do when npm exists).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vizlab.local import LocalBackend

JS_DIR = Path(__file__).parent / "js"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed (apt-get install nodejs)")
needs_sdk = pytest.mark.skipif(
    not (JS_DIR / "node_modules" / "openai").is_dir(),
    reason="the npm openai package is not installed: run `npm ci` (or `npm install`) in tests/js",
)

# The seed's API-key sample as printed (seeds/04, 2025-02-21), shortened where it does not matter:
# a CommonJS file (require) that ends with an ES-module `export`.
SEED_INDEX_JS = """\
const { AzureOpenAI } = require("openai");
const endpoint = process.env.AZURE_OPENAI_ENDPOINT || "Your endpoint";
const apiKey = process.env.AZURE_OPENAI_API_KEY || "Your API key";
function getClient() {
  return new AzureOpenAI({ endpoint, apiKey, apiVersion: "2024-07-01-preview", deployment: "gpt-4-with-turbo" });
}
export async function main() {
  console.log("== Get GPT-4 Turbo with vision Sample ==");
  const client = getClient();
}
main().catch((err) => {
  console.error("Error occurred:", err);
});
"""
# The seed's Entra ID tab: a TypeScript return type in index.js.
SEED_ENTRA_JS = """\
const AzureOpenAI = require('openai').AzureOpenAI;
function getClient(): AzureOpenAI {
  return new AzureOpenAI({});
}
"""


def _node(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run([NODE, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


@needs_node
@pytest.mark.parametrize("source, token", [(SEED_INDEX_JS, "export"), (SEED_ENTRA_JS, ":")])
def test_the_seeds_samples_are_syntax_errors_as_written(tmp_path: Path, source: str, token: str) -> None:
    # The seed's set-up step, `npm init -y`, writes "type": "commonjs" (npm 10 and later), so node
    # parses index.js as CommonJS. (Without a "type", node 20.19+ re-parses a file with `export` as
    # an ES module and fails on require() instead: it does not run either way.)
    (tmp_path / "package.json").write_text('{"name": "vision-quickstart", "type": "commonjs"}')
    script = tmp_path / "index.js"
    script.write_text(source)
    checked = _node("--check", str(script), cwd=tmp_path)
    assert checked.returncode != 0
    assert "SyntaxError" in checked.stderr
    assert token in checked.stderr


@needs_node
def test_the_fixed_quickstart_is_valid_javascript() -> None:
    checked = _node("--check", str(JS_DIR / "quickstart.cjs"))
    assert checked.returncode == 0, checked.stderr


@pytest.mark.slow
@needs_node
@needs_sdk
def test_js_quickstart_runs_against_the_built_in_backend() -> None:
    with LocalBackend(api_key="js-key") as backend:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AZURE_OPENAI_ENDPOINT": backend.url,
            "AZURE_OPENAI_API_KEY": "js-key",
            "IMAGE_URL": f"{backend.url}/samples/parking-sign.jpg",
            "AZURE_OPENAI_DEPLOYMENT_NAME": "gpt-4o",
        }
        ran = _node(str(JS_DIR / "quickstart.cjs"), env=env, cwd=JS_DIR)
        wrong_key = _node(str(JS_DIR / "quickstart.cjs"), env={**env, "AZURE_OPENAI_API_KEY": "not-it"}, cwd=JS_DIR)
    assert ran.returncode == 0, ran.stderr
    answers = [json.loads(line) for line in ran.stdout.splitlines() if line.startswith("{")]
    assert [a["route"] for a in answers] == ["azure", "v1"]
    for answer in answers:
        assert answer["finish_reason"] == "stop"
        assert "PARKING" in answer["content"].replace(" ", "")
    assert answers[0]["prompt_tokens"] == answers[1]["prompt_tokens"] > 0
    # A wrong key is the 401 Azure sends, surfaced by the SDK, and the script exits non-zero.
    assert wrong_key.returncode == 1
    assert "401" in wrong_key.stderr
