"""ipywidgets panels for Jupyter: upload images, chat about them, compare detail levels.

Each panel wires a plain state object (no widgets, no kernel; tested on its own) to ipywidgets
controls; a cell that evaluates to a panel shows it (``ChatPanel()``). Public:
:class:`UploadPanel`, :class:`ChatPanel`, :class:`ComparePanel`, :class:`CompareChatPanel` and
their states :class:`UploadState`, :class:`ChatState`, :class:`CompareState`, :class:`CompareChatState`.
"""

from __future__ import annotations

from vizlab.widgets.chat import ChatPanel
from vizlab.widgets.chat_state import ChatSettings, ChatState, TurnView
from vizlab.widgets.compare import ComparePanel
from vizlab.widgets.compare_chat import CompareChatPanel
from vizlab.widgets.compare_chat_state import CompareChatState
from vizlab.widgets.markdown import render_markdown
from vizlab.widgets.state import CompareColumn, CompareState, UploadRow, UploadState
from vizlab.widgets.upload import UploadPanel

__all__ = [
    "UploadPanel",
    "ChatPanel",
    "ComparePanel",
    "CompareChatPanel",
    "CompareChatState",
    "UploadState",
    "ChatState",
    "ChatSettings",
    "render_markdown",
    "CompareState",
    "CompareColumn",
    "TurnView",
    "UploadRow",
]
