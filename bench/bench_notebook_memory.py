"""Benchmark 11: memory of eight open tutorial notebooks, each run, with the shared backend (issue 26).

    python bench/bench_notebook_memory.py     # or: bench/run.py --only 11

A workshop laptop keeps one kernel per open notebook. This starts 8 kernels (jupyter_client),
runs every code cell of notebooks 01-08 in its own kernel, as Run All does, and keeps them all
alive; then it sums the resident memory (RSS) of the kernels, their child processes and the
shared built-in backend (the default: not ``VIZLAB_BACKEND=inprocess``), recorded in a
temporary ``VIZLAB_STATE_DIR`` and stopped at the end. RSS counts shared library pages once per
process, so the sum overstates what the machine loses; PSS (shared pages split) is shown beside it.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Section, say

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[1-8]-*.ipynb"))
TARGET_MB = 1536  # issue 26: "at most 1.5 GB of RSS", read as 1.5 GiB
CELL_TIMEOUT_S = 900
SERVICE_VARS = ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT", "OPENAI_API_KEY",
                "OPENAI_BASE_URL", "VIZLAB_BACKEND")  # fmt: skip


def _memory(pid: int, skip: frozenset[int] = frozenset()) -> tuple[int, int]:
    """(RSS, PSS) bytes of ``pid`` and its descendants but ``skip`` and theirs (the shared backend,
    which the first kernel starts, is counted once, on its own); PSS 0 where it cannot be read."""
    try:
        import psutil
    except ImportError:  # /proc alone: RSS from statm, PSS from smaps_rollup
        return _proc_memory(pid)
    try:
        proc = psutil.Process(pid)
        skipped = {q.pid for s in skip if psutil.pid_exists(s) for q in [psutil.Process(s), *psutil.Process(s).children(recursive=True)]}
        procs = [p for p in [proc, *proc.children(recursive=True)] if p.pid not in skipped]
    except psutil.NoSuchProcess:
        return 0, 0
    rss = pss = 0
    for p in procs:
        try:
            rss += p.memory_info().rss
            pss += getattr(p.memory_full_info(), "pss", 0)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rss, pss


def _proc_memory(pid: int) -> tuple[int, int]:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        rss = pages * os.sysconf("SC_PAGE_SIZE")
        pss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
        return rss, pss
    except (OSError, ValueError, IndexError):
        return 0, 0


def _code_cells(path: Path) -> list[str]:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def _run_cell(kc: Any, code: str) -> str:
    """Run ``code``; '' when it ran, else the error's name and value."""
    msg_id = kc.execute(code, store_history=True, allow_stdin=False)
    deadline = time.monotonic() + CELL_TIMEOUT_S
    error = ""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
        except queue.Empty:
            return f"timed out after {CELL_TIMEOUT_S} s"
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "error":
            error = f"{content.get('ename')}: {content.get('evalue')}"[:200]
        elif kind == "status" and content.get("execution_state") == "idle":
            return error


def _backend_pids(state: Path) -> list[int]:
    import json

    pids = []
    for f in state.rglob("*.json"):
        try:
            pid = json.loads(f.read_text()).get("pid")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(pid, int):
            pids.append(pid)
    return sorted(set(pids))


def measure(notebooks: list[Path] = NOTEBOOKS) -> dict[str, Any]:
    """Run each notebook in its own kernel, all kept open; the memory figures."""
    from jupyter_client.manager import KernelManager

    work = Path(tempfile.mkdtemp(prefix="vizlab-nbmem-"))
    state = work / "state"
    state.mkdir()
    folder = work / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder)  # the notebooks write files beside themselves
    # Figures as in JupyterLab: no MPLBACKEND, so ipykernel picks the inline backend, which shows
    # each cell's figures and closes them (agg would keep every figure pyplot ever opened).
    env = {k: v for k, v in os.environ.items() if k not in (*SERVICE_VARS, "MPLBACKEND")}
    env.update(VIZLAB_STATE_DIR=str(state), PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    managers: list[tuple[str, Any, Any]] = []
    rows: list[dict[str, Any]] = []
    try:
        for path in notebooks:
            km = KernelManager(kernel_name="python3")
            km.start_kernel(cwd=str(folder), env=env)
            kc = km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=120)
            managers.append((path.name, km, kc))
            started = time.perf_counter()
            cells = _code_cells(path)
            errors = [f"cell {i + 1}: {e}" for i, code in enumerate(cells) if (e := _run_cell(kc, code))]
            pid = km.provisioner.process.pid
            rss, pss = _memory(pid, frozenset(_backend_pids(state)))
            rows.append({"notebook": path.name, "pid": pid, "cells": len(cells), "errors": errors,
                         "seconds": time.perf_counter() - started, "rss_after_own_run": rss})  # fmt: skip
            say(f"  {path.name}: {len(cells)} cells in {rows[-1]['seconds']:.0f} s, {len(errors)} errors, "
                f"RSS {rss / 2**20:.0f} MiB")  # fmt: skip
        time.sleep(2)  # let the backend settle its last request
        backend_pids = frozenset(_backend_pids(state))
        for row in rows:  # all open: the figures the target is about
            row["rss"], row["pss"] = _memory(row["pid"], backend_pids)
        backends = [(pid, *_memory(pid)) for pid in _backend_pids(state)]
    finally:
        for _name, km, kc in managers:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        _stop_backends(state)
        shutil.rmtree(work, ignore_errors=True)
    return {"kernels": rows, "backends": backends}


def _stop_backends(state: Path) -> None:
    import signal

    for pid in _backend_pids(state):  # the shared backends this run started, by their recorded pid
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue


def run() -> Section:
    section = Section("11. Eight open tutorial notebooks: kernels plus the shared backend")
    say(f"  8 kernels, notebooks {NOTEBOOKS[0].name} .. {NOTEBOOKS[-1].name}, shared backend (load {os.getloadavg()[0]:.1f})")
    result = measure()
    kernels, backends = result["kernels"], result["backends"]
    mib = 2**20
    kernel_rss = sum(k["rss"] for k in kernels)
    backend_rss = sum(b[1] for b in backends)
    total = kernel_rss + backend_rss
    total_pss = sum(k["pss"] for k in kernels) + sum(b[2] for b in backends)
    section.add("| notebook | code cells | errors | run (s) | RSS (MiB) | PSS (MiB) |")
    section.add("|---|---|---|---|---|---|")
    for k in kernels:
        section.add(f"| {k['notebook']} | {k['cells']} | {len(k['errors'])} | {k['seconds']:.0f} | "
                    f"{k['rss'] / mib:.0f} | {k['pss'] / mib:.0f} |")  # fmt: skip
    for pid, rss, pss in backends:
        section.add(f"| shared backend (pid {pid}) | | | | {rss / mib:.0f} | {pss / mib:.0f} |")
    section.add(f"| **total** | | | | **{total / mib:.0f}** | {total_pss / mib:.0f} |")
    for k in kernels:
        for e in k["errors"]:
            section.add(f"- {k['notebook']} {e}")
    errors = sum(len(k["errors"]) for k in kernels)
    section.target("every code cell of the 8 notebooks runs", f"{errors} cells raised", errors == 0)
    section.target("8 open notebooks after Run All, shared backend included: RSS <= 1.5 GiB",
                   f"{total / mib:,.0f} MiB RSS ({kernel_rss / mib / max(1, len(kernels)):.0f} MiB a kernel, backend "
                   f"{backend_rss / mib:.0f} MiB; PSS {total_pss / mib:,.0f} MiB)", total <= TARGET_MB * mib)  # fmt: skip
    return section


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    started = time.perf_counter()
    sec = run()
    print("\n".join(sec.lines))
    print(f"({time.perf_counter() - started:.0f} s)")
