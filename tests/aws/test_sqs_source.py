"""SQSSource against a real moto server: S3, SNS and EventBridge events arrive via SQS."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import eventflow
from aws_support import make_queue
from eventflow.aws import ResourceCheckFailed
from eventflow.aws._sqs_source import SQSSource
from eventflow.events import EventBridgeEvent, S3Event, SNSEvent
from eventflow.sinks import MemorySink
from eventflow.sources import Outcome

Seen = list[tuple[Any, eventflow.Context]]


async def queue_depth(aws: dict[str, Any], url: str) -> int:
    attrs = (
        await aws["sqs"].get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def recorder(count: int) -> tuple[Seen, anyio.Event, Callable[..., Awaitable[None]]]:
    seen: Seen = []
    done = anyio.Event()

    async def record(event: Any, context: eventflow.Context) -> None:
        seen.append((event, context))
        if len(seen) >= count:
            done.set()

    return seen, done, record


def source(url: str, handler: Any, endpoint: str, **kw: Any) -> SQSSource:
    kw.setdefault("wait_time_seconds", 1)
    # one poller: moto's receive is not atomic across its threads, so two concurrent
    # receives can both get one message (SQS is at-least-once; these tests count exactly)
    kw.setdefault("pollers", 1)
    return SQSSource(url, handler, endpoint_url=endpoint, **kw)


async def test_s3_notification_reaches_handler_with_decoded_key(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, arn = await make_queue(aws["sqs"], unique_name)
    await aws["s3"].create_bucket(Bucket=unique_name)
    await aws["s3"].put_bucket_notification_configuration(
        Bucket=unique_name,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    key = "uploads/red flower+1 (2).jpg"
    await aws["s3"].put_object(Bucket=unique_name, Key=key, Body=b"picture")
    seen, done, record = recorder(1)
    h = eventflow.handler(record, name="on_upload")
    src = source(url, h, aws["endpoint"])
    async with eventflow.App(sources=[src]) as app:
        with anyio.fail_after(15):
            await done.wait()
        await app.drain()
    event, _ = seen[0]
    view = S3Event.from_dict(event)
    assert view.records[0].bucket == unique_name
    assert view.records[0].key == key
    assert view.records[0].event_name.startswith("ObjectCreated:")
    stats = src.statistics()
    assert stats.submitted == 1 and stats.deleted == stats.received
    # the test event moto sends when the notification is configured is deleted, not run
    assert len(seen) == 1
    assert await queue_depth(aws, url) == 0


@pytest.mark.parametrize("raw", [False, True])
async def test_sns_subscription_delivers_lambda_sns_shape_or_raw_json(
    aws: dict[str, Any], unique_name: str, raw: bool
) -> None:
    url, arn = await make_queue(aws["sqs"], unique_name)
    topic = (await aws["sns"].create_topic(Name=unique_name))["TopicArn"]
    await aws["sns"].subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true" if raw else "false"},
    )
    await aws["sns"].publish(
        TopicArn=topic,
        Message=json.dumps({"orderId": 42}),
        Subject="order",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "created"}},
    )
    seen, done, record = recorder(1)
    h = eventflow.handler(record, name="on_order")
    async with eventflow.App(sources=[source(url, h, aws["endpoint"])]) as app:
        with anyio.fail_after(15):
            await done.wait()
        await app.drain()
    event, _ = seen[0]
    if raw:
        assert event == {"orderId": 42}
    else:
        record0 = event["Records"][0]
        assert record0["EventSource"] == "aws:sns"
        assert record0["EventSubscriptionArn"].startswith(topic + ":")
        sns = record0["Sns"]
        assert sns["TopicArn"] == topic and sns["Subject"] == "order"
        assert json.loads(sns["Message"]) == {"orderId": 42}
        assert "SigningCertUrl" in sns and "UnsubscribeUrl" in sns
        assert "SigningCertURL" not in sns
        assert sns["MessageAttributes"] == {"kind": {"Type": "String", "Value": "created"}}
        assert SNSEvent.from_dict(event).records[0].message_id
    assert await queue_depth(aws, url) == 0


async def test_eventbridge_rule_to_sqs_delivers_the_envelope(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, arn = await make_queue(aws["sqs"], unique_name)
    await aws["events"].put_rule(
        Name=unique_name, EventPattern=json.dumps({"source": ["com.example.orders"]})
    )
    await aws["events"].put_targets(Rule=unique_name, Targets=[{"Id": "q", "Arn": arn}])
    await aws["events"].put_events(
        Entries=[
            {
                "Source": "com.example.orders",
                "DetailType": "Order Placed",
                "Detail": json.dumps({"orderId": 7}),
            }
        ]
    )
    seen, done, record = recorder(1)
    h = eventflow.handler(record, name="on_event")
    async with eventflow.App(sources=[source(url, h, aws["endpoint"])]) as app:
        with anyio.fail_after(15):
            await done.wait()
        await app.drain()
    view = EventBridgeEvent.from_dict(seen[0][0])
    assert view.source == "com.example.orders"
    assert view.detail_type == "Order Placed"
    assert view.detail == {"orderId": 7}


async def test_body_that_is_not_json_goes_to_the_dead_letter_path_without_retries(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    await aws["sqs"].send_message(QueueUrl=url, MessageBody="this is { not json")
    arrived = anyio.Event()

    class SignalingSink(MemorySink):
        async def send(self, message: eventflow.Message) -> None:
            await super().send(message)
            arrived.set()

    dlq = SignalingSink()
    ran: list[Any] = []

    @eventflow.handler(dead_letter=dlq)
    async def strict(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    src = source(url, strict, aws["endpoint"])
    async with eventflow.App(sources=[src]) as app:
        with anyio.fail_after(15):
            await arrived.wait()
        await app.drain()
        stats = app.stats()
    assert ran == []
    assert "not valid JSON" in dlq.messages[0].attributes["ErrorMessage"]
    assert json.loads(dlq.messages[0].body) == "this is { not json"
    assert stats.failed == 1 and stats.retries == 0
    assert src.statistics().rejected == 1
    assert await queue_depth(aws, url) == 0


async def test_stop_with_retry_pending_leaves_message_and_next_app_finishes_it(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    await aws["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps({"job": 1}))
    attempts: list[int] = []
    first_failed = anyio.Event()
    succeeded = anyio.Event()

    @eventflow.handler(retry_delays=(600.0,))
    async def flaky(event: Any, context: eventflow.Context) -> str:
        attempts.append(context.attempt)
        if len(attempts) == 1:
            first_failed.set()
            raise RuntimeError("not yet")
        succeeded.set()
        return "done"

    first = source(url, flaky, aws["endpoint"])
    async with eventflow.App(sources=[first], shutdown_timeout=0.1) as app:
        with anyio.fail_after(15):
            await first_failed.wait()
    assert app.stats().undelivered == 1 and app.stats().scheduled == 0
    assert first.statistics().released == 1 and first.statistics().deleted == 0
    assert await queue_depth(aws, url) == 1  # still in SQS, visible again

    second = source(url, flaky, aws["endpoint"])
    async with eventflow.App(sources=[second]) as app:
        with anyio.fail_after(15):
            await succeeded.wait()
        await app.drain()
    assert attempts == [1, 1]  # a new app starts the event afresh
    assert second.statistics().deleted == 1
    assert await queue_depth(aws, url) == 0


async def test_pending_retry_keeps_message_invisible_with_heartbeats(
    aws: dict[str, Any], unique_name: str
) -> None:
    # a 2 s visibility timeout, and a retry 3 s later: without heartbeats SQS would
    # redeliver the message while its retry is pending
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="2")
    await aws["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps({"job": 2}))
    attempts: list[str] = []
    succeeded = anyio.Event()

    @eventflow.handler(retry_delays=(3.0,))
    async def flaky(event: Any, context: eventflow.Context) -> None:
        attempts.append(context.aws_request_id)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        succeeded.set()

    src = source(url, flaky, aws["endpoint"])
    async with eventflow.App(sources=[src]) as app:
        with anyio.fail_after(20):
            await succeeded.wait()
        await app.drain()
    assert len(attempts) == 2 and len(set(attempts)) == 1  # one event, not a redelivery
    assert src.statistics().received == 1
    assert await queue_depth(aws, url) == 0


async def test_lone_message_is_deleted_after_the_linger_while_the_app_runs(
    aws: dict[str, Any], unique_name: str
) -> None:
    # fewer than ten deletes must not wait for more messages: they would outlive their
    # visibility timeout (no heartbeat covers a message awaiting its delete) and come back
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="2")
    await aws["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps({"job": 3}))
    seen, done, record = recorder(1)
    src = source(url, eventflow.handler(record, name="lone"), aws["endpoint"])
    async with eventflow.App(sources=[src]):
        with anyio.fail_after(15):
            await done.wait()
            while src.statistics().deleted < 1:  # noqa: ASYNC110 - one condition, bounded
                await anyio.sleep(0.05)
        # deleted, so it cannot come back; had the delete waited out the visibility
        # timeout, the source would have received it a second time
        assert await queue_depth(aws, url) == 0
    assert len(seen) == 1
    assert src.statistics().received == 1


async def test_redelivery_of_a_held_message_runs_once_and_is_deleted(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    await aws["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps({"job": 4}))
    # an earlier receipt handle, to make the message visible again while the source holds it
    first = await aws["sqs"].receive_message(QueueUrl=url, VisibilityTimeout=0)
    earlier = first["Messages"][0]["ReceiptHandle"]
    runs: list[Any] = []
    started = anyio.Event()
    release = anyio.Event()

    @eventflow.handler
    async def slow(event: Any, context: eventflow.Context) -> None:
        runs.append(event)
        started.set()
        await release.wait()

    src = source(url, slow, aws["endpoint"])
    async with eventflow.App(sources=[src]) as app:
        with anyio.fail_after(15):
            await started.wait()
            await aws["sqs"].change_message_visibility(
                QueueUrl=url, ReceiptHandle=earlier, VisibilityTimeout=0
            )
            while src.statistics().duplicates < 1:  # noqa: ASYNC110 - one condition, bounded
                await anyio.sleep(0.05)
        release.set()
        await app.drain()
        with anyio.fail_after(15):
            while src.statistics().deleted < 1:  # noqa: ASYNC110 - one condition, bounded
                await anyio.sleep(0.05)
        stats = src.statistics()
    assert len(runs) == 1
    assert (stats.received, stats.duplicates, stats.deleted) == (2, 1, 1)
    assert await queue_depth(aws, url) == 0


async def test_extra_pollers_stay_off_while_the_queue_is_not_deep(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)

    @eventflow.handler
    async def idle(event: Any, context: eventflow.Context) -> None:
        return None

    src = source(url, idle, aws["endpoint"], pollers=3)
    async with eventflow.App(sources=[src]):
        start = anyio.current_time()
        with anyio.fail_after(15):
            # the queue check, then three 1 s long polls that come back empty
            while src.statistics().api_calls < 4:  # noqa: ASYNC110 - one condition, bounded
                await anyio.sleep(0.05)
        elapsed = anyio.current_time() - start
    # one poller makes them one after the other; three pollers would make them at once
    assert elapsed >= 1.8


async def test_deep_queue_is_drained_with_several_pollers(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    for start in range(0, 60, 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps({"n": start + i})} for i in range(10)]
        await aws["sqs"].send_message_batch(QueueUrl=url, Entries=entries)
    seen: set[int] = set()
    done = anyio.Event()

    @eventflow.handler
    async def record(event: Any, context: eventflow.Context) -> None:
        seen.add(event["n"])
        if len(seen) == 60:
            done.set()

    src = source(url, record, aws["endpoint"], pollers=3)
    async with eventflow.App(sources=[src]) as app:
        with anyio.fail_after(20):
            await done.wait()
        await app.drain()
    # moto's receive is not atomic across threads: a message may come twice, none is lost
    assert seen == set(range(60))
    assert await queue_depth(aws, url) == 0


async def test_missing_source_queue_fails_start_with_its_url(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = f"{aws['endpoint']}/123456789012/{unique_name}-missing"

    @eventflow.handler
    async def h(event: Any, context: eventflow.Context) -> None:
        return None

    with pytest.raises(ResourceCheckFailed, match=unique_name):
        async with eventflow.App(sources=[source(url, h, aws["endpoint"])]):
            pass


def test_settle_outcomes_are_the_public_enum() -> None:
    assert {o.value for o in Outcome} == {"succeeded", "failed", "released", "undelivered"}


# Bodies beyond a payload limit take their own failure path; the others run. Each body is
# JSON that Python's json.loads takes: NaN, nesting deeper than the bound, a lone surrogate.
# Such a message is rejected (dead-lettered, no attempt) with the limit it breaks, and the
# source and the app go on. (On SQSEventQueue such a body is malformed and left to the
# queue's redrive policy: tests/aws/test_poison_messages.py.)
LIMIT_BODIES = {
    "nan": ('{"price": NaN}', "NaN is not a JSON value"),
    "deep": ("[" * 600 + "]" * 600, "more than 500 levels deep"),
    "surrogate": ('{"name": "caf\\ud800"}', "lone surrogate"),
}


async def test_sqs_source_rejects_bodies_beyond_a_limit_and_goes_on(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    for body, _ in LIMIT_BODIES.values():
        await aws["sqs"].send_message(QueueUrl=url, MessageBody=body)
    await aws["sqs"].send_message(QueueUrl=url, MessageBody='{"ok": 1}')
    dlq = MemorySink()
    ran: list[Any] = []

    @eventflow.handler(dead_letter=dlq)
    async def strict(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    src = source(url, strict, aws["endpoint"])
    async with eventflow.App(sources=[src]) as app:
        with anyio.fail_after(20):
            while len(dlq.messages) < len(LIMIT_BODIES) or not ran:  # noqa: ASYNC110 - bounded
                await anyio.sleep(0.02)
        await app.drain()
        stats = app.stats()
    assert ran == [{"ok": 1}]
    errors = {json.loads(m.body): m.attributes["ErrorMessage"] for m in dlq.messages}
    for body, says in LIMIT_BODIES.values():
        assert says in errors[body]
    assert stats.failed == len(LIMIT_BODIES) and stats.attempts == 1 and stats.retries == 0
    assert src.statistics().rejected == len(LIMIT_BODIES)
    assert await queue_depth(aws, url) == 0
