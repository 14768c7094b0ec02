"""The README's first command: `eventflow demo` runs the seed's scenario end to end."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from eventflow import Stats
from eventflow._demo import DemoReport, all_accounted_for, format_report, run_demo


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


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventflow", "demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_failure_rates_over_one_are_a_usage_error() -> None:
    result = _demo("--transient-failures", "0.8", "--permanent-failures", "0.5")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "add up to 1.3; keep their sum at most 1" in result.stderr


def test_an_unwritable_dead_letter_path_is_refused_before_the_run(tmp_path: Path) -> None:
    result = _demo("--dead-letters", str(tmp_path / "missing-dir" / "dl.jsonl"))
    assert result.returncode == 2
    assert "cannot write dead letters to" in result.stderr
    assert "No such file or directory" in result.stderr


def test_summary_lines_add_up_and_lost_dead_letters_are_shown(tmp_path: Path) -> None:
    stats = Stats(received=100, succeeded=97, failed=3, attempts=109, errors=9, retries=6)
    lost = stats.__class__(**{**dataclasses.asdict(stats), "dead_letter_errors": 3})
    report = DemoReport(
        events=100,
        stats=lost,
        makespan=1.0,
        latencies=[0.1],
        dead_letter_path=tmp_path / "dl.jsonl",
        dead_letters=0,
    )
    text = format_report(report)
    assert not all_accounted_for(report)
    assert "100 of 100 = 97 succeeded + 3 failed + 0 undelivered (NOT ALL ACCOUNTED FOR)" in text
    assert "3 dead letters could not be written" in text
    assert "(9 failed attempts, 6 retries)" in text
    written = DemoReport(
        events=100,
        stats=dataclasses.replace(stats, dead_lettered=3),
        makespan=1.0,
        latencies=[0.1],
        dead_letter_path=tmp_path / "dl.jsonl",
        dead_letters=3,
    )
    assert all_accounted_for(written)
    assert "every event reached exactly one outcome" in format_report(written)
