"""``eventflow worker``: N child processes consume one SQS queue; SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

import boto3
import pytest

from aws_support import isolate_aws_environment
from cli_support import ROOT, Cli

REGION = "us-east-1"
MESSAGES = 60

APP_MODULE = """
import json
import os

import eventflow
from eventflow.aws import SQSSource


@eventflow.handler(name="record")
async def record(event, context):
    with open(os.environ["WORKER_TEST_OUT"], "a") as out:
        out.write(json.dumps({"pid": os.getpid(), "event": event}) + "\\n")


app = eventflow.App(
    name="worker-test",
    shutdown_timeout=5,
    sources=[
        SQSSource(
            os.environ["WORKER_TEST_QUEUE_URL"],
            record,
            endpoint_url=os.environ["WORKER_TEST_ENDPOINT"],
            wait_time_seconds=1,
        )
    ],
)
"""


def test_help_names_processes(cli: Cli) -> None:
    result = cli("worker", "--help")
    assert result.returncode == 0
    assert "--processes" in result.stdout
    assert "SIGTERM" in result.stdout


def test_bad_app_and_zero_processes_exit_2(cli: Cli) -> None:
    bad = cli("worker", "no_such_module_here:app")
    assert bad.returncode == 2
    assert "no_such_module_here" in bad.stderr
    zero = cli("worker", "examples.demo_lambda:app", "--processes", "0")
    assert zero.returncode == 2
    assert "--processes" in zero.stderr


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _entries(lines: queue.Queue[str | None], seen: list[dict[str, Any]]) -> None:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if line is None:
            return
        try:
            seen.append(json.loads(line))
        except json.JSONDecodeError:
            seen.append({"event": "<text>", "text": line})


def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # bounded polling of a condition


def _depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def test_two_children_drain_a_queue_then_sigterm_exits_0(
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    isolate_aws_environment(monkeypatch, tmp_path_factory)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
    url = sqs.create_queue(QueueName=f"ef-worker-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    for start in range(0, MESSAGES, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"n": i})}
                for i in range(start, start + 10)
            ],
        )
    (tmp_path / "tmpmod.py").write_text(textwrap.dedent(APP_MODULE))
    out = tmp_path / "events.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "WORKER_TEST_OUT": str(out),
        "WORKER_TEST_QUEUE_URL": url,
        "WORKER_TEST_ENDPOINT": moto_endpoint,
    }
    command = [sys.executable, "-m", "eventflow", "worker", "tmpmod:app"]
    options = ["--processes", "2", "--stats-interval", "1", "--log-format", "json"]
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[dict[str, Any]] = []
    with subprocess.Popen(
        [*command, *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            # When both children consume the queue
            def handled() -> int:
                assert proc.poll() is None, f"eventflow worker exited early: {log}"
                _entries(lines, log)
                return len(out.read_text().splitlines()) if out.exists() else 0

            _until(lambda: handled() >= MESSAGES, 90, f"{MESSAGES} events handled")
            _until(lambda: _depth(sqs, url) == 0, 30, "the queue to be empty")

            def stats_logged() -> bool:
                handled()  # reads the log so far
                return any(e["event"] == "worker.stats" for e in log)

            _until(stats_logged, 30, "a worker.stats line")
            # And the parent is told to stop
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(timeout=60)  # the pipe ends when every process writing it has
    _entries(lines, log)

    # Then every event was handled, by the parent's two direct children. SQS delivers at
    # least once (and moto's receive is not atomic across threads), so a message may be
    # handled twice by the two processes: never lost, rarely repeated.
    records = [json.loads(line) for line in out.read_text().splitlines()]
    handled_numbers = [r["event"]["n"] for r in records]
    assert set(handled_numbers) == set(range(MESSAGES))
    assert len(handled_numbers) <= MESSAGES + 3
    (started,) = [e for e in log if e["event"] == "worker.children"]
    children = set(started["children"])
    assert len(children) == 2
    assert proc.pid not in children
    assert {r["pid"] for r in records} <= children
    assert {e["pid"] for e in log if e["event"] == "worker.stats"} <= children
    stopped = [e for e in log if e["event"] == "worker.stopped"]
    assert {e["pid"] for e in stopped} == children
    assert sum(e["succeeded"] for e in stopped) == len(records)
    assert [e["children"] for e in log if e["event"] == "worker.exited"] == [
        {str(pid): 0 for pid in started["children"]}
    ]
