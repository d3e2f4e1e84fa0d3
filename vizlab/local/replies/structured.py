"""Structured outputs from the local analyst: a schema filled from its findings.

Puts the analyst's findings in the shape a request asks for (``response_format``,
``text.format``, a tool's ``parameters``). The wire contract wins: the value always validates.
A field is filled from a finding its name or description points at; where none does, ``null``
if allowed, else a marked placeholder (listed in ``x-vizlab-ungrounded``). The schema was checked
and bounded first (vizlab.local.requests.schemas); patterns run on RE2 there. Trade-off: fields
are matched by keywords, so describe a field to ground it. Details: docs/internals.md#local
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import jsonschema

try:  # Python 3.11+: the parser moved; both only parse (no matching, no backtracking)
    import re._parser as _sre_parser
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parser

from vizlab.local.replies import grounding
from vizlab.local.requests.schemas import json_type, pattern_matches, schema_types, schema_validator

__all__ = [
    "Findings",
    "fill",
    "fill_schema",
    "Filled",
    "findings_object",
    "Ungrounded",
    "needs_text",
]


@dataclass
class Findings:
    """What the analyst found in a request's images, flattened for filling a schema."""

    answer: str  # the analyst's prose answer (always grounded: it is what it said)
    text_lines: list[str] = field(default_factory=list)
    text_confidence: list[float] = field(default_factory=list)  # OCR confidence of each line
    colours: list[str] = field(default_factory=list)  # names, most dominant first
    shapes: dict[str, int] = field(default_factory=dict)  # kind -> count
    width: int | None = None
    height: int | None = None
    mime: str | None = None
    detail: str | None = None
    tiles: int | None = None
    brightness: float | None = None
    background: str | None = None
    images: int = 0
    # Per image, for json_object: the facts as measured.
    per_image: list[dict[str, Any]] = field(default_factory=list)
    prompt: str = ""  # the last user message's text (grounds places and queries on text-only prompts)

    @classmethod
    def from_facts(cls, facts: Sequence[Any], answer: str, prompt: str = "") -> "Findings":
        """From :class:`vizlab.local.analyst.ImageFacts` (the first image gives sizes)."""
        out = cls(answer=answer, images=len(facts), prompt=prompt)
        for f in facts:
            out.text_lines.extend(f.text_lines)
            out.text_confidence.extend(getattr(f, "text_confidence", []))
            for name, _share in f.colours:
                if name not in out.colours:
                    out.colours.append(name)
            for kind, n in f.shapes.items():
                out.shapes[kind] = out.shapes.get(kind, 0) + n
            out.per_image.append(
                {
                    "width": f.width,
                    "height": f.height,
                    "mime": f.mime,
                    "detail_used": f.detail_used,
                    "text_lines": list(f.text_lines),
                    "text_confidence": list(getattr(f, "text_confidence", [])),
                    "colours": [{"name": n, "share": s} for n, s in f.colours],
                    "shapes": dict(f.shapes),
                    "background": f.background,
                    "brightness": f.brightness,
                }
            )
        if facts:
            first = facts[0]
            out.width, out.height, out.mime = first.width, first.height, first.mime
            out.detail, out.tiles, out.brightness = first.detail_used, first.tiles, first.brightness
            out.background = first.background
        return out


def findings_object(findings: Findings) -> dict[str, Any]:
    """The JSON object a ``json_object`` request gets: the findings as measured."""
    return {
        "analyst": "vizlab-local-analyst",
        "emulated": True,
        "answer": findings.answer,
        "images": findings.per_image,
    }


# --- filling --------------------------------------------------------------------------------


class Ungrounded(Exception):
    """A schema the analyst cannot build any valid value for (e.g. a ``pattern`` no placeholder
    matches, or a required field that contains itself): the reply is a refusal naming the field."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(path)
        self.path = path
        self.kind = kind

    def refusal(self) -> str:
        """The refusal text sent when no valid value can be built."""
        shown = self.path or "(the root)"
        return (
            f"vizlab's local analyst cannot build a value for '{shown}' ({self.kind}) that the schema accepts. "
            "Loosen that field (allow null, drop its pattern or bounds) or describe what it should hold. "
            "This reply is emulated."
        )


@dataclass
class Filled:
    """A schema-valid value and the fields in it that hold placeholders (dotted paths)."""

    value: Any
    ungrounded: list[str] = field(default_factory=list)


_MISSING = object()
MAX_FILL_NODES = 2000  # schema nodes one fill may visit: a self-referencing schema cannot fan out
MAX_FILL_DEPTH = 12

_WORDS_TEXT = ("text", "line", "word", "ocr", "read", "sign", "caption", "label", "title", "heading", "written",
               "headline", "transcript")
_WORDS_ONE_LINE = ("title", "headline", "heading", "caption", "label", "name", "merchant", "store", "shop",
                   "vendor", "brand", "company", "business", "restaurant", "header", "axis")
_WORDS_SUMMARY = ("summary", "description", "describe", "answer", "explanation", "analysis", "notes", "comment")
_WORDS_MONEY = ("price", "amount", "total", "cost", "paid", "due", "subtotal", "sub total", "tax", "sum", "balance",
                "money", "fee", "charge", "tip")
_WORDS_KIND = ("kind", "type", "category", "class", "content")
_WORDS_PLACE = ("location", "city", "place", "country", "where", "town", "destination", "region")
_WORDS_QUERY = ("query", "question", "prompt", "topic", "search", "request", "input", "message")
_SHAPE_KINDS = {"circle": "circle", "rectangle": "rectangle", "square": "rectangle", "rect": "rectangle",
                "triangle": "triangle"}
_COLOUR_NAMES = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "grey",
                 "gray", "cyan")


@dataclass
class _Ctx:
    fx: Findings
    defs: dict[str, Any]
    ungrounded: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # text-derived strings already given to a field
    nodes: int = 0


def _words(name: str, node: dict[str, Any]) -> str:
    """The field's name split into lower-case words, plus its description."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ").lower()
    desc = node.get("description")
    return f"{spaced} {desc.lower() if isinstance(desc, str) else ''}"


def _has(words: str, *stems: str) -> bool:
    """True if a word starts with one of ``stems``; a stem in :data:`_WORDS_MONEY` must be the whole
    word (or its plural), so "summary" is not a sum and "feedback" not a fee."""
    return any(re.search(rf"\b{re.escape(s)}s?\b" if s in _WORDS_MONEY else rf"\b{re.escape(s)}", words)
               for s in stems)


def needs_text(schema: Any) -> bool:
    """True if a schema may be filled from the text the analyst reads (a field or description
    naming text, words, lines, a sign, an amount...): then the findings must come with OCR.

    >>> needs_text({"type": "object", "properties": {"sign_text": {"type": "string"}}})
    True
    >>> needs_text({"type": "object", "properties": {"circles": {"type": "integer"}}})
    False
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", json.dumps(schema)).replace("_", " ").lower()
    return _has(spaced, *_WORDS_TEXT, *_WORDS_ONE_LINE, *_WORDS_MONEY, "word", "date", "confidence", "kind",
                "char", "number")


def fill(schema: dict[str, Any], findings: Findings) -> Filled:
    """A value valid against ``schema`` from ``findings``. A field nothing grounds gets ``null``
    when it may, else a type-valid placeholder (the first enum value, 0, "", []) and its path in
    ``ungrounded``; optional fields are left out. Raise :class:`Ungrounded` only when no valid
    value can be built.

    >>> f = Findings(answer="A red circle.", colours=["red", "white"], shapes={"circle": 1}, images=1)
    >>> done = fill({"type": "object", "properties": {"circles": {"type": "integer"},
    ...     "main_colour": {"type": "string", "enum": ["blue", "red"]}, "price": {"type": "number"}},
    ...     "required": ["circles", "main_colour", "price"]}, f)
    >>> done.value, done.ungrounded
    ({'circles': 1, 'main_colour': 'red', 'price': 0}, ['price'])
    """
    defs: dict[str, Any] = {"#": schema}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            defs.update({f"#/{key}/{k}": v for k, v in schema[key].items()})
    ctx = _Ctx(findings, defs)
    value = _fill(schema, "", "", ctx, 0, optional=False)
    error = next(iter(schema_validator(schema).iter_errors(value)), None) if _checkable(schema) else None
    if error is not None:
        raise Ungrounded(".".join(str(p) for p in error.absolute_path), str(error.validator))
    return Filled(value, ctx.ungrounded)


def fill_schema(schema: dict[str, Any], findings: Findings) -> Any:
    """The value of :func:`fill` alone."""
    return fill(schema, findings).value


def _checkable(schema: dict[str, Any]) -> bool:
    try:
        schema_validator(schema).check_schema(schema)
    except jsonschema.SchemaError:
        return False  # a non-strict schema jsonschema cannot read: the fill is what it is
    return True


def _resolve(node: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
    """``node`` with its ``$ref`` (one level) merged in."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    target = ctx.defs.get(ref)
    return {**(target if isinstance(target, dict) else {}), **{k: v for k, v in node.items() if k != "$ref"}}


def _fill(node: Any, name: str, path: str, ctx: _Ctx, depth: int, *, optional: bool) -> Any:
    """A grounded value; else null (nullable), nothing (optional) or a recorded placeholder."""
    ctx.nodes += 1
    if not isinstance(node, dict):
        return None
    if depth > MAX_FILL_DEPTH or ctx.nodes > MAX_FILL_NODES:
        raise Ungrounded(path, "a schema too deep or too large to fill")
    for _ in range(4):  # a chain of $refs, bounded
        node = _resolve(node, ctx)
    if "const" in node:
        return node["const"]
    value = _ground(node, name, path, ctx, depth)
    if value is not _MISSING:
        return value
    if _nullable(node):
        return None
    if optional:
        return _MISSING
    ctx.ungrounded.append(path or "(root)")
    return _placeholder(node, ctx, depth)


def _nullable(node: dict[str, Any]) -> bool:
    if "null" in schema_types(node):
        return True
    branches = node.get("anyOf")
    return isinstance(branches, list) and any(isinstance(b, dict) and b.get("type") == "null" for b in branches)


def _ground(node: dict[str, Any], name: str, path: str, ctx: _Ctx, depth: int) -> Any:
    branches = node.get("anyOf")
    if isinstance(branches, list):
        for branch in branches:
            if isinstance(branch, dict) and branch.get("type") != "null":
                merged = _resolve({"description": node.get("description"), **branch}, ctx)
                value = _ground(merged, name, path, ctx, depth + 1)
                if value is not _MISSING:
                    return value
        return _MISSING
    for kind in [t for t in schema_types(node) if t != "null"]:
        value = _ground_typed(kind, node, name, path, ctx, depth)
        if value is not _MISSING:
            return value
    return _MISSING


def _ground_typed(kind: str, node: dict[str, Any], name: str, path: str, ctx: _Ctx, depth: int) -> Any:
    words = _words(name, node)
    if "enum" in node and isinstance(node["enum"], list):
        options = [v for v in node["enum"] if json_type(v) == kind or (kind == "number" and json_type(v) == "integer")]
        return _pick_enum(options, name, words, ctx.fx)
    if kind == "object":
        return _fill_object(node, path, ctx, depth)
    if kind == "array":
        return _ground_array(node, name, path, ctx, depth)
    if kind == "string":
        return _ground_string(node, name, words, ctx)
    if kind in ("integer", "number"):
        number = _ground_number(name, words, ctx.fx, integer=kind == "integer")
        return number if number is not _MISSING and _in_range(number, node) else _MISSING
    if kind == "boolean":
        return _ground_bool(words, ctx.fx)
    return _MISSING


def _in_range(number: float, node: dict[str, Any]) -> bool:
    """A finding outside the schema's bounds is not forced into them."""
    low, high = node.get("minimum"), node.get("maximum")
    xlow, xhigh, step = node.get("exclusiveMinimum"), node.get("exclusiveMaximum"), node.get("multipleOf")
    checks = [
        not isinstance(low, (int, float)) or number >= low,
        not isinstance(high, (int, float)) or number <= high,
        not isinstance(xlow, (int, float)) or isinstance(xlow, bool) or number > xlow,
        not isinstance(xhigh, (int, float)) or isinstance(xhigh, bool) or number < xhigh,
        not isinstance(step, (int, float)) or step <= 0 or abs(number / step - round(number / step)) < 1e-9,
    ]
    return all(checks)


def _fill_object(node: dict[str, Any], path: str, ctx: _Ctx, depth: int) -> Any:
    props = node.get("properties") or {}
    raw_required = node.get("required")
    required: list[Any] = raw_required if isinstance(raw_required, list) else []
    out: dict[str, Any] = {}
    for key, sub in props.items() if isinstance(props, dict) else ():
        sub_path = f"{path}.{key}" if path else str(key)
        value = _fill(sub, str(key), sub_path, ctx, depth + 1, optional=key not in required)
        if value is not _MISSING:
            out[key] = value
    return out


def _one_image(fx: Findings, i: int) -> Findings:
    """The findings of image ``i`` alone."""
    facts = fx.per_image[i]
    one = Findings(answer=fx.answer, images=1, per_image=[facts], prompt=fx.prompt)
    one.text_lines = list(facts["text_lines"])
    one.text_confidence = list(facts.get("text_confidence", []))
    one.colours = [c["name"] for c in facts["colours"]]
    one.shapes = dict(facts["shapes"])
    one.width, one.height, one.mime = facts["width"], facts["height"], facts["mime"]
    one.detail, one.background, one.brightness = facts["detail_used"], facts["background"], facts["brightness"]
    return one


def _one_line(fx: Findings, i: int) -> Findings:
    """The findings of text line ``i`` alone (its text and OCR confidence)."""
    one = Findings(answer=fx.answer, images=1, prompt=fx.prompt, text_lines=[fx.text_lines[i]])
    if i < len(fx.text_confidence):
        one.text_confidence = [fx.text_confidence[i]]
    return one


def _ground_array(node: dict[str, Any], name: str, path: str, ctx: _Ctx, depth: int) -> Any:
    raw_items = node.get("items")
    items: dict[str, Any] = _resolve(raw_items, ctx) if isinstance(raw_items, dict) else {}
    words = _words(name, node) + " " + _words("", items)
    item_types = schema_types(items)
    fx = ctx.fx
    values: list[Any]
    if "object" in item_types or "properties" in items:
        parts = _object_items(name, words, fx)
        if parts is None:
            return _MISSING
        values = []
        for i, part in enumerate(parts):
            sub = _Ctx(part, ctx.defs, used=set(), nodes=ctx.nodes)
            values.append(_fill(items, name, f"{path}[{i}]", sub, depth + 1, optional=False))
            ctx.ungrounded.extend(sub.ungrounded)
            ctx.nodes = sub.nodes
    else:
        found = _list_findings(words, fx, numeric=bool({"number", "integer"} & set(item_types)))
        if found is None:
            return _MISSING
        values = found
        if "enum" in items and isinstance(items["enum"], list):
            allowed = {str(v).lower(): v for v in items["enum"]}
            values = [allowed[str(v).lower()] for v in values if str(v).lower() in allowed]
        elif item_types and not any(json_type(v) in item_types or
                                    (json_type(v) == "integer" and "number" in item_types) for v in values[:1]):
            if values:
                return _MISSING
        if "integer" in item_types:
            values = [int(v) for v in values if isinstance(v, (int, float)) and float(v).is_integer()]
    high, low = node.get("maxItems"), node.get("minItems")
    if isinstance(high, int):
        values = values[:high]
    if isinstance(low, int) and len(values) < low:
        return _MISSING
    return values


def _object_items(name: str, words: str, fx: Findings) -> list[Findings] | None:
    """The findings each object of an array is filled from: one per text line, or one per image."""
    if _has(words, "line", "text", "word", "ocr") and not _has(words, "image", "picture", "photo"):
        return [_one_line(fx, i) for i in range(len(fx.text_lines))] if fx.images else None
    if fx.images:
        return [_one_image(fx, i) for i in range(fx.images) if i < len(fx.per_image)]
    return None


def _list_findings(words: str, fx: Findings, *, numeric: bool) -> list[Any] | None:
    if _has(words, "colour", "color"):
        return list(fx.colours) if fx.images else None
    if _has(words, "confidence", "score", "certaint"):
        return list(fx.text_confidence) if fx.text_lines else None
    if _has(words, "date"):
        return grounding.dates(fx.text_lines) if fx.images else None
    if _has(words, *_WORDS_MONEY):
        return grounding.amounts(fx.text_lines) if fx.images else None
    if numeric and _has(words, "number", "value", "figure"):
        return grounding.numbers(fx.text_lines) if fx.images else None
    if _has(words, "shape", "object", "item", "thing"):
        return [kind for kind, n in fx.shapes.items() for _ in range(n)] if fx.images else None
    if _has(words, "word"):
        return [w for line in fx.text_lines for w in line.split()] if fx.images else None
    if _has(words, *_WORDS_TEXT):
        return list(fx.text_lines) if fx.images else None
    if _has(words, *_WORDS_PLACE):
        return _proper_nouns(fx.prompt) or None
    return None


def _proper_nouns(text: str) -> list[str]:
    """Capitalised words not opening a sentence: places and names asked about in a prompt.

    >>> _proper_nouns("What is the weather in Paris and New York today? Tell me.")
    ['Paris', 'New York']
    """
    out: list[str] = []
    for match in re.finditer(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)*)", text.strip()):
        if match.group(1) not in out and match.group(1) not in ("I",):
            out.append(match.group(1))
    return out


def _string_candidates(name: str, words: str, fx: Findings) -> tuple[list[str], bool]:
    """The strings a field may hold, best first, and whether they are text read (kept distinct)."""
    kv = grounding.key_values(fx.text_lines)
    key = grounding.field_key(name)
    if key and key in kv:
        return [kv[key]], True
    measured = _measured_strings(words, fx)
    if measured is not None:
        return measured, False
    return _read_strings(key, words, kv, fx), True


def _measured_strings(words: str, fx: Findings) -> list[str] | None:
    """Strings from what the analyst measured (colours, shapes, mime, detail, kind), or None."""
    if _has(words, "colour", "color"):
        first = [fx.background] if _has(words, "background") and fx.background else []
        return first + list(fx.colours)
    if _has(words, "shape"):
        return sorted(fx.shapes, key=lambda k: -fx.shapes[k])
    if _has(words, "mime", "media type", "file type", "format"):
        return [fx.mime] if fx.mime else []
    if _has(words, "detail"):
        return [fx.detail] if fx.detail else []
    if _has(words, "background"):
        return [fx.background] if fx.background else []
    kind = grounding.content_kind(fx.text_lines, fx.shapes, fx.colours, fx.images)
    if _has(words, *_WORDS_KIND) and not _has(words, *_WORDS_TEXT, *_WORDS_MONEY, "date"):
        return [kind] if kind else []
    if _has(words, *_WORDS_SUMMARY) and not _has(words, *_WORDS_TEXT):
        return [fx.answer]
    return None


def _read_strings(key: str, words: str, kv: dict[str, str], fx: Findings) -> list[str]:
    """Strings from the text read (dates, amounts, lines) or the prompt (places, queries)."""
    if _has(words, "date", "day"):
        return grounding.dates(fx.text_lines)
    if _has(words, *_WORDS_MONEY):
        money = [v for k, v in kv.items() if k in key.split("_") or k == key]
        return money + [f"{a:.2f}" for a in grounding.amounts(fx.text_lines)]
    if _has(words, *_WORDS_ONE_LINE):
        return list(fx.text_lines) + ([" ".join(fx.text_lines)] if len(fx.text_lines) > 1 else [])
    if _has(words, *_WORDS_TEXT):
        return ([" ".join(fx.text_lines)] if fx.text_lines else []) + list(fx.text_lines)
    if _has(words, *_WORDS_PLACE):
        return _proper_nouns(fx.prompt)
    if _has(words, *_WORDS_QUERY):
        return [fx.prompt] if fx.prompt else []
    return []


def _ground_string(node: dict[str, Any], name: str, words: str, ctx: _Ctx) -> Any:
    candidates, distinct = _string_candidates(name, words, ctx.fx)
    pattern = node.get("pattern")
    for candidate in candidates:
        if not isinstance(candidate, str) or (distinct and candidate in ctx.used):
            continue
        if isinstance(pattern, str) and not pattern_matches(pattern, candidate):
            continue
        if distinct:
            ctx.used.add(candidate)
        return candidate
    return _MISSING


def _ground_number(name: str, words: str, fx: Findings, *, integer: bool) -> Any:
    kv = grounding.key_values(fx.text_lines)
    key = grounding.field_key(name)
    value: Any = grounding.to_number(kv[key]) if key in kv else _MISSING
    if value is _MISSING or value is None:
        value = _measured_number(words, fx, integer=integer)
    if value is None or value is _MISSING:
        return _MISSING
    if integer:
        return int(value) if float(value).is_integer() or not _has(words, *_WORDS_MONEY) else _MISSING
    return value


def _measured_number(words: str, fx: Findings, *, integer: bool) -> Any:
    shape = next((kind for stem, kind in _SHAPE_KINDS.items() if _has(words, stem)), None)
    measured = fx.images > 0
    if _has(words, "confidence", "certaint", "probability") and not integer:
        return round(sum(fx.text_confidence) / len(fx.text_confidence), 4) if fx.text_confidence else _MISSING
    rules: list[tuple[bool, Any]] = [
        (_has(words, "width"), fx.width),
        (_has(words, "height"), fx.height),
        (_has(words, "tile"), fx.tiles),
        (shape is not None, fx.shapes.get(shape or "", 0) if measured else None),
        (_has(words, "colour", "color"), len(fx.colours) if measured else None),
        (_has(words, "word"), sum(len(line.split()) for line in fx.text_lines) if measured else None),
        (_has(words, "line"), len(fx.text_lines) if measured else None),
        (_has(words, "character", "char", "letter", "length"),
         sum(len(line) for line in fx.text_lines) if measured else None),
        (_has(words, "image", "picture", "photo"), fx.images),
    ]
    for hit, value in rules:
        if hit:
            return value
    if _has(words, *_WORDS_MONEY) and not _has(words, "shape", "object", "count", "item", "how many"):
        found = grounding.amounts(fx.text_lines) if measured else []
        if not found:
            return _MISSING  # a total with no amount read is not a count of shapes
        return found[-1] if _has(words, "total", "due", "balance") else found[0]
    if _has(words, "shape", "object", "count", "number", "total", "item", "how many"):
        return sum(fx.shapes.values()) if measured else None
    if _has(words, "bright", "lumin") and not integer:
        return fx.brightness
    return _MISSING


def _ground_bool(words: str, fx: Findings) -> Any:
    if not fx.images:
        return _MISSING
    for colour in _COLOUR_NAMES:
        if _has(words, colour):
            return colour in fx.colours
    rules: list[tuple[bool, Any]] = [
        (_has(words, *_WORDS_TEXT), bool(fx.text_lines)),
        (_has(words, "shape", "circle", "rectangle", "triangle", "square"), bool(fx.shapes)),
        (_has(words, "background", "plain"), fx.background is not None),
        (_has(words, "dark") and fx.brightness is not None, fx.brightness is not None and fx.brightness < 0.35),
        (_has(words, "bright", "light") and fx.brightness is not None,
         fx.brightness is not None and fx.brightness > 0.65),
    ]
    return next((value for hit, value in rules if hit), _MISSING)


def _pick_enum(options: list[Any], name: str, words: str, fx: Findings) -> Any:
    """The option the findings name: a value read for this key, the kind of image, shapes,
    colours, detail, mime, a word read in the image."""
    by_lower = {str(o).lower(): o for o in options}
    candidates: list[str] = []
    kv = grounding.key_values(fx.text_lines)
    key = grounding.field_key(name)
    if key in kv:
        candidates.append(kv[key])
    kind = grounding.content_kind(fx.text_lines, fx.shapes, fx.colours, fx.images)
    if kind and _has(words, *_WORDS_KIND):
        candidates += list(grounding.KIND_WORDS[kind])
    if _has(words, "shape"):
        candidates += sorted(fx.shapes, key=lambda k: -fx.shapes[k])
    if _has(words, "background") and fx.background:
        candidates.append(fx.background)
    candidates += list(fx.colours)
    candidates += sorted(fx.shapes, key=lambda k: -fx.shapes[k])
    candidates += [c for c in (fx.detail, fx.background, (fx.mime or "").split("/")[-1]) if c]
    if fx.images and _has(words, *_WORDS_TEXT):
        candidates += ["yes", "true"] if fx.text_lines else ["no", "false", "none"]
    candidates += [w.strip(".,:;!?").lower() for line in fx.text_lines for w in line.split()]
    candidates += [line.lower() for line in fx.text_lines]
    for candidate in candidates:
        hit = by_lower.get(str(candidate).lower())
        if hit is not None:
            return hit
    return _MISSING


def _placeholder(node: dict[str, Any], ctx: _Ctx, depth: int) -> Any:
    """A type-valid value for a field nothing grounds: the first enum value, 0, "", [], false."""
    ctx.nodes += 1
    if depth > MAX_FILL_DEPTH or ctx.nodes > MAX_FILL_NODES:
        raise Ungrounded("", "a schema too deep or too large to fill")
    node = _resolve(_resolve(node, ctx), ctx)
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    branches = node.get("anyOf")
    if isinstance(branches, list):
        real = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
        return None if len(real) < len(branches) or not real else _placeholder(real[0], ctx, depth + 1)
    kinds = [t for t in schema_types(node) if t != "null"] or (["object"] if "properties" in node else ["string"])
    return _typed_placeholder(kinds[0], node, ctx, depth)


def _typed_placeholder(kind: str, node: dict[str, Any], ctx: _Ctx, depth: int) -> Any:
    if kind == "object":
        raw_required, raw_props = node.get("required"), node.get("properties")
        required: list[Any] = raw_required if isinstance(raw_required, list) else []
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        return {k: _placeholder(props[k], ctx, depth + 1) for k in required if k in props}
    if kind == "array":
        raw_low, raw_items = node.get("minItems"), node.get("items")
        low = raw_low if isinstance(raw_low, int) else 0
        items: dict[str, Any] = raw_items if isinstance(raw_items, dict) else {}
        return [_placeholder(items, ctx, depth + 1) for _ in range(min(low, 100))]
    if kind in ("integer", "number"):
        return _number_placeholder(node, integer=kind == "integer")
    if kind == "boolean":
        return False
    return _string_placeholder(node)


def _number_placeholder(node: dict[str, Any], *, integer: bool) -> Any:
    value: float = 0
    low, xlow, high = node.get("minimum"), node.get("exclusiveMinimum"), node.get("maximum")
    if isinstance(low, (int, float)) and value < low:
        value = low
    if isinstance(xlow, (int, float)) and not isinstance(xlow, bool) and value <= xlow:
        value = xlow + 1
    if isinstance(high, (int, float)) and value > high:
        value = high
    return int(math.ceil(value)) if integer else value


def _string_placeholder(node: dict[str, Any]) -> str:
    pattern = node.get("pattern")
    if not isinstance(pattern, str) or pattern_matches(pattern, ""):
        return ""
    made = example_of(pattern)
    return made if made is not None else ""


def example_of(pattern: str) -> str | None:
    """A short string ``pattern`` matches (checked on RE2), built from its parse tree, or None.

    >>> example_of("^(.+)+X$"), example_of("^[A-Z]{3}-[0-9]{2,}$"), example_of("^(?:cat|dog)s?$")
    ('aX', 'AAA-00', 'cat')
    """
    try:
        tree = _sre_parser.parse(pattern)
    except Exception:  # noqa: BLE001 - any parse problem: no example
        return None
    budget = [2000]
    text = _example(tree, budget)
    return text if text is not None and pattern_matches(pattern, text) else None


def _example(items: Any, budget: list[int]) -> str | None:
    out: list[str] = []
    for op, arg in items:
        budget[0] -= 1
        if budget[0] < 0:
            return None
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_class_example(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = arg
            piece = _example(sub, budget)
            if piece is None:
                return None
            out.append(piece * min(low, 100))
        elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
            piece = _example(arg[-1] if name == "SUBPATTERN" else arg, budget)
            if piece is None:
                return None
            out.append(piece)
        elif name == "BRANCH":
            piece = _example(arg[1][0], budget)
            if piece is None:
                return None
            out.append(piece)
        elif name not in ("AT",):
            return None
    return "".join(out)


def _class_example(members: Any) -> str:
    for op, arg in members:
        name = str(op)
        if name == "LITERAL":
            return chr(arg)
        if name == "RANGE":
            return chr(arg[0])
        if name == "CATEGORY":
            return {"CATEGORY_DIGIT": "0", "CATEGORY_SPACE": " "}.get(str(arg), "a")
    return "a"


def dumps(value: Any) -> str:
    """The JSON text of a filled value, as the service writes content (compact, UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
