"""Structured outputs from the local analyst: the schema checks the service makes, and filling.

Puts the analyst's findings in the shape a request asks for (``response_format``,
``text.format``, a tool's ``parameters``). Honest by construction: a field is filled only from a
finding its name or description points at, else ``null`` or a refusal naming the field, never an
invented value; ``strict: true`` schemas get the service's checks. Trade-off: fields are matched
by keywords, so describe a field to ground it. Details: docs/internals.md#local
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import jsonschema

from vizlab.local.http.errors import AzureError, bad_request

__all__ = [
    "Findings",
    "SchemaFormat",
    "STRICT_ALLOWED_KEYWORDS",
    "check_strict_schema",
    "parse_response_format",
    "fill_schema",
    "findings_object",
    "Ungrounded",
    "needs_text",
]

# Strict mode is an allowlist at the service: a keyword outside it is a 400, not ignored.
# Supported besides the structural ones: string pattern/format, number minimum/maximum/
# exclusiveMinimum/exclusiveMaximum/multipleOf, array minItems/maxItems (OpenAI "Structured model
# outputs" guide, "Supported properties", as quoted in prism-php/prism#533, 2025-08-01). Reported
# refusals since: "'minLength' is not permitted" (coder/mux#1220, 2025-12-18), "'uniqueItems' is not
# permitted" (mastra-ai/mastra#23321, 2026-09-08). `title` is accepted (every Pydantic schema has it).
STRICT_ALLOWED_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
        "$ref", "$defs", "definitions", "description", "title",
        "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minItems", "maxItems",
    }
)
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")
# OpenAI API reference, response_format.json_schema.name: "Must be a-z, A-Z, 0-9, or contain
# underscores and dashes, with a maximum length of 64" (as mirrored in IBM watsonx-ai-node-sdk
# ChatsJSONSchema docs, 2025).
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class Findings:
    """What the analyst found in a request's images, flattened for filling a schema."""

    answer: str  # the analyst's prose answer (always grounded: it is what it said)
    text_lines: list[str] = field(default_factory=list)
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

    @classmethod
    def from_facts(cls, facts: Sequence[Any], answer: str) -> "Findings":
        """From :class:`vizlab.local.analyst.ImageFacts` (the first image gives sizes)."""
        out = cls(answer=answer, images=len(facts))
        for f in facts:
            out.text_lines.extend(f.text_lines)
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


# --- response_format ------------------------------------------------------------------------


@dataclass
class SchemaFormat:
    """A validated json_schema format: its name, the schema and whether it is strict."""

    name: str
    schema: dict[str, Any]
    strict: bool


def parse_response_format(
    value: Any, *, param: str = "response_format", schema_param: str | None = None, nested: bool = True
) -> tuple[str, SchemaFormat | None]:
    """Check a ``response_format`` (Chat: ``{"type", "json_schema": {...}}``) or a Responses
    ``text.format`` (``nested=False``: name/schema/strict beside ``type``). Returns
    ``(type, SchemaFormat | None)``; raises the service's 400.
    """
    if not isinstance(value, dict):
        raise bad_request("invalid_type", f"Invalid type for '{param}': expected an object.", param)
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in RESPONSE_FORMAT_TYPES:
        options = ", ".join(f"'{t}'" for t in RESPONSE_FORMAT_TYPES)
        shown = repr(kind) if isinstance(kind, str) and len(kind) <= 40 else type(kind).__name__
        raise bad_request(
            "invalid_value", f"Invalid value: {shown}. Supported values are: {options}.", f"{param}.type"
        )
    if kind != "json_schema":
        return kind, None
    spec_param = f"{param}.json_schema" if nested else param
    spec = value.get("json_schema") if nested else value
    if spec is None:
        raise bad_request("missing_required_parameter", f"Missing required parameter: '{spec_param}'.", spec_param)
    if not isinstance(spec, dict):
        raise bad_request("invalid_type", f"Invalid type for '{spec_param}': expected an object.", spec_param)
    name = spec.get("name")
    if name is None:
        raise bad_request(
            "missing_required_parameter", f"Missing required parameter: '{spec_param}.name'.", f"{spec_param}.name"
        )
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad_request(
            "invalid_value",
            f"Invalid '{spec_param}.name': string does not match pattern. Expected a string that matches the "
            "pattern '^[a-zA-Z0-9_-]+$' (at most 64 characters).",
            f"{spec_param}.name",
        )
    schema = spec.get("schema", {"type": "object", "properties": {}, "additionalProperties": False, "required": []})
    if not isinstance(schema, dict):
        raise bad_request(
            "invalid_type", f"Invalid type for '{spec_param}.schema': expected an object.", f"{spec_param}.schema"
        )
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise bad_request(
            "invalid_type", f"Invalid type for '{spec_param}.strict': expected a boolean.", f"{spec_param}.strict"
        )
    fmt = SchemaFormat(name=name, schema=schema, strict=bool(strict))
    if fmt.strict:
        # Chat answers these with code null and param "response_format" (an Azure body quoted in
        # moeru-ai/xsai#202, 2025-07-31); the Responses API with code "invalid_json_schema" and
        # param "text.format.schema" (mavam/pi-web-providers#14, 2026-04-15).
        check_strict_schema(
            schema,
            what=f"response_format '{name}'",
            param=schema_param or param,
            code=None if nested else "invalid_json_schema",
        )
    return kind, fmt


def _error(message: str, param: str, code: str | None) -> AzureError:
    """A 400 ``invalid_request_error``; ``code`` may be null, as the service sends it for schemas."""
    return AzureError(400, code, message, param=param)


def _schema_error(what: str, context: tuple[str, ...], problem: str, param: str, code: str | None) -> AzureError:
    return _error(f"Invalid schema for {what}: In context={context!r}, {problem}", param, code)


def check_strict_schema(schema: dict[str, Any], *, what: str, param: str, code: str | None) -> None:
    """Refuse a schema the service refuses under ``strict: true``, naming the keyword's path.

    Messages in the service's words: "In context=('properties', 'x'), 'additionalProperties' is
    required to be supplied and to be false." (moeru-ai/xsai#202, 2025-07-31); "'required' is
    required to be supplied and to be an array including every key in properties. Missing 'x'."
    (vercel/ai#6484, 2025-05-26); "array schema missing items." (modelscope/ms-agent#610,
    2025-01-20); "schema must have a 'type' key." (FlowiseAI/Flowise#4502, 2025-05-26);
    "'minLength' is not permitted." (coder/mux#1220, 2025-12-18).

    >>> check_strict_schema({"type": "object", "properties": {}, "required": [],
    ...     "additionalProperties": False}, what="response_format 'x'", param="response_format", code=None)
    """
    root_type = schema.get("type")
    if root_type != "object" or "anyOf" in schema:
        raise _error(
            f"Invalid schema for {what}: schema must be a JSON Schema of 'type: \"object\"', got "
            f"'type: \"{root_type}\"'.",
            param,
            code,
        )
    _check_node(schema, (), what, param, code)
    for defs_key in ("$defs", "definitions"):
        defs = schema.get(defs_key)
        if isinstance(defs, dict):
            for name, sub in defs.items():
                if isinstance(sub, dict):
                    _check_node(sub, (defs_key, str(name)), what, param, code)


def _check_node(node: dict[str, Any], ctx: tuple[str, ...], what: str, param: str, code: str | None) -> None:
    for key in node:
        if key not in STRICT_ALLOWED_KEYWORDS:
            raise _schema_error(what, ctx, f"'{key}' is not permitted.", param, code)
    if "$ref" in node:
        return
    if "anyOf" in node:
        branches = node["anyOf"]
        if not isinstance(branches, list) or not branches:
            raise _schema_error(what, ctx, "'anyOf' must be a non-empty array of schemas.", param, code)
        for i, sub in enumerate(branches):
            if isinstance(sub, dict):
                _check_node(sub, (*ctx, "anyOf", str(i)), what, param, code)
        return
    if "type" not in node and "enum" not in node and "const" not in node:
        raise _schema_error(what, ctx, "schema must have a 'type' key.", param, code)
    types = _types(node)
    if "object" in types:
        if node.get("additionalProperties") is not False:
            raise _schema_error(
                what, ctx, "'additionalProperties' is required to be supplied and to be false.", param, code
            )
        props = node.get("properties") or {}
        required = node.get("required")
        missing = [k for k in props if not isinstance(required, list) or k not in required]
        if missing:
            raise _schema_error(
                what,
                ctx,
                "'required' is required to be supplied and to be an array including every key in properties. "
                f"Missing '{missing[0]}'.",
                param,
                code,
            )
        for name, sub in props.items():
            if isinstance(sub, dict):
                _check_node(sub, (*ctx, "properties", str(name)), what, param, code)
    if "array" in types:
        items = node.get("items")
        if not isinstance(items, dict):
            raise _schema_error(what, ctx, "array schema missing items.", param, code)
        _check_node(items, (*ctx, "items"), what, param, code)


def _types(node: dict[str, Any]) -> list[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    if "enum" in node and isinstance(node["enum"], list):
        return sorted({_json_type(v) for v in node["enum"]})
    if "const" in node:
        return [_json_type(node["const"])]
    return []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --- filling --------------------------------------------------------------------------------


class Ungrounded(Exception):
    """A field the analyst found nothing for, where the schema does not allow null."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(path)
        self.path = path
        self.kind = kind

    def refusal(self) -> str:
        """The refusal text sent instead of an invented value."""
        shown = self.path or "(the root)"
        return (
            f"vizlab's local analyst cannot fill '{shown}' ({self.kind}): it found nothing in the image that "
            "grounds it, and the schema does not allow null. Allow null for it (e.g. \"type\": "
            f"[\"{self.kind}\", \"null\"]), describe what it should hold, or drop it. This reply is emulated."
        )


_MISSING = object()

_WORDS_TEXT = ("text", "line", "word", "ocr", "read", "sign", "caption", "label", "title", "heading", "written")
_WORDS_SUMMARY = ("summary", "description", "describe", "answer", "explanation", "analysis", "notes", "comment")
_SHAPE_KINDS = {"circle": "circle", "rectangle": "rectangle", "square": "rectangle", "rect": "rectangle",
                "triangle": "triangle"}


def _words(name: str, node: dict[str, Any]) -> str:
    """The field's name split into lower-case words, plus its description."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ").lower()
    desc = node.get("description")
    return f"{spaced} {desc.lower() if isinstance(desc, str) else ''}"


def _has(words: str, *stems: str) -> bool:
    return any(re.search(rf"\b{re.escape(s)}", words) for s in stems)


def needs_text(schema: Any) -> bool:
    """True if a schema may be filled from the text the analyst reads (a field or description
    naming text, words, lines, a sign...): then the findings must come with OCR.

    >>> needs_text({"type": "object", "properties": {"sign_text": {"type": "string"}}})
    True
    >>> needs_text({"type": "object", "properties": {"circles": {"type": "integer"}}})
    False
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", json.dumps(schema)).replace("_", " ").lower()
    return _has(spaced, *_WORDS_TEXT, "word")


def fill_schema(schema: dict[str, Any], findings: Findings) -> Any:
    """A value valid against ``schema`` from ``findings``; raise :class:`Ungrounded` when a field
    that cannot be null has no finding behind it.

    >>> f = Findings(answer="A red circle.", colours=["red", "white"], shapes={"circle": 1}, images=1)
    >>> fill_schema({"type": "object", "properties": {"circles": {"type": "integer"},
    ...     "main_colour": {"type": "string", "enum": ["blue", "red"]}}}, f)
    {'circles': 1, 'main_colour': 'red'}
    """
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            defs.update({f"#/{key}/{k}": v for k, v in schema[key].items()})
    value = _fill(schema, "", "", findings, defs, 0)
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as e:
        where = ".".join(str(p) for p in e.absolute_path)
        raise Ungrounded(where, str(e.validator)) from e
    except jsonschema.SchemaError:
        pass  # a non-strict schema jsonschema cannot read: the fill is what it is
    return value


def _fill(node: Any, name: str, path: str, fx: Findings, defs: dict[str, Any], depth: int) -> Any:
    if not isinstance(node, dict) or depth > 12:
        raise Ungrounded(path, "value")
    if "$ref" in node:
        target = defs.get(node["$ref"]) if isinstance(node["$ref"], str) else None
        if target is None and node["$ref"] == "#":
            raise Ungrounded(path, "recursive value")
        merged = {**(target or {}), **{k: v for k, v in node.items() if k != "$ref"}}
        return _fill(merged, name, path, fx, defs, depth + 1)
    if "const" in node:
        return node["const"]
    branches = node.get("anyOf")
    if isinstance(branches, list):
        nullable = any(isinstance(b, dict) and b.get("type") == "null" for b in branches)
        for branch in branches:
            if isinstance(branch, dict) and branch.get("type") != "null":
                try:
                    return _fill({"description": node.get("description"), **branch}, name, path, fx, defs, depth + 1)
                except Ungrounded:
                    continue
        if nullable:
            return None
        raise Ungrounded(path, "value")
    types = _types(node)
    nullable = "null" in types
    value = _MISSING
    for kind in [t for t in types if t != "null"]:
        value = _fill_typed(kind, node, name, path, fx, defs, depth)
        if value is not _MISSING:
            break
    if value is not _MISSING:
        return value
    if nullable:
        return None
    raise Ungrounded(path, next((t for t in types if t != "null"), "value"))


def _fill_typed(kind: str, node: dict[str, Any], name: str, path: str, fx: Findings, defs: dict[str, Any], depth: int) -> Any:
    words = _words(name, node)
    if "enum" in node and isinstance(node["enum"], list):
        return _pick_enum([v for v in node["enum"] if _json_type(v) in (kind, "integer" if kind == "number" else kind)], words, fx)
    if kind == "object":
        return _fill_object(node, path, fx, defs, depth)
    if kind == "array":
        return _fill_array(node, name, path, fx, defs, depth)
    if kind == "string":
        return _fill_string(words, fx)
    if kind in ("integer", "number"):
        number = _fill_number(words, fx, integer=kind == "integer")
        if number is _MISSING:
            return _MISSING
        low, high = node.get("minimum"), node.get("maximum")
        if (isinstance(low, (int, float)) and number < low) or (isinstance(high, (int, float)) and number > high):
            return _MISSING  # a finding outside the allowed range is not forced into it
        return number
    if kind == "boolean":
        return _fill_bool(words, fx)
    return _MISSING


def _fill_object(node: dict[str, Any], path: str, fx: Findings, defs: dict[str, Any], depth: int) -> Any:
    props = node.get("properties") or {}
    raw_required = node.get("required")
    required: list[Any] = raw_required if isinstance(raw_required, list) else []
    out: dict[str, Any] = {}
    for key, sub in props.items():
        sub_path = f"{path}.{key}" if path else str(key)
        try:
            out[key] = _fill(sub, str(key), sub_path, fx, defs, depth + 1)
        except Ungrounded:
            if key in required:
                raise
    return out


def _fill_array(node: dict[str, Any], name: str, path: str, fx: Findings, defs: dict[str, Any], depth: int) -> Any:
    raw_items = node.get("items")
    items: dict[str, Any] = raw_items if isinstance(raw_items, dict) else {}
    words = _words(name, node) + " " + _words("", items)
    item_types = _types(items)
    values: list[Any]
    if "object" in item_types or "$ref" in items:
        # One object per image: each filled from that image alone.
        values = []
        for i in range(max(fx.images, 0)):
            one = Findings(answer=fx.answer, images=1, per_image=[fx.per_image[i]])
            facts = fx.per_image[i]
            one.text_lines = list(facts["text_lines"])
            one.colours = [c["name"] for c in facts["colours"]]
            one.shapes = dict(facts["shapes"])
            one.width, one.height, one.mime = facts["width"], facts["height"], facts["mime"]
            one.detail, one.background, one.brightness = facts["detail_used"], facts["background"], facts["brightness"]
            values.append(_fill(items, name, f"{path}[{i}]", one, defs, depth + 1))
    elif _has(words, "colour", "color"):
        values = list(fx.colours)
    elif _has(words, "shape", "object", "item", "thing"):
        values = [kind for kind, n in fx.shapes.items() for _ in range(n)]
    elif _has(words, "word"):
        values = [w for line in fx.text_lines for w in line.split()]
    elif _has(words, *_WORDS_TEXT):
        values = list(fx.text_lines)
    else:
        return _MISSING
    if item_types and not ("object" in item_types or "$ref" in items):
        if "enum" in items:
            allowed = {str(v).lower(): v for v in items["enum"]}
            values = [allowed[str(v).lower()] for v in values if str(v).lower() in allowed]
        elif "string" not in item_types:
            return _MISSING
    high = node.get("maxItems")
    if isinstance(high, int):
        values = values[:high]
    low = node.get("minItems")
    if isinstance(low, int) and len(values) < low:
        return _MISSING
    return values


def _fill_string(words: str, fx: Findings) -> Any:
    if _has(words, "colour", "color"):
        return fx.colours[0] if fx.colours else _MISSING
    if _has(words, "shape"):
        return max(fx.shapes, key=lambda k: fx.shapes[k]) if fx.shapes else _MISSING
    if _has(words, "mime", "format", "media type", "file type"):
        return fx.mime or _MISSING
    if _has(words, "detail"):
        return fx.detail or _MISSING
    if _has(words, "background"):
        return fx.background or _MISSING
    if _has(words, *_WORDS_TEXT):
        return " ".join(fx.text_lines) if fx.text_lines else _MISSING
    if _has(words, *_WORDS_SUMMARY):
        return fx.answer
    return _MISSING


def _fill_number(words: str, fx: Findings, *, integer: bool) -> Any:
    value: Any = _MISSING
    shape = next((kind for stem, kind in _SHAPE_KINDS.items() if _has(words, stem)), None)
    if _has(words, "width"):
        value = fx.width
    elif _has(words, "height"):
        value = fx.height
    elif _has(words, "tile"):
        value = fx.tiles
    elif shape is not None:
        value = fx.shapes.get(shape, 0) if fx.images else _MISSING
    elif _has(words, "colour", "color"):
        value = len(fx.colours) if fx.images else _MISSING
    elif _has(words, "word"):
        value = sum(len(line.split()) for line in fx.text_lines) if fx.images else _MISSING
    elif _has(words, "line"):
        value = len(fx.text_lines) if fx.images else _MISSING
    elif _has(words, "image", "picture", "photo"):
        value = fx.images
    elif _has(words, "shape", "object", "count", "number", "total", "item", "how many"):
        value = sum(fx.shapes.values()) if fx.images else _MISSING
    elif _has(words, "bright", "lumin") and not integer:
        value = fx.brightness
    if value is None:
        return _MISSING
    return int(value) if integer and value is not _MISSING else value


def _fill_bool(words: str, fx: Findings) -> Any:
    if not fx.images:
        return _MISSING
    for colour in ("red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "grey", "cyan"):
        if _has(words, colour):
            return colour in fx.colours
    if _has(words, *_WORDS_TEXT):
        return bool(fx.text_lines)
    if _has(words, "shape", "circle", "rectangle", "triangle", "square"):
        return bool(fx.shapes)
    if _has(words, "background", "plain"):
        return fx.background is not None
    if _has(words, "dark") and fx.brightness is not None:
        return fx.brightness < 0.35
    if _has(words, "bright", "light") and fx.brightness is not None:
        return fx.brightness > 0.65
    return _MISSING


def _pick_enum(options: list[Any], words: str, fx: Findings) -> Any:
    """The option the findings name: colours (most dominant first), shapes, detail, mime."""
    by_lower = {str(o).lower(): o for o in options}
    candidates: list[str] = []
    if _has(words, "shape"):
        candidates += sorted(fx.shapes, key=lambda k: -fx.shapes[k])
    candidates += list(fx.colours)
    candidates += sorted(fx.shapes, key=lambda k: -fx.shapes[k])
    candidates += [c for c in (fx.detail, fx.background, (fx.mime or "").split("/")[-1]) if c]
    if fx.images:
        has_text = bool(fx.text_lines)
        if _has(words, *_WORDS_TEXT):
            candidates += ["yes", "true"] if has_text else ["no", "false", "none"]
    for candidate in candidates:
        hit = by_lower.get(candidate.lower())
        if hit is not None:
            return hit
    return _MISSING


def dumps(value: Any) -> str:
    """The JSON text of a filled value, as the service writes content (compact, UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
