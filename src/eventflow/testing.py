"""Tools for testing code that runs on eventflow: virtual time and conformance kits.

Lambda's default retry schedule spans three minutes and an event may live six hours;
nobody wants a test suite that waits for that. Pass a :class:`VirtualClock` to the app
and move time yourself::

    clock = VirtualClock()
    async with eventflow.App(clock=clock, handlers=[flaky]) as app:
        await app.invoke(flaky, {"n": 1})
        await clock.advance(60)      # the first retry runs now, at exactly +60 s
        await clock.advance(120)     # and the second at +180 s

or let time jump to the next deadline whenever the program is idle::

    async with clock.autojump():
        await app.drain()            # returns as soon as every retry has run

Only what reads the app's clock is virtual: retry delays, event ages, attempt
timeouts, sink backoff and ``drain(timeout=...)``. A handler that wants to wait in
virtual time awaits :meth:`VirtualClock.sleep`.

Whoever implements an extension protocol runs its kit, as trio's users run
``check_one_way_stream``: :func:`check_shared_queue`, :func:`check_sink` and
:func:`check_store` raise :class:`AssertionError` at the first broken rule.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

from ._conformance import check_shared_queue, check_sink, check_store

__all__ = ("FakeClock", "VirtualClock", "check_shared_queue", "check_sink", "check_store")

# how many times to let the loop run before deciding it is busy for good
_SETTLE_ROUNDS = 10_000


class _Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock that moves only when told to (or, inside :meth:`autojump`, when idle).

    It implements eventflow's ``Clock`` protocol (``now()`` and ``call_at()``), so it
    can be passed as ``App(clock=...)``. Time never goes backwards.

    Args:
        start: The initial reading, in seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._heap: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()
        self._new_timer: asyncio.Event | None = None

    def now(self) -> float:
        """The current virtual time in seconds."""
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> _Timer:
        """Call ``callback()`` once virtual time reaches ``when``; returns a cancellable handle."""
        timer = _Timer(when, callback)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        if self._new_timer is not None:
            self._new_timer.set()
        return timer

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of virtual time."""
        await self.sleep_until(self._now + seconds)

    async def sleep_until(self, when: float) -> None:
        """Sleep until virtual time reaches ``when``."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_at(when, wake)
        try:
            await fut
        finally:
            timer.cancel()

    def next_deadline(self) -> float | None:
        """When the earliest pending callback is due, or ``None``."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    @property
    def pending(self) -> int:
        """Number of callbacks waiting for their time."""
        return sum(1 for _, _, t in self._heap if not t.cancelled)

    def _fire_due(self) -> None:
        heap = self._heap
        while heap and heap[0][0] <= self._now:
            _, _, timer = heapq.heappop(heap)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback()

    async def settle(self) -> None:
        """Let every task that can run, run, until the event loop has nothing ready.

        Work in other threads (plain ``def`` handlers) is not waited for.
        """
        loop = asyncio.get_running_loop()
        quiet = 0
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)
            # CPython's loop keeps callbacks that are ready to run in _ready
            if not getattr(loop, "_ready", None):
                quiet += 1
                if quiet >= 2:
                    return
            else:
                quiet = 0

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing callbacks in deadline order.

        Between two deadlines the program is left to settle, so a retry that fires at
        +60 s runs and fails before the clock moves on to +180 s.
        """
        if seconds < 0:
            raise ValueError(f"Time can't go backwards: advance() got {seconds!r} seconds.")
        await self.advance_to(self._now + seconds)

    async def advance_to(self, when: float) -> None:
        """Move time forward to ``when`` (see :meth:`advance`)."""
        if when < self._now:
            raise ValueError(f"Time can't go backwards: it is {self._now}, asked for {when}.")
        await self.settle()
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > when:
                break
            self._now = max(self._now, deadline)
            self._fire_due()
            await self.settle()
        self._now = when
        self._fire_due()
        await self.settle()

    @asynccontextmanager
    async def autojump(self) -> AsyncIterator[VirtualClock]:
        """Within this block, whenever the program is idle, jump to the next deadline.

        ``async with clock.autojump(): await app.drain()`` runs a whole retry schedule
        in an instant.
        """
        self._new_timer = asyncio.Event()

        async def jumper() -> None:
            assert self._new_timer is not None
            while True:
                await self.settle()
                deadline = self.next_deadline()
                if deadline is None:
                    self._new_timer.clear()
                    await self._new_timer.wait()
                    continue
                self._now = max(self._now, deadline)
                self._fire_due()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(jumper)
                try:
                    yield self
                finally:
                    tg.cancel_scope.cancel()
        finally:
            self._new_timer = None

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r}, pending={self.pending})"


FakeClock = VirtualClock
"""Another name for :class:`VirtualClock`, for readers used to trio's and anyio's term."""
