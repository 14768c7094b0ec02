"""OpenTelemetryTracing on every event queue: the invoker's trace context travels with the
event, so each attempt's span is a child of the invoker's span, whichever queue held it."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import eventflow
from eventflow.sinks import MemorySink
from eventflow.testing import VirtualClock
from eventflow.tracing import OpenTelemetryTracing
from queue_support import Harness


async def test_three_attempts_of_a_failing_event_are_three_error_spans_in_the_invokers_trace(
    harness: Harness,
) -> None:
    # Given an app traced into an in-memory exporter, on this kind of event queue
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    clock = VirtualClock() if harness.virtual else None
    dlq = MemorySink()
    app = eventflow.App(
        queue=await harness.fresh_queue(),
        clock=clock,
        region="eu-west-1",
        account_id="123456789012",
        middleware=[OpenTelemetryTracing(provider)],
    )

    @app.handler(max_retries=2, retry_delays=(harness.delay,), dead_letter=dlq)
    async def always_fails(event: dict[str, Any], context: eventflow.Context) -> None:
        # the handler's own span is a child of the attempt's span
        with tracer.start_as_current_span("handler.work"):
            raise ValueError(f"attempt {context.attempt} fails")

    async with app:
        # When it is invoked inside a span of the caller's
        with tracer.start_as_current_span("caller") as caller:
            accepted = await app.invoke(always_fails, {"k": 1})
        auto = clock.autojump() if clock is not None else contextlib.nullcontext()
        with anyio.fail_after(30):
            async with auto:
                await app.drain()
    assert len(dlq) == 1

    # Then there are three error spans, one per attempt, each a child of the caller's span
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    attempts = [s for s in spans if s.name == "always_fails"]
    assert len(attempts) == 3
    parent = caller.get_span_context()
    for number, span in enumerate(sorted(attempts, key=lambda s: s.start_time or 0), 1):
        attrs = dict(span.attributes or {})
        assert attrs == {
            "faas.invocation_id": accepted.request_id,
            "faas.name": "always_fails",
            "faas.trigger": "pubsub",
            "cloud.region": "eu-west-1",
            "cloud.account.id": "123456789012",
            "eventflow.attempt": number,
            "error.type": "ValueError",
        }
        assert span.kind is SpanKind.CONSUMER
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == f"ValueError: attempt {number} fails"
        assert [e.name for e in span.events] == ["exception"]
        assert span.context is not None and span.parent is not None
        assert span.context.trace_id == parent.trace_id
        assert span.parent.span_id == parent.span_id
    # and the handler's spans are children of their attempt's span
    work = [s for s in spans if s.name == "handler.work"]
    assert len(work) == 3
    attempt_ids = {s.context.span_id for s in attempts if s.context is not None}
    assert {s.parent.span_id for s in work if s.parent is not None} == attempt_ids


async def test_without_a_caller_span_each_attempt_starts_a_trace_of_its_own() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = eventflow.App(middleware=[OpenTelemetryTracing(provider)])

    @app.handler
    async def fine(event: Any, context: eventflow.Context) -> str:
        return "ok"

    async with app:
        assert trace.get_current_span() is trace.INVALID_SPAN
        await app.invoke(fine, {})
        await app.drain()
    [span] = exporter.get_finished_spans()
    assert span.parent is None and span.status.status_code is StatusCode.UNSET
