"""The App: Lambda's asynchronous invocation model inside one asyncio process.

``invoke`` puts an :class:`Event` on the bounded :class:`EventQueue` and answers 202 at
once; ``concurrency`` worker tasks take events only when free and run one attempt each;
a failed attempt goes to the :class:`RetryScheduler` (a timer wheel) and comes back on
the queue's retry lane; an event that succeeds, runs out of retries or grows too old
gets its dead letter / destination record sent and reaches its terminal outcome.

One anyio task group owns the workers and the scheduler; it is entered by
``async with app`` and left by it, after a graceful drain and a spill of whatever is left.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal, overload

import anyio
import structlog
from anyio.abc import TaskStatus

from . import _registry
from ._accounting import Accounting
from ._clock import Clock, LoopClock
from ._context import Context
from ._contracts import Defer, Outcome, QueuedEvent, Settle, SharedQueue, Sink, Source
from ._delivery import Deliverer
from ._engine_base import CLAIMED, FLAT_TYPES
from ._engine_idempotency import IdempotentRuns
from ._errors import (
    AppClosed,
    ConfigurationError,
    QueueFull,
    UnknownHandler,
)
from ._event import Event
from ._handler import Handler, HandlerConfig, P, R, make_decorator
from ._ids import new_request_id
from ._logging import attempt_var as _attempt_var
from ._logging import handler_var as _handler_var
from ._logging import request_id_var
from ._middleware import Hooks
from ._payload import SAFE_INT, check_payload, private_copy, to_json
from ._queue import EventQueue, QueueStatistics
from ._records import (
    EVENT_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    marshal_error,
    marshal_failure,
    spill_message,
)
from ._results import Accepted, InvocationResult, Stats
from ._runtime import HandlerRuntime
from ._scheduler import RetryScheduler
from ._tail import TailLog
from ._threads import HandlerThreads, ThreadStatistics
from ._wheel import TimerWheel, WheelStatistics

__all__ = ("App", "InvocationType")

InvocationType = Literal["Event", "RequestResponse", "DryRun"]
_INVOCATION_TYPES = ("Event", "RequestResponse", "DryRun")
_YIELD_EVERY_MASK = 63  # invoke() yields to the loop once per 64 accepted events


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


def _wall_clock(clock: Clock) -> Callable[[], float]:
    """Wall-clock seconds that move with ``clock``, from now on."""
    offset = time.time() - clock.now()
    now = clock.now
    return lambda: offset + now()


def _check_int(option: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{option} must be an integer >= {minimum}, got {value!r}.")
    return value


def _check_seconds(option: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{option} must be a number of seconds, got {value!r}.")
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(f"{option} must be a positive number of seconds, got {value!r}.")
    return float(value)


class App(IdempotentRuns):
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
        self._queue_size = _check_int("queue_size", queue_size, 1)
        self._concurrency = _check_int("concurrency", concurrency, 1)
        self._shutdown_timeout = _check_seconds("shutdown_timeout", shutdown_timeout)
        self._tick = _check_seconds("tick", tick)
        self._max_scheduled = _check_int("max_scheduled", max_scheduled, 1)
        self._sink_timeout = _check_seconds("sink_timeout", sink_timeout)
        self._thread_limit = _check_int("thread_limit", thread_limit, 1)
        if spill is not None and not callable(getattr(spill, "send", None)):
            raise ConfigurationError(
                f"spill must be a sink (an object with 'async def send(self, message)'), "
                f"got {spill!r}."
            )
        if clock is not None and not isinstance(clock, Clock):
            raise ConfigurationError(
                f"clock must have now() and call_at(when, callback) methods, got {clock!r}."
            )
        if queue is not None and not all(
            callable(getattr(queue, m, None)) for m in ("put", "run", "wait_empty")
        ):
            raise ConfigurationError(
                f"queue must be a shared event queue (with put(), run() and wait_empty(), "
                f"such as eventflow.aws.SQSEventQueue or eventflow.queues.MemoryQueue), "
                f"got {queue!r}; leave it None for the in-memory queue."
            )
        self._shared = queue
        self._spill = spill
        self._sources = list(sources)
        for src in self._sources:
            if not callable(getattr(src, "run", None)):
                raise ConfigurationError(
                    f"sources must hold sources, objects with "
                    f"'async def run(self, app, *, task_status)', got {src!r}."
                )
        self._source_scopes: list[anyio.CancelScope] = []
        self._entered: set[int] = set()  # ids of the sinks and sources this app has opened
        self._holders: Any = None
        self._release_resources = anyio.Event()
        self._key_waiters: dict[str, list[Event]] = {}  # duplicates waiting for a claim
        self._key_futures: dict[str, list[asyncio.Future[None]]] = {}
        self._clock: Clock = clock if clock is not None else LoopClock()
        mws = list(middleware)
        self._hooks = (
            Hooks(mws, self._clock.now, structlog.get_logger("eventflow")) if mws else None
        )
        # a custom (virtual) clock moves wall time too, so leases and records follow it
        self._wall = time.time if clock is None else _wall_clock(clock)
        self._logger_arg = logger
        self._region = region
        self._account_id = account_id
        self._uses_default_registry = handlers is None
        self._handlers: dict[str, Handler] = {}
        for h in handlers or ():
            if not isinstance(h, Handler):
                raise ConfigurationError(
                    f"handlers must hold functions decorated with @eventflow.handler, got {h!r}."
                )
            self._add_handler(h)
        self._state = _State.NEW
        self._runtimes: dict[str, HandlerRuntime] = {}
        # name -> runtime and Handler object -> runtime, so invoke() needs one lookup
        self._index: dict[object, HandlerRuntime] = {}
        self._now = self._clock.now
        self._queue = EventQueue(self._queue_size)
        self._wheel: TimerWheel[Event] = TimerWheel(tick=self._tick, capacity=self._max_scheduled)
        self._scheduler = RetryScheduler(self._wheel, self._clock, self._queue.put_retry)
        # the counters, stats() and idle waiting: see _accounting
        self._acct = Accounting(self.name, self._queue, self._scheduler, self._clock)
        self._log: Any = None
        self._info = True
        self._log_success_option = bool(log_success)
        self._log_attempts = False
        self._deliverer: Deliverer | None = None
        self._tg: Any = None
        self._exit_stack: AsyncExitStack | None = None
        self._threads: HandlerThreads | None = None
        self._running_threads: dict[str, asyncio.Future[None]] = {}
        self._held_retries: dict[str, float] = {}
        self._given_up: set[Event] = set()
        self._interrupted: list[Event] = []

    # -- handlers -------------------------------------------------------------------

    def _add_handler(self, h: Handler) -> None:
        existing = self._handlers.get(h.name)
        if existing is not None and existing is not h:
            raise ConfigurationError(
                f"This app already has a handler named {h.name!r}; give one of them another "
                "name with name=..."
            )
        self._handlers[h.name] = h

    def _register(self, h: Handler) -> None:
        if self._state is not _State.NEW:
            raise ConfigurationError(
                f"Cannot add handler {h.name!r} after the app has started; register it first."
            )
        self._add_handler(h)

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

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """The handlers this app serves, by name."""
        if self._state is _State.NEW:
            return self._resolve_handlers()
        return {name: rt.handler for name, rt in self._runtimes.items()}

    def _resolve_handlers(self) -> dict[str, Handler]:
        out = dict(self._handlers)
        if self._uses_default_registry:
            for name, h in _registry.default_handlers().items():
                mine = out.get(name)
                if mine is not None and mine is not h:
                    raise ConfigurationError(
                        f"Handler name {name!r} is registered both with @eventflow.handler and "
                        "with @app.handler; rename one of them."
                    )
                out[name] = h
        return out

    def _lookup(self, handler: str | Handler) -> HandlerRuntime:
        try:
            rt = self._index.get(handler)
        except TypeError:  # unhashable
            rt = None
        if rt is None:
            known = ", ".join(sorted(self._runtimes)) or "none"
            name = handler.name if isinstance(handler, Handler) else handler
            raise UnknownHandler(
                f"No handler {name!r} in app {self.name!r} (it serves: {known}); register it "
                "with @eventflow.handler or @app.handler, or pass it in App(handlers=[...])."
            )
        return rt

    def handler_config(self, handler: str | Handler) -> HandlerConfig:
        """The settings that events accepted now for ``handler`` will run with."""
        if self._state is _State.NEW:
            h = self._resolve_handlers().get(handler if isinstance(handler, str) else handler.name)
            if h is None:
                raise UnknownHandler(f"No handler {handler!r} in app {self.name!r}.")
            return h.config
        return self._lookup(handler).config

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
        rt = self._lookup(handler)
        new = (config or rt.config).replace(**changes) if changes else (config or rt.config)
        for sink in new.resources():
            if id(sink) not in self._entered and hasattr(sink, "__aenter__"):
                # opened and closed by a task the app owns: a sink holding a task group
                # must be left by the task that entered it, not by the caller's
                self._entered.add(id(sink))
                await self._holders.start(self._hold_resource, sink)
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
        for name, h in self._resolve_handlers().items():
            rt = HandlerRuntime(
                h, region=self._region, account_id=self._account_id, clock=self._clock, log=log
            )
            self._runtimes[name] = rt
            self._index[name] = rt
            self._index[h] = rt
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            seen = self._entered
            sinks = [s for rt in self._runtimes.values() for s in rt.config.resources()]
            if self._spill is not None:
                sinks.append(self._spill)
            # sources are entered before and exited after the task group, like sinks
            shared = [self._shared] if self._shared is not None else []
            for sink in [*sinks, *self._sources, *shared]:
                if id(sink) not in seen and hasattr(sink, "__aenter__"):
                    seen.add(id(sink))
                    await stack.enter_async_context(sink)
            # resources opened later (configure_handler) live in tasks of this group
            holders = anyio.create_task_group()
            await holders.__aenter__()
            tg = anyio.create_task_group()
            try:
                await tg.__aenter__()
            except BaseException:
                await holders.__aexit__(*sys.exc_info())
                raise
        except BaseException:
            await stack.aclose()
            raise
        self._holders = holders
        self._exit_stack = stack
        self._tg = tg
        for _ in range(self._concurrency):
            tg.start_soon(self._worker)
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
                handlers=sorted(self._runtimes),
                concurrency=self._concurrency,
                queue_size=self._queue_size,
            )
        return self

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
                    self._release_resources.set()
                    await self._holders.__aexit__(None, None, None)
                    assert self._exit_stack is not None
                    # not shielded: sources may hold task groups entered before ours
                    await self._exit_stack.aclose()
                    if self._info:
                        log.info("app.stopped", app=self.name, **self._acct.as_dict())

    async def _hold_resource(self, resource: Any, *, task_status: TaskStatus[None]) -> None:
        async with resource:
            task_status.started()
            await self._release_resources.wait()

    async def _run_source(
        self, source: Source | SharedQueue, *, task_status: TaskStatus[None]
    ) -> None:
        with anyio.CancelScope() as scope:
            self._source_scopes.append(scope)
            await source.run(self, task_status=task_status)

    async def _spill_leftovers(self) -> None:
        leftovers = list(self._interrupted)
        self._interrupted.clear()
        moved = self._queue.drain()
        for rt in self._runtimes.values():
            while rt.parked:
                moved.append(rt.parked.popleft())
                self._queue.unpark()
        moved.extend(self._scheduler.drain())
        # counted in flight while their spill is being sent, so the equation holds throughout
        self._acct.in_flight += len(moved)
        leftovers.extend(moved)
        assert self._deliverer is not None
        for ev in leftovers:
            ctx = {"request_id": ev.request_id, "handler": ev.rt.name, "attempt": ev.attempts}
            if ev.settle is not None:
                # the source still holds it (an SQS message, say): give it back, don't spill
                self._finish(ev, Outcome.RELEASED)
                self._log.warning("event.released", **ctx)
                continue
            if self._spill is not None:
                sent = await self._deliverer.deliver(
                    self._spill, spill_message(ev), role="spill", **ctx
                )
                if sent:
                    self._log.warning("event.spilled", **ctx)
            else:
                sent = False
            if not sent:
                self._log.error(
                    "event.undelivered",
                    reason="the app stopped before this event finished",
                    payload=ev.payload,
                    **ctx,
                )
            self._finish(ev, Outcome.RELEASED)
        self._acct.wake_idle()

    # -- invoking -------------------------------------------------------------------

    def _closed_error(self) -> AppClosed:
        if self._state is _State.NEW:
            return AppClosed(
                f"App {self.name!r} has not started; use 'async with app:' before invoking."
            )
        return AppClosed(f"App {self.name!r} is shutting down and accepts no more events.")

    def _new_event(self, handler: str | Handler, payload: Any) -> Event:
        try:
            # names and Handler objects are both keys of the index: one lookup either way
            rt = self._index.get(handler)
        except TypeError:  # unhashable: certainly not a handler
            rt = None
        if rt is None:
            rt = self._lookup(handler)
        flat = False
        if type(payload) is dict:
            # flat objects of ASCII strings, ints, bools and nulls are the common case:
            # checked here without a call; anything else by check_payload
            for k, v in payload.items():
                if type(k) is str and k.isascii():
                    t = type(v)
                    if t is str:
                        if v.isascii():
                            continue
                    elif t is int:
                        if -SAFE_INT < v < SAFE_INT:
                            continue
                    elif t is bool or v is None:
                        continue
                check_payload(payload, f"The payload for {rt.name!r}")
                flat = all(type(v) in FLAT_TYPES for v in payload.values())
                break
            else:
                flat = True
        elif not ((type(payload) is str and payload.isascii()) or payload is None):
            check_payload(payload, f"The payload for {rt.name!r}")
        ev = Event(new_request_id(), rt, payload, self._now(), flat)
        if self._hooks is not None:
            ev.trace_context = self._hooks.inject(ev)  # in the invoker's context
        return ev

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
        if self._state is not _State.RUNNING:
            raise self._closed_error()
        if self._shared is not None:
            raise ConfigurationError(
                "invoke_nowait() cannot put an event on a shared queue without waiting for "
                "it to be stored; use 'await app.invoke(...)' with App(queue=...)."
            )
        ev = self._new_event(handler, payload)
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
        if invocation_type == "Event":
            if self._state is not _State.RUNNING:
                raise self._closed_error()
            ev = self._new_event(handler, payload)
            if self._shared is not None:
                return await self._put_shared(ev)
            try:
                self._queue.put_nowait(ev)
            except QueueFull:
                return await self._enqueue(ev)
            self._acct.received += 1
            if self._hooks is not None:
                self._hooks.accepted(ev)
            if not self._acct.received & _YIELD_EVERY_MASK:
                # a producer that never blocks would keep workers from starting until its
                # burst ends; give them the loop now and then
                await asyncio.sleep(0)
            return Accepted(ev.request_id)
        if invocation_type == "RequestResponse":
            return await self._request_response(handler, payload, client_context)
        if invocation_type == "DryRun":
            return self._dry_run(handler, payload)
        self._check_invocation_type(invocation_type)
        raise AssertionError("unreachable")

    async def _put_shared(self, ev: Event) -> Accepted:
        assert self._shared is not None
        queued = QueuedEvent(
            ev.request_id, ev.rt.name, ev.payload, self._wall(), 0, ev.trace_context
        )
        await self._shared.put(queued)
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
        rt = self._lookup(event.handler)
        # the age counts from the first enqueue, wherever that was
        age = max(0.0, self._wall() - event.first_enqueued)
        ev = Event(event.request_id, rt, event.payload, self._now() - age)
        ev.attempts = event.attempts
        ev.trace_context = event.trace_context
        ev.settle = settle
        ev.defer = defer
        if event.attempts > ev.cfg.max_retries:
            # its last attempt was cut short by a process that died: no retry is left
            ev.enqueued_at = -math.inf
            ev.error = {
                "errorMessage": (
                    f"Retries exhausted: attempt {event.attempts} of this event stopped "
                    "with the process running it (or its failure records could not be sent "
                    "before), and it had no retries left."
                ),
                "errorType": "AttemptInterrupted",
                "requestId": ev.request_id,
                "stackTrace": [],
            }
            self._log.error(
                "event.attempt_interrupted",
                reason=ev.error["errorMessage"],
                **self._log_context(ev),
            )
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
        ev = self._new_event(handler, payload)
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
        rt = self._lookup(handler)
        # an age of infinity routes it to the slow path of _run, which sees the reason
        ev = Event(request_id or new_request_id(), rt, payload, -math.inf)
        ev.settle = settle
        ev.error = {
            "errorMessage": reason,
            "errorType": "InvalidEvent",
            "requestId": ev.request_id,
            "stackTrace": [],
        }
        self._log.error("event.rejected", reason=reason, **self._log_context(ev))
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
        ev = self._new_event(handler, payload)
        return InvocationResult(status_code=204, request_id=ev.request_id)

    async def _request_response(
        self,
        handler: str | Handler,
        payload: Any,
        client_context: Mapping[str, Any] | None = None,
    ) -> InvocationResult:
        if self._state is not _State.RUNNING:
            raise self._closed_error()
        ev = self._new_event(handler, payload)
        if client_context is not None:
            ev.client_context = dict(client_context)
        rt = ev.rt
        if rt.limit is not None:
            while rt.running >= rt.limit:
                # a synchronous call waits for a slot like any caller of a capped function
                await self._wait_slot(rt)
            rt.running += 1
        lines = [TailLog.start(ev.request_id)]
        tail = TailLog(
            rt.log.bind(request_id=ev.request_id, handler=rt.name, attempt=1), ev.request_id, lines
        )
        started = time.perf_counter()
        try:
            if ev.cfg.idempotency is None:
                ok, value, exc = await self._attempt(ev, rt, tail)
            else:
                while True:
                    outcome, value, exc = await self._idempotent(ev, rt, tail)
                    if outcome != "wait":
                        break
                    # a duplicate in progress: wait for it to settle (here or elsewhere)
                    key, lease_until = value
                    await self._wait_key_settled(key, lease_until)
                if outcome == "dedup":
                    self._acct.deduplicated += 1
                ok = outcome in ("ok", "dedup")
        finally:
            if rt.limit is not None:
                rt.running -= 1
                self._release_parked(rt)
        duration = time.perf_counter() - started
        if ok and value is not None and type(value) is not str:
            try:
                # what Lambda answers: the result as JSON decodes it (tuples become lists,
                # int keys strings), the same as a duplicate gets back from the store
                value = json.loads(to_json(value))
            except (TypeError, ValueError, RecursionError) as marshal:
                ok, value, exc = False, marshal_failure(marshal, ev.request_id), None
        if ok:
            self._log_success(ev)
            lines.extend(TailLog.end(ev.request_id, duration, None))
            return InvocationResult(
                status_code=200, request_id=ev.request_id, payload=value, log="\n".join(lines)
            )
        self._log_failure(ev, value, exc)
        lines.append(TailLog.unhandled(value))
        lines.extend(TailLog.end(ev.request_id, duration, value.get("errorType")))
        return InvocationResult(
            status_code=200,
            request_id=ev.request_id,
            payload=value,
            function_error="Unhandled",
            log="\n".join(lines),
        )

    async def _wait_slot(self, rt: HandlerRuntime) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rt.slot_waiters.append(fut)
        try:
            await fut
        finally:
            if fut in rt.slot_waiters:
                rt.slot_waiters.remove(fut)

    def _release_parked(self, rt: HandlerRuntime) -> None:
        # a capped handler's slot freed outside a worker: let a waiter or a worker use it
        while rt.slot_waiters:
            fut = rt.slot_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        if rt.parked and rt.limit is not None and rt.running < rt.limit:
            self._queue.unpark()
            self._queue.put_retry(rt.parked.popleft())

    # -- workers --------------------------------------------------------------------

    async def _worker(self) -> None:
        queue = self._queue
        get_nowait = queue.get_nowait
        run = self._run
        now = self._now
        wall = self._wall
        flat = FLAT_TYPES
        claimed = CLAIMED
        # the wall time this worker read as its last inline event completed a claim: the
        # next claim, microseconds later with no await between, reuses it (0.0: read anew)
        fresh = 0.0
        # middleware wraps every handler call: the general path (_run) has the seams for it
        inline = self._hooks is None
        acct = self._acct
        finish = acct.finish
        succeeded = Outcome.SUCCEEDED
        log_attempts = self._log_attempts
        rid_var, handler_var, attempt_var = request_id_var, _handler_var, _attempt_var
        while True:
            last, fresh = fresh, 0.0
            ev = get_nowait()
            if ev is None:
                last = 0.0
                ev = await queue.get()
            rt = ev.rt
            cfg = ev.cfg
            if inline and rt.simple and cfg.inline and now() - ev.enqueued_at <= cfg.max_event_age:
                # The hot path, inline (no coroutine per event): an async, uncapped handler
                # with no timeout, no on-success record and at most a non-blocking
                # idempotency store; _run does all the rest.
                acct.in_flight += 1
                payload = ev.payload
                idem = cfg.idempotency
                if idem is not None:
                    # the store's documented non-blocking claim: no await, no coroutine
                    store = idem.nowait_store
                    try:
                        key = idem.key_for(payload)
                        at = last or wall()
                        status, token = store.claim_nowait(
                            key, payload, at, at + idem.lease_seconds, idem.validate_payload
                        )
                    except Exception as claim_error:
                        error = self._idempotency_error(ev, claim_error)[1]
                        await self._inline_failed(ev, None, error=error)
                        continue
                    if status is not claimed:
                        error = self._not_claimed(ev, key, status, token, at)
                        if error is not None:
                            await self._inline_failed(ev, None, error=error)
                        continue
                ev.attempts += 1
                acct.attempts += 1
                if log_attempts:
                    self._log.info("attempt.started", **self._log_context(ev))
                # bound for the handler's own structlog lines; not reset after: this task
                # runs nothing else between attempts, and the next attempt overwrites them
                rid_var.set(ev.request_id)
                handler_var.set(rt.name)
                attempt_var.set(ev.attempts)
                try:
                    # a private copy of the event, as Lambda deserialises one per attempt
                    value = await rt.fn(
                        payload.copy() if ev.flat else private_copy(payload), Context(ev, None)
                    )
                except BaseException as exc:
                    if idem is not None:
                        self._release_inline(ev, key, token)
                    await self._inline_failed(ev, exc)
                    continue
                if type(value) not in flat and marshal_error(value, ev.request_id) is not None:
                    if idem is not None:
                        self._release_inline(ev, key, token)
                    await self._inline_failed(ev, None, value)
                    continue
                if idem is not None:
                    try:
                        # most handlers return None: no call to the JSON encoder
                        result = "null" if value is None else to_json(value)
                    except (TypeError, ValueError, RecursionError) as marshal:
                        self._release_inline(ev, key, token)
                        error = marshal_failure(marshal, ev.request_id)
                        await self._inline_failed(ev, None, error=error)
                        continue
                    try:
                        fresh = wall()
                        store.complete_nowait(key, token, result, fresh + idem.expires_after)
                    except Exception as store_error:
                        self._store_failed(ev, key, store_error)
                    if self._key_waiters or self._key_futures:
                        self._key_settled(key)
                if log_attempts:
                    self._log_success(ev)
                # _finish() without the middleware call: the inline path runs without any
                finish(succeeded)
                if ev.settle is not None:
                    self._settle(ev, succeeded)
                continue
            limit = rt.limit
            if limit is None:
                await run(ev)
                continue
            if rt.running >= limit:
                rt.parked.append(ev)
                queue.park()
                continue
            await run(ev)
            # this worker is free and the handler has room: take its oldest parked event
            while rt.parked and rt.running < limit and not rt.slot_waiters:
                ev = rt.parked.popleft()
                queue.unpark()
                await run(ev)
            if rt.slot_waiters and rt.running < limit:
                self._release_parked(rt)

    async def _run(self, ev: Event) -> None:
        """Run one attempt of ``ev`` and everything that follows from its outcome."""
        self._acct.in_flight += 1
        rt = ev.rt
        try:
            cfg = ev.cfg
            if self._now() - ev.enqueued_at > cfg.max_event_age:
                if ev.enqueued_at == -math.inf and ev.error is not None:  # from reject()
                    await self._fail(ev, RETRIES_EXHAUSTED, ev.error["errorMessage"])
                else:
                    reason = self._age_reason(ev, cfg.max_event_age)
                    await self._fail(ev, EVENT_AGE_EXCEEDED, reason)
                return
            if self._running_threads and self._hold_retry(ev):
                return  # its timed-out attempt's thread still runs: the retry waits for it
            limited = rt.limit is not None
            if limited:
                rt.running += 1
            try:
                if cfg.idempotency is None:
                    ok, value, exc = await self._attempt(ev, rt)
                else:
                    outcome, value, exc = await self._idempotent(ev, rt)
                    ok = outcome == "ok"
                    if outcome == "wait":
                        self._wait_for_key(ev, *value)
                        return
                    if outcome == "dedup":
                        ok = True
                        self._acct.deduplicated += 1
            finally:
                if limited:
                    rt.running -= 1
            if ok:
                if cfg.on_success is None:
                    if self._log_attempts:
                        self._log_success(ev)
                    self._finish(ev, Outcome.SUCCEEDED)
                    return
                value = await self._succeed_with_destination(ev, value)
                if value is None:
                    return
                exc = None  # the result could not be encoded: Runtime.MarshalError
            await self._after_failure(ev, value, exc)
        except asyncio.CancelledError:
            self._cancelled(ev)
            raise
        except Exception as bug:  # a bug in eventflow itself: keep the worker, settle the event
            self._internal_error(ev, bug)

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
