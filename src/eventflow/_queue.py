"""The bounded event queue between ``invoke`` and the worker pool.

Two lanes: fresh events, bounded by ``maxsize`` (producers wait or get ``QueueFull``),
and retries handed over by the scheduler, which the wheel's capacity already bounds and
which workers take first so a retry runs on time. A worker takes an event only when it
is free, so "queued" always means "accepted and not started".

It is a deque with waiter futures rather than an ``asyncio.Queue`` or an anyio stream:
the hot path is ``put_nowait`` / ``get_nowait``, a few bytecodes each.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from ._errors import QueueFull
from ._event import Event

__all__ = ("EventQueue", "QueueStatistics")


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """A snapshot of the queue.

    Attributes:
        maxsize: The bound on fresh events accepted and not started.
        fresh: Fresh events waiting for a worker.
        retries: Retries due and waiting for a worker.
        parked: Events taken at their handler's concurrency cap, waiting for a slot.
        waiting_producers: ``invoke()`` calls waiting for room.
        idle_workers: Workers waiting for an event.
    """

    maxsize: int
    fresh: int
    retries: int
    parked: int
    waiting_producers: int
    idle_workers: int


class EventQueue:
    """Bounded two-lane FIFO of :class:`Event` with waiting producers and workers."""

    __slots__ = ("_fresh", "_getters", "_maxsize", "_parked", "_putters", "_retries", "_waking")

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._fresh: deque[Event] = deque()
        self._retries: deque[Event] = deque()
        self._parked = 0
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        # idle workers woken and not yet running; one at a time, each wakes the next
        self._waking = 0

    def __len__(self) -> int:
        """Events accepted and not started: both lanes plus parked events."""
        return len(self._fresh) + len(self._retries) + self._parked

    def full(self) -> bool:
        return len(self._fresh) + self._parked >= self._maxsize

    @staticmethod
    def _wake(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _wake_worker(self) -> None:
        # Wake one idle worker; it wakes the next only if work is still left when it runs,
        # so a burst of puts does not wake a thousand workers for a few events.
        getters = self._getters
        while getters:
            fut = getters.popleft()
            if not fut.done():
                fut.set_result(None)
                self._waking += 1
                return

    def put_nowait(self, event: Event) -> None:
        if len(self._fresh) + self._parked >= self._maxsize:
            raise QueueFull(
                f"The event queue is full ({self._maxsize} events waiting for a worker); "
                "await app.invoke() to wait for room, or raise App(queue_size=...)."
            )
        self._fresh.append(event)
        # a worker already woken takes this event too, or wakes the next: none to wake
        if not self._waking and self._getters:
            self._wake_worker()

    async def wait_for_room(self) -> None:
        """Wait until a fresh event fits (returns at once if it does)."""
        while len(self._fresh) + self._parked >= self._maxsize:
            fut = asyncio.get_running_loop().create_future()
            self._putters.append(fut)
            try:
                await fut
            except BaseException:
                fut.cancel()
                # pass the wake-up on, so a cancelled producer does not swallow it
                if fut.done() and not fut.cancelled() and not self.full():
                    self._wake(self._putters)
                raise

    def wake_all_producers(self) -> None:
        """Wake every waiting producer (at shutdown, so they can see the app closing)."""
        while self._putters:
            fut = self._putters.popleft()
            if not fut.done():
                fut.set_result(None)

    def put_retry(self, event: Event) -> None:
        self._retries.append(event)
        if self._getters and not self._waking:
            self._wake_worker()

    def get_nowait(self) -> Event | None:
        """The next event (retries first), or ``None`` when both lanes are empty."""
        if self._retries:
            return self._retries.popleft()
        if self._fresh:
            event = self._fresh.popleft()
            if self._putters:
                self._wake(self._putters)
            return event
        return None

    def lanes(self) -> tuple[deque[Event], deque[Event], deque[asyncio.Future[None]]]:
        """The fresh lane, the retry lane and the waiting producers, for a worker loop.

        While the retry lane and the producers are empty, ``fresh.popleft()`` is exactly
        what :meth:`get_nowait` does, without the call; the worker loop
        (``WorkerPool.work``) takes so on its hot path, and calls ``get_nowait``
        otherwise. Nothing else may change them.
        """
        return self._fresh, self._retries, self._putters

    async def get(self) -> Event:
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            fut = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled():
                    # woken, then cancelled: hand the wake-up on
                    self._waking -= 1
                    if (self._fresh or self._retries) and not self._waking:
                        self._wake_worker()
                else:
                    fut.cancel()
                raise
            self._waking -= 1
            event = self.get_nowait()
            if event is not None:
                # wake two more while work is left: a burst reaches every idle worker in
                # log2(concurrency) loop iterations, while no-op work wakes almost none
                for _ in range(2):
                    if self._getters and self._waking < len(self._fresh) + len(self._retries):
                        self._wake_worker()
                return event

    def park(self) -> None:
        """An event was taken but must wait for its handler's cap: it still counts."""
        self._parked += 1

    def unpark(self) -> None:
        self._parked -= 1
        if self._putters:
            self._wake(self._putters)

    def drain(self) -> list[Event]:
        """Remove and return every waiting event (retries first); used at shutdown."""
        out = [*self._retries, *self._fresh]
        self._retries.clear()
        self._fresh.clear()
        return out

    def statistics(self) -> QueueStatistics:
        return QueueStatistics(
            maxsize=self._maxsize,
            fresh=len(self._fresh),
            retries=len(self._retries),
            parked=self._parked,
            waiting_producers=sum(1 for f in self._putters if not f.done()),
            idle_workers=sum(1 for f in self._getters if not f.done()),
        )
