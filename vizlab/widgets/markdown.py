"""Answers as Markdown, made safe for the notebook page: no script, no event handler, no fetch.

A model's answer is untrusted. Two layers, each enough alone for the tested cases: mistune with
``escape=True`` (raw HTML shown as text), then nh3 (ammonia) with an allow-list (no ``on*``, ``style``
or ``src``; Markdown images become text; links open in a new tab without referrer). Trade-off: a
real image in an answer is not shown. Details: docs/internals.md#widgets
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
