"""The harness of the shared queue-semantics suite (tests/queues): apps on one queue of a kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import eventflow
from eventflow.queues import MemoryQueue, SQLiteQueue
from eventflow.testing import VirtualClock

REGION = "us-east-1"
KINDS = ("memory", "memory-shared", "sqlite", "sqs")


class Harness:
    """Builds apps on one queue of the chosen kind."""

    def __init__(
        self,
        kind: str,
        endpoint: str | None,
        queue_url: str | None,
        path: Path | None = None,
    ) -> None:
        self.kind = kind
        self.path = path
        self.endpoint = endpoint
        self.queue_url = queue_url
        self.virtual = kind != "sqs"
        self.clock = VirtualClock(start=1_000.0) if self.virtual else None
        self._memory_queue = MemoryQueue() if kind == "memory-shared" else None
        # the shortest retry delay each kind keeps honestly
        self.delay = 60.0 if self.virtual else 1.0

    @property
    def shared(self) -> bool:
        return self.kind != "memory"

    def queue(self) -> Any:
        if self.kind == "memory":
            return None
        if self.kind == "memory-shared":
            return self._memory_queue
        if self.kind == "sqlite":
            # one file, a queue object per app: as separate processes would open it
            assert self.path is not None
            return SQLiteQueue(self.path)
        from eventflow.aws import SQSEventQueue

        assert self.queue_url is not None
        return SQSEventQueue(
            self.queue_url,
            endpoint_url=self.endpoint,
            region_name=REGION,
            wait_time_seconds=1,
            delete_linger=0.05,
        )

    def app(self, **options: Any) -> eventflow.App:
        options.setdefault("concurrency", 20)
        return eventflow.App(queue=self.queue(), clock=self.clock, **options)

    @asynccontextmanager
    async def time_flows(self) -> AsyncIterator[None]:
        """Within this block virtual time jumps whenever the program waits."""
        if self.clock is None:
            yield
            return
        async with self.clock.autojump():
            yield

    def now(self, app: eventflow.App) -> float:
        return app.clock.now()
