"""The engine's record of one accepted event, from ``invoke`` to its terminal outcome."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._payload import private_copy
from ._records import WaitingError, waited_error, waiting_error

if TYPE_CHECKING:
    from ._attempts import Failed
    from ._handler import HandlerConfig
    from ._runtime import HandlerRuntime
    from .queues import Defer
    from .sources import Settle

__all__ = ("Event", "make_event")


class Event:
    """One event: its request ID (fixed for every attempt), payload and progress.

    Attributes:
        request_id: The invocation's request ID, reused by every attempt.
        rt: The per-app runtime state of the handler that runs it.
        cfg: The handler's settings when the event was accepted (retries, age, sinks).
        payload: The JSON-serialisable payload as accepted; each attempt gets its own copy.
        flat: The payload is a dict of strings, ints, bools and nulls: a shallow copy is
            a full one.
        enqueued_at: Clock time of acceptance; the event's age counts from here.
        attempts: Attempts started so far (a cancelled attempt is taken back).
        error: The error object of the last failed attempt, or ``None``; while a retry
            waits, without its stack trace (see ``wait_for_retry``).
        timer: The retry timer while one is pending.
        settle: The submitting source's callback for the terminal outcome, if any.
        defer: The shared queue's callback that takes a retry back, if it came from one.
        client_context: A synchronous caller's ``ClientContext`` (decoded JSON), if any.
        trace_context: String pairs a middleware's ``inject`` hook gave it where it was
            invoked (W3C trace context, say), carried through shared queues; or ``None``.
    """

    __slots__ = (
        "_error",
        "attempts",
        "cfg",
        "client_context",
        "defer",
        "enqueued_at",
        "flat",
        "payload",
        "request_id",
        "rt",
        "settle",
        "timer",
        "trace_context",
    )

    request_id: str
    rt: HandlerRuntime
    cfg: HandlerConfig
    payload: Any
    flat: bool
    enqueued_at: float
    attempts: int
    _error: dict[str, Any] | WaitingError | Failed | None
    timer: object | None
    settle: Settle | None
    defer: Defer | None
    client_context: dict[str, Any] | None
    trace_context: Mapping[str, str] | None

    @property
    def error(self) -> dict[str, Any] | None:
        """The last failed attempt's error object (rebuilt, without a trace, if it waited)."""
        error = self._error
        if error is None or isinstance(error, dict):
            return error
        if isinstance(error, tuple):
            return waited_error(error, self.request_id)
        # a failed attempt kept whole: its error object is made now, once
        made = self._error = error.error
        return made

    @error.setter
    def error(self, error: dict[str, Any] | None) -> None:
        self._error = error

    def keep_failure(self, failed: Failed) -> None:
        """Keep the failed attempt as the last error: its error object is made only if
        something reads :attr:`error` before :meth:`wait_for_retry` makes it compact."""
        self._error = failed

    def wait_for_retry(self) -> None:
        """The event waits for a retry: keep its last error compact (``waiting_error``),
        so that what a waiting retry holds does not grow with the handler's stack."""
        error = self._error
        if error is not None and not isinstance(error, dict | tuple):
            error = self._error = error.waiting()  # a failed attempt kept whole
        if isinstance(error, dict):
            self._error = waiting_error(error, self.request_id)

    def private_payload(self) -> Any:
        """A copy of the payload for one attempt, so the handler may change it freely."""
        return self.payload.copy() if self.flat else private_copy(self.payload)

    def __repr__(self) -> str:
        return f"<Event {self.request_id} handler={self.rt.name!r} attempts={self.attempts}>"


_object_new = object.__new__


def make_event(
    request_id: str, rt: HandlerRuntime, payload: Any, enqueued_at: float, flat: bool = False
) -> Event:
    """A new event of ``rt``'s handler, accepted at clock time ``enqueued_at``.

    The one way to make an :class:`Event` (it has no ``__init__``): a function call costs
    about half of a class call, whose ``__init__`` runs in a nested interpreter loop, and
    ``invoke`` makes one per event.
    """
    ev: Event = _object_new(Event)
    ev.request_id = request_id
    ev.rt = rt
    ev.cfg = rt.config
    ev.payload = payload
    ev.flat = flat
    ev.enqueued_at = enqueued_at
    ev.attempts = 0
    ev._error = None
    ev.timer = None
    ev.settle = None
    ev.defer = None
    ev.client_context = None
    ev.trace_context = None
    return ev
