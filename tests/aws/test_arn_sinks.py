"""``eventflow.aws.sink_for_arn`` and ``queue_url_for_arn``: the sink for a queue, topic or
bus ARN, as Lambda's API names targets; against the moto server."""

from __future__ import annotations

from typing import Any

import pytest

from eventflow import ConfigurationError, Message
from eventflow.aws import (
    EventBridgeSink,
    ResourceCheckFailed,
    SNSSink,
    SQSSink,
    queue_url_for_arn,
    sink_for_arn,
)

REGION = "us-east-1"


async def _queue(aws: dict[str, Any], name: str) -> tuple[str, str]:
    url = (await aws["sqs"].create_queue(QueueName=name))["QueueUrl"]
    attributes = await aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, attributes["Attributes"]["QueueArn"]


async def test_a_queue_arn_becomes_an_sqs_sink_on_its_url(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, arn = await _queue(aws, unique_name)
    assert await queue_url_for_arn(arn, endpoint_url=aws["endpoint"]) == url
    sink = await sink_for_arn(arn, endpoint_url=aws["endpoint"])
    assert isinstance(sink, SQSSink) and sink.queue_url == url
    async with sink:  # opening checks the queue; a send reaches it
        await sink.send(Message('{"via": "arn"}'))
    received = await aws["sqs"].receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert [m["Body"] for m in received["Messages"]] == ['{"via": "arn"}']


async def test_topic_and_bus_arns_become_their_sinks(aws: dict[str, Any], unique_name: str) -> None:
    topic = (await aws["sns"].create_topic(Name=unique_name))["TopicArn"]
    sns = await sink_for_arn(topic, endpoint_url=aws["endpoint"])
    assert isinstance(sns, SNSSink) and sns.topic_arn == topic
    bus = f"arn:aws:events:{REGION}:123456789012:event-bus/{unique_name}"
    events = await sink_for_arn(bus, endpoint_url=aws["endpoint"])
    assert isinstance(events, EventBridgeSink) and events.event_bus_name == unique_name


async def test_a_missing_queue_is_explained_by_the_error_map(
    aws: dict[str, Any], unique_name: str
) -> None:
    arn = f"arn:aws:sqs:{REGION}:123456789012:{unique_name}"
    with pytest.raises(ResourceCheckFailed) as missing:
        await sink_for_arn(arn, endpoint_url=aws["endpoint"])
    assert missing.value.operation == "GetQueueUrl"
    assert missing.value.iam_action == "sqs:GetQueueUrl"
    assert f"The SQS queue {arn} does not exist" in str(missing.value)
    assert "create it first, or name an existing queue." in str(missing.value)


@pytest.mark.parametrize(
    ("arn", "services", "expected"),
    [
        ("not-an-arn", ("sqs", "sns", "events"), "must be the ARN of an SQS queue"),
        (f"arn:aws:sns:{REGION}:123456789012:t", ("sqs",), "must be the ARN of an SQS queue, "),
        ("arn:aws:sqs::123456789012:q", ("sqs",), "must be the ARN of an SQS queue"),
        (f"arn:aws:events:{REGION}:123456789012:rule/r", ("events",), "an EventBridge bus ARN"),
        ("arn:aws:s3:::bucket", ("sqs", "sns"), "an SQS queue or an SNS topic, got"),
    ],
)
async def test_other_arns_are_refused_before_any_call(
    arn: str, services: tuple[str, ...], expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        await sink_for_arn(arn, services=services)
