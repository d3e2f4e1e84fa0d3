"""``--record FILE`` / ``--replay FILE``: keep the deployment's replies, and answer with them offline.

A recording is JSON Lines, one reply per line: the request's key (SHA-256 of its canonical JSON,
``model`` left out, every data URL replaced by its own SHA-256, so no image is stored), the date,
the model that answered, and the reply (a JSON body, or a stream's SSE events). Codes, keys and
headers are never written. A room started with ``--replay`` answers a request whose key it holds
from the recording (header ``x-vizlab-recorded: DATE MODEL``, usage settled as recorded) and
forwards anything else, so a facilitator records once on Azure and runs the next room on
``local`` with real answers where they exist.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["Recorder", "Replayer", "request_key"]

_DATA_URL = re.compile(r"data:[^\"]{0,100};base64,[A-Za-z0-9+/=]+")


def request_key(kind: str, body: dict[str, Any]) -> str:
    """The hash a request is recorded under: the same question with the same images matches."""
    kept = {k: v for k, v in body.items() if k != "model"}
    text = json.dumps([kind, kept], sort_keys=True, separators=(",", ":"))
    text = _DATA_URL.sub(lambda m: "sha256:" + hashlib.sha256(m.group(0).encode()).hexdigest(), text)
    return hashlib.sha256(text.encode()).hexdigest()


class Recorder:
    """Appends replies to a JSON Lines file (one lock, one flush per reply)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def add(self, key: str, model: str | None, reply: dict[str, Any] | None = None,
            events: list[str] | None = None) -> None:  # fmt: skip
        line = {"key": key, "recorded": datetime.now(timezone.utc).date().isoformat(), "model": model or "",
                "reply": reply, "events": events}  # fmt: skip
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


class Replayer:
    """Recorded replies by request key (the last recording of a key wins)."""

    def __init__(self, path: Path) -> None:
        self.replies: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                self.replies[item["key"]] = item
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"--replay {path}: line {number} is not a recording line ({e}); "
                                 "use a file written by --record") from e  # fmt: skip

    def get(self, key: str) -> dict[str, Any] | None:
        return self.replies.get(key)
