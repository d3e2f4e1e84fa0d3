"""``python -m vizlab.local --port N``: serve the built-in backend until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading

from vizlab.local.server import LocalBackend, require_loopback


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
        "is gpt-4o-class unless it names a model); repeat for several (default: gpt-5.4, gpt-4o, gpt-4o-mini)",
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
        "--max-concurrency", type=int, default=None, metavar="N",
        help="chat/responses requests in flight at once; one more gets 429 with retry-after-ms (default: no limit)",
    )
    p.add_argument(
        "--allowed-host", action="append", dest="allowed_hosts", metavar="NAME", default=[],
        help="a Host header value to accept besides loopback and localhost (DNS-rebinding guard); repeatable",
    )
    p.add_argument(
        "--header-timeout", type=float, default=10.0, metavar="S",
        help="seconds a connection may take to send complete request headers (slowloris guard; default 10)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        require_loopback(args.host)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    settings: dict[str, object] = {
        "api_key": args.api_key, "latency_s": args.latency, "rpm": args.rpm, "tpm": args.tpm,
        "max_concurrency": args.max_concurrency, "allowed_hosts": tuple(args.allowed_hosts),
        "header_timeout_s": args.header_timeout,
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
        backend = LocalBackend(host=args.host, port=args.port, **settings)
        backend.start()
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: cannot start the vizlab local backend: {e}", file=sys.stderr)
        return 1
    mapped = backend.config.deployment_models
    deployments = ", ".join(f"{d}={mapped[d]}" if d in mapped else d for d in backend.config.deployments)
    print(f"vizlab local backend: {backend.url} (deployments: {deployments})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        backend.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
