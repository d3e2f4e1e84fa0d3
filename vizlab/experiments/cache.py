"""The experiment cache: finished requests by key, in one append-only JSONL log.

Each finished request is appended as one line with a single ``write`` on an ``O_APPEND``
descriptor, then fsynced, so a kill loses at most the requests in flight and several threads (or
processes) can append without interleaving lines. A torn last line (a kill mid-write) is skipped
when the log is read. The price of one file is that the whole log is read when the cache opens.
Before a request is sent, a marker goes to ``sent.jsonl`` beside it: a key with a marker and no
result was in flight when the run died, was billed by the service, and is not re-sent unless asked.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ResultCache"]

_LOG_NAME = "results.jsonl"
_SENT_NAME = "sent.jsonl"


# --- the cache --------------------------------------------------------------------------------


class ResultCache:
    """Finished requests by key, in an append-only JSONL log under ``path`` (a directory).

    ``put`` appends one line and fsyncs before returning; the last record for a key wins.
    Thread-safe. See the module docstring for why a log and not one file per key.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.file = self.path / _LOG_NAME
        self.sent_file = self.path / _SENT_NAME
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._unknown: set[str] = set()  # sent, no outcome recorded (in flight at a kill)
        self.skipped_lines = 0  # unreadable lines (a torn write from a kill), ignored
        self._load()

    def __repr__(self) -> str:
        return f"ResultCache({str(self.path)!r}, {len(self)} results)"

    def _load(self) -> None:
        self._load_markers()
        if not self.file.exists():
            return
        with open(self.file, "rb") as fh:
            for raw in fh:
                try:
                    record = json.loads(raw)
                    key = record["key"]
                except (ValueError, KeyError, TypeError):
                    self.skipped_lines += 1
                    continue
                if isinstance(key, str):
                    self._records[key] = record
                    self._unknown.discard(key)

    def _load_markers(self) -> None:
        if not self.sent_file.exists():
            return
        with open(self.sent_file, "rb") as fh:
            for raw in fh:
                try:
                    marker = json.loads(raw)
                    key, sent = marker["key"], marker["sent"]
                except (ValueError, KeyError, TypeError):
                    continue  # a torn marker: the request may not have gone out either
                if isinstance(key, str):
                    (self._unknown.add if sent else self._unknown.discard)(key)

    def get(self, key: str) -> dict[str, Any] | None:
        """The record stored for ``key`` (a copy), or None."""
        with self._lock:
            record = self._records.get(key)
        return None if record is None else dict(record)

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Append ``record`` for ``key`` and make it durable (write, flush, fsync)."""
        stored = {**record, "key": key}
        with self._lock:
            self._append(self.file, stored)
            self._records[key] = stored
            self._unknown.discard(key)

    def mark_sent(self, key: str) -> None:
        """Record, durably, that the request for ``key`` is about to be sent (billed whatever happens)."""
        with self._lock:
            self._append(self.sent_file, {"key": key, "sent": True, "at": time.time()})
            self._unknown.add(key)

    def clear_sent(self, key: str) -> None:
        """The request for ``key`` got an outcome that is not a result (an error answer): not unknown."""
        with self._lock:
            self._append(self.sent_file, {"key": key, "sent": False})
            self._unknown.discard(key)

    def is_unknown(self, key: str) -> bool:
        """True when ``key`` was sent by a run that stopped before its outcome was recorded."""
        with self._lock:
            return key in self._unknown and key not in self._records

    def _append(self, file: Path, stored: dict[str, Any]) -> None:
        """One line, written and fsynced (the caller holds the lock)."""
        line = json.dumps(stored, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # A kill mid-write leaves a line without its newline: start a fresh line after it.
            prefix = b"" if self._ends_with_newline(fd, file) else b"\n"
            os.write(fd, prefix + line + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ends_with_newline(self, fd: int, file: Path) -> bool:
        size = os.fstat(fd).st_size
        if size == 0:
            return True
        with open(file, "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1) == b"\n"

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._records

    def keys(self) -> list[str]:
        """Keys in the order they were first stored."""
        with self._lock:
            return list(self._records)


