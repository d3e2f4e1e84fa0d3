"""Tool calls and logprobs from the local analyst, in the service's shapes.

``tools`` / ``tool_choice`` are checked as the service checks them. A required or named function
always gets a ``tool_calls`` message with schema-valid arguments filled from the analyst's findings
(placeholders where nothing grounds a value, listed in ``x-vizlab-ungrounded``); with ``"auto"``
the analyst answers in text (choosing tools is judgement it does not emulate). ``logprobs`` are
emulated (the token at 0.0, alternatives below it) and marked in ``x-vizlab-emulated``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from vizlab.local import _deps
from vizlab.local.http.errors import bad_request, missing_parameter, wrong_type
from vizlab.local.requests.limits import MAX_TOOLS, check_array_length
from vizlab.local.replies.structured import Findings, Ungrounded, fill
from vizlab.local.requests.schemas import check_schema_bounds, check_strict_schema

__all__ = ["Tool", "ToolSpec", "parse_tools", "make_tool_calls", "tool_results_text", "logprob_entries", "AUTO_NOTE"]

AUTO_NOTE = (
    "(vizlab's local analyst does not choose tools by itself: set tool_choice to \"required\" or to a "
    "function to get a tool call.)"
)
# Function names: "a-z, A-Z, 0-9, or contain underscores and dashes, with a maximum length of 64"
# (OpenAI API reference, tools[].function.name, as mirrored in the openai-python type docstrings).
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False, "required": []}


@dataclass
class Tool:
    """One function tool of a request."""

    name: str
    parameters: dict[str, Any]
    description: str | None = None
    strict: bool = False


@dataclass
class ToolSpec:
    """The request's tools and what ``tool_choice`` asks: none, auto, required or a function."""

    tools: list[Tool] = field(default_factory=list)
    choice: str = "auto"  # "none" | "auto" | "required" | "function"
    forced: str | None = None  # the function tool_choice names

    @property
    def calls_wanted(self) -> bool:
        return bool(self.tools) and self.choice in ("required", "function")


def parse_tools(tools: Any, tool_choice: Any, *, flat: bool = False, param: str = "tools") -> ToolSpec | None:
    """Check ``tools`` and ``tool_choice``; ``flat`` is the Responses API's shape
    (``{"type": "function", "name", "parameters", "strict"}``), else Chat's
    (``{"type": "function", "function": {...}}``). None when there are no tools and no choice."""
    if tools is None and tool_choice is None:
        return None
    spec = ToolSpec()
    if tools is not None:
        if not isinstance(tools, list):
            raise bad_request("invalid_type", f"Invalid type for '{param}': expected an array.", param)
        check_array_length(tools, MAX_TOOLS, param)
        for i, raw in enumerate(tools):
            spec.tools.append(_parse_tool(raw, f"{param}[{i}]", flat))
    if tool_choice is not None:
        _parse_choice(tool_choice, spec, flat)
    elif not spec.tools:
        spec.choice = "none"
    return spec


def _parse_tool(raw: Any, path: str, flat: bool) -> Tool:
    if not isinstance(raw, dict):
        raise bad_request("invalid_type", f"Invalid type for '{path}': expected an object.", path)
    kind = raw.get("type")
    if kind is None:
        raise bad_request("missing_required_parameter", f"Missing required parameter: '{path}.type'.", f"{path}.type")
    if kind != "function":
        shown = repr(kind) if isinstance(kind, str) and len(kind) <= 40 else type(kind).__name__
        raise bad_request(
            "invalid_value",
            f"Invalid value: {shown}. Supported values are: 'function' (the vizlab local backend has no hosted "
            "tools such as web_search or file_search: it runs offline).",
            f"{path}.type",
        )
    spec: Any
    if flat:
        spec, where = raw, path
    else:
        spec, where = raw.get("function"), f"{path}.function"
        if spec is None:
            raise missing_parameter(where)
        if not isinstance(spec, dict):
            raise wrong_type(where, "an object")
    name = spec.get("name")
    if name is None:
        raise missing_parameter(f"{where}.name")
    if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
        raise bad_request(
            "invalid_value",
            f"Invalid '{where}.name': string does not match pattern. Expected a string that matches the pattern "
            "'^[a-zA-Z0-9_-]+$' (at most 64 characters).",
            f"{where}.name",
        )
    parameters = spec.get("parameters")
    if parameters is None:
        parameters = dict(_EMPTY_PARAMETERS)
    if not isinstance(parameters, dict):
        raise bad_request("invalid_type", f"Invalid type for '{where}.parameters': expected an object.", f"{where}.parameters")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise bad_request("invalid_type", f"Invalid type for '{where}.strict': expected a boolean.", f"{where}.strict")
    check_schema_bounds(
        parameters, what=f"function '{name}'", param=f"{where}.parameters", code="invalid_function_parameters"
    )
    if strict:
        check_strict_schema(
            # code and param as in an OpenAI 400 quoted in modelscope/ms-agent#610, 2025-01-20.
            parameters, what=f"function '{name}'", param=f"{where}.parameters", code="invalid_function_parameters"
        )
    description = spec.get("description")
    return Tool(name=name, parameters=parameters, description=description if isinstance(description, str) else None, strict=bool(strict))


def _parse_choice(choice: Any, spec: ToolSpec, flat: bool) -> None:
    names = [t.name for t in spec.tools]
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise bad_request(
                "invalid_value",
                f"Invalid value: {choice[:40]!r}. Supported values are: 'none', 'auto' and 'required'.",
                "tool_choice",
            )
        if choice != "none" and not spec.tools:
            raise bad_request(
                "invalid_value", "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                "tool_choice",
            )
        spec.choice = choice
        return
    if not isinstance(choice, dict):
        raise bad_request("invalid_type", "Invalid type for 'tool_choice': expected a string or an object.", "tool_choice")
    if choice.get("type") != "function":
        raise bad_request(
            "invalid_value", "Invalid value for 'tool_choice.type': supported values are: 'function'.", "tool_choice.type"
        )
    where = "tool_choice" if flat else "tool_choice.function"
    target = choice if flat else choice.get("function")
    name = target.get("name") if isinstance(target, dict) else None
    if not isinstance(name, str):
        raise bad_request("missing_required_parameter", f"Missing required parameter: '{where}.name'.", f"{where}.name")
    if name not in names:
        raise bad_request(
            "invalid_value",
            f"Invalid value for '{where}.name': no function named {name[:64]!r} in 'tools' "
            f"(functions: {', '.join(names) or 'none'}).",
            f"{where}.name",
        )
    spec.choice, spec.forced = "function", name


def make_tool_calls(spec: ToolSpec, findings: Findings) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``tool_calls`` of a forced or required call and the arguments that hold placeholders
    (``name.path``). Of several tools (``"required"``), the one with the fewest placeholders.
    Raise :class:`Ungrounded` only when no tool's parameters admit any value."""
    candidates = [t for t in spec.tools if t.name == spec.forced] if spec.choice == "function" else spec.tools
    first_problem: Ungrounded | None = None
    best: tuple[Tool, Any, list[str]] | None = None
    for tool in candidates:
        try:
            done = fill(tool.parameters, findings)
        except Ungrounded as e:
            first_problem = first_problem or Ungrounded(f"{tool.name}({e.path})", e.kind)
            continue
        if best is None or len(done.ungrounded) < len(best[2]):
            best = (tool, done.value, done.ungrounded)
    if best is not None:
        tool, arguments, ungrounded = best
        return [
            {
                # The service's call ids: "call_" + 24 characters (e.g. "call_62136354" in OpenAI's
                # function-calling guide is shorter; 24 is what gpt-4o sends, as seen in SDK fixtures).
                "id": "call_" + uuid.uuid4().hex[:24],
                "type": "function",
                "function": {"name": tool.name, "arguments": json.dumps(arguments, ensure_ascii=False)},
            }
        ], [f"{tool.name}.{path}" for path in ungrounded]
    raise first_problem or Ungrounded("tools", "function")


def tool_results_text(messages: list[dict[str, Any]]) -> str | None:
    """A sentence quoting the tool results that end the conversation, or None if it does not end
    in ``role: "tool"`` messages."""
    results: list[str] = []
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                names[str(call.get("id"))] = str(call["function"].get("name"))
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        text = str(content or "")
        shown = text if len(text) <= 400 else text[:397] + "..."
        name = names.get(str(message.get("tool_call_id")), "the tool")
        results.append(f"{name} returned {shown}")
    if not results:
        return None
    return "Tool results: " + "; ".join(reversed(results)) + "."


# Alternatives offered after the sent token when top_logprobs asks for more than one: emulated.
_FILLERS = (" the", ",", ".", " a", " and", " of", " to", " is", " in", "\n", " it", " that", " for", " on",
            " with", " as", " this", " be", " at", " by", " or")


def _alternatives(token: str, top: int) -> list[str]:
    """``top`` distinct tokens, the sent one first, then variants of it and common fillers."""
    core = token.strip()
    variants = [token, " " + core, core, core.lower(), core.upper(), core.capitalize(), *_FILLERS]
    out: list[str] = []
    for candidate in variants:
        if candidate and candidate not in out:
            out.append(candidate)
        if len(out) == top:
            break
    return out


def logprob_entries(text: str, model: str, top: int) -> list[dict[str, Any]]:
    """Per-token logprob entries of ``text`` in the service's shape, with ``top`` alternatives each
    (emulated: the sent token at 0.0, the others at -10, -11, ...).

    >>> [e["token"] for e in logprob_entries("Hi there", "gpt-4o", 1)]
    ['Hi', ' there']
    >>> [t["token"] for t in logprob_entries("Hi", "gpt-4o", 3)[0]["top_logprobs"]]
    ['Hi', ' Hi', 'hi']
    """
    entries = []
    for piece in _deps.token_pieces(text, model):
        token = piece.decode("utf-8", errors="replace")
        entry: dict[str, Any] = {"token": token, "logprob": 0.0, "bytes": list(piece), "top_logprobs": []}
        for rank, alt in enumerate(_alternatives(token, top)):
            alt_bytes = list(piece) if rank == 0 else list(alt.encode("utf-8"))
            entry["top_logprobs"].append({"token": alt, "logprob": 0.0 if rank == 0 else -9.0 - rank, "bytes": alt_bytes})
        entries.append(entry)
    return entries
