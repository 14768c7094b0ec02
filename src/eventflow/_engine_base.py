"""The engine's shared state and its smallest helpers (clock, idleness, log context)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ._accounting import Accounting
from ._clock import Clock
from ._contracts import ClaimStatus
from ._delivery import Deliverer
from ._event import Event
from ._logging import ATTEMPT, HANDLER, REQUEST_ID
from ._middleware import Hooks
from ._queue import EventQueue
from ._scheduler import RetryScheduler
from ._threads import HandlerThreads

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
    # success lines of every attempt (attempt.started, attempt.succeeded): opt-in
    _log_attempts: bool
    # the app's middleware, or None: the hot path checks this one attribute
    _hooks: Hooks | None
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
    _key_waiters: dict[str, list[Event]]
    _key_futures: dict[str, list[asyncio.Future[None]]]
    # the counters, stats() and idle waiting
    _acct: Accounting

    @staticmethod
    def _log_context(ev: Event) -> dict[str, Any]:
        return {REQUEST_ID: ev.request_id, HANDLER: ev.rt.name, ATTEMPT: ev.attempts}
