"""The dashboard's recorder in virtual time: its per-handler counts against ``app.stats()``,
the chart of scheduled retries, the latest-failures ring, and the log ring."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import structlog
from ef_assertions import assert_conserved

import eventflow
from eventflow.dashboard import Dashboard, LogRing, RingStatistics
from eventflow.sinks import MemorySink
from eventflow.testing import VirtualClock


def _handler_totals(snapshot: dict[str, Any], field: str) -> int:
    return sum(int(h[field]) for h in snapshot["handlers"])


async def test_per_handler_counts_add_up_to_the_app_stats() -> None:
    # Given three handlers: one fails twice then succeeds, one dead-letters, one always works
    clock = VirtualClock()
    dlq = MemorySink()
    tried: dict[int, int] = {}

    @eventflow.handler(retry_delays=(1.0, 2.0))
    async def flaky(event: dict[str, int], context: eventflow.Context) -> None:
        tried[event["i"]] = tried.get(event["i"], 0) + 1
        if tried[event["i"]] < 3:
            raise ValueError(f"event {event['i']} fails on attempt {context.attempt}")

    @eventflow.handler(max_retries=1, retry_delays=(1.0,), dead_letter=dlq)
    async def doomed(event: dict[str, int], context: eventflow.Context) -> None:
        raise KeyError(event["i"])

    @eventflow.handler
    def fine(event: dict[str, int], context: eventflow.Context) -> int:
        return event["i"]

    app = eventflow.App(clock=clock, handlers=[flaky, doomed, fine])
    dashboard = Dashboard(app)
    async with app:
        # When they all run to their outcome
        for i in range(30):
            await app.invoke((flaky, doomed, fine)[i % 3], {"i": i})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
        snap = dashboard.snapshot()

    # Then the per-handler counts add up to the app's counters
    assert_conserved(stats)
    assert json.loads(json.dumps(snap)) == snap  # the JSON the API serves
    rows = {h["name"]: h for h in snap["handlers"]}
    assert set(rows) == {"flaky", "doomed", "fine"}
    assert rows["flaky"] | {"name": None} == {
        "name": None,
        "received": 10,
        "succeeded": 10,
        "failed": 0,
        "retrying": 0,
        "dead_lettered": 0,
        "undelivered": 0,
        "running": 0,
        "attempts": 30,
        "errors": 20,
    }
    assert (rows["doomed"]["failed"], rows["doomed"]["dead_lettered"]) == (10, 10)
    assert (rows["fine"]["succeeded"], rows["fine"]["errors"]) == (10, 0)
    for field in ("received", "succeeded", "failed", "dead_lettered", "attempts", "errors"):
        assert _handler_totals(snap, field) == getattr(stats, field), field
    assert snap["totals"] == {k: getattr(stats, k) for k in snap["totals"]}
    assert snap["failures"]["recorded"] == stats.errors == 40
    assert snap["schema"] == 1 and snap["app"] == "eventflow"


async def test_scheduled_retries_are_charted_by_the_minute_they_are_due() -> None:
    # Given two events each of handlers whose one retry is due in 30 s, 90 s, 150 s, 20 min
    clock = VirtualClock()
    delays = {"a": 30.0, "b": 90.0, "c": 150.0, "d": 1200.0}

    async def fails(event: Any, context: eventflow.Context) -> None:
        raise RuntimeError("down")

    handlers = [
        eventflow.handler(fails, name=name, max_retries=1, retry_delays=(delay,))
        for name, delay in delays.items()
    ]
    app = eventflow.App(clock=clock, handlers=handlers)
    dashboard = Dashboard(app, horizon=5)
    async with app:
        for name in delays:
            await app.invoke(name, {})
            await app.invoke(name, {})
        await clock.settle()
        # When the dashboard is read now, and again a minute later
        first = dashboard.snapshot()["retries"]
        await clock.advance(60)
        second = dashboard.snapshot()
        scheduled = app.stats().scheduled
        async with clock.autojump():
            await app.drain()
        last = dashboard.snapshot()

    # Then each retry is in the bucket of the minute it is due in; the far ones are "later"
    assert first == {
        "bucket_s": 60,
        "buckets": [2, 2, 2, 0, 0],
        "overdue": 0,
        "later": 2,
        "watched": 8,
        "unwatched": 0,
    }
    # a minute on, the first two ran (and failed for good) and the others moved a bucket left
    assert second["retries"]["buckets"] == [2, 2, 0, 0, 0]
    assert second["retries"]["watched"] == scheduled == 6
    retrying = {h["name"]: (h["retrying"], h["failed"]) for h in second["handlers"]}
    assert retrying == {"a": (0, 2), "b": (2, 0), "c": (2, 0), "d": (2, 0)}
    # and once all ran, nothing is waiting
    assert last["retries"]["watched"] == last["totals"]["scheduled"] == 0
    assert _handler_totals(last, "failed") == last["totals"]["failed"] == 8


async def test_a_timeout_is_listed_as_lambdas_sandbox_timedout() -> None:
    # Given a handler that runs past its 2 s timeout once, then fails with its own error
    clock = VirtualClock()

    @eventflow.handler(timeout=2.0, max_retries=1, retry_delays=(5.0,))
    async def slow(event: Any, context: eventflow.Context) -> None:
        if context.attempt == 1:
            await clock.sleep(10)
        raise LookupError("no such order")

    app = eventflow.App(clock=clock, handlers=[slow])
    dashboard = Dashboard(app)
    async with app:
        accepted = await app.invoke(slow, {})
        async with clock.autojump():
            await app.drain()
        failures = dashboard.snapshot()["failures"]

    # Then both attempts are listed, newest first, with Lambda's error types and messages
    rid = accepted.request_id
    assert [(f["attempt"], f["error_type"], f["error_message"]) for f in failures["latest"]] == [
        (2, "LookupError", "no such order"),
        (1, "Sandbox.Timedout", f"RequestId: {rid} Error: Task timed out after 2.00 seconds"),
    ]
    assert {f["request_id"] for f in failures["latest"]} == {rid}
    assert failures["latest"][0]["logs"] == f"/_eventflow/api/logs?request_id={rid}"
    assert any("raise LookupError" in line for line in failures["latest"][0]["stack_trace"])


async def test_the_latest_failures_ring_is_bounded_and_counts_what_it_dropped() -> None:
    clock = VirtualClock()

    @eventflow.handler(max_retries=0)
    async def broken(event: dict[str, int], context: eventflow.Context) -> None:
        raise ValueError(f"bad {event['i']}")

    app = eventflow.App(clock=clock, handlers=[broken])
    dashboard = Dashboard(app, failures=3)
    async with app:
        for i in range(5):
            await app.invoke(broken, {"i": i})
        async with clock.autojump():
            await app.drain()
        failures = dashboard.snapshot()["failures"]

    assert [f["error_message"] for f in failures["latest"]] == ["bad 4", "bad 3", "bad 2"]
    assert {k: failures[k] for k in ("capacity", "size", "recorded", "dropped")} == {
        "capacity": 3,
        "size": 3,
        "recorded": 5,
        "dropped": 2,
    }


async def test_middleware_can_be_added_before_the_app_starts_only() -> None:
    @eventflow.handler
    async def noop(event: Any, context: eventflow.Context) -> None:
        return None

    app = eventflow.App(clock=VirtualClock(), handlers=[noop])
    with pytest.raises(eventflow.ConfigurationError, match="none of the hooks"):
        app.add_middleware(object())
    async with app:
        with pytest.raises(RuntimeError, match="only before the app starts"):
            Dashboard(app)


@pytest.mark.parametrize(
    ("option", "value"),
    [("failures", 0), ("max_watched", -1), ("horizon", 0), ("horizon", 121), ("prefix", "x/")],
)
def test_bad_options_are_refused_with_a_sentence(option: str, value: object) -> None:
    app = eventflow.App(handlers=[])
    with pytest.raises(eventflow.ConfigurationError, match=f"Dashboard {option} must"):
        Dashboard(app, **{option: value})  # type: ignore[arg-type]


def test_the_log_ring_keeps_the_latest_lines_json_safe() -> None:
    ring = LogRing(capacity=3)
    log = structlog.wrap_logger(
        structlog.testing.ReturnLogger(), processors=[ring], wrapper_class=structlog.BoundLogger
    )
    log.info("one", request_id="r1", blob=b"\x00", obj=object)
    try:
        raise ValueError("boom")
    except ValueError:
        log.error("two", request_id="r2", exc_info=True)
    log.info("three", request_id="r1", long="x" * 5000)
    log.info("four", request_id="r1")

    # the oldest line was pushed out, and counted
    assert ring.statistics() == RingStatistics(capacity=3, size=3, recorded=4, dropped=1)
    assert [line["event"] for line in ring.lines()] == ["two", "three", "four"]
    assert [line["event"] for line in ring.lines("r1")] == ["three", "four"]
    assert [line["event"] for line in ring.lines("r1", limit=1)] == ["four"]
    assert ring.lines("r1", limit=0) == []
    two = ring.lines("r2")[0]
    assert "ValueError: boom" in str(two["exception"]) and "exc_info" not in two
    assert len(str(ring.lines("r1")[0]["long"])) == 2001  # cut, with an ellipsis
    json.dumps(ring.lines())


def test_the_log_ring_takes_lines_from_threads() -> None:
    ring = LogRing(capacity=100)

    def write(n: int) -> None:
        for i in range(1000):
            ring(None, "info", {"event": "x", "request_id": f"{n}-{i}"})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ring.statistics() == RingStatistics(capacity=100, size=100, recorded=4000, dropped=3900)


async def test_the_watch_list_of_retries_is_bounded_and_drops_the_oldest() -> None:
    clock = VirtualClock()

    @eventflow.handler(retry_delays=(30.0,))
    async def down(event: dict[str, int], context: eventflow.Context) -> None:
        raise RuntimeError("down")

    app = eventflow.App(clock=clock, handlers=[down])
    dashboard = Dashboard(app, max_watched=2)
    async with app:
        for i in range(3):
            await app.invoke(down, {"i": i})
            await clock.advance(1)  # so that the first is the oldest
        retries = dashboard.snapshot()["retries"]
        scheduled = app.stats().scheduled
        await app.configure_handler(down, max_retries=0)
        async with clock.autojump():
            await app.drain()

    assert scheduled == 3
    assert (retries["watched"], retries["unwatched"], retries["buckets"][0]) == (2, 1, 2)
