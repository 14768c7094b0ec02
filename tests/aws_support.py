"""Helpers for the tests that talk to AWS (a plain module: 'conftest' is ambiguous to import)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import anyio
import pytest

import eventflow
from eventflow import Message

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:resize:$LATEST"


def isolate_aws_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No AWS_* variable and empty config files: nothing can reach a real account."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty: Path = tmp_path_factory.mktemp("aws-config") / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# -- shared by the sink, fault and event-queue tests


def dead_letter(body: Any = None, *, error: str = "boom", request_id: str = "req-1") -> Message:
    return Message(
        json.dumps({"orderId": 42} if body is None else body),
        MappingProxyType({"RequestID": request_id, "ErrorCode": "200", "ErrorMessage": error}),
    )


def record(condition: str, request_id: str = "req-1") -> Message:
    return Message(
        json.dumps(
            {
                "version": "1.0",
                "timestamp": "2026-01-02T03:04:05.678Z",
                "requestContext": {
                    "requestId": request_id,
                    "functionArn": FUNCTION_ARN,
                    "condition": condition,
                    "approximateInvokeCount": 1,
                },
                "requestPayload": {"orderId": 42},
            }
        )
    )


async def make_queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    url: str = (await sqs.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"]
    got = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, got["Attributes"]["QueueArn"]


async def receive(sqs: Any, url: str, count: int, *, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Exactly ``count`` messages from the queue: waits for them, then checks none is extra."""
    messages: list[dict[str, Any]] = []
    with anyio.fail_after(timeout):
        while len(messages) < count:
            # moto's long poll returns once it holds MaxNumberOfMessages, so ask for no more
            got = await sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, count - len(messages)),
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            )
            messages.extend(got.get("Messages", []))
    extra = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    assert len(messages) == count and not extra.get("Messages")
    return messages


async def topic_to_queue(aws: dict[str, Any], name: str, *, raw: bool) -> tuple[str, str]:
    """A new topic with a new queue subscribed to it: (queue URL, topic ARN)."""
    url, queue_arn = await make_queue(aws["sqs"], name)
    topic: str = (await aws["sns"].create_topic(Name=name))["TopicArn"]
    await aws["sns"].subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true" if raw else "false"},
    )
    return url, topic


async def bus_to_queue(aws: dict[str, Any], name: str) -> tuple[str, str]:
    """A new event bus with a rule sending source=lambda events to a new queue."""
    url, queue_arn = await make_queue(aws["sqs"], name)
    bus_arn: str = (await aws["events"].create_event_bus(Name=name))["EventBusArn"]
    await aws["events"].put_rule(
        Name=name, EventBusName=name, EventPattern=json.dumps({"source": ["lambda"]})
    )
    await aws["events"].put_targets(
        Rule=name, EventBusName=name, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    return url, bus_arn


def fails_once(
    app: eventflow.App, *, retry_delay: float
) -> tuple[eventflow.Handler, list[tuple[int, float]]]:
    """A handler of ``app`` whose first attempt fails, retried once after ``retry_delay``;
    and the (attempt, Unix time) of each run."""
    runs: list[tuple[int, float]] = []

    @app.handler(name="work", max_retries=1, retry_delays=(retry_delay,))
    async def work(event: Any, context: eventflow.Context) -> None:
        runs.append((context.attempt, time.time()))
        if context.attempt == 1:
            raise RuntimeError("first attempt fails")

    return work, runs


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for the app's own progress, polled (SQS runs on the wall clock)."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - progress made by other tasks and a server
            await anyio.sleep(0.02)


async def send_all(sink: Any, messages: list[Message]) -> list[BaseException | None]:
    """Send the messages concurrently (so they share a batch); each one's outcome, in order."""
    outcomes: list[BaseException | None] = [None] * len(messages)

    async def send(i: int) -> None:
        try:
            await sink.send(messages[i])
        except Exception as exc:
            outcomes[i] = exc

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for i in range(len(messages)):
                tg.start_soon(send, i)
    return outcomes
