"""MemoryQueue, the in-memory SharedQueue: apps sharing it, its bounds and statistics."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import eventflow
from eventflow.queues import MemoryQueue, QueuedEvent, SharedQueue
from eventflow.testing import VirtualClock


def test_it_implements_the_protocol_and_checks_its_options() -> None:
    assert isinstance(MemoryQueue(), SharedQueue)
    with pytest.raises(eventflow.ConfigurationError, match="maxsize"):
        MemoryQueue(maxsize=0)
    with pytest.raises(eventflow.ConfigurationError, match="batch_size"):
        MemoryQueue(batch_size=True)
    with pytest.raises(eventflow.ConfigurationError, match="shared event queue"):
        eventflow.App(queue=object())  # type: ignore[arg-type]


def test_a_queued_event_is_a_frozen_dataclass_built_by_position_or_keyword() -> None:
    by_position = QueuedEvent("r-1", "work", {"n": 1}, 12.5, 2, {"traceparent": "t"})
    by_keyword = QueuedEvent(
        request_id="r-1",
        handler="work",
        payload={"n": 1},
        first_enqueued=12.5,
        attempts=2,
        trace_context={"traceparent": "t"},
    )
    assert by_position == by_keyword
    assert [f.name for f in dataclasses.fields(QueuedEvent)] == list(QueuedEvent.__match_args__)
    assert [getattr(by_position, name) for name in QueuedEvent.__match_args__] == [
        "r-1",
        "work",
        {"n": 1},
        12.5,
        2,
        {"traceparent": "t"},
    ]
    defaults = QueuedEvent("r-2", "work", None, 1.0)
    assert (defaults.attempts, defaults.trace_context) == (0, None)
    assert dataclasses.replace(defaults, attempts=3).attempts == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.attempts = 1  # type: ignore[misc]


async def test_apps_sharing_a_queue_run_each_event_once() -> None:
    queue = MemoryQueue()
    clock = VirtualClock()
    front = eventflow.App(name="front", queue=queue, clock=clock)
    back = eventflow.App(name="back", queue=queue, clock=clock)
    ran_in: list[str] = []

    for app in (front, back):

        @app.handler(name="job")
        async def job(event: Any, context: eventflow.Context, app: eventflow.App = app) -> None:
            ran_in.append(app.name)

    # the front app stops right after invoking: the event runs there or stays for the back
    async with front:
        accepted = await front.invoke("job", {"k": 1})
        assert front.stats().enqueued == 1
    async with back:
        await back.drain()
    assert accepted.status_code == 202
    assert len(ran_in) == 1  # once, in whichever app received it first
    assert queue.statistics().deleted == 1 and len(queue) == 0


async def test_an_event_for_a_handler_no_app_serves_is_set_aside_and_counted() -> None:
    queue = MemoryQueue()
    await queue.put(QueuedEvent("r-1", "nobody", {"k": 1}, first_enqueued=0.0))
    app = eventflow.App(queue=queue, clock=VirtualClock())

    @app.handler
    async def somebody(event: Any, context: eventflow.Context) -> None:
        return None

    async with app:
        await app.drain()
    stats = queue.statistics()
    assert stats.undeliverable == 1 and stats.deliveries == 1
    [(event, reason)] = queue.undeliverable
    assert event.request_id == "r-1" and "No handler 'nobody'" in reason
    assert app.stats().received == 0
