"""Editing a chat through its conversation: regenerate, edit and resend, delete, import.

A mixin of :class:`~vizlab.widgets.chat_state.ChatState`. Every change goes through the
:class:`~vizlab.conversation.Conversation` (so autosave and exports follow) and, like Send, a
failed request leaves the conversation as it was. Answers replaced or deleted were still billed:
their cost stays in the session's spend (:attr:`discarded_usd`), so a budget cannot be dodged
by regenerating. Indexes are positions in ``conversation.turns`` (0 is the first message).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vizlab.conversation.costs import cost_total
from vizlab.errors import VizlabError
from vizlab.widgets.state import error_text, fmt_cost

if TYPE_CHECKING:
    from vizlab.client.core import Client
    from vizlab.client.replies import Reply
    from vizlab.conversation.core import Conversation
    from vizlab.conversation.turns import Turn

__all__ = ["ChatEditing", "EditPreview"]

Snapshot = tuple[list[Any], dict[str, Any], dict[str, str]]


class SettingsLike(Protocol):
    """What the editing reads of :class:`vizlab.widgets.chat_state.ChatSettings` (not imported: it imports this)."""

    max_tokens: int
    past_messages: int | None


class EditPreview:
    """What an edit-and-resend would do, before it is done: turns dropped and the new request's cost."""

    def __init__(self, index: int, dropped: int, dropped_cost: float, prompt_tokens: int | None,
                 prompt_cost: float | None, worst_cost: float | None, error: str = "") -> None:  # fmt: skip
        self.index, self.dropped, self.dropped_cost = index, dropped, dropped_cost
        self.prompt_tokens, self.prompt_cost, self.worst_cost, self.error = prompt_tokens, prompt_cost, worst_cost, error

    def line(self) -> str:
        later = f"drops the {self.dropped} later message{'s' * (self.dropped != 1)}" if self.dropped else "drops no later message"
        spent = f" (their answers cost {fmt_cost(self.dropped_cost)}, still billed)" if self.dropped_cost else ""
        if self.error:
            return f"Resend from message {self.index + 1} {later}{spent}; no estimate ({self.error})"
        cost = "" if self.prompt_cost is None else f" · prompt {fmt_cost(self.prompt_cost)}"
        worst = "" if self.worst_cost is None else f" · at most {fmt_cost(self.worst_cost)} with output"
        return f"Resend from message {self.index + 1} {later}{spent}; the new request: ~{self.prompt_tokens:,} prompt tokens{cost}{worst}"


def _answer_cost(turns: list[Turn]) -> float:
    return sum(cost_total(t.meta.get("cost")) or 0.0 for t in turns if t.role == "assistant")


class ChatEditing:
    """Regenerate, edit and resend, delete and import for :class:`ChatState`."""

    if TYPE_CHECKING:
        conversation: Conversation
        settings: Any  # SettingsLike (chat_state imports this module)
        detail: str
        busy: bool
        error: str
        streamed_text: str
        last_reply: Reply | None
        max_usd: float | None
        _client: Client
        _stream: Any
        _cancel: threading.Event
        _lock: threading.Lock
        attachments: list[Any]

        def _stream_reply(self, on_chunk: Callable[[str], None] | None, settings: Any) -> Reply | None: ...
        @staticmethod
        def _limit_history(messages: list[dict[str, Any]], past: int | None) -> list[dict[str, Any]]: ...
        @property
        def spent_usd(self) -> float: ...
        def clamped(self, settings: Any) -> Any: ...

    discarded_usd: float = 0.0  # answers replaced or deleted in this session (billed all the same)

    # -- what the panel shows first --

    def _with_edit(self, index: int, text: str) -> list[dict[str, Any]]:
        """The messages a resend from ``index`` with ``text`` would send (before past-messages)."""
        from vizlab.conversation.core import Conversation

        conv = self.conversation
        turn = self._user_turn(index)
        trial = Conversation(conv.system, model=conv.model, max_images=conv.max_images, retention=conv.retention)
        trial.turns = list(conv.turns[:index])
        trial.images, trial.urls = dict(conv.images), dict(conv.urls)
        trial.add_user(text, self._sources(turn), detail=turn.detail)
        return trial.messages()

    def edit_preview(self, index: int, text: str, settings: SettingsLike | None = None) -> EditPreview:
        """Turns dropped and the cost of the request a resend from ``index`` would make."""
        from vizlab.tokens.request import estimate_request

        s = self.clamped(settings if settings is not None else self.settings)
        later = self.conversation.turns[index + 1:]
        try:
            sent = self._limit_history(self._with_edit(index, text), s.past_messages)
            est = estimate_request(sent, model=self._client.token_model, max_tokens=s.max_tokens)
        except Exception as e:  # a preview must never stop the panel: say why there is none
            return EditPreview(index, len(later), _answer_cost(later), None, None, None, error_text(e, self._client))
        cost = est.cost
        return EditPreview(index, len(later), _answer_cost(later), est.prompt_tokens,
                           cost.input if cost else None, cost.total if cost else None)  # fmt: skip

    def can_regenerate(self) -> bool:
        turns = self.conversation.turns
        return len(turns) >= 2 and turns[-1].role == "assistant" and turns[-2].role == "user"

    # -- the edits --

    def regenerate(self, *, on_chunk: Callable[[str], None] | None = None, settings: SettingsLike | None = None,
                   claimed: bool = False) -> bool:  # fmt: skip
        """Ask again for the last answer (it is replaced); True on success."""
        if not self.can_regenerate():
            self.error = "Nothing to regenerate: the last message is not an answer to a question."
            if claimed:
                self.release()
            return False

        def change() -> list[Turn]:
            return self.conversation.drop_turns(len(self.conversation.turns) - 1)

        return self._resend(change, on_chunk, settings, claimed)

    def edit_and_resend(self, index: int, text: str, *, on_chunk: Callable[[str], None] | None = None,
                        settings: SettingsLike | None = None, claimed: bool = False) -> bool:  # fmt: skip
        """Replace user message ``index`` with ``text`` (its images kept), drop what followed, resend."""
        try:
            turn = self._user_turn(index)
            if not text.strip() and not turn.images:
                raise VizlabError("the edited message is empty: type the question to resend")
        except VizlabError as e:
            self.error = str(e)
            if claimed:
                self.release()
            return False

        def change() -> list[Turn]:
            conv = self.conversation
            sources = self._sources(turn)
            gone = conv.drop_turns(index)
            conv.add_user(text, sources, detail=turn.detail)
            return gone

        return self._resend(change, on_chunk, settings, claimed)

    def delete_turn(self, index: int) -> int:
        """Delete message ``index``; a question goes with its answer. Returns how many went."""
        if self.busy:
            self.error = "A request is running: press Stop and wait for it to end, then delete."
            return 0
        turns = self.conversation.turns
        if not isinstance(index, int) or not 0 <= index < len(turns):
            self.error = f"There is no message {index!r} to delete; pick one of the {len(turns)} in the chat."
            return 0
        stop = index + 2 if turns[index].role == "user" and index + 1 < len(turns) and turns[index + 1].role == "assistant" else index + 1
        gone = self.conversation.drop_turns(index, stop)
        self.discarded_usd += _answer_cost(gone)
        self.error = ""
        return len(gone)

    def import_chat(self, source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> bool:
        """Replace the chat with one saved by Export JSON (a path, or the file's bytes from an upload).

        The autosave path, if any, now holds the imported chat. Refused while a request runs.
        """
        from vizlab.conversation.core import Conversation

        if self.busy:
            self.error = "A request is running: press Stop and wait for it to end, then import."
            return False
        try:
            if isinstance(source, (bytes, bytearray, memoryview)):
                with tempfile.TemporaryDirectory(prefix="vizlab-import-") as folder:
                    path = Path(folder) / "chat.json"
                    path.write_bytes(bytes(source))
                    loaded = Conversation.load(path)
            else:
                loaded = Conversation.load(source)
        except (VizlabError, OSError) as e:
            self.error = f"Import failed: {error_text(e, self._client)}. Pick a .json file written by Export JSON or Conversation.save()."
            return False
        loaded.model = self._client.token_model
        target = self.conversation.autosave
        if target is not None:
            loaded.autosave = target
            loaded.save(target)
        self.conversation = loaded
        self.last_reply = None
        self.error = ""
        return True

    # -- internals --

    def _user_turn(self, index: int) -> Turn:
        turns = self.conversation.turns
        if not isinstance(index, int) or not 0 <= index < len(turns) or turns[index].role != "user":
            raise VizlabError(f"message {index!r} is not one of your questions: pick a message of yours to edit")
        return turns[index]

    def _sources(self, turn: Turn) -> list[Any]:
        conv = self.conversation
        return [conv.images.get(k) or conv.urls[k] for k in turn.images if k in conv.images or k in conv.urls]

    def claim(self, prompt: str | None = None) -> bool:
        """Reserve the state for one request (Send, or an edit when ``prompt`` is None); False if it
        cannot go now.

        An empty prompt with no attachments sets :attr:`error`; a request already running does
        not (its own outcome is what :attr:`error` reports when it ends). A panel claims on the UI
        thread before it starts the worker, so a second click is refused at once and a Stop pressed
        before the worker runs is not forgotten (the cancel flag is cleared here, not in the worker).
        """
        with self._lock:
            if self.busy:
                return False
            if prompt is not None and not prompt.strip() and not self.attachments:
                self.error = "Type a question (or attach an image) before pressing Send."
                return False
            self.busy = True
            self._cancel.clear()
        self.error = ""
        self.streamed_text = ""
        return True

    def release(self) -> None:
        """Give back a :meth:`claim` that will not be sent (the worker could not start, or it ended)."""
        with self._lock:
            self.busy = False

    def _snapshot(self) -> Snapshot:
        conv = self.conversation
        return list(conv.turns), dict(conv.images), dict(conv.urls)

    def _restore(self, snap: Snapshot) -> None:
        conv = self.conversation
        conv.turns[:] = snap[0]
        conv.images.clear()
        conv.images.update(snap[1])
        conv.urls.clear()
        conv.urls.update(snap[2])
        if conv.autosave is not None:
            try:
                conv.save(conv.autosave)
            except VizlabError:  # memory is restored; the file catches up at the next save
                pass

    def _budget_refusal_now(self, settings: SettingsLike) -> str:
        """Why the request the conversation now holds may not go under :attr:`max_usd` ("" if it may)."""
        if self.max_usd is None:
            return ""
        from vizlab.tokens.request import estimate_request

        sent = self._limit_history(self.conversation.messages(), settings.past_messages)
        est = estimate_request(sent, model=self._client.token_model, max_tokens=settings.max_tokens)
        worst = est.cost.total if est.cost is not None else None
        if worst is None:
            return f"Not sent: a budget is set but there is no price for {self._client.token_model}; pass max_usd=None."
        if self.spent_usd + worst > self.max_usd:
            return (
                f"Not sent: it could cost up to {fmt_cost(worst)} and {fmt_cost(self.spent_usd)} of the "
                f"{fmt_cost(self.max_usd)} budget is spent. Lower max tokens or raise max_usd."
            )
        return ""

    def _resend(self, change: Callable[[], list[Turn]], on_chunk: Callable[[str], None] | None,
                settings: SettingsLike | None, claimed: bool) -> bool:  # fmt: skip
        if not claimed and not self.claim():
            if self.busy:
                self.error = "A request is already running; press Stop first."
            return False
        chosen = self.clamped(settings if settings is not None else self.settings)
        snap = self._snapshot()
        reply = None
        try:
            gone = change()
            refusal = self._budget_refusal_now(chosen)
            if refusal:
                raise _Refused(refusal)
            reply = self._stream_reply(on_chunk, chosen)
        except Exception as e:  # shown in the panel; the conversation goes back to what it was
            self.error = e.args[0] if isinstance(e, _Refused) else error_text(e, self._client)
            self._restore(snap)
            return False
        finally:
            self._stream = None
            self.release()
        self.discarded_usd += _answer_cost(gone)
        if reply is not None:
            self.last_reply = reply
        self.error = ""
        return True


class _Refused(Exception):
    """A budget refusal found after the change: restore, and show its message as is."""
