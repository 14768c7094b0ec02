"""The conformance kits of eventflow.testing: the in-process implementations pass them, and
implementations that break a rule fail them with a sentence saying which."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from anyio.abc import TaskStatus

from eventflow.queues import Defer, MemoryQueue, QueuedEvent
from eventflow.sinks import JsonlSink, MemorySink, Message, Sink
from eventflow.sources import AppHost, Settle
from eventflow.stores import Claim, MemoryStore
from eventflow.testing import check_shared_queue, check_sink, check_store


async def test_memory_sink_passes() -> None:
    async def received(sink: Sink, count: int) -> Sequence[Message]:
        assert isinstance(sink, MemorySink)
        return sink.messages

    await check_sink(MemorySink, received=received)


async def test_jsonl_sink_passes(tmp_path: Path) -> None:
    made = itertools.count()

    async def received(sink: Sink, count: int) -> Sequence[Message]:
        assert isinstance(sink, JsonlSink)
        return sink.read()

    await check_sink(lambda: JsonlSink(tmp_path / f"{next(made)}.jsonl"), received=received)


class LosingSink(MemorySink):
    """Drops every third message."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def send(self, message: Message) -> None:
        self.count += 1
        if self.count % 3:
            await super().send(message)


async def test_a_sink_that_loses_messages_fails() -> None:
    async def received(sink: Sink, count: int) -> Sequence[Message]:
        assert isinstance(sink, MemorySink)
        return sink.messages

    with pytest.raises(AssertionError, match="lost, repeated or changed"):
        await check_sink(LosingSink, received=received)


class NoConflictStore(MemoryStore):
    """Never reports a conflict."""

    async def claim(
        self, key: str, payload: Any, *, now: float, lease_until: float, validate: bool
    ) -> Claim:
        return await super().claim(key, payload, now=now, lease_until=lease_until, validate=False)


async def test_a_store_without_conflicts_fails() -> None:
    with pytest.raises(AssertionError, match="must be a CONFLICT"):
        await check_store(NoConflictStore)


async def test_memory_store_passes() -> None:
    await check_store(MemoryStore)


class DoublingQueue(MemoryQueue):
    """Stores every event twice: each runs twice."""

    async def put(self, event: QueuedEvent) -> None:
        await super().put(event)
        await super().put(event)


class _HastyHost:
    """The app as a queue sees it, except that every retry delay is cut to nothing."""

    def __init__(self, app: AppHost) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    async def deliver(self, event: QueuedEvent, *, settle: Settle, defer: Defer) -> None:
        await self._app.deliver(event, settle=settle, defer=lambda rid, delay: defer(rid, 0.0))


class HastyQueue:
    """A MemoryQueue that delivers a retry at once, ignoring its delay."""

    def __init__(self) -> None:
        self.inner = MemoryQueue()

    async def put(self, event: QueuedEvent) -> None:
        await self.inner.put(event)

    async def wait_empty(self) -> None:
        await self.inner.wait_empty()

    async def run(self, app: AppHost, *, task_status: TaskStatus[None]) -> None:
        await self.inner.run(_HastyHost(app), task_status=task_status)


async def test_memory_queue_passes() -> None:
    await check_shared_queue(MemoryQueue)


async def test_a_queue_that_runs_events_twice_fails() -> None:
    with pytest.raises(AssertionError, match="more than once"):
        await check_shared_queue(DoublingQueue)


async def test_a_queue_that_ignores_retry_delays_fails() -> None:
    with pytest.raises(AssertionError, match="before their delays"):
        await check_shared_queue(HastyQueue)
