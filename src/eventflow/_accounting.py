"""The app's accounting: its counters, ``stats()``, idle waiting and the one ``finish``.

Every accepted event is in exactly one place at any moment::

    received == succeeded + failed + undelivered + requeued + queued + in_flight + scheduled

``queued`` and ``scheduled`` are the lengths of the event queue and the retry scheduler;
everything else is a counter here. An event leaves the engine through :meth:`finish`,
which moves it from ``in_flight`` to its terminal counter and wakes ``drain()`` once the
app is idle (the worker's inline path does the same three steps in place for a plain
success, where the call would cost a twentieth of the event); the other counters
(attempts, errors, retries, dead letters, ...) describe what happened on the way and
never enter the equation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sized
from typing import TYPE_CHECKING

from ._contracts import Outcome
from ._results import Stats

if TYPE_CHECKING:
    from ._clock import Clock

__all__ = ("Accounting",)

# finish() compares with globals: an enum member read off its class is an unspecialised
# attribute lookup on every call
_SUCCEEDED = Outcome.SUCCEEDED
_FAILED = Outcome.FAILED


class Accounting:
    """Counters of one app (see :class:`eventflow.Stats` for each), and idle waiting.

    Counters are plain attributes: the engine adds to them inline on its hot path.
    """

    __slots__ = (
        "_clock",
        "_name",
        "_queue",
        "_scheduler",
        "attempts",
        "dead_letter_errors",
        "dead_lettered",
        "deduplicated",
        "destination_errors",
        "enqueued",
        "errors",
        "expired",
        "failed",
        "in_flight",
        "internal_errors",
        "received",
        "requeued",
        "retries",
        "returned",
        "succeeded",
        "undelivered",
        "waiters",
    )

    def __init__(self, name: str, queue: Sized, scheduler: Sized, clock: Clock) -> None:
        self._name = name
        self._queue = queue
        self._scheduler = scheduler
        self._clock = clock
        # the futures of wait_idle() callers; the engine checks it before wake_idle()
        self.waiters: list[asyncio.Future[None]] = []
        self.received = self.succeeded = self.failed = self.undelivered = 0
        self.in_flight = self.retries = self.expired = self.attempts = self.errors = 0
        self.dead_lettered = self.dead_letter_errors = self.destination_errors = 0
        self.deduplicated = self.enqueued = self.requeued = self.returned = 0
        self.internal_errors = 0

    def finish(self, outcome: Outcome) -> None:
        """An event in flight reached its terminal ``outcome``: the one place it leaves."""
        self.in_flight -= 1
        if outcome is _SUCCEEDED:
            self.succeeded += 1
        elif outcome is _FAILED:
            self.failed += 1
        else:  # RELEASED or UNDELIVERED
            self.undelivered += 1
        if self.waiters:
            self.wake_idle()

    def idle(self) -> bool:
        """Nothing queued, running or waiting for a retry."""
        return not self.in_flight and not len(self._queue) and not len(self._scheduler)

    def wake_idle(self) -> None:
        """Wake every ``wait_idle`` caller, if the app is idle now."""
        if self.waiters and self.idle():
            for fut in self.waiters:
                if not fut.done():
                    fut.set_result(None)
            self.waiters.clear()

    async def wait_idle(self, timeout: float | None) -> None:
        """Wait until the app is idle; ``timeout`` in seconds on the app's clock.

        Raises:
            TimeoutError: the timeout passed first.
        """
        if self.idle():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        handle = None
        if timeout is not None:
            seconds = timeout

            def expire() -> None:
                if not fut.done():
                    fut.set_exception(
                        TimeoutError(
                            f"App {self._name!r} did not drain within {seconds:g} s: "
                            f"{len(self._queue)} queued, {self.in_flight} in flight, "
                            f"{len(self._scheduler)} waiting for a retry."
                        )
                    )

            handle = self._clock.call_at(self._clock.now() + timeout, expire)
        try:
            await fut
        finally:
            if handle is not None:
                handle.cancel()
            if fut in self.waiters:
                self.waiters.remove(fut)

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "undelivered": self.undelivered,
            "queued": len(self._queue),
            "in_flight": self.in_flight,
            "scheduled": len(self._scheduler),
            "retries": self.retries,
            "expired": self.expired,
            "attempts": self.attempts,
            "errors": self.errors,
            "dead_lettered": self.dead_lettered,
            "dead_letter_errors": self.dead_letter_errors,
            "destination_errors": self.destination_errors,
            "deduplicated": self.deduplicated,
            "enqueued": self.enqueued,
            "requeued": self.requeued,
            "returned": self.returned,
            "internal_errors": self.internal_errors,
        }

    def stats(self) -> Stats:
        """A frozen snapshot of the counters."""
        return Stats(**self.as_dict())
