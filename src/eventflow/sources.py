"""Sources: where events come from besides ``app.invoke()``.

A source is an object with ``async def run(self, app, *, task_status)``: the app starts
it in its task group once the workers run, and it submits events with
:meth:`eventflow.App.submit`, passing a ``settle`` callback that the app calls exactly
once with the event's request ID and terminal :class:`Outcome`. That is how a
queue-backed source knows when to delete a message (``SUCCEEDED`` / ``FAILED``: the event
is done, its dead letter sent) or to give it back (``RELEASED``: the app stopped first;
the source makes it visible again instead of the app spilling it; ``UNDELIVERED``: its
failure records could not be sent; the source makes it visible again after a backoff).

``run`` is cancelled when the app starts shutting down (intake stops first); a source that
is also an async context manager is entered before the app starts and exited after every
event has been settled, so it can flush batched deletes and release what is left there.

:class:`MemorySource` is the in-memory implementation that tests and docs use;
:class:`Schedule` submits EventBridge's Scheduled Event on a ``rate()`` or ``cron()``
expression.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio
from anyio.abc import TaskStatus

from ._payload import check_payload
from ._schedule import Schedule as Schedule
from ._schedule import ScheduleStatistics as ScheduleStatistics

if TYPE_CHECKING:
    from ._app import App
    from ._handler import Handler

__all__ = ("MemorySource", "Outcome", "Schedule", "ScheduleStatistics", "Settle", "Source")


class Outcome(enum.Enum):
    """How an event submitted by a source ended."""

    SUCCEEDED = "succeeded"
    """A handler attempt succeeded (and its on-success record was sent)."""
    FAILED = "failed"
    """Retries exhausted or too old; its dead letter / on-failure record was sent."""
    RELEASED = "released"
    """The app stopped before the event finished: give it back to where it came from."""
    UNDELIVERED = "undelivered"
    """It could not be finished here: none of its failure records (dead letter, on-failure)
    could be sent, or eventflow itself failed. Give it back after a backoff, so that it is
    tried again later and, if it keeps coming back, reaches the queue's redrive policy."""


Settle = Callable[[str, Outcome], None]
"""Called once per submitted event, on the event loop, with its request ID and outcome."""


@runtime_checkable
class Source(Protocol):
    """Submits events to an app until cancelled."""

    async def run(self, app: App, *, task_status: TaskStatus[None]) -> None:
        """Call ``task_status.started()`` once receiving, then submit events until cancelled."""
        ...


class MemorySource:
    """An in-memory source: :meth:`put` payloads, read :attr:`settled` outcomes.

    It records every outcome and gives nothing back by itself: an event settled
    ``RELEASED`` or ``UNDELIVERED`` is yours to :meth:`put` again.

    Args:
        handler: The handler (or its name) every event goes to.
        max_buffer: Bound on payloads put and not yet submitted.
    """

    def __init__(self, handler: str | Handler, *, max_buffer: int = 1000) -> None:
        self.handler = handler
        self.settled: dict[str, Outcome] = {}
        self.submitted: list[str] = []
        self._send, self._receive = anyio.create_memory_object_stream[Any](max_buffer)

    async def put(self, payload: Any) -> None:
        """Queue ``payload`` for submission (waits while the buffer is full).

        Raises:
            InvalidPayload: the payload breaks a payload limit (nothing is queued).
        """
        check_payload(payload)  # refused here, not by submit() inside run()
        await self._send.send(payload)

    def _settle(self, request_id: str, outcome: Outcome) -> None:
        self.settled[request_id] = outcome

    async def run(self, app: App, *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        async with self._receive:
            async for payload in self._receive:
                accepted = await app.submit(self.handler, payload, settle=self._settle)
                self.submitted.append(accepted.request_id)

    def close(self) -> None:
        """No more payloads: ``run`` returns once the buffer is empty."""
        self._send.close()

    async def __aenter__(self) -> MemorySource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # the app exits its sources after settling every event: nothing more can arrive
        self._send.close()
        self._receive.close()
