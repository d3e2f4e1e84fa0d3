"""Attendee codes and the admin key: made with :mod:`secrets`, written to codes.csv and a printable page.

A code reads ``room-XXXX-XXXX-XXXX`` from an alphabet without look-alikes (no 0/O, 1/I/L), so it can
be typed from paper: 12 characters of 31 give about 59 bits, far beyond guessing over HTTP.
"""

from __future__ import annotations

import csv
import html
import io
import secrets
from pathlib import Path

from vizlab.conversation.storage import atomic_write_text
from vizlab.room.store import CodeRow

__all__ = ["API_VERSION", "new_admin_key", "new_code", "write_codes"]

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# The GA api-version printed on the cards: the latest GA data-plane inference version on Microsoft Learn,
# "Azure OpenAI API version lifecycle" (learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle),
# checked 2025, as vizlab.client's default (the room does not import the client).
API_VERSION = "2024-10-21"


def new_code() -> str:
    groups = ("".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(3))
    return "room-" + "-".join(groups)


def new_admin_key() -> str:
    return "room-admin-" + secrets.token_urlsafe(24)


def write_codes(path: Path, rows: list[CodeRow], endpoint: str, deployment: str) -> Path:
    """Write codes.csv and codes.html (one card per attendee, to print and cut); return the page's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["attendee", "code", "endpoint", "deployment", "budget_usd", "revoked"])
    for r in rows:
        writer.writerow([r.attendee, r.code, endpoint, deployment, f"{r.budget_usd:.4f}", "yes" if r.revoked else ""])
    atomic_write_text(path, out.getvalue())
    page = path.with_suffix(".html")
    atomic_write_text(page, _page(rows, endpoint, deployment))
    return page


def _card(r: CodeRow, endpoint: str, deployment: str) -> str:
    e = html.escape
    return (
        f'<div class="card"><h2>Attendee {r.attendee}</h2>'
        f"<p>Endpoint: <code>{e(endpoint)}</code><br>Deployment: <code>{e(deployment)}</code><br>"
        f"Your code: <code class=\"code\">{e(r.code)}</code><br>Budget: ${r.budget_usd:.2f}</p>"
        f"<pre>AZURE_OPENAI_ENDPOINT={e(endpoint)}\nAZURE_OPENAI_API_KEY={e(r.code)}</pre></div>"
    )


def _page(rows: list[CodeRow], endpoint: str, deployment: str) -> str:
    cards = "\n".join(_card(r, endpoint, deployment) for r in rows if not r.revoked)
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>vizlab room codes</title><style>"
        "body{font-family:sans-serif}.card{border:1px dashed #888;padding:8px 12px;margin:6px;width:22em;"
        "display:inline-block;vertical-align:top;break-inside:avoid}.code{font-size:1.3em}"
        "pre{background:#f4f4f4;padding:4px;font-size:.8em}</style></head><body>"
        f"<h1>vizlab room: {len(rows)} codes</h1><p>Set the two variables on your card, then run the notebooks. "
        f"api-version {API_VERSION}.</p>{cards}</body></html>"
    )
