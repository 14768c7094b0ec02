"""The engine's parts on their own, built with explicit arguments as App builds them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
import structlog

import eventflow
from eventflow._accounting import Accounting
from eventflow._attempts import AttemptRunner, Failed, Succeeded
from eventflow._contracts import Outcome
from eventflow._delivery import Deliverer
from eventflow._event import Event, make_event
from eventflow._idempotent_runs import Deduplicated, IdempotentRuns, WaitForKey
from eventflow._outcomes import Outcomes
from eventflow._queue import EventQueue
from eventflow._runtime import HandlerRuntime
from eventflow._scheduler import RetryScheduler
from eventflow._threads import HandlerThreads
from eventflow._wheel import TimerWheel
from eventflow.sinks import MemorySink
from eventflow.stores import MemoryStore
from eventflow.testing import VirtualClock


@dataclass
class Parts:
    clock: VirtualClock
    queue: EventQueue
    scheduler: RetryScheduler
    acct: Accounting
    runner: AttemptRunner
    idem: IdempotentRuns
    outcomes: Outcomes
    threads: HandlerThreads

    def event(self, handler: eventflow.Handler, payload: Any) -> Event:
        log = structlog.get_logger("test")
        rt = HandlerRuntime(handler, region="us-east-1", account_id="0", clock=self.clock, log=log)
        return make_event(f"rid-{id(payload)}", rt, payload, self.clock.now())


async def _noop(event: Any, context: eventflow.Context) -> None:
    return None


def _parts() -> Parts:
    clock = VirtualClock()
    log = structlog.get_logger("test")
    queue = EventQueue(10)
    scheduler = RetryScheduler(TimerWheel(tick=0.01, capacity=10), clock, queue.put_retry)
    acct = Accounting("test", queue, scheduler, clock)
    threads = HandlerThreads(2, "test")
    runner = AttemptRunner(
        accounting=acct,
        clock=clock,
        now=clock.now,
        scheduler=scheduler,
        threads=threads,
        hooks=None,
        log=log,
        log_attempts=False,
    )
    idem = IdempotentRuns(
        accounting=acct,
        runner=runner,
        scheduler=scheduler,
        clock=clock,
        now=clock.now,
        wall=time.time,
        log=log,
    )
    outcomes = Outcomes(
        accounting=acct,
        scheduler=scheduler,
        deliverer=Deliverer(clock, log, timeout=1.0),
        hooks=None,
        log=log,
        now=clock.now,
        info=True,
        log_attempts=False,
    )
    return Parts(clock, queue, scheduler, acct, runner, idem, outcomes, threads)


async def test_the_runner_answers_typed_results_and_counts_attempts() -> None:
    parts = _parts()

    async def ok(event: dict[str, int], context: eventflow.Context) -> int:
        return event["n"] * 2

    async def raises(event: Any, context: eventflow.Context) -> None:
        raise KeyError("missing")

    async def unencodable(event: Any, context: eventflow.Context) -> object:
        return {1, 2}

    def plain(event: Any, context: eventflow.Context) -> str:
        return "from a thread"

    results = []
    for fn, payload in ((ok, {"n": 21}), (raises, {}), (unencodable, {}), (plain, {})):
        ev = parts.event(eventflow.Handler(fn, name=fn.__name__), payload)
        results.append(await parts.runner.run(ev, ev.rt))
    parts.threads.close()
    succeeded, failed, marshal, threaded = results
    assert type(succeeded) is Succeeded and succeeded.value == 42
    assert type(failed) is Failed and failed.error["errorType"] == "KeyError"
    assert isinstance(failed.exc, KeyError)
    assert type(marshal) is Failed and marshal.error["errorType"] == "Runtime.MarshalError"
    assert marshal.exc is None
    assert type(threaded) is Succeeded and threaded.value == "from a thread"
    assert parts.acct.attempts == 4


async def test_the_classifier_raises_a_cancellation_of_the_attempt_again() -> None:
    parts = _parts()
    ev = parts.event(eventflow.Handler(_noop, name="h"), {})
    outcome: list[BaseException] = []

    async def cancelled_attempt() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError as exc:
            try:
                parts.runner.classify(ev, exc)
            except asyncio.CancelledError as again:
                outcome.append(again)
                raise

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(cancelled_attempt())
    assert len(outcome) == 1
    # a CancelledError of the handler's own (its task not cancelled) is a function error
    own = parts.runner.classify(ev, asyncio.CancelledError("its own"))
    assert own.error["errorType"] == "CancelledError"


async def test_idempotent_runs_answer_ran_deduplicated_and_wait_for_key() -> None:
    parts = _parts()
    store = MemoryStore()
    gate = asyncio.Event()

    async def fn(event: dict[str, str], context: eventflow.Context) -> str:
        await gate.wait()
        return "done"

    h = eventflow.Handler(
        fn, name="h", idempotency=eventflow.Idempotency(store=store, key="id", lease=60.0)
    )
    first = parts.event(h, {"id": "k"})
    running = asyncio.create_task(parts.idem.run(first, first.rt))
    with anyio.fail_after(5):
        while not len(store):  # noqa: ASYNC110 - one condition, bounded
            await asyncio.sleep(0)
    second = parts.event(h, {"id": "k"})
    waiting = await parts.idem.run(second, second.rt)
    assert type(waiting) is WaitForKey and waiting.key == "k"
    gate.set()
    ran = await running
    assert type(ran) is Succeeded and ran.value == "done"
    third = parts.event(h, {"id": "k"})
    dedup = await parts.idem.run(third, third.rt)
    assert type(dedup) is Deduplicated and dedup.value == "done"
    conflict = await parts.idem.run(parts.event(h, {"id": "k", "other": 1}), first.rt)
    assert type(conflict) is Failed
    assert conflict.error["errorType"] == "IdempotencyConflict"
    assert (parts.acct.attempts, parts.acct.deduplicated) == (2, 1)


async def test_outcomes_route_a_failure_to_a_retry_then_to_the_dead_letter() -> None:
    parts = _parts()
    dlq = MemorySink()
    h = eventflow.Handler(_noop, name="h", max_retries=1, retry_delays=[5.0], dead_letter=dlq)
    ev = parts.event(h, {"n": 1})
    parts.acct.received += 1
    parts.acct.in_flight += 1
    ev.attempts = 1
    await parts.outcomes.after_failure(ev, Failed({"errorMessage": "boom", "errorType": "E"}))
    assert (parts.acct.retries, len(parts.scheduler), parts.acct.in_flight) == (1, 1, 0)
    assert parts.scheduler.drain() == [ev]
    parts.acct.in_flight += 1
    ev.attempts = 2
    settled: list[Outcome] = []
    ev.settle = lambda rid, outcome: settled.append(outcome)
    await parts.outcomes.after_failure(ev, Failed({"errorMessage": "boom", "errorType": "E"}))
    assert len(dlq.messages) == 1 and dlq.messages[0].json() == {"n": 1}
    stats = parts.acct.stats()
    assert (stats.failed, stats.dead_lettered, stats.errors, stats.in_flight) == (1, 1, 2, 0)
    assert settled == [Outcome.FAILED]
