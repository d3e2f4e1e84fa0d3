"""Peak memory of planning an experiment over a folder of large photos (issue 23).

    python bench/bench_experiment_memory.py FOLDER   # prints the peak traced memory of a dry run

``run_experiment(..., dry_run=True)`` plans every request (encodes each image, keys it, estimates
it) and sends nothing, so the peak is the plan's. Before issue 23 the plan kept every encoded
image for the whole run; now it keeps each image's address and sizes and encodes it again when
its request is sent. Run it with each version of vizlab on the path to compare.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import tracemalloc


def main(folder: str) -> None:
    from vizlab.client import connect
    from vizlab.experiments import run_experiment
    from vizlab.local import LocalBackend

    files = sorted(os.listdir(folder))
    total = sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    with LocalBackend(api_key="bench-key", deployments=("gpt-4o",)) as backend, \
            tempfile.TemporaryDirectory() as cache:  # fmt: skip
        client = connect(backend="azure", endpoint=backend.url, api_key="bench-key", deployment="gpt-4o", verbose=False)
        # Warm up first: the token encoding and the imports are built once per process, not per photo.
        run_experiment(client, [os.path.join(folder, files[0])], prompt="warm up", cache_dir=cache, dry_run=True,
                       progress=False)  # fmt: skip
        tracemalloc.start()
        started = time.perf_counter()
        result = run_experiment(client, folder, prompt="What is the dominant colour? One word.", details=("low", "high"),
                                cache_dir=cache, dry_run=True, progress=False)  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"{len(files)} photos, {total / 1e6:.0f} MB on disk, {len(result.table)} planned requests: peak traced memory "
          f"{peak / 1e6:.0f} MB ({peak / total:.2f}x the folder), {time.perf_counter() - started:.1f} s; "
          f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
