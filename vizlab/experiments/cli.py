"""The command line for engineers who live outside notebooks: ``python -m vizlab.experiments run``.

Writes ``items.csv`` (and parquet with pyarrow), ``summary.json`` and ``frontier.png`` under
``--out``, with the notebooks' cache. ``--dry-run`` prices the run and sends nothing;
``--max-usd`` refuses to start over budget; ``--local`` forces the built-in backend.
Example command: docs/internals.md#experiments
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vizlab.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a grid of arms over a folder of images")
    run.add_argument("--images", required=True, help="folder of images (image paths in the labels are relative to it)")
    run.add_argument("--labels", help="CSV or JSONL: image, question, expected[, category, scorer, id]")
    run.add_argument("--prompt", help="question for rows without one (and for a folder without labels)")
    run.add_argument("--scorer", help="default scorer for rows without one (default: normalised)")
    run.add_argument("--deployment", action="append", help="a deployment to compare (repeat the flag)")
    run.add_argument("--detail", default="low,high", help="comma-separated details (default: low,high)")
    run.add_argument("--strategy", default="whole", help="comma-separated strategies: whole, fit, fit:WxH, crops:N, text-crops:N")
    run.add_argument("--effort", help="comma-separated reasoning efforts, one arm each (reasoning models only)")
    run.add_argument("--repeats", type=int, default=1)
    run.add_argument("--max-tokens", type=int, default=300)
    run.add_argument("--temperature", type=float)
    run.add_argument("--seed", type=int)
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument("--max-usd", type=float, help="refuse to start over this estimate; stop at it")
    run.add_argument("--tpm", type=int, help="the deployment's tokens-per-minute quota, for pacing")
    run.add_argument("--rpm", type=int, help="the deployment's requests-per-minute quota, for pacing")
    run.add_argument("--batch", action="store_true", help="send through the Batch API (half price, slower)")
    run.add_argument("--out", required=True, help="folder for items.csv, summary.json, frontier.png")
    run.add_argument("--cache", help="cache folder (default: <out>/cache)")
    run.add_argument("--dry-run", action="store_true", help="print the estimate, send nothing")
    run.add_argument("--local", action="store_true", help="use the built-in backend whatever the environment says")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--resend-unknown", action="store_true",
                     help="send again the requests an earlier, killed run sent without recording an answer (billed twice)")
    return parser


def _connect(args: argparse.Namespace) -> object:
    from vizlab.client.core import connect

    deployments = args.deployment or None
    if args.local:
        return connect(local_options={"deployments": tuple(deployments or ("gpt-4o",))}, verbose=False,
                       deployment=(deployments or ["gpt-4o"])[0])  # fmt: skip
    return connect(deployment=(deployments or [None])[0], verbose=False)


def main(argv: Sequence[str] | None = None) -> int:
    from pathlib import Path

    from vizlab.errors import VizlabError
    from vizlab.experiments.runner import BudgetExceededError, run_experiment

    args = build_parser().parse_args(argv)
    out = Path(args.out)
    try:
        client = _connect(args)
        result = run_experiment(
            client, args.images, labels=args.labels, prompt=args.prompt, scorer=args.scorer,  # type: ignore[arg-type]
            deployments=args.deployment, details=[d.strip() for d in args.detail.split(",") if d.strip()],
            strategies=[s.strip() for s in args.strategy.split(",") if s.strip()], repeats=args.repeats,
            reasoning_efforts=[e.strip() for e in (args.effort or "").split(",") if e.strip()] or (None,),
            max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
            cache_dir=args.cache or out / "cache", concurrency=args.concurrency, max_usd=args.max_usd,
            dry_run=args.dry_run, tpm=args.tpm, rpm=args.rpm, batch=args.batch, progress=not args.quiet,
            resend_unknown=args.resend_unknown,
        )  # fmt: skip
    except BudgetExceededError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 3
    except (VizlabError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(f"skipped {problem}", file=sys.stderr)
    unknown = int((result.table["cache"] == "unknown").sum())
    if unknown:
        print(f"{unknown} requests were sent by an earlier run that was stopped before their answers came back "
              "(billed; not sent again): rerun with --resend-unknown to send them", file=sys.stderr)
    table = result.table
    to_send = table[table["cache"] == "dry-run"] if args.dry_run else table.iloc[0:0]
    if args.dry_run:
        tokens = int(to_send["estimated_prompt_tokens"].fillna(0).sum())
        print(f"dry run: {len(to_send)} requests to send ({len(table) - len(to_send)} cached), about {tokens:,} prompt "
              f"tokens + up to {args.max_tokens} output tokens each, estimated ${result.estimate_usd:.4f} "
              f"(an upper bound); nothing was sent")  # fmt: skip
        return 0
    written = result.save(out)
    counts = result.counts
    print(f"{len(table)} rows: sent {counts['sent']}, cached {counts['cached']}, stale {counts['stale']}, failed "
          f"{counts['failed']}; {len(result.problems)} rows skipped (listed above)")  # fmt: skip
    if result.stamp:
        print(f"made by the {result.stamp}")
    if table["score"].notna().any():
        print(result.recommendation())
    print(json.dumps(written))
    return 0
