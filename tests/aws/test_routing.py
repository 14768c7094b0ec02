"""Routes on a real moto server: one SQS queue fed by an EventBridge rule and an SNS topic,
several handlers, each getting exactly its events; the unmatched are deleted and counted."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

import eventflow
from eventflow.aws._sns_http import SNSEndpoint
from eventflow.aws._sqs_source import SQSSource
from eventflow.routing import EventPattern, FilterPolicy, Route, S3KeyFilter
from http_support import serve_asgi


async def queue_depth(aws: dict[str, Any], url: str) -> int:
    attrs = (
        await aws["sqs"].get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


async def test_one_queue_several_routes_each_handler_gets_exactly_its_events(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = (await aws["sqs"].create_queue(QueueName=unique_name))["QueueUrl"]
    arn = (await aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    # EventBridge: every order event reaches the queue; the routes select among them
    await aws["events"].put_rule(
        Name=unique_name, EventPattern=json.dumps({"source": ["com.example.orders"]})
    )
    await aws["events"].put_targets(Rule=unique_name, Targets=[{"Id": "q", "Arn": arn}])
    for detail_type, total in (("OrderCreated", 50), ("OrderCreated", 500), ("OrderShipped", 9)):
        await aws["events"].put_events(
            Entries=[
                {
                    "Source": "com.example.orders",
                    "DetailType": detail_type,
                    "Detail": json.dumps({"total": total}),
                }
            ]
        )
    # SNS: raw delivery off, so the queue holds SNS envelopes with their attributes
    topic = (await aws["sns"].create_topic(Name=unique_name))["TopicArn"]
    await aws["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    for region, kind in (("eu", "sale"), ("us", "refund"), ("us", "sale")):
        await aws["sns"].publish(
            TopicArn=topic,
            Message=json.dumps({"kind": kind}),
            MessageAttributes={"region": {"DataType": "String", "StringValue": region}},
        )

    seen: dict[str, list[tuple[Any, str]]] = {}
    finished = anyio.Event()

    def recorder(name: str) -> eventflow.Handler:
        async def record(event: Any, context: eventflow.Context) -> None:
            seen.setdefault(name, []).append((event, context.aws_request_id))
            if sum(len(v) for v in seen.values()) == 5:
                finished.set()

        return eventflow.handler(record, name=name)

    created, big, europe, refunds, uploads = (
        recorder(n) for n in ("created", "big", "europe", "refunds", "uploads")
    )
    routes = [
        Route(created, EventPattern({"detail-type": ["OrderCreated"]})),
        Route(big, EventPattern({"detail": {"total": [{"numeric": [">", 100]}]}})),
        Route(europe, FilterPolicy({"region": ["eu"]})),
        Route(refunds, FilterPolicy({"kind": ["refund"]}, scope="MessageBody")),
        Route(uploads, S3KeyFilter(prefix="in/")),  # no S3 notification arrives
    ]
    src = SQSSource(url, routes, endpoint_url=aws["endpoint"], wait_time_seconds=1, pollers=1)
    async with eventflow.App(sources=[src]) as app:
        with anyio.fail_after(20):
            await finished.wait()
            await app.drain()
            while src.statistics().deleted < 6:  # noqa: ASYNC110 - one condition, bounded
                await anyio.sleep(0.05)
        stats = src.statistics()

    assert sorted(e["detail"]["total"] for e, _ in seen["created"]) == [50, 500]
    assert [e["detail"]["total"] for e, _ in seen["big"]] == [500]
    europe_event = seen["europe"][0][0]["Records"][0]["Sns"]
    assert europe_event["MessageAttributes"]["region"]["Value"] == "eu"
    assert json.loads(seen["refunds"][0][0]["Records"][0]["Sns"]["Message"]) == {"kind": "refund"}
    assert set(seen) == {"created", "big", "europe", "refunds"}
    # the event that matched two routes ran twice, each run with its own request ID
    ids = [rid for runs in seen.values() for _, rid in runs]
    assert len(ids) == len(set(ids)) == 5
    assert stats.received == 6 and stats.submitted == 5 and stats.unmatched == 2
    assert stats.deleted == 6 and stats.held == 0
    assert await queue_depth(aws, url) == 0


async def test_a_message_of_two_routes_is_deleted_only_when_both_finished(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = (await aws["sqs"].create_queue(QueueName=unique_name))["QueueUrl"]
    body = {"version": "0", "id": "1", "source": "s", "detail-type": "d", "detail": {}}
    await aws["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps(body))
    first_done, release_second = anyio.Event(), anyio.Event()

    @eventflow.handler
    async def fast(event: Any, context: eventflow.Context) -> None:
        first_done.set()

    @eventflow.handler
    async def slow(event: Any, context: eventflow.Context) -> None:
        await release_second.wait()

    routes = [Route(fast, {"source": ["s"]}), Route(slow, lambda event: True)]
    src = SQSSource(url, routes, endpoint_url=aws["endpoint"], wait_time_seconds=1, pollers=1)
    async with eventflow.App(sources=[src]) as app:
        with anyio.fail_after(20):
            await first_done.wait()
            for _ in range(20):  # let the fast route's event settle
                await anyio.lowlevel.checkpoint()
            stats = src.statistics()
            assert stats.held == 1 and stats.deleted == 0  # the slow route still runs
            release_second.set()
            await app.drain()
            while src.statistics().deleted < 1:  # noqa: ASYNC110 - one condition, bounded
                await anyio.sleep(0.05)
    assert src.statistics().submitted == 2


def test_routes_are_validated() -> None:
    with pytest.raises(eventflow.ConfigurationError, match="non-empty list"):
        SQSSource("https://sqs.us-east-1.amazonaws.com/1/q", [])
    with pytest.raises(eventflow.ConfigurationError, match="non-empty list"):
        SQSSource("https://sqs.us-east-1.amazonaws.com/1/q", ["not a route"])  # type: ignore[list-item]


# -- SNSEndpoint ---------------------------------------------------------------------------

TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"


def notification(n: int, message: Any, **attributes: tuple[str, str]) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": f"m{n}",
        "TopicArn": TOPIC,
        "Message": json.dumps(message),
        "Timestamp": "2026-01-02T03:04:05.678Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={TOPIC}:2bcfbf39",
        "MessageAttributes": {k: {"Type": t, "Value": v} for k, (t, v) in attributes.items()},
    }


async def test_sns_endpoint_routes_by_filter_policy() -> None:
    seen: dict[str, list[tuple[str, str]]] = {}

    def recorder(name: str) -> eventflow.Handler:
        async def record(event: Any, context: eventflow.Context) -> None:
            message_id = event["Records"][0]["Sns"]["MessageId"]
            seen.setdefault(name, []).append((message_id, context.aws_request_id))

        return eventflow.handler(record, name=name)

    europe, many, answer = recorder("europe"), recorder("many"), recorder("answer")
    app = eventflow.App(handlers=[europe, many, answer], concurrency=2)
    routes = [
        Route(europe, FilterPolicy({"region": ["eu"]})),
        Route(many, FilterPolicy({"count": [{"numeric": [">", 10]}]})),
        Route(answer, FilterPolicy({"orderId": [42]}, scope="MessageBody")),
    ]
    endpoint = SNSEndpoint(app, routes, verify_signatures=False)
    async with app, serve_asgi(endpoint) as url, httpx.AsyncClient(base_url=url) as client:
        both = await client.post(
            "/", json=notification(1, {}, region=("String", "eu"), count=("Number", "42"))
        )
        body = await client.post(
            "/", json=notification(2, {"orderId": 42}, region=("String", "us"))
        )
        none = await client.post("/", json=notification(3, {"orderId": 7}, count=("Number", "5")))
        await app.drain(timeout=5)
    assert both.status_code == 200 and len(set(both.json()["requestIds"])) == 2
    assert body.json()["requestIds"] == [body.json()["requestId"]]
    assert none.status_code == 200 and none.json() == {"status": "unmatched"}
    assert [m for m, _ in seen["europe"]] == ["m1"]
    assert [m for m, _ in seen["many"]] == ["m1"]
    assert [m for m, _ in seen["answer"]] == ["m2"]
    assert seen["europe"][0][1] == both.json()["requestIds"][0]
    stats = endpoint.statistics()
    assert (stats.accepted, stats.unmatched, stats.refused_total) == (2, 1, 0)


def test_sns_endpoint_refuses_routes_that_can_never_match() -> None:
    app = eventflow.App(handlers=[])
    with pytest.raises(eventflow.ConfigurationError, match="can never match here"):
        SNSEndpoint(app, [Route("h", EventPattern({"source": ["x"]}))])
    with pytest.raises(eventflow.ConfigurationError, match="can never match here"):
        SNSEndpoint(app, [Route("h", S3KeyFilter(prefix="in/"))])
