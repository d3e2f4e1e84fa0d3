"""What each core-path exercise costs one attendee on a real deployment, from vizlab's registry.

Run ``python docs/cost_table.py`` to print the Markdown tables that docs/facilitator.md carries
between its ``cost-table`` and ``tpm-table`` markers; tests/test_coverage_table.py fails when the page and this
script disagree, so a price change in vizlab.models shows up as a failing test, not a stale page.

The requests are those the core notebooks send (counted from the notebooks, image sizes as
they make them); prompt tokens come from ``vizlab.estimate_request`` on the same shapes, the
number the built-in backend reports and Azure bills to within a few tokens. Completion tokens
are an assumption, ``ANSWER_TOKENS`` per answer: a real model's description is longer than the
built-in analyst's. No prompt caching is counted (a best case would be cheaper, never dearer).
"""

from __future__ import annotations

from PIL import Image

import vizlab
from vizlab.models import lookup

ANSWER_TOKENS = 250
# Models a room can deploy in December 2026 (issue 19), each listed GA on Azure's retirement table
# (ms.date 2026-09-02; vizlab.models.versions): gpt-5.6-luna (the built-in backend's default), gpt-5.5, the
# gpt-5.4 family, gpt-5.6 terra; gpt-6-astra (on Azure only as a user's preview deployment, its image
# rule UNVERIFIED); gpt-4.1 for rooms that still have it ("Legacy" on that table). Reasoning models are
# priced at their default effort; the output assumption below stands in for reasoning tokens too.
MODELS = ("gpt-5.6-luna", "gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.6-terra", "gpt-6-astra", "gpt-4.1")
TPM_MODELS = ("gpt-5.6-luna", "gpt-4.1")  # gpt-5.5, gpt-5.4 and gpt-5.6 terra count within 3 % of luna here
ROOM = 30
# The output limit each notebook's cells send (max_tokens / max_completion_tokens; 01 mostly relies
# on the client default, 1000) and its time box in minutes (docs/workshop.md).
MAX_TOKENS = {"01 start here": 1000, "02 REST quickstart": 300, "03 Python SDK": 300, "04 local images": 0,
              "05 playground chat": 200, "07 managing images": 200, "13 deploy and clean up": 50}
MINUTES = {"01 start here": 15, "02 REST quickstart": 20, "03 Python SDK": 20, "04 local images": 20,
           "05 playground chat": 15, "07 managing images": 20, "13 deploy and clean up": 15}
PHOTO, CARD, BIG_CARD, SIGN = (512, 600), (1024, 768), (1600, 1200), (768, 512)
# notebook -> requests; a request is a list of (width, height, detail) images (text is a short question)
CHAT_07 = [CARD, CARD, BIG_CARD, PHOTO, CARD, CARD, BIG_CARD]
EXERCISES: dict[str, list[list[tuple[int, int, str]]]] = {
    "01 start here": [[(*PHOTO, "auto")], [], [(*PHOTO, "auto")], [(*PHOTO, "auto")], [(*BIG_CARD, "auto")]],
    "02 REST quickstart": [[(*PHOTO, "auto")], [(*CARD, "auto")], [(*PHOTO, "low")], [(*CARD, "auto")]],
    "03 Python SDK": [[(*PHOTO, "auto")]] * 5,
    "04 local images": [],
    "05 playground chat": [[(*PHOTO, "auto")], [(*PHOTO, "auto")], [], [(*PHOTO, "auto")], [(*PHOTO, "auto")]],
    "07 managing images": [[(*size, "auto") for size in CHAT_07[: k + 1]] for k in range(len(CHAT_07))]
    + [[(*BIG_CARD, "auto")]],
    "13 deploy and clean up": [[(*SIGN, "auto")], []],
}


def _messages(images: list[tuple[int, int, str]]) -> list[dict[str, object]]:
    content: list[dict[str, object]] = [{"type": "text", "text": "Describe this picture, please."}]
    content += [vizlab.image_part(Image.new("RGB", (w, h), "white"), detail=d) for w, h, d in images]
    return [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": content}]


def prompt_tokens(model: str) -> dict[str, int]:
    """Prompt tokens one attendee sends per notebook on ``model``."""
    return {
        name: sum(vizlab.estimate_request(_messages(req), model=model).prompt_tokens for req in requests)
        for name, requests in EXERCISES.items()
    }


def table() -> str:
    """The Markdown table: USD per attendee per notebook, per model, at the registry's prices."""
    header = "| notebook | requests | " + " | ".join(f"`{m}`" for m in MODELS) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(MODELS)]
    tokens = {m: prompt_tokens(m) for m in MODELS}
    totals = dict.fromkeys(MODELS, 0.0)
    for name, requests in EXERCISES.items():
        cells = []
        for m in MODELS:
            p = lookup(m).prices
            cost = (tokens[m][name] * p.input + len(requests) * ANSWER_TOKENS * p.output) / 1e6
            totals[m] += cost
            cells.append(f"${cost:.4f}")
        lines.append(f"| {name} | {len(requests)} | " + " | ".join(cells) + " |")
    lines.append("| **core path, one attendee** | " + str(sum(len(r) for r in EXERCISES.values())) + " | "
                 + " | ".join(f"**${totals[m]:.3f}**" for m in MODELS) + " |")
    lines.append("| **a room of 30, core path twice each** | | "
                 + " | ".join(f"**${totals[m] * 60:.2f}**" for m in MODELS) + " |")
    sources = sorted({f"{lookup(m).prices.source} ({lookup(m).prices.as_of})" for m in MODELS})
    lines.append("")
    lines.append(f"Prices: USD per 1M tokens from `vizlab.models` ({'; '.join(sources)}); "
                 f"{ANSWER_TOKENS} completion tokens assumed per answer; no caching counted.")
    return "\n".join(lines)


def counted_tokens(model: str) -> dict[str, tuple[int, int]]:
    """Per notebook: (tokens one attendee's requests count against TPM, the largest single request).

    Azure counts a request against TPM when it arrives, by its prompt plus its max_tokens ("TPM rate
    limits are based on the maximum tokens estimated to be processed when the request is received",
    from the prompt, max_tokens and best_of: Azure OpenAI quota how-to, as quoted in Microsoft Q&A
    1851574, 2024), not by what it is billed afterwards.
    """
    out = {}
    for name, requests in EXERCISES.items():
        sizes = [vizlab.estimate_request(_messages(r), model=model).prompt_tokens + MAX_TOKENS[name] for r in requests]
        out[name] = (sum(sizes), max(sizes, default=0))
    return out


def tpm_table() -> str:
    """The Markdown table: TPM a room of 30 needs per notebook, spread over its time box and at peak."""
    header = "| notebook | minutes | " + " | ".join(
        f"`{m}`: per attendee | `{m}`: room, spread | `{m}`: room, same minute" for m in TPM_MODELS) + " |"
    lines = [header, "|---|---:|" + "---:|---:|---:|" * len(TPM_MODELS)]
    counted = {m: counted_tokens(m) for m in TPM_MODELS}
    for name in EXERCISES:
        cells = []
        for m in TPM_MODELS:
            total, _ = counted[m][name]
            cells += [f"{total:,}", f"{ROOM * total // MINUTES[name]:,}", f"{ROOM * total:,}"]
        lines.append(f"| {name} | {MINUTES[name]} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Tokens counted against TPM: prompt (vizlab's estimate) plus the output limit each cell sends; "
                 f"a room of {ROOM}; *spread*: everybody works through the notebook evenly over its time box; "
                 "*same minute*: everybody runs every cell of it within one minute (the worst case).")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
    print()
    print(tpm_table())
