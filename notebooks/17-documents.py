# %% [markdown]
# # 17 · Documents: PDFs as the service takes them, pages as images, and the bill
#
# Vision deployments take PDFs directly: a Chat Completions `file` part, or an `input_file` on
# the Responses API. The service puts two things into the model's context: the **text layer**
# it extracts, and an **image of each page**. This notebook sends a PDF both ways, reads the
# bill page by page, sends chosen pages as images instead, and measures on a generated set
# whether the page images are worth paying for: text alone, pages alone, or both.
#
# **What you will learn**
#
# 1. `vizlab.file_part` (the service's own part) and `vizlab.page_parts` (pages rendered here).
# 2. How a PDF is billed: text-layer tokens plus each page as an image, and which parts of that
#    rule are documented and which are vizlab's assumption (marked UNVERIFIED).
# 3. What goes wrong with real PDFs (encrypted, truncated, a PDF renamed `.png`, a DOCX on Azure),
#    and the errors that say what to do.
# 4. The text / pages / both comparison, and how to run the same cells on Azure.
#
# Everything runs offline on the built-in backend; its answers come from vizlab's local analyst
# (text layer + OCR), not from GPT-4o, and say so.

# %%
import tempfile
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

import vizlab
from vizlab.document_samples import write_samples
from vizlab.errors import DocumentError, UnsupportedImageError
from vizlab.images.documents import load_pdf
from vizlab.images.pdf import render_page
from vizlab.models import documents as document_facts
from vizlab.tokens import estimate_request

pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 70)

folder = Path(tempfile.mkdtemp(prefix="vizlab-17-"))
paths = {p.name: p for p in write_samples(folder)}
client = vizlab.connect()
print(sorted(paths))

# %% [markdown]
# ## 1. The example set
#
# Four PDFs made by code, so every field is known: an invoice, a membership form, a three-page
# table report, and a **scanned** receipt: a page that is only a picture, with no text layer.
# `vizlab.document_info` reads the pages, their size and whether each has a text layer.

# %%
pd.DataFrame([
    {"file": name, "pages": info.pages, "bytes": info.nbytes, "page size (pt)": info.page_sizes_pt[0],
     "text layer": ", ".join("yes" if t else "no" for t in info.has_text)}
    for name, info in ((name, vizlab.document_info(path)) for name, path in paths.items() if name.endswith(".pdf"))
])

# %% [markdown]
# ## 2. Send a PDF the way the service takes it
#
# `vizlab.file_part(path)` reads the bytes, checks they are a PDF (by the bytes, not the name),
# checks Azure's limits and builds the part with a base64 data URL. The same call with
# `api="responses"` builds the Responses API's `input_file`, which also takes `detail`.

# %%
question = "What is the invoice total?"
part = vizlab.file_part(paths["invoice.pdf"])
print({**part, "file": {**part["file"], "file_data": part["file"]["file_data"][:40] + "..."}})
reply = client.chat([{"role": "user", "content": [{"type": "text", "text": question}, part]}])
print(reply.text)
print("reported:", reply.usage.prompt_tokens, "prompt tokens; estimated:", reply.estimate.prompt_tokens)

# %%
messages = [{"role": "user", "content": [{"type": "input_text", "text": question},
                                         vizlab.file_part(paths["invoice.pdf"], api="responses", detail="high")]}]
reply = client.respond(messages)
print(reply.text)
print("reported:", reply.usage.prompt_tokens, "prompt tokens; estimated:", reply.estimate.prompt_tokens)

# %% [markdown]
# ## 3. Read the bill
#
# `estimate_request` counts a document part as the text layer's tokens plus **each page as one
# image** by the model's image rule. The guides say the model gets both; they do not say at what
# resolution pages are rendered, nor how the text is wrapped. vizlab assumes 150 dpi and plain
# text, and says UNVERIFIED on every page line until `vizlab.calibrate(client, documents=True)`
# has measured a live deployment. (Offline, the backend bills by the same assumption, so
# offline equality of usage and estimate is no evidence.)

# %%
report = vizlab.file_part(paths["report.pdf"])
print(estimate_request([{"role": "user", "content": [report]}], model="gpt-4o").explain())

# %% [markdown]
# The `detail` of an `input_file` picks the page images' detail; `auto` means `high` on GPT-5.6
# and later and `low` before (openai SDK reference for `input_file.detail`). Chat `file` parts
# take no detail. The same three pages, per model and detail:

# %%
rows = []
for model in ("gpt-4o", "gpt-4.1-mini", "gpt-5.6"):
    for detail in ("low", "high", "auto"):
        part = vizlab.file_part(paths["report.pdf"], api="responses", detail=detail)
        doc = estimate_request([{"role": "user", "content": [part]}], model=model).documents[0]
        rows.append({"model": model, "detail": detail, "used": doc.detail_used, "text tokens": doc.text_tokens,
                     "page image tokens": doc.image_tokens, "per page": doc.pages[0].image_tokens})
pd.DataFrame(rows)

# %% [markdown]
# Which facts are documented, with their sources; the UNVERIFIED ones are vizlab's assumptions:

# %%
pd.DataFrame(document_facts.facts_table())[["fact", "value", "verified", "checked"]]

# %% [markdown]
# ## 4. Pages as images, at a detail you choose
#
# `vizlab.page_parts` renders chosen pages here (with pypdfium2) and returns ordinary image parts:
# crop them, choose the dpi, send page 2 only at `high`. This is also how you send a PDF to a
# deployment that does not take `file` parts.

# %%
pages = vizlab.page_parts(paths["report.pdf"], pages=[1, 2], dpi=150, detail="high")
estimate = estimate_request([{"role": "user", "content": [{"type": "text", "text": "Sum Q1"}, *pages]}], model="gpt-4o")
print(len(pages), "image parts;", estimate.image_tokens, "image tokens at high")

thumbs = Figure(figsize=(10, 3.6), layout="constrained")
for ax, name in zip(thumbs.subplots(1, 4), ("invoice.pdf", "form.pdf", "report.pdf", "scanned-receipt.pdf")):
    data, pdf = load_pdf(paths[name])
    ax.imshow(render_page(data, name, 1, dpi=40))
    ax.set_title(f"{name}\n{len(pdf.pages)} page(s)", fontsize=8)
    ax.set_axis_off()
thumbs

# %% [markdown]
# ## 5. When the PDF is the problem
#
# Each error names the file and what to do; a bad file in a folder becomes one failed row,
# not the end of the run.

# %%
broken = folder / "broken.pdf"
broken.write_bytes(paths["invoice.pdf"].read_bytes()[:300])
renamed = folder / "scan.png"
renamed.write_bytes(paths["invoice.pdf"].read_bytes())
for attempt in (lambda: vizlab.file_part(broken), lambda: vizlab.image_part(renamed),
                lambda: vizlab.file_part(paths["report.pdf"], max_pages=2)):
    try:
        attempt()
    except (DocumentError, UnsupportedImageError) as e:
        print(f"{type(e).__name__}: {e}\n")

# %% [markdown]
# ## 6. Text, pages, or both?
#
# The decision people build by hand: send the extracted text alone (cheapest), the page images
# alone (what a scan needs), or the file part (both, as the service takes it).
# `run_experiment(..., document=[...])` sends every field question of the generated set in each
# arm and scores the answers against the known fields.
#
# These are **the local analyst's** results, not GPT-4o's: it reads text layers exactly, reads
# page images by OCR (poorly at `low`), and answers nothing from text pasted into a prompt (it is
# a vision analyst), so its `text` arm scores 0 by construction. Run the same cell on Azure for
# the real answer; do not read a winner into the offline table.

# %%
# NBVAL_IGNORE_OUTPUT
from vizlab.experiments import run_experiment

result = run_experiment(client, folder, document=["text", "pages", "both"], details=("low", "high"),
                        cache_dir=Path(".vizlab-cache") / "17-documents", progress=False)

# %%
table = result.table
summary = table.groupby(["strategy", "detail"]).agg(
    score=("score", "mean"), prompt_tokens=("prompt_tokens", "mean"), cost_usd=("cost", "sum"), rows=("item_id", "size"))
summary["answered by"] = table["model"].iloc[0]
summary.round(4)

# %% [markdown]
# ## 7. The same cells on Azure
#
# Point the notebook at your deployment (a vision model, with the Responses API) and rerun it:
#
# ```bash
# export AZURE_OPENAI_ENDPOINT=https://<resource>.openai.azure.com
# export AZURE_OPENAI_API_KEY=...            # or sign in with `az login`
# export AZURE_OPENAI_DEPLOYMENT=gpt-4o
# ```
#
# What to expect there: Azure documents PDFs through the Responses API (`input_file`, uploads
# with purpose `assistants`, 100 pages and 32 MB); `file_url` fails with "Error while
# downloading"; whether its Chat Completions takes `file` parts is UNVERIFIED (try section 2 and
# see). Before trusting the per-page estimates, measure how your deployment bills a page:
#
# ```python
# probe = vizlab.calibrate(client, documents=True)   # 5 small requests
# print(probe.explain())                              # dpi_matches: the render resolutions that fit
# ```
#
# On the built-in backend the probe only proves the code path (it bills by vizlab's own rule):

# %%
# NBVAL_IGNORE_OUTPUT
probe = vizlab.calibrate(client, documents=True)
