"""Bounds on what an episode's record holds: per action, per turn's observations, per episode.

Everything in a record is kept until the episode is closed, and a trajectory is served whole
(in pages), so the server must bound it: a model that prints 128 KiB from each of 64 calls per
turn would otherwise make a record no message can carry. Sizes are UTF-8 bytes of the text a
message holds (content, tool-call names, ids and arguments); token ids count 10 bytes each,
logprobs 8, as on the wire.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime.env.types import Action, Episode
from runtime.tools.executor import CallRecord
from runtime.tools.messages import Message

ACTION_CUT_MARK = (
    "\n[cut for the record: this text held {size} bytes; an action is kept up to {cap}]"
)
CUT_MARK = (
    "\n[observation cut: it held {size} bytes; this turn's observations may hold {cap} bytes "
    "in all{why}]"
)


def message_bytes(message: Message) -> int:
    """The bytes of text one message holds."""
    size = len((message.content or "").encode("utf-8", "replace"))
    for call in message.tool_calls:
        size += len(call.id) + len(call.name) + len(call.arguments.encode("utf-8", "replace"))
    return size + len(message.tool_call_id or "") + len(message.name or "")


def action_bytes(action: Action) -> int:
    """The bytes one action adds to the record (its message, raw text, tokens, metadata)."""
    size = message_bytes(action.message) + len((action.raw_text or "").encode("utf-8", "replace"))
    return size + client_data_bytes(action)


def client_data_bytes(action: Action) -> int:
    """The bytes of what the client (not the model) adds to an action: token ids, logprobs,
    metadata."""
    size = 10 * len(action.token_ids) + 8 * len(action.logprobs)
    if action.metadata:
        size += len(json.dumps(action.metadata, default=str).encode())
    return size


def fit_action(action: Action, cap: int) -> tuple[Action, bool]:
    """The action as the record keeps it: its model-written text (content, raw text, each
    call's arguments) cut to ``cap`` bytes in all, each cut part marked; whether anything was.
    The tools run the action as sent: only the record is cut."""
    size = action_bytes(action)
    if size <= cap:
        return action, False
    message = action.message
    texts = [
        message.content or "",
        action.raw_text or "",
        *(c.arguments for c in message.tool_calls),
    ]
    sizes = [len(t.encode("utf-8", "replace")) for t in texts]
    allowed = _share(sizes, max(0, cap - (size - sum(sizes))))
    cut = [
        text
        if length <= keep
        else text.encode("utf-8", "replace")[:keep].decode("utf-8", "ignore")
        + ACTION_CUT_MARK.format(size=length, cap=cap)
        for text, length, keep in zip(texts, sizes, allowed, strict=True)
    ]
    calls = [
        call.model_copy(update={"arguments": arguments})
        for call, arguments in zip(message.tool_calls, cut[2:], strict=True)
    ]
    fitted = message.model_copy(
        update={
            "content": cut[0] if message.content is not None else None,
            "tool_calls": calls,
        }
    )
    return (
        dataclasses.replace(
            action,
            message=fitted,
            raw_text=cut[1] if action.raw_text is not None else None,
        ),
        True,
    )


@dataclass(frozen=True)
class FittedObservations:
    """A turn's observations after the caps, and what was cut."""

    messages: list[Message]
    calls: list[CallRecord]
    size: int
    """Bytes the (possibly cut) observations hold."""
    cut: bool = False


def fit_observations(
    messages: Sequence[Message],
    calls: Sequence[CallRecord],
    budget: int,
    *,
    why: str = "",
) -> FittedObservations:
    """Cut the observations' contents to ``budget`` bytes in all, each marked where it was cut.

    The budget is shared fairly: short observations are kept whole, and what is left is split
    evenly among the long ones (each keeps its start). A cut tool observation marks its call
    record ``output_truncated``.
    """
    sizes = [len((m.content or "").encode("utf-8", "replace")) for m in messages]
    overhead = sum(message_bytes(m) for m in messages) - sum(sizes)
    if sum(sizes) + overhead <= budget:
        return FittedObservations(list(messages), list(calls), sum(sizes) + overhead)
    allowed = _share(sizes, max(0, budget - overhead))
    cut_ids: set[str] = set()
    fitted: list[Message] = []
    total = overhead
    for message, size, keep in zip(messages, sizes, allowed, strict=True):
        if size <= keep:
            fitted.append(message)
            total += size
            continue
        kept = (message.content or "").encode("utf-8", "replace")[:keep].decode("utf-8", "ignore")
        content = kept + CUT_MARK.format(size=size, cap=budget, why=why)
        fitted.append(message.model_copy(update={"content": content}))
        total += len(content.encode("utf-8"))
        if message.tool_call_id is not None:
            cut_ids.add(message.tool_call_id)
    records = [
        dataclasses.replace(r, output_truncated=True, error=r.error or "output_truncated")
        if r.tool_call_id in cut_ids
        else r
        for r in calls
    ]
    return FittedObservations(fitted, records, total, cut=True)


def _share(sizes: Sequence[int], budget: int) -> list[int]:
    """Water-filling: each size gets min(size, an equal share of what the smaller left)."""
    allowed = [0] * len(sizes)
    left = budget
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for position, i in enumerate(order):
        fair = left // (len(order) - position)
        allowed[i] = min(sizes[i], fair)
        left -= allowed[i]
    return allowed


@dataclass
class RecordMeter:
    """Counts the bytes an episode's record holds, and which of its text was replaced."""

    size: int = 0
    text_replaced: bool = False
    """Some text of the opening messages, example or params held lone surrogates."""
    replaced_turns: set[int] = field(default_factory=set)
    """Turns whose action or observations held lone surrogates (replaced by U+FFFD)."""


@dataclass(frozen=True)
class EpisodeRecord:
    """An episode's record as a trajectory serves it: the episode and the record's flags."""

    episode: Episode
    text_replaced: bool
    replaced_turns: frozenset[int]
