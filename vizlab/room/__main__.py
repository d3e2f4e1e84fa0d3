"""``python -m vizlab.room serve ...``: run a workshop room until Ctrl-C (see docs/facilitator.md)."""

from __future__ import annotations

import argparse
import signal
import sys

from vizlab.errors import ConfigurationError
from vizlab.room.settings import DEFAULT_MAX_OUTPUT, RoomSettings, is_loopback

PLAIN_HTTP = (
    "note: the room speaks plain http. On a shared network anyone who can watch the traffic sees attendee "
    "codes, prompts, images and answers (never the upstream key, which stays on this machine). Use a network "
    "you trust, or put the room behind a TLS reverse proxy (docs/facilitator.md)."
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vizlab.room", description="Run a workshop room in front of one deployment.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the room until Ctrl-C")
    s.add_argument("--upstream-endpoint", required=True, help="'local' (the built-in backend) or https://RES.openai.azure.com")
    s.add_argument("--upstream-deployment", required=True, metavar="NAME", help="the deployment attendees use")
    s.add_argument("--upstream-model", default=None, metavar="MODEL",
                   help="the registry model behind it, for estimates (default: the deployment's name if vizlab knows it, else gpt-4o)")
    s.add_argument("--attendees", type=int, required=True, metavar="N", help="codes to make (a restart adds any missing)")
    s.add_argument("--budget-usd", type=float, required=True, metavar="X", help="each attendee's budget in US dollars")
    s.add_argument("--budget-tokens", type=int, default=None, metavar="N", help="each attendee's budget in tokens too")
    s.add_argument("--starts", required=True, metavar="ISO", help="when codes start working (e.g. 2026-12-10T09:00, local time)")
    s.add_argument("--ends", required=True, metavar="ISO", help="when they stop")
    s.add_argument("--port", type=int, default=8300, help="port (default 8300; 0 picks a free one)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; 0.0.0.0 for a LAN)")
    s.add_argument("--allowed-host", action="append", dest="allowed_hosts", default=[], metavar="NAME",
                   help="a host name attendees use for the room (besides its addresses); repeatable")
    s.add_argument("--codes", required=True, metavar="CSV", help="codes.csv to write (the .sqlite store and .log sit beside it)")
    s.add_argument("--max-detail", choices=["low", "high"], default=None, help="low: every image is sent at detail low (the reply says so); high: as sent (the default)")
    s.add_argument("--max-images", type=int, default=None, metavar="N", help="images per request (more is refused)")
    s.add_argument("--max-output", type=int, default=DEFAULT_MAX_OUTPUT, metavar="N",
                   help=f"output cap on max_tokens / max_completion_tokens / max_output_tokens (default {DEFAULT_MAX_OUTPUT})")
    s.add_argument("--tpm", type=int, default=None, help="the deployment's tokens-per-minute quota, shared fairly")
    s.add_argument("--rpm", type=int, default=None, help="its requests-per-minute quota")
    s.add_argument("--max-wait", type=float, default=20.0, metavar="S", help="longest a request waits for a turn or an upstream 429 (default 20)")
    s.add_argument("--tls", action="store_true",
                   help="serve https with a self-signed certificate made on first start (fingerprint printed)")
    s.add_argument("--record", default=None, metavar="FILE",
                   help="append the deployment's replies to FILE (JSON Lines; requests as hashes, no images, codes or keys)")
    s.add_argument("--replay", default=None, metavar="FILE",
                   help="answer requests recorded in FILE from it (marked x-vizlab-recorded); forward the rest")
    s.add_argument("--log-prompts", action="store_true", help="store prompts in the usage rows (images as hashes)")
    return p


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from vizlab.room.server import Room

    args = _parser().parse_args(argv)
    try:
        settings = RoomSettings(
            upstream_endpoint=args.upstream_endpoint, upstream_deployment=args.upstream_deployment, codes=args.codes,
            starts=args.starts, ends=args.ends, attendees=args.attendees, budget_usd=args.budget_usd,
            budget_tokens=args.budget_tokens, upstream_model=args.upstream_model, host=args.host, port=args.port,
            max_detail=args.max_detail, max_images=args.max_images, max_output=args.max_output, tpm=args.tpm,
            rpm=args.rpm, log_prompts=args.log_prompts, max_wait_s=args.max_wait, allowed_hosts=tuple(args.allowed_hosts), tls=args.tls,
            record=args.record, replay=args.replay,
        )  # fmt: skip
        room = Room(settings).start()
    except (ConfigurationError, OSError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in settings.notes:
        print(f"note: {note}", flush=True)
    if not is_loopback(settings.host):
        print(f"note: bound to {settings.host}: reachable from other machines; only holders of a code get answers.")
    if settings.record:
        print(f"note: recording the deployment's replies to {settings.record}: tell attendees their questions' "
              "answers are kept (their prompts and images are not, only hashes of them)", flush=True)  # fmt: skip
    if room.tls_fingerprint:
        cert = settings.cert_paths[0]
        print(f"https: self-signed certificate {cert} (give attendees this file: SSL_CERT_FILE={cert.name}); "
              f"SHA-256 fingerprint {room.tls_fingerprint}", flush=True)  # fmt: skip
    else:
        print(PLAIN_HTTP, flush=True)
    print(f"vizlab room: {room.url} (deployment {room.deployment!r}, upstream {room.upstream.url}, "
          f"{len(room.codes())} codes in {settings.codes}, printable page {room.codes_page})", flush=True)  # fmt: skip
    print(f"admin key: {room.admin_key}  (live view: {room.url}/room/)", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM stops the room as Ctrl-C does (store closed, child ended)
    room.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
