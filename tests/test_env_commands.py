"""`python -m runtime env test | sft | init`: gold replay, SFT export and the scaffold.

Episodes run in real Docker sandboxes on an in-process engine whose owner label is derived from
the session's; nothing of it may be left at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import wait_until_gone

from runtime.authoring.gold import GoldError, parse_gold
from runtime.cli.main import main
from runtime.tools.messages import Message

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "environments"
TEST_ENVS = REPO / "tests" / "environments"

KNOWN_GOLD_GAPS: dict[str, str] = {}
"""Shipped environments whose dataset `output` is no gold answer yet (strict xfail: remove the
entry once the environment's data carries real gold outputs)."""


def shipped_environments() -> list[Any]:
    """Every environment folder under environments/, found by listing it."""
    found = sorted(
        p.name
        for p in SHIPPED.iterdir()
        if p.is_dir() and not p.name.startswith(("_", ".")) and (p / "__init__.py").exists()
    )
    return [
        pytest.param(
            name,
            marks=[
                pytest.mark.xfail(strict=True, raises=AssertionError, reason=KNOWN_GOLD_GAPS[name])
            ]
            if name in KNOWN_GOLD_GAPS
            else [],
        )
        for name in found
    ]


@pytest.fixture(scope="module")
async def instance(owner: str, docker_client: docker.DockerClient) -> AsyncIterator[str]:
    """The owner label of every sandbox these tests start; none may remain at the end."""
    name = f"{owner}-envcmd"
    yield name
    assert await wait_until_gone(docker_client, name) == []


async def cli(*argv: str) -> int:
    """`python -m runtime ...` in a worker thread (it runs its own event loop)."""
    return await asyncio.to_thread(main, list(argv))


async def env_test(
    capsys: pytest.CaptureFixture[str], instance: str, ref: str, *flags: str
) -> tuple[int, dict[str, Any]]:
    """`env test REF --json`: the exit code and the parsed document."""
    code = await cli("env", "test", ref, "--json", "--instance-name", instance, *flags)
    out = capsys.readouterr().out
    return code, json.loads(out)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def one_error_line(err: str, *fragments: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err


# --- gold outputs (no Docker) ------------------------------------------------------------------


def test_scalar_gold_is_a_submit_call_or_the_content() -> None:
    gold = parse_gold(37)
    assert (gold.kind, gold.answer) == ("scalar", "37")
    call = gold.scalar_turn(2, ["python", "submit"])
    assert call.content is None
    assert [(c.id, c.name, json.loads(c.arguments)) for c in call.tool_calls] == [
        ("gold_2", "submit", {"answer": "37"})
    ]
    assert gold.scalar_turn(1, []) == Message(role="assistant", content="37")
    assert parse_gold({"x": [1, 2]}).answer == '{"x": [1, 2]}'
    assert parse_gold([1, 2]).kind == "scalar"  # a list of non-messages is an answer
    assert parse_gold("  7/12 ").answer == "  7/12 "


def test_trajectory_gold_keeps_assistant_turns_only() -> None:
    gold = parse_gold(
        [
            {"role": "user", "content": "ignored"},
            {
                "role": "assistant",
                "content": "first",
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {"name": "bash", "arguments": {"command": "ls"}},
                    },
                    {"id": "flat", "name": "submit", "arguments": '{"answer": "x"}'},
                ],
            },
            {"role": "tool", "tool_call_id": "gold_1_1", "content": "stale"},
            {"role": "assistant", "content": "done", "extra_field": "dropped"},
        ]
    )
    assert gold.kind == "trajectory"
    assert [m.content for m in gold.turns] == ["first", "done"]
    calls = gold.turns[0].tool_calls
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("gold_1_1", "bash", {"command": "ls"}),
        ("flat", "submit", {"answer": "x"}),
    ]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (None, "no gold 'output'"),
        ([{"role": "user", "content": "hi"}], "no assistant message"),
        ([{"role": "robot", "content": "hi"}], "unknown role"),
        ([{"role": "assistant", "tool_calls": "nope"}], "tool_calls must be a list"),
        ([{"role": "assistant", "tool_calls": [{"id": "a"}]}], "no function name"),
        ([{"role": "assistant", "content": 3}], "content must be a string"),
    ],
)
def test_malformed_gold_is_refused(output: Any, message: str) -> None:
    with pytest.raises(GoldError, match=message):
        parse_gold(output)


# --- env test ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", shipped_environments())
async def test_env_test_passes_on_every_shipped_environment(
    name: str, instance: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = await env_test(capsys, instance, str(SHIPPED / name), "--limit", "3")
    assert report["overall"] == "PASS", json.dumps(report["rows"], indent=2)
    assert code == 0
    assert report["environment"] == name
    assert [row["index"] for row in report["rows"]] == list(range(len(report["rows"])))
    assert 1 <= len(report["rows"]) <= 3
    assert all(row["passed"] and row["score"] >= row["threshold"] for row in report["rows"])


@pytest.mark.parametrize("name", ["toy", "guess", "nosandbox", "trajectory_gold"])
async def test_env_test_passes_on_the_test_environments(
    name: str, instance: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = await env_test(capsys, instance, str(TEST_ENVS / name), "-c", "2")
    assert (code, report["overall"]) == (0, "PASS"), report
    kinds = {row["gold"] for row in report["rows"]}
    assert kinds == ({"trajectory"} if name == "trajectory_gold" else {"scalar"})


async def test_env_test_plays_the_gold_actions_hook(
    instance: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = str(TEST_ENVS / "trajectory_gold")
    code, report = await env_test(capsys, instance, ref, "-a", '{"gold": "hook"}')
    assert (code, report["overall"]) == (0, "PASS"), report
    assert [(row["gold"], row["turns"]) for row in report["rows"]] == [("gold_actions", 3)] * 2


async def test_env_test_prints_a_table_and_overall_last(
    instance: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await cli("env", "test", "python_math", "-n", "2", "--instance-name", instance)
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.rstrip("\n").splitlines()
    assert lines[-1] == "overall: PASS"
    assert lines[-2] == "2/2 rows passed"
    header = next(line for line in lines if "threshold" in line)
    for column in ("row", "gold", "turns", "score", "result", "reason"):
        assert column in header
    assert sum("PASS" in line and "correct" in line for line in lines) == 2


@pytest.mark.parametrize(
    ("ref", "params", "reason"),
    [
        ("bad_gold", {"mode": "wrong"}, "score 0 is below the threshold 1"),
        ("bad_gold", {"mode": "nan"}, "hook error: environment 'bad_gold': score is nan"),
        ("bad_gold", {"mode": "rubric_nan"}, "reward function '_nan_metric' failed"),
        ("broken", {"fail_in": "score"}, "score_episode raised RuntimeError: score hook exploded"),
        ("broken", {"fail_in": "step"}, "step_episode raised RuntimeError: step hook exploded"),
        ("trajectory_gold", {"gold": "hook_raises"}, "gold_actions raised KeyError"),
        ("trajectory_gold", {"gold": "hook_bad"}, "gold_actions must return a list of messages"),
    ],
)
async def test_env_test_fails_on_broken_gold_or_hooks(
    ref: str,
    params: dict[str, Any],
    reason: str,
    instance: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = ("--env-params", json.dumps(params))
    code, report = await env_test(capsys, instance, str(TEST_ENVS / ref), *flags)
    assert (code, report["overall"]) == (1, "FAIL")
    assert report["params"] == params
    assert report["failed"] == len(report["rows"]) >= 1
    for row in report["rows"]:
        assert not row["passed"]
        assert reason in row["reason"], row


async def test_env_test_table_says_fail_last(
    instance: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = await cli("env", "test", str(TEST_ENVS / "bad_gold"), "--instance-name", instance)
    assert ok == 0
    capsys.readouterr()
    params = '{"mode": "wrong"}'
    code = await cli(
        "env", "test", str(TEST_ENVS / "bad_gold"), "-a", params, "--instance-name", instance
    )
    out = capsys.readouterr().out
    assert code == 1
    assert out.rstrip("\n").splitlines()[-1] == "overall: FAIL"
    assert "0/2 rows passed" in out


async def test_env_test_usage_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("env") == 0
    assert "subcommands:" in capsys.readouterr().out
    assert await cli("env", "frobnicate") == 2
    assert "unknown env subcommand 'frobnicate'" in capsys.readouterr().err
    assert await cli("env", "test", "python_math", "--limit", "0") == 2
    assert "must be at least 1" in capsys.readouterr().err
    assert await cli("env", "test", "python_math", "-a", "[1]") == 2
    assert "must be a JSON object" in capsys.readouterr().err
    assert await cli("env", "test", "no_such_env") == 1
    one_error_line(capsys.readouterr().err, "'no_such_env' not found")
    assert await cli("env", "test", "python_math", "-a", '{"bogus": 1}') == 1
    one_error_line(capsys.readouterr().err, "does not take these params")
    assert await cli("env", "sft", "python_math") == 2
    assert "--out" in capsys.readouterr().err


# --- env sft -----------------------------------------------------------------------------------


async def test_sft_export_of_scalar_gold(
    tmp_path: Path, instance: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nested" / "math.jsonl"
    code = await cli(
        "env", "sft", str(SHIPPED / "python_math"), "--out", str(out), "-n", "3",
        "--instance-name", instance,
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert f"wrote 3 example(s) of python_math to {out}" in capsys.readouterr().out
    rows = [json.loads(line) for line in (SHIPPED / "python_math" / "data.jsonl").open()][:3]
    lines = read_jsonl(out)
    assert len(lines) == 3
    for index, (line, row) in enumerate(zip(lines, rows, strict=True)):
        assert set(line) == {"messages", "tools", "metadata"}
        assert line["metadata"] == {
            "environment": "python_math",
            "example_index": index,
            "score": 1.0,
        }
        system, user, assistant = line["messages"]
        assert system["role"] == "system"
        assert system["content"].startswith("You solve math problems")
        assert user == {"role": "user", "content": row["input"]}
        assert assistant == {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "gold_1",
                    "type": "function",
                    "function": {
                        "name": "submit",
                        "arguments": json.dumps({"answer": row["output"]}),
                    },
                }
            ],
        }
        assert [t["function"]["name"] for t in line["tools"]] == ["python", "submit"]
        assert all(t["type"] == "function" for t in line["tools"])
        assert line["tools"][1]["function"]["parameters"]["required"] == ["answer"]


async def test_sft_export_of_tool_call_trajectories(
    tmp_path: Path, instance: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trajectories.jsonl"
    code = await cli(
        "env", "sft", str(TEST_ENVS / "trajectory_gold"), "--out", str(out),
        "--instance-name", instance,
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    lines = read_jsonl(out)
    assert [line["metadata"]["example_index"] for line in lines] == [0, 1]
    for line, word in zip(lines, ["hello", "world"], strict=True):
        messages = line["messages"]
        assert [m["role"] for m in messages] == [
            "system", "user", "assistant", "tool", "assistant", "tool", "assistant",
        ]  # fmt: skip
        assert (
            messages[0]["content"] == "Do the task with the tools, then submit the file's content."
        )
        assert messages[1]["content"] == f"Write {word} to f.txt, read it back and submit it."
        write, wrote, read, content, submit = messages[2:]
        assert write["content"] == "Writing the file."
        assert [c["id"] for c in write["tool_calls"]] == ["call_w"]
        assert json.loads(write["tool_calls"][0]["function"]["arguments"]) == {
            "command": f"echo {word} > f.txt && wc -c < f.txt"
        }
        # The tool results are the sandbox's real output, not the stale text in the file.
        assert wrote == {
            "role": "tool",
            "content": str(len(word) + 1),
            "tool_call_id": "call_w",
            "name": "bash",
        }
        assert read["tool_calls"][0]["function"]["name"] == "read_file"
        assert content == {
            "role": "tool",
            "content": f"{word}\n",
            "tool_call_id": "call_r",
            "name": "read_file",
        }
        # It ends with the assistant's submit call; submit's own reply is left out.
        assert submit["role"] == "assistant"
        assert submit["tool_calls"] == [
            {
                "id": "call_s",
                "type": "function",
                "function": {"name": "submit", "arguments": json.dumps({"answer": word})},
            }
        ]
        for m in messages:
            if m["role"] == "assistant":
                for call in m.get("tool_calls", []):
                    assert isinstance(call["function"]["arguments"], str)
        assert "NOT THE REAL OUTPUT" not in json.dumps(line)
        assert [t["function"]["name"] for t in line["tools"]] == ["bash", "read_file", "submit"]

    hooked = tmp_path / "hooked.jsonl"
    argv = ["env", "sft", str(TEST_ENVS / "trajectory_gold"), "--out", str(hooked)]
    assert await cli(*argv, "-a", '{"gold": "hook"}', "--instance-name", instance) == 0
    assert [line["messages"] for line in read_jsonl(hooked)] == [line["messages"] for line in lines]


async def test_sft_export_without_tools_and_with_failing_rows(
    tmp_path: Path, instance: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "guess.jsonl"
    code = await cli(
        "env", "sft", str(TEST_ENVS / "guess"), "-o", str(out), "--instance-name", instance
    )
    assert code == 0
    first = read_jsonl(out)[0]
    assert first["tools"] == []
    assert first["messages"][-1] == {"role": "assistant", "content": "37"}
    capsys.readouterr()

    failing = tmp_path / "wrong.jsonl"
    argv = ["env", "sft", str(TEST_ENVS / "bad_gold"), "-o", str(failing)]
    argv += ["-a", '{"mode": "wrong"}', "--instance-name", instance]
    assert await cli(*argv) == 1
    err = capsys.readouterr().err
    assert "row 0: FAIL: score 0 is below the threshold 1" in err
    assert "error: no row of 'bad_gold' passed; nothing written" in err
    assert not failing.exists()
    assert await cli(*argv, "--include-failing") == 1
    assert [line["metadata"]["score"] for line in read_jsonl(failing)] == [0.0, 0.0]
    assert "wrote 2 example(s)" in capsys.readouterr().out

    assert await cli("env", "sft", "python_math", "-o", str(tmp_path)) == 1
    one_error_line(capsys.readouterr().err, "is a directory")


# --- env init ----------------------------------------------------------------------------------


async def test_env_init_scaffold_passes_env_test_and_its_own_test(
    tmp_path: Path,
    owner: str,
    instance: str,
    docker_client: docker.DockerClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await cli("env", "init", "demo_env", "--dir", str(tmp_path)) == 0
    folder = tmp_path / "demo_env"
    assert f"next: python -m runtime env test {folder}" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "__init__.py", "data.jsonl", "test_demo_env.py",
    ]  # fmt: skip
    assert "class DemoEnv(Environment)" in (folder / "__init__.py").read_text()

    code, report = await env_test(capsys, instance, str(folder))
    assert (code, report["overall"]) == (0, "PASS"), report
    assert {row["gold"] for row in report["rows"]} == {"scalar", "trajectory"}
    assert report["environment"] == "demo_env"

    sft = tmp_path / "demo.jsonl"
    argv = ("env", "sft", str(folder), "-o", str(sft), "--instance-name", instance)
    assert await cli(*argv) == 0
    assert len(read_jsonl(sft)) == len(report["rows"])

    lint = [sys.executable, "-m", "ruff"]
    for extra in (["check"], ["format", "--check"]):
        linted = await asyncio.to_thread(
            subprocess.run, [*lint, *extra, str(folder)], capture_output=True, text=True
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr

    own = f"{owner}-init"
    env = {**os.environ, "RUNTIME_TEST_OWNER": own}
    command = [sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider"]
    done = await asyncio.to_thread(
        subprocess.run,
        [*command, "--rootdir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert await wait_until_gone(docker_client, own) == []


async def test_env_init_refuses_bad_names_and_existing_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("env", "init", "mine", "--dir", str(tmp_path)) == 0
    capsys.readouterr()
    before = (tmp_path / "mine" / "__init__.py").read_text()
    (tmp_path / "mine" / "__init__.py").write_text(before + "# edited\n")
    assert await cli("env", "init", "mine", "--dir", str(tmp_path)) == 1
    one_error_line(capsys.readouterr().err, "already exists; not overwriting it")
    assert (tmp_path / "mine" / "__init__.py").read_text().endswith("# edited\n")
    for bad, fragment in [
        ("9lives", "must be a Python identifier"),
        ("my-env", "must be a Python identifier"),
        ("class", "must not be a Python keyword"),
        ("_hidden", "must not start with '_'"),
        ("json", "importable module"),
    ]:
        assert await cli("env", "init", bad, "--dir", str(tmp_path)) == 1
        one_error_line(capsys.readouterr().err, fragment)
        assert not (tmp_path / bad).exists()
    assert await cli("env", "init") == 2
