"""What the eval command shows: a progress bar while it runs, a summary table at the end.

The progress bar goes to stderr and only on a terminal; the summary goes to stdout; errors are
one ``error:`` line on stderr.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from runtime.rollout.driver import RolloutResult
from runtime.rollout.results import EvalMetadata
from runtime.rollout.runner import EvalOutcome
from runtime.rollout.summary import Summary


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


class Reporter:
    """Progress, summary and error lines of one eval command."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.failures = 0
        self.total = 0
        self.finished = 0

    def start(self, total: int, done: int) -> None:
        """Show the progress bar (on a terminal); ``done`` rollouts were already finished."""
        self.total, self.finished = total, done
        err = Console(file=sys.stderr)
        if done:
            err.print(f"resuming: {done} of {total} rollouts already finished")
        if not err.is_terminal:
            return
        self._progress = Progress(
            TextColumn("[bold]rollouts"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self._task = self._progress.add_task("rollouts", total=total, completed=done, failed="")
        self._progress.start()

    def removed_leftovers(self, instance: str, count: int) -> None:
        """A resume removed ``count`` sandboxes that an earlier, killed run of ``instance`` left."""
        if count:
            print(
                f"removed {count} sandbox(es) left by an earlier run of instance {instance}",
                file=sys.stderr,
            )

    def advance(self, result: RolloutResult) -> None:
        """One rollout finished."""
        if result.error is not None:
            self.failures += 1
        else:
            self.finished += 1
        if self._progress is not None and self._task is not None:
            failed = f"[red]{self.failures} failed" if self.failures else ""
            self._progress.update(self._task, advance=1, failed=failed)

    def stop(self) -> None:
        """Remove the progress bar's live display."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def summary(self, summary: Summary, metadata: EvalMetadata, outcome: EvalOutcome) -> None:
        """Print the summary table, and what failed."""
        out = Console(file=sys.stdout, width=max(Console(file=sys.stdout).width, 88))
        title = escape(f"{metadata.environment_id} · {metadata.model}")
        table = Table(title=title, show_header=True)
        table.add_column("metric")
        table.add_column("value", justify="right")
        rows: list[tuple[str, Any]] = [
            ("rollouts", f"{summary.rollouts} ({summary.examples} examples)"),
            (
                "mean reward (95% CI)",
                f"{_number(summary.mean_reward)} "
                f"[{_number(summary.reward_ci95[0])}, {_number(summary.reward_ci95[1])}]",
            ),
        ]
        rows += [(f"pass@{k}", _number(v)) for k, v in summary.pass_at.items()]
        rows += [
            ("mean turns", _number(summary.mean_turns, 2)),
            ("truncation rate", _percent(summary.truncation_rate)),
            ("tool error rate", f"{_percent(summary.tool_error_rate)} of {summary.tool_calls}"),
        ]
        for name, values in (("rollout", summary.latency_s), ("model call", summary.model_call_s)):
            if values:
                text = " / ".join(_number(values[p], 2) for p in ("p50", "p90", "p99"))
                rows.append((f"{name} latency p50/p90/p99 (s)", text))
        rows.append(
            (
                "tokens (prompt / completion)",
                f"{summary.prompt_tokens} / {summary.completion_tokens}",
            )
        )
        if summary.failed:
            rows.append(("failed rollouts", str(summary.failed)))
        for name, value in rows:
            table.add_row(name, escape(str(value)))
        out.print(table)
        where = self.directory
        out.print(f"results: {where / 'results.jsonl' if where else '-'}", soft_wrap=True)
        if outcome.failed:
            kinds = sorted({r.error_kind or "error" for r in outcome.failed})
            out.print(
                f"{len(outcome.failed)} rollout(s) failed ({', '.join(kinds)}; see "
                f"{where / 'errors.jsonl' if where else 'errors.jsonl'}); first: "
                f"{outcome.failed[0].error}. Resume with --resume {where} to run them again.",
                soft_wrap=True,
                markup=False,
            )

    def interrupted(self, command: str | None) -> None:
        """Ctrl-C: say what was kept and how to continue."""
        self.stop()
        kept = f"{self.finished} of {self.total} rollouts finished and kept"
        if self.directory is not None:
            kept += f" in {self.directory / 'results.jsonl'}"
        print(f"\ninterrupted: {kept}; sandboxes removed", file=sys.stderr)
        if command:
            print(f"to continue: {command}", file=sys.stderr)

    def error(self, message: str) -> None:
        """One error line."""
        self.stop()
        print(f"error: {message}", file=sys.stderr)
