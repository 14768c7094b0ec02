"""The accounting object on its own: finish keeps the equation, idle waiting wakes and times out."""

from __future__ import annotations

import asyncio

import pytest

from eventflow._accounting import Accounting
from eventflow.sources import Outcome
from eventflow.testing import VirtualClock


class Box:
    """Stands in for the event queue or the scheduler: only its length matters here."""

    def __init__(self) -> None:
        self.items = 0

    def __len__(self) -> int:
        return self.items


def conserved(acct: Accounting) -> bool:
    s = acct.stats()
    return s.received == s.finished + s.pending


@pytest.mark.parametrize(
    ("outcome", "counter"),
    [
        (Outcome.SUCCEEDED, "succeeded"),
        (Outcome.FAILED, "failed"),
        (Outcome.RELEASED, "undelivered"),
        (Outcome.UNDELIVERED, "undelivered"),
    ],
)
def test_finish_moves_an_event_from_in_flight_to_its_outcome(
    outcome: Outcome, counter: str
) -> None:
    acct = Accounting("t", Box(), Box(), VirtualClock())
    acct.received += 1
    acct.in_flight += 1
    assert conserved(acct)
    acct.finish(outcome)
    stats = acct.stats()
    assert stats.in_flight == 0 and getattr(stats, counter) == 1
    assert conserved(acct)


async def test_wait_idle_wakes_when_the_last_event_finishes() -> None:
    queue, scheduler = Box(), Box()
    acct = Accounting("t", queue, scheduler, VirtualClock())
    acct.received, acct.in_flight = 1, 1
    waiter = asyncio.ensure_future(acct.wait_idle(None))
    await asyncio.sleep(0)
    assert not waiter.done() and acct.waiters
    acct.finish(Outcome.SUCCEEDED)
    await asyncio.wait_for(waiter, 5)
    assert not acct.waiters


async def test_wait_idle_is_not_woken_while_a_retry_is_scheduled() -> None:
    scheduler = Box()
    clock = VirtualClock()
    acct = Accounting("t", Box(), scheduler, clock)
    acct.in_flight = 1
    scheduler.items = 1  # a retry waits
    waiter = asyncio.ensure_future(acct.wait_idle(10.0))
    acct.finish(Outcome.SUCCEEDED)
    await asyncio.sleep(0)
    assert not waiter.done()
    await clock.advance(10.0)
    with pytest.raises(TimeoutError, match="did not drain within 10 s: 0 queued, 0 in flight, 1"):
        await waiter
