"""Scorers: an answer and an expected value in, a score in [0, 1] and a short reason out.

Named in a labels file's ``scorer`` column: ``exact``, ``normalised``, ``contains``, ``numeric``,
``regex``, ``json:FIELD`` (binary), ``set``, ``tokens``, a callable, ``judge`` (partial).
Trade-offs: scoring is strict and mechanical; the judge is a model grading a model, cached and
costed, and refuses the built-in analyst. The full table: docs/internals.md#experiments
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vizlab.client.targets import BackendKind
from vizlab.errors import VizlabError

__all__ = [
    "Score",
    "Scorer",
    "LLMJudge",
    "UnknownScorerError",
    "JudgeRefusedError",
    "SCORER_NAMES",
    "get_scorer",
    "normalise",
]

SCORER_NAMES = ("exact", "normalised", "contains", "numeric", "regex", "json:FIELD", "set", "tokens", "judge")


class UnknownScorerError(VizlabError, ValueError):
    """A scorer spec that names no scorer; ``spec`` is what was given."""

    def __init__(self, message: str, *, spec: object = None) -> None:
        super().__init__(message)
        self.spec = spec


class JudgeRefusedError(VizlabError):
    """The LLM judge will not grade with this client (the built-in analyst is not a vision model)."""


@dataclass(frozen=True)
class Score:
    """A verdict: ``value`` in [0, 1] (None: not scored) and why."""

    value: float | None
    reason: str


def normalise(text: str) -> str:
    """Case-folded, with whitespace and punctuation removed: ``"K7RF-49 xm."`` -> ``"k7rf49xm"``."""
    return re.sub(r"[\W_]+", "", str(text).casefold())


# A number standing alone: not part of a word or code ("GPT-4o", "1600x1200", "K7RF", "v2"), so
# "The model GPT-4o counts 3 circles" scores 3. A currency sign or % beside it is fine.
_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|\.\d)|(?<![\w.])[-+]?\.\d+(?!\w)")


def _first_number(text: str) -> float | None:
    match = _NUMBER_RE.search(str(text))
    return None if match is None else float(match.group(0).replace(",", ""))


def _items(text: Any) -> set[str]:
    if isinstance(text, (list, tuple, set)):
        parts = [str(x) for x in text]
    else:
        parts = re.split(r"[,;\n]+", str(text))
    return {n for n in (normalise(p) for p in parts) if n}


def _json_field(answer: str, path: str) -> Any:
    text = answer.strip()
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fence:
        text = fence.group(1)
    value: Any = json.loads(text)
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(part)
    return value


class Scorer:
    """A named scoring rule; call it with ``(answer, expected)``."""

    def __init__(self, name: str, fn: Callable[[str, Any], Score], *, binary: bool) -> None:
        self.name = name
        self.binary = binary
        self._fn = fn

    def __repr__(self) -> str:
        return f"Scorer({self.name!r}, binary={self.binary})"

    def __call__(self, answer: str | None, expected: Any) -> Score:
        if expected is None or (isinstance(expected, float) and math.isnan(expected)):
            return Score(None, "no expected value: not scored")
        if not answer:
            return Score(0.0, "empty answer")
        return self._fn(str(answer), expected)


def _exact(answer: str, expected: Any) -> Score:
    ok = answer.strip() == str(expected).strip()
    return Score(float(ok), "exact match" if ok else f"{answer.strip()[:40]!r} != {str(expected)[:40]!r}")


def _normalised(answer: str, expected: Any) -> Score:
    ok = normalise(answer) == normalise(str(expected))
    return Score(float(ok), "equal after normalising" if ok else "differs after normalising case/space/punctuation")


def _contains(answer: str, expected: Any) -> Score:
    want = normalise(str(expected))
    ok = bool(want) and want in normalise(answer)
    return Score(float(ok), f"contains {str(expected)[:40]!r}" if ok else f"{str(expected)[:40]!r} not found")


def _numeric(tolerance: str) -> Callable[[str, Any], Score]:
    relative = tolerance.endswith("%")
    tol = float(tolerance.rstrip("%") or 0) / (100 if relative else 1)

    def score(answer: str, expected: Any) -> Score:
        want = _first_number(str(expected))
        if want is None:
            return Score(None, f"expected {expected!r} is not a number")
        got = _first_number(answer)
        if got is None:
            return Score(0.0, "no number in the answer")
        allowed = tol * abs(want) if relative else tol
        ok = abs(got - want) <= allowed + 1e-12
        return Score(float(ok), f"{got:g} vs {want:g} (tolerance {tolerance or '0'})")

    return score


def _regex(answer: str, expected: Any) -> Score:
    ok = re.search(str(expected), answer) is not None
    return Score(float(ok), f"/{str(expected)[:40]}/ {'matches' if ok else 'does not match'}")


def _json(path: str) -> Callable[[str, Any], Score]:
    def score(answer: str, expected: Any) -> Score:
        try:
            got = _json_field(answer, path)
        except (ValueError, KeyError) as e:
            return Score(0.0, f"no field {path!r} in a JSON answer ({type(e).__name__})")
        ok = normalise(json.dumps(got) if isinstance(got, (dict, list)) else str(got)) == normalise(str(expected))
        return Score(float(ok), f"{path} = {str(got)[:40]!r}")

    return score


def _set_f1(answer: str, expected: Any) -> Score:
    want, got = _items(expected), _items(answer)
    if not want:
        return Score(None, "expected set is empty")
    hits = len(want & got)
    if hits == 0:
        return Score(0.0, f"0 of {len(want)} items")
    precision, recall = hits / len(got), hits / len(want)
    return Score(2 * precision * recall / (precision + recall), f"{hits} of {len(want)} items, {len(got)} given")


def _tokens(answer: str, expected: Any) -> Score:
    tokens = [t for t in (normalise(x) for x in str(expected).split()) if t]
    if not tokens:
        return Score(None, "expected text is empty")
    haystack = normalise(answer)
    found = sum(1 for t in tokens if t in haystack)
    return Score(found / len(tokens), f"{found} of {len(tokens)} tokens")


def from_callable(fn: Callable[..., Any], *, name: str | None = None, binary: bool = False) -> Scorer:
    """A :class:`Scorer` from ``fn(answer, expected)`` returning a float or ``(float, reason)``."""

    def score(answer: str, expected: Any) -> Score:
        out = fn(answer, expected)
        value, reason = out if isinstance(out, tuple) else (out, "custom scorer")
        if value is None:
            return Score(None, str(reason))
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"scorer {name or getattr(fn, '__name__', fn)!r} returned {value}, outside [0, 1]")
        return Score(value, str(reason))

    return Scorer(str(name or getattr(fn, "__name__", "custom")), score, binary=binary)


def get_scorer(spec: str | Scorer | Callable[..., Any], *, judges: dict[str, Any] | None = None) -> Scorer:
    """The :class:`Scorer` for ``spec`` (see the module table); :class:`UnknownScorerError` if none.

    >>> get_scorer("numeric:2%")("about 101 items", "100").value
    1.0
    """
    if isinstance(spec, (Scorer, LLMJudge)):
        return spec
    if callable(spec):
        return from_callable(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise UnknownScorerError(f"scorer {spec!r}: give a name ({', '.join(SCORER_NAMES)}) or a callable", spec=spec)
    name = spec.strip()
    base, _, arg = name.partition(":")
    base = base.lower()
    simple = {"exact": _exact, "normalised": _normalised, "normalized": _normalised, "contains": _contains,
              "regex": _regex}  # fmt: skip
    if base in simple and not arg:
        return Scorer(name, simple[base], binary=True)
    if base == "numeric":
        try:
            float(arg.rstrip("%") or 0)
        except ValueError:
            raise UnknownScorerError(f"scorer {spec!r}: the tolerance must be a number, e.g. numeric:0.5 or numeric:2%",
                                     spec=spec) from None  # fmt: skip
        return Scorer(name, _numeric(arg), binary=True)
    if base == "json" and arg:
        return Scorer(name, _json(arg), binary=True)
    if base in ("set", "f1") and not arg:
        return Scorer(name, _set_f1, binary=False)
    if base == "tokens" and not arg:
        return Scorer(name, _tokens, binary=False)
    if judges and name in judges:
        return judges[name]
    if base == "judge":
        raise UnknownScorerError(f"scorer {spec!r}: pass the judge to the run, scorers={{'judge': LLMJudge(client, rubric)}}",
                                 spec=spec)  # fmt: skip
    raise UnknownScorerError(f"scorer {spec!r} is not one of {', '.join(SCORER_NAMES)} (or a callable)", spec=spec)


_JUDGE_PROMPT = (
    "You grade an answer against a reference. Rubric: {rubric}\n\nQuestion: {question}\nReference answer: "
    "{expected}\nAnswer to grade: {answer}\n\nReply with JSON only: {{\"score\": <number from 0 to 1>, "
    "\"reason\": \"<one short sentence>\"}}"
)


def is_builtin_analyst(client: Any, model: str | None = None) -> bool:
    """Whether ``client`` (or a reply's ``model``) is the built-in backend's analyst."""
    if model is not None and "vizlab-local-analyst" in model:
        return True
    if getattr(client, "backend", None) == BackendKind.LOCAL:
        return True
    from urllib.parse import urlsplit

    host = (urlsplit(str(getattr(client, "endpoint", "") or "")).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


class LLMJudge(Scorer):
    """A model grading answers against a rubric; its calls go through the run's cache and cost.

    ``client`` is a :class:`~vizlab.client.Client` for the judging deployment. It refuses the
    built-in backend (:class:`JudgeRefusedError`): the local analyst reads text, it cannot judge.
    """

    def __init__(self, client: Any, rubric: str = "Is the answer correct and complete?", *, name: str = "judge",
                 max_tokens: int = 200) -> None:  # fmt: skip
        if is_builtin_analyst(client):
            raise JudgeRefusedError(
                "LLMJudge: the client is the built-in backend, whose 'model' is the local analyst (OCR), not a "
                "vision or language model; it would be grading itself. Give the judge an Azure or OpenAI client "
                "(vizlab.connect(...) with AZURE_OPENAI_ENDPOINT set), or use a mechanical scorer."
            )
        self.client = client
        self.rubric = rubric
        self.max_tokens = max_tokens
        super().__init__(name, self._grade_unbound, binary=False)
        self.question = ""
        self.cost_usd = 0.0
        self.calls = 0

    def prompt(self, question: str, answer: str, expected: Any) -> str:
        """The text sent to the judge for one answer."""
        return _JUDGE_PROMPT.format(rubric=self.rubric, question=question, expected=expected, answer=answer)

    def grade(self, question: str, answer: str | None, expected: Any, cache: Any = None) -> tuple[Score, float | None]:
        """A :class:`Score` for ``answer`` and the judge call's cost (None when served from ``cache``)."""
        if expected is None:
            return Score(None, "no expected value: not scored"), None
        if not answer:
            return Score(0.0, "empty answer"), None
        import hashlib

        text = self.prompt(question, answer, expected)
        key = hashlib.sha256(json.dumps(["judge", str(getattr(self.client, "deployment", "")), text,
                                         self.max_tokens]).encode("utf-8")).hexdigest()  # fmt: skip
        record = cache.get(key) if cache is not None else None
        cost: float | None = None
        if record is None:
            reply = self.client.chat([{"role": "user", "content": text}], max_tokens=self.max_tokens)
            if is_builtin_analyst(self.client, reply.model):
                raise JudgeRefusedError(f"LLMJudge: the judge deployment answered as {reply.model!r}, the local analyst")
            cost = float(reply.cost.total) if reply.cost is not None else None
            record = {"judge_text": reply.text, "judge_cost": cost}
            self.calls += 1
            self.cost_usd += cost or 0.0
            if cache is not None:
                cache.put(key, record)
        try:
            verdict = _json_field(str(record["judge_text"]), "score")
            reason = str(_json_field(str(record["judge_text"]), "reason"))
            value = min(1.0, max(0.0, float(verdict)))
        except (ValueError, KeyError, TypeError):
            return Score(None, f"the judge's reply was not the JSON asked for: {str(record['judge_text'])[:60]!r}"), cost
        return Score(value, f"judge: {reason[:80]}"), cost

    def _grade_unbound(self, answer: str, expected: Any) -> Score:
        return self.grade(self.question, answer, expected)[0]
