"""The App: Lambda's asynchronous invocation model inside one asyncio process.

Start reading here. ``App`` holds the wiring, the lifecycle and the public API; the
engine is a handful of collaborators it holds as fields, each in its own module with its
own state, built with explicit arguments: in ``__init__``, or when the app starts
(:meth:`App._build_engine`) for those that need its final logger and clock reader:

- ``_handler_set.HandlerSet``: the handlers served, and the :class:`Event` made for one;
- ``_queue.EventQueue`` (bounded, with a retry lane) and ``_scheduler.RetryScheduler``
  (over the ``_wheel.TimerWheel``) hold events waiting to run;
- ``_accounting.Accounting`` owns the counters, ``stats()`` and idle waiting;
- ``_workers.WorkerPool``: the ``concurrency`` worker tasks, the inline fast path and
  the general path of one event;
- ``_attempts.AttemptRunner``: one attempt, with the one exception classifier and a
  typed result (``Succeeded`` / ``Failed``);
- ``_idempotent_runs.IdempotentRuns``: the idempotency steps around an attempt;
- ``_outcomes.Outcomes``: the failure router (retry, age, dead letter, destinations)
  and ``finish``, the one way out of the engine;
- ``_request_response.RequestResponse``: synchronous invocations, through the same parts;
- ``_middleware.Hooks``, ``_delivery.Deliverer`` and ``_resources.Resources``: middleware
  calls, sink sends, and entering each sink and source once.

``invoke`` puts an :class:`Event` on the queue and answers 202 at once; one anyio task
group owns the workers and the scheduler; it is entered by ``async with app`` and left by
it, after a graceful drain and a spill of whatever is left. The README's Design section
follows an event from ``invoke`` to a dead-letter sink through these modules.

This module is the one of the engine above 500 lines: it holds one concept, the App's
public surface (a quarter of it is the docstrings of that API) and its lifecycle; the
hot ``invoke`` path stays here, inline, because one more call per event is measurable.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, overload

import anyio
import structlog
from anyio.abc import TaskStatus

from ._accounting import Accounting
from ._app_options import check_int, check_parts, check_seconds, wall_clock
from ._attempts import AttemptRunner
from ._clock import Clock, LoopClock
from ._contracts import Defer, QueuedEvent, Settle, SharedQueue, Sink, Source
from ._delivery import Deliverer
from ._errors import AppClosed, ConfigurationError, QueueFull, UnknownHandler
from ._event import Event
from ._handler import Handler, HandlerConfig, P, R, make_decorator
from ._handler_set import HandlerSet
from ._idempotent_runs import IdempotentRuns
from ._logging import log_context
from ._middleware import Hooks
from ._outcomes import Outcomes
from ._queue import EventQueue, QueueStatistics
from ._request_response import RequestResponse
from ._resources import Resources
from ._results import Accepted, InvocationResult, Stats
from ._scheduler import RetryScheduler
from ._threads import HandlerThreads, ThreadStatistics
from ._wheel import TimerWheel, WheelStatistics
from ._workers import WorkerPool

__all__ = ("App", "InvocationType")

InvocationType = Literal["Event", "RequestResponse", "DryRun"]
_INVOCATION_TYPES = ("Event", "RequestResponse", "DryRun")
_YIELD_EVERY = 64  # invoke() yields to the loop once per 64 accepted events


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


# invoke() checks the state against a global: an enum member read off its class is an
# unspecialised attribute lookup on every call
_RUNNING = _State.RUNNING
_new_object = object.__new__


class App:
    """An event-processing app: handlers, a bounded event queue, workers and retries.

    Use it as an async context manager inside your service::

        app = eventflow.App()

        async with app:
            accepted = await app.invoke("resize", {"key": "photo.jpg"})

    Args:
        name: The app's name, for logs.
        queue_size: Bound on events accepted and not started yet; ``invoke()`` waits
            and ``invoke_nowait()`` raises :class:`QueueFull` beyond it.
        concurrency: Number of workers: attempts that may run at once, all handlers together.
        shutdown_timeout: Seconds that leaving ``async with`` waits for queued, running
            and scheduled events before it cancels and spills the rest.
        handlers: Handlers to serve. ``None`` serves every handler registered with
            ``@eventflow.handler`` (plus those registered with ``@app.handler``).
        spill: Sink that receives events not finished at shutdown (body = payload,
            attributes ``RequestID``, ``Handler``, ``Attempt``); without one they are
            logged at error level with their payload. Either way ``undelivered`` counts them.
            Events from a source are released back to it instead.
        sources: Sources whose events this app runs (see :mod:`eventflow.sources`).
        clock: The clock to use; :class:`eventflow.testing.VirtualClock` in tests.
        logger: A structlog logger to log through (default: ``structlog.get_logger("eventflow")``).
        tick: Resolution of the retry timer wheel in seconds (a retry fires at most one
            tick after its due time).
        max_scheduled: Capacity of the retry scheduler.
        sink_timeout: Seconds a failing sink is retried (with backoff) before the
            message is counted as a dead-letter or destination error and logged.
        thread_limit: Threads alive at once for plain ``def`` handlers; the thread of an
            attempt that timed out or was abandoned at shutdown counts until it returns.
        region: AWS region used in function ARNs.
        account_id: AWS account ID used in function ARNs.
        queue: A shared event queue (see :mod:`eventflow.queues`), such as
            :class:`eventflow.aws.SQSEventQueue`, to keep ``Event`` invocations in instead
            of the bounded in-memory queue: every app on it runs its events, and retries
            wait in it. ``None`` (the default) is the in-memory queue of ``queue_size``.
        middleware: Objects with optional hooks around the life of an event
            (``accepted``, ``attempt``, ``retry_scheduled``, ``finished``; see
            :class:`eventflow.Middleware`), for metrics, tracing and the like.
        log_success: Log ``attempt.started`` and ``attempt.succeeded`` (info) for every
            attempt, for a person reading along; off by default, since two lines per
            event cost far more than a no-op event. Failures, retries, dead letters and
            expiries are always logged.
    """

    # slots: invoke() reads a dozen of these per event, and a slot is the cheapest read
    # (__dict__ too: an application may still hang its own attributes on its app)
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_account_id",
        "_acct",
        "_clock",
        "_concurrency",
        "_deliverer",
        "_handler_set",
        "_hooks",
        "_info",
        "_log",
        "_log_attempts",
        "_log_success_option",
        "_logger_arg",
        "_max_scheduled",
        "_now",
        "_outcomes",
        "_queue",
        "_queue_size",
        "_region",
        "_request_responses",
        "_resources",
        "_scheduler",
        "_shared",
        "_shutdown_timeout",
        "_sink_timeout",
        "_source_scopes",
        "_sources",
        "_spill",
        "_state",
        "_tg",
        "_thread_limit",
        "_threads",
        "_tick",
        "_wall",
        "_wheel",
        "_workers",
        "_yield_at",
        "name",
    )

    # the engine's parts, wired when the app starts (see _build_engine)
    _outcomes: Outcomes
    _workers: WorkerPool
    _request_responses: RequestResponse

    def __init__(
        self,
        *,
        name: str = "eventflow",
        queue_size: int = 10_000,
        concurrency: int = 1_000,
        shutdown_timeout: float = 30.0,
        handlers: Iterable[Handler] | None = None,
        spill: Sink | None = None,
        sources: Iterable[Source] = (),
        clock: Clock | None = None,
        logger: Any = None,
        tick: float = 0.01,
        max_scheduled: int = 1_000_000,
        sink_timeout: float = 10.0,
        thread_limit: int = 40,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        queue: SharedQueue | None = None,
        middleware: Iterable[object] = (),
        log_success: bool = False,
    ) -> None:
        self.name = name
        self._queue_size = check_int("queue_size", queue_size, 1)
        self._concurrency = check_int("concurrency", concurrency, 1)
        self._shutdown_timeout = check_seconds("shutdown_timeout", shutdown_timeout)
        self._tick = check_seconds("tick", tick)
        self._max_scheduled = check_int("max_scheduled", max_scheduled, 1)
        self._sink_timeout = check_seconds("sink_timeout", sink_timeout)
        self._thread_limit = check_int("thread_limit", thread_limit, 1)
        self._sources = check_parts(spill, clock, queue, sources)
        self._shared = queue
        self._spill = spill
        self._source_scopes: list[anyio.CancelScope] = []
        self._resources = Resources()
        self._clock: Clock = clock if clock is not None else LoopClock()
        mws = list(middleware)
        self._hooks = (
            Hooks(mws, self._clock.now, structlog.get_logger("eventflow")) if mws else None
        )
        # a custom (virtual) clock moves wall time too, so leases and records follow it
        self._wall = time.time if clock is None else wall_clock(clock)
        self._logger_arg = logger
        self._region = region
        self._account_id = account_id
        self._handler_set = HandlerSet(name, handlers)
        self._state = _State.NEW
        self._now = self._clock.now
        self._queue = EventQueue(self._queue_size)
        self._wheel: TimerWheel[Event] = TimerWheel(tick=self._tick, capacity=self._max_scheduled)
        self._scheduler = RetryScheduler(self._wheel, self._clock, self._queue.put_retry)
        # the counters, stats() and idle waiting: see _accounting
        self._acct = Accounting(self.name, self._queue, self._scheduler, self._clock)
        self._yield_at = _YIELD_EVERY  # the count of accepted events at which invoke() yields
        self._log: Any = None
        self._info = True
        self._log_success_option = bool(log_success)
        self._log_attempts = False
        self._deliverer: Deliverer | None = None
        self._tg: Any = None
        self._threads: HandlerThreads | None = None

    # -- handlers -------------------------------------------------------------------

    def _register(self, h: Handler) -> None:
        if self._state is not _State.NEW:
            raise ConfigurationError(
                f"Cannot add handler {h.name!r} after the app has started; register it first."
            )
        self._handler_set.add(h)

    @overload
    def handler(self, fn: Callable[P, R], /, **options: Any) -> Handler[P, R]: ...
    @overload
    def handler(
        self, fn: None = None, /, **options: Any
    ) -> Callable[[Callable[P, R]], Handler[P, R]]: ...
    def handler(self, fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Register a handler on this app only; bare or with the options of
        :class:`eventflow.Handler`."""
        return make_decorator(self._register, fn, options)

    def add_middleware(self, *middleware: object) -> None:
        """Add middleware after the ones given to ``App(middleware=...)``, before the app starts.

        For a program that runs an app it did not build, as ``eventflow serve
        --log-format lambda`` adds :class:`eventflow.logs.LambdaLogs`.

        Raises:
            RuntimeError: the app has already started.
            ConfigurationError: an object has none of the hooks.
        """
        if self._state is not _State.NEW:
            raise RuntimeError(
                "Middleware can be added only before the app starts; add it before "
                "'async with app:' or pass it as App(middleware=[...])."
            )
        if not middleware:
            return
        mws = [*(self._hooks.middleware if self._hooks is not None else ()), *middleware]
        self._hooks = Hooks(mws, self._clock.now, structlog.get_logger("eventflow"))

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """The handlers this app serves, by name."""
        if self._state is _State.NEW:
            return self._handler_set.resolve()
        return {name: rt.handler for name, rt in self._handler_set.runtimes.items()}

    def handler_config(self, handler: str | Handler) -> HandlerConfig:
        """The settings that events accepted now for ``handler`` will run with."""
        if self._state is _State.NEW:
            name = handler if isinstance(handler, str) else handler.name
            h = self._handler_set.resolve().get(name)
            if h is None:
                raise UnknownHandler(f"No handler {handler!r} in app {self.name!r}.")
            return h.config
        return self._handler_set.lookup(handler).config

    async def configure_handler(
        self, handler: str | Handler, config: HandlerConfig | None = None, **changes: Any
    ) -> HandlerConfig:
        """Change a handler's settings for the events accepted from now on.

        Events already accepted keep the settings they were accepted with, as in Lambda
        when PutFunctionEventInvokeConfig changes retries, age or destinations.

        Args:
            handler: The handler's name or the decorated function.
            config: A whole new :class:`eventflow.HandlerConfig` (``handler.config`` restores
                the decorator's options), or ``None`` to change only ``changes``.
            changes: Settings to change: ``max_retries``, ``retry_delays``,
                ``max_event_age``, ``timeout``, ``dead_letter``, ``on_success``,
                ``on_failure``.

        Returns:
            The new settings. New sinks are opened (entered) before they are used.
        """
        if self._state is not _State.RUNNING:
            raise self._closed_error()
        rt = self._handler_set.lookup(handler)
        new = (config or rt.config).replace(**changes) if changes else (config or rt.config)
        for sink in new.resources():
            await self._resources.open_later(sink)
        rt.config = new
        self._log.info("handler.configured", handler=rt.name, config=repr(new))
        return new

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> App:
        if self._state is not _State.NEW:
            raise RuntimeError(
                "An eventflow App can be started only once; create a new App to start again."
            )
        log = (
            self._logger_arg if self._logger_arg is not None else structlog.get_logger("eventflow")
        )
        # resolve the lazy proxy once: per-call proxy resolution costs more than a no-op event
        self._log = log = log.bind()
        is_enabled_for = getattr(log, "is_enabled_for", None)
        self._info = bool(is_enabled_for(logging.INFO)) if callable(is_enabled_for) else True
        self._log_attempts = self._log_success_option and self._info
        self._clock.now()  # binds a LoopClock to this loop, so handler threads can read it
        if isinstance(self._clock, LoopClock):
            loop = asyncio.get_running_loop()
            # the default loop's time() is time.monotonic() behind a Python call; skip the call
            plain = getattr(type(loop), "time", None) is asyncio.BaseEventLoop.time
            self._now = time.monotonic if plain else loop.time
        self._deliverer = Deliverer(self._clock, log, timeout=self._sink_timeout)
        if self._hooks is not None:
            self._hooks.bind(self._now, log, self)
        self._threads = HandlerThreads(self._thread_limit, f"eventflow-{self.name}")
        self._build_engine(log, self._deliverer, self._threads)
        self._handler_set.start(
            region=self._region, account_id=self._account_id, clock=self._clock, log=log
        )
        sinks = [s for rt in self._handler_set.runtimes.values() for s in rt.config.resources()]
        if self._spill is not None:
            sinks.append(self._spill)
        # sources are entered before and exited after the task group, like sinks
        shared = [self._shared] if self._shared is not None else []
        await self._resources.open([*sinks, *self._sources, *shared])
        tg = anyio.create_task_group()
        try:
            await tg.__aenter__()
        except BaseException:
            await self._resources.close(*sys.exc_info())
            raise
        self._tg = tg
        for _ in range(self._concurrency):
            tg.start_soon(self._workers.work)
        tg.start_soon(self._scheduler.run)
        self._state = _State.RUNNING
        try:
            if self._shared is not None:
                await tg.start(self._run_source, self._shared)
            for src in self._sources:
                await tg.start(self._run_source, src)
        except BaseException:
            await self.__aexit__(*sys.exc_info())
            raise
        if self._info:
            log.info(
                "app.started",
                app=self.name,
                handlers=sorted(self._handler_set.runtimes),
                concurrency=self._concurrency,
                queue_size=self._queue_size,
            )
        return self

    def _build_engine(self, log: Any, deliverer: Deliverer, threads: HandlerThreads) -> None:
        """Wire the engine's parts, once the logger and the clock reader are final."""
        acct, hooks, now, log_attempts = self._acct, self._hooks, self._now, self._log_attempts
        self._outcomes = Outcomes(
            accounting=acct,
            scheduler=self._scheduler,
            deliverer=deliverer,
            hooks=hooks,
            log=log,
            now=now,
            info=self._info,
            log_attempts=log_attempts,
        )
        runner = AttemptRunner(
            accounting=acct,
            clock=self._clock,
            now=now,
            scheduler=self._scheduler,
            threads=threads,
            hooks=hooks,
            log=log,
            log_attempts=log_attempts,
        )
        idempotent = IdempotentRuns(
            accounting=acct,
            runner=runner,
            scheduler=self._scheduler,
            clock=self._clock,
            now=now,
            wall=self._wall,
            log=log,
        )
        self._workers = WorkerPool(
            queue=self._queue,
            accounting=acct,
            runner=runner,
            idempotent=idempotent,
            outcomes=self._outcomes,
            hooks=hooks,
            now=now,
            wall=self._wall,
            log=log,
            log_attempts=log_attempts,
        )
        self._request_responses = RequestResponse(
            runner=runner, idempotent=idempotent, outcomes=self._outcomes, workers=self._workers
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state is not _State.RUNNING:
            return
        self._state = _State.CLOSING
        for scope in self._source_scopes:
            scope.cancel()  # intake stops first
        self._queue.wake_all_producers()
        log = self._log
        try:
            if exc_type is None:
                try:
                    # local work only: a shared queue keeps what waits in it for the next app
                    await self._acct.wait_idle(self._shutdown_timeout)
                except TimeoutError:
                    log.warning(
                        "shutdown.timed_out",
                        app=self.name,
                        shutdown_timeout=self._shutdown_timeout,
                        queued=len(self._queue),
                        in_flight=self._acct.in_flight,
                        scheduled=len(self._scheduler),
                    )
        finally:
            self._tg.cancel_scope.cancel()
            try:
                await self._tg.__aexit__(None, None, None)
            finally:
                try:
                    with anyio.CancelScope(shield=True):
                        await self._spill_leftovers()
                finally:
                    self._state = _State.CLOSED
                    assert self._threads is not None
                    self._threads.close()  # a thread still running ends when its function does
                    await self._resources.close()
                    if self._info:
                        log.info("app.stopped", app=self.name, **self._acct.as_dict())

    async def _run_source(
        self, source: Source | SharedQueue, *, task_status: TaskStatus[None]
    ) -> None:
        with anyio.CancelScope() as scope:
            self._source_scopes.append(scope)
            await source.run(self, task_status=task_status)

    async def _spill_leftovers(self) -> None:
        leftovers = self._outcomes.take_interrupted()
        moved = self._queue.drain()
        for rt in self._handler_set.runtimes.values():
            while rt.parked:
                moved.append(rt.parked.popleft())
                self._queue.unpark()
        moved.extend(self._scheduler.drain())
        # counted in flight while their spill is being sent, so the equation holds throughout
        self._acct.in_flight += len(moved)
        leftovers.extend(moved)
        for ev in leftovers:
            await self._outcomes.release(ev, self._spill)
        self._acct.wake_idle()

    # -- invoking -------------------------------------------------------------------

    def _closed_error(self) -> AppClosed:
        if self._state is _State.NEW:
            return AppClosed(
                f"App {self.name!r} has not started; use 'async with app:' before invoking."
            )
        return AppClosed(f"App {self.name!r} is shutting down and accepts no more events.")

    def invoke_nowait(
        self,
        handler: str | Handler,
        payload: Any,
        *,
        invocation_type: InvocationType = "Event",
    ) -> Accepted | InvocationResult:
        """Like :meth:`invoke`, without waiting: raises :class:`QueueFull` when full.

        Only ``Event`` and ``DryRun`` invocations can be made without waiting.
        """
        if invocation_type != "Event":
            if invocation_type == "DryRun":
                return self._dry_run(handler, payload)
            self._check_invocation_type(invocation_type)
            raise ConfigurationError(
                "invoke_nowait() cannot wait for a RequestResponse result; "
                "use 'await app.invoke(..., invocation_type=\"RequestResponse\")'."
            )
        if self._state is not _RUNNING:
            raise self._closed_error()
        if self._shared is not None:
            raise ConfigurationError(
                "invoke_nowait() cannot put an event on a shared queue without waiting for "
                "it to be stored; use 'await app.invoke(...)' with App(queue=...)."
            )
        ev = self._handler_set.new_event(handler, payload, self._now())
        if self._hooks is not None:
            ev.trace_context = self._hooks.inject(ev)  # in the invoker's context
        self._queue.put_nowait(ev)
        self._acct.received += 1
        if self._hooks is not None:
            self._hooks.accepted(ev)
        return Accepted(ev.request_id)

    @overload
    async def invoke(
        self, handler: str | Handler, payload: Any, *, invocation_type: Literal["Event"] = ...
    ) -> Accepted: ...
    @overload
    async def invoke(
        self,
        handler: str | Handler,
        payload: Any,
        *,
        invocation_type: Literal["RequestResponse", "DryRun"],
        client_context: Mapping[str, Any] | None = None,
    ) -> InvocationResult: ...
    async def invoke(
        self,
        handler: str | Handler,
        payload: Any,
        *,
        invocation_type: InvocationType = "Event",
        client_context: Mapping[str, Any] | None = None,
    ) -> Accepted | InvocationResult:
        """Invoke a handler the way Lambda's Invoke API does.

        Args:
            handler: The handler's name or the decorated function.
            payload: Any JSON-serialisable value; the handler receives it as ``event``.
            invocation_type: ``"Event"`` queues the event and returns :class:`Accepted`
                (202) at once, waiting only while the queue is full; retries, dead
                letters and destinations follow. ``"RequestResponse"`` runs one attempt
                now, with no retries, and returns its :class:`InvocationResult` (200).
                ``"DryRun"`` only validates and returns a 204 result.
            client_context: For ``"RequestResponse"``: the caller's ``ClientContext``
                (``{"client": ..., "custom": ..., "env": ...}``), which the handler reads
                as ``context.client_context``. Lambda passes it to synchronous calls only.

        Raises:
            UnknownHandler: no such handler in this app (nothing is queued).
            InvalidPayload: the payload is not JSON or breaks a payload limit (nesting,
                NaN, long integers, lone surrogates; nothing is queued).
            AppClosed: the app has not started or is shutting down.
        """
        if invocation_type != "Event":
            # first, so that the test jumps a short way (a long jump is not specialised)
            if invocation_type == "RequestResponse":
                return await self._request_response(handler, payload, client_context)
            if invocation_type == "DryRun":
                return self._dry_run(handler, payload)
            self._check_invocation_type(invocation_type)
            raise AssertionError("unreachable")
        if self._state is not _RUNNING:
            raise self._closed_error()
        now = self._now  # an attribute, not a method: a method call would not specialise
        ev = self._handler_set.new_event(handler, payload, now())
        hooks = self._hooks
        if hooks is not None:
            ev.trace_context = hooks.inject(ev)  # in the invoker's context
        if self._shared is not None:
            await self._shared.put(self._queued(ev))  # no coroutine of our own around it
            return self._enqueued(ev)
        try:
            self._queue.put_nowait(ev)
        except QueueFull:
            return await self._enqueue(ev)
        acct = self._acct
        acct.received = received = acct.received + 1
        if hooks is not None:
            hooks.accepted(ev)
        if received >= self._yield_at:  # a comparison, specialised; & is not
            # a producer that never blocks would keep workers from starting until its
            # burst ends; give them the loop now and then
            self._yield_at = received + _YIELD_EVERY
            await asyncio.sleep(0)
        # Accepted(request_id) without its __init__ call: about 440 instructions less
        accepted = _new_object(Accepted)
        accepted.request_id = ev.request_id
        return accepted

    def _queued(self, ev: Event) -> QueuedEvent:
        """A new event as a shared queue stores it."""
        return QueuedEvent(ev.request_id, ev.rt.name, ev.payload, self._wall(), 0, ev.trace_context)

    def _enqueued(self, ev: Event) -> Accepted:
        """Count and log ``ev`` once a shared queue stored it."""
        self._acct.enqueued += 1
        if self._info:
            self._log.info(
                "event.enqueued", request_id=ev.request_id, handler=ev.rt.name, attempt=0
            )
        return Accepted(ev.request_id)

    async def deliver(self, event: QueuedEvent, *, settle: Settle, defer: Defer) -> None:
        """Take an event from a shared queue (see :mod:`eventflow.queues`) to run here.

        Waits while the local queue is full. ``settle(request_id, outcome)`` is called
        once the event succeeded, failed for good or was released at shutdown;
        ``defer(request_id, delay)`` instead, when a retry is due in ``delay`` seconds.

        Raises:
            UnknownHandler: this app has no handler of that name (nothing is taken).
            AppClosed: the app is shutting down (nothing is taken).
        """
        if self._state is not _State.RUNNING:
            raise self._closed_error()
        ev = self._handler_set.queued_event(event, self._now(), self._wall())
        ev.settle = settle
        ev.defer = defer
        if ev.error is not None:
            reason = ev.error["errorMessage"]
            self._log.error("event.attempt_interrupted", reason=reason, **log_context(ev))
        await self._enqueue(ev)

    async def submit(
        self, handler: str | Handler, payload: Any, *, settle: Settle | None = None
    ) -> Accepted:
        """Accept an event from a source: ``invoke(..., "Event")`` plus a settle callback.

        ``settle(request_id, outcome)`` is called exactly once, when the event reaches its
        terminal outcome (see :class:`eventflow.sources.Outcome`).
        """
        if self._state is not _State.RUNNING:
            raise self._closed_error()
        ev = self._handler_set.new_event(handler, payload, self._now())
        if self._hooks is not None:
            ev.trace_context = self._hooks.inject(ev)  # in the invoker's context
        ev.settle = settle
        return await self._enqueue(ev)

    async def reject(
        self,
        handler: str | Handler,
        payload: Any,
        reason: str,
        *,
        settle: Settle | None = None,
        request_id: str | None = None,
    ) -> Accepted:
        """Accept an event that cannot run (say, a body that is not JSON) and send it down
        the failure path, with ``reason`` as its error message: no attempt, no retries.
        ``request_id`` is the event's own, if it has one already (a shared queue's row).
        """
        if self._state is not _State.RUNNING:
            raise self._closed_error()
        ev = self._handler_set.rejected_event(handler, payload, reason, request_id)
        ev.settle = settle
        self._log.error("event.rejected", reason=reason, **log_context(ev))
        return await self._enqueue(ev)

    async def _enqueue(self, ev: Event) -> Accepted:
        """Queue ``ev``, waiting while the queue is full (or raise AppClosed if it closes)."""
        while True:
            try:
                self._queue.put_nowait(ev)
            except QueueFull:
                await self._queue.wait_for_room()
                if self._state is not _State.RUNNING:
                    raise self._closed_error() from None
            else:
                self._acct.received += 1
                if self._hooks is not None:
                    self._hooks.accepted(ev)
                return Accepted(ev.request_id)

    @staticmethod
    def _check_invocation_type(invocation_type: object) -> None:
        if invocation_type not in _INVOCATION_TYPES:
            raise ConfigurationError(
                f"invocation_type must be 'Event', 'RequestResponse' or 'DryRun', "
                f"got {invocation_type!r}."
            )

    def _dry_run(self, handler: str | Handler, payload: Any) -> InvocationResult:
        if self._state is not _State.RUNNING:
            raise self._closed_error()
        ev = self._handler_set.new_event(handler, payload, self._now())
        return InvocationResult(status_code=204, request_id=ev.request_id)

    async def _request_response(
        self,
        handler: str | Handler,
        payload: Any,
        client_context: Mapping[str, Any] | None = None,
    ) -> InvocationResult:
        if self._state is not _State.RUNNING:
            raise self._closed_error()
        ev = self._handler_set.new_event(handler, payload, self._now())
        if client_context is not None:
            ev.client_context = dict(client_context)
        return await self._request_responses.call(ev)

    # -- draining and statistics ----------------------------------------------------

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until no event is queued, running or waiting for a retry.

        With a shared queue, that means every app's events on it: until the queue is
        empty and this app is idle.

        Args:
            timeout: Seconds (on the app's clock) to wait at most; ``None`` waits as long
                as it takes.

        Raises:
            TimeoutError: the timeout passed first.
        """
        shared = self._shared
        if shared is None:
            await self._acct.wait_idle(timeout)
            return
        with anyio.CancelScope() as scope:
            handle = None
            if timeout is not None:
                handle = self._clock.call_at(self._now() + timeout, scope.cancel)
            try:
                while True:
                    await self._acct.wait_idle(None)
                    await shared.wait_empty()
                    if self._acct.idle():
                        return
            finally:
                if handle is not None:
                    handle.cancel()
        raise TimeoutError(
            f"App {self.name!r} did not drain within {timeout:g} s: {len(self._queue)} queued, "
            f"{self._acct.in_flight} in flight here, and the shared queue {shared!r} not empty."
        )

    def stats(self) -> Stats:
        """A frozen snapshot of the app's counters (see :class:`eventflow.Stats`)."""
        return self._acct.stats()

    @property
    def middleware(self) -> tuple[object, ...]:
        """The middleware given to the app, in order."""
        return self._hooks.middleware if self._hooks is not None else ()

    def queue_statistics(self) -> QueueStatistics:
        """A snapshot of the event queue."""
        return self._queue.statistics()

    def scheduler_statistics(self) -> WheelStatistics:
        """A snapshot of the retry scheduler's timer wheel."""
        return self._scheduler.statistics()

    def thread_statistics(self) -> ThreadStatistics:
        """A snapshot of the threads that run plain ``def`` handlers (once started)."""
        if self._threads is None:
            return ThreadStatistics(self._thread_limit, 0, 0, 0, 0)
        return self._threads.statistics()

    @property
    def log_success(self) -> bool:
        """Whether every attempt logs ``attempt.started`` and ``attempt.succeeded``.

        Settable until the app starts (the command line turns it on for ``serve``,
        ``invoke`` and the demo, where a person reads the lines).
        """
        return self._log_success_option

    @log_success.setter
    def log_success(self, value: bool) -> None:
        if self._state is not _State.NEW:
            raise ConfigurationError(
                "log_success can be changed only before the app starts; set it first, or "
                "pass App(log_success=...)."
            )
        self._log_success_option = bool(value)

    @property
    def concurrency(self) -> int:
        """The number of workers: attempts that may run at once."""
        return self._concurrency

    @property
    def shutdown_timeout(self) -> float:
        """Seconds that leaving ``async with`` waits for unfinished events; sources bound
        the calls they make while the app stops by it."""
        return self._shutdown_timeout

    @property
    def queue(self) -> SharedQueue | None:
        """The shared event queue given as ``App(queue=...)``, or ``None`` (in memory)."""
        return self._shared

    @property
    def sources(self) -> tuple[Source, ...]:
        """The sources this app runs (``App(sources=[...])``), in order."""
        return tuple(self._sources)

    @property
    def region(self) -> str:
        """The AWS region used in this app's function ARNs."""
        return self._region

    @property
    def account_id(self) -> str:
        """The AWS account ID used in this app's function ARNs."""
        return self._account_id

    @property
    def clock(self) -> Clock:
        """The clock this app runs on."""
        return self._clock

    def __repr__(self) -> str:
        return f"<eventflow.App {self.name!r} {self._state.value}>"
