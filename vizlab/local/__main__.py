"""``python -m vizlab.local --port N``: serve the built-in backend until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from typing import Callable

from vizlab.errors import UnknownModelError
from pathlib import Path
from typing import Any

from vizlab.local.config import DEFAULT_DEPLOYMENTS, DEFAULT_MAX_CONCURRENCY
from vizlab.local.memory import release_free_memory
from vizlab.local.server import LocalBackend, require_loopback
from vizlab.models.registry import lifecycle_warning
from vizlab.local.shared import (
    DEFAULT_SHARED_OPTIONS,
    ensure_shared_backend,
    stop_shared_backends,
    write_private,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vizlab.local",
        description="Serve vizlab's built-in backend (Azure OpenAI Chat Completions protocol) on loopback.",
    )
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: a free port; default 0)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--api-key", default=None, help="the only key accepted (default: any non-empty key)")
    p.add_argument(
        "--deployment", action="append", dest="deployments", metavar="NAME[=MODEL]",
        help="a deployment to serve, NAME=MODEL for a registry model (e.g. reasoner=o4-mini; a bare NAME "
        f"is gpt-4o-class unless it names a model); repeat for several (default: {', '.join(DEFAULT_DEPLOYMENTS)})",
    )
    p.add_argument(
        "--billing-rules", default=None, metavar="PROFILE",
        help="bill images by this rule profile of vizlab.models (e.g. 2025-08, azure-2023-preview; default: newest)",
    )
    p.add_argument(
        "--billing-numbers", default=None, metavar="K=V,...",
        help="bill images by made-up numbers, e.g. base=70,per_tile=150 or multiplier=1.3 (for calibration tests)",
    )
    p.add_argument("--latency", type=float, default=0.0, metavar="S", help="extra latency per request, seconds")
    p.add_argument("--rpm", type=int, default=None, help="requests-per-minute quota (default: none)")
    p.add_argument("--tpm", type=int, default=None, help="tokens-per-minute quota (default: none)")
    p.add_argument(
        "--max-concurrency", type=int, default=DEFAULT_MAX_CONCURRENCY, metavar="N",
        help="chat/responses requests in flight at once; one more gets 429 with retry-after and retry-after-ms "
        f"(default {DEFAULT_MAX_CONCURRENCY}; 0: no limit)",
    )
    p.add_argument(
        "--allowed-host", action="append", dest="allowed_hosts", metavar="NAME", default=[],
        help="a Host header value to accept besides loopback and localhost (DNS-rebinding guard); repeatable",
    )
    p.add_argument(
        "--header-timeout", type=float, default=10.0, metavar="S",
        help="seconds a connection may take to send complete request headers (slowloris guard; default 10)",
    )
    p.add_argument(
        "--body-timeout", type=float, default=10.0, metavar="S",
        help="seconds a request body may stall (send nothing) before the connection is closed (default 10)",
    )
    p.add_argument(
        "--idle-timeout", type=float, default=None, metavar="S",
        help="stop after S seconds without a request (default: serve until stopped)",
    )
    p.add_argument(
        "--shared", action="store_true",
        help="print the URL of this user's shared backend (the one connect() uses), starting it if needed",
    )
    p.add_argument("--stop-shared", action="store_true", help="stop this user's shared backends")
    # Used by vizlab.local.shared when it starts a shared backend (not for people).
    p.add_argument("--options-file", default=None, help=argparse.SUPPRESS)
    p.add_argument("--state-file", default=None, help=argparse.SUPPRESS)
    return p


def retirement_warnings(deployments: tuple[str, ...], model_for: Callable[[str], str],
                        today: str | None = None) -> list[str]:  # fmt: skip
    """One line per deployment whose model is past (or near) a retirement date on Azure, with the
    date, its source and a replacement. The backend still serves it (notebook 14 tells its history)."""
    out = []
    for deployment in deployments:
        model = model_for(deployment)
        try:
            text = lifecycle_warning(model, today, provider="azure")
        except UnknownModelError:
            continue
        if text:
            out += [f"deployment {deployment!r} ({model}): {line} It is still served here." for line in text.splitlines()]
    return out
def _settings_from_file(path: str) -> dict[str, Any]:
    """The settings a shared start wrote (a 0600 file, deleted once read: it may hold a key)."""
    try:
        data = json.loads(Path(path).read_text())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if not isinstance(data, dict):
        raise ValueError(f"--options-file {path}: expected a JSON object of BackendConfig settings")
    return data


def _serve(backend: LocalBackend, idle_timeout: float | None, state_file: str | None) -> None:
    """Serve until Ctrl-C, SIGTERM, or ``idle_timeout`` seconds without a request."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if state_file:
        record = {"pid": os.getpid(), "port": backend.port, "url": backend.url}
        write_private(Path(state_file), json.dumps(record))
    try:
        trimmed = True  # nothing served yet
        while not done.wait(timeout=min(idle_timeout / 4, 1.0) if idle_timeout else 1.0):
            idle = backend.idle_s()
            if idle_timeout and idle > idle_timeout:
                break
            if idle < 1.0:
                trimmed = False
            elif not trimmed:  # quiet for a second after a busy spell: hand freed heap back
                release_free_memory()
                trimmed = True
    except KeyboardInterrupt:
        pass
    finally:
        backend.stop()
        if state_file:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(Path(state_file).read_text()).get("pid") == os.getpid():
                    os.unlink(state_file)


def _shared_command(args: argparse.Namespace) -> int:
    if args.stop_shared:
        print(f"stopped {stop_shared_backends()} shared vizlab backend(s)")
        return 0
    try:
        shared = ensure_shared_backend(DEFAULT_SHARED_OPTIONS)
    except (ValueError, TypeError, OSError, RuntimeError) as e:
        print(f"error: cannot start the shared vizlab backend: {e}", file=sys.stderr)
        return 1
    print(f"vizlab shared backend: {shared.url} (pid {shared.pid}; stops when idle)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.shared or args.stop_shared:
        return _shared_command(args)
    try:
        require_loopback(args.host)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    settings: dict[str, object] = {
        "api_key": args.api_key, "latency_s": args.latency, "rpm": args.rpm, "tpm": args.tpm,
        "max_concurrency": args.max_concurrency or None, "allowed_hosts": tuple(args.allowed_hosts),
        "header_timeout_s": args.header_timeout, "body_timeout_s": args.body_timeout,
    }  # fmt: skip
    if args.deployments:
        settings["deployments"] = tuple(args.deployments)
    if args.billing_rules:
        settings["billing_rules"] = args.billing_rules
    if args.billing_numbers:
        try:
            settings["billing_numbers"] = {
                k.strip(): float(v) for k, v in (item.split("=", 1) for item in args.billing_numbers.split(","))
            }
        except ValueError:
            print(f"error: --billing-numbers {args.billing_numbers!r} must look like base=70,per_tile=150", file=sys.stderr)
            return 2
    try:
        if args.options_file:
            settings = _settings_from_file(args.options_file)
        backend = LocalBackend(host=args.host, port=args.port, **settings)
        backend.start()
    except (ValueError, TypeError, OSError, RuntimeError) as e:
        print(f"error: cannot start the vizlab local backend: {e}", file=sys.stderr)
        return 1
    mapped = backend.config.deployment_models
    deployments = ", ".join(f"{d}={mapped[d]}" if d in mapped else d for d in backend.config.deployments)
    print(f"vizlab local backend: {backend.url} (deployments: {deployments})", flush=True)
    for line in retirement_warnings(backend.config.deployments, backend.config.model_for):
        print(f"warning: {line}", file=sys.stderr, flush=True)
    _serve(backend, args.idle_timeout, args.state_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
