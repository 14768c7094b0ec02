"""The app the ``eventflow redrive`` tests dead-letter with, then redrive once "the bug is fixed".

Written into the test's directory as ``redrive_app.py`` and configured by environment
variables, read when each event runs (so one process can flip them):

- ``EF_BUG``: ``1`` while the handler is broken (it raises), anything else once fixed;
- ``EF_EFFECTS``: a file the fixed handler appends ``<request ID> <n>`` to, per effect;
- ``EF_DLQ_FILE`` or ``EF_DLQ_URL``: the dead-letter file (JsonlSink) or SQS queue (SQSSink,
  on the endpoint in ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

APP = """
import os

import eventflow
from eventflow.sinks import JsonlSink

if os.environ.get("EF_DLQ_URL"):
    from eventflow.aws import SQSSink

    dead_letters = SQSSink(os.environ["EF_DLQ_URL"])
else:
    dead_letters = JsonlSink(os.environ["EF_DLQ_FILE"])

app = eventflow.App(name="orders")


@app.handler(max_retries=0, dead_letter=dead_letters)
async def process(event, context):
    if os.environ.get("EF_BUG") == "1":
        raise RuntimeError(f"bug on order {event['n']}")
    with open(os.environ["EF_EFFECTS"], "a") as f:
        f.write(f"{context.aws_request_id} {event['n']}\\n")
"""


def load_app(directory: Path) -> ModuleType:
    """Write the app into ``directory`` and import it in this process."""
    path = directory / "redrive_app.py"
    path.write_text(APP)
    spec = importlib.util.spec_from_file_location(f"redrive_app_{id(directory)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def dead_letter(module: ModuleType, count: int) -> list[str]:
    """Run ``count`` events through the broken handler; their request IDs, in order."""
    app = module.app
    async with app:
        ids = [(await app.invoke("process", {"n": n})).request_id for n in range(count)]
        await app.drain()
        assert app.stats().dead_lettered == count
    return ids


def redrive(directory: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``eventflow redrive redrive_app:app ARGS`` in ``directory``, JSON logs on stderr."""
    return subprocess.run(
        [sys.executable, "-m", "eventflow", "redrive", "redrive_app:app", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def invoked(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Original request ID -> new request ID, from the ``redrive.invoked`` log lines."""
    out: dict[str, str] = {}
    for line in result.stderr.splitlines():
        if line.startswith("{"):
            entry: dict[str, Any] = json.loads(line)
            if entry["event"] == "redrive.invoked":
                out[entry["original_request_id"]] = entry["request_id"]
    return out


def effects(path: Path) -> Counter[tuple[str, str]]:
    """(request ID, n) of every effect so far, counted."""
    if not path.exists():
        return Counter()
    pairs = (line.split() for line in path.read_text().splitlines())
    return Counter((request_id, n) for request_id, n in pairs)
