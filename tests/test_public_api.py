"""The names DESIGN.md promises are importable from the top-level package and behave."""

from __future__ import annotations

import vizlab


def test_all_lists_only_real_names() -> None:
    missing = [name for name in vizlab.__all__ if not hasattr(vizlab, name)]
    assert missing == []


def test_design_card_names_work_together(tiny_png: bytes) -> None:
    url = vizlab.to_data_url(tiny_png)
    assert url.startswith("data:image/png;base64,")
    part = vizlab.image_part(tiny_png, detail="low")
    assert part == {"type": "image_url", "image_url": {"url": url, "detail": "low"}}
    assert vizlab.image_tokens(1024, 1024, detail="high", model="gpt-4o") == 765
    conversation = vizlab.Conversation("You are terse.")
    conversation.add_user("What is this?", [tiny_png], detail="low")
    assert conversation.messages()[1]["content"][1] == part
    assert issubclass(vizlab.errors.ImageError, vizlab.VizlabError)
