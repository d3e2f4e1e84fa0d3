"""Run every vizlab benchmark and write BENCHMARKS.md at the repository root.

    make bench        # or: .venv/bin/python bench/run.py [--only 1,3] [--out PATH]

Each benchmark measures its contestants side by side in this one run and reports ratios;
absolute times describe this machine only. Targets print PASS or FAIL with the measured
figure, and BENCHMARKS.md records exactly what was printed: a missed target stays missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import RERUN, Section, machine, say  # noqa: E402

BENCHMARKS = {
    "1": ("bench_tokens", "image sizes for token estimates"),
    "2": ("bench_data_urls", "data URLs"),
    "3": ("bench_throughput", "experiment throughput under a TPM quota"),
    "4": ("bench_backend", "the built-in backend"),
    "5": ("bench_fit", 'fit="high" on 12 MP photos'),
    "6": ("bench_conversation", "conversation totals"),
    "7": ("bench_strict", "the built-in backend under hostile clients"),
    "8": ("bench_documents", "PDF pages rendered"),
    "9": ("bench_room", "vizlab.room: a room of attendees, and kill -9"),
    "10": ("bench_overload", "overload: 200 clients at once"),
    "11": ("bench_notebook_memory", "eight open tutorial notebooks: memory"),
}


def write_report(path: Path, sections: list[Section], facts: dict[str, str], total_s: float) -> None:
    targets = [t for s in sections for t in s.targets]
    scored = [t for t in targets if t.passed is not None]
    passed = sum(1 for t in scored if t.passed)
    lines = [
        "# vizlab benchmarks",
        "",
        "Written by `bench/run.py` from one run; do not edit by hand. Each benchmark measures its",
        "contestants side by side in that run, so the **ratios** are the result; absolute times only",
        "describe the machine below. A missed target is reported as missed, with its figure.",
        "",
        f"Rerun: `{RERUN}` (about {total_s / 60:.1f} min here).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts.items()],
        f"| Run | {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}, {total_s:.0f} s in total |",
        "",
        f"## Results: {passed} of {len(scored)} targets met",
        "",
        "| Benchmark | Target | Measured | Result |",
        "|---|---|---|---|",
        *[f"| {t.benchmark} | {t.target} | {t.measured} | **{t.verdict}** |" for t in targets],
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", *section.lines, "", f"_({section.seconds:.0f} s)_", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmark numbers, e.g. 1,3")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="where to write the report")
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}")

    facts = machine()
    say("vizlab benchmarks")
    for key, value in facts.items():
        say(f"  {key}: {value}")
    started = time.perf_counter()
    sections: list[Section] = []
    for n in chosen:
        module_name, what = BENCHMARKS[n]
        say(f"\n[{n}/{len(BENCHMARKS)}] {what} ({time.perf_counter() - started:.0f} s elapsed)")
        try:
            module = __import__(module_name)
            sections.append(module.run())
        except Exception:  # one broken benchmark must not hide the others' results
            section = Section(f"{n}. {what}")
            section.add("The benchmark crashed:")
            section.add("```")
            section.add(traceback.format_exc().rstrip())
            section.add("```")
            section.target("the benchmark runs", "crashed (see its section)", False)
            sections.append(section)
            traceback.print_exc()
    total = time.perf_counter() - started
    out = Path(args.out)
    write_report(out, sections, facts, total)
    targets = [t for s in sections for t in s.targets]
    scored = [t for t in targets if t.passed is not None]
    failed = [t for t in scored if not t.passed]
    say(f"\n{len(scored) - len(failed)} of {len(scored)} targets met in {total:.0f} s; report: {out}")
    for t in failed:
        say(f"  FAIL  {t.benchmark}: {t.target}: {t.measured}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
