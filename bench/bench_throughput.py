"""Benchmark 3: a detail experiment against a tokens-per-minute quota, and a kill + resume.

The backend is the built-in one (``vizlab.local.create_app``) with simulated latency and a TPM
quota over a 60-s sliding window (the backend's simplification of Azure's per-minute TPM; see
vizlab.local.ratelimit), wrapped in a recorder that logs every request it sees
(status, body hash, the SDK's retry count, retry-after). The experiment is
``vizlab.experiments.run_detail_experiment`` with ``concurrency=4`` and the client's default
retries, exactly as a notebook would call it.

The demand is about 1.5 quota windows of tokens, so the run must fill one window, be refused
(429 + retry-after) until the window slides, and finish in the next. "Quota used" is measured
two ways: tokens admitted in the busiest 60 s (a client that backs off too early or gives up
leaves quota unused), and the run's wall time against an ideal client with the same
concurrency and service time that retries exactly when retry-after says (simulated against the
same limiter class); the gap is the real client's overhead.
"""

from __future__ import annotations

import heapq
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Exchange, Section, fmt_s, median, recording_backend, say
from _items import colour_items

KEY = "bench-key"
TPM = 6000
LATENCY_S = 1.0
CONCURRENCY = 4
MAX_TOKENS = 60
WINDOW_S = 60.0


def _admitted(exchanges: list[Exchange]) -> list[tuple[float, int]]:
    return [(e.started, (e.prompt_tokens or 0) + e.max_tokens) for e in exchanges if e.status == 200]


def busiest_window(admitted: list[tuple[float, int]], window: float = WINDOW_S) -> int:
    best = 0
    for start, _ in admitted:
        best = max(best, sum(t for s, t in admitted if start <= s < start + window))
    return best


def ideal_makespan(costs: list[int], service_s: float, concurrency: int, tpm: int) -> float:
    """Wall time of a client that retries exactly at retry-after, against the same limiter."""
    from vizlab.local.ratelimit import SlidingWindowLimiter

    now = [0.0]
    limiter = SlidingWindowLimiter(rpm=None, tpm=tpm, window_s=WINDOW_S, clock=lambda: now[0])
    queue = list(costs)
    ready = [(0.0, w) for w in range(concurrency)]
    heapq.heapify(ready)
    pending: dict[int, int] = {}
    finish = 0.0
    while ready:
        t, worker = heapq.heappop(ready)
        now[0] = t
        cost = pending.pop(worker, None)
        if cost is None:
            if not queue:
                continue
            cost = queue.pop(0)
        admission = limiter.admit(cost)
        if admission.allowed:
            finish = max(finish, t + service_s)
            heapq.heappush(ready, (t + service_s, worker))
        else:
            pending[worker] = cost
            heapq.heappush(ready, (t + admission.retry_after_s, worker))
    return finish


def quota_run(section: Section) -> None:
    from vizlab.client import connect
    from vizlab.experiments import run_detail_experiment
    from vizlab.images import encode_image
    from vizlab.tokens import estimate_request

    probe = colour_items(1)[0]
    part = encode_image(probe.image).part("low")
    messages = [{"role": "user", "content": [{"type": "text", "text": probe.question}, part]}]
    per_request = estimate_request(messages, model="gpt-4o", max_tokens=MAX_TOKENS).prompt_tokens + MAX_TOKENS
    n = round(1.5 * TPM / per_request)
    say(f"  quota run: {n} requests of ~{per_request} tokens against tpm={TPM:,} (latency {LATENCY_S} s, "
        f"concurrency {CONCURRENCY}); about 65-70 s ...")
    recorder, served = recording_backend(api_key=KEY, deployments=("gpt-4o",), latency_s=LATENCY_S, tpm=TPM)
    with served, tempfile.TemporaryDirectory(prefix="vizlab-bench-cache-") as cache:
        with connect(backend="azure", endpoint=served.url, api_key=KEY, deployment="gpt-4o", verbose=False) as client:
            default_retries = client.max_retries
            started = time.perf_counter()
            frame = run_detail_experiment(client, colour_items(n), details=("low",), cache_dir=cache,
                                          max_tokens=MAX_TOKENS, progress=True, concurrency=CONCURRENCY)
            wall = time.perf_counter() - started
    exchanges = recorder.snapshot()
    ok = [e for e in exchanges if e.status == 200]
    refused = [e for e in exchanges if e.status == 429]
    other = [e for e in exchanges if e.status not in (200, 429)]
    admitted = _admitted(exchanges)
    tokens = sum(t for _, t in admitted)
    busiest = busiest_window(admitted)
    user_errors = frame["error"].notna().sum()
    service = median([e.finished - e.started for e in ok])
    first = min(e.started for e in exchanges)
    last = max(e.finished for e in exchanges)
    actual = last - first
    ideal = ideal_makespan([t for _, t in sorted(admitted)], service, CONCURRENCY, TPM)
    # Did each retry wait as long as retry-after asked? Pair a 429 with the next try of the same body.
    early, lags = 0, []
    by_body: dict[str, list[Exchange]] = {}
    for e in sorted(exchanges, key=lambda e: e.started):
        by_body.setdefault(e.body_sha, []).append(e)
    for tries in by_body.values():
        for refused_try, next_try in zip(tries, tries[1:]):
            if refused_try.status == 429 and refused_try.retry_after_s is not None:
                gap = next_try.started - refused_try.finished
                lags.append(gap - refused_try.retry_after_s)
                if gap < refused_try.retry_after_s - 0.05:
                    early += 1
    max_retries_used = max((e.retry_count for e in exchanges), default=0)
    section.add(f"**Quota run.** {n} requests ({n * per_request:,} tokens as the quota counts them: prompt + "
                f"max_tokens {MAX_TOKENS}) against tpm={TPM:,} over a {WINDOW_S:.0f}-s sliding window, simulated "
                f"latency {LATENCY_S} s, `run_detail_experiment(concurrency={CONCURRENCY})`, client defaults "
                f"(`max_retries={default_retries}`).")
    section.add()
    section.add("| Measure | Value |")
    section.add("|---|---|")
    section.add(f"| Requests answered 200 / refused 429 (server side) / other | {len(ok)} / {len(refused)} / {len(other)} |")
    section.add(f"| Errors in the result table (what the user sees) | {user_errors} |")
    section.add(f"| Tokens admitted in total | {tokens:,} ({tokens / TPM:.2f} windows of quota) |")
    section.add(f"| Tokens admitted in the busiest 60 s | {busiest:,} = **{busiest / TPM:.1%} of tpm** |")
    section.add(f"| Wall time: actual (first request to last reply) vs ideal client | {actual:.1f} s vs {ideal:.1f} s "
                f"= **{ideal / actual:.1%}** of ideal speed |")
    section.add(f"| Tokens per minute over the run / tpm | {tokens / (actual / 60) / TPM:.1%} (over 100% is possible "
                "in a run shorter than two windows: a sliding window lets the second minute start full) |")
    section.add(f"| Retries that came before retry-after elapsed | {early} of {len(lags)} |")
    if lags:
        section.add(f"| Delay beyond retry-after: median / max | {fmt_s(max(0.0, median(lags)))} / {fmt_s(max(lags))} |")
    section.add(f"| Most retries one request needed (SDK x-stainless-retry-count) | {max_retries_used} |")
    section.add(f"| Experiment wall time (client side) | {wall:.1f} s |")
    section.add()
    section.target("quota used: busiest 60 s >= 90% of tpm", f"{busiest / TPM:.1%}", busiest >= 0.9 * TPM)
    section.target("run time >= 90% of an ideal quota-bound client's speed", f"{ideal / actual:.1%}",
                   ideal / actual >= 0.9)
    section.target("no 429 reaches the user", f"{user_errors} errors in {len(frame)} rows ({len(refused)} 429s retried)",
                   user_errors == 0 and len(frame) == n)
    section.target("retries honour retry-after", f"{early} early of {len(lags)}", early == 0)


def resume_run(section: Section) -> None:
    from vizlab.client import connect
    from vizlab.experiments import ResultCache, run_detail_experiment

    n = 30
    say(f"  kill + resume: a child process runs {n} requests and is SIGKILLed halfway ...")
    recorder, served = recording_backend(api_key=KEY, deployments=("gpt-4o",), latency_s=0.3)
    child_script = Path(__file__).resolve().parent / "_experiment_child.py"
    with served, tempfile.TemporaryDirectory(prefix="vizlab-bench-resume-") as cache:
        log = Path(cache) / "results.jsonl"
        child = subprocess.Popen([sys.executable, str(child_script), served.url, KEY, cache, str(n)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline and child.poll() is None:
                if log.exists() and log.read_bytes().count(b"\n") >= n // 2:
                    break
                time.sleep(0.02)
        finally:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
            _, err = child.communicate(timeout=30)
        killed = child.returncode == -signal.SIGKILL
        time.sleep(0.5)  # let a request the child left in flight finish on the server
        before = len(ResultCache(cache))
        child_requests = len(recorder.snapshot())
        recorder.reset()
        with connect(backend="azure", endpoint=served.url, api_key=KEY, deployment="gpt-4o", verbose=False) as client:
            frame = run_detail_experiment(client, colour_items(n), details=("low",), cache_dir=cache,
                                          max_tokens=MAX_TOKENS, progress=False, concurrency=2)
        rerun_requests = len(recorder.snapshot())
    reused = int(frame["cached"].sum())
    errors = int(frame["error"].notna().sum())
    section.add(f"**Kill and resume.** A child process ran a {n}-request experiment (latency 0.3 s, concurrency 2) and "
                f"was SIGKILLed once {before} results were in its cache (killed by SIGKILL: {killed}). The server saw "
                f"{child_requests} requests from it ({child_requests - before} in flight when it died, their answers lost). The "
                f"rerun sent **{rerun_requests}** requests for the {n - before} missing results and reused {reused} "
                f"cached ones; {errors} errors.")
    if not killed:
        section.add(f"(The child was not killed as planned; its stderr: {err.decode(errors='replace')[-300:]!r})")
    section.target("a killed run resumes sending only what is missing",
                   f"{rerun_requests} sent for {n - before} missing ({before} cached)",
                   killed and rerun_requests == n - before and reused == before and errors == 0 and 0 < before < n)


def run() -> Section:
    section = Section("3. Experiment throughput under a TPM quota")
    started = time.perf_counter()
    quota_run(section)
    resume_run(section)
    section.seconds = time.perf_counter() - started
    return section
