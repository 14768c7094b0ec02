"""The harness of the shared queue-semantics suite (tests/queues): queues of one kind."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

from eventflow.queues import MemoryQueue, SharedQueue, SQLiteQueue

REGION = "us-east-1"
KINDS = ("memory", "memory-shared", "sqlite", "sqs")


class Harness:
    """Makes fresh queues of the chosen kind, and further handles on one queue's storage."""

    def __init__(
        self,
        kind: str,
        endpoint: str | None,
        new_sqs_queue: Callable[[], Awaitable[str]] | None,
        path: Path | None = None,
    ) -> None:
        self.kind = kind
        self.path = path
        self.endpoint = endpoint
        self._new_sqs_queue = new_sqs_queue
        self._files = itertools.count()
        self.virtual = kind != "sqs"
        # the shortest retry delay each kind keeps honestly
        self.delay = 60.0 if self.virtual else 1.0

    async def fresh_queue(self) -> SharedQueue | None:
        """A new, empty queue (None: the app's own in-memory queue)."""
        if self.kind == "memory":
            return None
        if self.kind == "memory-shared":
            return MemoryQueue()
        if self.kind == "sqlite":
            assert self.path is not None
            return SQLiteQueue(self.path / f"queue-{next(self._files)}.db")
        assert self._new_sqs_queue is not None
        return self._sqs(await self._new_sqs_queue())

    def reopen(self, queue: SharedQueue) -> SharedQueue:
        """Another handle on ``queue``'s storage, as another process would open it."""
        if isinstance(queue, SQLiteQueue):
            return SQLiteQueue(queue.path)
        if isinstance(queue, MemoryQueue):
            return queue  # apps in one process share the object
        from eventflow.aws import SQSEventQueue

        assert isinstance(queue, SQSEventQueue)
        return self._sqs(queue.queue_url)

    def _sqs(self, url: str) -> SharedQueue:
        from eventflow.aws import SQSEventQueue

        return SQSEventQueue(
            url,
            endpoint_url=self.endpoint,
            region_name=REGION,
            wait_time_seconds=1,
            delete_linger=0.05,
        )
