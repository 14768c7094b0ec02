"""The engine's shared state and its smallest helpers (clock, idleness, log context)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ._clock import Clock
from ._delivery import Deliverer
from ._event import Event
from ._queue import EventQueue
from ._scheduler import RetryScheduler
from ._threads import HandlerThreads
from .stores import ClaimStatus

__all__ = ("CLAIMED", "FLAT_TYPES", "EngineBase")

CLAIMED = ClaimStatus.CLAIMED
# results of these types need no check that JSON can carry them
FLAT_TYPES = frozenset((str, int, bool, type(None)))


class EngineBase:
    """State shared by the parts of the engine; :class:`eventflow.App` is built on it."""

    # the state every part of the engine shares; App.__init__ sets all of it
    name: str
    _clock: Clock
    _now: Callable[[], float]
    # wall-clock seconds that follow a virtual clock; time.time itself for the real one (fast)
    _wall: Callable[[], float]
    _log: Any
    _info: bool
    _threads: HandlerThreads | None
    # request ID -> the end of a timed-out plain def attempt whose thread still runs
    _running_threads: dict[str, asyncio.Future[None]]
    # request ID -> the time a retry held back for such a thread starts anyway
    _held_retries: dict[str, float]
    # events that reached their terminal outcome while being cancelled at shutdown
    _given_up: set[Event]
    _deliverer: Deliverer | None
    _queue: EventQueue
    _scheduler: RetryScheduler
    _interrupted: list[Event]
    _idle_waiters: list[asyncio.Future[None]]
    _key_waiters: dict[str, list[Event]]
    _key_futures: dict[str, list[asyncio.Future[None]]]
    _in_flight: int
    _succeeded: int
    _failed: int
    _undelivered: int
    _returned: int
    _internal_errors: int
    _retries: int
    _expired: int
    _attempts: int
    _errors: int
    _dead_lettered: int
    _dead_letter_errors: int
    _destination_errors: int
    _deduplicated: int
    _requeued: int

    def _idle(self) -> bool:
        return not self._in_flight and not len(self._queue) and not len(self._scheduler)

    def _wake_idle(self) -> None:
        if self._idle_waiters and self._idle():
            for fut in self._idle_waiters:
                if not fut.done():
                    fut.set_result(None)
            self._idle_waiters.clear()

    @staticmethod
    def _log_context(ev: Event) -> dict[str, Any]:
        return {"request_id": ev.request_id, "handler": ev.rt.name, "attempt": ev.attempts}
