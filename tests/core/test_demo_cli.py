"""The README's first command: `eventflow demo` runs the seed's scenario end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from eventflow._demo import run_demo


async def test_demo_accounts_for_every_event(tmp_path: Path) -> None:
    out = tmp_path / "progress.txt"
    with out.open("w") as stream:
        report = await run_demo(
            events=200,
            concurrency=50,
            retry_delays=(0.01, 0.02),
            latency=(0.0, 0.001),
            dead_letters=tmp_path / "dl.jsonl",
            stream=stream,
        )
    s = report.stats
    assert s.received == 200 and s.finished == 200 and s.undelivered == 0
    assert s.failed == 6 == s.dead_lettered == report.dead_letters  # 3% always fail
    assert s.retries == 20 + 6 * 2  # 10% fail once, 3% fail three times
    lines = (tmp_path / "dl.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert json.loads(first["body"])["Records"][0]["eventSource"] == "aws:s3"
    assert set(first["attributes"]) == {"RequestID", "ErrorCode", "ErrorMessage"}
    assert len(report.story) == 3  # three attempts of one dead-lettered event
    assert "200/200" in out.read_text()


def test_cli_demo_runs_and_prints_summary(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "eventflow",
            "demo",
            "--events",
            "100",
            "--retry-delays",
            "0.01,0.02",
            "--dead-letters",
            str(tmp_path / "dl.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "every event reached exactly one outcome" in result.stdout
    assert "dead-lettered" in result.stdout


def test_cli_rejects_bad_options_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "eventflow", "demo", "--retry-delays", "soon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--retry-delays takes comma-separated seconds" in result.stderr
