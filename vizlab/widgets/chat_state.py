"""The chat panel's state: settings, the live estimate, send/stop, budget, totals, export.

No widgets, no kernel: tests call methods and read attributes. Decisions: a failed send leaves
the conversation as before Send; Stop keeps what was streamed and counts the prompt estimate (a
service bills the prompt it read); settings are checked against the model family; "past messages
included" trims the history sent; a session budget refuses a send whose worst case exceeds it.
Details: docs/internals.md#widgets
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizlab.client.targets import BackendKind
from vizlab.conversation.costs import cost_total
from vizlab.errors import VizlabError, redact
from vizlab.widgets.chat_edit import ChatEditing
from vizlab.widgets.documents import PDF_MODES, PageImages, document_part, encode_attachment, is_document
from vizlab.widgets.state import (
    client_secrets,
    elide_data_urls,
    error_text,
    fmt_cost,
    fmt_int,
    get_field,
    model_note,
    source_label,
    waits_for_reply,
)

if TYPE_CHECKING:
    from vizlab.client.core import Client
    from vizlab.client.replies import Reply
    from vizlab.conversation.core import Conversation
    from vizlab.images.encode import EncodedImage

__all__ = ["ChatSettings", "ChatState", "NextEstimate", "TurnView", "turn_stats", "turn_warnings"]

# OpenAI's defaults when a request leaves them out: temperature 1 and top_p 1 (API reference,
# Chat Completions "Create", platform.openai.com/docs/api-reference/chat/create, read 2026).
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0
# At most 4 stop sequences (same reference, "stop": "Up to 4 sequences"); the backend refuses more.
MAX_STOP_SEQUENCES = 4


@dataclass
class ChatSettings:
    """What the settings area sets for the next request."""

    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    stop: tuple[str, ...] = ()
    max_tokens: int = 1000
    past_messages: int | None = None  # None: the whole history
    reasoning_effort: str | None = None  # None: the family's default (not sent)


@dataclass
class NextEstimate:
    """The live estimate of the next request, before Send."""

    prompt_tokens: int
    image_tokens: int
    text_tokens: int
    images: int
    max_output: int
    prompt_cost: float | None
    worst_cost: float | None  # prompt plus max_output tokens of output
    messages_sent: int  # past messages in the request (system and the new question not counted)
    messages_total: int
    saved_tokens: int  # prompt tokens saved by "past messages included"
    error: str = ""
    documents: int = 0  # PDFs sent as file parts
    model: str = ""  # "on gpt-4o", or "model unknown ..." before the client knows it (issue 19)

    def line(self) -> str:
        head = f"Next request ({self.model})" if self.model else "Next request"
        if self.error:
            return f"{head}: no estimate ({self.error})"
        cost = "" if self.prompt_cost is None else f" · prompt {fmt_cost(self.prompt_cost)}"
        worst = "" if self.worst_cost is None else f" · at most {fmt_cost(self.worst_cost)} with output"
        docs = f", {self.documents} PDF{'s' * (self.documents != 1)}" if self.documents else ""
        imgs = f"{self.image_tokens:,} image tokens ({self.images} image{'s' * (self.images != 1)}{docs})"
        past = ""
        if self.messages_sent < self.messages_total:
            past = (
                f" · past messages: {self.messages_sent} of {self.messages_total} sent, "
                f"{self.saved_tokens:,} tokens saved"
            )
        return (
            f"{head}: ~{self.prompt_tokens:,} prompt tokens · {imgs} · {self.text_tokens:,} text"
            f" · up to {self.max_output:,} output{cost}{worst}{past}"
        )


@dataclass
class TurnView:
    """One transcript entry as the chat panel draws it."""

    role: str
    text: str
    images: list[EncodedImage] = field(default_factory=list)
    detail: str = "auto"
    stats: str = ""
    warnings: list[str] = field(default_factory=list)


def turn_warnings(meta: Mapping[str, Any]) -> list[str]:
    """Advice for a reply cut short, from the ``finish_reason`` kept in the turn's meta."""
    reason = meta.get("finish_reason")
    if reason == "length":
        return [
            "The answer was cut off by max_tokens (finish_reason 'length'): raise max tokens, "
            "or ask for a shorter answer."
        ]
    if reason == "content_filter":
        return [
            "The content filter removed part of the answer (finish_reason 'content_filter'): "
            "rephrase the prompt."
        ]
    if reason == "cancelled":
        return ["Stopped: the answer is partial (finish_reason 'cancelled')."]
    return []


def turn_stats(meta: Mapping[str, Any]) -> str:
    """``prompt 783 tokens (estimated 783) · completion 77 · $0.0027 · 0.95 s · finish stop``."""
    usage = meta.get("usage")
    estimate = meta.get("estimate")
    if not usage and not estimate:  # a turn written by hand (or loaded without numbers)
        return ""
    est = get_field(estimate, "prompt_tokens")
    if usage:
        prompt = f"prompt {fmt_int(get_field(usage, 'prompt_tokens'))} tokens (estimated {fmt_int(est)})"
        completion = f"completion {fmt_int(get_field(usage, 'completion_tokens'))}"
    elif meta.get("finish_reason") == "cancelled":
        prompt = f"prompt ~{fmt_int(est)} tokens (estimated, billed: a stopped answer reports no usage)"
        completion = "completion ?"
    else:
        prompt = f"prompt ~{fmt_int(est)} tokens (estimated; none reported)"
        completion = "completion ?"
    latency = meta.get("latency_s")
    lat = f"{latency:.2f} s" if isinstance(latency, (int, float)) else "? s"
    cost = fmt_cost(cost_total(meta.get("cost")))
    if meta.get("finish_reason") == "cancelled" and meta.get("cost") is not None:
        cost = f"~{cost} (estimated)"
    return f"{prompt} · {completion} · {cost} · {lat} · finish {meta.get('finish_reason')}"


class ChatState(ChatEditing):
    """A chat with one client: system message, attachments, send/stop, stats, export, autosave.

    ``send()`` is synchronous (the panel runs it in a thread); ``cancel()`` may be called from
    any thread while it runs. ``autosave=path`` resumes the conversation saved there if the file
    exists, else starts a new one that saves there after every change.
    """

    def __init__(
        self,
        client: Client,
        conversation: Conversation | None = None,
        *,
        autosave: str | os.PathLike[str] | None = None,
        max_tokens: int = 1000,
        detail: str = "auto",
        export_dir: str | os.PathLike[str] | None = None,
        settings: ChatSettings | None = None,
        max_usd: float | None = None,
    ) -> None:
        from vizlab.conversation.core import Conversation

        self._client = client
        if conversation is None:
            if autosave is not None:
                conversation = Conversation.open(autosave, model=client.token_model)
            else:
                conversation = Conversation(model=client.token_model)
        elif autosave is not None:  # the conversation given starts saving there (overwrites)
            conversation.autosave = Path(autosave)
            conversation.save(autosave)
        self.conversation: Conversation = conversation
        self.settings = settings if settings is not None else ChatSettings(max_tokens=max_tokens)
        if max_usd is not None and not (isinstance(max_usd, (int, float)) and max_usd > 0):
            raise ValueError(f"max_usd={max_usd!r} is not a budget: pass a positive number of US dollars, or None")
        self.max_usd: float | None = float(max_usd) if max_usd is not None else None
        self.detail = detail
        self.export_dir = Path(export_dir) if export_dir is not None else None
        self.attachments: list[EncodedImage] = []  # images, and PDFs kept whole
        self.pdf_as = "file"  # how attached PDFs go: one of PDF_MODES
        self.page_images = PageImages()
        self.last_reply: Reply | None = None
        self.error: str = ""
        self.busy = False
        self.streamed_text = ""
        self._stream: Any = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    @property
    def max_tokens(self) -> int:
        return self.settings.max_tokens

    @max_tokens.setter
    def max_tokens(self, value: int) -> None:
        self.settings.max_tokens = value

    # -- client and deployment --

    @property
    def client(self) -> Client:
        return self._client

    @client.setter
    def client(self, client: Client) -> None:
        """Swap the client (a fixed key, another endpoint); the conversation is kept."""
        self._client = client
        self.conversation.model = client.token_model

    def deployments(self) -> list[str]:
        """Names for the deployment picker: the backend's list where it is one of deployments.

        Azure's GET models lists the models a resource offers, not its deployment names, so
        for Azure only the connected deployment is offered (pass another client to switch).
        """
        current = self._client.deployment
        names: list[str] = []
        if self._client.backend != BackendKind.AZURE:
            try:
                names = list(self._client.models())
            except (VizlabError, OSError):
                names = []
        return [current] + [n for n in names if n != current]

    def select_deployment(self, name: str) -> None:
        """Send the next requests to deployment ``name`` on the same endpoint and key."""
        if name == self._client.deployment:
            return
        self.client = self._client.with_deployment(name)  # same endpoint, key and HTTP pool

    # -- setup --

    def apply_system(self, text: str) -> None:
        """Use ``text`` as the system message from the next request on ("" removes it)."""
        self.conversation.system = text.strip() or None

    def attach(self, source: Any) -> EncodedImage:
        """Add an image or a PDF to the next message; raises a :class:`vizlab.errors.VizlabError` if bad."""
        name = source.get("name") if isinstance(source, Mapping) else None
        image = encode_attachment(source, str(name) if name else None)
        if all(a.sha256 != image.sha256 for a in self.attachments):
            self.attachments.append(image)
        return image

    def attach_all(self, sources: Iterable[Any]) -> list[str]:
        """Attach each source; the good ones are kept, each bad one becomes a ``"name: reason"``.

        Sets (and returns) :attr:`error` as those messages joined by "; ", or "" when all were good.
        """
        problems = []
        for i, source in enumerate(sources):
            try:
                self.attach(source)
            except Exception as e:  # shown in the panel; a bad file must not stop the others
                problems.append(redact(f"{source_label(source, i)}: {e}", client_secrets(self._client)))
        self.error = "; ".join(problems)
        return problems

    def clear_attachments(self) -> None:
        self.attachments = []

    def set_pdf_mode(self, mode: str) -> None:
        """Send attached PDFs as ``"file"`` parts (the service reads text and pages) or as ``"pages"`` (images)."""
        if mode not in PDF_MODES:
            raise ValueError(f"pdf mode {mode!r}: choose {' or '.join(map(repr, PDF_MODES))}")
        self.pdf_as = mode

    def outgoing(self, items: list[EncodedImage] | None = None) -> list[EncodedImage]:
        """What goes with the message: the attachments, each PDF as itself or as its pages (:attr:`pdf_as`)."""
        return self.page_images.expand(self.attachments if items is None else items, self.pdf_as)

    # -- sending --

    def send(
        self,
        prompt: str,
        *,
        on_chunk: Callable[[str], None] | None = None,
        max_tokens: int | None = None,
        detail: str | None = None,
        claimed: bool = False,
        settings: ChatSettings | None = None,
    ) -> bool:
        """Send ``prompt`` with the attachments and stream the answer; True on success.

        ``on_chunk`` gets the text so far after each chunk. On failure :attr:`error` says
        why, the conversation is as before Send and the attachments stay pending. If the answer
        arrived but saving it failed (an autosave folder gone), the answer is kept, :attr:`error`
        says what failed, and True is returned. ``claimed=True``: :meth:`claim` was already called.
        ``settings`` (default :attr:`settings`) are read once, at the start.
        """
        if not claimed and not self.claim(prompt):
            if self.busy:
                self.error = "A request is already running; press Stop first."
            return False
        chosen = settings if settings is not None else self.settings
        if max_tokens is not None:
            chosen = ChatSettings(**{**chosen.__dict__, "max_tokens": max_tokens})
        chosen = self.clamped(chosen)
        refusal = self.budget_refusal(prompt, detail=detail, settings=chosen)
        if refusal:
            self.release()
            self.error = refusal
            return False
        conv = self.conversation
        before = len(conv.turns)
        sent = list(self.attachments)
        try:
            conv.add_user(prompt, self.outgoing(sent), detail=detail or self.detail)
            reply = self._stream_reply(on_chunk, chosen)
        except Exception as e:  # shown in the panel; anything unexpected must not wedge the UI
            self.error = error_text(e, self._client)
            if len(conv.turns) > before + 1 and conv.turns[-1].role == "assistant":
                # The answer is in: only saving it failed. Keep it; the user saw it.
                self._drop_sent(sent)
                return True
            self._roll_back(before)
            return False
        finally:
            self._stream = None
            self.busy = False
        if reply is not None:  # None: stopped before the service answered (no request to show)
            self.last_reply = reply
        self._drop_sent(sent)
        self.error = ""  # a second send refused meanwhile does not outlive this one
        return True

    def _drop_sent(self, sent: list[EncodedImage]) -> None:
        """Clear the attachments that went out; one attached while the answer streamed stays."""
        gone = {img.sha256 for img in sent}
        self.attachments = [a for a in self.attachments if a.sha256 not in gone]

    def _roll_back(self, length: int) -> None:
        """Drop the turns added since the conversation had ``length`` (a failed send's user turn)."""
        conv = self.conversation
        while len(conv.turns) > length:
            try:
                conv.pop_last()
            except VizlabError:  # the turn is gone from memory; only its autosave failed
                pass

    def _open_stream(self, messages: list[dict[str, Any]], max_tokens: int | None, params: dict[str, Any]) -> Any:
        """``client.stream(...)``, or None when Stop is pressed before the service answers.

        The request is opened in a helper thread: until the first byte (8 s and more on a busy
        deployment) the HTTP call blocks, and Stop must not wait for it. An abandoned request
        is closed as soon as it answers.
        """
        box: dict[str, Any] = {}
        done = threading.Event()
        abandoned = threading.Event()

        def opener() -> None:
            try:
                box["stream"] = self._client.stream(messages, max_tokens=max_tokens, **params)
            except BaseException as e:  # handed to the worker below (or dropped if abandoned)
                box["error"] = e
            finally:
                done.set()
                if abandoned.is_set() and "stream" in box:
                    box["stream"].close()

        threading.Thread(target=opener, name="vizlab-chat-open", daemon=True).start()
        while not done.wait(0.05):
            if self._cancel.is_set():
                abandoned.set()
                if done.is_set() and "stream" in box:  # it answered just now: close it here
                    box["stream"].close()
                return None
        if "error" in box:
            raise box["error"]
        return box["stream"]

    def _stopped_before_answer(self, messages: list[dict[str, Any]], settings: ChatSettings, started: float) -> None:
        """The turn for a request stopped before its first byte: no text, the prompt billed."""
        import time

        from vizlab.tokens.request import estimate_request

        estimate: Any = None
        try:
            estimate = estimate_request(messages, model=self._client.token_model, max_tokens=settings.max_tokens)
        except Exception:  # no estimate: the turn still says it was stopped
            estimate = None
        est_cost = get_field(get_field(estimate, "cost"), "input")
        self.conversation.add_assistant(
            "",
            finish_reason="cancelled",
            usage=None,
            estimate=estimate,
            latency_s=time.perf_counter() - started,
            model=self._client.deployment,
            cost={"input": est_cost, "output": 0.0, "total": est_cost} if isinstance(est_cost, float) else None,
            billed_estimate=True,
        )

    def _stream_reply(self, on_chunk: Callable[[str], None] | None, settings: ChatSettings) -> Reply | None:
        import time

        messages = self._limit_history(self.conversation.messages(), settings.past_messages)
        max_tokens, params, _notes = self.request_params(settings)
        started = time.perf_counter()
        # The client warns (UserWarning) about cut replies; the transcript shows them instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # A message list, not the conversation: "past messages included" may leave turns out,
            # so the answer is appended here (as the client would) rather than by the client.
            stream = self._open_stream(messages, max_tokens, params)
            if stream is None:
                self._stopped_before_answer(messages, settings, started)
                return None
            # Leaving the block early (on_chunk failing, an interrupt) closes the HTTP stream.
            with stream:
                self._stream = stream
                if self._cancel.is_set():  # Stop pressed while the request was being sent
                    stream.cancel()
                for _ in stream:
                    self.streamed_text = stream.text
                    if on_chunk is not None:
                        on_chunk(self.streamed_text)
                    if self._cancel.is_set():
                        stream.cancel()
                        break
        # ReplyStream sets .reply before its iteration can end: at the end of the stream, or in
        # cancel() (from either thread) before the reader can notice and stop.
        reply = stream.reply
        if reply is None:
            raise VizlabError("the answer stream ended without a reply; press Send to try again")
        if reply.finish_reason == "cancelled":
            # No usage comes back, but the service read (and bills) the prompt: count its estimate.
            est_cost = get_field(get_field(reply.estimate, "cost"), "input")
            self.conversation.add_assistant(
                reply.text,
                finish_reason="cancelled",
                usage=None,
                estimate=reply.estimate,
                latency_s=reply.latency_s,
                model=reply.model,
                cost={"input": est_cost, "output": 0.0, "total": est_cost} if isinstance(est_cost, float) else None,
                billed_estimate=True,
            )
        else:
            self.conversation.add_assistant(
                reply.text,
                finish_reason=reply.finish_reason,
                usage=reply.usage,
                estimate=reply.estimate,
                latency_s=reply.latency_s,
                model=reply.model,
                cost=reply.cost,
            )
        return reply

    # -- settings, estimate, budget --

    def model_info(self) -> Any:
        """The registry's facts for the token model (:func:`vizlab.models.lookup`), or None."""
        try:
            from vizlab.models.registry import lookup
        except ImportError:  # the registry is not there (an older vizlab): take no parameter rules
            return None
        try:
            return lookup(self._client.token_model)
        except VizlabError:
            return None

    def output_limit(self) -> int | None:
        """The deployment's largest output in tokens, from the registry (None when it is not known)."""
        info = self.model_info()
        limit = getattr(info, "max_output", None)
        return limit if isinstance(limit, int) and limit > 0 else None

    def clamp_max_tokens(self, value: int) -> int:
        """``value`` capped at :meth:`output_limit` (gpt-4o: 16,384), so estimates never plan for more."""
        limit = self.output_limit()
        return min(value, limit) if limit is not None else value

    def clamped(self, settings: ChatSettings) -> ChatSettings:
        """``settings`` with max_tokens capped at the deployment's output limit."""
        capped = self.clamp_max_tokens(settings.max_tokens)
        return settings if capped == settings.max_tokens else ChatSettings(**{**settings.__dict__, "max_tokens": capped})

    def request_params(self, settings: ChatSettings | None = None) -> tuple[int | None, dict[str, Any], list[str]]:
        """``(max_tokens, extra params, notes)`` for the next request under ``settings``.

        A reasoning family gets ``max_completion_tokens`` (and no ``max_tokens``) and its
        ``reasoning_effort``; a sampling parameter the family refuses at that effort is left out,
        with a note saying so.
        """
        s = settings if settings is not None else self.settings
        info = self.model_info()
        params: dict[str, Any] = {}
        notes: list[str] = []
        effort = None
        if info is not None and getattr(info, "reasoning", False):
            efforts = tuple(getattr(info, "efforts", ()) or ())
            effort = s.reasoning_effort if s.reasoning_effort in efforts else None
            if effort is not None:
                params["reasoning_effort"] = effort
            params["max_completion_tokens"] = s.max_tokens
            max_tokens: int | None = None
        else:
            max_tokens = s.max_tokens
        rejected: frozenset[str] = frozenset()
        if info is not None:
            rejected = frozenset(info.rejected_params(effort or getattr(info, "default_effort", None)))
        for name, value in (("temperature", s.temperature), ("top_p", s.top_p)):
            if name in rejected:
                notes.append(f"{name} not sent: {info.name} refuses it" + (f" at effort {effort}" if effort else ""))
            else:
                params[name] = value
        stops = [x for x in s.stop if x]
        if len(stops) > MAX_STOP_SEQUENCES:
            raise VizlabError(
                f"{len(stops)} stop sequences given; the API takes at most {MAX_STOP_SEQUENCES}: remove some"
            )
        if stops:
            if "stop" in rejected:
                notes.append(f"stop not sent: {info.name} refuses it")
            else:
                params["stop"] = stops
        return max_tokens, params, notes

    @staticmethod
    def _limit_history(messages: list[dict[str, Any]], past: int | None) -> list[dict[str, Any]]:
        """The system message, the last ``past`` messages before the new one, and the new one."""
        if past is None:
            return messages
        system = [m for m in messages[:1] if m.get("role") == "system"]
        rest = messages[len(system):]
        if not rest:
            return messages
        history, new = rest[:-1], rest[-1:]
        return system + (history[-past:] if past > 0 else []) + new

    def next_messages(self, prompt: str, *, detail: str | None = None) -> list[dict[str, Any]]:
        """The messages Send would send now, with the whole history (before the past-messages cut)."""
        messages = self.conversation.messages()
        parts: list[Any] = [{"type": "text", "text": prompt}] if prompt else []
        parts += [document_part(i) if is_document(i) else i.part(detail or self.detail) for i in self.outgoing()]
        messages.append({"role": "user", "content": parts if self.attachments else prompt})
        return messages

    def estimate_next(self, prompt: str = "", *, detail: str | None = None, settings: ChatSettings | None = None) -> NextEstimate:
        """The estimate of the request Send would make now (text, attachments, detail, history)."""
        from vizlab.tokens.request import estimate_request

        s = self.clamped(settings if settings is not None else self.settings)
        model = self._client.token_model
        if waits_for_reply(self._client):  # as the client: no assumed model, no estimate (issue 19)
            return NextEstimate(0, 0, 0, 0, s.max_tokens, None, None, 0, 0, 0, error=model_note(self._client))
        try:
            full = self.next_messages(prompt, detail=detail)
            sent = self._limit_history(full, s.past_messages)
            est = estimate_request(sent, model=model, max_tokens=s.max_tokens)
            saved = 0
            if len(sent) < len(full):
                saved = estimate_request(full, model=model).prompt_tokens - est.prompt_tokens
        except Exception as e:  # an estimate must never stop the panel: say why there is none
            return NextEstimate(0, 0, 0, 0, s.max_tokens, None, None, 0, 0, 0, error=error_text(e, self._client),
                                model=model_note(self._client))
        system = 1 if full and full[0].get("role") == "system" else 0
        cost = est.cost
        prompt_cost = cost.input if cost is not None else None
        worst = cost.total if cost is not None else None
        return NextEstimate(
            prompt_tokens=est.prompt_tokens,
            image_tokens=est.image_tokens,
            text_tokens=est.text_tokens,
            images=len(est.images) + len(est.unsized_images),
            max_output=s.max_tokens,
            prompt_cost=prompt_cost,
            worst_cost=worst,
            messages_sent=len(sent) - system - 1,
            messages_total=len(full) - system - 1,
            saved_tokens=saved,
            documents=len(est.documents),
            model=model_note(self._client),
        )

    @property
    def spent_usd(self) -> float:
        """What this chat has cost so far (stopped answers at their prompt estimate, replaced and
        deleted answers included: they were billed)."""
        return float(self.totals()["cost"]) + self.discarded_usd

    def budget_line(self) -> str:
        if self.max_usd is None:
            return ""
        return f"Budget: {fmt_cost(self.spent_usd)} of {fmt_cost(self.max_usd)} spent"

    def budget_refusal(self, prompt: str, *, detail: str | None = None, settings: ChatSettings | None = None) -> str:
        """Why Send must refuse under :attr:`max_usd` ("" when it may go)."""
        if self.max_usd is None:
            return ""
        est = self.estimate_next(prompt, detail=detail, settings=settings)
        if est.error or est.worst_cost is None:
            return (
                f"Not sent: a budget of {fmt_cost(self.max_usd)} is set but this request has no cost estimate "
                f"({est.error or 'no price for ' + self._client.token_model}); pass max_usd=None to send without one."
            )
        spent = self.spent_usd
        if spent + est.worst_cost > self.max_usd:
            return (
                f"Not sent: it could cost up to {fmt_cost(est.worst_cost)} (prompt ~{est.prompt_tokens:,} tokens plus up to "
                f"{est.max_output:,} output) and {fmt_cost(spent)} of the {fmt_cost(self.max_usd)} budget is spent. "
                "Lower max tokens, include fewer past messages, use detail low, or raise max_usd."
            )
        return ""

    def cancel(self) -> None:
        """Stop the running request (from any thread); the partial answer is kept."""
        self._cancel.set()
        stream = self._stream
        if stream is not None:
            stream.cancel()

    def new_chat(self) -> bool:
        """Forget the turns and images (the system message stays), as the playground's New chat.

        Refused (False, :attr:`error` says why) while a request runs: its answer would land in
        the new chat.
        """
        if self.busy:
            self.error = "A request is still running: press Stop and wait for it to end, then New chat."
            return False
        self.conversation.clear()
        self.discarded_usd = 0.0  # the spend is per chat, as the totals are
        self.attachments = []
        self.last_reply = None
        self.error = ""
        self.streamed_text = ""
        return True

    # -- reading --

    def turn_views(self) -> list[TurnView]:
        conv = self.conversation
        views = []
        for turn in conv.turns:
            images = [conv.images[k] for k in turn.images if k in conv.images]
            if turn.role == "assistant":
                views.append(TurnView("assistant", turn.text, [], turn.detail, turn_stats(turn.meta), turn_warnings(turn.meta)))
            else:
                desc = ", ".join(f"{i.name} (PDF)" if is_document(i) else f"{i.name} {i.width}x{i.height}" for i in images)
                stats = f"{len(images)} image{'s' * (len(images) != 1)} at detail {turn.detail}: {desc}" if images else ""
                views.append(TurnView(turn.role, turn.text, images, turn.detail, stats, []))
        return views

    def totals(self) -> dict[str, Any]:
        """Sums over the assistant turns: requests, estimated and reported tokens, cost, latency."""
        out: dict[str, Any] = {
            "requests": 0, "estimated_prompt": 0, "prompt": 0, "completion": 0, "cost": 0.0, "latency_s": 0.0,
            "stopped": 0, "billed_estimate": 0,
        }  # fmt: skip
        for turn in self.conversation.turns:
            if turn.role != "assistant":
                continue
            meta = turn.meta
            if not meta.get("usage") and not meta.get("estimate"):
                continue  # written by hand, never requested: nothing was billed
            out["requests"] += 1
            out["estimated_prompt"] += get_field(meta.get("estimate"), "prompt_tokens") or 0
            reported = get_field(meta.get("usage"), "prompt_tokens")
            if reported is None and meta.get("finish_reason") == "cancelled":
                # A stopped answer: the service bills the prompt it read; count the estimate.
                billed = get_field(meta.get("estimate"), "prompt_tokens") or 0
                out["stopped"] += 1
                out["billed_estimate"] += billed
                reported = billed
            out["prompt"] += reported or 0
            out["completion"] += get_field(meta.get("usage"), "completion_tokens") or 0
            out["cost"] += cost_total(meta.get("cost")) or 0.0
            latency = meta.get("latency_s")
            out["latency_s"] += latency if isinstance(latency, (int, float)) else 0.0
        return out

    def totals_line(self) -> str:
        t = self.totals()
        gone = f" · {fmt_cost(self.discarded_usd)} more on answers since replaced or deleted" if self.discarded_usd else ""
        if not t["requests"]:
            return "No requests yet." + gone
        stopped = ""
        if t["stopped"]:
            stopped = (
                f" (incl. ~{t['billed_estimate']:,} estimated for {t['stopped']} stopped "
                f"answer{'s' * (t['stopped'] != 1)})"
            )
        return (
            f"Total: {t['requests']} request{'s' * (t['requests'] != 1)} · prompt {t['prompt']:,} tokens{stopped} "
            f"(estimated {t['estimated_prompt']:,}) · completion {t['completion']:,} · "
            f"{fmt_cost(t['cost'])}{' (partly estimated)' * bool(t['stopped'])} · {t['latency_s']:.2f} s{gone}"
        )

    def raw_json(self) -> str:
        """The exact request and response of the last turn, data URLs shortened, keys redacted."""
        reply = self.last_reply
        if reply is None:
            return "No request sent yet in this session."
        doc = {"request": elide_data_urls(reply.request), "response": elide_data_urls(reply.raw)}
        return redact(json.dumps(doc, indent=2, ensure_ascii=False))

    def code_image_dir(self) -> Path:
        """Where View code saves the images it reads back: ``vizlab-code-images`` in the export folder."""
        return (self.export_dir if self.export_dir is not None else Path.cwd()) / "vizlab-code-images"

    def request_code(self, kind: str = "python", *, full: bool = False, runnable: bool = False) -> str:
        """The last request as code (``"python"``, ``"requests"`` or ``"curl"``), key from the env.

        ``runnable=True`` saves the images in :meth:`code_image_dir` and the code reads them
        back (what View code shows); else ``full=True`` inlines them and the default shortens
        them. Before the first Send: a note saying so.
        """
        from vizlab.widgets.code import LOCAL_KEY, request_code

        reply = self.last_reply
        if reply is None:
            return "# Send a message first: this shows the exact request it made, as code."
        secrets = list(client_secrets(self._client) or ())
        image_dir = self.code_image_dir() if runnable else None
        code = request_code(reply.request, self._client, kind, full=full, image_dir=image_dir, secrets=secrets)
        # The client's own key, should any text carry it; not redact()'s key-shaped patterns,
        # which would also blank the `api_key=os.environ[...]` that the code needs. The built-in
        # backend's default key is public (it accepts any key) and stays.
        for secret in secrets:
            if secret and len(secret) >= 4 and not (secret == LOCAL_KEY and self._client.backend == BackendKind.LOCAL):
                code = code.replace(secret, "***")
        return code

    # -- files --

    def _export_base(self) -> Path:
        folder = self.export_dir if self.export_dir is not None else Path.cwd()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return folder / f"chat-{stamp}"

    def export_json(self) -> Path:
        """Save the conversation as JSON (Conversation.save) next to the notebook; returns the path."""
        path = self._export_base().with_suffix(".json")
        return self.conversation.save(path)

    def export_markdown(self) -> Path:
        """Write the transcript as Markdown, images in a folder beside it; returns the path."""
        base = self._export_base()
        path = base.with_suffix(".md")
        if self.conversation.images:
            folder = base.parent / (base.name + "-images")
            text = self.conversation.to_markdown(image_dir=folder)
            # to_markdown links images by the folder path given; make the links relative to the file
            text = text.replace(f"]({folder.as_posix()}/", f"]({folder.name}/")
        else:
            text = self.conversation.to_markdown()
        path.write_text(text, encoding="utf-8")
        return path

