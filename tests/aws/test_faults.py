"""The AWS adapters against the faults AWS produces and moto does not.

The adapters talk HTTP to a :class:`FaultProxy` in front of the moto server: it throttles
whole calls, or fails single entries of a batch call, in AWS's own response formats.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

import eventflow
from aws_support import (
    bus_to_queue,
    dead_letter,
    fails_once,
    make_queue,
    receive,
    record,
    send_all,
    topic_to_queue,
    until,
)
from eventflow import Message
from eventflow.aws import AWSError, ResourceCheckFailed, SQSBatchSource, SQSEventQueue
from eventflow.aws._sinks import EventBridgeSink, SNSSink, SQSSink
from eventflow.aws._sqs_source import SQSSource
from eventflow.sinks import SinkRejected
from eventflow.testing import VirtualClock
from fault_proxy import FaultProxy


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_endpoint).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def three_dead_letters() -> list[Message]:
    return [dead_letter({"n": i, "tag": f"entry-{i}"}, request_id=f"req-{i}") for i in range(3)]


# -- one entry of a batch fails -----------------------------------------------------------


async def test_an_entry_failed_for_a_passing_reason_is_retried_alone_and_arrives_once(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    proxy.fail_entries("SendMessageBatch", "entry-1", code="InternalError", times=1)
    async with SQSSink(url, endpoint_url=proxy.endpoint, check=False, linger=0.05) as sink:
        outcomes = await send_all(sink, three_dead_letters())
        stats = sink.statistics()
    assert outcomes == [None, None, None]
    assert proxy.failed_entries == 1
    assert proxy.calls == ["SendMessageBatch", "SendMessageBatch"]
    bodies = sorted(json.loads(m["Body"])["n"] for m in await receive(aws["sqs"], url, 3))
    assert bodies == [0, 1, 2]  # the retried entry arrived once
    assert (stats.batches, stats.api_calls, stats.sent, stats.failed) == (1, 2, 3, 0)


async def test_an_entry_failed_as_the_senders_fault_is_rejected_without_a_retry(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    proxy.fail_entries(
        "SendMessageBatch", "entry-2", code="InvalidMessageContents", sender_fault=True, times=1
    )
    async with SQSSink(url, endpoint_url=proxy.endpoint, check=False, linger=0.05) as sink:
        outcomes = await send_all(sink, three_dead_letters())
        stats = sink.statistics()
    assert outcomes[:2] == [None, None]
    assert isinstance(outcomes[2], SinkRejected)
    assert "(InvalidMessageContents)" in str(outcomes[2])
    assert "Retrying cannot help." in str(outcomes[2])
    assert proxy.calls == ["SendMessageBatch"]
    assert len(await receive(aws["sqs"], url, 2)) == 2
    assert (stats.api_calls, stats.sent, stats.rejected, stats.failed) == (1, 2, 1, 0)


async def test_an_entry_that_keeps_failing_is_raised_as_retryable_after_its_retries(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    proxy.fail_entries("SendMessageBatch", "entry-0", code="ServiceUnavailable", times=100)
    async with SQSSink(url, endpoint_url=proxy.endpoint, check=False, linger=0.05) as sink:
        outcomes = await send_all(sink, three_dead_letters())
        stats = sink.statistics()
    # AWSError, not SinkRejected: the app retries the dead letter with its own backoff
    assert isinstance(outcomes[0], AWSError) and not isinstance(outcomes[0], SinkRejected)
    assert "refused the message (ServiceUnavailable)" in str(outcomes[0])
    assert outcomes[1:] == [None, None]
    assert proxy.failed_entries == 4  # the first call and three retries of the entry alone
    assert len(await receive(aws["sqs"], url, 2)) == 2
    assert (stats.api_calls, stats.sent, stats.failed, stats.rejected) == (4, 2, 1, 0)


async def test_eventbridge_retries_a_throttled_entry_and_rejects_a_malformed_one(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await bus_to_queue(aws, unique_name)
    proxy.fail_entries("PutEvents", '\\"req-0\\"', code="ThrottlingException", times=1)
    proxy.fail_entries("PutEvents", '\\"req-1\\"', code="MalformedDetail", times=1)
    messages = [record("Failure", request_id=f"req-{i}") for i in range(3)]
    async with EventBridgeSink(
        unique_name, endpoint_url=proxy.endpoint, region_name="us-east-1", linger=0.05
    ) as sink:
        outcomes = await send_all(sink, messages)
        stats = sink.statistics()
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], SinkRejected)
    assert "(MalformedDetail)" in str(outcomes[1])
    assert proxy.calls == ["DescribeEventBus", "PutEvents", "PutEvents"]
    arrived = await receive(aws["sqs"], url, 2)
    ids = sorted(json.loads(m["Body"])["detail"]["requestContext"]["requestId"] for m in arrived)
    assert ids == ["req-0", "req-2"]
    assert (stats.api_calls, stats.sent, stats.rejected) == (2, 2, 1)


# -- a whole call is throttled ------------------------------------------------------------


async def test_a_throttled_call_is_retried_whole_with_backoff_on_the_sinks_clock(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    # a sink's client makes one attempt per call; the sink's batcher retries the whole call
    proxy.throttle("SendMessageBatch", 4)
    clock = VirtualClock()
    async with SQSSink(
        url, endpoint_url=proxy.endpoint, check=False, linger=0.05, clock=clock
    ) as sink:
        async with clock.autojump():
            outcomes = await send_all(sink, three_dead_letters())
        stats = sink.statistics()
    assert outcomes == [None, None, None]
    assert proxy.throttled == 4
    assert proxy.calls == ["SendMessageBatch"] * 5
    assert clock.now() >= 0.05 + 0.1 + 0.2 + 0.4  # four backoffs (jittered >= half of each)
    assert len(await receive(aws["sqs"], url, 3)) == 3
    assert (stats.batches, stats.api_calls, stats.sent, stats.failed) == (1, 5, 3, 0)


async def test_a_throttled_sinks_backoff_waits_for_its_clock_not_for_wall_time(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    proxy.throttle("SendMessageBatch", 1)
    clock = VirtualClock()
    async with SQSSink(
        url, endpoint_url=proxy.endpoint, check=False, linger=0, clock=clock
    ) as sink:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sink.send, dead_letter({"n": 1}))
            with anyio.fail_after(10):
                while clock.pending == 0:  # noqa: ASYNC110 - one condition, bounded
                    await anyio.sleep(0.01)
            # throttled once: the retry waits on the sink's clock, which has not moved
            assert proxy.calls == ["SendMessageBatch"]
            assert sink.statistics().pending == 1
            deadline = clock.next_deadline()
            assert deadline is not None and 0.05 <= deadline <= 0.1
            await clock.advance(0.1)
        stats = sink.statistics()
    assert proxy.calls == ["SendMessageBatch"] * 2
    assert (stats.api_calls, stats.sent, stats.pending) == (2, 1, 0)


async def test_a_throttled_sns_publish_batch_is_retried_and_reaches_the_subscriber(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, topic = await topic_to_queue(aws, unique_name, raw=True)
    proxy.throttle("PublishBatch", 4)  # query protocol: an XML error response
    clock = VirtualClock()
    async with SNSSink(
        topic, endpoint_url=proxy.endpoint, check=False, linger=0.05, clock=clock
    ) as sink:
        async with clock.autojump():
            outcomes = await send_all(sink, three_dead_letters())
        stats = sink.statistics()
    assert outcomes == [None, None, None]
    assert proxy.throttled == 4
    assert proxy.calls == ["PublishBatch"] * 5
    bodies = sorted(json.loads(m["Body"])["n"] for m in await receive(aws["sqs"], url, 3))
    assert bodies == [0, 1, 2]
    assert (stats.api_calls, stats.sent) == (5, 3)


async def test_a_call_throttled_past_its_retries_fails_its_entries_as_retryable(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    proxy.throttle("SendMessageBatch", 6)
    clock = VirtualClock()
    async with SQSSink(
        url, endpoint_url=proxy.endpoint, check=False, linger=0.05, clock=clock
    ) as sink:
        async with clock.autojump():
            outcomes = await send_all(sink, three_dead_letters())
        stats = sink.statistics()
    assert all(isinstance(o, AWSError) and not isinstance(o, SinkRejected) for o in outcomes)
    assert "(Throttling" in str(outcomes[0])
    assert proxy.calls == ["SendMessageBatch"] * 6  # the first call and five retries
    assert (stats.api_calls, stats.sent, stats.failed) == (6, 0, 3)


# -- a source's delete fails ---------------------------------------------------------------


async def test_a_failed_delete_brings_the_message_back_and_idempotency_absorbs_it(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="1")
    await aws["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps({"job": 7}))
    proxy.fail_entries("DeleteMessageBatch", "ReceiptHandle", code="InternalError", times=1)
    runs: list[Any] = []

    @eventflow.handler(idempotency=eventflow.Idempotency())  # key: a hash of the payload
    async def job(event: Any, context: eventflow.Context) -> None:
        runs.append(event)

    src = SQSSource(url, job, endpoint_url=proxy.endpoint, wait_time_seconds=1, pollers=1)
    async with eventflow.App(sources=[src]) as app:
        with anyio.fail_after(20):
            # the failed delete leaves the message to reappear after its visibility timeout
            while src.statistics().deleted < 1:  # noqa: ASYNC110 - one condition, bounded
                await anyio.sleep(0.05)
        await app.drain()
        stats, source_stats = app.stats(), src.statistics()
    assert runs == [{"job": 7}]
    assert proxy.failed_entries == 1
    assert (source_stats.received, source_stats.deleted, source_stats.held) == (2, 1, 0)
    assert (stats.succeeded, stats.deduplicated) == (2, 1)
    got = await aws["sqs"].receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert not got.get("Messages")


# -- through the app: nothing lost ---------------------------------------------------------


async def test_dead_letters_whose_entries_keep_failing_for_a_while_all_arrive_once(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    dlq, _ = await make_queue(aws["sqs"], unique_name)
    # five calls in a row fail every dead letter in them: more than the sink's own three
    # retries, so the app's retries of the send (up to sink_timeout) have to finish the job
    proxy.fail_entries("SendMessageBatch", "RequestID", code="InternalError", times=5)
    sink = SQSSink(dlq, endpoint_url=proxy.endpoint, check=False)

    @eventflow.handler(max_retries=0, dead_letter=sink)
    async def resize(event: dict[str, int], context: eventflow.Context) -> None:
        raise ValueError("Simulating error")

    with anyio.fail_after(20):
        async with eventflow.App() as app:
            accepted = [await app.invoke(resize, {"n": i}) for i in range(5)]
            await app.drain()
            stats = app.stats()
    assert proxy.failed_entries >= 5
    assert sink.statistics().failed >= 1  # a send the sink gave up on, that the app retried
    assert (stats.received, stats.dead_lettered, stats.dead_letter_errors) == (5, 5, 0)
    letters = await receive(aws["sqs"], dlq, 5)
    assert sorted(m["MessageAttributes"]["RequestID"]["StringValue"] for m in letters) == sorted(
        a.request_id for a in accepted
    )


# -- the event queue's retry delay --------------------------------------------------------


async def test_a_retry_whose_visibility_change_fails_once_still_waits_its_delay(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url = (await aws["sqs"].create_queue(QueueName=unique_name))["QueueUrl"]
    queue = SQSEventQueue(
        url,
        endpoint_url=proxy.endpoint,
        region_name="us-east-1",
        visibility_timeout=2,
        wait_time_seconds=1,
        delete_linger=0.05,
    )
    # the retry's visibility change (5 s; heartbeats ask for 2 s) fails once: left like
    # that, the message would show again within 2 s and the retry would run early
    proxy.fail_entries(
        "ChangeMessageVisibilityBatch", '"VisibilityTimeout": 5', code="InternalError", times=1
    )
    app = eventflow.App(queue=queue)
    work, runs = fails_once(app, retry_delay=5.0)

    async with app:
        await app.invoke(work, {"k": 1})
        await until(lambda: len(runs) == 2 and queue.statistics().deleted >= 1, timeout=30)
    assert proxy.failed_entries == 1
    assert [attempt for attempt, _ in runs] == [1, 2]
    assert runs[1][1] - runs[0][1] >= 5.0 - 0.1
    assert queue.statistics().deferred == 1


# -- an endpoint that hangs: shutdown stays bounded -----------------------------------------

# what leaving the app may take beyond shutdown_timeout: the 2 s grace of the SQS calls,
# the last deletes and releases, and a loaded machine (before the fix: about 90 s,
# botocore's 30 s read timeout three times)
HANG_SLACK = 8.0


async def test_releases_at_shutdown_are_bounded_when_sqs_hangs(
    aws: dict[str, Any], unique_name: str, proxy: FaultProxy
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    for n in range(3):
        await aws["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    started: list[int] = []

    @eventflow.handler
    async def stuck(event: Any, context: eventflow.Context) -> None:
        started.append(event["n"])
        await anyio.sleep_forever()  # cancelled at shutdown: its message is released

    src = SQSSource(url, stuck, endpoint_url=proxy.endpoint, wait_time_seconds=1, pollers=1)
    app = eventflow.App(sources=[src], shutdown_timeout=1)
    with capture_logs() as logs:
        async with app:
            await until(lambda: len(started) == 3)
            proxy.hang()  # from now on SQS accepts every call and never answers
            begin = time.monotonic()
        elapsed = time.monotonic() - begin
    assert elapsed < app.shutdown_timeout + HANG_SLACK, f"leaving the app took {elapsed:.1f} s"
    assert proxy.hung >= 1  # the release was sent to the hanging endpoint
    assert app.stats().undelivered == 3 and src.statistics().released == 0
    [cut] = [e for e in logs if e["event"] == "sqs.close_cut_short"]
    assert cut["messages"] == 3 and "visibility timeout" in cut["reason"]


async def test_an_idle_event_queue_stops_in_time_when_its_receive_hangs(
    aws: dict[str, Any], unique_name: str, proxy: FaultProxy
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    queue = SQSEventQueue(url, endpoint_url=proxy.endpoint, wait_time_seconds=1)
    app = eventflow.App(queue=queue, shutdown_timeout=1)

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        raise AssertionError("the queue is empty")

    with capture_logs() as logs:
        async with app:
            proxy.hang()
            await until(lambda: proxy.hung >= 1)  # a long poll SQS will never answer
            begin = time.monotonic()
        elapsed = time.monotonic() - begin
    assert elapsed < app.shutdown_timeout + HANG_SLACK, f"leaving the app took {elapsed:.1f} s"
    assert any(e["event"] == "sqs_queue.receive_cut_short" for e in logs)


async def test_a_throttled_invoke_is_sent_after_a_backoff_on_the_apps_clock(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    proxy.throttle("SendMessageBatch", 2)
    clock = VirtualClock()
    queue = SQSEventQueue(url, endpoint_url=proxy.endpoint, consume=False)
    app = eventflow.App(queue=queue, clock=clock)

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        raise AssertionError("this app does not consume")

    async with app:
        async with clock.autojump():
            with anyio.fail_after(10):
                await app.invoke(work, {"n": 1})
        # two backoffs of the app's clock (jittered, at least half of 0.1 s and 0.2 s)
        assert clock.now() >= 0.15
        stats = queue.statistics()
    assert proxy.calls.count("SendMessageBatch") == 3
    assert (stats.sent, stats.send_failed) == (1, 0)
    got = await aws["sqs"].receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert [json.loads(m["Body"]) for m in got["Messages"]] == [{"n": 1}]


# -- a receive fails: the poller backs off on the app's clock ------------------------------


@pytest.mark.parametrize("kind", ["SQSSource", "SQSBatchSource", "SQSEventQueue"])
async def test_a_throttled_receive_backs_off_on_the_apps_clock_not_on_wall_time(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str, kind: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    proxy.throttle("ReceiveMessage", 2)
    clock = VirtualClock()
    ran: list[Any] = []

    async def work(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    kw: dict[str, Any] = {"endpoint_url": proxy.endpoint, "wait_time_seconds": 1, "pollers": 1}
    if kind == "SQSEventQueue":
        app = eventflow.App(queue=SQSEventQueue(url, **kw), clock=clock)
    else:
        await aws["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps({"n": 1}))
        source = SQSSource if kind == "SQSSource" else SQSBatchSource
        app = eventflow.App(sources=[source(url, "work", **kw)], clock=clock)
    app.handler(name="work")(work)
    async with app:
        if kind == "SQSEventQueue":
            await app.invoke("work", {"n": 1})
        for throttled, ceiling in ((1, 1.0), (2, 2.0)):
            with anyio.fail_after(10):
                while proxy.throttled < throttled or clock.next_deadline() is None:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            # the poller waits for the app's clock, which has not moved
            assert proxy.calls.count("ReceiveMessage") == throttled and not ran
            deadline = clock.next_deadline()
            assert deadline is not None and ceiling / 2 <= deadline - clock.now() <= ceiling
            await clock.advance_to(deadline)
        await until(lambda: bool(ran))
    assert proxy.throttled == 2 and clock.now() >= 0.5 + 1.0
    [event] = ran
    if kind == "SQSBatchSource":
        [record] = event["Records"]
        event = json.loads(record["body"])
    assert event == {"n": 1}


# -- one error map ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sink", "event queue"])
async def test_the_start_up_check_names_an_expired_token_as_such(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str, kind: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    proxy.fail("GetQueueAttributes", "ExpiredToken", status=403)
    target: Any = (
        SQSSink(url, endpoint_url=proxy.endpoint)
        if kind == "sink"
        else SQSEventQueue(url, endpoint_url=proxy.endpoint)
    )
    with pytest.raises(ResourceCheckFailed) as caught:
        async with target:
            pass
    message = str(caught.value)
    assert "AWS refused these credentials on GetQueueAttributes (ExpiredToken)" in message
    assert "an expired session token needs a new one" in message
    assert caught.value.operation == "GetQueueAttributes"


async def test_a_batch_call_with_an_expired_token_fails_its_entries_unsplit_and_retryable(
    aws: dict[str, Any], proxy: FaultProxy, unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    proxy.fail("SendMessageBatch", "ExpiredToken", status=403)
    async with SQSSink(url, endpoint_url=proxy.endpoint, check=False, linger=0.05) as sink:
        outcomes = await send_all(sink, three_dead_letters())
    assert all(isinstance(o, AWSError) and not isinstance(o, SinkRejected) for o in outcomes)
    assert "(ExpiredToken)" in str(outcomes[0])
    assert proxy.calls == ["SendMessageBatch"]  # not split into one call per entry
