"""The `env init` scaffold: a small, working tool-use environment with gold outputs and a test.

`render(name)` returns the files by relative path; ``__NAME__`` and ``__CLASS__`` stand for the
environment's name and class name in the texts below.
"""

from __future__ import annotations

import json
from typing import Any

MODULE = '''"""__NAME__: arithmetic questions answered with the python tool, then submit.

Files: ``data.jsonl`` (the dataset), ``test___NAME__.py`` (replays every row's gold output),
``README.md``. Check it with ``python -m runtime env test path/to/__NAME__``.

A row is ``{"input": ..., "output": ..., "metadata": {...}}``. Its gold ``output`` is either a
scalar answer (played as one ``submit`` call) or a trajectory: the assistant messages a good
model would send, tool calls included (their results come from really running them). The
reward compares with ``metadata.answer`` when the row has one (a trajectory row must), else
with the scalar ``output``.
"""

from __future__ import annotations

import re

from runtime.env import (
    Environment,
    EpisodeContext,
    Message,
    Rubric,
    SandboxSpec,
    TaskExample,
    reward,
)

SYSTEM_PROMPT = """\\
You answer arithmetic questions with the help of a Python sandbox. Tools:
- python: runs Python 3 code in a persistent interpreter and returns what it prints;
- submit: submits your final answer and ends the episode.
Compute with python, then call submit with only the final integer."""

_INTEGER = re.compile(r"-?\\d+")


def reference_answer(example: TaskExample) -> str:
    """The answer a row expects: ``metadata.answer``, else its scalar ``output``."""
    return str(example.metadata.get("answer", example.output)).strip()


def correct(completion: str | None, example: TaskExample) -> float:
    """1.0 when the submitted answer equals the reference (weight 1: this is the score)."""
    return float(completion is not None and completion.strip() == reference_answer(example))


@reward(weight=0)
def integer_format(completion: str | None) -> float:
    """A metric (weight 0: reported, not summed): the answer is a bare integer."""
    return float(completion is not None and bool(_INTEGER.fullmatch(completion.strip())))


class __CLASS__(Environment):
    """Arithmetic with a Python sandbox; reward 1 for the right submitted integer."""

    id = "__NAME__"
    description = "Arithmetic questions: compute with python, answer with submit."
    dataset = "data.jsonl"  # beside this file
    system_prompt = SYSTEM_PROMPT
    tools = ("python", "submit")  # built-in tool names; typed functions decorated @tool work too
    rubric = Rubric([correct, integer_format], threshold=1.0)

    def __init__(self, *, max_turns: int = 6, call_timeout_s: float = 10.0) -> None:
        self.max_turns = max_turns
        self.sandbox = SandboxSpec(call_timeout_s=call_timeout_s)

    # The hooks, all optional (per-episode state goes in ctx.scratch, never on self):
    #   start_episode(example, ctx) -> list[Message]: the opening messages; prepare the
    #       sandbox here (ctx.sandbox.write_file, ctx.sandbox.exec).
    #   step_episode(example, messages, action, ctx) -> StepResult: one turn; the default runs
    #       the tool calls, and a reply without tool calls ends the episode.
    #   score_episode(example, episode, ctx) -> RewardResult: the reward; the default scores
    #       with self.rubric. Check what the model cannot tamper with in a fresh sandbox:
    #       ``async with ctx.fresh_sandbox() as box: ...``.
    #   max_episode_turns(example) -> int: a turn limit per row.
    #   gold_actions(example) -> list[Message] | None: the gold assistant turns `env test` and
    #       `env sft` play when a row's output is no playable answer (None: use the output).

    async def start_episode(self, example: TaskExample, ctx: EpisodeContext) -> list[Message]:
        """The system prompt, then the question (the default; extend it here)."""
        return await super().start_episode(example, ctx)


def load_environment(max_turns: int = 6, call_timeout_s: float = 10.0) -> __CLASS__:
    """The __NAME__ environment; the arguments are its params (``--env-params``)."""
    if max_turns < 1:
        raise ValueError(f"max_turns must be at least 1, got {max_turns}")
    return __CLASS__(max_turns=max_turns, call_timeout_s=call_timeout_s)
'''

TEST = '''"""Every row's gold output of __NAME__ passes ``python -m runtime env test``.

It runs real episodes: ``python -m pytest path/to/__NAME__`` needs Docker and the sandbox
images.
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.cli.main import main

HERE = Path(__file__).resolve().parent


def test_gold_outputs_pass() -> None:
    owner = os.environ.get("RUNTIME_TEST_OWNER", "env-test")
    assert main(["env", "test", str(HERE), "--instance-name", owner]) == 0
'''

README = """# __NAME__

Arithmetic questions: the model computes with the `python` tool in its sandbox and answers with
`submit`. Scaffolded by `python -m runtime env init __NAME__`; make it yours.

| file | what it is |
|---|---|
| `__init__.py` | the environment: `load_environment(**params)`, prompt, tools, rubric, hooks |
| `data.jsonl` | the dataset: one `{"input", "output", "metadata"}` row per line |
| `test___NAME__.py` | a pytest test: every row's gold output passes `env test` |

## Gold outputs

`output` is what a perfect model does, in one of two forms:

- a **scalar** answer, e.g. `"391"`: played as one `submit` call (as the message's content in
  an environment without a `submit` tool);
- a **trajectory**: the assistant messages in OpenAI chat shape, tool calls included. They are
  played turn by turn; the tool results come from really running the calls in a sandbox, so
  the file holds no `tool` messages.

The rubric compares the submission with `metadata.answer` when present, else with `output`.
When `output` cannot be played (a task id, say), define
`gold_actions(example) -> list[Message] | None` on the environment: the messages it returns are
played instead.

## Commands

```sh
python -m runtime env test path/to/__NAME__              # replay every row's gold output
python -m runtime env test path/to/__NAME__ --json       # the same, as JSON
python -m runtime env sft path/to/__NAME__ --out sft.jsonl   # chat examples for SFT
python -m pytest path/to/__NAME__                        # the test beside this file
```

## Reward

`correct` (weight 1): the submitted answer equals the reference. `integer_format` (weight 0, a
metric): the answer is a bare integer. The threshold is 1.0.
"""


def _call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


ROWS: list[dict[str, Any]] = [
    {"input": "What is 17 * 23? Answer with an integer.", "output": "391"},
    {
        "input": "What is 2 to the power of 20? Answer with an integer.",
        "output": [
            {
                "role": "assistant",
                "content": "I will compute it with Python.",
                "tool_calls": [_call("call_1", "python", {"code": "print(2 ** 20)"})],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [_call("call_2", "submit", {"answer": "1048576"})],
            },
        ],
        "metadata": {"answer": "1048576"},
    },
    {
        "input": "What is the sum of the integers from 1 to 100? Answer with an integer.",
        "output": "5050",
    },
    {"input": "What is the remainder of 1234 divided by 7? Answer with an integer.", "output": "2"},
]


def class_name(name: str) -> str:
    """``my_env`` -> ``MyEnv``, ``arith`` -> ``ArithEnv``."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "My"
    return camel if camel.endswith("Env") else f"{camel}Env"


def render(name: str) -> dict[str, str]:
    """The scaffold's files, by path relative to the environment's folder."""

    def fill(text: str) -> str:
        return text.replace("__NAME__", name).replace("__CLASS__", class_name(name))

    data = "".join(json.dumps(row) + "\n" for row in ROWS)
    return {
        "__init__.py": fill(MODULE),
        "data.jsonl": data,
        "README.md": fill(README),
        f"test_{name}.py": fill(TEST),
    }
