"""SQSBatchSource against a real moto server: Lambda's SQS event-source mapping semantics."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiobotocore.session import AioSession

import eventflow
from aws_support import make_queue
from eventflow.aws import SQSBatchSource
from eventflow.events import SQSEvent

REGION = "us-east-1"  # the region of the aws fixture (tests/aws/conftest.py)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"
Batches = list[list[dict[str, Any]]]


async def queue_counts(aws: dict[str, Any], url: str) -> tuple[int, int]:
    attrs = (
        await aws["sqs"].get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )
    )["Attributes"]
    return (
        int(attrs["ApproximateNumberOfMessages"]),
        int(attrs["ApproximateNumberOfMessagesNotVisible"]),
    )


async def send(aws: dict[str, Any], url: str, bodies: list[str], **extra: Any) -> None:
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body, **extra}
            for i, body in enumerate(bodies[start : start + 10])
        ]
        response = await aws["sqs"].send_message_batch(QueueUrl=url, Entries=entries)
        assert not response.get("Failed")


def batch_source(url: str, handler: Any, endpoint: str, **kw: Any) -> SQSBatchSource:
    kw.setdefault("wait_time_seconds", 1)
    return SQSBatchSource(url, handler, endpoint_url=endpoint, **kw)


def recorder(
    respond: Callable[[int, list[dict[str, Any]]], Any],
) -> tuple[Batches, Callable[[int], Awaitable[None]], Callable[..., Awaitable[Any]]]:
    """A batch handler that records every batch and answers with ``respond(n, records)``."""
    batches: Batches = []
    changed = anyio.Event()
    state = {"changed": changed}

    async def handle(event: dict[str, Any], context: eventflow.Context) -> Any:
        records = event["Records"]
        batches.append(records)
        state["changed"].set()
        state["changed"] = anyio.Event()
        return respond(len(batches), records)

    async def wait_batches(count: int) -> None:
        with anyio.fail_after(20):
            while len(batches) < count:
                await state["changed"].wait()

    return batches, wait_batches, handle


async def wait_empty(aws: dict[str, Any], url: str) -> None:
    with anyio.fail_after(20):
        while await queue_counts(aws, url) != (0, 0):  # noqa: ASYNC110 - a server's state
            await anyio.sleep(0.05)


def bodies(records: list[dict[str, Any]]) -> list[str]:
    return [r["body"] for r in records]


def failures(records: list[dict[str, Any]], failed: set[str]) -> dict[str, Any]:
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in records if r["body"] in failed
        ]
    }


async def test_partial_failure_keeps_exactly_the_reported_messages(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="1")
    sent = [f"m{i}" for i in range(10)]
    await send(aws, url, sent)
    bad = {"m2", "m5", "m7"}

    def respond(n: int, records: list[dict[str, Any]]) -> Any:
        return failures(records, bad) if n == 1 else None

    batches, wait_batches, handle = recorder(respond)
    h = eventflow.handler(handle, name="consume")
    src = batch_source(url, h, aws["endpoint"])
    async with eventflow.App(sources=[src]):
        await wait_batches(2)
        await wait_empty(aws, url)
    assert sorted(bodies(batches[0])) == sorted(sent)
    assert sorted(bodies(batches[1])) == sorted(bad)  # exactly those 3 came back
    assert {r["attributes"]["ApproximateReceiveCount"] for r in batches[1]} == {"2"}
    assert len(batches) == 2
    stats = src.statistics()
    assert (stats.batches, stats.batches_partial, stats.batches_succeeded) == (2, 1, 1)
    assert (stats.deleted, stats.failed, stats.held) == (10, 3, 0)


async def test_an_exception_fails_the_whole_batch(aws: dict[str, Any], unique_name: str) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="1")
    sent = [f"m{i}" for i in range(10)]
    await send(aws, url, sent)

    def respond(n: int, records: list[dict[str, Any]]) -> Any:
        if n == 1:
            raise RuntimeError("the database is down")
        return None

    batches, wait_batches, handle = recorder(respond)
    h = eventflow.handler(handle, name="consume")
    src = batch_source(url, h, aws["endpoint"])
    async with eventflow.App(sources=[src]):
        await wait_batches(2)
        await wait_empty(aws, url)
    assert sorted(bodies(batches[0])) == sorted(sent)
    assert sorted(bodies(batches[1])) == sorted(sent)
    assert {r["attributes"]["ApproximateReceiveCount"] for r in batches[1]} == {"2"}
    stats = src.statistics()
    assert (stats.batches_failed, stats.batches_succeeded, stats.deleted) == (1, 1, 10)


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"messageId": "wrong key"}]},
        {"batchItemFailures": "m1"},
        "ok",
    ],
)
async def test_an_invalid_response_fails_the_whole_batch(
    aws: dict[str, Any], unique_name: str, response: Any
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="1")
    await send(aws, url, ["a", "b", "c"])
    batches, wait_batches, handle = recorder(lambda n, _: response if n == 1 else {})
    h = eventflow.handler(handle, name="consume")
    src = batch_source(url, h, aws["endpoint"])
    async with eventflow.App(sources=[src]):
        await wait_batches(2)
        await wait_empty(aws, url)
    assert sorted(bodies(batches[1])) == ["a", "b", "c"]
    assert src.statistics().batches_failed == 1


async def test_a_handler_timeout_fails_the_whole_batch(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="1")
    await send(aws, url, ["a", "b"])
    calls: list[int] = []
    done = anyio.Event()

    async def slow_first(event: dict[str, Any], context: eventflow.Context) -> None:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            await anyio.sleep(30)  # cut off by the handler's timeout
        done.set()

    h = eventflow.handler(slow_first, name="consume", timeout=0.3)
    src = batch_source(url, h, aws["endpoint"])
    async with eventflow.App(sources=[src]):
        with anyio.fail_after(20):
            await done.wait()
        await wait_empty(aws, url)
    assert calls == [2, 2]
    assert src.statistics().batches_failed == 1


async def test_without_report_batch_item_failures_any_return_deletes_the_batch(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="1")
    await send(aws, url, ["a", "b", "c"])
    batches, wait_batches, handle = recorder(lambda n, records: failures(records, {"a"}))
    h = eventflow.handler(handle, name="consume")
    src = batch_source(url, h, aws["endpoint"], report_batch_item_failures=False)
    async with eventflow.App(sources=[src]):
        await wait_batches(1)
        await wait_empty(aws, url)
    assert len(batches) == 1
    assert src.statistics().deleted == 3


async def test_redrive_policy_dead_letters_exactly_the_always_failing_messages(
    aws: dict[str, Any], unique_name: str
) -> None:
    dlq_url, dlq_arn = await make_queue(aws["sqs"], f"{unique_name}-dlq")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="1", RedrivePolicy=policy)
    good = [f"good-{i}" for i in range(4)]
    bad = [f"bad-{i}" for i in range(3)]
    await send(aws, url, good + bad)
    batches, _, handle = recorder(lambda n, records: failures(records, set(bad)))
    h = eventflow.handler(handle, name="consume")
    src = batch_source(url, h, aws["endpoint"])
    async with eventflow.App(sources=[src]):
        with anyio.fail_after(20):
            while await queue_counts(aws, dlq_url) != (3, 0):  # noqa: ASYNC110 - a server's
                await anyio.sleep(0.05)
        await wait_empty(aws, url)
    received = await aws["sqs"].receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)
    assert sorted(m["Body"] for m in received["Messages"]) == bad
    seen_good = [b for batch in batches for b in bodies(batch) if b.startswith("good")]
    assert sorted(seen_good) == good  # each good message handled once, then deleted
    seen_bad = [b for batch in batches for b in bodies(batch) if b.startswith("bad")]
    assert sorted(seen_bad) == sorted(bad * 2)  # maxReceiveCount receives each, no more


async def test_fifo_order_within_a_group_holds_across_failures(
    moto_process_endpoint: str, unique_name: str, aio_session: AioSession
) -> None:
    # the patched moto server: stock moto delivers a group's last message first once a
    # failed batch's messages show again (see benchmarks/_moto_server.py)
    async with aio_session.create_client(
        "sqs", region_name=REGION, endpoint_url=moto_process_endpoint
    ) as sqs:
        aws = {"sqs": sqs}
        url, _ = await make_queue(
            sqs,
            f"{unique_name}.fifo",
            FifoQueue="true",
            ContentBasedDeduplication="true",
            VisibilityTimeout="1",
        )
        # interleaved groups, sent in order
        order = ["a1", "b1", "a2", "b2", "a3", "a4", "b3", "a5"]
        for body in order:
            await sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=body[0])

        def respond(n: int, records: list[dict[str, Any]]) -> Any:
            # the handler reports only a2; the source must hold a3..a5 back with it
            return failures(records, {"a2"}) if n == 1 else None

        batches, wait_batches, handle = recorder(respond)
        h = eventflow.handler(handle, name="consume")
        src = batch_source(url, h, moto_process_endpoint)
        async with eventflow.App(sources=[src]):
            await wait_batches(2)
            await wait_empty(aws, url)
    first = bodies(batches[0])
    assert [b for b in first if b[0] == "a"] == ["a1", "a2", "a3", "a4", "a5"]
    assert [b for b in first if b[0] == "b"] == ["b1", "b2", "b3"]
    again = [b for batch in batches[1:] for b in bodies(batch)]
    assert again == ["a2", "a3", "a4", "a5"]  # in group order, the failed one first
    assert {r["attributes"]["ApproximateReceiveCount"] for r in batches[1]} == {"2"}
    assert src.statistics().deleted == len(order)


async def test_batches_gather_across_receives_up_to_batch_size(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    sent = [f"m{i:02d}" for i in range(25)]
    await send(aws, url, sent)
    batches, wait_batches, handle = recorder(lambda n, _: None)
    h = eventflow.handler(handle, name="consume")
    src = batch_source(url, h, aws["endpoint"], batch_size=25, max_batching_window=10)
    async with eventflow.App(sources=[src]):
        await wait_batches(1)
        await wait_empty(aws, url)
    assert sorted(bodies(batches[0])) == sent  # one batch of 25 from three receives
    assert src.statistics().api_calls >= 3 + 3  # receives + delete calls of ten


async def test_without_a_window_a_batch_is_one_receive_and_batch_size_bounds_it(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    sent = [f"m{i}" for i in range(7)]
    await send(aws, url, sent)
    batches, _, handle = recorder(lambda n, _: None)
    h = eventflow.handler(handle, name="consume")
    src = batch_source(url, h, aws["endpoint"], batch_size=3)
    async with eventflow.App(sources=[src]):
        await wait_empty(aws, url)
        with anyio.fail_after(20):
            while sum(len(b) for b in batches) < 7:  # noqa: ASYNC110 - one condition, bounded
                await anyio.sleep(0.01)
    assert all(1 <= len(b) <= 3 for b in batches)
    assert sorted(b for batch in batches for b in bodies(batch)) == sent


def _shape(value: Any) -> Any:
    """The keys (in order) and value types of a JSON value, to compare shapes."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


async def test_record_shape_matches_lambdas_documented_sqs_event(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, arn = await make_queue(aws["sqs"], unique_name)
    await send(aws, url, ["test"])
    await aws["sqs"].send_message(
        QueueUrl=url,
        MessageBody="with attributes",
        MessageAttributes={
            "myAttribute": {"DataType": "String", "StringValue": "myValue"},
            "count": {"DataType": "Number", "StringValue": "123"},
            "blob": {"DataType": "Binary", "BinaryValue": b"1100"},
        },
    )
    batches, wait_batches, handle = recorder(lambda n, _: None)
    h = eventflow.handler(handle, name="consume")
    src = batch_source(url, h, aws["endpoint"])
    async with eventflow.App(sources=[src]):
        await wait_batches(1)
        await wait_empty(aws, url)
    records = {r["body"]: r for r in batches[0]}
    assert set(records) == {"test", "with attributes"}

    # Lambda's documented sample (its records carry no message attributes)
    doc = json.loads((FIXTURES / "sqs" / "sqs-lambda-event-awsdocs.json").read_text())
    plain = records["test"]
    assert _shape(plain) == _shape(doc["Records"][0])  # same fields, order and types
    assert plain["body"] == doc["Records"][0]["body"]
    assert plain["md5OfBody"] == doc["Records"][0]["md5OfBody"]  # MD5 of "test"
    assert plain["eventSource"] == "aws:sqs"
    assert plain["eventSourceARN"] == arn
    assert plain["awsRegion"] == REGION
    assert plain["attributes"]["ApproximateReceiveCount"] == "1"
    assert plain["messageAttributes"] == {}

    # message attributes as Lambda spells them (powertools' sample of the documented event,
    # aws-lambda-go's for binary values and md5OfMessageAttributes)
    sample = json.loads((FIXTURES / "sqs" / "sqs-lambda-event-message-attributes.json").read_text())
    sample_record = sample["Records"][0]
    rich = records["with attributes"]
    assert set(rich) == set(sample_record)
    documented = list(doc["Records"][0])
    assert list(rich) == [*documented[:6], "md5OfMessageAttributes", *documented[6:]]
    string_attr = sample_record["messageAttributes"]["Attribute1"]
    assert _shape(rich["messageAttributes"]["myAttribute"]) == _shape(string_attr) | {
        "stringListValues": [],
        "binaryListValues": [],
    }
    assert rich["messageAttributes"]["myAttribute"] == {
        "stringValue": "myValue",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert rich["messageAttributes"]["count"]["stringValue"] == "123"
    blob = rich["messageAttributes"]["blob"]
    assert (
        blob["binaryValue"]
        == "MTEwMA=="
        == sample_record["messageAttributes"]["Attribute3"]["binaryValue"]
    )
    assert set(blob) == {"binaryValue", "stringListValues", "binaryListValues", "dataType"}
    assert rich["md5OfBody"] == hashlib.md5(b"with attributes").hexdigest()

    # and the typed view reads the batch
    view = SQSEvent.from_dict({"Records": batches[0]})
    assert {r.body for r in view.records} == {"test", "with attributes"}
    assert {r.event_source_arn for r in view.records} == {arn}


async def test_fifo_record_carries_the_fifo_attributes(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(
        aws["sqs"], f"{unique_name}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    await aws["sqs"].send_message(QueueUrl=url, MessageBody="hello", MessageGroupId="g1")
    batches, wait_batches, handle = recorder(lambda n, _: None)
    h = eventflow.handler(handle, name="consume")
    src = batch_source(url, h, aws["endpoint"])
    async with eventflow.App(sources=[src]):
        await wait_batches(1)
        await wait_empty(aws, url)
    sample = json.loads((FIXTURES / "sns" / "sqs-lambda-event-sns-fifo-envelope.json").read_text())
    expected = set(sample["Records"][0]["attributes"])
    attributes = batches[0][0]["attributes"]
    # moto leaves SequenceNumber out; every attribute it returns is one Lambda's sample has
    assert set(attributes) <= expected
    assert {"MessageGroupId", "MessageDeduplicationId", "ApproximateReceiveCount"} <= set(
        attributes
    )
    assert attributes["MessageGroupId"] == "g1"


async def test_handler_timeout_longer_than_visibility_timeout_is_refused(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="5")

    async def handle(event: Any, context: eventflow.Context) -> None:
        return None

    h = eventflow.handler(handle, name="consume", timeout=10)
    src = batch_source(url, h, aws["endpoint"])
    with pytest.raises(eventflow.ConfigurationError, match="visibility timeout of 5 s"):
        async with eventflow.App(sources=[src]):
            pass


@pytest.mark.parametrize(
    ("url", "options", "match"),
    [
        ("https://sqs.us-east-1.amazonaws.com/1/q", {"batch_size": 0}, "between 1 and 10000"),
        ("https://sqs.us-east-1.amazonaws.com/1/q.fifo", {"batch_size": 11}, "FIFO"),
        ("https://sqs.us-east-1.amazonaws.com/1/q", {"batch_size": 11}, "max_batching_window"),
        ("https://sqs.us-east-1.amazonaws.com/1/q", {"max_batching_window": 301}, "300"),
        ("https://sqs.us-east-1.amazonaws.com/1/q", {"max_concurrency": 0}, "at least 1"),
        ("https://sqs.us-east-1.amazonaws.com/1/q", {"wait_time_seconds": 21}, "long polling"),
    ],
)
def test_options_outside_lambdas_ranges_are_refused(
    url: str, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(eventflow.ConfigurationError, match=match):
        SQSBatchSource(url, "consume", **options)


def test_binary_attributes_are_base64_in_lambdas_form() -> None:
    from eventflow.aws._sqs_batch import lambda_message_attributes

    converted = lambda_message_attributes(
        {"b": {"DataType": "Binary", "BinaryValue": b"\x00\x01", "BinaryListValues": [b"0"]}}
    )
    assert converted == {
        "b": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": ["MA=="],
            "dataType": "Binary",
        }
    }


async def test_a_batch_still_running_after_the_shutdown_grace_is_cut_short(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="30")
    await send(aws, url, ["a", "b"])
    started = anyio.Event()

    async def never_done(event: dict[str, Any], context: eventflow.Context) -> None:
        started.set()
        await anyio.sleep_forever()

    h = eventflow.handler(never_done, name="consume")
    src = batch_source(url, h, aws["endpoint"], shutdown_grace=0)
    with anyio.fail_after(20):  # the app's stop does not wait for the handler
        async with eventflow.App(sources=[src]):
            await started.wait()
    stats = src.statistics()
    assert (stats.batches, stats.deleted, stats.failed, stats.held, stats.running) == (
        0,
        0,
        2,
        0,
        0,
    )
    # not deleted: both stay on the queue, invisible until their visibility timeout lapses
    assert await queue_counts(aws, url) == (0, 2)


async def test_messages_gathered_when_the_app_stops_are_given_back_at_once(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name, VisibilityTimeout="300")
    await send(aws, url, ["a", "b"])
    batches, _, handle = recorder(lambda n, _: None)
    h = eventflow.handler(handle, name="consume")
    # a long window: the two messages wait in a batch that is still gathering
    src = batch_source(url, h, aws["endpoint"], max_batching_window=60)
    async with eventflow.App(sources=[src]):
        with anyio.fail_after(20):
            while src.statistics().received < 2:  # noqa: ASYNC110 - one condition, bounded
                await anyio.sleep(0.02)
    stats = src.statistics()
    assert (stats.batches, stats.released, stats.held, stats.failed) == (0, 2, 0, 0)
    assert batches == []
    # visible again now, not after the queue's 300 s visibility timeout
    assert await queue_counts(aws, url) == (2, 0)
