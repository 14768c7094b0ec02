"""The seed's hands-on, end to end against a moto server, over real HTTP.

A function that always raises is invoked asynchronously through an SQS queue, with an SQS
dead-letter queue: three attempts under one request ID, then one dead letter carrying the
original event and Lambda's attributes, and the source message deleted.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

import eventflow
from eventflow.aws import ResourceCheckFailed, SQSSink, SQSSource


async def _queue(aws: dict[str, Any], name: str) -> str:
    url: str = (await aws["sqs"].create_queue(QueueName=name))["QueueUrl"]
    return url


async def test_three_attempts_one_request_id_then_one_dead_letter(
    aws: dict[str, Any], unique_name: str
) -> None:
    source_url = await _queue(aws, unique_name)
    dlq_url = await _queue(aws, unique_name + "-lambda-dlq")
    endpoint = aws["endpoint"]
    event = {"key1": "value1", "key2": "value2", "key3": "value3"}
    await aws["sqs"].send_message(QueueUrl=source_url, MessageBody=json.dumps(event))
    attempts: list[tuple[str, int]] = []

    @eventflow.handler(
        name="demo-lambda",
        retry_delays=(0.2, 0.4),  # Lambda's 60 s and 120 s, shortened
        dead_letter=SQSSink(dlq_url, endpoint_url=endpoint),
    )
    async def demo_lambda(event: dict[str, str], context: eventflow.Context) -> str:
        attempts.append((context.aws_request_id, context.attempt))
        raise Exception("Simulating error")

    # one poller: moto's receive is not atomic across threads (see test_sqs_source.py)
    src = SQSSource(source_url, demo_lambda, endpoint_url=endpoint, wait_time_seconds=1, pollers=1)
    with capture_logs() as logs:
        async with eventflow.App(sources=[src]) as app:
            with anyio.fail_after(20):
                while app.stats().failed < 1:  # noqa: ASYNC110 - one condition, bounded
                    await anyio.sleep(0.02)
            stats = app.stats()

    # three attempts, all under one request ID
    assert [a for _, a in attempts] == [1, 2, 3]
    request_ids = {rid for rid, _ in attempts}
    assert len(request_ids) == 1
    (request_id,) = request_ids
    failed = [e for e in logs if e["event"] == "attempt.failed"]
    assert [e["request_id"] for e in failed] == [request_id] * 3
    # one dead letter in the real queue, with Lambda's attributes
    received = await aws["sqs"].receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    messages = received.get("Messages", [])
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"]) == event
    attributes = messages[0]["MessageAttributes"]
    assert attributes["RequestID"] == {"StringValue": request_id, "DataType": "String"}
    assert attributes["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attributes["ErrorMessage"] == {
        "StringValue": "Simulating error",
        "DataType": "String",
    }
    # the source message was deleted
    assert src.statistics().deleted == 1
    left = await aws["sqs"].get_queue_attributes(
        QueueUrl=source_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    assert set(left["Attributes"].values()) == {"0"}
    assert stats.dead_lettered == 1 and stats.retries == 2


async def test_app_with_missing_dead_letter_queue_fails_to_start(
    aws: dict[str, Any], unique_name: str
) -> None:
    missing = f"{aws['endpoint']}/123456789012/{unique_name}-does-not-exist"

    @eventflow.handler(dead_letter=SQSSink(missing, endpoint_url=aws["endpoint"]))
    async def h(event: Any, context: eventflow.Context) -> None:
        return None

    app = eventflow.App()
    with pytest.raises(ResourceCheckFailed, match=f"{unique_name}-does-not-exist"):
        async with app:
            pass
    with pytest.raises(eventflow.AppClosed):
        app.invoke_nowait(h, {})
