"""The environment SDK and the engine in-process: discovery, datasets, parsing, no-tool turns."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runtime.env import Action, Message
from runtime.env.action_parser import parse_tool_call_blocks
from runtime.env.dataset import load_dataset
from runtime.env.loader import discover, load_environment
from runtime.episodes.engine import EpisodeEngine, ExampleRef
from runtime.episodes.registry import EnvironmentRegistry
from runtime.errors import (
    EnvironmentHookError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from runtime.sandbox.docker_backend import DockerBackend

ENVS = Path(__file__).resolve().parent / "environments"

ENV_MODULE = """
from runtime.env import Environment

class Tiny(Environment):
    dataset = "tiny.jsonl"
    sandbox = None
    max_turns = 1

def load_environment(greeting: str = "hi"):
    env = Tiny()
    env.system_prompt = greeting
    return env
"""


def write_env(folder: Path, name: str) -> Path:
    """A minimal environment module with a JSONL dataset beside it."""
    package = folder / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(ENV_MODULE)
    records = [{"input": "2+2?", "output": "4"}, {"input": "3+3?", "output": "6", "metadata": {}}]
    (package / "tiny.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    return package


def test_found_by_path_by_folder_name_and_by_module_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = write_env(tmp_path, "tiny_env_a")
    by_path = load_environment(str(package))
    assert by_path.id == "tiny_env_a"
    assert [e.output for e in by_path.examples] == ["4", "6"]
    by_file = load_environment(str(package / "__init__.py"))
    assert len(by_file.examples) == 2
    by_dir = load_environment("tiny_env_a", {"greeting": "hello"}, search_dirs=[tmp_path])
    assert by_dir.system_prompt == "hello"
    assert "tiny_env_a" in discover([tmp_path])
    monkeypatch.syspath_prepend(str(tmp_path))
    by_module = load_environment("tiny_env_a")
    assert by_module.id == "tiny_env_a"
    assert by_module.max_turns == 1


def test_found_by_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(tmp_path, "tiny_env_b")
    dist = tmp_path / "tiny_env_b-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-env-b\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[runtime.environments]\ntiny = tiny_env_b\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    env = load_environment("tiny")
    assert env.id == "tiny"
    assert len(env.examples) == 2
    assert "tiny" in discover([])


def test_loader_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        load_environment("no_such_environment_anywhere")
    (tmp_path / "nofactory.py").write_text("X = 1\n")
    with pytest.raises(NotFoundError, match="no load_environment"):
        load_environment(str(tmp_path / "nofactory.py"))
    package = write_env(tmp_path, "tiny_env_c")
    with pytest.raises(InvalidArgumentError, match="does not take these params"):
        load_environment(str(package), {"colour": "red"})
    (tmp_path / "boom.py").write_text("raise RuntimeError('import-time failure')\n")
    with pytest.raises(EnvironmentHookError, match="import-time failure"):
        load_environment(str(tmp_path / "boom.py"))
    (tmp_path / "notenv.py").write_text("def load_environment():\n    return 42\n")
    with pytest.raises(EnvironmentHookError, match="not an Environment"):
        load_environment(str(tmp_path / "notenv.py"))


def test_dataset_errors_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"input": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        load_dataset("bad.jsonl", tmp_path)
    with pytest.raises(ValueError, match="record 0 has no 'input'"):
        load_dataset([{"output": 1}], tmp_path)


@pytest.mark.parametrize(
    ("text", "names", "content"),
    [
        ('<tool_call>{"name": "bash", "arguments": {"command": "ls"}}</tool_call>', ["bash"], None),
        (
            'think first <tool_call>{"name":"a","arguments":{}}</tool_call>'
            '<tool_call>{"name":"b","arguments":"{}"}</tool_call>',
            ["a", "b"],
            "think first",
        ),
        ("<tool_call>{not json</tool_call>", [""], None),
        ('<tool_call>{"name": "unclosed", "arguments": {}}', ["unclosed"], None),
        ("<tool_call>[1, 2]</tool_call>", [""], None),
        ("just an answer", [], "just an answer"),
    ],
)
def test_action_parser(text: str, names: list[str], content: str | None) -> None:
    message = parse_tool_call_blocks(text)
    assert message.role == "assistant"
    assert [c.name for c in message.tool_calls] == names
    assert message.content == content
    assert len({c.id for c in message.tool_calls}) == len(names)


def test_action_parser_caps_the_number_of_calls() -> None:
    text = '<tool_call>{"name": "a", "arguments": {}}</tool_call>' * 5000
    assert len(parse_tool_call_blocks(text).tool_calls) == 4096


@pytest.fixture
async def engine(owner: str) -> EpisodeEngine:
    registry = EnvironmentRegistry([str(ENVS / "guess")])
    backend = DockerBackend(owner=f"{owner}-sdk", boot_id="sdk")
    return EpisodeEngine(registry, backend)


async def test_engine_in_process_plays_a_no_tool_multi_turn_environment(
    engine: EpisodeEngine,
) -> None:
    started = await engine.start_episode("guess", example=ExampleRef(index=0))
    assert [m.role for m in started.messages] == ["system", "user"]
    assert started.tools == []
    replies = []
    for number, guess in enumerate(["50", "twenty", "25", "37"], 1):
        outcome = await engine.step_episode(
            started.episode_id,
            Action(Message(role="assistant", content=guess)),
            expected_turn=number,
        )
        replies.append([m.content for m in outcome.turn.observations])
    assert replies == [["lower"], ["Please reply with a whole number."], ["higher"], []]
    assert outcome.turn.done
    assert not outcome.turn.truncated
    reward, episode = await engine.score_episode(started.episode_id)
    assert reward.score == pytest.approx(0.25)
    assert reward.components == {"solved": 1.0, "guesses": 4.0}
    assert reward.metadata["per_turn_rewards"] == [0.0, 0.0, 0.0, 1.0]
    assert [m.role for m in episode.messages] == ["system", "user"] + ["assistant", "user"] * 3 + [
        "assistant"
    ]
    with pytest.raises(FailedPreconditionError, match="score or close it"):
        await engine.step_episode(
            started.episode_id, Action(Message(role="assistant", content="1"))
        )
    assert await engine.close_episode(started.episode_id) is True
    assert await engine.close_episode(started.episode_id) is False
    with pytest.raises(FailedPreconditionError, match="was closed"):
        engine.get_trajectory(started.episode_id)
    await engine.close()


async def test_single_turn_episode_is_truncated_after_one_turn(engine: EpisodeEngine) -> None:
    from runtime.episodes.limits import EpisodeLimits

    started = await engine.start_episode(
        "guess", example=ExampleRef(index=1), limits=EpisodeLimits(max_turns=1)
    )
    assert started.max_turns == 1
    outcome = await engine.step_episode(
        started.episode_id, Action(Message(role="assistant", content="10"))
    )
    assert outcome.turn.done
    assert outcome.turn.truncated
    reward, episode = await engine.score_episode(started.episode_id)
    assert reward.score == 0.0
    assert not reward.success
    assert episode.status == "truncated"
    await engine.close()


def test_the_module_registers_nothing_global() -> None:
    # Environments imported from paths get private module names, never shadowing real ones.
    load_environment(str(ENVS / "guess"))
    assert "guess" not in sys.modules


def test_registry_reloads_an_edited_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from runtime.episodes import registry as registry_module

    monkeypatch.setattr(registry_module, "RELOAD_CHECK_S", 0.0)
    package = write_env(tmp_path, "tiny_env_d")
    watched = EnvironmentRegistry([str(package)], reload=True)
    frozen = EnvironmentRegistry([str(package)])
    assert watched.get("tiny_env_d").system_prompt == "hi"
    source = package / "__init__.py"
    source.write_text(ENV_MODULE.replace('greeting: str = "hi"', 'greeting: str = "edited"'))
    later = source.stat().st_mtime + 5
    os.utime(source, (later, later))
    assert watched.get("tiny_env_d").system_prompt == "edited"
    assert watched.describe("tiny_env_d").system_prompt == "edited"
    assert frozen.get("tiny_env_d").system_prompt == "hi"
