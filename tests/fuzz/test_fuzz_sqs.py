"""Fuzz: hostile SQS message bodies, through the decoding of each source and through the
real sources on moto. One bad message may fail its own event, never the app."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import anyio
import pytest
from aiobotocore.session import AioSession
from fuzz_support import (
    assert_conserved,
    deep_array,
    deep_object,
    sns_envelope,
    sqs_bodies,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.aws import SQSEventQueue
from eventflow.aws._shapes import BodyKind, decode_body
from eventflow.aws._sqs_source import SQSSource
from eventflow.sinks import MemorySink

REGION = "us-east-1"


def _door() -> tuple[eventflow.App, eventflow.Handler]:
    """An app (never started) whose DryRun is the door's check of a payload."""
    app = eventflow.App(name="door")

    @app.handler(name="door")
    async def door(event: Any, context: eventflow.Context) -> None:
        return None

    return app, door


_DOOR, _DOOR_HANDLER = _door()


@settings(max_examples=400, deadline=None, derandomize=True)
@given(body=st.one_of(sqs_bodies(), st.text(max_size=50)))
@example(body="NaN")
@example(body='{"a": Infinity}')
@example(body=deep_array(5_000))
@example(body=deep_object(5_000))
@example(body=json.dumps(sns_envelope(UnsubscribeURL="http://[::1")))
@example(body="")
def test_decode_body_never_raises_and_hands_on_only_what_the_door_accepts(body: str) -> None:
    # the property of issue 13, item 1: whatever the body, decoding returns; what it does
    # not turn into an event it calls INVALID with a reason, and what it turns into an
    # event is a payload the app accepts (refused payloads are INVALID, not a crash later)
    kind, payload = decode_body(body)
    assert isinstance(kind, BodyKind)
    if kind is BodyKind.INVALID:
        assert isinstance(payload, str) and payload.strip(), payload
        return
    try:
        answer = _DOOR.invoke_nowait(_DOOR_HANDLER, payload, invocation_type="DryRun")
    except eventflow.InvalidPayload as exc:
        pytest.fail(f"decode_body returned {kind} for a payload the app refuses: {exc}")
    assert isinstance(answer, eventflow.InvocationResult) and answer.status_code == 204


# --------------------------------------------------------------------------- the real sources


# bodies that SQS itself takes (valid Unicode without lone surrogates, at most 256 KiB)
def _sendable(body: str) -> bool:
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return 0 < len(body.encode("utf-8")) < 200_000 and all(
        c in "\t\n\r" or ord(c) >= 0x20 for c in body
    )


sendable_bodies = sqs_bodies().filter(_sendable)
POISON = [
    "NaN",
    '{"a": Infinity}',
    deep_array(5_000),
    json.dumps(sns_envelope(UnsubscribeURL="http://[::1")),
]


async def _new_queue(sqs: Any, **attributes: str) -> str:
    name = f"ef-fuzz-{uuid.uuid4().hex[:12]}"
    created = await sqs.create_queue(
        QueueName=name, Attributes={"VisibilityTimeout": "30", **attributes}
    )
    return str(created["QueueUrl"])


async def _depth(sqs: Any, url: str) -> int:
    attrs = (
        await sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


async def _until(condition: Any, what: str, seconds: float = 20.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - progress made by the app and the server
            await anyio.sleep(0.02)


async def _sqs_source_scenario(endpoint: str, bodies: list[str]) -> None:
    session = AioSession()
    async with session.create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        url = await _new_queue(sqs)
        goods = [json.dumps({"good": i}) for i in range(3)]
        # good messages on both sides of the hostile ones: none may be held up by them
        for body in [goods[0], *bodies, goods[1]]:
            await sqs.send_message(QueueUrl=url, MessageBody=body)
        dlq = MemorySink()
        ran: list[Any] = []
        src = SQSSource(url, "h", endpoint_url=endpoint, wait_time_seconds=1, pollers=1)
        app = eventflow.App(sources=[src])

        @app.handler(name="h", dead_letter=dlq, max_retries=0)
        async def h(event: Any, context: eventflow.Context) -> None:
            ran.append(event)

        total = len(bodies) + 2
        async with app:
            await _until(
                lambda: len(ran) + len(dlq.messages) + src.statistics().test_events >= total,
                "every message reached an outcome",
            )
            # still serving: a fresh message and a direct invoke both run
            await sqs.send_message(QueueUrl=url, MessageBody=goods[2])
            await _until(lambda: {"good": 2} in ran, "a message sent after the poison ran")
            probe = await app.invoke(h, {"probe": True}, invocation_type="RequestResponse")
            assert probe.function_error is None
            await app.drain()
            stats = app.stats()
            await _until(lambda: src.statistics().held == 0, "every message was deleted")
        assert_conserved(stats)
        assert {"good": 0} in ran and {"good": 1} in ran
        for dead in dlq.messages:
            assert dead.attributes["ErrorMessage"].strip()
        # each message had one outcome: run, dead-lettered, or an S3 test event deleted
        assert len(ran) - 2 + len(dlq.messages) + src.statistics().test_events == total
        assert await _depth(sqs, url) == 0


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bodies=st.lists(sendable_bodies, min_size=1, max_size=4))
@example(bodies=POISON)
def test_sqs_source_survives_hostile_bodies(moto_endpoint: str, bodies: list[str]) -> None:
    asyncio.run(_sqs_source_scenario(moto_endpoint, bodies))


# attribute values a process that is not eventflow (or a corrupted one) may send
hostile_numbers = st.sampled_from(["NaN", "inf", "-inf", "1e999", "-1", "9" * 5_000, "x", ""])


@st.composite
def event_queue_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message in SQSEventQueue's format with a hostile body or hostile attributes."""
    attributes: dict[str, Any] = {
        "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
        "Handler": {"DataType": "String", "StringValue": "h"},
        "FirstEnqueued": {"DataType": "Number", "StringValue": f"{time.time():.3f}"},
        "Attempt": {"DataType": "Number", "StringValue": "0"},
    }
    body = json.dumps({"ok": True})
    if draw(st.booleans()):
        body = draw(sendable_bodies)
    else:
        name = draw(st.sampled_from(["FirstEnqueued", "Attempt", "NotBefore"]))
        value = draw(hostile_numbers)
        if value:
            attributes[name] = {"DataType": "String", "StringValue": value}
        else:
            attributes.pop(name, None)
    return {"MessageBody": body, "MessageAttributes": attributes}


async def _event_queue_scenario(endpoint: str, messages: list[dict[str, Any]]) -> None:
    session = AioSession()
    async with session.create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        url = await _new_queue(sqs)
        for m in messages:
            await sqs.send_message(QueueUrl=url, **m)
        dlq = MemorySink()
        ran: list[Any] = []
        queue = SQSEventQueue(
            url, endpoint_url=endpoint, region_name=REGION, wait_time_seconds=1, delete_linger=0.05
        )
        app = eventflow.App(queue=queue)

        @app.handler(name="h", dead_letter=dlq, max_retries=0)
        async def h(event: Any, context: eventflow.Context) -> None:
            ran.append(event)

        async with app:
            good = await app.invoke(h, {"good": True})
            await _until(lambda: {"good": True} in ran, "an event sent after the hostile ones ran")
            # every hostile message was looked at: run, dead-lettered or counted malformed
            await _until(
                lambda: queue.statistics().received >= len(messages) + 1,
                "every message was received",
            )
            probe = await app.invoke(h, {"probe": True}, invocation_type="RequestResponse")
            assert probe.function_error is None
            assert good.status_code == 202
            stats = app.stats()
        assert_conserved(stats)
        for dead in dlq.messages:
            assert dead.attributes["ErrorMessage"].strip()


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages=st.lists(event_queue_messages(), min_size=1, max_size=4))
def test_sqs_event_queue_survives_hostile_messages(
    moto_endpoint: str, messages: list[dict[str, Any]]
) -> None:
    asyncio.run(_event_queue_scenario(moto_endpoint, messages))


def test_sqs_event_queue_survives_poison_bodies(moto_endpoint: str) -> None:
    messages = []
    for body in POISON:
        messages.append(
            {
                "MessageBody": body,
                "MessageAttributes": {
                    "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                    "Handler": {"DataType": "String", "StringValue": "h"},
                    "FirstEnqueued": {"DataType": "Number", "StringValue": f"{time.time():.3f}"},
                    "Attempt": {"DataType": "Number", "StringValue": "0"},
                },
            }
        )
    asyncio.run(_event_queue_scenario(moto_endpoint, messages))
