"""SQSEventQueue's own contract, against the moto server: batching, bounds, bad messages,
attempt counting, age from the first enqueue, shutdown hand-back.

The semantics it shares with the in-memory queue are in tests/queues.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest

import eventflow
from aws_support import fails_once, until
from eventflow.aws import SQSEventQueue
from eventflow.sinks import MemorySink

REGION = "us-east-1"


async def new_queue(aws: dict[str, Any], name: str, **attributes: str) -> str:
    created = await aws["sqs"].create_queue(
        QueueName=name, Attributes={"VisibilityTimeout": "10", **attributes}
    )
    return str(created["QueueUrl"])


def event_queue(aws: dict[str, Any], url: str, **options: Any) -> SQSEventQueue:
    options.setdefault("wait_time_seconds", 1)
    options.setdefault("delete_linger", 0.05)
    return SQSEventQueue(url, endpoint_url=aws["endpoint"], region_name=REGION, **options)


def message(
    request_id: str,
    payload: Any,
    *,
    handler: str = "work",
    first: float | None = None,
    attempt: int = 0,
) -> dict[str, Any]:
    """A message in SQSEventQueue's format, sent by the test itself."""
    return {
        "MessageBody": json.dumps(payload),
        "MessageAttributes": {
            "RequestID": {"DataType": "String", "StringValue": request_id},
            "Handler": {"DataType": "String", "StringValue": handler},
            "FirstEnqueued": {
                "DataType": "Number",
                "StringValue": f"{time.time() if first is None else first:.3f}",
            },
            "Attempt": {"DataType": "Number", "StringValue": str(attempt)},
        },
    }


async def test_concurrent_invokes_share_send_batches_and_a_lone_one_goes_at_once(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = await new_queue(aws, unique_name)
    queue = event_queue(aws, url, consume=False, senders=1)
    app = eventflow.App(queue=queue)

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        return None

    async with app:
        before = queue.statistics().api_calls
        await app.invoke(work, {"n": -1})
        assert queue.statistics().api_calls == before + 1  # sent alone, not held back
        async with anyio.create_task_group() as tg:
            for i in range(95):
                tg.start_soon(app.invoke, work, {"n": i})
        stats = queue.statistics()
    assert stats.sent == 96
    # one sender in flight: the first of the burst goes alone, the rest ride in tens
    assert stats.api_calls - before - 1 <= 11, stats
    attributes = await aws["sqs"].get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "96"
    assert app.stats().enqueued == 96 and app.stats().received == 0


async def test_a_payload_larger_than_the_queue_takes_is_refused_at_invoke(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = await new_queue(aws, unique_name, MaximumMessageSize="1024")
    app = eventflow.App(queue=event_queue(aws, url))

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        return None

    async with app:
        with pytest.raises(eventflow.InvalidPayload, match="at most 1024 bytes"):
            await app.invoke(work, {"blob": "x" * 2000})
        with pytest.raises(eventflow.ConfigurationError, match="invoke_nowait"):
            app.invoke_nowait(work, {})
    assert app.stats().enqueued == 0


async def test_an_app_holds_at_most_its_concurrency_plus_one_batch(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = await new_queue(aws, unique_name)
    for start in range(0, 60, 10):
        await aws["sqs"].send_message_batch(
            QueueUrl=url,
            Entries=[
                dict(message(f"r-{i}", {"n": i}), Id=str(i - start))
                for i in range(start, start + 10)
            ],
        )
    queue = event_queue(aws, url)
    app = eventflow.App(queue=queue, concurrency=3)
    release = anyio.Event()
    high_water = 0

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        nonlocal high_water
        high_water = max(high_water, queue.statistics().held)
        await release.wait()

    async with app:
        await until(lambda: app.stats().in_flight == 3 and queue.statistics().received >= 10)
        # blocked workers: the poller must not take more than one batch beyond them
        held = queue.statistics().held
        assert held <= 3 + 10, held
        release.set()
        await app.drain()
        stats = app.stats()
    assert high_water <= 13
    assert stats.succeeded == 60 and queue.statistics().deleted == 60


async def test_malformed_messages_and_unknown_handlers_are_counted_not_run(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = await new_queue(aws, unique_name)
    sqs = aws["sqs"]
    await sqs.send_message(QueueUrl=url, MessageBody='{"not": "an eventflow message"}')
    await sqs.send_message(QueueUrl=url, **message("r-json", {}) | {"MessageBody": "{oops"})
    await sqs.send_message(QueueUrl=url, **message("r-other", {}, handler="someone_else"))
    await sqs.send_message(QueueUrl=url, **message("r-ok", {"fine": True}))
    queue = event_queue(aws, url)
    app = eventflow.App(queue=queue)
    ran: list[Any] = []

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    async with app:
        await until(lambda: queue.statistics().received >= 4 and app.stats().succeeded == 1)
        stats = queue.statistics()
    assert ran == [{"fine": True}]
    assert stats.malformed == 2 and stats.undeliverable == 1
    assert app.stats().received == 1  # only the event it could run became an event here


async def test_attempts_come_from_the_message_and_an_exhausted_one_is_dead_lettered(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = await new_queue(aws, unique_name)
    # as if a process died running attempt 3 (the last with 2 retries): no attempt is left
    await aws["sqs"].send_message(QueueUrl=url, **message("r-dead", {"k": 1}, attempt=3))
    # as if attempt 1 had failed elsewhere: this delivery is attempt 2
    await aws["sqs"].send_message(QueueUrl=url, **message("r-second", {"k": 2}, attempt=1))
    dlq = MemorySink()
    app = eventflow.App(queue=event_queue(aws, url))
    seen: list[tuple[str, int]] = []

    @app.handler(dead_letter=dlq)
    async def work(event: Any, context: eventflow.Context) -> None:
        seen.append((context.aws_request_id, context.attempt))

    async with app:
        await app.drain()
        stats = app.stats()
    assert seen == [("r-second", 2)]
    [letter] = dlq.messages
    assert letter.attributes["RequestID"] == "r-dead"
    assert "attempt 3" in letter.attributes["ErrorMessage"]
    assert stats.failed == 1 and stats.succeeded == 1 and stats.attempts == 1


async def test_event_age_counts_from_the_first_enqueue(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = await new_queue(aws, unique_name)
    old = time.time() - 3_600
    await aws["sqs"].send_message(QueueUrl=url, **message("r-old", {"k": 1}, first=old))
    on_failure = MemorySink()
    app = eventflow.App(queue=event_queue(aws, url))
    ran: list[Any] = []

    @app.handler(on_failure=on_failure, max_event_age=600)
    async def work(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    async with app:
        await app.drain()
        stats = app.stats()
    assert ran == []
    record = on_failure.messages[0].json()
    assert record["requestContext"]["requestId"] == "r-old"
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert stats.expired == 1


async def test_unstarted_messages_go_back_with_their_attempt_count_at_shutdown(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = await new_queue(aws, unique_name)
    await aws["sqs"].send_message_batch(
        QueueUrl=url,
        Entries=[dict(message(f"r-{i}", {"n": i}, attempt=1), Id=str(i)) for i in range(6)],
    )
    first_queue = event_queue(aws, url)
    first = eventflow.App(queue=first_queue, concurrency=1, shutdown_timeout=0.5)

    @first.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        await anyio.sleep_forever()  # cut short by the shutdown: an attempt taken back

    async with first:
        await until(lambda: first_queue.statistics().received == 6)
    # one attempt cut short, five never started: all six go back
    assert first.stats().undelivered == 6
    assert first_queue.statistics().released == 6

    attempts: list[int] = []
    second = eventflow.App(queue=event_queue(aws, url))

    @second.handler(name="work")
    async def again(event: Any, context: eventflow.Context) -> None:
        attempts.append(context.attempt)

    async with second:
        await second.drain()
    # each was received once before without a completed attempt: this is still attempt 2
    assert attempts == [2] * 6


async def test_lambda_api_answers_202_once_sqs_stored_the_event(
    aws: dict[str, Any], unique_name: str
) -> None:
    from eventflow.http import LambdaAPI
    from http_support import serve_asgi

    url = await new_queue(aws, unique_name)
    app = eventflow.App(queue=event_queue(aws, url, consume=False))

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        return None

    import httpx

    async with app, serve_asgi(LambdaAPI(app)) as base:
        async with httpx.AsyncClient(base_url=base) as client:
            reply = await client.post(
                "/2015-03-31/functions/work/invocations",
                headers={"X-Amz-Invocation-Type": "Event"},
                json={"k": "v"},
            )
    assert reply.status_code == 202
    got = await aws["sqs"].receive_message(QueueUrl=url, MessageAttributeNames=["All"])
    [sent] = got["Messages"]
    assert (
        sent["MessageAttributes"]["RequestID"]["StringValue"] == reply.headers["x-amzn-requestid"]
    )
    assert json.loads(sent["Body"]) == {"k": "v"}


async def test_a_long_attempt_keeps_its_message_invisible_with_heartbeats(
    aws: dict[str, Any], unique_name: str
) -> None:
    # SQS's visibility timer runs on the wall clock: an attempt twice as long as it
    url = await new_queue(aws, unique_name)
    queue = event_queue(aws, url, visibility_timeout=2)
    app = eventflow.App(queue=queue)
    attempts: list[int] = []

    @app.handler(timeout=30)
    async def slow(event: Any, context: eventflow.Context) -> None:
        attempts.append(context.attempt)
        await anyio.sleep(4.5)

    async with app:
        await app.invoke(slow, {"k": 1})
        await app.drain()
    stats = queue.statistics()
    assert attempts == [1]
    assert stats.received == 1 and stats.duplicates == 0 and stats.deleted == 1


async def test_a_retry_longer_than_sqs_can_hold_is_sent_again_and_runs_when_due(
    aws: dict[str, Any], unique_name: str
) -> None:
    # SQS keeps a received message invisible at most 12 h and delays a sent one at most
    # 15 min; shrunk here to 2 s and 1 s, a 4 s retry delay needs both ways of putting it
    # back: a send with a NotBefore (the delay is past what visibility can hold), early
    # receives that are sent again or, once the rest fits, put back by visibility
    url = await new_queue(aws, unique_name)
    queue = event_queue(aws, url)
    queue._max_visibility, queue._max_delay_seconds, queue._visibility_margin = 2, 1, 0.0
    app = eventflow.App(queue=queue)
    work, runs = fails_once(app, retry_delay=4.0)

    async with app:
        await app.invoke(work, {"k": 1})
        await until(lambda: len(runs) == 2 and queue.statistics().deleted == 1)
        stats, queue_stats = app.stats(), queue.statistics()
    assert [attempt for attempt, _ in runs] == [1, 2]  # the early receives were no attempt
    assert runs[1][1] - runs[0][1] >= 4.0 - 0.1  # not before its delay
    assert queue_stats.postponed >= 1
    assert queue_stats.deferred >= 1 and queue_stats.received >= 3
    assert (stats.succeeded, stats.retries) == (1, 1)
    got = await aws["sqs"].receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert not got.get("Messages")
