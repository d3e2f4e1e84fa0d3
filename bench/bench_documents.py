"""Benchmark 8: PDF pages rendered per second: pypdfium2 (what vizlab.page_parts uses) vs pdftoppm.

Inputs: distinct generated PDFs (vizlab.document_samples with a different seed each, so no
document is rendered twice by the same renderer): a 3-page table report (text) and a scanned
page (a JPEG image) per seed. Each document is rendered at 150 dpi to PNG by both, interleaved
document by document. pypdfium2 runs in this process; pdftoppm (Debian poppler-utils) is a
separate program, so its figure includes starting it once per document: that is how a notebook
would call it. PyMuPDF is not measured: it is AGPL and not installed here.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Section, fmt_s, median, say

DPI = 150
SEEDS = 8  # 8 x (3 + 1) = 32 pages per renderer


def _documents() -> list[tuple[str, bytes, int]]:
    from vizlab.document_samples import sample_documents

    out = []
    for seed in range(SEEDS):
        docs = {d.name: d for d in sample_documents(seed=100 + seed)}
        for name in ("report.pdf", "scanned-receipt.pdf"):
            out.append((f"{seed}-{name}", docs[name].data, docs[name].pages))
    return out


def _pypdfium2(data: bytes, name: str, pages: int) -> tuple[float, float]:
    """(render + PNG encode, render only) seconds for all pages of one document."""
    from vizlab.images.pdf import render_page

    render = encode = 0.0
    for number in range(1, pages + 1):
        started = time.perf_counter()
        image = render_page(data, name, number, dpi=DPI)
        rendered = time.perf_counter()
        image.save(io.BytesIO(), "PNG")
        render, encode = render + rendered - started, encode + time.perf_counter() - rendered
    return render + encode, render


def _pdftoppm(exe: str, data: bytes, folder: Path, name: str) -> float:
    src = folder / name
    src.write_bytes(data)
    started = time.perf_counter()
    subprocess.run([exe, "-r", str(DPI), "-png", str(src), str(folder / f"out-{name}")], check=True, capture_output=True)
    return time.perf_counter() - started


def run() -> Section:
    section = Section("8. PDF pages rendered")
    docs = _documents()
    total_pages = sum(p for _, _, p in docs)
    exe = shutil.which("pdftoppm")
    say(f"  rendering {len(docs)} distinct PDFs ({total_pages} pages) at {DPI} dpi to PNG with pypdfium2"
        + (" and pdftoppm, interleaved ..." if exe else "; pdftoppm not installed ..."))
    ours: list[float] = []
    render_only: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="vizlab-bench-pdf-") as tmp:
        for name, data, pages in docs:
            total, render = _pypdfium2(data, name, pages)
            ours.append(total / pages)
            render_only.append(render / pages)
            if exe:
                theirs.append(_pdftoppm(exe, data, Path(tmp), name) / pages)
    ours_pps = 1 / median(ours)
    section.add(f"{total_pages} pages in {len(docs)} distinct documents (3-page text reports and 1-page scans), "
                f"{DPI} dpi, PNG out; median per page.")
    section.add("")
    section.add("| renderer | median per page | pages per second |")
    section.add("|---|---:|---:|")
    section.add(f"| pypdfium2 (in process, + Pillow PNG encode) | {fmt_s(median(ours))} | {ours_pps:.1f} |")
    section.add(f"| pypdfium2 render only (no encode) | {fmt_s(median(render_only))} | {1 / median(render_only):.1f} |")
    if theirs:
        theirs_pps = 1 / median(theirs)
        section.add(f"| pdftoppm (poppler, a process per document) | {fmt_s(median(theirs))} | {theirs_pps:.1f} |")
        section.target("pypdfium2 renders at least as many pages/s as pdftoppm", f"{ours_pps:.1f} vs {theirs_pps:.1f} "
                       f"pages/s ({ours_pps / theirs_pps:.2f}x)", ours_pps >= theirs_pps)
    else:
        section.add("| pdftoppm | not installed (`apt-get install poppler-utils`) | - |")
        section.target("pages per second, pypdfium2", f"{ours_pps:.1f} pages/s (no baseline here)", None)
    return section


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    result = run()
    print("\n".join(result.lines))
