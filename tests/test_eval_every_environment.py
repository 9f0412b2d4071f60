"""`python -m runtime eval` runs on every shipped environment, in-process, against a scripted
OpenAI-compatible model on a loopback port; every rollout finishes and is written down."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import docker
import pytest
from conftest import wait_until_gone
from scripted_openai import Reply, Request, ScriptedOpenAI, call, completion

from runtime.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.name for p in (ROOT / "environments").iterdir() if (p / "__init__.py").exists())


def model(request: Request) -> Reply:
    """Calls `submit` when the environment offers it, else answers in text: every kind of
    environment gets an episode that ends and is scored."""
    offered = {tool["function"]["name"] for tool in request.body.get("tools") or []}
    if "submit" in offered:
        return completion(request, calls=[call("submit", {"answer": "42"})])
    return completion(request, content="<answer>42</answer> 42")


@pytest.mark.parametrize("environment", SHIPPED)
async def test_eval_runs_on_every_shipped_environment(
    environment: str,
    tmp_path: Path,
    owner: str,
    docker_client: docker.DockerClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    instance = f"{owner}-every-{environment}"
    with ScriptedOpenAI(model) as endpoint:
        code = await asyncio.to_thread(
            main,
            [
                "eval", environment, "--model", "scripted", "--base-url", endpoint.base_url,
                "-n", "2", "-r", "1", "--max-turns", "3", "--out", str(tmp_path / "run"),
                "--env-dirs", str(ROOT / "environments"), "--instance-name", instance,
            ],
        )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").open()]
    assert sorted(r["example_index"] for r in rows) == [0, 1]
    for row in rows:
        assert row["error"] is None
        assert row["environment"] == environment
        assert row["turns"] >= 1
        assert 0.0 <= row["reward"]["score"] <= 1.0
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["status"] == "finished"
    assert "mean reward" in out.out
    assert await wait_until_gone(docker_client, instance) == []
