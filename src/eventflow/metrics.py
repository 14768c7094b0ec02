"""Prometheus metrics of an app, shaped after Lambda's asynchronous-invocation metrics.

``pip install 'eventflow[metrics]'``, then::

    from eventflow.metrics import PrometheusMetrics

    app = eventflow.App(middleware=[PrometheusMetrics()])

``eventflow serve`` answers ``GET /metrics``; ``eventflow worker --metrics-port PORT`` serves
one scrape for all its processes. Elsewhere, expose the registry as any
``prometheus_client`` program does (``start_http_server``, ``make_asgi_app``).

Each counter has a twin in :meth:`eventflow.App.stats` and equals it, summed over the
``function`` label (the handler's name), for one app on its registry:

=================================================  ===========================================
metric                                             ``stats()`` twin, and what it counts
=================================================  ===========================================
``eventflow_async_events_received_total``          ``received``: events accepted
                                                   (Lambda's ``AsyncEventsReceived``)
``eventflow_async_events_dropped_total``           ``failed``: events that failed for good,
                                                   retries exhausted or too old, whether or
                                                   not a dead letter or on-failure record was
                                                   sent (Lambda's ``AsyncEventsDropped``: "sent
                                                   there before being dropped")
``eventflow_async_event_age_seconds``              histogram, one observation per attempt of
                                                   its age at the start (``AsyncEventAge``,
                                                   in seconds here)
``eventflow_invocations_total``                    ``attempts``: handler calls
                                                   (``Invocations``)
``eventflow_errors_total``                         ``errors``: failed attempts, function
                                                   errors and timeouts (``Errors``)
``eventflow_duration_seconds``                     histogram of each handler call's wall time
                                                   (``Duration``)
``eventflow_dead_letter_errors_total``             ``dead_letter_errors`` (``DeadLetterErrors``)
``eventflow_destination_delivery_failures_total``  ``destination_errors``
                                                   (``DestinationDeliveryFailures``)
``eventflow_concurrent_executions``                gauge: handler calls running now
                                                   (``ConcurrentExecutions``)
``eventflow_retries_total``                        ``retries``, labelled by ``retry`` too: the
                                                   retry's number (1 after the first attempt)
``eventflow_queue_depth``                          ``queued``, per ``app``, read at scrape time
``eventflow_scheduled_retries``                    ``scheduled``, per ``app``, at scrape time
``eventflow_in_flight``                            ``in_flight``, per ``app``, at scrape time
=================================================  ===========================================

Where they part: a ``RequestResponse`` invocation counts in ``invocations``, ``duration``,
``concurrent_executions`` and ``event_age`` (age 0), as it does in ``stats().attempts``;
an attempt that an idempotency store or key failed before the handler ran counts in
``stats().attempts`` and ``errors`` but is no handler call, so not in ``invocations``; an
attempt cut short by the app's shutdown is taken back from ``stats().attempts``, not from
the counter.

Several apps (or several ``PrometheusMetrics``) on one registry share the metrics. Under
``prometheus_client``'s multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set, as ``eventflow
worker --processes N`` does for its children), the three per-app gauges are written at
most once a second, as events are accepted and finish, instead of at scrape time.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_asgi_app,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import REGISTRY, Collector

from ._contracts import AppHost, Outcome
from ._middleware import EventInfo

__all__ = (
    "AGE_BUCKETS",
    "DURATION_BUCKETS",
    "PrometheusMetrics",
    "asgi_app",
    "process_exited",
    "registries",
    "serve",
    "serve_multiprocess",
)

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]

# seconds, up to Lambda's longest timeout (15 min)
DURATION_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
)
# seconds, up to Lambda's longest maximum event age (6 h)
AGE_BUCKETS = (
    0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600,
)  # fmt: skip
_REFRESH = 1.0  # seconds between writes of the per-app gauges in multiprocess mode


def _multiprocess() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ


def _by_name(apps: Iterable[Any]) -> dict[str, tuple[int, int, int]]:
    """Queued, scheduled and in-flight events per app name (apps of one name summed)."""
    out: dict[str, tuple[int, int, int]] = {}
    for app in apps:
        s = app.stats()
        name = str(getattr(app, "name", "eventflow"))
        q, w, r = out.get(name, (0, 0, 0))
        out[name] = (q + s.queued, w + s.scheduled, r + s.in_flight)
    return out


class _AppGauges(Collector):
    """Reads each started app's ``stats()`` at scrape time."""

    def __init__(self) -> None:
        self.apps: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return self._families(list(self.apps))

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self._families([])  # the names, for the registry's duplicate check

    @staticmethod
    def _families(apps: list[Any]) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "eventflow_queue_depth", "Events accepted and not started.", labels=["app"]
        )
        scheduled = GaugeMetricFamily(
            "eventflow_scheduled_retries", "Events waiting for a retry.", labels=["app"]
        )
        in_flight = GaugeMetricFamily(
            "eventflow_in_flight", "Events running an attempt or sending a record.", labels=["app"]
        )
        for name, (queued, waiting, running) in _by_name(apps).items():
            depth.add_metric([name], queued)
            scheduled.add_metric([name], waiting)
            in_flight.add_metric([name], running)
        yield depth
        yield scheduled
        yield in_flight


class _Family:
    """The metrics of one registry, made once and shared by every middleware on it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        f = ["function"]
        self.received = Counter(
            "eventflow_async_events_received",
            "Events accepted (Lambda's AsyncEventsReceived); stats().received.",
            f,
            registry=registry,
        )
        self.dropped = Counter(
            "eventflow_async_events_dropped",
            "Events that failed for good: retries exhausted or too old (Lambda's "
            "AsyncEventsDropped); stats().failed.",
            f,
            registry=registry,
        )
        self.age = Histogram(
            "eventflow_async_event_age_seconds",
            "Age of the event at the start of each attempt (Lambda's AsyncEventAge).",
            f,
            buckets=AGE_BUCKETS,
            registry=registry,
        )
        self.invocations = Counter(
            "eventflow_invocations",
            "Handler calls (Lambda's Invocations); stats().attempts.",
            f,
            registry=registry,
        )
        self.errors = Counter(
            "eventflow_errors",
            "Failed attempts: function errors and timeouts (Lambda's Errors); stats().errors.",
            f,
            registry=registry,
        )
        self.duration = Histogram(
            "eventflow_duration_seconds",
            "Wall time of each handler call (Lambda's Duration).",
            f,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.dead_letter_errors = Counter(
            "eventflow_dead_letter_errors",
            "Dead letters given up (Lambda's DeadLetterErrors); stats().dead_letter_errors.",
            f,
            registry=registry,
        )
        self.destination_failures = Counter(
            "eventflow_destination_delivery_failures",
            "Destination records given up (Lambda's DestinationDeliveryFailures); "
            "stats().destination_errors.",
            f,
            registry=registry,
        )
        self.concurrent = Gauge(
            "eventflow_concurrent_executions",
            "Handler calls running now (Lambda's ConcurrentExecutions).",
            f,
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.retries = Counter(
            "eventflow_retries",
            "Retries scheduled, by the retry's number; stats().retries.",
            ["function", "retry"],
            registry=registry,
        )
        self._children: dict[str, _Children] = {}
        self.apps = _AppGauges()
        self.app_gauges: tuple[Gauge, Gauge, Gauge] | None = None
        if _multiprocess():
            # a collector is not exported across processes: each process writes gauges
            self.app_gauges = tuple(  # type: ignore[assignment]
                Gauge(
                    name,
                    doc,
                    ["app"],
                    registry=registry,
                    multiprocess_mode="livesum",
                )
                for name, doc in (
                    ("eventflow_queue_depth", "Events accepted and not started."),
                    ("eventflow_scheduled_retries", "Events waiting for a retry."),
                    ("eventflow_in_flight", "Events running an attempt or sending a record."),
                )
            )
        else:
            registry.register(self.apps)

    def of(self, function: str) -> _Children:
        """The metrics labelled with ``function`` (looked up once per handler, not per event)."""
        children = self._children.get(function)
        if children is None:
            children = self._children[function] = _Children(
                self.received.labels(function),
                self.dropped.labels(function),
                self.age.labels(function),
                self.invocations.labels(function),
                self.errors.labels(function),
                self.duration.labels(function),
                self.dead_letter_errors.labels(function),
                self.destination_failures.labels(function),
                self.concurrent.labels(function),
            )
        return children


class _Children(NamedTuple):
    received: Counter
    dropped: Counter
    age: Histogram
    invocations: Counter
    errors: Counter
    duration: Histogram
    dead_letter_errors: Counter
    destination_failures: Counter
    concurrent: Gauge


class _Attempt:
    """The context around one handler call: invocations, age, concurrency, duration."""

    __slots__ = ("_age", "_fn", "_started")

    def __init__(self, fn: _Children, age: float) -> None:
        self._fn = fn
        self._age = age
        self._started = 0.0

    async def __aenter__(self) -> None:
        fn = self._fn
        fn.invocations.inc()
        fn.age.observe(self._age if self._age > 0.0 else 0.0)
        fn.concurrent.inc()
        self._started = time.perf_counter()

    async def __aexit__(self, *exc_info: object) -> None:
        self._fn.duration.observe(time.perf_counter() - self._started)
        self._fn.concurrent.dec()


_families: weakref.WeakKeyDictionary[CollectorRegistry, _Family] = weakref.WeakKeyDictionary()


class PrometheusMetrics:
    """Middleware that counts an app's events in ``prometheus_client`` metrics.

    Args:
        registry: The registry to put the metrics in; ``None`` is
            ``prometheus_client.REGISTRY``, the one ``start_http_server`` serves by default.
            Every ``PrometheusMetrics`` on one registry shares its metrics.

    The module's docstring lists the metrics and the ``stats()`` counter each equals.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry: CollectorRegistry = REGISTRY if registry is None else registry
        family = _families.get(self.registry)
        if family is None:
            family = _families[self.registry] = _Family(self.registry)
        self._m = family
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"<PrometheusMetrics registry={self.registry!r}>"

    def started(self, app: AppHost) -> None:
        """Report the app's queue depth, scheduled retries and events in flight."""
        self._m.apps.apps.add(app)
        self._refresh_at = 0.0
        self._refresh()

    def accepted(self, event: EventInfo) -> None:
        self._m.of(event.handler).received.inc()
        if self._m.app_gauges is not None:
            self._refresh()

    def attempt(self, event: EventInfo) -> AbstractAsyncContextManager[object]:
        return _Attempt(self._m.of(event.handler), event.age)

    def attempt_failed(self, event: EventInfo, error: Mapping[str, Any]) -> None:
        self._m.of(event.handler).errors.inc()

    def retry_scheduled(self, event: EventInfo, delay: float) -> None:
        # attempts so far = the number of the retry now scheduled
        self._m.retries.labels(event.handler, str(event.attempt)).inc()

    def delivery_failed(self, event: EventInfo, role: str) -> None:
        fn = self._m.of(event.handler)
        (fn.dead_letter_errors if role == "dead_letter" else fn.destination_failures).inc()

    def finished(self, event: EventInfo, outcome: Outcome) -> None:
        if outcome is Outcome.FAILED:
            self._m.of(event.handler).dropped.inc()
        if self._m.app_gauges is not None:
            self._refresh()

    def _refresh(self) -> None:
        gauges = self._m.app_gauges
        if gauges is None:
            return
        now = time.monotonic()
        if now < self._refresh_at:
            return
        self._refresh_at = now + _REFRESH
        depth, scheduled, in_flight = gauges
        for name, (queued, waiting, running) in _by_name(list(self._m.apps.apps)).items():
            depth.labels(name).set(queued)
            scheduled.labels(name).set(waiting)
            in_flight.labels(name).set(running)


def registries(middleware: Iterable[object]) -> list[CollectorRegistry]:
    """The registries of the :class:`PrometheusMetrics` among ``middleware`` (each once),
    for a server that exposes an app's metrics (``registries(app.middleware)``)."""
    found: list[CollectorRegistry] = []
    for mw in middleware:
        if isinstance(mw, PrometheusMetrics) and all(r is not mw.registry for r in found):
            found.append(mw.registry)
    return found


class _Merged(Collector):
    """Several registries as one (an app with middleware on more than one)."""

    def __init__(self, found: Sequence[CollectorRegistry]) -> None:
        self._found = found

    def collect(self) -> Iterator[Metric]:
        for registry in self._found:
            yield from registry.collect()


def _one(found: Sequence[CollectorRegistry]) -> Collector:
    return found[0] if len(found) == 1 else _Merged(found)


def asgi_app(middleware: Iterable[object]) -> ASGIApp | None:
    """An ASGI app that answers with the metrics of the :class:`PrometheusMetrics` among
    ``middleware`` (``app.middleware``), or ``None`` if there is none."""
    found = registries(middleware)
    if not found:
        return None
    endpoint: ASGIApp = make_asgi_app(_one(found))
    return endpoint


def serve(
    middleware: Iterable[object], host: str, port: int
) -> tuple[WSGIServer, threading.Thread] | None:
    """Serve the metrics of ``middleware``'s :class:`PrometheusMetrics` over HTTP in a thread
    (``prometheus_client.start_http_server``); ``None`` if there is none."""
    found = registries(middleware)
    if not found:
        return None
    return start_http_server(port, host, _one(found))


def serve_multiprocess(path: str, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serve, in a thread, the metrics that processes with ``PROMETHEUS_MULTIPROC_DIR=path``
    write: one scrape for all of them."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return start_http_server(port, host, registry)


def process_exited(pid: int, path: str) -> None:
    """Forget the gauges of a process that wrote to ``path`` and exited (its counters stay)."""
    mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
