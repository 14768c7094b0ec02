"""Property test: whatever happens, every accepted event is accounted for exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from ef_assertions import assert_conserved
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.sinks import MemorySink
from eventflow.testing import VirtualClock


@dataclass(frozen=True)
class Plan:
    """What one event's handler does on each attempt: ok, raise, or overrun its timeout."""

    outcomes: tuple[str, ...]
    work: float  # virtual seconds each attempt takes
    start_delay: float  # virtual seconds before it is invoked


plans = st.builds(
    Plan,
    outcomes=st.lists(st.sampled_from(["ok", "raise", "timeout"]), min_size=1, max_size=5).map(
        tuple
    ),
    work=st.sampled_from([0.0, 0.5, 3.0]),
    start_delay=st.sampled_from([0.0, 1.0, 30.0]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(plans, min_size=1, max_size=25),
    queue_size=st.integers(1, 8),
    concurrency=st.integers(1, 6),
    max_retries=st.integers(0, 3),
    delays=st.lists(st.sampled_from([1.0, 5.0, 60.0]), min_size=1, max_size=3).map(tuple),
    max_event_age=st.sampled_from([2.0, 20.0, 100.0, 21600.0]),
)
def test_conservation_bounded_attempts_and_exact_dead_letters(
    events: list[Plan],
    queue_size: int,
    concurrency: int,
    max_retries: int,
    delays: tuple[float, ...],
    max_event_age: float,
) -> None:
    asyncio.run(_scenario(events, queue_size, concurrency, max_retries, delays, max_event_age))


async def _scenario(
    events: list[Plan],
    queue_size: int,
    concurrency: int,
    max_retries: int,
    delays: tuple[float, ...],
    max_event_age: float,
) -> None:
    eventflow.reset_default_registry()
    clock = VirtualClock()
    dlq = MemorySink()
    attempts: Counter[str] = Counter()
    plan_of: dict[str, Plan] = {}
    succeeded: set[str] = set()
    samples: list[eventflow.Stats] = []

    @eventflow.handler(
        max_retries=max_retries,
        retry_delays=delays,
        max_event_age=max_event_age,
        timeout=2.0,
        dead_letter=dlq,
    )
    async def h(event: int, context: eventflow.Context) -> str:
        rid = context.aws_request_id
        attempts[rid] += 1
        plan = events[event]
        outcome = plan.outcomes[min(context.attempt, len(plan.outcomes)) - 1]
        if plan.work:
            await clock.sleep(min(plan.work, 1.5))
        if outcome == "timeout":
            await clock.sleep(10.0)
        if outcome == "raise":
            raise RuntimeError(f"planned failure of {event}")
        succeeded.add(rid)
        return "done"

    app = eventflow.App(clock=clock, queue_size=queue_size, concurrency=concurrency, handlers=[h])
    async with clock.autojump(), app:
        for i, plan in enumerate(events):
            if plan.start_delay:
                await clock.sleep(plan.start_delay)
            accepted = await app.invoke(h, i)
            plan_of[accepted.request_id] = plan
            samples.append(app.stats())
        await app.drain()
        stats = app.stats()

    for s in samples:
        assert_conserved(s)
    assert_conserved(stats)
    assert stats.received == len(events)
    assert stats.succeeded + stats.failed == len(events)
    assert stats.undelivered == 0
    # never more than max_retries + 1 attempts per event
    assert max(attempts.values(), default=0) <= max_retries + 1
    # dead letters are exactly the events that never succeeded
    dead = [m.attributes["RequestID"] for m in dlq.messages]
    assert len(dead) == len(set(dead))
    assert set(dead) == set(plan_of) - succeeded
    assert stats.succeeded == len(succeeded)
    assert stats.attempts == sum(attempts.values())
