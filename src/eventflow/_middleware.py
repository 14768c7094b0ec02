"""Middleware: optional hooks around the life of an event, for metrics, tracing and limits.

``App(middleware=[...])`` takes any objects with some of these hooks (every hook is
optional; :class:`Middleware` is a base class of no-ops that serves mostly as
documentation, like trio's ``Instrument``):

=====================================  ===================================================
hook                                   called
=====================================  ===================================================
``accepted(event)``                    once per event the app accepts (``stats().received``)
``attempt(event)``                     per attempt (``stats().attempts``): returns an async
                                       context manager entered just before the handler runs
                                       and exited just after, with the handler's exception
                                       if it raised (a timeout arrives as a cancellation)
``retry_scheduled(event, delay)``      per retry scheduled (``stats().retries``)
``finished(event, outcome)``           once per event at its terminal outcome here:
                                       ``SUCCEEDED``, ``FAILED`` (``stats().failed``), or
                                       ``RELEASED`` / ``UNDELIVERED`` (together
                                       ``stats().undelivered``)
``started(app)``                       once, as the app starts (before it accepts events),
                                       with the app (:class:`eventflow.sources.AppHost`):
                                       its name, region, account, ``stats()``
``inject(event)``                      once per ``invoke`` / ``submit``, in the caller's
                                       context, before the event is queued: returns string
                                       pairs (a W3C ``traceparent``, say) or ``None``; they
                                       travel with the event through every queue (in
                                       memory, SQLite, SQS) as ``event.trace_context``
``attempt_failed(event, error)``       per attempt that failed (``stats().errors``), with
                                       Lambda's error object (``errorType``,
                                       ``errorMessage``): a function error, a timeout, a
                                       result JSON cannot carry, an idempotency failure
``delivery_failed(event, role)``       per dead letter (``role="dead_letter"``,
                                       ``stats().dead_letter_errors``) or destination
                                       record (``"on_success"`` / ``"on_failure"``,
                                       ``stats().destination_errors``) given up
=====================================  ===================================================

Every event hook sees an :class:`EventInfo`: the request ID, the handler's name, the
attempt number, the timing (the clock time it was accepted, its age) and the trace context
``inject`` gave it. Hooks run on the event loop in the worker that handles the event (``inject``:
in the caller of ``invoke``) and must not block. The other hooks run in the order the
middleware were given,
``attempt`` contexts are entered in that order and exited in reverse (an onion).

A hook that raises fails nothing: the error is logged (``middleware.failed``, with the
hook's name) and the event goes on; an ``attempt`` context whose ``__aenter__`` raised is
not exited, and whatever ``__aexit__`` returns never suppresses the handler's exception.
``RequestResponse`` invocations run the ``attempt`` hook only: they are not queued, so
they are not accepted or finished (as in :meth:`eventflow.App.stats`).

With no middleware the engine checks one attribute per event and calls nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar, final

from ._contracts import Outcome
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._contracts import AppHost
    from ._event import Event

__all__ = ("EventInfo", "Hooks", "Middleware")

_T = TypeVar("_T")
_HOOKS = (
    "accepted",
    "attempt",
    "retry_scheduled",
    "finished",
    "started",
    "inject",
    "attempt_failed",
    "delivery_failed",
)


@final
class EventInfo:
    """What a hook sees of an event: read-only, valid during the hook call.

    Attributes:
        request_id: The invocation's request ID, the same for every attempt.
        handler: The name of the handler that runs the event.
        attempt: Attempts started so far (during ``attempt``: this attempt's number).
        accepted_at: Clock time (the app's clock) the event was accepted at.
        now: Clock time of the hook call.
        trace_context: The string pairs an ``inject`` hook gave the event where it was
            invoked (carried through shared queues), or ``None``.
    """

    __slots__ = ("accepted_at", "attempt", "handler", "now", "request_id", "trace_context")

    def __init__(self, ev: Event, now: float) -> None:
        self.request_id: str = ev.request_id
        self.handler: str = ev.rt.name
        self.attempt: int = ev.attempts
        self.accepted_at: float = ev.enqueued_at
        self.now = now
        self.trace_context: Mapping[str, str] | None = ev.trace_context

    @property
    def age(self) -> float:
        """Seconds since the event was accepted (from its first enqueue, on a shared queue)."""
        return self.now - self.accepted_at

    def __repr__(self) -> str:
        return (
            f"<EventInfo {self.request_id} handler={self.handler!r} attempt={self.attempt} "
            f"age={self.age:.3f}s>"
        )


class Middleware:
    """A base class of no-op hooks; override the ones you need (all are optional).

    Any object with some of these methods works as middleware; subclassing only documents
    the intent. The README's Middleware section says when each hook runs.
    """

    def accepted(self, event: EventInfo) -> None:
        """The app accepted ``event`` (it counts in ``stats().received``)."""

    def attempt(self, event: EventInfo) -> AbstractAsyncContextManager[object]:
        """An async context manager that wraps the handler call of one attempt."""
        return nullcontext()

    def retry_scheduled(self, event: EventInfo, delay: float) -> None:
        """An attempt of ``event`` failed and its retry is due in ``delay`` seconds."""

    def finished(self, event: EventInfo, outcome: Outcome) -> None:
        """``event`` reached its terminal ``outcome`` in this app."""

    def started(self, app: AppHost) -> None:
        """``app`` is starting: it accepts events once every middleware saw this."""

    def inject(self, event: EventInfo) -> Mapping[str, str] | None:
        """String pairs to carry with ``event`` to its attempts, read in the invoker's context."""
        return None

    def attempt_failed(self, event: EventInfo, error: Mapping[str, Any]) -> None:
        """An attempt of ``event`` failed with ``error`` (Lambda's error object)."""

    def delivery_failed(self, event: EventInfo, role: str) -> None:
        """A record of ``event`` (``dead_letter``, ``on_success``, ``on_failure``) was given up."""


def _own_hook(mw: object, name: str) -> Any:
    hook = getattr(mw, name, None)
    if hook is None:
        return None
    if not callable(hook):
        raise ConfigurationError(
            f"Middleware {mw!r} has an attribute {name!r} that is not callable; hooks are "
            f"methods ({', '.join(_HOOKS)})."
        )
    # the base class's no-ops are not hooks: calling them would cost for nothing
    if getattr(type(mw), name, None) is getattr(Middleware, name):
        return None
    return hook


class Hooks:
    """The middleware of one app, resolved once at construction; the engine calls these."""

    __slots__ = (
        "_accepted",
        "_attempt",
        "_attempt_failed",
        "_delivery_failed",
        "_finished",
        "_inject",
        "_log",
        "_now",
        "_retry",
        "_started",
        "middleware",
    )

    def __init__(self, middleware: Sequence[object], now: Callable[[], float], log: Any) -> None:
        self.middleware = tuple(middleware)
        pairs = [(mw, {name: _own_hook(mw, name) for name in _HOOKS}) for mw in self.middleware]
        for mw, found in pairs:
            if not any(found.values()):
                raise ConfigurationError(
                    f"Middleware {mw!r} has none of the hooks {', '.join(_HOOKS)}; "
                    "define at least one of them (see eventflow.Middleware)."
                )
        self._accepted = [(mw, f["accepted"]) for mw, f in pairs if f["accepted"]]
        self._attempt = [(mw, f["attempt"]) for mw, f in pairs if f["attempt"]]
        self._retry = [(mw, f["retry_scheduled"]) for mw, f in pairs if f["retry_scheduled"]]
        self._finished = [(mw, f["finished"]) for mw, f in pairs if f["finished"]]
        self._started = [(mw, f["started"]) for mw, f in pairs if f["started"]]
        self._inject = [(mw, f["inject"]) for mw, f in pairs if f["inject"]]
        self._attempt_failed = [(mw, f["attempt_failed"]) for mw, f in pairs if f["attempt_failed"]]
        self._delivery_failed = [
            (mw, f["delivery_failed"]) for mw, f in pairs if f["delivery_failed"]
        ]
        self._now = now
        self._log = log

    def bind(self, now: Callable[[], float], log: Any, app: AppHost | None = None) -> None:
        """Use the app's started clock reader and logger; tell ``started`` hooks of ``app``."""
        self._now = now
        self._log = log
        if app is not None:
            for mw, hook in self._started:
                try:
                    hook(app)
                except Exception as exc:
                    log.error(
                        "middleware.failed", middleware=repr(mw), hook="started", exc_info=exc
                    )

    def _failed(self, mw: object, hook: str, ev: Event, exc: BaseException) -> None:
        self._log.error(
            "middleware.failed",
            middleware=repr(mw),
            hook=hook,
            request_id=ev.request_id,
            handler=ev.rt.name,
            attempt=ev.attempts,
            exc_info=exc,
        )

    def accepted(self, ev: Event) -> None:
        if self._accepted:
            info = EventInfo(ev, self._now())
            for mw, hook in self._accepted:
                try:
                    hook(info)
                except Exception as exc:
                    self._failed(mw, "accepted", ev, exc)

    def retry_scheduled(self, ev: Event, delay: float) -> None:
        if self._retry:
            info = EventInfo(ev, self._now())
            for mw, hook in self._retry:
                try:
                    hook(info, delay)
                except Exception as exc:
                    self._failed(mw, "retry_scheduled", ev, exc)

    def finished(self, ev: Event, outcome: Outcome) -> None:
        if self._finished:
            info = EventInfo(ev, self._now())
            for mw, hook in self._finished:
                try:
                    hook(info, outcome)
                except Exception as exc:
                    self._failed(mw, "finished", ev, exc)

    def inject(self, ev: Event) -> dict[str, str] | None:
        """The string pairs the ``inject`` hooks give ``ev`` (merged), or ``None``."""
        if not self._inject:
            return None
        info = EventInfo(ev, self._now())
        carried: dict[str, str] | None = None
        for mw, hook in self._inject:
            try:
                pairs = hook(info)
                if pairs:
                    carried = {**(carried or {}), **{str(k): str(v) for k, v in pairs.items()}}
            except Exception as exc:
                self._failed(mw, "inject", ev, exc)
        return carried

    def attempt_failed(self, ev: Event, error: Mapping[str, Any]) -> None:
        if self._attempt_failed:
            info = EventInfo(ev, self._now())
            for mw, hook in self._attempt_failed:
                try:
                    hook(info, error)
                except Exception as exc:
                    self._failed(mw, "attempt_failed", ev, exc)

    def delivery_failed(self, ev: Event, role: str) -> None:
        if self._delivery_failed:
            info = EventInfo(ev, self._now())
            for mw, hook in self._delivery_failed:
                try:
                    hook(info, role)
                except Exception as exc:
                    self._failed(mw, "delivery_failed", ev, exc)

    async def around(self, ev: Event, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``call()`` (the handler's call) inside every middleware's attempt context."""
        if not self._attempt:
            return await call()
        info = EventInfo(ev, self._now())
        entered: list[tuple[object, AbstractAsyncContextManager[object]]] = []
        for mw, hook in self._attempt:
            try:
                manager = hook(info)
                await manager.__aenter__()
            except Exception as exc:
                self._failed(mw, "attempt", ev, exc)
                continue
            entered.append((mw, manager))
        try:
            result = await call()
        except BaseException as exc:
            for mw, manager in reversed(entered):
                try:
                    # the return value is ignored: a hook never suppresses the handler's error
                    await manager.__aexit__(type(exc), exc, exc.__traceback__)
                except Exception as hook_exc:
                    self._failed(mw, "attempt", ev, hook_exc)
            raise
        for mw, manager in reversed(entered):
            try:
                await manager.__aexit__(None, None, None)
            except Exception as hook_exc:
                self._failed(mw, "attempt", ev, hook_exc)
        return result
