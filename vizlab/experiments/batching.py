"""The experiment grid through the Batch API: the same requests, half the price, one argument.

:func:`send_batch` writes the runner's requests (what is not cached) as Batch input files with
:mod:`vizlab.batch`, the cache key as each line's ``custom_id``, submits them, waits and returns
each request's record, in the same shape as a live reply's. The state file sits in a folder named
by the hash of the keys, so a rerun after a kill attaches to the batch already submitted instead
of paying twice.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["send_batch"]


def send_batch(client: Any, jobs: list[Any], messages_of: Any, out_dir: str | os.PathLike[str], *, progress: bool = True,
               poll_s: float | None = None) -> dict[int, tuple[dict[str, Any] | None, str | None]]:  # fmt: skip
    """Send ``jobs`` (the runner's, with ``key``, ``arm``, ``item``, ``images``, ``body``) as batches.

    Returns ``{job.index: (record, None) or (None, error)}``.
    """
    from vizlab.batch.files import BatchInput, BatchRequest, build_batch
    from vizlab.batch.run import BatchRun, submit

    if not jobs:
        return {}
    tag = hashlib.sha256("\n".join(sorted(j.key for j in jobs)).encode("utf-8")).hexdigest()[:16]
    folder = Path(out_dir) / f"batch-{tag}"
    state = folder / "batch-state.json"
    if state.exists():
        run = BatchRun.attach(state, client)
        if len(run.state["batches"]) < len(BatchInput.load(run.manifest_path).files):
            run = submit(client, BatchInput.load(run.manifest_path), state_path=state)
    else:
        requests = []
        for job in jobs:
            first = job.images[0]
            messages = messages_of(job)  # encodes the job's images now (the plan kept only their addresses)
            url = next(part["image_url"]["url"] for m in messages if isinstance(m["content"], list)
                       for part in m["content"] if part.get("type") == "image_url")  # fmt: skip
            requests.append(BatchRequest(
                image_id=job.item.id, question=job.item.question, detail=job.arm.detail, model=job.arm.deployment,
                image_url=url, image_sha256=first.sha256, max_tokens=job.body.get("max_tokens"),
                meta={"key": job.key}, body_override={"messages": messages, **job.body}, custom_id=job.key,
            ))  # fmt: skip
        run = submit(client, build_batch(requests, folder, client=client), state_path=state)
    run.wait(progress=progress, poll_s=poll_s)
    records = run.records()
    return {job.index: records.get(job.key, (None, "not in the batch manifest")) for job in jobs}
