"""Per-app state of one handler: its options copied flat for the hot path, and its cap."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._clock import Clock
    from ._event import Event
    from ._handler import Handler

__all__ = ("HandlerRuntime",)


class HandlerRuntime:
    """A handler as one app runs it (a handler may be served by several apps)."""

    __slots__ = (
        "arn",
        "clock",
        "fn",
        "handler",
        "is_async",
        "limit",
        "log",
        "max_event_age",
        "name",
        "on_success",
        "parked",
        "qualified_arn",
        "running",
        "simple",
        "slot_waiters",
        "timeout",
    )

    def __init__(
        self, handler: Handler, *, region: str, account_id: str, clock: Clock, log: Any
    ) -> None:
        self.handler = handler
        self.name = handler.name
        self.fn = handler.fn
        self.is_async = handler.is_async
        self.timeout = handler.timeout
        self.limit = handler.concurrency
        self.max_event_age = handler.max_event_age
        self.on_success = handler.on_success
        # async, no timeout, no cap: the worker runs these inline
        self.simple = self.is_async and self.timeout is None and self.limit is None
        self.running = 0
        # events taken by a worker while the handler was at its cap, in arrival order
        self.parked: deque[Event] = deque()
        # RequestResponse callers waiting for a slot under the cap
        self.slot_waiters: deque[asyncio.Future[None]] = deque()
        self.arn = f"arn:aws:lambda:{region}:{account_id}:function:{handler.name}"
        self.qualified_arn = self.arn + ":$LATEST"
        self.clock = clock
        self.log = log
