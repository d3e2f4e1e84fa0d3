"""Run a detail experiment against a backend given on the command line, until killed.

Usage: python bench/_experiment_child.py URL KEY CACHE_DIR N_IMAGES
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _items import colour_items  # noqa: E402

from vizlab.client import connect  # noqa: E402
from vizlab.experiments import run_experiment  # noqa: E402

url, key, cache_dir, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = connect(backend="azure", endpoint=url, api_key=key, deployment="gpt-4o", verbose=False)
run_experiment(client, colour_items(n), details=("low",), cache_dir=cache_dir, max_tokens=60,
               progress=False, concurrency=2)
print("finished", flush=True)
