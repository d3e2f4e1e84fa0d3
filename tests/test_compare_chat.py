"""Chat-level compare against the built-in backend: each turn to up to 3 deployments side by side,
tokens and cost per column; and the README's two-deployment ComparePanel example, offline."""

from __future__ import annotations

from collections.abc import Iterator

import ipywidgets as W
import pytest
from conftest import make_image_bytes

from vizlab.client import Client, connect
from vizlab.widgets import CompareChatPanel, ComparePanel, CompareChatState

THREE = ["gpt-4o", "gpt-4.1-mini", "gpt-5.4-mini"]


@pytest.fixture
def built_in() -> Iterator[Client]:
    c = connect(env_file=None, verbose=False)  # the shared built-in backend, as a notebook gets it
    yield c
    c.close()


@pytest.mark.slow
def test_three_columns_answer_the_same_turns_with_their_own_numbers(built_in: Client) -> None:
    panel = CompareChatPanel(built_in, THREE)
    panel.run_in_thread = False
    panel.attach(make_image_bytes(600, 400))
    panel.prompt.value = "Describe this image"
    panel.send_button.click()
    assert panel.error_html.value == ""
    for col, name in zip(panel.columns, THREE):
        conv = col.state.conversation
        assert [t.role for t in conv.turns] == ["user", "assistant"] and conv.turns[0].images
        assert col.state.last_reply is not None and col.state.last_reply.request["model"] == name
        assert len(col.transcript.rows) == 2 and col.transcript.rows[0]["thumbs"]
        assert "Total: 1 request" in col.totals.value and "$" in col.totals.value  # tokens and cost per column
    prompts = [col.state.totals()["prompt"] for col in panel.columns]
    assert len(set(prompts)) > 1  # each deployment counted by its own rules (tiles vs patches)
    # A follow-up goes to every column, each with its own history.
    panel.prompt.value = "And the colours?"
    panel.prompt.submit()
    assert all(len(col.state.conversation.turns) == 4 for col in panel.columns)
    assert "gpt-5.4-mini" in panel.snapshot_html() and "Total: 2 requests" in panel.snapshot_html()
    W.Widget.close_all()


def test_the_reasoning_column_gets_its_own_parameters(built_in: Client) -> None:
    state = CompareChatState(built_in, ["gpt-4o", "gpt-5.4-mini"], max_tokens=20_000)
    assert state.send("Hello") == [True, True]
    gpt4o, reasoner = (c.last_reply.request for c in state.columns if c.last_reply is not None)
    assert gpt4o["max_tokens"] == 16_384  # clamped to gpt-4o's output limit
    assert "max_completion_tokens" in reasoner and "max_tokens" not in reasoner


def test_bad_compare_lists_are_refused_clearly(built_in: Client) -> None:
    with pytest.raises(ValueError, match="1 to 3 deployment names"):
        CompareChatState(built_in, ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"])
    with pytest.raises(ValueError, match="twice"):
        CompareChatState(built_in, ["gpt-4o", "gpt-4o"])
    with pytest.raises(ValueError, match="not served by .* it serves"):
        CompareChatState(built_in, ["gpt-4o", "no-such-deployment"])


@pytest.mark.slow
def test_the_readme_compare_example_runs_offline(built_in: Client) -> None:
    panel = ComparePanel(built_in, make_image_bytes(800, 600), arms=[("gpt-4o", "high"), ("gpt-4.1-mini", "high")])
    panel.run_in_thread = False
    panel.run()
    cols = list(panel.columns.values())
    assert [c.error for c in cols] == ["", ""] and all(c.answer for c in cols)
    assert [c.token_model for c in cols] == ["gpt-4o", "gpt-4.1-mini"]
    W.Widget.close_all()
