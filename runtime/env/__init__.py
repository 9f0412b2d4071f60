"""The environment SDK: subclass `Environment`, expose `load_environment(**params)`."""

from runtime.env.action_parser import parse_tool_call_blocks
from runtime.env.environment import Environment, answer_tool_calls
from runtime.env.loader import load_environment
from runtime.env.parsers import Parser, ParseResult, ThinkParser, ToolCallParser, XMLParser
from runtime.env.rubric import RewardFunc, Rubric, reward
from runtime.env.types import (
    Action,
    Episode,
    EpisodeContext,
    RewardResult,
    StepResult,
    TaskExample,
    Turn,
)
from runtime.sandbox.spec import SandboxSpec
from runtime.tools.context import ToolContext, ToolError, ToolOutput
from runtime.tools.messages import Message, ToolCall
from runtime.tools.schema import Tool, tool

__all__ = [
    "Action",
    "Environment",
    "Episode",
    "EpisodeContext",
    "Message",
    "ParseResult",
    "Parser",
    "RewardFunc",
    "RewardResult",
    "Rubric",
    "SandboxSpec",
    "StepResult",
    "TaskExample",
    "ThinkParser",
    "Tool",
    "ToolCall",
    "ToolCallParser",
    "ToolContext",
    "ToolError",
    "ToolOutput",
    "Turn",
    "XMLParser",
    "answer_tool_calls",
    "load_environment",
    "parse_tool_call_blocks",
    "reward",
    "tool",
]
