"""A dead letter that cannot be sent does not delete its event (moto server).

The dead-letter target is an SQS queue URL that does not exist: every send is refused.
The source message must stay in its queue, be made visible again after the backoff, and
come back, so that the queue's own redrive policy can take it in the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio

import eventflow
from eventflow.aws import SQSEventQueue, SQSSink
from eventflow.aws._sqs_source import SQSSource

REGION = "us-east-1"


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for progress made by the app and the server (SQS runs on the wall clock)."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - progress made by other tasks and a server
            await anyio.sleep(0.02)


def missing_queue_sink(aws: dict[str, Any]) -> SQSSink:
    url = f"{aws['endpoint']}/000000000000/ef-no-such-queue-{time.time_ns()}"
    return SQSSink(url, endpoint_url=aws["endpoint"], region_name=REGION, check=False)


async def depth(aws: dict[str, Any], url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    got = await aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=names)
    return sum(int(got["Attributes"][n]) for n in names)


async def test_sqs_source_message_is_kept_and_comes_back_when_its_dead_letter_fails(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = (await aws["sqs"].create_queue(QueueName=unique_name))["QueueUrl"]
    await aws["sqs"].send_message(QueueUrl=url, MessageBody='{"order": 1}')
    runs: list[str] = []

    @eventflow.handler(dead_letter=missing_queue_sink(aws), max_retries=0)
    async def broken(event: Any, context: eventflow.Context) -> None:
        runs.append(context.aws_request_id)
        raise RuntimeError("always fails")

    src = SQSSource(
        url,
        broken,
        endpoint_url=aws["endpoint"],
        region_name=REGION,
        wait_time_seconds=1,
        pollers=1,
        undelivered_delay=1,
        delete_linger=0.01,
    )
    app = eventflow.App(sources=[src], sink_timeout=1.0)
    async with app:
        # given back, visible again a second later, received and given back again
        await until(lambda: src.statistics().returned >= 2)
        await app.drain()
        stats = app.stats()
    assert len(runs) >= 2  # it ran again: it was not deleted
    assert src.statistics().deleted == 0
    assert await depth(aws, url) == 1
    assert stats.failed == 0 and stats.returned >= 2 and stats.dead_letter_errors >= 2
    assert stats.received == stats.finished + stats.pending and stats.pending == 0


async def test_sqs_event_queue_message_is_kept_and_comes_back_when_its_dead_letter_fails(
    aws: dict[str, Any], unique_name: str
) -> None:
    created = await aws["sqs"].create_queue(
        QueueName=unique_name, Attributes={"VisibilityTimeout": "10"}
    )
    url = created["QueueUrl"]
    queue = SQSEventQueue(
        url,
        endpoint_url=aws["endpoint"],
        region_name=REGION,
        wait_time_seconds=1,
        delete_linger=0.01,
        undelivered_delay=1,
    )
    runs: list[int] = []
    app = eventflow.App(queue=queue, sink_timeout=1.0)

    @app.handler(dead_letter=missing_queue_sink(aws), max_retries=0)
    async def broken(event: Any, context: eventflow.Context) -> None:
        runs.append(context.attempt)
        raise RuntimeError("always fails")

    async with app:
        await app.invoke(broken, {"order": 1})
        await until(lambda: queue.statistics().returned >= 2)
        stats = app.stats()
    assert runs == [1]  # no retry left: the deliveries after the first only owe the letter
    assert queue.statistics().deleted == 0
    assert await depth(aws, url) == 1
    assert stats.failed == 0 and stats.returned >= 2
    assert stats.received == stats.finished + stats.pending
