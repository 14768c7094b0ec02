"""``eventflow test-event-pattern``: AWS's command, answered by eventflow.routing."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import Cli

PATTERN = {"source": ["aws.ec2"], "detail": {"state": [{"anything-but": "pending"}]}}
EVENT = {
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-abcd1111", "state": "running"},
}


def test_prints_the_result_as_aws_does(cli: Cli) -> None:
    hit = cli(
        "test-event-pattern", "--event-pattern", json.dumps(PATTERN), "--event", json.dumps(EVENT)
    )
    assert hit.returncode == 0, hit.stderr
    assert json.loads(hit.stdout) == {"Result": True}
    pending = {**EVENT, "detail": {"state": "pending"}}
    miss = cli(
        "test-event-pattern", "--event-pattern", json.dumps(PATTERN), "--event", json.dumps(pending)
    )
    assert miss.returncode == 0, miss.stderr
    assert miss.stdout.strip() == '{"Result": false}'


def test_reads_files(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps(PATTERN))
    (tmp_path / "e.json").write_text(json.dumps(EVENT))
    result = cli(
        "test-event-pattern",
        "--event-pattern",
        f"file://{tmp_path / 'p.json'}",
        "--event",
        f"@{tmp_path / 'e.json'}",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"Result": True}


def test_an_invalid_pattern_names_the_field_and_exits_2(cli: Cli) -> None:
    result = cli(
        "test-event-pattern",
        "--event-pattern",
        '{"detail": {"n": [{"numeric": [">", 5, "<", 1]}]}}',
        "--event",
        json.dumps(EVENT),
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Invalid event pattern at detail.n" in result.stderr
    assert "below the upper bound" in result.stderr


def test_bad_json_and_missing_options(cli: Cli) -> None:
    result = cli("test-event-pattern", "--event-pattern", "{", "--event", "{}")
    assert result.returncode == 2 and "--event-pattern is not valid JSON" in result.stderr
    result = cli("test-event-pattern", "--event-pattern", '{"a": ["b"]}', "--event", "[1]")
    assert result.returncode == 2 and "--event must be a JSON object" in result.stderr
    result = cli("test-event-pattern", "--event", "{}")
    assert result.returncode == 2 and "--event-pattern" in result.stderr
    helped = cli("test-event-pattern", "--help")
    assert (
        helped.returncode == 0 and "--event-pattern" in helped.stdout and "--event" in helped.stdout
    )
