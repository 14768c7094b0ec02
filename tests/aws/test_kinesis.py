"""KinesisSink against a moto server: records read back with GetShardIterator/GetRecords."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from aiobotocore.session import AioSession

import eventflow
from aws_support import dead_letter, record, send_all
from eventflow import Message
from eventflow.aws import AWSError, KinesisSink, ResourceCheckFailed
from eventflow.sinks import SinkRejected
from eventflow.testing import VirtualClock
from fault_proxy import FaultProxy


@pytest.fixture
async def kinesis(moto_endpoint: str, aio_session: AioSession) -> AsyncIterator[Any]:
    async with aio_session.create_client(
        "kinesis", region_name="us-east-1", endpoint_url=moto_endpoint
    ) as client:
        yield client


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_endpoint).start()
    try:
        yield proxy
    finally:
        proxy.stop()


async def make_stream(kinesis: Any, name: str) -> None:
    await kinesis.create_stream(StreamName=name, ShardCount=1)
    with anyio.fail_after(10):
        while True:
            summary = await kinesis.describe_stream_summary(StreamName=name)
            if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
            await anyio.sleep(0.05)


async def read_records(kinesis: Any, name: str) -> list[dict[str, Any]]:
    """Every record in the stream's one shard, oldest first."""
    shards = (await kinesis.list_shards(StreamName=name))["Shards"]
    iterator = (
        await kinesis.get_shard_iterator(
            StreamName=name, ShardId=shards[0]["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )
    )["ShardIterator"]
    got = await kinesis.get_records(ShardIterator=iterator, Limit=1000)
    records: list[dict[str, Any]] = got["Records"]
    return records


async def test_messages_arrive_as_records_keyed_by_request_id_in_one_call(
    moto_endpoint: str, kinesis: Any, unique_name: str
) -> None:
    await make_stream(kinesis, unique_name)
    messages = [dead_letter({"n": i}, request_id=f"req-{i}") for i in range(12)]
    messages.append(record("Success", request_id="req-record"))
    async with KinesisSink(unique_name, endpoint_url=moto_endpoint, linger=0.05) as sink:
        outcomes = await send_all(sink, messages)
        stats = sink.statistics()
    assert outcomes == [None] * 13
    # 13 messages: more than ten (the SQS/SNS limit) share one PutRecords call
    assert (stats.batches, stats.api_calls, stats.largest_batch, stats.sent) == (1, 1, 13, 13)
    records = await read_records(kinesis, unique_name)
    by_key = {r["PartitionKey"]: r["Data"] for r in records}
    assert len(records) == 13
    assert json.loads(by_key["req-3"]) == {"n": 3}  # the body, unchanged
    assert json.loads(by_key["req-record"])["requestContext"]["condition"] == "Success"


async def test_the_app_sends_dead_letters_and_destination_records_to_streams(
    moto_endpoint: str, kinesis: Any, unique_name: str
) -> None:
    await make_stream(kinesis, unique_name + "-dlq")
    await make_stream(kinesis, unique_name + "-failures")

    @eventflow.handler(
        max_retries=0,
        dead_letter=KinesisSink(unique_name + "-dlq", endpoint_url=moto_endpoint),
        on_failure=KinesisSink(unique_name + "-failures", endpoint_url=moto_endpoint),
    )
    async def resize(event: dict[str, int], context: eventflow.Context) -> None:
        raise ValueError("Simulating error")

    with anyio.fail_after(10):
        async with eventflow.App() as app:
            accepted = await app.invoke(resize, {"orderId": 42})
            await app.drain()
            stats = app.stats()
    assert (stats.dead_lettered, stats.dead_letter_errors, stats.destination_errors) == (1, 0, 0)
    [letter] = await read_records(kinesis, unique_name + "-dlq")
    assert json.loads(letter["Data"]) == {"orderId": 42}
    assert letter["PartitionKey"] == accepted.request_id
    [failure] = await read_records(kinesis, unique_name + "-failures")
    context = json.loads(failure["Data"])["requestContext"]
    assert (context["requestId"], context["condition"]) == (accepted.request_id, "RetriesExhausted")
    assert failure["PartitionKey"] == accepted.request_id


async def test_a_throttled_record_is_retried_alone_and_an_invalid_one_rejected(
    kinesis: Any, proxy: FaultProxy, unique_name: str
) -> None:
    await make_stream(kinesis, unique_name)
    proxy.fail_entries(
        "PutRecords", "req-0", code="ProvisionedThroughputExceededException", times=1
    )
    proxy.fail_entries("PutRecords", "req-1", code="InvalidArgumentException", times=1)
    clock = VirtualClock()
    messages = [dead_letter({"n": i}, request_id=f"req-{i}") for i in range(3)]
    async with KinesisSink(
        unique_name, endpoint_url=proxy.endpoint, linger=0.05, clock=clock
    ) as sink:
        async with clock.autojump():
            outcomes = await send_all(sink, messages)
        stats = sink.statistics()
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], SinkRejected)
    assert "(InvalidArgumentException)" in str(outcomes[1])
    assert proxy.calls == ["DescribeStreamSummary", "PutRecords", "PutRecords"]
    assert clock.now() > 0  # the retry waited on the sink's clock
    keys = sorted(r["PartitionKey"] for r in await read_records(kinesis, unique_name))
    assert keys == ["req-0", "req-2"]  # the retried record arrived once
    assert (stats.api_calls, stats.sent, stats.rejected, stats.failed) == (2, 2, 1, 0)


async def test_a_record_that_stays_throttled_is_raised_as_retryable(
    kinesis: Any, proxy: FaultProxy, unique_name: str
) -> None:
    await make_stream(kinesis, unique_name)
    proxy.fail_entries(
        "PutRecords", "req-0", code="ProvisionedThroughputExceededException", times=100
    )
    clock = VirtualClock()
    async with KinesisSink(
        unique_name, endpoint_url=proxy.endpoint, check=False, linger=0, clock=clock
    ) as sink:
        async with clock.autojump():
            [outcome] = await send_all(sink, [dead_letter(request_id="req-0")])
    assert isinstance(outcome, AWSError) and not isinstance(outcome, SinkRejected)
    assert proxy.failed_entries == 4  # the first call and three retries


async def test_a_record_over_one_mib_is_rejected_before_sending(
    moto_endpoint: str, kinesis: Any, unique_name: str
) -> None:
    await make_stream(kinesis, unique_name)
    async with KinesisSink(unique_name, endpoint_url=moto_endpoint) as sink:
        with pytest.raises(SinkRejected, match=r"more than the 1,048,576 bytes the Kinesis"):
            await sink.send(Message("x" * 1_048_576, {"RequestID": "req-1"}))
        await sink.send(Message("x" * 1000, {"RequestID": "req-2"}))
        stats = sink.statistics()
    assert (stats.api_calls, stats.sent, stats.rejected) == (1, 1, 1)


# aiohttp warns (ResourceWarning) about any request body over 1 MiB that botocore hands it
@pytest.mark.filterwarnings("ignore:Sending a large body directly")
async def test_five_mib_per_call_splits_large_records_across_calls(
    moto_endpoint: str, kinesis: Any, unique_name: str
) -> None:
    await make_stream(kinesis, unique_name)
    body = "y" * 900_000
    messages = [Message(body, {"RequestID": f"req-{i}"}) for i in range(7)]
    async with KinesisSink(unique_name, endpoint_url=moto_endpoint, linger=0.2) as sink:
        outcomes = await send_all(sink, messages)
        stats = sink.statistics()
    assert outcomes == [None] * 7
    assert (stats.api_calls, stats.largest_batch) == (2, 5)  # 5 x 0.9 MB fit, 6 do not


async def test_a_missing_stream_fails_the_start_up_check(
    moto_endpoint: str, unique_name: str
) -> None:
    with pytest.raises(ResourceCheckFailed, match=r"does not exist \(DescribeStreamSummary"):
        async with KinesisSink(unique_name, endpoint_url=moto_endpoint):
            pass


def test_options_are_checked() -> None:
    with pytest.raises(eventflow.ConfigurationError, match="stream_name"):
        KinesisSink("")
    with pytest.raises(eventflow.ConfigurationError, match="linger"):
        KinesisSink("s", linger=-1)
    assert repr(KinesisSink("s")) == "KinesisSink('s')"
