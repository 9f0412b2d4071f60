"""The short soak: `benchmarks/soak.py` (the program behind `make soak`) run for 50 hostile
episodes, 8 at a time, under the isolation this run tests (RUNTIME_TEST_ISOLATION).

Every episode plays one hostile call (fork bomb, 2 GiB, 50 MB of output, a daemon, a full /tmp,
a sleep past the timeout, `kill -9 -1`, 100,000 files, a CPU burn, a reader of the agent's
stdin), then `echo canary`, ScoreEpisode and CloseEpisode, through a real server process. The
program exits non-zero on an unanswered canary, a lost sandbox, INTERNAL/UNKNOWN, or anything
left behind; the test also reads its JSON report for what the model was told.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ISOLATION

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "benchmarks" / "soak.py"
EPISODES = 50
CONCURRENCY = 8


@pytest.mark.soak
@pytest.mark.slow
def test_short_soak_answers_every_canary_and_leaves_nothing(owner: str, tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    # The instance name starts with the session's owner, so the session's own leftover
    # check (and `make test`'s clean-check) would also see a container the soak left.
    soak = subprocess.Popen(
        [
            sys.executable, str(SOAK),
            "--episodes", str(EPISODES), "--concurrency", str(CONCURRENCY),
            "--isolation", ISOLATION, "--instance-name", f"{owner}-soak",
            "--json", str(report_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        output, _ = soak.communicate(timeout=1200)
    except subprocess.TimeoutExpired:
        # SIGINT, not SIGKILL: the soak then stops its server and removes its containers.
        soak.send_signal(signal.SIGINT)
        output, _ = soak.communicate(timeout=180)
        pytest.fail(f"the soak did not finish within 20 minutes:\n{output}")
    assert soak.returncode == 0, output
    report = json.loads(report_path.read_text())
    assert report["isolation"] == ISOLATION
    actions = report["actions"]
    played = [entry["episodes"] for entry in actions.values()]  # the rotation, evenly
    assert sum(played) == EPISODES, output
    assert max(played) - min(played) <= 1, output
    assert sum(entry["canaries_answered"] for entry in actions.values()) == EPISODES, output
    # The leak search looked at every sandbox the server made, and found none left.
    assert report["containers_created"] == EPISODES, output
    assert report["containers_left"] == [], output
    assert report["processes_left"] == [], output
    # The model is told what happened: a timeout past the call timeout, and never "ok" for a
    # memory bomb or 50 MB of output (a timeout is a fair answer on a loaded machine).
    assert set(actions["sleep_past_timeout"]["hostile_kinds"]) == {"timeout"}, output
    assert set(actions["memory_2gib"]["hostile_kinds"]) <= {"out_of_memory", "timeout"}, output
    assert set(actions["output_50mb"]["hostile_kinds"]) <= {"output_truncated", "timeout"}, output
