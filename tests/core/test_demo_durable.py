"""``eventflow demo --durable``: a child process killed midway, its file drained by a restart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _number(summary: str, label: str) -> int:
    match = re.search(rf"^  {label}\s+(\d+)", summary, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{summary}"
    return int(match.group(1))


def test_the_durable_demo_kills_its_child_and_loses_no_accepted_event(tmp_path: Path) -> None:
    dead_letters = tmp_path / "dl.jsonl"
    events = 120
    result = subprocess.run(
        [
            sys.executable,
            *("-m", "eventflow", "demo", "--durable", "--events", str(events)),
            *("--retry-delays", "0.2,0.4", "--dead-letters", str(dead_letters)),
            *("--queue-file", str(tmp_path / "queue.db")),
        ],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout
    assert "killed with SIGKILL" in summary, summary
    accepted = _number(summary, "accepted")
    assert events // 2 <= accepted <= events, summary  # killed once half were accepted
    in_file = _number(summary, "in the file")
    assert _number(summary, "done before") + in_file >= accepted, summary
    match = re.search(
        r"(\d+)\s+of (\d+) accepted events: (\d+) succeeded, (\d+) dead-lettered", summary
    )
    assert match, summary
    reached, of, succeeded, dead = map(int, match.groups())
    assert reached == of == accepted == succeeded + dead, summary
    assert _number(summary, "lost") == 0 and "0 rows left in the file" in summary, summary
    # the dead letters are in the file under their request IDs; 3% of the uploads always fail
    letters = [json.loads(line) for line in dead_letters.read_text().splitlines()]
    assert len({m["attributes"]["RequestID"] for m in letters}) >= dead > 0, summary
    assert "phase 2" in result.stderr
