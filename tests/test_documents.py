"""Documents (PDF): file parts, page images, typed errors, estimates, and the built-in backend taking
them over real HTTP (vizlab's client and the official openai SDK). PDFs are made in the test."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import requests
from openai import BadRequestError as SDKBadRequestError
from openai import OpenAI
from PIL import Image

import vizlab
from vizlab.client import Client
from vizlab.document_samples import PageSpec, make_pdf, sample_documents
from vizlab.errors import (
    BadRequestError,
    CorruptDocumentError,
    DocumentBombError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    UnsupportedDocumentError,
    UnsupportedImageError,
)
from vizlab.images.documents import document_text, file_part, page_parts
from vizlab.local import LocalBackend
from vizlab.models.documents import FACTS, auto_detail_for
from vizlab.tokens import estimate_request

KEY = "documents-key"
DOCS = {d.name: d for d in sample_documents()}
INVOICE = DOCS["invoice.pdf"]


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), stream_chunk_delay_s=0) as b:
        yield b


@pytest.fixture(scope="module")
def client(backend: LocalBackend) -> Iterator[Client]:
    with vizlab.connect(backend="azure", endpoint=backend.url, api_key=KEY, env_file=None, verbose=False,
                        max_retries=0) as c:  # fmt: skip
        yield c


@pytest.fixture(scope="module")
def sdk(backend: LocalBackend) -> Iterator[OpenAI]:
    with OpenAI(base_url=backend.url + "/openai/v1", api_key=KEY, max_retries=0) as c:
        yield c


@pytest.fixture
def invoice_path(tmp_path: Path) -> Path:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(INVOICE.data)
    return path


def ask(question: str, part: dict[str, Any]) -> list[dict[str, Any]]:
    text_type = "input_text" if part["type"] == "input_file" else "text"
    return [{"role": "user", "content": [{"type": text_type, "text": question}, part]}]


def encrypted(data: bytes) -> bytes:
    """The same PDF with a Standard security handler whose empty user password does not open it."""
    extra = (b" /Encrypt << /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>"
             b" /ID [<" + b"33" * 16 + b"> <" + b"33" * 16 + b">]")
    return re.sub(rb"trailer\n<< (.*?) >>", lambda m: b"trailer\n<< " + m.group(1) + extra + b" >>", data)


def empty_pdf() -> bytes:
    buf = io.BytesIO()
    pdfium.PdfDocument.new().save(buf)
    return buf.getvalue()


def docx_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


# --- client side: parts ------------------------------------------------------------------------


def test_file_part_chat_and_responses_shapes(invoice_path: Path) -> None:
    chat = file_part(invoice_path)
    assert chat["type"] == "file" and chat["file"]["filename"] == "invoice.pdf"
    assert base64.b64decode(chat["file"]["file_data"].split(",", 1)[1]) == INVOICE.data
    responses = file_part(invoice_path, api="responses", detail="high")
    assert responses == {"type": "input_file", "filename": "invoice.pdf",
                         "file_data": chat["file"]["file_data"], "detail": "high"}  # fmt: skip
    with pytest.raises(ValueError, match="take no 'detail'"):
        file_part(invoice_path, detail="low")


def test_type_comes_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    renamed = tmp_path / "scan.png"
    renamed.write_bytes(INVOICE.data)
    assert file_part(renamed)["file"]["file_data"].startswith("data:application/pdf;base64,")
    with pytest.raises(UnsupportedImageError, match=r"vizlab\.file_part.*vizlab\.page_parts") as info:
        vizlab.image_part(renamed)
    assert "scan.png" in str(info.value) and "PyMuPDF" not in str(info.value)
    upload = {"name": "invoice.txt", "type": "text/plain", "size": len(INVOICE.data), "content": memoryview(INVOICE.data)}
    assert file_part(upload)["file"]["filename"] == "invoice.txt"


@pytest.mark.slow
def test_page_parts_of_three_pages_gives_three_images() -> None:
    report = DOCS["report.pdf"].data
    parts = page_parts(report)
    assert [p["type"] for p in parts] == ["image_url"] * 3
    png = base64.b64decode(parts[0]["image_url"]["url"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (1275, 1650)  # Letter at 150 dpi
    one = page_parts(report, pages=[2], dpi=72, detail="low", api="responses", image_format="JPEG")
    assert len(one) == 1 and one[0]["type"] == "input_image" and one[0]["detail"] == "low"
    assert one[0]["image_url"].startswith("data:image/jpeg;base64,")
    with pytest.raises(ValueError, match="pages 1..3"):
        page_parts(report, pages=[4])


def test_document_info_and_text_layer() -> None:
    info = vizlab.document_info(DOCS["report.pdf"].data)
    assert (info.pages, info.has_text) == (3, (True, True, True))
    assert info.page_sizes_pt[0] == (612.0, 792.0)
    assert vizlab.document_info(DOCS["scanned-receipt.pdf"].data).has_text == (False,)
    assert "Total: 1234.50 EUR" in document_text(INVOICE.data)
    assert "| 1 |" in info._repr_markdown_()
    from vizlab.images.documents import thumbnail

    thumb = thumbnail(DOCS["report.pdf"].data, page=2, max_size=200)
    assert max(thumb.size) == 200 and thumb.size[0] < thumb.size[1]  # a portrait page within 200 px


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (encrypted(INVOICE.data), EncryptedDocumentError, "encrypted"),
        (INVOICE.data[:300], CorruptDocumentError, "truncated or damaged"),
        (empty_pdf(), EmptyDocumentError, "no pages"),
        (make_pdf([PageSpec(size=(14400, 14400))]), DocumentBombError, "bomb"),
        (Image.new("RGB", (4, 4)).tobytes() + b"x", UnsupportedDocumentError, "not a PDF"),
        (docx_bytes(), UnsupportedDocumentError, "DOCX"),
    ],
)
def test_bad_documents_raise_typed_errors_naming_the_file(data: bytes, error: type, words: str, tmp_path: Path) -> None:
    path = tmp_path / "bad-input.pdf"
    path.write_bytes(data)
    with pytest.raises(error, match=words) as info:
        file_part(path)
    assert "bad-input.pdf" in str(info.value) and info.value.source == "bad-input.pdf"


def test_limits_and_provider_rules(invoice_path: Path) -> None:
    with pytest.raises(DocumentTooLargeError) as pages:
        file_part(DOCS["report.pdf"].data, max_pages=2, filename="report.pdf")
    assert (pages.value.what, pages.value.size, pages.value.limit) == ("pages", 3, 2)
    with pytest.raises(DocumentTooLargeError, match="MB") as size:
        file_part(invoice_path, max_bytes=100)
    assert size.value.what == "bytes"
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    with pytest.raises(UnsupportedDocumentError, match=r"image_part"):
        file_part(png.getvalue(), filename="photo.pdf")
    with pytest.raises(UnsupportedDocumentError, match="Azure OpenAI takes PDF") as docx:
        file_part(docx_bytes(), filename="notes.docx", api="responses")
    assert (docx.value.kind, docx.value.provider) == ("docx", "azure")
    text_only = file_part(docx_bytes(), filename="notes.docx", api="responses", provider="openai")
    assert text_only["file_data"].startswith("data:application/vnd.openxmlformats-officedocument.wordprocessingml")


# --- estimates -----------------------------------------------------------------------------------


def test_estimate_counts_text_layer_and_each_page_as_an_image() -> None:
    report = DOCS["report.pdf"].data
    estimate = estimate_request(ask("Sum the Q1 column", file_part(report, filename="report.pdf")), model="gpt-4o")
    (doc,) = estimate.documents
    assert [p.number for p in doc.pages] == [1, 2, 3] and doc.detail_used == "low"  # auto before GPT-5.6
    assert all(p.image_tokens == 85 for p in doc.pages)  # gpt-4o low detail: 85 per image
    assert doc.text_tokens > 100 and estimate.image_tokens == 255
    text = estimate.explain()
    assert "page 3:" in text and "UNVERIFIED" in text and "report.pdf" in text
    high = estimate_request(ask("x", file_part(report, api="responses", detail="high")), model="gpt-4o")
    assert high.documents[0].pages[0].image_tokens == 765  # 1275x1650 -> 768x994 -> 4 tiles


def test_auto_detail_is_high_from_gpt_5_6() -> None:
    assert [auto_detail_for(m) for m in ("gpt-4o", "gpt-4.1", "gpt-5.5", "gpt-5.6", "gpt-5.10", "gpt-6")] == [
        "low", "low", "low", "high", "high", "high"]  # fmt: skip
    assert not FACTS["render_dpi"].verified and "UNVERIFIED" in str(FACTS["azure_chat_file_parts"])
    assert all(f.source and f.checked for f in FACTS.values())


# --- the built-in backend ------------------------------------------------------------------------


def test_chat_and_respond_answer_from_the_pdf_text_and_usage_equals_estimate(client: Client, invoice_path: Path) -> None:
    for api, call in (("chat", client.chat), ("responses", client.respond)):
        messages = ask("What is the invoice total?", file_part(invoice_path, api=api))
        reply = call(messages)
        assert "1234.50 EUR" in reply.text and "INV-1000" in reply.text, reply.text
        assert "page(s) 1 from the text layer" in reply.text
        expected = estimate_request(messages, model=client.token_model).prompt_tokens
        assert reply.usage.prompt_tokens == expected == reply.estimate.prompt_tokens
    # A Chat file part sent through the Responses API goes out as input_file (vizlab.client.responses).
    chat_part = ask("What is the invoice total?", file_part(invoice_path))
    reply = client.respond(chat_part)
    assert "1234.50 EUR" in reply.text and reply.usage.prompt_tokens == reply.estimate.prompt_tokens


def test_conversation_sends_a_pdf_as_a_file_part_and_keeps_it(client: Client, invoice_path: Path, tmp_path: Path) -> None:
    conv = vizlab.Conversation(model=client.token_model)
    conv.add_user("Who is the customer?", [str(invoice_path)])
    part = conv.messages()[0]["content"][1]
    assert part["type"] == "file" and part["file"]["filename"] == "invoice.pdf"
    expected = conv.estimate_next().prompt_tokens
    reply = client.chat(conv)  # appends the reply to conv
    assert "Example Industries" in reply.text
    assert reply.usage.prompt_tokens == expected
    loaded = vizlab.Conversation.load(conv.save(tmp_path / "conv.json"))
    assert loaded.messages() == conv.messages()


def test_corrupt_pdf_gets_a_400_in_azures_shape(backend: LocalBackend, client: Client) -> None:
    broken = base64.b64encode(INVOICE.data[:300]).decode()
    body = {"messages": ask("Read it", {"type": "file", "file": {"filename": "broken.pdf",
                                                               "file_data": f"data:application/pdf;base64,{broken}"}})}  # fmt: skip
    r = requests.post(f"{backend.url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                      json=body, headers={"api-key": KEY}, timeout=30)  # fmt: skip
    assert r.status_code == 400
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert "broken.pdf" in error["message"] and error["param"] == "messages[0].content[1]"
    with pytest.raises(BadRequestError, match="broken.pdf"):
        client.chat(body["messages"])


def test_backend_enforces_page_limit_and_pdf_only(sdk: OpenAI) -> None:
    long = make_pdf([PageSpec(lines=[(72, 720, f"page {i}")]) for i in range(101)])
    with pytest.raises(SDKBadRequestError, match="101 pages; the limit is 100"):
        sdk.chat.completions.create(model="gpt-4o", messages=ask("x", file_part(long, max_pages=None)))  # type: ignore[arg-type]
    docx = base64.b64encode(docx_bytes()).decode()
    with pytest.raises(SDKBadRequestError, match=r"supported format: \.pdf but got \.docx"):
        sdk.responses.create(model="gpt-4o", input=ask("x", {"type": "input_file", "filename": "a.docx",  # type: ignore[arg-type]
                                                               "file_data": f"data:application/pdf;base64,{docx}"}))


@pytest.mark.slow
def test_official_sdk_file_and_input_file_parts(sdk: OpenAI) -> None:
    data_url = "data:application/pdf;base64," + base64.b64encode(DOCS["form.pdf"].data).decode()
    chat = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is the member id?"},
        {"type": "file", "file": {"filename": "form.pdf", "file_data": data_url}},
    ]}])  # fmt: skip
    assert "M-7000" in (chat.choices[0].message.content or "")
    uploaded = sdk.files.create(file=("form.pdf", DOCS["form.pdf"].data, "application/pdf"), purpose="assistants")
    response = sdk.responses.create(model="gpt-4o", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What plan is it?"},
        {"type": "input_file", "file_id": uploaded.id, "detail": "low"},
    ]}])  # fmt: skip
    assert "Annual" in response.output_text and "form.pdf" in response.output_text
    assert response.usage is not None and chat.usage is not None
    assert response.usage.input_tokens > 85  # the page image at low detail plus the text layer
    raw = sdk.responses.with_raw_response.create(model="gpt-4o", input=[{"role": "user", "content": [
        {"type": "input_file", "file_id": uploaded.id}]}])  # fmt: skip
    assert "document_tokens" in raw.headers["x-vizlab-emulated"]
    by_id = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Name?"}, {"type": "file", "file": {"file_id": uploaded.id}}]}])  # fmt: skip
    assert "Ada Lovelace" in (by_id.choices[0].message.content or "")


def test_wrong_part_types_list_the_services_values(sdk: OpenAI) -> None:
    with pytest.raises(SDKBadRequestError, match="'input_text', 'input_image', 'input_file', and 'scoped_content'"):
        sdk.responses.create(model="gpt-4o", input=[{"role": "user", "content": [{"type": "input_pdf", "text": "x"}]}])  # type: ignore[list-item]
    with pytest.raises(SDKBadRequestError, match="'text', 'image_url', 'input_audio', and 'file'"):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [{"type": "pdf", "text": "x"}]}])  # type: ignore[list-item, misc]
    with pytest.raises(SDKBadRequestError, match=r"Unrecognized key in 'messages\[0\].content\[0\].file': 'detail'"):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [  # type: ignore[misc, list-item]
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,", "detail": "high"}}]}])  # fmt: skip
    with pytest.raises(SDKBadRequestError, match="Error while downloading https://example.com/a.pdf"):
        sdk.responses.create(model="gpt-4o", input=ask("x", {"type": "input_file", "file_url": "https://example.com/a.pdf?sig=s"}))  # type: ignore[arg-type]


@pytest.mark.slow
def test_scanned_page_is_read_by_ocr_at_high_detail(sdk: OpenAI) -> None:
    scan = DOCS["scanned-receipt.pdf"].data
    response = sdk.responses.create(model="gpt-4o", input=ask("What is the receipt number?",  # type: ignore[arg-type]
                                                              file_part(scan, api="responses", detail="high")))
    assert "by OCR of the page image at detail high" in response.output_text
    assert "R-1000" in response.output_text


@pytest.mark.slow
def test_calibrate_documents_code_path_on_the_built_in_backend(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    # Offline the backend bills by vizlab's own rule: this proves the probe and the fit, not the rule.
    result = vizlab.calibrate(client, documents=True)
    from vizlab.experiments.document_calibration import PROBE_TEXT

    assert result.text_tokens == vizlab.count_text_tokens(PROBE_TEXT, client.token_model)
    # gpt-4o's tile rule caps the image size, so every dpi from 120 up fits; 72 and 96 are ruled out.
    assert 150 in result.dpi_matches and 72 not in result.dpi_matches and 96 not in result.dpi_matches
    assert result.chat_file_tokens == result.text_tokens + 85  # auto is low before GPT-5.6
    assert "dpis that explain it exactly: 120, 144, 150" in capsys.readouterr().out


@pytest.mark.slow
def test_experiment_arms_text_pages_both_on_generated_documents(client: Client, tmp_path: Path) -> None:
    from vizlab.document_samples import write_samples
    from vizlab.experiments import run_experiment

    folder = tmp_path / "docs"
    write_samples(folder)
    for extra in ("report.pdf", "scanned-receipt.pdf"):  # keep the test quick: invoice and form only
        (folder / extra).unlink()
    labels = folder / "labels.csv"
    labels.write_text("".join(line for line in labels.read_text().splitlines(keepends=True)
                              if "report.pdf" not in line and "scanned-receipt.pdf" not in line))  # fmt: skip
    (folder / "broken.pdf").write_bytes(INVOICE.data[:300])  # a bad file is one failed row per arm
    with labels.open("a", encoding="utf-8") as f:
        f.write("broken-total,broken.pdf,What is the total?,1,broken,contains\n")
    result = run_experiment(client, folder, document=["text", "pages", "both"], details=("low",),
                            cache_dir=tmp_path / "cache", progress=False)  # fmt: skip
    broken = result.table[result.table.item_id == "broken-total"]
    assert len(broken) == 3 and broken.error.str.contains("CorruptDocumentError: broken.pdf").all()
    table = result.table[result.table.item_id != "broken-total"]
    assert sorted(table.strategy.unique()) == ["document:both", "document:pages", "document:text"]
    assert len(table) == 7 * 3 and table.error.isna().all()
    assert (table.prompt_tokens == table.estimated_prompt_tokens).all()  # the bill is the estimate, offline
    both = table[table.strategy == "document:both"]
    assert both.score.min() == 1.0  # the file part's text layer holds every field
    pages = table[table.strategy == "document:pages"]
    assert (pages.images == 1).all() and (pages.image_tokens == 85).all()  # one page at low


@pytest.mark.slow
def test_ocr_runs_only_on_pages_without_text_and_is_capped() -> None:
    from vizlab.document_samples import scanned_page

    pdf = make_pdf([PageSpec(lines=[(72, 720, "Cover page: text layer")]),
                    scanned_page(["FIRST SCAN 111"]), scanned_page(["SECOND SCAN 222"])])  # fmt: skip
    with LocalBackend(api_key=KEY, deployments=("gpt-4o",), ocr_page_cap=1) as backend, \
            OpenAI(base_url=backend.url + "/openai/v1", api_key=KEY, max_retries=0) as sdk:
        response = sdk.responses.create(model="gpt-4o", input=ask("Read it", file_part(pdf, api="responses", detail="high")))  # type: ignore[arg-type]
    text = response.output_text
    assert "page(s) 1 from the text layer" in text and "page(s) 2 by OCR" in text
    assert "page(s) 3 not read (no text layer; OCR is capped at 1 pages" in text
    assert "111" in text and "222" not in text


@pytest.mark.parametrize(("question", "layout"), [
    ("Which column holds the Q2 counts?", True), ("Is the table on page 2 laid out in rows?", True),
    ("Where on the page is the total?", True), ("What is in the top right corner?", True),
    ("Is the signature at the bottom?", True), ("What does the left side say?", True),
    ("Describe the layout of this form.", True), ("What is written in the header?", True),
    ("What is the invoice total?", False), ("Who is the customer?", False),
    ("Summarise this document.", False), ("What is the Q1 count of Region C?", False),
    ("How many pages does the report have?", False), ("Where was the invoice sent?", False),
])  # fmt: skip
def test_layout_questions_are_told_apart(question: str, layout: bool) -> None:
    from vizlab.local.replies.document_answers import needs_layout

    assert needs_layout(question) is layout


@pytest.mark.slow
def test_layout_question_ocrs_the_page_and_a_plain_question_does_not(sdk: OpenAI) -> None:
    part = file_part(INVOICE.data, api="responses", detail="high")
    plain = sdk.responses.create(model="gpt-4o", input=ask("What is the invoice total?", part)).output_text  # type: ignore[arg-type]
    assert "page(s) 1 from the text layer" in plain and "OCR" not in plain and "1234.50 EUR" in plain
    where = sdk.responses.create(model="gpt-4o", input=ask("Where on the page is the total, top or bottom?", part)).output_text  # type: ignore[arg-type]
    assert "page(s) 1 from the text layer" in where, where
    assert "page(s) 1 by OCR of the page image at detail high (the question asks about layout)" in where
    assert "Layout of page 1 (OCR, by thirds of the page): top left: INVOICE" in where


@pytest.mark.slow
def test_a_100_page_pdf_is_read_from_its_text_layer_and_layout_ocr_is_capped(sdk: OpenAI) -> None:
    pdf = make_pdf([PageSpec(lines=[(72, 720, f"Page {n} heading"), (400, 100, f"footnote {n}")]) for n in range(1, 101)])
    chat = sdk.chat.completions.create(model="gpt-4o", messages=ask("What does the heading say?", file_part(pdf)))  # type: ignore[arg-type, misc]
    text = chat.choices[0].message.content or ""
    assert "(100 page(s)), I read page(s) 1-100 from the text layer." in text and "OCR" not in text
    chat = sdk.chat.completions.create(model="gpt-4o", messages=ask("Where on page 7 is the footnote?", file_part(pdf)))  # type: ignore[arg-type, misc]
    text = chat.choices[0].message.content or ""  # the cap (5 pages) spent on page 7 first, then 1-4
    assert "page(s) 1-4, 7 by OCR of the page image at detail low (the question asks about layout)" in text, text
    assert "page(s) 5-6, 8-100 from the text layer only (OCR for layout is capped at 5 pages per request)" in text
    assert "Layout of page 7" in text and "Layout of page 8 " not in text


def test_file_id_needs_purpose_assistants(sdk: OpenAI) -> None:
    batch_file = sdk.files.create(file=("invoice.pdf", INVOICE.data, "application/pdf"), purpose="batch")
    with pytest.raises(SDKBadRequestError, match="upload documents with purpose 'assistants'"):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
            {"type": "file", "file": {"file_id": batch_file.id}}]}])  # fmt: skip


def test_load_items_per_page_gives_one_item_per_pdf_page(tmp_path: Path) -> None:
    """A folder of PDFs with labels, unit="page": one row per page, the page in the id and meta."""
    from vizlab.document_samples import write_samples
    from vizlab.experiments import load_items
    from vizlab.images.documents import document_info

    folder = tmp_path / "docs"
    write_samples(folder)
    (folder / "broken.pdf").write_bytes(INVOICE.data[:300])
    with (folder / "labels.csv").open("a", encoding="utf-8") as f:
        f.write("broken-total,broken.pdf,What is the total?,1,broken,contains\n")
    per_doc = load_items(folder)
    per_page = load_items(folder, unit="page")
    assert len(per_doc) == 12 + 1 and not per_doc.problems  # a PDF is checked when its arm is built
    report = [i for i in per_page if i.meta.get("document") == "report.pdf"]
    assert len(report) == 3 * 3  # three labelled fields x three pages
    assert {i.meta["page"] for i in report} == {1, 2, 3} and all(i.meta["pages"] == 3 for i in report)
    assert "report-title-p2" in {i.id for i in report}
    page2 = next(i for i in report if i.id == "report-region_c_q1-p1")
    assert document_info(page2.image).pages == 1 and "Region C" in document_text(page2.image)
    assert len(per_page) == 12 - 3 + 9 and [p.image for p in per_page.problems] == ["broken.pdf"]
    assert "CorruptDocumentError" not in str(per_page.problems[0]) and "broken.pdf" in str(per_page.problems[0])


def test_labels_page_column_names_one_page(tmp_path: Path) -> None:
    from vizlab.document_samples import write_samples
    from vizlab.experiments import load_items

    folder = tmp_path / "docs"
    write_samples(folder)
    (folder / "pages.csv").write_text("id,image,question,expected,page\nc,report.pdf,Q1 of Region C?,134,1\n"
                                      "gone,report.pdf,What?,x,9\n", encoding="utf-8")  # fmt: skip
    items = load_items(folder, labels=folder / "pages.csv", unit="page")
    assert [(i.id, i.meta["page"]) for i in items] == [("c-p1", 1)]
    assert len(items.problems) == 1 and "page 9 does not exist: the PDF has pages 1..3" in str(items.problems[0])
    with pytest.raises(ValueError, match="unit 'pages' is not one of 'document', 'page'"):
        load_items(folder, unit="pages")


@pytest.mark.slow
def test_per_page_rows_run_through_the_document_arms(client: Client, tmp_path: Path) -> None:
    from vizlab.document_samples import write_samples
    from vizlab.experiments import load_items, run_experiment

    folder = tmp_path / "docs"
    write_samples(folder)
    (folder / "pages.csv").write_text("id,image,question,expected,scorer\nreport,report.pdf,What is the report's "
                                      "title?,Quarterly sample counts,contains\n", encoding="utf-8")  # fmt: skip
    items = load_items(folder, labels=folder / "pages.csv", unit="page")
    result = run_experiment(client, items, document=["text", "pages"], details=("low",),
                            cache_dir=tmp_path / "cache", progress=False)  # fmt: skip
    table = result.table
    assert sorted(table.item_id.unique()) == ["report-p1", "report-p2", "report-p3"] and len(table) == 6
    assert table.error.isna().all() and (table.prompt_tokens == table.estimated_prompt_tokens).all()
    assert (table[table.strategy == "document:pages"].images == 1).all()  # one page per row
    summary = result.summary()  # scored per page, with intervals, like any item set (no arm asserted to win)
    assert len(summary) == 2 and table.score.notna().all()
