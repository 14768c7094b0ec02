"""Fuzz: hostile SQS message bodies, through the decoding of each source and through the
real sources on moto. One bad message may fail its own event, never the app."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from aiobotocore.session import AioSession
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.aws import SQSEventQueue
from eventflow.aws._shapes import decode_body
from eventflow.aws._sqs_source import SQSSource
from eventflow.events._bodies import BodyKind
from eventflow.sinks import MemorySink
from fuzz_support import (
    LogRecorder,
    Verdict,
    assert_conserved,
    deep_array,
    deep_object,
    hostile_bodies,
    sns_envelope,
    sqs_bodies,
)

REGION = "us-east-1"


Door = Callable[[Any], "str | None"]


@pytest.fixture(scope="module")
def door() -> Iterator[Door]:
    """``door(payload)``: why a running app refuses ``payload`` at the door (a DryRun, which
    checks without queueing), or None if it takes it. One app for the whole module: it is
    started on a loop of its own, which runs only to start and to stop it."""

    @eventflow.handler(name="door")
    async def door_handler(event: Any, context: eventflow.Context) -> None:
        return None

    # a module's fixture outlives each test's log capture: this app logs to a recorder
    app = eventflow.App(
        name="door", handlers=[door_handler], concurrency=1, logger=LogRecorder().logger
    )
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app:
            started.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    task = loop.create_task(hold())
    loop.run_until_complete(started.wait())

    def refuses(payload: Any) -> str | None:
        try:
            answer = app.invoke_nowait(door_handler, payload, invocation_type="DryRun")
        except eventflow.InvalidPayload as exc:
            return str(exc)
        assert isinstance(answer, eventflow.InvocationResult) and answer.status_code == 204
        return None

    try:
        yield refuses
    finally:
        stop.set()
        loop.run_until_complete(task)
        loop.close()


@settings(max_examples=500, deadline=None, derandomize=True)
@given(body=st.one_of(sqs_bodies(), st.text(max_size=50)))
@example(body="NaN")
@example(body='{"a": Infinity}')
@example(body=deep_array(5_000))
@example(body=deep_object(5_000))
@example(body=json.dumps(sns_envelope(UnsubscribeURL="http://[::1")))
@example(body="")
def test_decode_body_never_raises_and_explains_what_it_refuses(door: Door, body: str) -> None:
    # issue 13, item 1: whatever the body, decoding returns; what it cannot turn into an
    # event it calls INVALID, with a reason for the dead letter
    kind, payload = decode_body(body)
    assert isinstance(kind, BodyKind)
    if kind is BodyKind.INVALID:
        assert isinstance(payload, str) and payload.strip(), payload
        return
    # what it hands on, the source submits: the app takes it, or refuses it at the door
    # with a reason (InvalidPayload, which the source sends down the failure path), and
    # nothing else (a RecursionError, say) may come out of the door
    refused = door(payload)
    assert refused is None or refused.strip()


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


async def _sqs_source_scenario(endpoint: str, door: Door, bodies: list[str]) -> None:
    session = AioSession()
    async with session.create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        url = await _new_queue(sqs)
        goods = [json.dumps({"good": i}) for i in range(3)]
        # good messages on both sides of the hostile ones: none may be held up by them
        for body in [goods[0], *bodies, goods[1]]:
            await sqs.send_message(QueueUrl=url, MessageBody=body)
        dlq = MemorySink()
        ran: list[Any] = []
        leaked: list[Any] = []
        src = SQSSource(url, "h", endpoint_url=endpoint, wait_time_seconds=1, pollers=1)
        app = eventflow.App(sources=[src])

        @app.handler(name="h", dead_letter=dlq, max_retries=0)
        async def h(event: Any, context: eventflow.Context) -> None:
            ran.append(event)
            # issue 13, items 1 and 3: a payload the door refuses never reaches a handler
            if door(event) is not None:
                leaked.append(event)

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
        assert not leaked, leaked
        assert {"good": 0} in ran and {"good": 1} in ran
        for dead in dlq.messages:
            assert dead.attributes["ErrorMessage"].strip()
        # each message had one outcome: run, dead-lettered, or an S3 test event deleted
        assert len(ran) - 2 + len(dlq.messages) + src.statistics().test_events == total
        assert await _depth(sqs, url) == 0


@settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bodies=st.lists(sendable_bodies, min_size=1, max_size=4))
@example(bodies=POISON)
def test_sqs_source_survives_hostile_bodies(
    moto_endpoint: str, door: Door, bodies: list[str]
) -> None:
    asyncio.run(_sqs_source_scenario(moto_endpoint, door, bodies))


# attribute values a process that is not eventflow (or a corrupted one) may send
hostile_numbers = st.sampled_from(["NaN", "inf", "-inf", "1e999", "-1", "9" * 5_000, "x", ""])


def _event_queue_message(body: str, **attributes: str | None) -> dict[str, Any]:
    """A message in SQSEventQueue's format; an attribute given as None is left out."""
    values: dict[str, str | None] = {
        "RequestID": str(uuid.uuid4()),
        "Handler": "h",
        "FirstEnqueued": f"{time.time():.3f}",
        "Attempt": "0",
        **attributes,
    }
    return {
        "MessageBody": body,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in values.items()
            if value is not None
        },
    }


@st.composite
def event_queue_messages(draw: st.DrawFn) -> tuple[dict[str, Any], Verdict]:
    """A message in SQSEventQueue's format with a hostile body or hostile attributes, and
    what must become of its body."""
    if draw(st.booleans()):
        body = draw(hostile_bodies.filter(lambda b: _sendable(b.raw().decode("utf-8", "replace"))))
        text = body.raw().decode("utf-8", "replace")
        verdict: Verdict = "any" if "\ufffd" in text else body.verdict
        return _event_queue_message(text), verdict
    name = draw(st.sampled_from(["FirstEnqueued", "Attempt", "NotBefore", "Handler"]))
    value = draw(hostile_numbers)
    return _event_queue_message(json.dumps({"ok": True}), **{name: value or None}), "any"


async def _event_queue_scenario(
    endpoint: str, door: Door, messages: list[tuple[dict[str, Any], Verdict]]
) -> None:
    session = AioSession()
    async with session.create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        url = await _new_queue(sqs)
        for m, _ in messages:
            await sqs.send_message(QueueUrl=url, **m)
        dlq = MemorySink()
        ran: list[str] = []
        leaked: list[Any] = []
        queue = SQSEventQueue(
            url, endpoint_url=endpoint, region_name=REGION, wait_time_seconds=1, delete_linger=0.05
        )
        app = eventflow.App(queue=queue)

        @app.handler(name="h", dead_letter=dlq, max_retries=0)
        async def h(event: Any, context: eventflow.Context) -> None:
            ran.append(context.aws_request_id)
            # issue 13, items 1 and 3: a payload the door refuses never reaches a handler
            if door(event) is not None:
                leaked.append(event)

        async with app:
            good = await app.invoke(h, {"good": True})
            await _until(lambda: good.request_id in ran, "an event sent after the hostile ones ran")
            # every hostile message was looked at: run, dead-lettered or counted malformed
            await _until(
                lambda: queue.statistics().received >= len(messages) + 1,
                "every message was received",
            )
            probe = await app.invoke(h, {"probe": True}, invocation_type="RequestResponse")
            assert probe.function_error is None
            stats = app.stats()
        assert_conserved(stats)
        assert not leaked, leaked
        for dead in dlq.messages:
            assert dead.attributes["ErrorMessage"].strip()
        for m, verdict in messages:
            if verdict == "refuse":
                # a payload the door refuses never reaches the handler (issue 13, item 3)
                rid = m["MessageAttributes"]["RequestID"]["StringValue"]
                assert rid not in ran, m["MessageBody"][:200]


@settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages=st.lists(event_queue_messages(), min_size=1, max_size=4))
@example(
    messages=[
        *[(_event_queue_message(body), "refuse") for body in POISON[:3]],
        (_event_queue_message(POISON[3]), "accept"),  # to this queue, an envelope is a payload
    ]
)
def test_sqs_event_queue_survives_hostile_messages(
    moto_endpoint: str, door: Door, messages: list[tuple[dict[str, Any], Verdict]]
) -> None:
    asyncio.run(_event_queue_scenario(moto_endpoint, door, messages))
