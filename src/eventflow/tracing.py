"""OpenTelemetry traces of an app: one span per attempt, in the invoker's trace.

``pip install 'eventflow[tracing]'`` (the OpenTelemetry API; configure an SDK and an
exporter as for any instrumented program), then::

    from eventflow.tracing import OpenTelemetryTracing

    app = eventflow.App(middleware=[OpenTelemetryTracing()])

Each attempt runs inside a span named after the handler, of kind ``CONSUMER``, so the
handler's own spans are its children. It has the FaaS semantic conventions:
``faas.invocation_id`` (the request ID, the same on every attempt), ``faas.name`` (the
handler), ``faas.trigger`` (``pubsub``: the event came through a queue), ``cloud.region``
and ``cloud.account.id`` (the app's), and ``eventflow.attempt`` (1, 2, 3). An attempt that
raises records the exception and sets the span's status to ``ERROR`` (a timeout arrives as
a cancellation and is recorded as one).

The trace context active where ``invoke`` (or a source's ``submit``) was called travels
with the event: the propagator in use (W3C ``traceparent`` / ``tracestate`` by default)
writes it into the event's ``trace_context``, which the in-memory queue, ``SQLiteQueue``
and ``SQSEventQueue`` carry, so every attempt's span is a child of the invoker's span,
wherever and whenever it runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from ._contracts import AppHost
from ._middleware import EventInfo

__all__ = ("OpenTelemetryTracing",)


def _version() -> str:
    try:
        return version("eventflow")
    except PackageNotFoundError:  # run from a source tree
        return "0"


class OpenTelemetryTracing:
    """Middleware that traces every attempt with OpenTelemetry.

    Args:
        tracer_provider: The provider to get the tracer from; ``None`` is the global one
            (``opentelemetry.trace.set_tracer_provider``).
        trigger: The span's ``faas.trigger`` (``pubsub`` by default).

    The module's docstring describes the spans.
    """

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, trigger: str = "pubsub"
    ) -> None:
        self._tracer = trace.get_tracer("eventflow", _version(), tracer_provider=tracer_provider)
        self._trigger = trigger
        self._cloud: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<OpenTelemetryTracing trigger={self._trigger!r}>"

    def started(self, app: AppHost) -> None:
        """Take the app's region and account for the spans' ``cloud.*`` attributes."""
        self._cloud = {"cloud.region": app.region, "cloud.account.id": app.account_id}

    def inject(self, event: EventInfo) -> Mapping[str, str] | None:
        """The invoker's trace context, in the propagator's headers, to travel with the event."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier or None

    def attempt(self, event: EventInfo) -> AbstractAsyncContextManager[object]:
        return self._span(event)

    @asynccontextmanager
    async def _span(self, event: EventInfo) -> AsyncIterator[None]:
        carried = event.trace_context
        parent = propagate.extract(carried) if carried else None
        span = self._tracer.start_span(
            event.handler,
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "faas.invocation_id": event.request_id,
                "faas.name": event.handler,
                "faas.trigger": self._trigger,
                **self._cloud,
                "eventflow.attempt": event.attempt,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            yield
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            span.set_attribute("error.type", type(exc).__qualname__)
            raise
        finally:
            otel_context.detach(token)
            span.end()
