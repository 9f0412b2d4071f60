"""Turn typed Python callables into tools: an OpenAI-format JSON schema plus argument validation."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticUndefined

from runtime.tools.context import ToolContext

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ARGS_HEADERS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_OTHER_HEADERS = {
    "returns", "return", "yields", "yield", "raises", "example", "examples", "note", "notes",
    "attributes", "warning", "warnings", "see also", "todo", "references",
}  # fmt: skip
_HEADER_RE = re.compile(r"^([A-Za-z]+(?: [A-Za-z]+)?)\s*:\s*$")
_GOOGLE_ARG_RE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM_RE = re.compile(r"^:param\s+(?:.*?\s)?\*{0,2}(\w+)\s*:\s*(.*)$")
_Fn = Callable[..., Any]
_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


class ToolArgumentError(ValueError):
    """Arguments the model supplied don't fit the tool; the message is written for the model."""


@dataclass(frozen=True)
class Tool:
    """A callable exposed to the model, with the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: _Fn
    context_param: str | None
    _model: type[BaseModel] | None = field(default=None, repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(
                f"invalid tool name {self.name!r}: names must be 1-64 characters from "
                "a-z, A-Z, 0-9, '_' and '-'"
            )
        if self._model is None:  # constructed directly rather than via `tool()`
            object.__setattr__(self, "_model", _analyse(self.fn, self.name)[0])

    def openai_schema(self) -> dict[str, Any]:
        """The entry for this tool in an OpenAI chat-completions `tools` list."""
        fn_schema = {"name": self.name, "description": self.description}
        return {"type": "function", "function": {**fn_schema, "parameters": self.parameters}}

    def parse_arguments(self, raw: str | dict[str, Any] | None) -> dict[str, Any]:
        """Decode and validate model-supplied arguments into the function's parameter types."""
        data: Any = raw
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            data = {}
        elif isinstance(raw, str):
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                quoted = raw[:200] + ("..." if len(raw) > 200 else "")
                raise self._error(f"arguments are not valid JSON ({exc.msg}): {quoted!r}") from None
            except RecursionError:
                raise self._error("arguments are nested too deeply to be parsed") from None
        if not isinstance(data, dict):
            kind = "null" if data is None else _JSON_NAMES.get(type(data), type(data).__name__)
            raise self._error(f"arguments must be a JSON object, got a JSON {kind}")
        assert self._model is not None
        try:
            validated = self._model.model_validate(data)
        except ValidationError as exc:
            raise self._error(*_render_errors(exc, self.parameters)) from None
        except RecursionError:
            raise self._error("arguments are nested too deeply to be validated") from None
        return {f.alias or k: getattr(validated, k) for k, f in self._model.model_fields.items()}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Call the function with validated arguments, off the event loop if it is synchronous."""
        kwargs = dict(arguments)
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        if inspect.iscoroutinefunction(self.fn) or inspect.iscoroutinefunction(
            getattr(self.fn, "__call__", None)  # noqa: B004 - async callable instances
        ):
            return await self.fn(**kwargs)
        result = await asyncio.to_thread(self.fn, **kwargs)
        return await result if inspect.isawaitable(result) else result

    def _error(self, *problems: str) -> ToolArgumentError:
        lines = [f"Invalid arguments for tool '{self.name}':", *(f"- {p}" for p in problems)]
        return ToolArgumentError("\n".join([*lines, _expected(self.name, self.parameters)]))


@overload
def tool(fn: _Fn, /, *, name: str | None = None, description: str | None = None) -> Tool: ...
@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[_Fn], Tool]: ...
def tool(
    fn: _Fn | None = None, /, *, name: str | None = None, description: str | None = None
) -> Tool | Callable[[_Fn], Tool]:
    """Decorator (bare or with overrides) that turns a typed callable into a `Tool`."""

    def wrap(f: _Fn) -> Tool:
        default_name: str = getattr(f, "__name__", type(f).__name__)
        tool_name = default_name if name is None else name
        model, schema, context_param, summary = _analyse(f, tool_name)
        desc = summary if description is None else description
        return Tool(tool_name, desc, schema, f, context_param, _model=model)

    return wrap if fn is None else wrap(fn)


def as_tool(obj: Tool | _Fn) -> Tool:
    """Pass a `Tool` through unchanged; wrap any other callable with `tool`."""
    if isinstance(obj, Tool):
        return obj
    if not callable(obj):
        raise TypeError(f"expected a Tool or a callable, got {type(obj).__name__}")
    return tool(obj)


def _analyse(fn: _Fn, name: str) -> tuple[type[BaseModel], dict[str, Any], str | None, str]:
    """Build the argument model and schema from the signature and docstring.

    Also returns the context parameter's name and the docstring's summary.
    """
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn).__call__
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        raise TypeError(f"tool {name!r}: cannot resolve type hints: {exc}") from exc
    summary, param_docs = _parse_docstring(inspect.getdoc(fn) or "")
    context_param: str | None = None
    fields: dict[str, Any] = {}
    for i, p in enumerate(inspect.signature(fn).parameters.values()):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise TypeError(
                f"tool {name!r}: parameter {p.name!r} is not supported; tools take only named "
                "parameters (no *args, **kwargs or positional-only parameters)"
            )
        if p.name not in hints:
            raise TypeError(
                f"tool {name!r}: parameter {p.name!r} has no type annotation; "
                "every tool parameter needs one to derive the JSON schema"
            )
        if _is_context(hints[p.name]):
            if context_param is not None:
                raise TypeError(f"tool {name!r}: more than one ToolContext parameter")
            context_param = p.name
            continue
        default = PydanticUndefined if p.default is p.empty else p.default
        # Internal field names avoid clashes with BaseModel attributes (`schema`, `json`, ...).
        fields[f"p{i}"] = (hints[p.name], Field(default, alias=p.name))
    config = ConfigDict(extra="forbid")
    model: type[BaseModel] = create_model(f"{name}_arguments", __config__=config, **fields)
    schema: dict[str, Any] = _strip_titles(model.model_json_schema())
    for pname, prop in schema.get("properties", {}).items():
        if "description" not in prop and pname in param_docs:
            prop["description"] = param_docs[pname]
    return model, schema, context_param, summary


def _is_context(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = {a for a in typing.get_args(annotation) if a is not type(None)}
        return members == {ToolContext}
    return annotation is ToolContext


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google- or Sphinx-style docstring into its summary and per-parameter text."""
    summary: list[str] = []
    params: dict[str, str] = {}
    section, current, entry_indent = "summary", "", -1
    for line in doc.splitlines():
        text, indent = line.strip(), len(line) - len(line.lstrip())
        if text and indent == 0:
            header = _HEADER_RE.match(text)
            sphinx = _SPHINX_PARAM_RE.match(text)
            if sphinx:
                section, current = "sphinx", sphinx[1]
                params[current] = sphinx[2]
                continue
            if header and header[1].lower() in _ARGS_HEADERS | _OTHER_HEADERS:
                section = "args" if header[1].lower() in _ARGS_HEADERS else "other"
                current, entry_indent = "", -1
                continue
            if text.startswith(":") or section != "summary":
                section = "other"
        if section == "summary":
            summary.append(line)
        elif section in ("args", "sphinx") and text:
            entry_indent = indent if entry_indent < 0 else entry_indent
            entry = _GOOGLE_ARG_RE.match(text) if section == "args" else None
            if entry and indent <= entry_indent:
                current = entry[1]
                params[current] = entry[2]
            elif current:
                params[current] = f"{params[current]} {text}".strip()
    return "\n".join(summary).strip(), params


def _strip_titles(node: Any) -> Any:
    """Drop pydantic's auto-generated `title` keys, leaving literal values untouched."""
    if isinstance(node, list):
        return [_strip_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs"):
            out[key] = {k: _strip_titles(v) for k, v in value.items()}
        elif key in ("default", "enum", "const", "examples"):
            out[key] = value
        else:
            out[key] = _strip_titles(value)
    return out


def _render_errors(exc: ValidationError, schema: dict[str, Any]) -> list[str]:
    """Pydantic's errors as short lines naming the offending argument."""
    unknown: list[str] = []
    missing: list[str] = []
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        if len(loc) == 1 and err["type"] == "extra_forbidden":
            unknown.append(f"'{loc[0]}'")
        elif len(loc) == 1 and err["type"] == "missing":
            missing.append(f"'{loc[0]}'")
        else:
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
            lines.append(f"argument '{path}': {err['msg']}")
    out = []
    if unknown:
        valid = ", ".join(f"'{p}'" for p in schema.get("properties", {})) or "none"
        out.append(f"unknown argument(s) {', '.join(unknown)}; valid arguments are: {valid}")
    if missing:
        out.append(f"missing required argument(s) {', '.join(missing)}")
    return out + list(dict.fromkeys(lines))


def _expected(name: str, schema: dict[str, Any]) -> str:
    """One line telling the model which arguments the tool takes."""
    props: dict[str, Any] = schema.get("properties", {})
    if not props:
        return f"Tool '{name}' takes no arguments; pass {{}}."
    required, defs = set(schema.get("required", [])), schema.get("$defs", {})
    parts = [
        f"{p} ({_type_label(s, defs)}{', required' if p in required else ''})"
        for p, s in props.items()
    ]
    return f"Tool '{name}' expects a JSON object with: {', '.join(parts)}."


def _type_label(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return _type_label(defs.get(prop["$ref"].rpartition("/")[2], {}), defs)
    if "enum" in prop:
        return "one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_label(member, defs) for member in prop["anyOf"])
    item = prop.get("items")
    inner = f" of {_type_label(item, defs)}" if isinstance(item, dict) and item else ""
    return f"{prop.get('type', 'any')}{inner}"
