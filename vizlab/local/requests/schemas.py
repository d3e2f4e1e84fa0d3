"""Structured-output schemas as the service checks them, before anything answers.

``response_format`` / ``text.format`` parsed; ``strict: true`` schemas held to the service's keyword
allowlist, with its 400s and the offending keyword's path; every schema bounded (nesting, properties,
enums, names) without recursion before anything walks it; patterns run on RE2 (linear time) and
one RE2 cannot run is refused as the service refuses it. Filling a schema from the analyst's
findings is vizlab.local.replies.structured. Details: docs/internals.md#local
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import jsonschema
import re2
from jsonschema import validators

from vizlab.local.http.errors import AzureError, bad_request, missing_parameter, wrong_type

__all__ = [
    "SchemaFormat",
    "STRICT_ALLOWED_KEYWORDS",
    "check_strict_schema",
    "parse_response_format",
    "pattern_matches",
    "schema_validator",
    "schema_types",
    "json_type",
    "check_schema_bounds",
    "check_patterns",
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
        "$ref", "$defs", "definitions", "description", "title", "$schema",
        "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minItems", "maxItems",
    }
)
# `$schema` is accepted: OpenAI's own zodResponseFormat / zodTextFormat and the Vercel AI SDK send it
# in every strict schema (inferred from what those official SDKs send, not from a recording).
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")
# OpenAI API reference, response_format.json_schema.name: "Must be a-z, A-Z, 0-9, or contain
# underscores and dashes, with a maximum length of 64" (as mirrored in IBM watsonx-ai-node-sdk
# ChatsJSONSchema docs, 2025).
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
        raise missing_parameter(spec_param)
    if not isinstance(spec, dict):
        raise wrong_type(spec_param, "an object")
    name = spec.get("name")
    if name is None:
        raise missing_parameter(f"{spec_param}.name")
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
    check_schema_bounds(
        schema, what=f"response_format '{name}'", param=schema_param or param, code=None if nested else "invalid_json_schema"
    )
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
    types = schema_types(node)
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


def schema_types(node: dict[str, Any]) -> list[str]:
    """The JSON types a schema node allows: its ``type`` (one or a list), else those of its
    ``enum`` values or its ``const``; empty if it names none. Checking and filling both use it.

    >>> schema_types({"type": ["string", "null"]}), schema_types({"enum": [1, "a", None]})
    (['string', 'null'], ['integer', 'null', 'string'])
    """
    kind = node.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    if "enum" in node and isinstance(node["enum"], list):
        return sorted({json_type(v) for v in node["enum"]})
    if "const" in node:
        return [json_type(node["const"])]
    return []


def json_type(value: Any) -> str:
    """The JSON Schema type of a decoded JSON value (``True`` is a boolean, not an integer).

    >>> json_type(True), json_type(3), json_type(3.5), json_type({})
    ('boolean', 'integer', 'number', 'object')
    """
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


# --- bounds and patterns -------------------------------------------------------------------
# The service's documented limits on a structured-output schema: "up to 5000 object properties
# total, with up to 10 levels of nesting"; names, definition names, enum and const values "cannot
# exceed 120,000 characters" in total; "up to 1000 enum values across all enum properties"; a string
# enum of more than 250 values at most 15,000 characters (OpenAI "Structured model outputs" guide,
# "Supported schemas", as quoted in artifactize-core src/agent/verdict/structured/limits.rs, read
# 2026-12-07). Nesting counts objects and arrays; SCHEMA_MAX_LEVELS bounds every nested schema
# (anyOf included) at 3 per allowed level plus the root: vizlab's bound, so no walk recurses deeper.
SCHEMA_MAX_NESTING = 10
SCHEMA_MAX_PROPERTIES = 5000
SCHEMA_MAX_ENUM_VALUES = 1000
SCHEMA_MAX_NAME_CHARS = 120_000
SCHEMA_LARGE_ENUM = 250
SCHEMA_LARGE_ENUM_CHARS = 15_000
SCHEMA_MAX_LEVELS = 3 * SCHEMA_MAX_NESTING + 2
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else")


def _children(node: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """(key, subschema, opens an object/array level) of each direct subschema."""
    out: list[tuple[str, Any, bool]] = []
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        value = node.get(key)
        if isinstance(value, dict):
            out += [(f"{key}.{name}", sub, key in ("properties", "patternProperties")) for name, sub in value.items()]
    for key in _SUBSCHEMA_LISTS:
        value = node.get(key)
        if isinstance(value, list):
            out += [(f"{key}[{i}]", sub, False) for i, sub in enumerate(value)]
    for key in _SUBSCHEMA_ONE:
        value = node.get(key)
        if isinstance(value, dict):
            out.append((key, value, key == "items"))
    return out


def _schema_sizes(schema: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
    """The first limit the schema breaks (None if none), and every (path, pattern) in it.
    Iterative: no recursion, whatever the depth; stops at the first broken limit."""
    stack: list[tuple[Any, str, int, int]] = [(schema, "$", 0, 0)]
    properties = enum_values = name_chars = 0
    patterns: list[tuple[str, str]] = []
    while stack:
        node, where, nesting, levels = stack.pop()
        if not isinstance(node, dict):
            continue
        if levels > SCHEMA_MAX_LEVELS or nesting > SCHEMA_MAX_NESTING:
            return f"{where}: the schema is nested deeper than {SCHEMA_MAX_NESTING} levels.", patterns
        props = node.get("properties")
        if isinstance(props, dict):
            properties += len(props)
            name_chars += sum(len(str(k)) for k in props)
        enum = node.get("enum")
        if isinstance(enum, list):
            enum_values += len(enum)
            chars = sum(len(v) for v in enum if isinstance(v, str))
            name_chars += chars
            if len(enum) > SCHEMA_LARGE_ENUM and chars > SCHEMA_LARGE_ENUM_CHARS:
                return (f"{where}.enum: an enum of more than {SCHEMA_LARGE_ENUM} string values holds {chars:,} "
                        f"characters, over the limit of {SCHEMA_LARGE_ENUM_CHARS:,}."), patterns
        if isinstance(node.get("const"), str):
            name_chars += len(node["const"])
        for key in ("$defs", "definitions"):
            if isinstance(node.get(key), dict):
                name_chars += sum(len(str(k)) for k in node[key])
        if properties > SCHEMA_MAX_PROPERTIES:
            return f"the schema has more than {SCHEMA_MAX_PROPERTIES:,} object properties in total.", patterns
        if enum_values > SCHEMA_MAX_ENUM_VALUES:
            return f"the schema has more than {SCHEMA_MAX_ENUM_VALUES:,} enum values in total.", patterns
        if name_chars > SCHEMA_MAX_NAME_CHARS:
            return (f"the property names, definition names, enum and const values of the schema exceed "
                    f"{SCHEMA_MAX_NAME_CHARS:,} characters in total."), patterns
        if isinstance(node.get("pattern"), str):
            patterns.append((f"{where}.pattern", node["pattern"]))
        for key, sub, opens in _children(node):
            stack.append((sub, f"{where}.{key}", nesting + (1 if opens else 0), levels + 1))
    return None, patterns


def check_schema_bounds(schema: Any, *, what: str, param: str, code: str | None) -> None:
    """400 for a schema over the service's documented limits (nesting, properties, enums, names)
    or with a pattern the service refuses; checked without recursion, before anything else
    walks the schema.

    >>> deep: dict = {"type": "string"}
    >>> for _ in range(100):
    ...     deep = {"anyOf": [deep]}
    >>> check_schema_bounds(deep, what="response_format 'x'", param="response_format", code=None)
    Traceback (most recent call last):
    ...
    vizlab.local.http.errors.AzureError: ...nested deeper than 10 levels.
    """
    if not isinstance(schema, dict):
        return
    problem, patterns = _schema_sizes(schema)
    if problem is not None:
        raise _error(f"Invalid schema for {what}: {problem}", param, code)
    check_patterns(patterns, param=param)


def check_patterns(patterns: list[tuple[str, str]], *, param: str) -> None:
    """400 ``invalid_json_schema`` for a pattern RE2 cannot run: the service answers lookaround
    with "Invalid JSON schema: regex lookaround is not supported. Found at
    $.properties.email.pattern." (param "tools", code "invalid_json_schema"; decolua/9router#1556,
    2026-05-29). Backreferences and other constructs RE2 lacks get the same shape (inferred)."""
    for where, pattern in patterns:
        try:
            _compiled(pattern)
        except re2.error as e:
            if re.search(r"\(\?<?[=!]", pattern):
                problem = "lookaround"
            elif re.search(r"\\[1-9]|\(\?P=|\\k<", pattern):
                problem = "backreference"
            else:
                problem = f"syntax ({str(e)[:80]})"
            raise AzureError(
                400, "invalid_json_schema",
                f"Invalid JSON schema: regex {problem} is not supported. Found at {where}.", param=param,
            ) from e


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern)


def pattern_matches(pattern: str, text: str) -> bool:
    """JSON Schema ``pattern`` semantics (search, not full match) on RE2: linear time, so no
    pattern can stall the backend (``^(.+)+X$`` on any input returns at once).

    >>> pattern_matches("^(.+)+X$", "a" * 10_000), pattern_matches("^[0-9]{4}$", "2026")
    (False, True)
    """
    try:
        return _compiled(pattern).search(text) is not None
    except re2.error:
        return False


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    if validator.is_type(instance, "string") and not pattern_matches(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _re2_pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, sub in patterns.items():
        for key, value in instance.items():
            if pattern_matches(pattern, key):
                yield from validator.descend(value, sub, path=key, schema_path=pattern)


_Re2Validator = validators.extend(
    jsonschema.Draft202012Validator, {"pattern": _re2_pattern, "patternProperties": _re2_pattern_properties}
)


def schema_validator(schema: dict[str, Any]) -> Any:
    """A JSON Schema validator whose patterns run on RE2 (never Python's backtracking ``re``)."""
    return _Re2Validator(schema)
