"""The shell_tasks environment: the task list, params, and real episodes: every task's setup and
checker on an untouched sandbox (0), every task solved by its reference commands (1), a scripted
model that solves one task and fails another, and checkers that the model cannot fool."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import pytest
from conftest import in_process_runtime

from runtime.client.in_process import InProcessClient
from runtime.client.models import EpisodeLimitsRequest, Scored
from runtime.env import EpisodeContext, Message, TaskExample, ToolCall
from runtime.env.loader import load_environment, resolve_module
from runtime.errors import InvalidArgumentError
from runtime.sandbox import labels

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environments" / "shell_tasks"
CONCURRENCY = 6


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    """The environment package, imported the way the loader imports it."""
    return resolve_module(str(ENV_DIR))


@pytest.fixture(scope="module")
def task_ids(mod: ModuleType) -> list[str]:
    return [task.id for task in mod.TASKS]


# --- the task list and params --------------------------------------------------------------


def test_at_least_thirty_tasks_in_every_category(mod: ModuleType) -> None:
    tasks = mod.TASKS
    assert len(tasks) >= 30
    assert len({t.id for t in tasks}) == len(tasks)
    counts = Counter(t.category for t in tasks)
    assert set(counts) == set(mod.CATEGORIES)
    assert all(n >= 4 for n in counts.values()), counts
    for task in tasks:
        assert task.instruction.strip()
        assert task.solution.strip()
        assert "/work" in task.instruction


def test_dataset_records(mod: ModuleType) -> None:
    env = load_environment(str(ENV_DIR))
    assert env.id == "shell_tasks"
    assert len(env.examples) == len(mod.TASKS)
    for example, task in zip(env.examples, mod.TASKS, strict=True):
        assert example.input == task.instruction
        assert example.output == task.id
        assert example.metadata == {"task_id": task.id, "category": task.category}
    assert list(env.tool_map) == ["bash", "read_file", "write_file", "submit"]
    assert env.max_turns == 20
    assert env.sandbox is not None
    assert env.sandbox.call_timeout_s == 20.0


def test_params_select_tasks(mod: ModuleType) -> None:
    env = load_environment(str(ENV_DIR), {"categories": ["git"], "num_examples": 3})
    assert [e.metadata["category"] for e in env.examples] == ["git"] * 3
    env = load_environment(str(ENV_DIR), {"task_ids": ["top_ips", "git_revert"], "max_turns": 5})
    assert [e.output for e in env.examples] == ["top_ips", "git_revert"]
    assert env.max_turns == 5
    both = {"task_ids": ["top_ips", "git_revert"], "categories": ["git"]}
    assert [e.output for e in load_environment(str(ENV_DIR), both).examples] == ["git_revert"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"task_ids": ["nope"]}, "unknown task ids"),
        ({"task_ids": []}, "must not be empty"),
        ({"task_ids": ["top_ips", "top_ips"]}, "duplicates"),
        ({"categories": ["cooking"]}, "unknown categories"),
        ({"categories": []}, "must not be empty"),
        ({"task_ids": ["top_ips"], "categories": ["git"]}, "no task matches"),
        ({"num_examples": 0}, "at least 1"),
        ({"max_turns": 0}, "max_turns"),
        ({"call_timeout_s": 0}, "call_timeout_s"),
    ],
)
def test_invalid_params(mod: ModuleType, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mod.load_environment(**params)
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), params)


async def test_unknown_inline_task_is_the_clients_error() -> None:
    env = load_environment(str(ENV_DIR))
    ctx = EpisodeContext(episode_id="e", sandbox=None, seed=None, timeout_s=1, output_cap_bytes=256)
    with pytest.raises(InvalidArgumentError, match="unknown shell task"):
        await env.start_episode(TaskExample(input="do it", output="nope"), ctx)


def test_setups_are_seeded(mod: ModuleType) -> None:
    import random

    for task in mod.TASKS:
        first, second = task.setup(random.Random(7)), task.setup(random.Random(7))
        assert first == second, task.id


def test_gold_actions_run_the_reference_solution_then_submit(mod: ModuleType) -> None:
    """`env test` plays these turns: the reference solution in one bash call, then submit."""
    env = load_environment(str(ENV_DIR))
    for example, task in zip(env.examples, mod.TASKS, strict=True):
        turns = env.gold_actions(example)  # type: ignore[attr-defined]
        assert [m.role for m in turns] == ["assistant", "assistant"]
        calls = [(c.name, json.loads(c.arguments)) for m in turns for c in m.tool_calls]
        assert calls == [("bash", {"command": task.solution}), ("submit", {"answer": "done"})]


# --- real episodes -----------------------------------------------------------------------------


def call(index: int, name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"call_{index}", name=name, arguments=json.dumps(arguments))


def assistant(*calls: ToolCall) -> Message:
    return Message(role="assistant", tool_calls=list(calls))


@pytest.fixture(scope="module")
async def client(owner: str, docker_client: docker.DockerClient) -> AsyncIterator[InProcessClient]:
    """An in-process runtime offering shell_tasks, under an owner name of its own."""
    async with in_process_runtime(ENV_DIR, f"{owner}-shell-tasks", docker_client) as runtime:
        yield runtime


async def play(
    client: InProcessClient, task_id: str, turns: list[Message], seed: int | None = None
) -> Scored:
    """Play scripted turns on one task, then score (and close) the episode."""
    # All tasks, one parameter set (loaded once by the server); the task by its index.
    index = [t.id for t in resolve_module(str(ENV_DIR)).TASKS].index(task_id)
    async with client.episode("shell_tasks", example_index=index, seed=seed) as ep:
        for message in turns:
            out = await ep.step(message)
            if out.done:
                break
        return await ep.score()


async def bounded(coros: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


def describe(results: dict[str, Scored]) -> dict[str, str]:
    return {k: f"{r.reward.score}: {r.reward.reason}" for k, r in results.items()}


@pytest.mark.slow
async def test_every_task_fails_on_an_untouched_sandbox(
    client: InProcessClient, mod: ModuleType
) -> None:
    """Every setup runs, and no checker passes a state the model did not change."""
    ids = [t.id for t in mod.TASKS]
    results = dict(zip(ids, await bounded([play(client, i, []) for i in ids]), strict=True))
    wrong = {k: v for k, v in describe(results).items() if not v.startswith("0.0: failed")}
    assert wrong == {}
    for result in results.values():
        assert result.reward.success is False
        assert result.reward.components
        assert result.reward.metadata["checks"]


@pytest.mark.slow
async def test_every_task_is_solved_by_its_reference_commands(
    client: InProcessClient, mod: ModuleType
) -> None:
    """The gold turns (`gold_turns`) solve every task, on two seeds each (the solutions must
    read the seeded data, not know it)."""
    ids = [f"{t.id}@{seed}" for seed in (11, 4242) for t in mod.TASKS]
    played = await bounded(
        [play(client, t.id, mod.gold_turns(t), seed=seed) for seed in (11, 4242) for t in mod.TASKS]
    )
    results = dict(zip(ids, played, strict=True))
    wrong = {k: v for k, v in describe(results).items() if not v.startswith("1.0: all")}
    assert wrong == {}
    for key, result in results.items():
        assert result.reward.metadata["task_id"] == key.partition("@")[0]
        assert result.reward.metadata["submitted"] is True
        assert set(result.reward.components.values()) == {1.0}


async def test_scripted_model_solves_one_task_and_fails_another(client: InProcessClient) -> None:
    good = [
        assistant(call(1, "bash", command="head -3 access.log; wc -l access.log")),
        assistant(
            call(
                2,
                "bash",
                command="cut -d' ' -f1 access.log | sort | uniq -c | sort -rn | head -3 "
                "| awk '{print $2}' > top_ips.txt; cat top_ips.txt",
            )
        ),
        assistant(call(3, "submit", answer="done")),
    ]
    # The classic mistake: `grep -c ERROR` also counts messages that mention ERROR.
    bad = [
        assistant(call(1, "bash", command="grep -c ERROR logs/app.log > answer.txt")),
        assistant(call(2, "submit", answer="done")),
    ]
    solved, failed = await asyncio.gather(
        play(client, "top_ips", good, seed=5), play(client, "count_errors", bad, seed=5)
    )
    assert solved.reward.score == 1.0, solved.reward.reason
    assert solved.reward.components == {"top_three": 1.0}
    assert solved.trajectory.submitted
    assert len(solved.trajectory.turns) == 3
    assert failed.reward.score == 0.0
    assert failed.reward.reason.startswith("failed: count")
    assert failed.reward.components == {"count": 0.0}


@pytest.mark.slow
async def test_hard_coded_script_output_fails(client: InProcessClient) -> None:
    """A script that prints the answer for the sample input is run on new inputs: 0."""
    cheat = (
        "cat > colsum.sh <<'EOF'\n#!/bin/bash\n"
        f"echo {json.dumps('PLACEHOLDER')}\nEOF\n"
        "s=$(awk -F, 'NR > 1 {s += $2} END {print s + 0}' numbers.csv)\n"
        'sed -i "s/PLACEHOLDER/$s/" colsum.sh; bash colsum.sh numbers.csv 2'
    )
    result = await play(
        client, "script_column_sum", [assistant(call(1, "bash", command=cheat))], seed=3
    )
    assert result.reward.score == 0.0
    assert "case_" in result.reward.reason


def processes_in(docker_client: docker.DockerClient, episode_id: str) -> list[str]:
    """`ps` of the episode's container as seen from the host (pid, state, command)."""
    found = docker_client.containers.list(filters={"label": f"{labels.EPISODE}={episode_id}"})
    assert len(found) == 1
    out = found[0].exec_run(["ps", "-eo", "pid=,stat=,comm="]).output.decode()
    return [line.strip() for line in out.splitlines() if line.strip()]


@pytest.mark.slow
async def test_scoring_first_kills_what_the_model_left_running(
    client: InProcessClient, docker_client: docker.DockerClient
) -> None:
    """Background jobs and daemons of the model would keep changing the state while the checker
    reads it; they are killed before any check runs."""
    racer = (
        "nohup bash -c 'while true; do echo 999 > /work/answer.txt; sleep 0.01; done' "
        ">/dev/null 2>&1 &\n"
        "setsid bash -c 'while true; do sleep 0.01; done' >/dev/null 2>&1 < /dev/null &\n"
        "sleep 0.2; echo started"
    )
    index = [t.id for t in resolve_module(str(ENV_DIR)).TASKS].index("count_errors")
    async with client.episode("shell_tasks", example_index=index) as ep:
        out = await ep.step(assistant(call(1, "bash", command=racer)))
        assert "started" in str(out.observations[0].content)
        assert len(processes_in(docker_client, ep.id)) >= 4
        scored = await ep.score()
        left = [
            p
            for p in processes_in(docker_client, ep.id)
            if p.split()[0] != "1" and p.split()[1][0] != "Z" and not p.endswith(" ps")
        ]
    assert left == []
    assert scored.reward.score == 0.0
    assert "got 999" in scored.reward.reason


@pytest.mark.slow
async def test_repository_config_of_the_model_is_not_used(client: InProcessClient) -> None:
    """Ignoring the artifacts through the repository's own config or info/exclude (instead of
    a committed .gitignore) does not count: the checker's git runs with a blank config."""
    base = "cd repo && touch .gitignore && git add .gitignore && git commit -qm 'Add .gitignore'\n"
    via_config = (
        base + "echo '*' > /work/ignore-all && git config core.excludesFile /work/ignore-all"
    )
    via_exclude = base + "printf 'build/\\n*.o\\n' >> .git/info/exclude"
    results = await asyncio.gather(
        *(
            play(client, "git_ignore_artifacts", [assistant(call(1, "bash", command=c))], seed=2)
            for c in (via_config + "; git status --porcelain", via_exclude)
        )
    )
    for result in results:
        assert result.reward.score == 0.0, result.reward.reason
        assert result.reward.components["gitignore_committed"] == 1.0
        assert result.reward.components["clean_work_tree"] == 0.0


@pytest.mark.slow
async def test_checks_work_at_the_smallest_output_cap(
    client: InProcessClient, mod: ModuleType
) -> None:
    """A client may cap each call's output at 256 bytes; the checker's own reads (files,
    listings, the repository's copy) are fetched in slices, and its fresh sandboxes keep a
    normal cap, so the gold still scores 1 and nothing else does."""
    ids = ["top_ips", "delete_tmp_files", "git_ignore_artifacts", "script_word_frequency"]
    order = [t.id for t in mod.TASKS]
    limits = EpisodeLimitsRequest(output_cap_bytes=256)

    async def one(task_id: str, gold: bool) -> Scored:
        turns = mod.gold_turns(mod.task_by_id(task_id)) if gold else []
        async with client.episode(
            "shell_tasks", example_index=order.index(task_id), seed=9, limits=limits
        ) as ep:
            for message in turns:
                if (await ep.step(message)).done:
                    break
            return await ep.score()

    cases = [(i, gold) for i in ids for gold in (True, False)]
    played = await bounded([one(i, gold) for i, gold in cases])
    results = {
        f"{i}/{'gold' if gold else 'untouched'}": r
        for (i, gold), r in zip(cases, played, strict=True)
    }
    want = {f"{i}/{'gold' if gold else 'untouched'}": float(gold) for i, gold in cases}
    assert {k: r.reward.score for k, r in results.items()} == want, describe(results)
