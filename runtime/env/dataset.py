"""Loading an environment's dataset: a list of records, or a JSONL file beside its module."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runtime.env.types import TaskExample


def to_example(record: Mapping[str, Any], index: int | None) -> TaskExample:
    """A `TaskExample` from one ``{"input": ..., "output": ..., "metadata": ...}`` record."""
    if "input" not in record:
        where = f"record {index}" if index is not None else "the inline example"
        raise ValueError(f"{where} has no 'input' field (keys: {sorted(record)[:10]})")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError(f"record {index}: 'metadata' must be an object")
    return TaskExample(
        input=record["input"],
        output=record.get("output"),
        metadata=metadata,
        index=index,
        raw=dict(record),
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one a line (blank lines skipped); errors name the line."""
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{line_no}: not valid JSON: {exc}") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{line_no}: not a JSON object")
            records.append(record)
    return records


def load_dataset(
    source: str | Path | Sequence[Mapping[str, Any]] | None, base_dir: Path
) -> list[TaskExample]:
    """Every example of a dataset given as records or as a JSONL path (relative to base_dir)."""
    if source is None:
        return []
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_absolute():
            path = base_dir / path
        records: list[Any] = list(read_jsonl(path))
    else:
        records = list(source)
    examples = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"dataset record {index} is not an object")
        examples.append(to_example(record, index))
    return examples
