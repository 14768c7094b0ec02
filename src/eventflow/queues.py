"""Shared event queues: an event queue that outlives the process, for ``App(queue=...)``.

By default an app keeps its accepted events in a bounded in-memory queue: fast, and gone
with the process. A *shared queue* keeps them elsewhere, so that any number of apps
(processes, machines) serve one queue: ``invoke`` in one process may run in another, a
crash means redelivery instead of loss, and capacity grows by adding processes.
:class:`eventflow.aws.SQSEventQueue` is the one for production; :class:`MemoryQueue`
is the in-memory implementation that tests and docs use (apps in one process sharing it).
:class:`SQLiteQueue` keeps the events in a SQLite file: durable without AWS, shared by
the processes of one machine.

The protocol is small. The app calls :meth:`SharedQueue.put` for every ``Event``
invocation and answers 202 once it returns. It runs :meth:`SharedQueue.run` in its task
group, which receives events and hands each to :meth:`eventflow.App.deliver` with two
callbacks, like a source's: ``settle(request_id, outcome)`` once the event's outcome in
this process is known (``SUCCEEDED`` / ``FAILED``: delete it; ``RELEASED``: the app stopped
first, give it back unchanged), and ``defer(request_id, delay)`` when an attempt failed
and a retry is due in ``delay`` seconds: the queue keeps the event and delivers it again,
to whichever app takes it, after the delay. Attempts travel with the event
(:attr:`QueuedEvent.attempts`), so retries and the event's age are the same wherever it
runs.
"""

from __future__ import annotations

import functools
import itertools
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from anyio.abc import TaskStatus

from ._contracts import AppHost, Defer, Outcome, QueuedEvent, SharedQueue
from ._errors import AppClosed, ConfigurationError, UnknownHandler

if TYPE_CHECKING:
    from ._sqlite_queue import SQLiteQueue, SQLiteQueueStatistics

_log = structlog.get_logger("eventflow.queue")

__all__ = (
    "Defer",
    "MemoryQueue",
    "MemoryQueueStatistics",
    "QueuedEvent",
    "SQLiteQueue",
    "SQLiteQueueStatistics",
    "SharedQueue",
)


@dataclass(frozen=True, slots=True)
class MemoryQueueStatistics:
    """A snapshot of a :class:`MemoryQueue`.

    Attributes:
        maxsize: Bound on events stored (visible, delayed and delivered together).
        visible: Events ready for delivery.
        delayed: Events waiting for a retry delay.
        delivered: Events handed to an app and not yet settled.
        put: Events stored by ``put``.
        deliveries: Deliveries made (first deliveries and retries).
        deleted: Events removed at a terminal outcome.
        released: Deliveries given back unchanged by an app that stopped.
        returned: Deliveries given back because their failure records could not be sent
            (``Outcome.UNDELIVERED``); each is delivered again after ``undelivered_delay``.
        undeliverable: Events set aside because the app that took them has no such
            handler (see :attr:`MemoryQueue.undeliverable`).
    """

    maxsize: int
    visible: int
    delayed: int
    delivered: int
    put: int
    deliveries: int
    deleted: int
    released: int
    undeliverable: int
    returned: int = 0


class _Stored:
    __slots__ = ("attempts", "event", "receipt")

    def __init__(self, event: QueuedEvent) -> None:
        self.event = event
        self.attempts = event.attempts  # attempts started before the next delivery
        self.receipt = 0


class MemoryQueue:
    """A shared event queue in memory: apps in one process (one event loop) share it.

    It behaves like :class:`eventflow.aws.SQSEventQueue` without the durability: a
    delivered event stays stored until its app settles it, a retry waits out its delay
    (on the delivering app's clock, so virtual time drives it in tests) and is then
    delivered to whichever app asks first.

    Args:
        maxsize: Bound on events stored; ``put`` waits for room beyond it.
        batch_size: Events one app takes at a time (its hold bound is its concurrency
            plus this).
        undelivered_delay: Seconds an event whose failure records could not be sent
            waits before it is delivered again (``Outcome.UNDELIVERED``).
    """

    def __init__(
        self, *, maxsize: int = 100_000, batch_size: int = 10, undelivered_delay: float = 60.0
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigurationError(f"maxsize must be an integer >= 1, got {maxsize!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
        if not isinstance(undelivered_delay, int | float) or not 0 <= undelivered_delay < 1e9:
            raise ConfigurationError(
                f"undelivered_delay must be a number of seconds >= 0, got {undelivered_delay!r}."
            )
        self._maxsize = maxsize
        self._batch = batch_size
        self._undelivered_delay = float(undelivered_delay)
        self._visible: deque[_Stored] = deque()
        self._delayed: dict[int, _Stored] = {}
        self._delivered: dict[int, _Stored] = {}
        self._receipts = itertools.count(1)
        self._changed = anyio.Event()
        self._put = self._deliveries = self._deleted = self._released = self._returned = 0
        self.undeliverable: list[tuple[QueuedEvent, str]] = []
        """Events no app could run (an unknown handler), with the reason."""

    def __len__(self) -> int:
        return len(self._visible) + len(self._delayed) + len(self._delivered)

    def __repr__(self) -> str:
        return f"<MemoryQueue {len(self)} stored>"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def put(self, event: QueuedEvent) -> None:
        while len(self) >= self._maxsize:
            await self._wait_change()
        self._visible.append(_Stored(event))
        self._put += 1
        self._notify()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    async def run(self, app: AppHost, *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        held: set[int] = set()
        bound = app.concurrency + self._batch

        def settle(receipt: int, request_id: str, outcome: Outcome) -> None:
            held.discard(receipt)
            stored = self._delivered.pop(receipt, None)
            if stored is None:
                return
            if outcome is Outcome.RELEASED:
                stored.attempts -= 1  # taken back: the delivery ran no attempt here
                self._visible.appendleft(stored)
                self._released += 1
            elif outcome is Outcome.UNDELIVERED:
                # kept, and delivered again after a backoff: its failure records are owed
                self._returned += 1
                self._delay(app, receipt, stored, self._undelivered_delay)
            else:
                self._deleted += 1
            self._notify()

        def defer(receipt: int, request_id: str, delay: float) -> None:
            held.discard(receipt)
            stored = self._delivered.pop(receipt, None)
            if stored is None:
                return
            self._delay(app, receipt, stored, delay)

        while True:
            while not self._visible or len(held) > bound - self._batch:
                await self._wait_change()
            for _ in range(min(self._batch, len(self._visible))):
                stored = self._visible.popleft()
                receipt = next(self._receipts)
                stored.receipt = receipt
                self._delivered[receipt] = stored
                held.add(receipt)
                self._deliveries += 1
                ev = stored.event
                queued = QueuedEvent(
                    ev.request_id,
                    ev.handler,
                    ev.payload,
                    ev.first_enqueued,
                    stored.attempts,
                    ev.trace_context,
                )
                # the delivery is an attempt from now on, even if the app dies running it
                stored.attempts += 1
                try:
                    await app.deliver(
                        queued,
                        settle=functools.partial(settle, receipt),
                        defer=functools.partial(defer, receipt),
                    )
                except AppClosed:
                    settle(receipt, ev.request_id, Outcome.RELEASED)
                    return
                except UnknownHandler as exc:
                    # this app does not serve it: set it aside, counted and logged, not lost
                    held.discard(receipt)
                    del self._delivered[receipt]
                    self.undeliverable.append((ev, str(exc)))
                    _log.error(
                        "queue.undeliverable",
                        request_id=ev.request_id,
                        handler=ev.handler,
                        attempt=ev.attempts,
                        reason=str(exc),
                    )
                    self._notify()

    def _delay(self, app: AppHost, receipt: int, stored: _Stored, delay: float) -> None:
        # on the delivering app's clock, so that virtual time drives it in tests
        self._delayed[receipt] = stored

        def due() -> None:
            if self._delayed.pop(receipt, None) is stored:
                self._visible.append(stored)
                self._notify()

        clock = app.clock
        clock.call_at(clock.now() + max(0.0, delay), due)
        self._notify()

    async def wait_empty(self) -> None:
        while len(self):
            await self._wait_change()

    def statistics(self) -> MemoryQueueStatistics:
        """A snapshot of the queue's contents and counters."""
        return MemoryQueueStatistics(
            maxsize=self._maxsize,
            visible=len(self._visible),
            delayed=len(self._delayed),
            delivered=len(self._delivered),
            put=self._put,
            deliveries=self._deliveries,
            deleted=self._deleted,
            released=self._released,
            undeliverable=len(self.undeliverable),
            returned=self._returned,
        )


def __getattr__(name: str) -> Any:
    # the SQLite queue is imported on first use, so that importing eventflow loads no sqlite3
    if name in ("SQLiteQueue", "SQLiteQueueStatistics"):
        from . import _sqlite_queue

        return getattr(_sqlite_queue, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
