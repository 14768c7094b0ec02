"""``eventflow worker`` stops on SIGTERM within its shutdown_timeout even while a plain
``def`` handler never returns: the attempt is abandoned, its message released, and the
handler's (daemon) thread does not hold the process's exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import boto3
import pytest
from cli_support import ROOT

from aws_support import isolate_aws_environment

REGION = "us-east-1"

APP_MODULE = """
import os
import threading

import eventflow
from eventflow.aws import SQSSource

never = threading.Event()  # nothing sets it: the handler never returns


@eventflow.handler(name="stuck")
def stuck(event, context):
    with open(os.environ["STUCK_TEST_STARTED"], "w") as out:
        out.write("started")
    never.wait()


app = eventflow.App(
    name="stuck-test",
    shutdown_timeout=1,
    sources=[
        SQSSource(
            os.environ["STUCK_TEST_QUEUE_URL"],
            stuck,
            endpoint_url=os.environ["STUCK_TEST_ENDPOINT"],
            wait_time_seconds=1,
            pollers=1,
        )
    ],
)
"""


def _until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # bounded polling of a condition


def test_sigterm_stops_a_worker_whose_sync_handler_never_returns(
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
    url = sqs.create_queue(QueueName=f"ef-stuck-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"n": 1}')
    (tmp_path / "stuckmod.py").write_text(textwrap.dedent(APP_MODULE))
    started = tmp_path / "started"
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "STUCK_TEST_STARTED": str(started),
        "STUCK_TEST_QUEUE_URL": url,
        "STUCK_TEST_ENDPOINT": moto_endpoint,
    }
    with subprocess.Popen(
        [sys.executable, "-m", "eventflow", "worker", "stuckmod:app", "--log-format", "json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            _until(started.exists, 60, "the handler to start")
            proc.send_signal(signal.SIGTERM)
            # shutdown_timeout is 1 s: the rest is interpreter and client teardown
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    # the message was released, not deleted: it runs again on the next start
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert sum(int(v) for v in attributes.values()) == 1
