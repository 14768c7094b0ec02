"""What ``invoke`` returns, and the app's statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = ("Accepted", "InvocationResult", "Stats")


class Accepted:
    """An ``Event`` invocation was queued: Lambda's "202 Accepted".

    Attributes:
        status_code: Always 202.
        request_id: The event's request ID, the same on every attempt and in its
            dead letter or destination record.
    """

    __slots__ = ("request_id",)

    status_code: Final = 202

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Accepted) and other.request_id == self.request_id

    def __hash__(self) -> int:
        return hash(self.request_id)

    def __repr__(self) -> str:
        return f"Accepted(status_code=202, request_id={self.request_id!r})"


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """The outcome of a ``RequestResponse`` (200) or ``DryRun`` (204) invocation.

    Attributes:
        status_code: 200 for ``RequestResponse`` (even when the function failed, as in
            Lambda), 204 for ``DryRun``.
        request_id: The invocation's request ID.
        payload: The handler's return value, or on error the Lambda Python runtime's
            error object ``{"errorMessage", "errorType", "requestId", "stackTrace"}``.
        function_error: ``None`` on success, ``"Unhandled"`` when the function failed.
        log: The attempt's log in Lambda's format (START, the handler's ``context.log``
            lines, the error, END, REPORT); what ``LogType: Tail`` returns, base64-encoded.
    """

    status_code: int
    request_id: str
    payload: Any = None
    function_error: str | None = None
    log: str = ""


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters of asynchronous (``Event``) invocations; a frozen snapshot.

    At any moment ``received == succeeded + failed + undelivered + queued + in_flight +
    scheduled``: every accepted event is in exactly one of those places.

    Attributes:
        received: Events accepted (Lambda's ``AsyncEventsReceived``).
        succeeded: Events whose attempt succeeded (terminal).
        failed: Events that failed for good: retries exhausted or too old (terminal).
            Lambda's ``AsyncEventsDropped`` is ``failed``.
        undelivered: Events this app did not finish (terminal): at shutdown, spilled,
            logged or released to their source; or given back to their source (see
            ``returned`` and ``internal_errors``).
        queued: Accepted and not started (including due retries).
        in_flight: Running an attempt, or sending its dead letter / destination record.
        scheduled: Waiting in the retry scheduler.
        retries: Retries scheduled, all events together.
        expired: Failed events that were, or would have been by their next retry, older
            than ``max_event_age`` (a subset of ``failed``).
        attempts: Handler attempts run (Lambda's ``Invocations``).
        errors: Attempts that ended in a function error or timeout (Lambda's ``Errors``).
        dead_lettered: Dead-letter messages sent.
        dead_letter_errors: Dead-letter sends given up (Lambda's ``DeadLetterErrors``).
        destination_errors: Destination sends given up (``DestinationDeliveryFailures``).
        deduplicated: Duplicate events answered from an idempotency record.
        enqueued: Events this app put on its shared queue (``App(queue=...)``); each is
            counted in ``received`` by the app that takes it from the queue.
        requeued: Retries handed back to the shared queue, which delivers them again
            after their delay to whichever app takes them (terminal for this app).
        returned: Events from a source or shared queue that failed for good but none of
            whose failure records (dead letter, on-failure) could be sent: given back to
            the source to be tried again later (a subset of ``undelivered``).
        internal_errors: Events eventflow itself failed to finish (a bug, logged at
            critical level; a subset of ``undelivered``, given back to their source).

    With a shared queue, ``received`` counts deliveries taken from it, and the equation
    reads ``received == succeeded + failed + undelivered + requeued + queued + in_flight
    + scheduled``.
    """

    received: int = 0
    succeeded: int = 0
    failed: int = 0
    undelivered: int = 0
    queued: int = 0
    in_flight: int = 0
    scheduled: int = 0
    retries: int = 0
    expired: int = 0
    attempts: int = 0
    errors: int = 0
    dead_lettered: int = 0
    dead_letter_errors: int = 0
    destination_errors: int = 0
    deduplicated: int = 0
    enqueued: int = 0
    requeued: int = 0
    returned: int = 0
    internal_errors: int = 0

    @property
    def finished(self) -> int:
        """Events with an outcome in this app: succeeded, failed, undelivered or requeued."""
        return self.succeeded + self.failed + self.undelivered + self.requeued

    @property
    def pending(self) -> int:
        """Events not finished yet: queued, in flight or scheduled."""
        return self.queued + self.in_flight + self.scheduled
