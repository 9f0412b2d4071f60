"""Whole episodes over gRPC: a real server on a loopback port, real Docker sandboxes.

Nothing is mocked. Each test drives `EpisodeService` through a generated stub exactly as a
training worker would, and reads back what the model and the trainer would see.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import docker
import grpc
import pytest
from conftest import leftover_containers, wait_until_gone
from grpc_fixtures import (  # noqa: F401  (fixtures are used by name)
    RPC_TIMEOUT,
    assistant,
    attempt,
    bash,
    call,
    channel_fixture,
    close_quietly,
    connected,
    conversation,
    episode_containers,
    expect_error,
    open_episode,
    raw,
    rpc_error,
    running_server,
    server_fixture,
    start_request,
    step,
    stub_fixture,
    trajectory,
)
from grpc_fixtures import settings as server_settings
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from runtime.sandbox import labels
from runtime.server.app import RuntimeServer
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

Stub = pb_grpc.EpisodeServiceStub
TOY_SYSTEM = "Solve the task with the tools, then call submit."
TOY_TOOLS = ["bash", "python", "read_file", "write_file", "submit", "add", "episode_note"]


def content(message: pb.Message) -> str | None:
    return message.content if message.HasField("content") else None


def assert_tool_message(message: pb.Message, call_id: str, name: str, text: str) -> None:
    assert message.role == "tool"
    assert message.tool_call_id == call_id
    assert message.name == name
    assert content(message) == text


def assert_call_ok(info: pb.CallInfo, call_id: str, name: str, exit_code: int | None) -> None:
    assert info.tool_call_id == call_id
    assert info.name == name
    if exit_code is None:
        assert not info.HasField("exit_code")
    else:
        assert info.exit_code == exit_code
    assert not info.timed_out
    assert not info.output_truncated
    assert info.error == ""
    assert info.duration_seconds >= 0


# --- describing environments -------------------------------------------------------------------


async def test_list_and_describe_environments(stub: Stub) -> None:
    listed = await stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=RPC_TIMEOUT)
    by_id = {info.id: info for info in listed.environments}
    assert {"toy", "broken"} <= set(by_id)

    described = await stub.DescribeEnvironment(
        pb.DescribeEnvironmentRequest(environment_id="toy"), timeout=RPC_TIMEOUT
    )
    toy = described.environment
    assert toy == by_id["toy"]
    assert toy.id == "toy"
    assert toy.description == "Tool-use smoke environment."
    assert toy.HasField("system_prompt")
    assert toy.system_prompt == TOY_SYSTEM
    assert toy.max_episode_turns == 4
    assert toy.dataset_size == 3
    assert [t.name for t in toy.tools] == TOY_TOOLS

    schemas = {t.name: json.loads(t.parameters_json) for t in toy.tools}
    descriptions = {t.name: t.description for t in toy.tools}
    for name, schema in schemas.items():
        assert schema["type"] == "object", name
        assert schema.get("additionalProperties") is False, name
        assert descriptions[name], name
    assert schemas["bash"]["required"] == ["command"]
    assert schemas["bash"]["properties"]["command"]["type"] == "string"
    assert schemas["python"]["required"] == ["code"]
    assert schemas["read_file"]["required"] == ["path"]
    assert sorted(schemas["write_file"]["required"]) == ["content", "path"]
    assert schemas["submit"]["required"] == ["answer"]
    assert schemas["add"]["properties"] == {
        "a": {"type": "integer", "description": "First addend."},
        "b": {"type": "integer", "description": "Second addend."},
    }
    assert sorted(schemas["add"]["required"]) == ["a", "b"]
    assert schemas["episode_note"]["properties"]["text"]["type"] == "string"
    # ToolContext parameters never leak into a schema.
    assert all("ctx" not in s["properties"] for s in schemas.values())
    assert descriptions["add"].startswith("Add two integers")

    broken = by_id["broken"]
    assert [t.name for t in broken.tools] == ["bash", "submit"]
    assert not broken.HasField("system_prompt")
    assert broken.dataset_size == 1

    # Params reach load_environment(): the toy takes its turn limit from them.
    with_params = await stub.DescribeEnvironment(
        pb.DescribeEnvironmentRequest(environment_id="toy", params_json='{"max_turns": 7}'),
        timeout=RPC_TIMEOUT,
    )
    assert with_params.environment.max_episode_turns == 7


# --- the full episode --------------------------------------------------------------------------


async def test_full_episode_message_by_message(stub: Stub) -> None:
    async with open_episode(stub, example_index=1) as started:
        episode_id = started.episode_id
        assert episode_id
        assert started.max_episode_turns == 4
        assert started.HasField("example_index")
        assert started.example_index == 1
        assert [(m.role, content(m)) for m in started.messages] == [
            ("system", TOY_SYSTEM),
            ("user", "Write hello to greeting.txt and submit its content."),
        ]
        assert [t.name for t in started.tools] == TOY_TOOLS
        assert json.loads(started.tools[0].parameters_json)["required"] == ["command"]

        # Turn 1: bash writes a file (the assistant also says something).
        a1 = assistant(
            bash("printf hello > greeting.txt && echo written", "t1-bash"),
            content="I will write the file first.",
            token_ids=[11, 12, 13],
            logprobs=[-0.5, -0.25, -0.125],
            metadata={"sampler": "turn-1", "temperature": 0.7},
        )
        r1 = await step(stub, episode_id, a1, turn=1)
        assert (r1.turn, r1.done, r1.truncated, r1.replayed) == (1, False, False, False)
        assert len(r1.observations) == 1
        assert_tool_message(r1.observations[0], "t1-bash", "bash", "written")
        assert len(r1.calls) == 1
        assert_call_ok(r1.calls[0], "t1-bash", "bash", exit_code=0)

        # Turn 2: python reads it back, the host tool adds, the scratch tool remembers.
        a2 = assistant(
            call("python", {"code": "print(open('greeting.txt').read())"}, "t2-py"),
            call("add", {"a": 2, "b": 40}, "t2-add"),
            call("episode_note", {"text": "first"}, "t2-note"),
            token_ids=[21],
            logprobs=[-1.0],
        )
        r2 = await step(stub, episode_id, a2, turn=2)
        assert (r2.turn, r2.done, r2.truncated) == (2, False, False)
        assert [m.tool_call_id for m in r2.observations] == ["t2-py", "t2-add", "t2-note"]
        assert_tool_message(r2.observations[0], "t2-py", "python", "hello")
        assert_tool_message(r2.observations[1], "t2-add", "add", "42")
        assert_tool_message(r2.observations[2], "t2-note", "episode_note", "first")
        assert_call_ok(r2.calls[0], "t2-py", "python", exit_code=0)
        assert_call_ok(r2.calls[1], "t2-add", "add", exit_code=None)
        assert_call_ok(r2.calls[2], "t2-note", "episode_note", exit_code=None)

        # Turn 3: read_file, write_file, bash sees the written file, the note persists.
        a3 = assistant(
            call("read_file", {"path": "greeting.txt"}, "t3-read"),
            call("write_file", {"path": "notes/out.txt", "content": "x\ny"}, "t3-write"),
            bash("cat notes/out.txt", "t3-cat"),
            call("episode_note", {"text": "second"}, "t3-note"),
        )
        r3 = await step(stub, episode_id, a3, turn=3)
        assert (r3.turn, r3.done, r3.truncated) == (3, False, False)
        assert_tool_message(r3.observations[0], "t3-read", "read_file", "hello")
        assert_tool_message(
            r3.observations[1], "t3-write", "write_file", "wrote 3 bytes to notes/out.txt"
        )
        assert_tool_message(r3.observations[2], "t3-cat", "bash", "x\ny")
        assert_tool_message(r3.observations[3], "t3-note", "episode_note", "first | second")
        for info, (call_id, name, code) in zip(
            r3.calls,
            [
                ("t3-read", "read_file", None),
                ("t3-write", "write_file", None),
                ("t3-cat", "bash", 0),
                ("t3-note", "episode_note", None),
            ],
            strict=True,
        ):
            assert_call_ok(info, call_id, name, exit_code=code)

        # Turn 4 (the last allowed): submit ends the episode; that is done, not truncation.
        a4 = assistant(call("submit", {"answer": "hello"}, "t4-submit"), metadata={"last": True})
        r4 = await step(stub, episode_id, a4, turn=4)
        assert (r4.turn, r4.done, r4.truncated) == (4, True, False)
        assert_tool_message(r4.observations[0], "t4-submit", "submit", "answer submitted")
        assert_call_ok(r4.calls[0], "t4-submit", "submit", exit_code=None)

        scored = await stub.ScoreEpisode(
            pb.ScoreEpisodeRequest(episode_id=episode_id, include_trajectory=True),
            timeout=RPC_TIMEOUT,
        )
        assert scored.reward.score == 1.0
        assert scored.reward.threshold == 1.0
        assert scored.reward.success is True
        assert scored.reward.reason == "answer matches"

        got = await trajectory(stub, episode_id)
        assert got == scored.trajectory
        assert got.episode_id == episode_id
        assert got.environment_id == "toy"
        assert got.example_index == 1
        assert (got.status, got.done, got.truncated) == ("done", True, False)
        assert got.max_episode_turns == 4
        assert got.error == ""
        assert got.reward == scored.reward
        assert json.loads(got.submission_json) == "hello"

        # Every message, in order.
        expected: list[tuple[str, str | None, list[tuple[str, str]], str, str]] = [
            ("system", TOY_SYSTEM, [], "", ""),
            ("user", "Write hello to greeting.txt and submit its content.", [], "", ""),
            ("assistant", "I will write the file first.", [("t1-bash", "bash")], "", ""),
            ("tool", "written", [], "t1-bash", "bash"),
            (
                "assistant",
                None,
                [("t2-py", "python"), ("t2-add", "add"), ("t2-note", "episode_note")],
                "",
                "",
            ),
            ("tool", "hello", [], "t2-py", "python"),
            ("tool", "42", [], "t2-add", "add"),
            ("tool", "first", [], "t2-note", "episode_note"),
            (
                "assistant",
                None,
                [
                    ("t3-read", "read_file"),
                    ("t3-write", "write_file"),
                    ("t3-cat", "bash"),
                    ("t3-note", "episode_note"),
                ],
                "",
                "",
            ),
            ("tool", "hello", [], "t3-read", "read_file"),
            ("tool", "wrote 3 bytes to notes/out.txt", [], "t3-write", "write_file"),
            ("tool", "x\ny", [], "t3-cat", "bash"),
            ("tool", "first | second", [], "t3-note", "episode_note"),
            ("assistant", None, [("t4-submit", "submit")], "", ""),
            ("tool", "answer submitted", [], "t4-submit", "submit"),
        ]
        actual = [
            (
                m.role,
                content(m),
                [(c.id, c.name) for c in m.tool_calls],
                m.tool_call_id,
                m.name,
            )
            for m in conversation(got)
        ]
        assert actual == expected
        # Assistant messages carry the arguments exactly as the model wrote them.
        assert conversation(got)[2].tool_calls[0] == a1.message.tool_calls[0]
        assert list(conversation(got)[4].tool_calls) == list(a2.message.tool_calls)
        # Every tool message answers a call of the assistant message before it.
        pending: set[str] = set()
        for message in conversation(got):
            if message.role == "assistant":
                assert not pending
                pending = {c.id for c in message.tool_calls}
            elif message.role == "tool":
                pending.remove(message.tool_call_id)
        assert not pending

        # Turn by turn: the action as sent (with the trainer's data), observations, calls.
        assert [t.number for t in got.turns] == [1, 2, 3, 4]
        responses = [r1, r2, r3, r4]
        actions = [a1, a2, a3, a4]
        for turn, response, action in zip(got.turns, responses, actions, strict=True):
            assert turn.action.WhichOneof("kind") == "message"
            assert turn.action.message == action.message
            assert list(turn.observations) == list(response.observations)
            assert list(turn.calls) == list(response.calls)
            assert (turn.done, turn.truncated) == (response.done, response.truncated)
            assert turn.duration_seconds >= 0
        assert list(got.turns[0].action.token_ids) == [11, 12, 13]
        assert list(got.turns[0].action.logprobs) == [-0.5, -0.25, -0.125]
        assert json.loads(got.turns[0].action.metadata_json) == {
            "sampler": "turn-1",
            "temperature": 0.7,
        }
        assert list(got.turns[1].action.token_ids) == [21]
        assert list(got.turns[1].action.logprobs) == [-1.0]
        assert got.turns[1].action.metadata_json == ""
        assert list(got.turns[2].action.token_ids) == []
        assert json.loads(got.turns[3].action.metadata_json) == {"last": True}
        assert [(t.done, t.truncated) for t in got.turns] == [
            (False, False),
            (False, False),
            (False, False),
            (True, False),
        ]

        closed = await stub.CloseEpisode(
            pb.CloseEpisodeRequest(episode_id=episode_id), timeout=RPC_TIMEOUT
        )
        assert closed.closed is True
        await expect_error(
            trajectory(stub, episode_id), grpc.StatusCode.FAILED_PRECONDITION, episode_id
        )


async def test_episode_note_scratch_is_per_episode(stub: Stub) -> None:
    """The custom stateful tool keeps its notes in each episode's own scratch dict."""
    async with (
        open_episode(stub, params={"max_turns": 5}) as one,
        open_episode(stub, params={"max_turns": 5}) as two,
    ):
        for text in ("a", "b"):
            await step(stub, one.episode_id, assistant(call("episode_note", {"text": text}, "n")))
        answer = await step(
            stub, two.episode_id, assistant(call("episode_note", {"text": "z"}, "n"))
        )
        assert content(answer.observations[0]) == "z"
        third = await step(
            stub, one.episode_id, assistant(call("episode_note", {"text": "c"}, "n"))
        )
        assert content(third.observations[0]) == "a | b | c"


async def test_inline_example_and_seeded_pick(stub: Stub) -> None:
    inline = pb.InlineExample(input_json='"What is 2 + 2?"', output_json='"4"')
    async with open_episode(stub, inline_example=inline) as started:
        assert not started.HasField("example_index")
        assert [(m.role, content(m)) for m in started.messages][1] == ("user", "What is 2 + 2?")
        done = await step(stub, started.episode_id, assistant(call("submit", {"answer": "4"}, "s")))
        assert done.done
        scored = await stub.ScoreEpisode(
            pb.ScoreEpisodeRequest(episode_id=started.episode_id, include_trajectory=True),
            timeout=RPC_TIMEOUT,
        )
        assert scored.reward.score == 1.0
        assert not scored.trajectory.HasField("example_index")

    # With a seed and no example, the seed picks the example, the same one every time.
    picked = []
    for _ in range(2):
        async with open_episode(stub, example_index=None, seed=-7) as started:
            assert started.HasField("example_index")
            assert 0 <= started.example_index < 3
            picked.append(started.example_index)
    assert picked[0] == picked[1]


# --- raw text and the action parser ------------------------------------------------------------


async def test_raw_text_actions_through_the_action_parser(stub: Stub) -> None:
    async with open_episode(stub, example_index=0) as started:
        episode_id = started.episode_id
        text = (
            "Let me compute.\n"
            '<tool_call>{"name": "python", "arguments": {"code": "print(6 * 7)"}}</tool_call>\n'
            "<tool_call>{this is not json}</tool_call>"
        )
        r1 = await step(
            stub, episode_id, raw(text, token_ids=[5, 6, 7], logprobs=[-0.1, -0.2, -0.3]), turn=1
        )
        assert (r1.turn, r1.done, r1.truncated) == (1, False, False)
        assert [m.tool_call_id for m in r1.observations] == ["call_0", "call_1"]
        assert_tool_message(r1.observations[0], "call_0", "python", "42")
        assert_call_ok(r1.calls[0], "call_0", "python", exit_code=0)
        # The malformed block is an observation the model can read, not an RPC error.
        broken = r1.observations[1]
        assert broken.role == "tool"
        assert "invalid tool call" in content(broken)
        assert "not valid JSON" in content(broken)
        assert "{this is not json}" in content(broken)
        assert r1.calls[1].error == "invalid_call"

        # A reply with no tool call ends the episode: done, not truncated; it is the answer.
        r2 = await step(stub, episode_id, raw("42"), turn=2)
        assert (r2.turn, r2.done, r2.truncated) == (2, True, False)
        assert list(r2.observations) == []
        assert list(r2.calls) == []

        got = await trajectory(stub, episode_id)
        assert (got.status, got.done, got.truncated) == ("done", True, False)
        assert got.final_response_text == "42"
        assert not got.HasField("submission_json")
        assert [m.role for m in conversation(got)] == [
            "system",
            "user",
            "assistant",
            "tool",
            "tool",
            "assistant",
        ]
        parsed = conversation(got)[2]
        assert content(parsed) == "Let me compute."
        assert [(c.id, c.name) for c in parsed.tool_calls] == [("call_0", "python"), ("call_1", "")]
        assert json.loads(parsed.tool_calls[0].arguments) == {"code": "print(6 * 7)"}
        assert content(conversation(got)[5]) == "42"
        assert not conversation(got)[5].tool_calls
        # The trainer's token data stays with the turn whatever the action's form.
        assert list(got.turns[0].action.token_ids) == [5, 6, 7]
        assert list(got.turns[0].action.logprobs) == [-0.1, -0.2, -0.3]

        scored = await stub.ScoreEpisode(
            pb.ScoreEpisodeRequest(episode_id=episode_id, include_trajectory=True),
            timeout=RPC_TIMEOUT,
        )
        assert scored.reward.score == 1.0, scored.reward.reason


async def test_structured_reply_without_tool_calls_ends_the_episode(stub: Stub) -> None:
    async with open_episode(stub, example_index=2) as started:
        r1 = await step(stub, started.episode_id, assistant(content="anything"))
        assert (r1.done, r1.truncated, r1.turn) == (True, False, 1)
        got = await trajectory(stub, started.episode_id)
        assert got.final_response_text == "anything"
        assert got.status == "done"


# --- turn limits -------------------------------------------------------------------------------


async def test_max_episode_turns_truncates(stub: Stub) -> None:
    async with open_episode(stub, params={"max_turns": 2}) as started:
        episode_id = started.episode_id
        assert started.max_episode_turns == 2
        r1 = await step(stub, episode_id, assistant(bash("echo one", "c1")), turn=1)
        assert (r1.done, r1.truncated) == (False, False)
        r2 = await step(stub, episode_id, assistant(bash("echo two", "c2")), turn=2)
        assert (r2.turn, r2.done, r2.truncated) == (2, True, True)
        assert content(r2.observations[0]) == "two"  # the last turn still runs its calls
        await expect_error(
            step(stub, episode_id, assistant(bash("echo three", "c3")), turn=3),
            grpc.StatusCode.FAILED_PRECONDITION,
            episode_id,
            "truncated",
        )
        await expect_error(
            step(stub, episode_id, assistant(bash("echo three", "c3"))),
            grpc.StatusCode.FAILED_PRECONDITION,
            "truncated",
        )
        got = await trajectory(stub, episode_id)
        assert (got.status, got.done, got.truncated) == ("truncated", True, True)
        assert len(got.turns) == 2
        assert got.turns[1].truncated


async def test_per_episode_max_turns_limit(stub: Stub) -> None:
    async with open_episode(stub, limits=pb.EpisodeLimits(max_turns=1)) as started:
        assert started.max_episode_turns == 1
        r1 = await step(stub, started.episode_id, assistant(bash("true", "c1")))
        assert (r1.turn, r1.done, r1.truncated) == (1, True, True)
        await expect_error(
            step(stub, started.episode_id, assistant(bash("true", "c2"))),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert (await trajectory(stub, started.episode_id)).max_episode_turns == 1
    # A per-episode limit only lowers the environment's turn limit (4 for the toy).
    async with open_episode(stub, limits=pb.EpisodeLimits(max_turns=50)) as started:
        assert started.max_episode_turns == 4


# --- retries -----------------------------------------------------------------------------------


async def test_retried_turn_is_replayed_not_rerun(stub: Stub) -> None:
    async with open_episode(stub, params={"max_turns": 10}) as started:
        episode_id = started.episode_id
        append = assistant(bash("echo line >> log.txt && wc -l < log.txt", "append"))
        first = await step(stub, episode_id, append, turn=1)
        assert (first.turn, first.replayed) == (1, False)
        assert content(first.observations[0]) == "1"

        again = await step(stub, episode_id, append, turn=1)
        assert again.replayed is True
        assert again.turn == 1
        assert list(again.observations) == list(first.observations)
        assert list(again.calls) == list(first.calls)

        check = await step(stub, episode_id, assistant(bash("wc -l < log.txt", "count")), turn=2)
        assert (check.turn, check.replayed) == (2, False)
        assert content(check.observations[0]) == "1"  # the retry ran nothing

        # Two copies of the same turn racing each other (a blip, then the retry).
        racing = await asyncio.gather(
            step(stub, episode_id, append, turn=3), step(stub, episode_id, append, turn=3)
        )
        assert sorted(r.replayed for r in racing) == [False, True]
        assert racing[0].observations == racing[1].observations
        count = await step(stub, episode_id, assistant(bash("wc -l < log.txt", "count")), turn=4)
        assert content(count.observations[0]) == "2"

        await expect_error(
            step(stub, episode_id, append, turn=9),
            grpc.StatusCode.FAILED_PRECONDITION,
            "turn 9",
            "is 5",
        )
        got = await trajectory(stub, episode_id)
        assert [t.number for t in got.turns] == [1, 2, 3, 4]
        assert len(conversation(got)) == 2 + 4 * 2


# --- model mistakes are observations -----------------------------------------------------------


async def test_model_mistakes_are_observations_and_count_as_turns(stub: Stub) -> None:
    limits = pb.EpisodeLimits(call_timeout_seconds=1, output_cap_bytes=1024)
    async with open_episode(stub, params={"max_turns": 10}, limits=limits) as started:
        episode_id = started.episode_id
        turn = 0

        async def play(tool_call: pb.ToolCall) -> tuple[str, pb.CallInfo]:
            nonlocal turn
            turn += 1
            response = await step(stub, episode_id, assistant(tool_call), turn=turn)
            assert (response.turn, response.done, response.truncated) == (turn, False, False)
            assert response.observations[0].role == "tool"
            assert response.observations[0].tool_call_id == tool_call.id
            return content(response.observations[0]) or "", response.calls[0]

        text, info = await play(call("no_such_tool", {}, "unknown"))
        assert "unknown tool 'no_such_tool'" in text
        assert "bash" in text  # the model learns what exists
        assert "submit" in text
        assert info.error == "unknown_tool"

        text, info = await play(call("add", "{a: 1, b: 2", "notjson"))
        assert "not valid JSON" in text
        assert info.error == "invalid_arguments"

        text, info = await play(call("add", {"a": "one"}, "schema"))
        assert "'b'" in text
        assert "'a'" in text
        assert "integer" in text
        assert info.error == "invalid_arguments"

        text, info = await play(bash("echo oops >&2; exit 3", "exit3"))
        assert "oops" in text
        assert "[exit code: 3]" in text
        assert (info.exit_code, info.error, info.timed_out) == (3, "nonzero_exit", False)

        # wait_for is a hang guard: the call must come back, killed, long before the sleeps end.
        text, info = await asyncio.wait_for(play(bash("sleep 100 & sleep 100", "sleepy")), 30)
        assert "timed out after 1 s" in text
        assert info.timed_out is True
        assert info.error == "timeout"
        assert info.duration_seconds > 0

        # The background sleep (a grandchild of the call) died with the call.
        text, info = await play(bash("ps -eo comm=", "ps"))
        assert info.error == ""
        assert "sleep" not in text.split()
        assert "ps" in text.split()

        text, info = await play(bash("head -c 5000 /dev/zero | tr '\\0' a", "flood"))
        assert "truncated" in text
        assert "5000" in text
        assert text.count("a") <= 1100
        assert info.output_truncated is True
        assert info.timed_out is False
        assert info.exit_code == 0
        assert info.error in ("", "output_truncated")

        got = await trajectory(stub, episode_id)
        assert len(got.turns) == turn == 7
        assert got.status == "running"
        assert [t.calls[0].error for t in got.turns] == [
            "unknown_tool",
            "invalid_arguments",
            "invalid_arguments",
            "nonzero_exit",
            "timeout",
            "",
            info.error,
        ]
        assert [t.calls[0].output_truncated for t in got.turns] == [False] * 6 + [True]


# --- scoring -----------------------------------------------------------------------------------


async def test_score_running_episode_keeps_trajectory(stub: Stub) -> None:
    async with open_episode(stub, params={"max_turns": 5}) as started:
        episode_id = started.episode_id
        await step(stub, episode_id, assistant(bash("echo working", "c1")))
        scored = await stub.ScoreEpisode(
            pb.ScoreEpisodeRequest(episode_id=episode_id, include_trajectory=True),
            timeout=RPC_TIMEOUT,
        )
        assert scored.reward.score == 0.0
        assert scored.reward.success is False
        assert "no answer" in scored.reward.reason
        assert scored.trajectory.status == "running"
        assert len(scored.trajectory.turns) == 1

        got = await trajectory(stub, episode_id)
        assert got.status == "running"
        assert len(conversation(got)) == 4
        assert got.reward == scored.reward

        # The episode plays on after being scored, and a new score sees the answer.
        more = await step(stub, episode_id, assistant(call("submit", {"answer": "42"}, "s")))
        assert more.turn == 2
        assert more.done
        rescored = await stub.ScoreEpisode(
            pb.ScoreEpisodeRequest(episode_id=episode_id, include_trajectory=True),
            timeout=RPC_TIMEOUT,
        )
        assert rescored.reward.score == 1.0
        assert rescored.trajectory.status == "done"


async def test_score_episodes_group(stub: Stub) -> None:
    starts = await asyncio.gather(
        *(stub.StartEpisode(start_request(example_index=0), timeout=RPC_TIMEOUT) for _ in range(3))
    )
    ids = [s.episode_id for s in starts]
    try:
        assert len(set(ids)) == 3
        await asyncio.gather(
            step(stub, ids[0], assistant(call("submit", {"answer": "42"}, "s"))),
            step(stub, ids[1], assistant(call("submit", {"answer": "41"}, "s"))),
            step(stub, ids[2], assistant(bash("echo thinking", "b"))),
        )
        response = await stub.ScoreEpisodes(
            pb.ScoreEpisodesRequest(episode_ids=ids), timeout=RPC_TIMEOUT
        )
        assert [r.score for r in response.rewards] == [1.0, 0.0, 0.0]
        assert [r.success for r in response.rewards] == [True, False, False]
        assert "41" in response.rewards[1].reason
        assert "no answer" in response.rewards[2].reason
        for episode_id, reward in zip(ids, response.rewards, strict=True):
            assert (await trajectory(stub, episode_id)).reward == reward
    finally:
        await asyncio.gather(*(close_quietly(stub, i) for i in ids))


async def test_score_episodes_mixed_group_is_invalid(stub: Stub) -> None:
    async with (
        open_episode(stub, example_index=0) as zero,
        open_episode(stub, example_index=1) as one,
    ):
        await expect_error(
            stub.ScoreEpisodes(
                pb.ScoreEpisodesRequest(episode_ids=[zero.episode_id, one.episode_id]),
                timeout=RPC_TIMEOUT,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "same example",
        )
        # Both episodes are intact afterwards.
        assert (await trajectory(stub, zero.episode_id)).status == "running"


# --- concurrency -------------------------------------------------------------------------------


async def test_concurrent_episodes_are_isolated(
    stub: Stub, owner: str, docker_client: docker.DockerClient
) -> None:
    count = 10
    secrets_by_episode: dict[str, str] = {}

    async def one_episode(index: int) -> tuple[str, str, str]:
        secret = f"secret-{index}-{secrets.token_hex(8)}"
        started = await stub.StartEpisode(
            start_request(params={"max_turns": 5}), timeout=RPC_TIMEOUT
        )
        secrets_by_episode[started.episode_id] = secret
        write = await step(
            stub, started.episode_id, assistant(bash(f"echo {secret} > secret.txt", "w"))
        )
        assert write.calls[0].exit_code == 0
        listing = await step(
            stub,
            started.episode_id,
            assistant(
                call("read_file", {"path": "secret.txt"}, "r"),
                bash("cat secret.txt; ls -a; ls /tmp", "ls"),
            ),
        )
        return (
            started.episode_id,
            content(listing.observations[0]) or "",
            content(listing.observations[1]) or "",
        )

    try:
        results = await asyncio.gather(*(one_episode(i) for i in range(count)))
        assert len({episode_id for episode_id, _, _ in results}) == count
        for episode_id, read_back, shell in results:
            secret = secrets_by_episode[episode_id]
            assert read_back.strip() == secret
            assert secret in shell
            others = [s for e, s in secrets_by_episode.items() if e != episode_id]
            assert not any(other in read_back or other in shell for other in others)
    finally:
        closed = await asyncio.gather(
            *(
                stub.CloseEpisode(pb.CloseEpisodeRequest(episode_id=i), timeout=RPC_TIMEOUT)
                for i in secrets_by_episode
            )
        )
    assert all(c.closed for c in closed)
    assert await wait_until_gone(docker_client, owner) == []
    for episode_id in secrets_by_episode:
        assert episode_containers(docker_client, episode_id) == []


# --- shutdown ----------------------------------------------------------------------------------


async def test_stop_removes_every_sandbox_of_live_episodes(
    owner: str, docker_client: docker.DockerClient
) -> None:
    name = f"{owner}-stop"
    server = RuntimeServer(server_settings(name, shutdown_grace_s=0.5, max_live_episodes=8))
    try:
        await server.start()
        async with connected(server) as stub:
            ids = [
                (await stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT)).episode_id
                for _ in range(3)
            ]
            await step(stub, ids[0], assistant(bash("echo busy > f.txt", "c")))
            assert len(leftover_containers(docker_client, name)) == 3
            # A step still running when the server stops is cut off, its sandbox removed too.
            running = asyncio.create_task(step(stub, ids[1], assistant(bash("sleep 30", "slow"))))
            await asyncio.sleep(0.5)
            stopped_at = time.monotonic()
            await server.stop(grace_s=0.5)
            assert time.monotonic() - stopped_at < 15
            assert leftover_containers(docker_client, name) == []
            outcome = await asyncio.gather(running, return_exceptions=True)
            assert isinstance(outcome[0], grpc.aio.AioRpcError)
            assert outcome[0].code() != grpc.StatusCode.UNKNOWN
            # Nothing answers any more.
            error = await rpc_error(stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=5))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop()
        for container in docker_client.containers.list(all=True, filters=labels.owner_filter(name)):
            container.remove(force=True)
    assert await wait_until_gone(docker_client, name, timeout_s=5) == []


async def test_running_server_context_manager_cleans_up(
    owner: str, docker_client: docker.DockerClient
) -> None:
    name = f"{owner}-ctx"
    async with running_server(name) as server, connected(server) as stub:
        await stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT)
        assert len(leftover_containers(docker_client, name)) == 1
    assert leftover_containers(docker_client, name) == []


# --- health and reflection ---------------------------------------------------------------------


async def test_health_and_reflection(server: RuntimeServer, channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "runtime.v1.EpisodeService"):
        answer = await health.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests():  # type: ignore[no-untyped-def]
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="runtime.v1.EpisodeService"
        )

    answers = [a async for a in reflection.ServerReflectionInfo(requests(), timeout=RPC_TIMEOUT)]
    services = {s.name for s in answers[0].list_services_response.service}
    assert "runtime.v1.EpisodeService" in services
    assert "grpc.health.v1.Health" in services
    assert answers[1].file_descriptor_response.file_descriptor_proto
    assert not answers[1].HasField("error_response")


# --- deadlines and cancellation ----------------------------------------------------------------


async def test_caller_deadline_and_cancellation_kill_the_call(stub: Stub) -> None:
    async with open_episode(stub, params={"max_turns": 10}) as started:
        episode_id = started.episode_id
        # The toy's call timeout is 10 s; the caller's 1.5 s deadline wins.
        began = time.monotonic()
        request = pb.StepEpisodeRequest(
            episode_id=episode_id, action=assistant(bash("sleep 30 & sleep 30", "slow"))
        )
        answer, error = await attempt(stub.StepEpisode(request, timeout=1.5))
        if error is not None:  # the reply may lose the race with the deadline
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        else:
            assert answer.calls[0].timed_out is True
            assert answer.calls[0].error == "timeout"
        assert time.monotonic() - began < 5

        # A cancelled RPC kills what its call started.
        pending = stub.StepEpisode(
            pb.StepEpisodeRequest(
                episode_id=episode_id, action=assistant(bash("sleep 30 & sleep 30", "cancelled"))
            ),
            timeout=RPC_TIMEOUT,
        )
        await asyncio.sleep(0.5)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await asyncio.sleep(0.2)

        check = await step(stub, episode_id, assistant(bash("ps -eo comm=", "ps")))
        assert "sleep" not in (content(check.observations[0]) or "").split()
        got = await trajectory(stub, episode_id)
        assert got.status == "running"
        assert got.turns[-1].number == check.turn
