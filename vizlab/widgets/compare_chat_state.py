"""Chat-level compare: each turn goes to up to 3 deployments at once, one conversation each.

As the Foundry playground's compare mode: every column keeps its own history (its own
answers are what it sees next), the question and images are shared, the requests go out in
parallel, and each column counts its own tokens and cost. A column that fails says why and
misses that turn; the others keep theirs. No widgets: tests call :meth:`send` and read columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from vizlab.client.targets import BackendKind
from vizlab.errors import redact
from vizlab.widgets.chat_state import ChatSettings, ChatState
from vizlab.widgets.state import client_secrets, source_label

if TYPE_CHECKING:
    from vizlab.client.core import Client
    from vizlab.images.encode import EncodedImage

__all__ = ["CompareChatState", "MAX_COMPARE_COLUMNS"]

# The Foundry playground compares at most 3 models side by side ("Compare models" in the chat
# playground, read 2026); more columns would not fit a notebook column either.
MAX_COMPARE_COLUMNS = 3


class CompareChatState:
    """Up to 3 :class:`ChatState` columns, one per deployment, fed the same turns."""

    def __init__(self, client: Client, deployments: Sequence[str], *, max_tokens: int = 1000, detail: str = "auto",
                 max_usd: float | None = None) -> None:  # fmt: skip
        names = [deployments] if isinstance(deployments, str) else list(deployments)
        if not 1 <= len(names) <= MAX_COMPARE_COLUMNS or not all(isinstance(n, str) and n for n in names):
            raise ValueError(
                f"compare={names!r}: give 1 to {MAX_COMPARE_COLUMNS} deployment names, e.g. ['gpt-4o', 'gpt-4.1-mini']"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"compare={names!r} names a deployment twice; give each once")
        self._check_served(client, names)
        self.client = client
        self.detail = detail
        self.columns: list[ChatState] = [
            ChatState(client if n == client.deployment else client.with_deployment(n), max_tokens=max_tokens,
                      detail=detail, max_usd=max_usd)
            for n in names
        ]  # fmt: skip
        self.attachments: list[EncodedImage] = []
        self.error = ""

    @staticmethod
    def _check_served(client: Client, names: list[str]) -> None:
        """Refuse a deployment the backend does not serve, naming those it does (not on Azure:
        its model list is not a list of deployments)."""
        if client.backend == BackendKind.AZURE:
            return
        try:
            served = client.models()
        except Exception:  # unknown here: a bad name shows in its column at the first send
            return
        missing = [n for n in names if n not in served]
        if missing:
            raise ValueError(
                f"compare: {', '.join(repr(m) for m in missing)} not served by {client.endpoint}; it serves "
                f"{', '.join(served)}. Pick from those (or start the built-in backend with more deployments)."
            )

    @property
    def deployments(self) -> list[str]:
        return [c.client.deployment for c in self.columns]

    @property
    def busy(self) -> bool:
        return any(c.busy for c in self.columns)

    def attach_all(self, sources: Iterable[Any]) -> list[str]:
        """Attach images for the next turn of every column; bad ones become ``"name: reason"``."""
        from vizlab.images.encode import encode_image

        problems = []
        for i, source in enumerate(sources):
            try:
                image = encode_image(source)
            except Exception as e:  # shown in the panel; a bad file must not stop the others
                problems.append(redact(f"{source_label(source, i)}: {e}", client_secrets(self.client)))
                continue
            if all(a.sha256 != image.sha256 for a in self.attachments):
                self.attachments.append(image)
        self.error = "; ".join(problems)
        return problems

    def send(self, prompt: str, *, settings: ChatSettings | None = None, detail: str | None = None,
             on_chunk: Callable[[int, str], None] | None = None) -> list[bool]:  # fmt: skip
        """Send ``prompt`` (and the attachments) to every column in parallel; one success flag per column."""
        if self.busy:
            self.error = "A request is already running; press Stop first."
            return [False] * len(self.columns)
        if not prompt.strip() and not self.attachments:
            self.error = "Type a question (or attach an image) before pressing Send."
            return [False] * len(self.columns)
        self.error = ""
        for col in self.columns:
            col.attachments = list(self.attachments)

        def one(i: int) -> bool:
            col = self.columns[i]
            chunk = None if on_chunk is None else (lambda text: on_chunk(i, text))
            chosen = col.settings if settings is None else ChatSettings(**{**settings.__dict__, "max_tokens": col.clamp_max_tokens(settings.max_tokens)})
            return col.send(prompt, on_chunk=chunk, detail=detail or self.detail, settings=chosen)

        with ThreadPoolExecutor(max_workers=len(self.columns), thread_name_prefix="vizlab-compare-chat") as pool:
            results = list(pool.map(one, range(len(self.columns))))
        if all(results):
            self.attachments = []
        for col in self.columns:
            col.attachments = []
        return results

    def cancel(self) -> None:
        for col in self.columns:
            col.cancel()

    def new_chat(self) -> bool:
        ok = all([col.new_chat() for col in self.columns])
        if ok:
            self.attachments = []
        return ok

    def apply_system(self, text: str) -> None:
        for col in self.columns:
            col.apply_system(text)
