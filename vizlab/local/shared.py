"""One built-in backend process per user and option set, shared by every kernel.

:func:`ensure_shared_backend` finds the backend recorded in the state directory (``~/.cache/vizlab``,
or ``VIZLAB_STATE_DIR``) and checks it answers; else it starts ``python -m vizlab.local`` detached,
under a lock file so two kernels starting at once get one process. The process stops itself when
idle (``VIZLAB_BACKEND_IDLE_S``, default 30 min). Trade-offs: state files are mode 0600 but the
port is loopback-wide; a dead process is found by its health check, not by a supervisor.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vizlab.local.config import BackendConfig
from vizlab.local.memory import ARENA_ENV

__all__ = [
    "SharedBackend", "code_fingerprint", "ensure_shared_backend", "stop_shared_backends", "state_dir",
    "STATE_DIR_ENV", "IDLE_ENV", "DEFAULT_IDLE_S", "DEFAULT_SHARED_OPTIONS", "write_private",
]

STATE_DIR_ENV = "VIZLAB_STATE_DIR"
IDLE_ENV = "VIZLAB_BACKEND_IDLE_S"
DEFAULT_IDLE_S = 1800.0  # vizlab's choice: a workshop break does not cost a restart
START_TIMEOUT_S = 90.0  # imports on a busy 2-core machine took up to ~25 s
HUNG_AFTER_S = 20.0  # a live process that cannot answer /healthz in this long is replaced
# The settings connect() asks for when nothing is configured (vizlab.client.targets), so that
# `python -m vizlab.local --shared` names the same process.
DEFAULT_SHARED_OPTIONS: dict[str, Any] = {"deployments": ("gpt-4o", "gpt-4o-mini")}


def state_dir() -> Path:
    """Where shared backends are recorded: ``$VIZLAB_STATE_DIR``, else the user's cache dir."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "vizlab"


def idle_timeout_s() -> float:
    raw = os.environ.get(IDLE_ENV)
    if not raw:
        return DEFAULT_IDLE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(f"{IDLE_ENV}={raw!r} must be a positive number of seconds (e.g. 1800), or unset")
    return value


def options_id(options: Mapping[str, Any]) -> str:
    """A short name for an option set and this copy of vizlab's code; the key, if any, enters only
    as its hash. After an upgrade (or from another clone) the name differs, so a kernel never
    talks to a backend still running older code."""
    shown = {k: (hashlib.sha256(str(v).encode()).hexdigest() if k == "api_key" else v) for k, v in options.items()}
    text = json.dumps({"options": shown, "code": code_fingerprint()}, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Where vizlab's code lives and when it last changed (the newest .py file's mtime), as a hash."""
    package = Path(__file__).resolve().parent.parent
    newest = max((p.stat().st_mtime_ns for p in package.rglob("*.py")), default=0)
    return hashlib.sha256(f"{package}|{newest}".encode()).hexdigest()[:16]


@dataclass
class SharedBackend:
    """A handle on the shared backend process: its URL, pid and (rebuilt here) settings."""

    url: str
    port: int
    pid: int
    config: BackendConfig = field(repr=False)
    state_file: Path = field(repr=False)

    def healthy(self, timeout_s: float = 2.0) -> bool:
        """True when the process answers /healthz with its own pid."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=timeout_s) as resp:  # noqa: S310 (loopback)
                return bool(json.loads(resp.read()).get("pid") == self.pid)
        except (OSError, ValueError):
            return False

    def running(self) -> bool:
        """True while the process exists (without a request, so it does not reset the idle clock)."""
        child = _children.get(self.pid)
        if child is not None:
            return child.poll() is None
        return _pid_alive(self.pid)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the process to stop (SIGTERM) and wait for it to go; safe when it is gone."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGTERM)
        _wait_gone(self.pid, timeout_s)
        with contextlib.suppress(FileNotFoundError):
            if _read_state(self.state_file).get("pid") == self.pid:
                self.state_file.unlink()


_children: dict[int, subprocess.Popen[bytes]] = {}  # processes this interpreter started (reaped here)


def _wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    child = _children.get(pid)
    while time.monotonic() < deadline:
        if child is not None:
            if child.poll() is not None:
                _children.pop(pid, None)
                return
        elif not _pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
        _children.pop(pid, None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically to a file only its owner can read (0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock; two kernels may start two backends
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _handle(state: Mapping[str, Any], config: BackendConfig, state_file: Path) -> SharedBackend | None:
    try:
        pid, port = int(state["pid"]), int(state["port"])
    except (KeyError, TypeError, ValueError):
        return None
    return SharedBackend(f"http://127.0.0.1:{port}", port, pid, config, state_file)


def ensure_shared_backend(options: Mapping[str, Any]) -> SharedBackend:
    """The running shared backend for these :class:`BackendConfig` settings, started if needed.

    Raises TypeError or ValueError for settings BackendConfig refuses, RuntimeError when the
    process does not start (with the end of its log).
    """
    known = {f.name for f in fields(BackendConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown built-in backend settings {unknown}; known: {sorted(known)}")
    config = BackendConfig(**options)  # refuse bad settings here, with BackendConfig's message
    try:
        text = json.dumps(dict(options), default=list)
    except TypeError as e:
        raise TypeError(f"the built-in backend settings must be plain values (numbers, strings, lists): {e}") from e
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"backend-{options_id(options)}"
    state_file = folder / f"{name}.json"
    with _locked(folder / f"{name}.lock"):
        found = _handle(_read_state(state_file), config, state_file)
        # A live process slow to answer (a busy machine) is waited for, not replaced: replacing
        # it would end other kernels' requests.
        if found is not None and (found.healthy() or (found.running() and found.healthy(timeout_s=HUNG_AFTER_S))):
            return found
        if found is not None:
            found.stop(timeout_s=5)  # recorded but not answering: hung or gone
        options_file = folder / f"{name}.options.json"
        write_private(options_file, text)  # 0600, read and deleted by the process (it may hold a key)
        try:
            return _start(config, state_file, options_file, folder / f"{name}.log")
        finally:
            with contextlib.suppress(FileNotFoundError):
                options_file.unlink()


def _start(config: BackendConfig, state_file: Path, options_file: Path, log_file: Path) -> SharedBackend:
    with contextlib.suppress(FileNotFoundError):
        state_file.unlink()
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env = {**ARENA_ENV, **env}  # a user's own MALLOC_ARENA_MAX wins
    command = [
        sys.executable, "-m", "vizlab.local", "--port", "0", "--options-file", str(options_file),
        "--state-file", str(state_file), "--idle-timeout", repr(idle_timeout_s()),
    ]  # fmt: skip
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
        )
    _children[proc.pid] = proc
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _handle(_read_state(state_file), config, state_file)
        if found is not None and found.pid == proc.pid and found.healthy():
            return found
        if proc.poll() is not None:
            _children.pop(proc.pid, None)
            break
        time.sleep(0.05)
    else:
        SharedBackend("", 0, proc.pid, config, state_file).stop(timeout_s=5)
    tail = log_file.read_text(errors="replace").strip().splitlines()[-3:] if log_file.exists() else []
    raise RuntimeError(
        f"the shared built-in backend did not start (log {log_file}: {' | '.join(tail) or 'empty'}); "
        "use connect(backend='inprocess') to run it inside this process instead"
    )


def stop_shared_backends(folder: Path | None = None) -> int:
    """Stop every shared backend recorded in ``folder`` (default :func:`state_dir`); return how many."""
    folder = folder or state_dir()
    stopped = 0
    for path in sorted(folder.glob("backend-*.json")) if folder.is_dir() else []:
        if path.name.endswith(".options.json"):
            continue
        state = _read_state(path)
        handle = _handle(state, BackendConfig(), path)
        if handle is not None and _pid_alive(handle.pid) and (handle.healthy() or handle.pid in _children):
            handle.stop()
            stopped += 1
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stopped
