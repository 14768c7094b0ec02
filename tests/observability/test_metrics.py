"""PrometheusMetrics: every counter of the scrape equals its twin in ``app.stats()``."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import eventflow
from eventflow.metrics import PrometheusMetrics, registries
from eventflow.sinks import MemorySink, Message, SinkRejected
from eventflow.testing import VirtualClock


class Refusing:
    """A sink that refuses every message: each is given up at once (a send error)."""

    def __init__(self) -> None:
        self.refused = 0

    async def send(self, message: Message) -> None:
        self.refused += 1
        raise SinkRejected("this sink refuses everything")


def scrape(registry: CollectorRegistry) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> labels -> value, parsed from the text exposition format."""
    text = generate_latest(registry).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return out


def total(
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **where: str
) -> float:
    return sum(
        value
        for labels, value in samples.get(name, {}).items()
        if all((k, v) in labels for k, v in where.items())
    )


async def test_every_counter_of_the_scrape_equals_what_stats_reports() -> None:
    # Given handlers that succeed, fail once, fail for good (dead letter), expire, and whose
    # dead letters and destination records cannot be sent
    clock = VirtualClock()
    registry = CollectorRegistry()
    dlq, refusing_dlq, refusing_dest = MemorySink(), Refusing(), Refusing()
    tried: dict[int, int] = defaultdict(int)

    @eventflow.handler(max_retries=2, retry_delays=(1.0, 2.0), dead_letter=dlq)
    async def flaky(event: dict[str, int], context: eventflow.Context) -> None:
        i = event["i"]
        tried[i] += 1
        if i % 3 == 0 or (i % 3 == 1 and tried[i] == 1):
            raise ValueError(f"event {i} fails")

    @eventflow.handler(retry_delays=(120.0,), max_event_age=60.0, dead_letter=refusing_dlq)
    async def expiring(event: dict[str, int], context: eventflow.Context) -> None:
        raise RuntimeError("always fails; its retry would come after its max age")

    @eventflow.handler(
        max_retries=1, retry_delays=(1.0,), on_success=refusing_dest, on_failure=refusing_dest
    )
    async def recorded(event: dict[str, int], context: eventflow.Context) -> None:
        if event["i"] % 2:
            raise ValueError("odd events fail")

    metrics = PrometheusMetrics(registry)
    app = eventflow.App(clock=clock, handlers=[flaky, expiring, recorded], middleware=[metrics])
    async with app:
        # When they all run to their outcome
        for i in range(60):
            await app.invoke(flaky, {"i": i})
        for i in range(7):
            await app.invoke(expiring, {"i": i})
        for i in range(10):
            await app.invoke(recorded, {"i": i})
        # mid-run, the scrape reads the queue depth and the scheduled retries from stats()
        middle = scrape(registry)
        queued_then = app.stats().queued
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
        s = scrape(registry)
        assert total(s, "eventflow_queue_depth") == stats.queued == 0
        assert total(s, "eventflow_scheduled_retries") == stats.scheduled == 0
        assert total(s, "eventflow_in_flight") == stats.in_flight == 0
    assert total(middle, "eventflow_queue_depth", app="eventflow") == queued_then > 0

    # Then every counter equals its twin in stats(), summed over the function label
    assert stats.retries > 0 and stats.expired == 7 and stats.dead_lettered == len(dlq) == 20
    assert stats.dead_letter_errors == 7 and stats.destination_errors == 10
    twins = {
        "eventflow_async_events_received_total": stats.received,
        "eventflow_async_events_dropped_total": stats.failed,
        "eventflow_invocations_total": stats.attempts,
        "eventflow_errors_total": stats.errors,
        "eventflow_dead_letter_errors_total": stats.dead_letter_errors,
        "eventflow_destination_delivery_failures_total": stats.destination_errors,
        "eventflow_retries_total": stats.retries,
        "eventflow_async_event_age_seconds_count": stats.attempts,
        "eventflow_duration_seconds_count": stats.attempts,
    }
    assert {name: total(s, name) for name in twins} == twins
    # per function: the dropped events are flaky's dead letters and the expired ones
    assert total(s, "eventflow_async_events_dropped_total", function="flaky") == 20
    assert total(s, "eventflow_async_events_dropped_total", function="expiring") == 7
    assert total(s, "eventflow_dead_letter_errors_total", function="expiring") == 7
    assert total(s, "eventflow_destination_delivery_failures_total", function="recorded") == 10
    # retries by number: flaky's always-failing events have a retry 1 and a retry 2
    assert total(s, "eventflow_retries_total", function="flaky", retry="2") == 20
    assert total(s, "eventflow_retries_total", function="flaky", retry="1") == 40
    assert total(s, "eventflow_concurrent_executions") == 0
    # the age at each attempt's start: retries 1 and 2 of flaky wait 1 s and then 2 s more
    assert total(s, "eventflow_async_event_age_seconds_bucket", function="flaky", le="0.5") == 60
    assert total(s, "eventflow_async_event_age_seconds_sum", function="flaky") == pytest.approx(
        40 * 1.0 + 20 * 3.0, abs=0.5
    )


async def test_concurrent_executions_counts_the_attempts_running_now() -> None:
    registry = CollectorRegistry()
    clock = VirtualClock()
    gate = anyio.Event()
    running = anyio.Event()
    count = 0

    @eventflow.handler
    async def slow(event: dict[str, int], context: eventflow.Context) -> None:
        nonlocal count
        count += 1
        if count == 3:
            running.set()
        await gate.wait()

    async with eventflow.App(
        clock=clock, handlers=[slow], middleware=[PrometheusMetrics(registry)]
    ) as app:
        for i in range(3):
            await app.invoke(slow, {"i": i})
        with anyio.fail_after(5):
            await running.wait()
        assert total(scrape(registry), "eventflow_concurrent_executions", function="slow") == 3
        gate.set()
        await app.drain()
    assert total(scrape(registry), "eventflow_concurrent_executions", function="slow") == 0


async def test_middleware_on_one_registry_share_its_metrics() -> None:
    # Given two PrometheusMetrics on one registry, in two apps of one name and a third app
    registry = CollectorRegistry()
    first, second = PrometheusMetrics(registry), PrometheusMetrics(registry)
    # Then the second does not register the metrics again, and a server finds one registry
    assert registries([first, second, object()]) == [registry]

    @eventflow.handler
    async def fine(event: Any, context: eventflow.Context) -> None:
        pass

    apps = [
        eventflow.App(name="same", handlers=[fine], middleware=[first]),
        eventflow.App(name="same", handlers=[fine], middleware=[second]),
        eventflow.App(name="other", handlers=[fine], middleware=[second]),
    ]
    async with apps[0], apps[1], apps[2]:
        for app in apps:
            await app.invoke(fine, {})
            await app.drain()
        s = scrape(registry)
        text = generate_latest(registry).decode()
    # and the apps of one name are one sample (Prometheus refuses a repeated series)
    depth = [
        sample.labels["app"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "eventflow_queue_depth"
    ]
    assert sorted(depth) == ["other", "same"]
    assert total(s, "eventflow_async_events_received_total", function="fine") == 3
