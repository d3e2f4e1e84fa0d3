"""PDFs made by code, with known fields: an invoice, a form, a table-heavy report, a scanned page.

:func:`make_pdf` writes a small valid PDF by hand (Helvetica text, optional JPEG images), so the
tests and the notebook need no PDF writer package and every field is known. A "scanned" page is
a JPEG of rendered text with no text layer: what OCR is for. :func:`sample_documents` returns
the example set with the fields a scorer checks.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

__all__ = ["PageSpec", "SampleDocument", "make_pdf", "sample_documents", "scanned_page", "write_samples"]

LETTER = (612.0, 792.0)  # points (8.5 x 11 in)


@dataclass
class PageSpec:
    """One page: lines of text at (x, y) in points from the bottom left, and JPEG images."""

    lines: list[tuple[float, float, str]] = field(default_factory=list)
    images: list[tuple[float, float, float, float, bytes]] = field(default_factory=list)  # x, y, w, h, jpeg
    size: tuple[float, float] = LETTER
    font_size: float = 12.0


@dataclass
class SampleDocument:
    """A generated PDF and the fields it holds (what a scorer compares an answer to)."""

    name: str
    kind: str
    data: bytes
    fields: dict[str, str]
    pages: int
    text_layer: bool


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _jpeg_size(jpeg: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(jpeg)) as im:
        return im.size


def _page_objects(page: PageSpec, first: int) -> tuple[list[bytes], int]:
    """The content stream, image XObjects and page object of one page (object numbers from ``first``)."""
    ops = [f"BT /F1 {page.font_size:g} Tf {x:g} {y:g} Td ({_escape(t)}) Tj ET" for x, y, t in page.lines]
    xobjects, bodies = [], []
    for k, (x, y, w, h, jpeg) in enumerate(page.images):
        num = first + 2 + k
        width, height = _jpeg_size(jpeg)
        head = (f"<< /Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceRGB "
                f"/BitsPerComponent 8 /Filter /DCTDecode /Length {len(jpeg)} >>\nstream\n").encode()
        bodies.append(head + jpeg + b"\nendstream")
        xobjects.append(f"/Im{k} {num} 0 R")
        ops.append(f"q {w:g} 0 0 {h:g} {x:g} {y:g} cm /Im{k} Do Q")
    stream = "\n".join(ops).encode("latin-1", "replace")
    content = f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
    resources = "/Font << /F1 1 0 R >>" + (f" /XObject << {' '.join(xobjects)} >>" if xobjects else "")
    page_obj = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page.size[0]:g} {page.size[1]:g}] "
                f"/Resources << {resources} >> /Contents {first + 1} 0 R >>").encode()
    return [page_obj, content, *bodies], first + 2 + len(page.images)


def make_pdf(pages: Sequence[PageSpec], *, title: str = "vizlab sample") -> bytes:
    """A valid PDF 1.4 of ``pages`` (object 1 the font, 2 the page tree, 3 the catalog).

    >>> make_pdf([PageSpec(lines=[(72, 720, "Hello")])]).startswith(b"%PDF-1.4")
    True
    """
    objects: list[bytes] = [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", b"", b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids, number = [], 4
    for page in pages:
        objs, after = _page_objects(page, number)
        kids.append(f"{number} 0 R")
        objects += objs
        number = after
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    objects.append(f"<< /Title ({_escape(title)}) >>".encode())
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    out.write("".join(f"{o:010d} 00000 n \n" for o in offsets).encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 3 0 R /Info {len(objects)} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:  # DejaVu ships with matplotlib: a real font offline
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def scanned_page(lines: Sequence[str], *, dpi: int = 150, size: tuple[float, float] = LETTER) -> PageSpec:
    """A page that is only a JPEG of ``lines`` (no text layer), as a scanner makes it."""
    w, h = round(size[0] / 72 * dpi), round(size[1] / 72 * dpi)
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    font = _font(round(dpi * 0.25))
    for i, line in enumerate(lines):
        draw.text((dpi, dpi + i * round(dpi * 0.45)), line, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return PageSpec(images=[(0, 0, size[0], size[1], buf.getvalue())], size=size)


def _text_page(lines: Sequence[str], *, top: float = 720, step: float = 18, x: float = 72) -> PageSpec:
    return PageSpec(lines=[(x, top - i * step, line) for i, line in enumerate(lines)])


def sample_documents(seed: int = 0) -> list[SampleDocument]:
    """The example set: invoice, form, table-heavy report (3 pages), scanned receipt (no text layer).

    ``seed`` varies the numbers so a set can be made fresh (benchmarks need inputs that never repeat).
    """
    n = 1000 + seed
    invoice_fields = {"invoice_number": f"INV-{n}", "date": "2026-11-30", "total": f"{1234 + seed}.50 EUR",
                      "customer": "Example Industries"}
    invoice = _text_page([
        "INVOICE", f"Invoice number: {invoice_fields['invoice_number']}", f"Date: {invoice_fields['date']}",
        f"Customer: {invoice_fields['customer']}", "Item: Microscope slides x 40", f"Total: {invoice_fields['total']}",
    ])
    form_fields = {"name": "Ada Lovelace", "member_id": f"M-{n * 7}", "plan": "Annual"}
    form = _text_page(["MEMBERSHIP FORM", f"Name: {form_fields['name']}", f"Member ID: {form_fields['member_id']}",
                       f"Plan: {form_fields['plan']}", "Signature: ____________"])
    rows = [(f"Region {chr(65 + r)}", 100 + 17 * r + seed, 80 + 11 * r) for r in range(30)]
    report_fields = {"title": "Quarterly sample counts", "region_c_q1": str(rows[2][1]), "pages": "3"}
    report_pages = []
    for p in range(3):
        lines = [f"{report_fields['title']} (page {p + 1} of 3)", "Region      Q1     Q2"]
        lines += [f"{name:<12}{q1:>5}  {q2:>5}" for name, q1, q2 in rows[p * 10 : p * 10 + 10]]
        report_pages.append(_text_page(lines))
    scan_fields = {"receipt": f"R-{n}", "amount": f"{42 + seed}.00"}
    scan = scanned_page(["RECEIPT", f"Receipt {scan_fields['receipt']}", f"Amount {scan_fields['amount']}"])
    return [
        SampleDocument("invoice.pdf", "invoice", make_pdf([invoice]), invoice_fields, 1, True),
        SampleDocument("form.pdf", "form", make_pdf([form]), form_fields, 1, True),
        SampleDocument("report.pdf", "table-heavy report", make_pdf(report_pages), report_fields, 3, True),
        SampleDocument("scanned-receipt.pdf", "scanned page", make_pdf([scan]), scan_fields, 1, False),
    ]


QUESTIONS = {
    "invoice_number": "What is the invoice number?", "date": "What is the invoice date?",
    "total": "What is the invoice total?", "customer": "Who is the customer?", "name": "What name is on the form?",
    "member_id": "What is the member ID?", "plan": "Which plan is chosen?", "title": "What is the report's title?",
    "region_c_q1": "What is the Q1 count of Region C?", "pages": "How many pages does the report have?",
    "receipt": "What is the receipt number?", "amount": "What is the receipt amount?",
}


def write_samples(folder: str | Path, seed: int = 0) -> list[Path]:
    """Write :func:`sample_documents` into ``folder`` (created) with a ``labels.csv`` that
    ``vizlab.experiments.run_experiment`` reads: one row per known field (image, question, expected,
    category, id), scored with ``contains``."""
    import csv

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    with (target / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "image", "question", "expected", "category", "scorer"])
        for doc in sample_documents(seed):
            path = target / doc.name
            path.write_bytes(doc.data)
            paths.append(path)
            for key, value in doc.fields.items():
                writer.writerow([f"{path.stem}-{key}", doc.name, QUESTIONS[key], value, doc.kind, "contains"])
    return paths
