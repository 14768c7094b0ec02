"""SQSSource: bodies beyond a payload limit take their own failure path; the others run.

Each body is JSON that Python's ``json.loads`` takes: NaN, nesting deeper than the bound, a
lone surrogate. Such a message is rejected (dead-lettered, no attempt) with the limit it
breaks, and the source and the app go on. (On ``SQSEventQueue`` such a body is malformed
and left to the queue's redrive policy: tests/aws/test_poison_messages.py.)
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from test_sqs_source import make_queue, queue_depth, source

import eventflow
from eventflow.sinks import MemorySink

BODIES = {
    "nan": ('{"price": NaN}', "NaN is not a JSON value"),
    "deep": ("[" * 600 + "]" * 600, "more than 500 levels deep"),
    "surrogate": ('{"name": "caf\\ud800"}', "lone surrogate"),
}


async def test_sqs_source_rejects_bodies_beyond_a_limit_and_goes_on(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws, unique_name)
    for body, _ in BODIES.values():
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
            while len(dlq.messages) < len(BODIES) or not ran:  # noqa: ASYNC110 - bounded
                await anyio.sleep(0.02)
        await app.drain()
        stats = app.stats()
    assert ran == [{"ok": 1}]
    errors = {json.loads(m.body): m.attributes["ErrorMessage"] for m in dlq.messages}
    for body, says in BODIES.values():
        assert says in errors[body]
    assert stats.failed == len(BODIES) and stats.attempts == 1 and stats.retries == 0
    assert src.statistics().rejected == len(BODIES)
    assert await queue_depth(aws, url) == 0
