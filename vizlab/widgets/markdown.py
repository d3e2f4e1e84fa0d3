"""Answers as Markdown, made safe for the notebook page: no script, no event handler, no fetch.

A model's answer is untrusted text: it can contain ``<script>``, ``<img onerror=...>`` or a
Markdown image pointing at a remote server (a tracking pixel, or a way to leak the chat in the
URL). Two layers, each enough on its own for the cases the tests try:

1. mistune renders the Markdown with ``escape=True``: raw HTML in the answer is shown as text,
   never parsed as tags.
2. nh3 (the Rust ammonia sanitiser) then keeps only an allow-list of tags and attributes (no ``on*``, no ``style``, no
   ``src``); Markdown images become a plain note with their address as text, so nothing is
   fetched when the answer is shown. Links stay clickable (``http``, ``https``, ``mailto``) and
   open in a new tab without a referrer.

Trade-off: a real image in an answer is not shown (the service never returns one in Chat
Completions text anyway); what the user attached is shown by the panel from its own bytes.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

__all__ = ["render_markdown", "ALLOWED_TAGS"]

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "strong", "b", "em", "i", "del", "s", "code", "pre", "blockquote",
        "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody",
        "tr", "th", "td", "span",
    }
)  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}
_ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def _image_note(match: re.Match[str]) -> str:
    """``<img src=... alt=...>`` (from Markdown ``![alt](url)``) -> text naming it, not loading it."""
    attrs = dict(_ATTR.findall(match.group(0)))
    alt = attrs.get("alt", "") or "image"
    src = attrs.get("src", "")
    return f'<span class="vizlab-md-image">[{alt}: image not loaded, {src}]</span>'


@lru_cache(maxsize=1)
def _renderer() -> Any:
    import mistune

    return mistune.create_markdown(escape=True, plugins=["strikethrough", "table"])


def render_markdown(text: str) -> str:
    """Safe HTML for ``text`` (Markdown from a model).

    >>> render_markdown("**hi** <script>alert(1)</script>")
    '<p><strong>hi</strong> &lt;script&gt;alert(1)&lt;/script&gt;</p>'
    """
    import nh3

    rendered = str(_renderer()(text))
    rendered = _IMG_TAG.sub(_image_note, rendered)
    cleaned = nh3.clean(
        rendered,
        tags=set(ALLOWED_TAGS),
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=set(_ALLOWED_PROTOCOLS),
        link_rel=None,
    )
    # Links open in a new tab and send no referrer (the notebook's URL carries its token).
    cleaned = cleaned.replace("<a href=", '<a target="_blank" rel="noopener noreferrer nofollow" href=')
    return cleaned.strip()


def plain_html(text: str) -> str:
    """``text`` escaped, line breaks kept: for what is not Markdown (the user's own words)."""
    return html.escape(text).replace("\n", "<br>")
