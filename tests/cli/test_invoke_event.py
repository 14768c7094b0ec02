"""``eventflow invoke --invocation-type Event`` follows its own event, and only it: the app's
sources and shared queue do not run, and the outcome and attempts are that event's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BUSY_APP = """
import os

import eventflow
from eventflow.queues import MemoryQueue


class Busy:
    \"\"\"A source with other work waiting: a one-off invoke must not take it.\"\"\"

    async def run(self, app, *, task_status):
        task_status.started()
        for i in range(5):
            await app.submit("other", {"i": i})


@eventflow.handler(name="other")
async def other(event, context):
    with open(os.environ["INVOKE_TEST_OUT"], "a") as out:
        out.write("other ran\\n")


@eventflow.handler(name="broken", max_retries=2, retry_delays=(0.05, 0.05))
async def broken(event, context):
    raise RuntimeError("always fails")


@eventflow.handler(name="fine")
async def fine(event, context):
    return {"ok": True}


app = eventflow.App(name="busy", queue=MemoryQueue(), sources=[Busy()])
"""


def _invoke(tmp_path: Path, handler: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    (tmp_path / "busy_app.py").write_text(textwrap.dedent(BUSY_APP))
    out = tmp_path / "other.txt"
    env = dict(os.environ, INVOKE_TEST_OUT=str(out), PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "eventflow",
            "invoke",
            "busy_app:app",
            handler,
            "--invocation-type",
            "Event",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, out


@pytest.mark.parametrize(
    ("handler", "outcome", "attempts", "status"),
    [("broken", "failed", 3, 1), ("fine", "succeeded", 1, 0)],
)
def test_event_invoke_reports_its_own_outcome_and_runs_nothing_else(
    tmp_path: Path, handler: str, outcome: str, attempts: int, status: int
) -> None:
    result, other = _invoke(tmp_path, handler)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["StatusCode"] == 202
    own = {"RequestId": lines[0]["RequestId"], "Outcome": outcome, "Attempts": attempts}
    assert lines[-1] == own
    assert result.returncode == status, result.stderr
    assert not other.exists()  # the app's source did not run: no one else's event was taken
