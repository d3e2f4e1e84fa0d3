"""What each core-path exercise costs one attendee on a real deployment, from vizlab's registry.

Run ``python docs/cost_table.py`` to print the Markdown table that docs/facilitator.md carries
between its ``cost-table`` markers; tests/test_coverage_table.py fails when the page and this
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
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini")
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


if __name__ == "__main__":
    print(table())
