"""The deployment behind the room: its URL and key, and the built-in backend started for ``local``.

The key comes from ``AZURE_OPENAI_API_KEY``, or, when none is set, from Entra ID through
azure-identity (a bearer token for ``https://cognitiveservices.azure.com/.default``, refreshed
before it expires). For ``--upstream-endpoint local`` the room starts ``python -m vizlab.local`` as a
child on a free loopback port with a fresh key of its own, handed over in the child's
``AZURE_OPENAI_API_KEY`` (never on its command line, which ``ps`` shows), so the offline room
exercises the key path too. The child exits when the room's process is gone, even after a kill -9.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["KEY_VARIABLE", "LocalChild", "Upstream"]

KEY_VARIABLE = "AZURE_OPENAI_API_KEY"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"

# Run in the child: take the key from the environment, and exit when the parent room is gone.
_CHILD = """
import os, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from vizlab.local.__main__ import main
sys.exit(main(sys.argv[1:] + ["--api-key", os.environ["AZURE_OPENAI_API_KEY"]]))
"""


class LocalChild:
    """``python -m vizlab.local`` as a child process with a generated key."""

    def __init__(self, deployment: str, model: str | None) -> None:
        self.key = secrets.token_urlsafe(32)
        spec = deployment if model is None else f"{deployment}={model}"
        env = {**os.environ, KEY_VARIABLE: self.key}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, "--port", "0", "--deployment", spec],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout_s: float = 60.0) -> str:
        found: list[str] = []
        assert self.process.stdout is not None
        stdout = self.process.stdout

        def read() -> None:
            for line in stdout:
                match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
                if match and not found:
                    found.append(match.group(1))

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not found:
            if self.process.poll() is not None or time.monotonic() > deadline:
                err = self.process.stderr.read()[-500:] if self.process.stderr and self.process.poll() is not None else ""
                self.stop()
                raise RuntimeError(f"the built-in backend (python -m vizlab.local) did not start: {err}")
            time.sleep(0.05)
        return found[0]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


class Upstream:
    """Where requests go and the header that authenticates them; the key stays in this object."""

    def __init__(self, endpoint: str, deployment: str, *, key: str | None = None, model: str | None = None,
                 environ: dict[str, str] | None = None, credential: Any = None) -> None:  # fmt: skip
        """``credential``: an azure-identity credential (``get_token(scope)``) used when no key is set;
        default ``DefaultAzureCredential()``, made on first use."""
        env = os.environ if environ is None else environ
        self.deployment = deployment
        self.child: LocalChild | None = None
        self._credential: Any = credential
        self._key: str | None
        self._token: tuple[str, float] | None = None
        if endpoint == "local":
            self.child = LocalChild(deployment, model)
            self.url, self._key = self.child.url, self.child.key
        else:
            self.url = endpoint.rstrip("/")
            self._key = key or env.get(KEY_VARIABLE) or None
        self.kind = "api-key" if self._key else "entra"

    def secret_values(self) -> list[str]:
        """What must never reach an attendee (for redaction and for tests)."""
        return [s for s in (self._key, self._token[0] if self._token else None) if s]

    def auth_headers(self) -> dict[str, str]:
        if self._key:
            return {"api-key": self._key}
        return {"Authorization": "Bearer " + self._entra_token()}

    def _entra_token(self, now: Callable[[], float] = time.time) -> str:
        if self._token is None or self._token[1] - now() < 300:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            token = self._credential.get_token(ENTRA_SCOPE)
            self._token = (token.token, float(token.expires_on))
        return self._token[0]

    def close(self) -> None:
        if self.child is not None:
            self.child.stop()

    def __repr__(self) -> str:
        return f"Upstream({self.url}, deployment={self.deployment!r}, auth={self.kind})"
