"""The retry scheduler: the pure timer wheel, driven by one task on the app's clock.

The driver sleeps until the wheel's next deadline (not every tick), wakes early when an
earlier retry is scheduled, and hands due events to the queue's retry lane.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ._clock import Clock, TimerHandle
from ._event import Event
from ._wheel import TimerWheel, WheelStatistics

__all__ = ("RetryScheduler",)


class RetryScheduler:
    """Schedules retries of events and releases them when due."""

    __slots__ = ("_clock", "_fut", "_on_due", "_target", "_wheel")

    def __init__(
        self, wheel: TimerWheel[Event], clock: Clock, on_due: Callable[[Event], None]
    ) -> None:
        self._wheel = wheel
        self._clock = clock
        self._on_due = on_due
        self._fut: asyncio.Future[None] | None = None
        self._target: float | None = None

    def __len__(self) -> int:
        return len(self._wheel)

    def schedule(self, deadline: float, event: Event) -> None:
        """Release ``event`` at ``deadline``. Raises SchedulerFull at capacity."""
        event.timer = self._wheel.schedule(deadline, event)
        event.wait_for_retry()
        target = self._target
        if target is None or deadline < target:
            self._wake()

    def _wake(self) -> None:
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def run(self) -> None:
        """Release due events forever; cancel to stop (pending timers stay in the wheel)."""
        loop = asyncio.get_running_loop()
        wheel = self._wheel
        clock = self._clock
        on_due = self._on_due
        while True:
            deadline = wheel.next_deadline()
            self._target = deadline
            fut = self._fut = loop.create_future()
            handle: TimerHandle | None = None
            if deadline is not None:
                handle = clock.call_at(deadline, self._wake)
            try:
                await fut
            finally:
                self._fut = None
                if handle is not None:
                    handle.cancel()
            for event in wheel.advance(clock.now()):
                event.timer = None
                on_due(event)

    def release_now(self, event: Event) -> bool:
        """Release ``event`` at once if it is waiting here; False if it is not."""
        timer = event.timer
        if timer is None or not self._wheel.cancel(timer):  # type: ignore[arg-type]
            return False
        event.timer = None
        self._on_due(event)
        return True

    def drain(self) -> list[Event]:
        """Remove and return every event still waiting for its retry."""
        events = self._wheel.drain()
        for event in events:
            event.timer = None
        return events

    def statistics(self) -> WheelStatistics:
        return self._wheel.statistics()
