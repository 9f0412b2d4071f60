"""Tools from typed callables: schema derivation, argument validation and invocation."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from runtime.tools.context import ToolContext
from runtime.tools.schema import Tool, ToolArgumentError, as_tool, tool


def make_ctx() -> ToolContext:
    return ToolContext(sandbox=None, scratch={}, timeout_s=5.0, output_cap_bytes=1024)


@tool
def search(
    query: str,
    limit: int,
    threshold: float,
    exact: bool,
    tags: list[str],
    mode: Literal["fast", "deep"] = "fast",
    owner: str | None = None,
    page: Annotated[int, Field(description="Page from Field.")] = 1,
) -> str:
    """Search the corpus.

    Returns matching documents, best first.

    Args:
        query: Text to search for.
        limit (int): Maximum number of
            results to return.
        threshold: Minimum score.
        exact: Match whole words only.
        tags: Tags to filter by.
        mode: Search strategy.
        owner: Only this owner's documents.
        page: Ignored, Field wins.

    Returns:
        The documents, one per line.
    """
    return query


@tool
def read(path: str, ctx: ToolContext, start: int = 0) -> str:
    """Read a file.

    :param path: File to read.
    :param int start: First line,
        zero-based.
    """
    return f"{path}:{start}:{ctx.scratch.get('marker')}"


@tool
async def async_read(path: str, ctx: ToolContext | None = None) -> str:
    """Read a file asynchronously."""
    await asyncio.sleep(0)
    assert ctx is not None
    return f"async:{path}:{ctx.scratch['marker']}"


class Point(BaseModel):
    x: int
    y: int


@tool
def plot(points: list[Point]) -> int:
    """Plot points."""
    return len(points)


def test_schema_properties_and_required() -> None:
    assert search.name == "search"
    assert search.description == "Search the corpus.\n\nReturns matching documents, best first."
    assert search.context_param is None
    params = search.parameters
    assert params["type"] == "object"
    assert params["additionalProperties"] is False
    assert "title" not in params
    assert params["required"] == ["query", "limit", "threshold", "exact", "tags"]
    assert params["properties"] == {
        "query": {"type": "string", "description": "Text to search for."},
        "limit": {"type": "integer", "description": "Maximum number of results to return."},
        "threshold": {"type": "number", "description": "Minimum score."},
        "exact": {"type": "boolean", "description": "Match whole words only."},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags to filter by."},
        "mode": {
            "type": "string",
            "enum": ["fast", "deep"],
            "default": "fast",
            "description": "Search strategy.",
        },
        "owner": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "default": None,
            "description": "Only this owner's documents.",
        },
        "page": {"type": "integer", "default": 1, "description": "Page from Field."},
    }
    json.dumps(params)  # plain JSON


def test_openai_schema_shape() -> None:
    assert search.openai_schema() == {
        "type": "function",
        "function": {
            "name": "search",
            "description": search.description,
            "parameters": search.parameters,
        },
    }


def test_context_param_excluded_and_sphinx_docs() -> None:
    assert read.context_param == "ctx"
    assert async_read.context_param == "ctx"
    assert read.description == "Read a file."
    assert read.parameters["required"] == ["path"]
    assert read.parameters["properties"] == {
        "path": {"type": "string", "description": "File to read."},
        "start": {"type": "integer", "default": 0, "description": "First line, zero-based."},
    }
    assert async_read.parameters["properties"] == {"path": {"type": "string"}}


async def test_sync_invoke_runs_in_worker_thread_with_context() -> None:
    seen: list[str] = []

    @tool
    def where(ctx: ToolContext) -> str:
        """Report the thread."""
        seen.append(threading.current_thread().name)
        return str(ctx.scratch["marker"])

    ctx = make_ctx()
    ctx.scratch["marker"] = "m"
    assert await where.invoke(where.parse_arguments("{}"), ctx) == "m"
    assert seen == [seen[0]]
    assert seen[0] != threading.current_thread().name
    args = read.parse_arguments('{"path": "a.txt"}')
    assert args == {"path": "a.txt", "start": 0}
    assert await read.invoke(args, ctx) == "a.txt:0:m"


async def test_async_invoke() -> None:
    ctx = make_ctx()
    ctx.scratch["marker"] = 7
    assert await async_read.invoke(async_read.parse_arguments({"path": "b"}), ctx) == "async:b:7"


async def test_nested_models_become_instances() -> None:
    args = plot.parse_arguments('{"points": [{"x": 1, "y": "2"}]}')
    assert args == {"points": [Point(x=1, y=2)]}
    assert await plot.invoke(args, make_ctx()) == 1
    with pytest.raises(ToolArgumentError, match=r"argument 'points\[0\]\.y': Field required"):
        plot.parse_arguments({"points": [{"x": 1}]})


@pytest.mark.parametrize("raw", [None, "", "   ", {}])
def test_empty_arguments(raw: str | dict[str, Any] | None) -> None:
    no_args = tool(lambda: 1, name="noargs")
    assert no_args.parse_arguments(raw) == {}


def test_lax_coercion() -> None:
    args = search.parse_arguments(
        '{"query": "q", "limit": "3", "threshold": 1, "exact": true, "tags": []}'
    )
    assert args["limit"] == 3
    assert args["threshold"] == 1.0
    assert args["mode"] == "fast"


def test_error_not_json() -> None:
    raw = "{not json" + "x" * 500
    with pytest.raises(ToolArgumentError) as info:
        read.parse_arguments(raw)
    msg = str(info.value)
    assert "Invalid arguments for tool 'read'" in msg
    assert "not valid JSON" in msg
    assert raw[:200] in msg
    assert raw[:201] not in msg
    assert "expects a JSON object with: path (string, required), start (integer)" in msg


@pytest.mark.parametrize(
    ("raw", "kind"), [("[1, 2]", "array"), ('"x"', "string"), ("3", "number"), ("null", "null")]
)
def test_error_not_an_object(raw: str, kind: str) -> None:
    with pytest.raises(ToolArgumentError, match=f"must be a JSON object, got a JSON {kind}"):
        read.parse_arguments(raw)


def test_error_unknown_argument() -> None:
    with pytest.raises(ToolArgumentError) as info:
        read.parse_arguments({"path": "a", "file": "b"})
    assert "unknown argument(s) 'file'; valid arguments are: 'path', 'start'" in str(info.value)


def test_error_missing_argument() -> None:
    with pytest.raises(ToolArgumentError) as info:
        read.parse_arguments({"start": 1})
    assert "missing required argument(s) 'path'" in str(info.value)


def test_error_wrong_type_is_compact() -> None:
    with pytest.raises(ToolArgumentError) as info:
        read.parse_arguments('{"path": "a", "start": "abc"}')
    msg = str(info.value)
    assert "argument 'start': Input should be a valid integer" in msg
    assert "https://" not in msg
    assert "validation error" not in msg


def test_errors_are_combined() -> None:
    with pytest.raises(ToolArgumentError) as info:
        search.parse_arguments({"limit": "x", "bogus": 1, "mode": "slow"})
    msg = str(info.value)
    assert "unknown argument(s) 'bogus'" in msg
    assert "missing required argument(s) 'query', 'threshold', 'exact', 'tags'" in msg
    assert "argument 'limit': Input should be a valid integer" in msg
    assert "argument 'mode': Input should be 'fast' or 'deep'" in msg
    assert 'mode (one of "fast", "deep")' in msg


def test_rename_and_description_override() -> None:
    @tool(name="find-files", description="Find files.")
    def find(pattern: str) -> list[str]:
        """Docstring summary."""
        return [pattern]

    assert isinstance(find, Tool)
    assert find.name == "find-files"
    assert find.description == "Find files."
    assert find.openai_schema()["function"]["name"] == "find-files"


def test_params_named_like_basemodel_attributes() -> None:
    @tool
    def query(schema: str, json: int = 0) -> str:
        """Query a schema."""
        return schema

    assert query.parameters["required"] == ["schema"]
    assert query.parse_arguments({"schema": "s"}) == {"schema": "s", "json": 0}


def test_bad_name() -> None:
    with pytest.raises(ValueError, match="invalid tool name 'bad name!'"):
        tool(name="bad name!")(lambda: None)
    with pytest.raises(ValueError, match="invalid tool name"):
        tool(name="x" * 65)(lambda: None)


def test_missing_annotation() -> None:
    def untyped(a: int, b):  # type: ignore[no-untyped-def]
        return a

    with pytest.raises(TypeError, match="parameter 'b' has no type annotation"):
        tool(untyped)


def test_var_args_rejected() -> None:
    def star(*items: str) -> None: ...

    def kw(**opts: int) -> None: ...

    for fn in (star, kw):
        with pytest.raises(TypeError, match=r"no \*args, \*\*kwargs"):
            tool(fn)


def test_as_tool_passthrough_and_wrap() -> None:
    assert as_tool(read) is read

    def echo(text: str) -> str:
        """Echo text."""
        return text

    wrapped = as_tool(echo)
    assert wrapped.name == "echo"
    assert wrapped.parameters["properties"] == {"text": {"type": "string"}}
    with pytest.raises(TypeError):
        as_tool(42)  # type: ignore[arg-type]


def test_direct_construction_validates() -> None:
    def echo(text: str) -> str:
        return text

    direct = Tool("echo", "Echo.", {"type": "object"}, echo, None)
    assert direct.parse_arguments('{"text": "hi"}') == {"text": "hi"}
    with pytest.raises(ToolArgumentError, match="unknown argument"):
        direct.parse_arguments('{"txt": "hi"}')
    with pytest.raises(ValueError, match="invalid tool name"):
        Tool("no spaces", "", {}, echo, None)
