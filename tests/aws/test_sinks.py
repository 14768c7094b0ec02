"""SQSSink, SNSSink and EventBridgeSink against the moto server, over HTTP."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import anyio
import pytest

import eventflow
from aws_support import (
    FUNCTION_ARN,
    bus_to_queue,
    dead_letter,
    make_queue,
    receive,
    record,
    topic_to_queue,
)
from eventflow import Message
from eventflow.aws import AWSError, ResourceCheckFailed
from eventflow.aws._sinks import FAILURE_DETAIL_TYPE, EventBridgeSink, SNSSink, SQSSink
from eventflow.sinks import Sink, SinkRejected
from eventflow.testing import check_sink

# -- the kit ------------------------------------------------------------------------------


async def test_the_sqs_sink_passes_the_sink_kit(aws: dict[str, Any], unique_name: str) -> None:
    made = itertools.count()

    async def fresh() -> SQSSink:
        url, _ = await make_queue(aws["sqs"], f"{unique_name}-{next(made)}")
        return SQSSink(url, endpoint_url=aws["endpoint"])

    async def received(sink: Sink, count: int) -> Sequence[Message]:
        assert isinstance(sink, SQSSink)
        got = await receive(aws["sqs"], sink.queue_url, count)
        return [
            Message(
                m["Body"],
                {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()},
            )
            for m in got
        ]

    await check_sink(fresh, received=received)


async def test_the_sns_sink_passes_the_sink_kit(aws: dict[str, Any], unique_name: str) -> None:
    # EventBridgeSink takes invocation records only (it refuses other bodies), so it is a
    # destination, not a general sink: tested below on its own terms
    topic: str = (await aws["sns"].create_topic(Name=unique_name))["TopicArn"]
    await check_sink(lambda: SNSSink(topic, endpoint_url=aws["endpoint"]))


# -- formats ------------------------------------------------------------------------------


async def test_sqs_dead_letter_has_body_and_typed_attributes(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    spill = Message("[1,2]", MappingProxyType({"RequestID": "r", "Handler": "h", "Attempt": "2"}))
    async with SQSSink(url, endpoint_url=aws["endpoint"]) as sink:
        await sink.send(dead_letter(error="Simulating error"))
        await sink.send(dead_letter({"empty": True}, error=""))  # raise ValueError()
        await sink.send(spill)
    by_body = {m["Body"]: m["MessageAttributes"] for m in await receive(aws["sqs"], url, 3)}
    assert by_body[json.dumps({"orderId": 42})] == {
        "RequestID": {"DataType": "String", "StringValue": "req-1"},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "Simulating error"},
    }
    # SQS refuses empty values: the attribute is left out
    assert set(by_body[json.dumps({"empty": True})]) == {"RequestID", "ErrorCode"}
    assert by_body["[1,2]"]["Attempt"] == {"DataType": "String", "StringValue": "2"}
    stats = sink.statistics()
    assert (stats.sent, stats.failed, stats.rejected, stats.pending) == (3, 0, 0, 0)


@pytest.mark.parametrize("raw", [False, True])
async def test_sns_dead_letter_reaches_a_subscribed_queue(
    aws: dict[str, Any], unique_name: str, raw: bool
) -> None:
    url, topic = await topic_to_queue(aws, unique_name, raw=raw)
    async with SNSSink(topic, endpoint_url=aws["endpoint"]) as sink:
        await sink.send(dead_letter())
    [msg] = await receive(aws["sqs"], url, 1)
    if raw:
        assert json.loads(msg["Body"]) == {"orderId": 42}
        assert msg["MessageAttributes"]["ErrorCode"] == {"DataType": "Number", "StringValue": "200"}
        assert msg["MessageAttributes"]["RequestID"] == {
            "DataType": "String",
            "StringValue": "req-1",
        }
    else:
        envelope = json.loads(msg["Body"])
        assert envelope["Type"] == "Notification" and envelope["TopicArn"] == topic
        assert json.loads(envelope["Message"]) == {"orderId": 42}
        assert envelope["MessageAttributes"]["ErrorCode"] == {"Type": "Number", "Value": "200"}
        assert envelope["MessageAttributes"]["RequestID"] == {"Type": "String", "Value": "req-1"}
        assert envelope["MessageAttributes"]["ErrorMessage"] == {"Type": "String", "Value": "boom"}


async def test_eventbridge_records_arrive_in_lambdas_envelope(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, bus_arn = await bus_to_queue(aws, unique_name)
    sent = {"Success": record("Success", "ok"), "RetriesExhausted": record("RetriesExhausted")}
    async with EventBridgeSink(unique_name, endpoint_url=aws["endpoint"]) as sink:
        assert sink.bus_arn == bus_arn
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for message in sent.values():
                    tg.start_soon(sink.send, message)
    events = [json.loads(m["Body"]) for m in await receive(aws["sqs"], url, 2)]
    by_condition = {e["detail"]["requestContext"]["condition"]: e for e in events}
    success, failure = by_condition["Success"], by_condition["RetriesExhausted"]
    assert success["detail-type"] == "Lambda Function Invocation Result - Success"
    assert failure["detail-type"] == "Lambda Function Invocation Result - Failure"
    for condition, event in by_condition.items():
        assert event["source"] == "lambda"
        assert event["resources"] == [FUNCTION_ARN, bus_arn]
        assert event["detail"] == json.loads(sent[condition].body)


async def test_eventbridge_without_check_builds_the_bus_arn_from_the_callers_account(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, bus_arn = await bus_to_queue(aws, unique_name)
    async with EventBridgeSink(unique_name, endpoint_url=aws["endpoint"], check=False) as sink:
        await sink.send(record("EventAgeExceeded"))
    assert sink.bus_arn == bus_arn  # moto's account, learnt from STS GetCallerIdentity
    [msg] = await receive(aws["sqs"], url, 1)
    event = json.loads(msg["Body"])
    assert event["resources"] == [FUNCTION_ARN, bus_arn]
    assert event["detail-type"] == FAILURE_DETAIL_TYPE


async def test_eventbridge_rejects_what_is_not_an_invocation_record(
    aws: dict[str, Any], unique_name: str
) -> None:
    await aws["events"].create_event_bus(Name=unique_name)
    async with EventBridgeSink(unique_name, endpoint_url=aws["endpoint"]) as sink:
        for body in ('{"orderId": 42}', "not json", '{"requestContext": 1}'):
            with pytest.raises(SinkRejected, match="destination records"):
                await sink.send(Message(body))
    stats = sink.statistics()
    assert (stats.rejected, stats.api_calls) == (3, 0)


# -- batching -----------------------------------------------------------------------------


async def test_concurrent_sends_share_batches_of_at_most_ten(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    async with SQSSink(url, endpoint_url=aws["endpoint"]) as sink:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for i in range(25):
                    tg.start_soon(sink.send, dead_letter({"i": i}, request_id=f"r{i}"))
        stats = sink.statistics()
    messages = await receive(aws["sqs"], url, 25)
    assert sorted(json.loads(m["Body"])["i"] for m in messages) == list(range(25))
    assert stats.sent == 25 and stats.pending == 0
    assert 3 <= stats.batches <= 4 and stats.api_calls == stats.batches
    assert stats.largest_batch == 10


async def test_batches_stay_under_the_per_call_payload_limit(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, queue_arn = await make_queue(aws["sqs"], unique_name)
    topic = (await aws["sns"].create_topic(Name=unique_name))["TopicArn"]
    await aws["sns"].subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    big = "x" * 100_000  # two fit in SNS's 256 KiB per PublishBatch, three do not
    async with SNSSink(topic, endpoint_url=aws["endpoint"]) as sink:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for i in range(5):
                    tg.start_soon(sink.send, Message(f'"{i}{big}"'))
        stats = sink.statistics()
    assert len(await receive(aws["sqs"], url, 5)) == 5
    assert stats.largest_batch == 2 and stats.api_calls == 3 and stats.sent == 5


async def test_closing_sends_what_is_buffered_without_waiting_for_the_linger(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    sink = SQSSink(url, endpoint_url=aws["endpoint"], linger=30.0)
    started = time.monotonic()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, sink:
            for i in range(3):
                tg.start_soon(sink.send, dead_letter({"i": i}))
            await anyio.wait_all_tasks_blocked()
            assert sink.statistics().pending == 3
    assert time.monotonic() - started < 5
    assert len(await receive(aws["sqs"], url, 3)) == 3
    assert sink.statistics().batches == 1


async def test_a_cancelled_sink_tells_its_waiting_callers(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = f"{aws['endpoint']}/123456789012/{unique_name}"
    sink = SQSSink(url, endpoint_url=aws["endpoint"], check=False, linger=30.0)
    errors: list[BaseException] = []

    async def sender() -> None:
        try:
            await sink.send(dead_letter())
        except AWSError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:
                async with sink:
                    tg.start_soon(sender)  # outside the cancelled scope
                    await anyio.wait_all_tasks_blocked()
                    scope.cancel()
                    await anyio.sleep(1)
    assert [str(e) for e in errors] == [f"{sink!r} was stopped before this message was sent."]
    assert sink.statistics().failed == 1 and sink.statistics().api_calls == 0


async def test_a_sink_opens_again_after_it_closed(aws: dict[str, Any], unique_name: str) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    sink = SQSSink(url, endpoint_url=aws["endpoint"])
    for i in range(2):
        async with sink:
            await sink.send(dead_letter({"i": i}))
            with pytest.raises(RuntimeError, match="already open"):
                async with sink:
                    pass
    assert len(await receive(aws["sqs"], url, 2)) == 2
    with pytest.raises(RuntimeError, match="is not open"):
        await sink.send(dead_letter())


# -- messages that can never be sent ------------------------------------------------------


async def test_too_large_message_is_rejected_alone(aws: dict[str, Any], unique_name: str) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    results: dict[str, BaseException | None] = {}

    async def send(key: str, message: Message) -> None:
        try:
            await sink.send(message)
        except Exception as exc:
            results[key] = exc
        else:
            results[key] = None

    async with SQSSink(url, endpoint_url=aws["endpoint"]) as sink:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send, "big", dead_letter("x" * 2_000_000))
                tg.start_soon(send, "normal", dead_letter())
    assert results["normal"] is None
    assert isinstance(results["big"], SinkRejected)
    assert "1,048,576 bytes" in str(results["big"]) and url in str(results["big"])
    assert "2,000,0" in str(results["big"])
    [msg] = await receive(aws["sqs"], url, 1)
    assert json.loads(msg["Body"]) == {"orderId": 42}
    assert sink.statistics().rejected == 1


async def test_body_with_a_character_sqs_refuses_is_rejected_and_attributes_are_cleaned(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    async with SQSSink(url, endpoint_url=aws["endpoint"]) as sink:
        with pytest.raises(SinkRejected, match=r"'\\x00' at index 1"):
            await sink.send(Message('"\x00"'))
        await sink.send(dead_letter(error="bad\x00byte"))
    [msg] = await receive(aws["sqs"], url, 1)
    assert msg["MessageAttributes"]["ErrorMessage"]["StringValue"] == "bad\ufffdbyte"


async def test_an_entry_the_queue_refuses_fails_alone_and_the_batch_goes_through(
    aws: dict[str, Any], unique_name: str
) -> None:
    # moto refuses the whole SendMessageBatch when one body is over the queue's
    # MaximumMessageSize; without the check the sink does not know that size, so it
    # splits the refused call into one call per entry
    url, _ = await make_queue(aws["sqs"], unique_name, MaximumMessageSize="1024")
    outcomes: dict[int, BaseException | None] = {}

    async def send(i: int, message: Message) -> None:
        try:
            await sink.send(message)
        except Exception as exc:
            outcomes[i] = exc
        else:
            outcomes[i] = None

    async with SQSSink(url, endpoint_url=aws["endpoint"], check=False) as sink:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for i in range(4):
                    body = "y" * 2000 if i == 2 else {"i": i}
                    tg.start_soon(send, i, dead_letter(body))
        stats = sink.statistics()
    assert isinstance(outcomes.pop(2), SinkRejected)
    assert outcomes == {0: None, 1: None, 3: None}
    assert len(await receive(aws["sqs"], url, 3)) == 3
    assert (stats.batches, stats.api_calls, stats.sent, stats.rejected) == (1, 5, 3, 1)


async def test_the_checked_queue_size_limit_rejects_before_sending(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, MaximumMessageSize="1024")
    async with SQSSink(url, endpoint_url=aws["endpoint"]) as sink:
        with pytest.raises(SinkRejected, match=r"than the 1,024 bytes the SQS queue"):
            await sink.send(dead_letter("y" * 2000))
    assert sink.statistics().api_calls == 0


async def test_a_queue_deleted_after_start_fails_sends_as_retryable(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    async with SQSSink(url, endpoint_url=aws["endpoint"]) as sink:
        await aws["sqs"].delete_queue(QueueUrl=url)
        with pytest.raises(AWSError, match=r"SendMessageBatch to the SQS queue .* failed"):
            await sink.send(dead_letter())
    stats = sink.statistics()
    assert (stats.failed, stats.rejected, stats.sent) == (1, 0, 0)


# -- start-up checks and lifecycle --------------------------------------------------------


async def test_missing_queue_fails_the_check_with_its_url(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = f"{aws['endpoint']}/123456789012/{unique_name}"
    with pytest.raises(ResourceCheckFailed, match=rf"queue {url} does not exist") as info:
        async with SQSSink(url, endpoint_url=aws["endpoint"]):
            pass
    assert info.value.iam_action == "sqs:SendMessage"
    async with SQSSink(url, endpoint_url=aws["endpoint"], check=False) as sink:
        assert sink.statistics().pending == 0


async def test_missing_topic_and_bus_fail_their_checks(
    aws: dict[str, Any], unique_name: str
) -> None:
    topic = f"arn:aws:sns:us-east-1:123456789012:{unique_name}"
    with pytest.raises(ResourceCheckFailed, match=rf"topic {topic} does not exist") as info:
        async with SNSSink(topic, endpoint_url=aws["endpoint"]):
            pass
    assert info.value.iam_action == "sns:Publish"
    with pytest.raises(ResourceCheckFailed, match=rf"bus {unique_name} does not exist") as info:
        async with EventBridgeSink(unique_name, endpoint_url=aws["endpoint"]):
            pass
    assert info.value.iam_action == "events:PutEvents"


async def test_send_before_open_says_how_to_open_it(unique_name: str) -> None:
    sink = SNSSink(f"arn:aws:sns:us-east-1:123456789012:{unique_name}")
    with pytest.raises(RuntimeError, match=r"inside 'async with app'.*'async with sink:'"):
        await sink.send(dead_letter())


def test_bad_options_are_refused_when_given() -> None:
    with pytest.raises(eventflow.ConfigurationError, match="queue URL"):
        SQSSink("my-queue")
    with pytest.raises(eventflow.ConfigurationError, match="topic ARN"):
        SNSSink("arn:aws:sqs:us-east-1:123456789012:q")
    with pytest.raises(eventflow.ConfigurationError, match="linger"):
        EventBridgeSink(linger=-1)
    with pytest.raises(eventflow.ConfigurationError, match=r"start with 'aws\.'"):
        EventBridgeSink(source="aws.lambda")


# -- with the core ------------------------------------------------------------------------


async def test_app_sends_dead_letters_and_failure_records(
    aws: dict[str, Any], unique_name: str
) -> None:
    dlq, _ = await make_queue(aws["sqs"], unique_name + "-dlq")
    records, bus_arn = await bus_to_queue(aws, unique_name)

    @eventflow.handler(
        max_retries=0,
        retry_delays=(0.01,),
        dead_letter=SQSSink(dlq, endpoint_url=aws["endpoint"]),
        on_failure=EventBridgeSink(unique_name, endpoint_url=aws["endpoint"]),
    )
    async def resize(event: dict[str, int], context: eventflow.Context) -> None:
        raise ValueError("Simulating error")

    with anyio.fail_after(10):
        async with eventflow.App() as app:
            accepted = await app.invoke(resize, {"orderId": 42})
            await app.drain()
            stats = app.stats()
    assert stats.dead_lettered == 1 and stats.dead_letter_errors == 0
    assert stats.destination_errors == 0
    [letter] = await receive(aws["sqs"], dlq, 1)
    assert json.loads(letter["Body"]) == {"orderId": 42}
    assert letter["MessageAttributes"] == {
        "RequestID": {"DataType": "String", "StringValue": accepted.request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "Simulating error"},
    }
    [msg] = await receive(aws["sqs"], records, 1)
    event = json.loads(msg["Body"])
    assert event["detail-type"] == FAILURE_DETAIL_TYPE
    assert event["detail"]["requestContext"]["condition"] == "RetriesExhausted"
    assert event["detail"]["requestContext"]["requestId"] == accepted.request_id
    assert event["resources"] == [event["detail"]["requestContext"]["functionArn"], bus_arn]
