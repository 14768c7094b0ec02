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
=====================================  ===================================================

Every hook sees an :class:`EventInfo`: the request ID, the handler's name, the attempt
number and the timing (the clock time it was accepted, its age). Hooks run on the event
loop in the worker that handles the event and must not block. ``accepted``,
``retry_scheduled`` and ``finished`` run in the order the middleware were given,
``attempt`` contexts are entered in that order and exited in reverse (an onion).

A hook that raises fails nothing: the error is logged (``middleware.failed``, with the
hook's name) and the event goes on; an ``attempt`` context whose ``__aenter__`` raised is
not exited, and whatever ``__aexit__`` returns never suppresses the handler's exception.
``RequestResponse`` invocations run the ``attempt`` hook only: they are not queued, so
they are not accepted or finished (as in :meth:`eventflow.App.stats`).

With no middleware the engine checks one attribute per event and calls nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar, final

from ._contracts import Outcome
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._event import Event

__all__ = ("EventInfo", "Hooks", "Middleware")

_T = TypeVar("_T")
_HOOKS = ("accepted", "attempt", "retry_scheduled", "finished")


@final
class EventInfo:
    """What a hook sees of an event: read-only, valid during the hook call.

    Attributes:
        request_id: The invocation's request ID, the same for every attempt.
        handler: The name of the handler that runs the event.
        attempt: Attempts started so far (during ``attempt``: this attempt's number).
        accepted_at: Clock time (the app's clock) the event was accepted at.
        now: Clock time of the hook call.
    """

    __slots__ = ("accepted_at", "attempt", "handler", "now", "request_id")

    def __init__(self, ev: Event, now: float) -> None:
        self.request_id: str = ev.request_id
        self.handler: str = ev.rt.name
        self.attempt: int = ev.attempts
        self.accepted_at: float = ev.enqueued_at
        self.now = now

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

    __slots__ = ("_accepted", "_attempt", "_finished", "_log", "_now", "_retry", "middleware")

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
        self._now = now
        self._log = log

    def bind(self, now: Callable[[], float], log: Any) -> None:
        """Use the app's started clock reader and logger."""
        self._now = now
        self._log = log

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
