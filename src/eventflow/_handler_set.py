"""The handlers one app serves: :class:`HandlerSet`, and the :class:`Event` made for one.

Before the app starts it holds the registered :class:`Handler` objects (plus, for an app
made with ``handlers=None``, the default registry's); at the start each becomes a
:class:`~eventflow._runtime.HandlerRuntime`, found by name or by ``Handler`` object with
one dictionary lookup. :meth:`HandlerSet.new_event` checks a payload and makes the event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import _registry
from ._attempts import FLAT_TYPES
from ._errors import ConfigurationError, UnknownHandler
from ._event import Event, make_event
from ._handler import Handler
from ._ids import REQUEST_IDS, new_request_id
from ._payload import SAFE_INT, SAFE_INT_MIN, check_payload
from ._runtime import HandlerRuntime

if TYPE_CHECKING:
    from ._clock import Clock
    from ._contracts import QueuedEvent

__all__ = ("HandlerSet",)


class HandlerSet:
    """Handlers by name before the start; their runtimes, by name and object, after."""

    def __init__(self, app_name: str, handlers: Iterable[Handler] | None) -> None:
        self._app_name = app_name
        self._uses_default_registry = handlers is None
        self._handlers: dict[str, Handler] = {}
        for h in handlers or ():
            if not isinstance(h, Handler):
                raise ConfigurationError(
                    f"handlers must hold functions decorated with @eventflow.handler, got {h!r}."
                )
            self.add(h)
        # name -> runtime, once started
        self.runtimes: dict[str, HandlerRuntime] = {}
        # name -> runtime and Handler object -> runtime, so invoke() needs one lookup
        self._index: dict[object, HandlerRuntime] = {}

    def add(self, h: Handler) -> None:
        """Serve ``h`` too (before the start)."""
        existing = self._handlers.get(h.name)
        if existing is not None and existing is not h:
            raise ConfigurationError(
                f"This app already has a handler named {h.name!r}; give one of them another "
                "name with name=..."
            )
        self._handlers[h.name] = h

    def resolve(self) -> dict[str, Handler]:
        """The handlers to serve, by name: the app's own, and the default registry's."""
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

    def start(self, *, region: str, account_id: str, clock: Clock, log: Any) -> None:
        """Make the runtime of every handler served; the set is fixed from here on."""
        for name, h in self.resolve().items():
            rt = HandlerRuntime(h, region=region, account_id=account_id, clock=clock, log=log)
            self.runtimes[name] = rt
            self._index[name] = rt
            self._index[h] = rt

    def lookup(self, handler: str | Handler) -> HandlerRuntime:
        """The runtime of ``handler`` (a name or a ``Handler``).

        Raises:
            UnknownHandler: the app does not serve it.
        """
        try:
            rt = self._index.get(handler)
        except TypeError:  # unhashable
            rt = None
        if rt is None:
            known = ", ".join(sorted(self.runtimes)) or "none"
            name = handler.name if isinstance(handler, Handler) else handler
            raise UnknownHandler(
                f"No handler {name!r} in app {self._app_name!r} (it serves: {known}); register "
                "it with @eventflow.handler or @app.handler, or pass it in App(handlers=[...])."
            )
        return rt

    def new_event(self, handler: str | Handler, payload: Any, now: float) -> Event:
        """A new event for ``handler``, accepted at clock time ``now``.

        Raises:
            UnknownHandler: the app does not serve ``handler``.
            InvalidPayload: the payload is not JSON or breaks a payload limit.
        """
        try:
            # names and Handler objects are both keys of the index: one lookup either way
            # (a subscript, specialised, where .get() would be a method call)
            rt = self._index[handler]
        except (KeyError, TypeError):  # unknown, or unhashable: lookup() says which
            rt = self.lookup(handler)
        if type(payload) is dict:
            # flat objects of ASCII strings, ints, bools and nulls are the common case:
            # checked here without a call; anything else by check_payload. Keys, then a
            # lookup: no items view and no pair per key (a small object's loop costs half)
            for k in payload:
                if type(k) is str and k.isascii():
                    v = payload[k]
                    t = type(v)
                    if t is str:
                        if v.isascii():
                            continue
                    elif t is int:
                        # ints of one 30-bit digit first (literals: no negation per call):
                        # their comparisons are specialised, the limit's (2,100 bits) are not
                        if -1073741823 <= v <= 1073741823 or SAFE_INT_MIN < v < SAFE_INT:
                            continue
                    elif t is bool or v is None:
                        continue
                check_payload(payload, f"The payload for {rt.name!r}")
                flat = all(type(v) in FLAT_TYPES for v in payload.values())
                break
            else:
                flat = True
        else:
            flat = False
            if not ((type(payload) is str and payload.isascii()) or payload is None):
                check_payload(payload, f"The payload for {rt.name!r}")
        return make_event(next(REQUEST_IDS), rt, payload, now, flat)

    def queued_event(self, queued: QueuedEvent, now: float, wall: float) -> Event:
        """The event a shared queue hands over, at clock time ``now`` and wall time ``wall``.

        Its age counts from its first enqueue, wherever that was. An event whose last
        attempt was cut short and that has no retry left comes with its ``error`` set and
        an infinite age: it goes straight down the failure path.

        Raises:
            UnknownHandler: the app does not serve its handler.
        """
        rt = self.lookup(queued.handler)
        age = max(0.0, wall - queued.first_enqueued)
        ev = make_event(queued.request_id, rt, queued.payload, now - age)
        ev.attempts = queued.attempts
        ev.trace_context = queued.trace_context
        if queued.attempts > ev.cfg.max_retries:
            # its last attempt was cut short by a process that died: no retry is left
            ev.enqueued_at = -math.inf
            ev.error = {
                "errorMessage": (
                    f"Retries exhausted: attempt {queued.attempts} of this event stopped "
                    "with the process running it (or its failure records could not be sent "
                    "before), and it had no retries left."
                ),
                "errorType": "AttemptInterrupted",
                "requestId": ev.request_id,
                "stackTrace": [],
            }
        return ev

    def rejected_event(
        self, handler: str | Handler, payload: Any, reason: str, request_id: str | None
    ) -> Event:
        """An event that cannot run (``App.reject``): ``reason`` is its error message."""
        rt = self.lookup(handler)
        # an age of infinity routes it to the failure path (WorkerPool.run, Outcomes.too_old)
        ev = make_event(request_id or new_request_id(), rt, payload, -math.inf)
        ev.error = {
            "errorMessage": reason,
            "errorType": "InvalidEvent",
            "requestId": ev.request_id,
            "stackTrace": [],
        }
        return ev
