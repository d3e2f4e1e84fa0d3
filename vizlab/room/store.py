"""The room's SQLite store: codes, reservations and settled usage, one file beside codes.csv.

WAL journal with ``synchronous=NORMAL``: a committed transaction survives the room's process being
killed (``kill -9``), though not a power cut (sqlite.org/wal.html, "Durability", read 2026-12).
Every settle is one transaction (the usage row and the reservation's end together), committed
before the attendee gets the answer, so a crash never loses a settled row nor bills one twice.
Reservations still open when the room starts again died with the old process: they are released.
The upstream key is never written here; prompts only with ``--log-prompts``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Balance", "CodeRow", "RoomStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, attendee INTEGER UNIQUE NOT NULL, budget_usd REAL NOT NULL,
    budget_tokens INTEGER, revoked REAL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, attendee INTEGER NOT NULL, created REAL NOT NULL, usd REAL NOT NULL,
    tokens INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    id TEXT PRIMARY KEY, attendee INTEGER NOT NULL, time REAL NOT NULL, route TEXT NOT NULL,
    model TEXT, status INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, image_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, usd REAL NOT NULL, source TEXT NOT NULL, prompt TEXT);
CREATE TABLE IF NOT EXISTS events (
    attendee INTEGER NOT NULL, time REAL NOT NULL, kind TEXT NOT NULL, status INTEGER NOT NULL,
    message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS usage_attendee ON usage (attendee);
CREATE INDEX IF NOT EXISTS events_attendee ON events (attendee);
"""


@dataclass(frozen=True)
class CodeRow:
    """One attendee's code and budget."""

    code: str
    attendee: int
    budget_usd: float
    budget_tokens: int | None
    revoked: float | None

    def __repr__(self) -> str:  # the code is a credential: show only its end
        return f"CodeRow(attendee={self.attendee}, code=...{self.code[-4:]}, budget_usd={self.budget_usd})"


@dataclass(frozen=True)
class Balance:
    """What an attendee has spent (settled), holds (open reservations) and may spend."""

    spent_usd: float
    held_usd: float
    spent_tokens: int
    held_tokens: int


class RoomStore:
    """Thread-safe access to the room's SQLite file (one connection, one lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        with self._lock:
            self._db.execute("UPDATE reservations SET state='lost' WHERE state='open'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self, statements: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- meta and codes ------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._tx([("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))])

    def codes(self) -> list[CodeRow]:
        rows = self._query("SELECT code, attendee, budget_usd, budget_tokens, revoked FROM codes ORDER BY attendee")
        return [CodeRow(*row) for row in rows]

    def add_codes(self, codes: list[str], budget_usd: float, budget_tokens: int | None) -> list[CodeRow]:
        with self._lock:
            last = self._db.execute("SELECT COALESCE(MAX(attendee), 0) FROM codes").fetchone()[0]
        now = time.time()
        rows = [CodeRow(code, last + i + 1, budget_usd, budget_tokens, None) for i, code in enumerate(codes)]
        self._tx(
            ("INSERT INTO codes (code, attendee, budget_usd, budget_tokens, revoked, created) VALUES (?,?,?,?,?,?)",
             (r.code, r.attendee, r.budget_usd, r.budget_tokens, None, now))
            for r in rows
        )  # fmt: skip
        return rows

    def revoke(self, attendee: int) -> None:
        self._tx([("UPDATE codes SET revoked=? WHERE attendee=? AND revoked IS NULL", (time.time(), attendee))])

    def set_budget(self, attendee: int, budget_usd: float | None, budget_tokens: int | None) -> None:
        if budget_usd is not None:
            self._tx([("UPDATE codes SET budget_usd=? WHERE attendee=?", (budget_usd, attendee))])
        if budget_tokens is not None:
            self._tx([("UPDATE codes SET budget_tokens=? WHERE attendee=?", (budget_tokens, attendee))])

    # --- money ---------------------------------------------------------------------------------

    def balance(self, attendee: int) -> Balance:
        with self._lock:
            spent = self._db.execute(
                "SELECT COALESCE(SUM(usd), 0), COALESCE(SUM(prompt_tokens + output_tokens), 0) FROM usage "
                "WHERE attendee=?", (attendee,)).fetchone()  # fmt: skip
            held = self._db.execute(
                "SELECT COALESCE(SUM(usd), 0), COALESCE(SUM(tokens), 0) FROM reservations "
                "WHERE attendee=? AND state='open'", (attendee,)).fetchone()  # fmt: skip
        return Balance(float(spent[0]), float(held[0]), int(spent[1]), int(held[1]))

    def reserve(self, rid: str, row: CodeRow, usd: float, tokens: int) -> Balance | None:
        """Hold ``usd`` / ``tokens`` for one request if the budget allows; else None (nothing held).

        The check and the hold are one locked step, so two requests cannot both take the last cent.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                spent = self._db.execute(
                    "SELECT COALESCE(SUM(usd), 0), COALESCE(SUM(prompt_tokens + output_tokens), 0) FROM usage "
                    "WHERE attendee=?", (row.attendee,)).fetchone()  # fmt: skip
                held = self._db.execute(
                    "SELECT COALESCE(SUM(usd), 0), COALESCE(SUM(tokens), 0) FROM reservations "
                    "WHERE attendee=? AND state='open'", (row.attendee,)).fetchone()  # fmt: skip
                balance = Balance(float(spent[0]), float(held[0]), int(spent[1]), int(held[1]))
                over_usd = balance.spent_usd + balance.held_usd + usd > row.budget_usd + 1e-12
                over_tokens = row.budget_tokens is not None and (
                    balance.spent_tokens + balance.held_tokens + tokens > row.budget_tokens)
                if over_usd or over_tokens:
                    self._db.execute("ROLLBACK")
                    return None
                self._db.execute(
                    "INSERT INTO reservations (id, attendee, created, usd, tokens, state) VALUES (?,?,?,?,?,'open')",
                    (rid, row.attendee, time.time(), usd, tokens))  # fmt: skip
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return balance

    def settle(self, rid: str, attendee: int, *, route: str, model: str | None, status: int, prompt_tokens: int,
               image_tokens: int, output_tokens: int, usd: float, source: str, prompt: str | None = None) -> None:
        """Record what one request cost and end its reservation, in one transaction."""
        self._tx([
            ("INSERT INTO usage (id, attendee, time, route, model, status, prompt_tokens, image_tokens, output_tokens,"
             " usd, source, prompt) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
             (rid, attendee, time.time(), route, model, status, prompt_tokens, image_tokens, output_tokens, usd,
              source, prompt)),
            ("UPDATE reservations SET state='settled' WHERE id=?", (rid,)),
        ])  # fmt: skip

    def release(self, rid: str) -> None:
        """End a reservation without a charge (the upstream refused the request before any work)."""
        self._tx([("UPDATE reservations SET state='released' WHERE id=? AND state='open'", (rid,))])

    def event(self, attendee: int, kind: str, status: int, message: str) -> None:
        """A refusal or a 429 handed down (``kind`` 'refusal' / '429')."""
        self._tx([("INSERT INTO events (attendee, time, kind, status, message) VALUES (?,?,?,?,?)",
                   (attendee, time.time(), kind, status, message[:300]))])  # fmt: skip

    # --- reading -------------------------------------------------------------------------------

    def usage_by_attendee(self) -> dict[int, dict[str, Any]]:
        rows = self._query(
            "SELECT attendee, COUNT(*), SUM(prompt_tokens), SUM(image_tokens), SUM(output_tokens), SUM(usd), "
            "MAX(time) FROM usage GROUP BY attendee")  # fmt: skip
        out = {
            a: {"requests": n, "prompt_tokens": p or 0, "image_tokens": i or 0, "output_tokens": o or 0,
                "usd": float(u or 0.0), "last_request": t}
            for a, n, p, i, o, u, t in rows
        }  # fmt: skip
        for attendee, kind, count, last in self._query(
            "SELECT attendee, kind, COUNT(*), MAX(time) FROM events GROUP BY attendee, kind"
        ):
            entry = out.setdefault(attendee, {})
            entry["throttled" if kind == "429" else "refusals"] = count
            entry["last_request"] = max(entry.get("last_request") or 0, last)
        return out

    def usage_rows(self) -> list[tuple[float, int, float]]:
        """(time, attendee, usd) of every settled request, oldest first."""
        return [(t, a, float(u)) for t, a, u in self._query("SELECT time, attendee, usd FROM usage ORDER BY time")]

    def count_usage(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM usage")[0][0])
