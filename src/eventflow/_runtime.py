"""Per-app state of one handler: its options copied flat for the hot path, and its cap."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._clock import Clock
    from ._event import Event
    from ._handler import Handler, HandlerConfig

__all__ = ("HandlerRuntime",)


class HandlerRuntime:
    """A handler as one app runs it (a handler may be served by several apps)."""

    __slots__ = (
        "arn",
        "clock",
        "config",
        "fn",
        "handler",
        "is_async",
        "limit",
        "log",
        "name",
        "parked",
        "qualified_arn",
        "running",
        "simple",
        "slot_waiters",
    )

    def __init__(
        self, handler: Handler, *, region: str, account_id: str, clock: Clock, log: Any
    ) -> None:
        self.handler = handler
        self.name = handler.name
        self.fn = handler.fn
        self.is_async = handler.is_async
        self.limit = handler.concurrency
        # the settings new events take; PutFunctionEventInvokeConfig-style changes swap it
        self.config: HandlerConfig = handler.config
        # async and uncapped: the worker runs these inline when no timeout is set
        self.simple = self.is_async and self.limit is None
        self.running = 0
        # events taken by a worker while the handler was at its cap, in arrival order
        self.parked: deque[Event] = deque()
        # RequestResponse callers waiting for a slot under the cap
        self.slot_waiters: deque[asyncio.Future[None]] = deque()
        self.arn = f"arn:aws:lambda:{region}:{account_id}:function:{handler.name}"
        self.qualified_arn = self.arn + ":$LATEST"
        self.clock = clock
        self.log = log
