"""In a Jupyter kernel, vizlab hands freed heap back after each cell (vizlab.kernel)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import vizlab, vizlab.kernel as kernel
hooked = kernel._after_cell in shell.events.callbacks["post_run_cell"]
shell.run_cell("x = [bytearray(4096) for _ in range(1000)]; del x")  # the hook runs after it
print(hooked, kernel.install_trim())
"""


@pytest.mark.parametrize(("setting", "expected"), [(None, "True False"), ("0", "False False")])
def test_importing_vizlab_in_ipython_registers_the_after_cell_trim_once(setting: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIZLAB_TRIM"}
    if setting is not None:
        env["VIZLAB_TRIM"] = setting
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == expected


def test_outside_ipython_nothing_is_registered() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    code = "import sys, vizlab, vizlab.kernel as k; print(k._installed == [], 'IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "True False", out.stderr[-2000:]
