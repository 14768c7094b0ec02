"""Time as eventflow sees it: a small protocol, so tests can swap in virtual time.

The engine reads time only through a :class:`Clock`: ``now()`` for ages and retry
deadlines, ``call_at()`` to be woken (the retry scheduler, attempt timeouts, sink
backoff). :class:`LoopClock` is the default and follows the event loop's monotonic
clock; :class:`eventflow.testing.VirtualClock` moves only when a test tells it to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ("Clock", "LoopClock", "TimerHandle", "sleep_until")


class TimerHandle(Protocol):
    """What :meth:`Clock.call_at` returns: something that can be cancelled."""

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """A monotonic clock in seconds, and a way to be called back at a given time.

    Implementations must call callbacks on the event loop thread, never before their
    deadline, and must never call a callback whose handle was cancelled.
    """

    def now(self) -> float:
        """Return the current time in seconds (monotonic, arbitrary origin)."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback()`` on the event loop once ``now() >= when``."""
        ...


class LoopClock:
    """The real clock: the running event loop's monotonic ``time()``."""

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def now(self) -> float:
        return self._get_loop().time()

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        return self._get_loop().call_at(when, callback)

    def __repr__(self) -> str:
        return "LoopClock()"


async def sleep_until(clock: Clock, when: float) -> None:
    """Sleep until ``clock.now() >= when``; cancellation-safe (the timer is cancelled)."""
    if clock.now() >= when:
        await asyncio.sleep(0)
        return
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    handle = clock.call_at(when, wake)
    try:
        await fut
    finally:
        handle.cancel()
