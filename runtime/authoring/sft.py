"""SFT examples from replayed gold rows: OpenAI chat ``messages`` and ``tools``, one a line.

A line is ``{"messages": [...], "tools": [...], "metadata": {"environment", "example_index",
"score"}}``, the shape common SFT trainers load (TRL's conversational ``messages`` with a
``tools`` column, the OpenAI fine-tuning format, axolotl's and NeMo's chat formats):

- ``messages`` are the episode's own: the environment's opening messages (system prompt and
  user turn), then each gold assistant turn followed by the environment's real replies (tool
  results produced by running the calls in the sandbox), ending with the **last assistant
  message**. What the environment said after it (e.g. ``submit``'s "answer submitted") is left
  out, so the training target ends with the assistant's turn.
- Tool calls keep the OpenAI shape: ``{"id", "type": "function", "function": {"name",
  "arguments"}}`` with ``arguments`` a JSON string; every ``tool`` message carries the
  ``tool_call_id`` of the call it answers.
- ``tools`` are the environment's tool schemas in OpenAI format (``[]`` without tools).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runtime.authoring.replay import RowResult


def sft_messages(result: RowResult) -> list[dict[str, Any]]:
    """The row's episode as OpenAI chat messages, cut after the last assistant message."""
    messages = result.messages
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    return [message.to_openai() for message in messages[: last + 1]]


def sft_record(result: RowResult, environment: str) -> dict[str, Any]:
    """One SFT example (a JSON object) for a replayed row."""
    return {
        "messages": sft_messages(result),
        "tools": result.tools,
        "metadata": {
            "environment": environment,
            "example_index": result.index,
            "score": result.score,
        },
    }


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write the records as JSON lines, all or nothing (via a temporary file); returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    count = 0
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return count
