"""Poison SQS messages: a body that cannot be an event fails its own event, never the source.

Each source has one place where a body becomes an event (``decode_body`` for SQSSource,
``SQSEventQueue._deliver``); whatever a body holds, nothing may raise out of it. On moto:
one app, poison messages among good ones; the good ones all run, each poison takes its own
failure path with a reason naming the problem, and the app still serves afterwards. Before
the fix the first poison raised out of the source and stopped the app, on every restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

import eventflow
from eventflow.aws import SQSEventQueue
from eventflow.aws._shapes import decode_body
from eventflow.aws._sqs_source import SQSSource
from eventflow.events._bodies import BodyKind
from eventflow.sinks import MemorySink

REGION = "us-east-1"
DEEP = "[" * 5000 + "]" * 5000
BAD_SNS_URL = json.dumps(
    {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders",
        "Message": "{}",
        "UnsubscribeURL": "http://[::1",
    }
)
# SQSSource: body -> the words its dead letter's ErrorMessage must contain
SOURCE_POISONS = {
    '{"a": NaN}': "NaN is not a JSON value",
    '{"a": [-Infinity]}': "-Infinity is not a JSON value",
    DEEP: "nested too deeply",
    BAD_SNS_URL: "Invalid IPv6 URL",
    '{"a": 1e999}': "not JSON-serialisable",  # valid JSON whose float is an infinity
    "1" * 5000: "integer string conversion",
}


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll the app's progress (SQS runs on the wall clock)."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - progress made by other tasks and a server
            await anyio.sleep(0.02)


@pytest.mark.parametrize("body", [*SOURCE_POISONS, "", "null", "{", "\ud800", "[" * 999])
def test_decode_body_never_raises_and_says_why(body: str) -> None:
    kind, payload = decode_body(body)
    if kind is BodyKind.INVALID:
        assert isinstance(payload, str) and payload.startswith("The SQS message body")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.none()
            | st.booleans()
            | st.floats()
            | st.integers()
            | st.text(max_size=20)
            | st.sampled_from(["http://[::1", "aws:s3", "Notification"]),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        ["Type", "TopicArn", "Message", "UnsubscribeURL", "Records", "detail"]
                    )
                    | st.text(max_size=8),
                    inner,
                    max_size=5,
                )
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value)),
    )
)
def test_decode_body_is_total_on_generated_bodies(body: str) -> None:
    kind, payload = decode_body(body)
    assert isinstance(kind, BodyKind)
    if kind is BodyKind.INVALID:
        assert isinstance(payload, str) and payload


async def test_sqs_source_dead_letters_poison_messages_and_runs_the_rest(
    aws: dict[str, Any], unique_name: str
) -> None:
    sqs = aws["sqs"]
    url = (await sqs.create_queue(QueueName=unique_name))["QueueUrl"]
    good = 20
    bodies = [*SOURCE_POISONS, *(json.dumps({"n": n}) for n in range(good))]
    for start in range(0, len(bodies), 10):
        await sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + 10])
            ],
        )
    dlq = MemorySink()
    ran: list[Any] = []

    @eventflow.handler(dead_letter=dlq)
    async def orders(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    src = SQSSource(url, orders, endpoint_url=aws["endpoint"], wait_time_seconds=1, pollers=1)
    async with eventflow.App(sources=[src]) as app:
        await until(lambda: len(ran) == good and len(dlq.messages) == len(SOURCE_POISONS))
        # the app still serves: a message sent after the poison runs too
        await sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": "after"}))
        await until(lambda: {"n": "after"} in ran)
        await app.drain()
        await until(lambda: src.statistics().deleted == len(bodies) + 1)
        stats = app.stats()
    assert sorted(e["n"] for e in ran if e["n"] != "after") == list(range(good))
    letters = {json.loads(m.body): m.attributes["ErrorMessage"] for m in dlq.messages}
    assert set(letters) == set(SOURCE_POISONS)
    for body, words in SOURCE_POISONS.items():
        assert words in letters[body], (body[:40], letters[body])
    assert stats.failed == len(SOURCE_POISONS) and stats.attempts == good + 1
    assert src.statistics().rejected == len(SOURCE_POISONS)


def queue_message(body: str, request_id: str, **attributes: str) -> dict[str, Any]:
    """A message in SQSEventQueue's format with ``body`` as it is (attributes overridable)."""
    values = {
        "RequestID": request_id,
        "Handler": "work",
        "FirstEnqueued": f"{time.time():.3f}",
        "Attempt": "0",
        **attributes,
    }
    return {
        "MessageBody": body,
        "MessageAttributes": {
            name: {
                "DataType": "String" if name in ("RequestID", "Handler") else "Number",
                "StringValue": value,
            }
            for name, value in values.items()
        },
    }


async def test_sqs_event_queue_leaves_poison_messages_to_the_redrive_policy(
    aws: dict[str, Any], unique_name: str
) -> None:
    sqs = aws["sqs"]
    dead = (await sqs.create_queue(QueueName=f"{unique_name}-dlq"))["QueueUrl"]
    dead_arn = (await sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "1"})
    url = (
        await sqs.create_queue(
            QueueName=unique_name,
            Attributes={"VisibilityTimeout": "2", "RedrivePolicy": redrive},
        )
    )["QueueUrl"]
    poisons = {
        "p-nan": (queue_message('{"a": NaN}', "p-nan"), "NaN is not a JSON value"),
        "p-deep": (queue_message(DEEP, "p-deep"), "nested too deeply"),
        "p-int": (queue_message("1" * 5000, "p-int"), "integer string conversion"),
        "p-inf": (queue_message('{"a": 1e999}', "p-inf"), "a float is inf"),
        "p-surrogate": (queue_message('{"a": "caf\\ud800"}', "p-surrogate"), "lone surrogate"),
        "p-600": (queue_message("[" * 600 + "]" * 600, "p-600"), "more than 500 levels deep"),
        "p-attempt": (
            queue_message("{}", "p-attempt", Attempt="9" * 5000),
            "lacks eventflow's attributes",
        ),
    }
    good = 20
    messages = [m for m, _ in poisons.values()]
    messages += [queue_message(json.dumps({"n": n}), f"g-{n}") for n in range(good)]
    for start in range(0, len(messages), 10):
        await sqs.send_message_batch(
            QueueUrl=url,
            Entries=[dict(m, Id=str(i)) for i, m in enumerate(messages[start : start + 10])],
        )
    queue = SQSEventQueue(
        url, endpoint_url=aws["endpoint"], region_name=REGION, wait_time_seconds=1
    )
    app = eventflow.App(queue=queue)
    ran: list[Any] = []

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    moved: list[str] = []

    async def redriven() -> bool:
        got = await sqs.receive_message(
            QueueUrl=dead, MaxNumberOfMessages=10, MessageAttributeNames=["RequestID"]
        )
        moved.extend(
            m["MessageAttributes"]["RequestID"]["StringValue"] for m in got.get("Messages", [])
        )
        return len(moved) >= len(poisons)

    with capture_logs() as logs:
        async with app:
            await until(lambda: len(ran) == good)
            await app.invoke(work, {"n": "after"})  # the app still serves
            await until(lambda: {"n": "after"} in ran)
            # each poison shows again after its visibility timeout; SQS then moves it aside
            with anyio.fail_after(30):
                while not await redriven():  # noqa: ASYNC110 - SQS moves them
                    await anyio.sleep(0.2)
    assert sorted(e["n"] for e in ran if e["n"] != "after") == list(range(good))
    assert sorted(moved) == sorted(poisons)
    reasons = {
        entry["request_id"]: entry["reason"]
        for entry in logs
        if entry["event"] == "sqs_queue.malformed_message"
    }
    for request_id, (_, words) in poisons.items():
        assert words in reasons[request_id], (request_id, reasons.get(request_id))
        assert "redrive policy" in reasons[request_id]
    assert queue.statistics().malformed >= len(poisons)
    assert app.stats().succeeded == good + 1
