"""The semantics of asynchronous invocation, the same whichever event queue holds the events.

The checks are ``eventflow.testing.check_shared_queue``'s, run on the default in-memory
queue (the reference), on ``MemoryQueue``, on ``SQLiteQueue`` and on ``SQSEventQueue``
(see conftest.py).
"""

from __future__ import annotations

from eventflow.testing import check_shared_queue
from queue_support import Harness


async def test_the_queue_passes_the_shared_queue_kit(harness: Harness) -> None:
    await check_shared_queue(
        harness.fresh_queue,
        reopen=harness.reopen,
        virtual_time=harness.virtual,
        retry_delay=harness.delay,
    )
