"""Environment authoring: replay gold outputs through real episodes, export them as SFT data.

The logic behind ``python -m runtime env test`` and ``env sft``; the CLI layer calls it.
"""

from runtime.authoring.gold import Gold, GoldError, is_trajectory, parse_gold
from runtime.authoring.replay import RowResult, replay_row, replay_rows
from runtime.authoring.sft import sft_messages, sft_record, write_jsonl

__all__ = [
    "Gold",
    "GoldError",
    "RowResult",
    "is_trajectory",
    "parse_gold",
    "replay_row",
    "replay_rows",
    "sft_messages",
    "sft_record",
    "write_jsonl",
]
