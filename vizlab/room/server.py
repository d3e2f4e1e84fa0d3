"""A room: settings, store, codes, pacer and upstream together, served by uvicorn.

:meth:`Room.start` serves in a daemon thread (for tests and notebooks); the CLI calls
:meth:`Room.serve_forever`. A restart with the same ``codes`` path resumes: same codes, same
admin key, same spend (the store keeps them); ``--attendees`` larger than before adds codes.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, TextIO

import httpx
import uvicorn
from fastapi import Request

from vizlab.errors import redact
from vizlab.local.http.errors import AzureError
from vizlab.local.http.gateway import host_allowed
from vizlab.local.http.protocol import MAX_INCOMPLETE_HEADER_BYTES, protocol_with_header_timeout
from vizlab.room.app import create_room_app
from vizlab.room.codes import new_admin_key, new_code, write_codes
from vizlab.room.forward import hash_images
from vizlab.room.pacing import FairPacer
from vizlab.room.recording import Recorder, Replayer
from vizlab.room.settings import RoomSettings
from vizlab.room.store import CodeRow, RoomStore
from vizlab.room.tls import ensure_certificate, fingerprint, machine_names
from vizlab.room.upstream import Upstream

__all__ = ["Room"]

# Seconds an idle upstream connection is kept: under uvicorn's 5 s keep-alive (the built-in backend) and
# the longer idle timeouts of Azure's front ends, so the room never sends on a connection being closed.
UPSTREAM_KEEPALIVE_S = 2.0
UNKNOWN_CODE = ("Access denied: this code is not one of this room's codes. Check it against your card "
                "(api-key header or Authorization: Bearer CODE), or ask the facilitator.")  # fmt: skip


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


class Room:
    """One workshop room in front of one deployment."""

    def __init__(self, settings: RoomSettings, *, upstream_key: str | None = None, log: TextIO | None = None,
                 credential: Any = None) -> None:  # fmt: skip
        """``upstream_key`` (else ``AZURE_OPENAI_API_KEY``, else Entra ID through ``credential``, default
        azure-identity's DefaultAzureCredential) authenticates the room to its deployment."""
        self.settings = settings
        self._credential = credential
        self.deployment = settings.upstream_deployment
        self._upstream_key = upstream_key
        self._console = log if log is not None else sys.stderr
        self._logfile: TextIO | None = None
        self._codes: dict[str, CodeRow] = {}
        self._lock = threading.Lock()
        self.pacer = FairPacer(settings.tpm, settings.rpm, settings.max_wait_s)
        self.store: RoomStore = None  # type: ignore[assignment]  # set by open()
        self.upstream: Upstream = None  # type: ignore[assignment]
        self.admin_key = ""
        self.stats = {"upstream_429_retried": 0, "upstream_429_handed_down": 0}
        self.codes_page = settings.codes.with_suffix(".html")
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._client: httpx.AsyncClient | None = None
        self.tls_fingerprint: str | None = None
        self.recorder = Recorder(settings.record) if settings.record is not None else None
        self.replayer = Replayer(settings.replay) if settings.replay is not None else None

    # --- setting up ----------------------------------------------------------------------------

    def open(self) -> Room:
        """Open the store, make or resume codes and the admin key, bind the port, start the upstream."""
        s = self.settings
        self.store = RoomStore(s.store_path)
        self._logfile = s.log_path.open("a", encoding="utf-8")
        self.admin_key = self.store.meta("admin_key") or new_admin_key()
        self.store.set_meta("admin_key", self.admin_key)
        missing = s.attendees - len(self.store.codes())
        if missing > 0:
            self.store.add_codes([new_code() for _ in range(missing)], s.budget_usd, s.budget_tokens)
        self._sock = self._bind()
        if s.tls:
            names = machine_names(s.allowed_hosts + ((s.host,) if s.host not in ("0.0.0.0", "::") else ()))
            ensure_certificate(*s.cert_paths, names)
            self.tls_fingerprint = fingerprint(s.cert_paths[0])
        self.upstream = Upstream(s.upstream_endpoint, s.upstream_deployment, key=self._upstream_key,
                                 credential=self._credential,
                                 model=s.upstream_model if s.upstream_model != s.upstream_deployment else None)  # fmt: skip
        self.refresh_codes()
        return self

    def _bind(self) -> socket.socket:
        host = self.settings.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, self.settings.port))
        except OSError:
            sock.close()
            raise
        return sock

    @property
    def port(self) -> int:
        assert self._sock is not None, "open() the room first"
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.settings.host
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        scheme = "https" if self.settings.tls else "http"
        return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def refresh_codes(self) -> None:
        rows = self.store.codes()
        with self._lock:
            self._codes = {r.code: r for r in rows}
        write_codes(self.settings.codes, rows, self.url, self.deployment)

    def codes(self) -> dict[str, CodeRow]:
        with self._lock:
            return dict(self._codes)

    def add_attendees(self, count: int, budget_usd: float | None = None) -> list[CodeRow]:
        rows = self.store.add_codes([new_code() for _ in range(count)], budget_usd or self.settings.budget_usd,
                                    self.settings.budget_tokens)  # fmt: skip
        self.refresh_codes()
        return rows

    # --- checks the routes use -----------------------------------------------------------------

    def host_ok(self, host: str | None) -> bool:
        bound = self.settings.host
        allowed = self.settings.allowed_hosts + (bound, socket.gethostname())
        if host_allowed(host, allowed):
            return True
        if bound in ("0.0.0.0", "::") and host is not None:  # any address of this machine; names must be listed
            name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return False
        return False

    def check_code(self, request: Request) -> CodeRow:
        code = request.headers.get("api-key")
        if not code:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            code = token.strip() if scheme.lower() == "bearer" else ""
        row = self.codes().get(code or "")
        if row is None:
            raise AzureError(401, "401", UNKNOWN_CODE, type=None)
        request.state.room_row = row
        if row.revoked:
            raise AzureError(403, "CodeRevoked", f"Attendee {row.attendee}'s code was revoked by the facilitator; "
                             "ask them for a new one.", type=None)  # fmt: skip
        state = self.settings.window_state()
        if state == "before":
            raise AzureError(403, "EventNotStarted", f"The event starts at {_when(self.settings.starts)}; this code "
                             "works from then until " + _when(self.settings.ends) + ". Try again then.", type=None)
        if state == "after":
            raise AzureError(403, "EventEnded", f"The event ended at {_when(self.settings.ends)}; this room no longer "
                             "answers. Thank you for coming.", type=None)  # fmt: skip
        return row

    def check_deployment(self, name: str) -> str | None:
        """The room has one deployment: any name reaches it (so attendees set two variables only);
        a different name is noted in the reply's x-vizlab-room-capped header."""
        if len(name) > 200:
            raise AzureError(400, "invalid_value", "The deployment / model name is over 200 characters.", type=None)
        return None if name == self.deployment else f"deployment {name[:80]}->{self.deployment}"

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # Idle connections dropped after UPSTREAM_KEEPALIVE_S, before the upstream drops them: reusing one
            # the server is closing fails with a ReadError (bench 8 lost 1 answer of 90 so).
            self._client = httpx.AsyncClient(base_url=self.upstream.url, timeout=httpx.Timeout(300.0, connect=10.0),
                                             limits=httpx.Limits(keepalive_expiry=UPSTREAM_KEEPALIVE_S))  # fmt: skip
        return self._client

    async def close_client(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- the key never leaves -----------------------------------------------------------------

    # Replies lose only the exact secrets (not key-shaped text, which may be an attendee's answer).
    def _scrub(self, text: str) -> str:
        for secret in self.upstream.secret_values():
            text = text.replace(secret, "***")
        return text

    def redact_body(self, body: Any) -> Any:
        text = json.dumps(body)
        clean = self._scrub(text)
        return body if clean == text else json.loads(clean)

    def redact_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {k: self._scrub(v) for k, v in headers.items()}

    def redact_bytes(self, data: bytes) -> bytes:
        if not any(s.encode() in data for s in self.upstream.secret_values()):
            return data
        return self._scrub(data.decode("utf-8", "replace")).encode()

    def prompt_record(self, body: dict[str, Any]) -> str | None:
        return hash_images(body) if self.settings.log_prompts else None

    def log(self, line: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        text = redact(f"{stamp} {line}", self.upstream.secret_values() if self.upstream else [])
        if self._logfile is not None:
            self._logfile.write(text + "\n")
            self._logfile.flush()
        print(text, file=self._console, flush=True)

    # --- the live view -------------------------------------------------------------------------

    def usage(self) -> dict[str, Any]:
        s = self.settings
        by = self.store.usage_by_attendee()
        attendees = []
        for row in self.store.codes():
            entry = {"requests": 0, "prompt_tokens": 0, "image_tokens": 0, "output_tokens": 0, "usd": 0.0,
                     "throttled": 0, "refusals": 0, "last_request": None, **by.get(row.attendee, {})}  # fmt: skip
            attendees.append({"attendee": row.attendee, "code_hint": "..." + row.code[-4:],
                              "revoked": bool(row.revoked), "budget_usd": row.budget_usd,
                              "budget_tokens": row.budget_tokens, **entry})  # fmt: skip
        keys = ("requests", "prompt_tokens", "image_tokens", "output_tokens", "usd", "throttled", "refusals")
        totals: dict[str, Any] = {k: sum(a[k] for a in attendees) for k in keys}
        totals["budget_usd"] = sum(a["budget_usd"] for a in attendees)
        spend, running = [], 0.0
        for when, _, usd in self.store.usage_rows():
            running += usd
            spend.append([when, round(running, 8)])
        return {"deployment": self.deployment, "model": s.upstream_model, "attendees": attendees, "totals": totals,
                "spend_over_time": spend[-500:], "quota": {**self.pacer.in_use(), **self.stats},
                "window": {"starts": _when(s.starts), "ends": _when(s.ends), "state": s.window_state()},
                "caps": {"max_output": s.max_output, "max_images": s.max_images, "max_detail": s.max_detail}}  # fmt: skip

    # --- serving -------------------------------------------------------------------------------

    def start(self) -> Room:
        """Serve in a daemon thread; return once connections are accepted."""
        if self.store is None:
            self.open()
        assert self._sock is not None
        config = uvicorn.Config(create_room_app(self), log_level="warning", access_log=False, lifespan="on",
                                ws="none", http=protocol_with_header_timeout(10.0),
                                h11_max_incomplete_event_size=MAX_INCOMPLETE_HEADER_BYTES,
                                ssl_certfile=self._tls_file(0), ssl_keyfile=self._tls_file(1))  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="vizlab-room", daemon=True)  # fmt: skip
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the room did not start on {self.settings.host}:{self.port}")
            time.sleep(0.01)
        return self

    def _tls_file(self, which: int) -> str | None:
        return str(self.settings.cert_paths[which]) if self.settings.tls else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self.upstream is not None:
            self.upstream.close()
        if self._sock is not None:
            self._sock.close()
        if self.store is not None:
            self.store.close()
        if self._logfile is not None:
            self._logfile.close()
        self._server = self._thread = self._sock = None

    def serve_forever(self) -> None:
        if self._server is None:
            self.start()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Room:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Room({self.deployment!r}, {len(self._codes)} codes, upstream={self.upstream!r})"
