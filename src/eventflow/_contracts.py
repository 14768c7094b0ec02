"""The engine's vocabulary and extension protocols, importable without any implementation.

Everything the core and the adapters agree on lives here and only here (starlette's
``types.py``, httpx's ``_transports/base.py``): the values that cross a boundary
(:class:`Message`, :class:`QueuedEvent`, :class:`Outcome`, :class:`ClaimStatus`,
:class:`Claim`), the protocols an extension implements (:class:`Sink`, :class:`Source`,
:class:`SharedQueue`, :class:`IdempotencyStore`) and :class:`AppHost`, the small part of
the app that a source or a shared queue may call. This module imports nothing of
eventflow at run time, so any module may import it without a cycle; the public modules
``eventflow.sinks``, ``eventflow.sources``, ``eventflow.queues`` and ``eventflow.stores``
re-export these names next to their implementations.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, overload, runtime_checkable

from ._errors import EventflowError  # a leaf module: the error tree's root

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from ._clock import Clock
    from ._handler import Handler, HandlerConfig
    from ._results import Accepted, InvocationResult

__all__ = (
    "AppHost",
    "Claim",
    "ClaimStatus",
    "Defer",
    "IdempotencyStore",
    "Message",
    "Outcome",
    "QueuedEvent",
    "Settle",
    "SharedQueue",
    "Sink",
    "SinkRejected",
    "Source",
)


# -- sinks ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One message handed to a sink.

    Attributes:
        body: The message body: the event payload as JSON for a dead letter or a spilled
            event, the invocation record as JSON for a destination.
        attributes: String attributes, such as ``RequestID``, ``ErrorCode`` and
            ``ErrorMessage`` on a dead letter (Lambda's DLQ message attributes).
    """

    body: str
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class SinkRejected(EventflowError):
    """Raised by a sink for a message that can never be sent (too large for the target, say).

    eventflow does not retry it: the message is counted as a dead-letter or destination
    error at once and logged at error level with its whole body.
    """


@runtime_checkable
class Sink(Protocol):
    """Receives messages. ``send`` raises on failure; eventflow retries it."""

    async def send(self, message: Message) -> None: ...


# -- sources --------------------------------------------------------------------------


class Outcome(enum.Enum):
    """How an event submitted by a source ended."""

    SUCCEEDED = "succeeded"
    """A handler attempt succeeded (and its on-success record was sent)."""
    FAILED = "failed"
    """Retries exhausted or too old; its dead letter / on-failure record was sent."""
    RELEASED = "released"
    """The app stopped before the event finished: give it back to where it came from."""
    UNDELIVERED = "undelivered"
    """It could not be finished here: none of its failure records (dead letter, on-failure)
    could be sent, or eventflow itself failed. Give it back after a backoff, so that it is
    tried again later and, if it keeps coming back, reaches the queue's redrive policy."""


Settle = Callable[[str, Outcome], None]
"""Called once per submitted event, on the event loop, with its request ID and outcome."""

Defer = Callable[[str, float], None]
"""Called with an event's request ID and a delay in seconds: deliver it again after it."""


@dataclass(frozen=True, slots=True, init=False)
class QueuedEvent:
    """An event as a shared queue carries it.

    Attributes:
        request_id: The invocation's request ID, the same for every attempt.
        handler: The name of the handler that runs it.
        payload: The JSON payload.
        first_enqueued: Wall-clock time (Unix seconds) of the first enqueue: the event's
            age, checked against ``max_event_age``, counts from here.
        attempts: Attempts already made before this delivery (an attempt cut short by a
            dying process counts, as Lambda counts a crashed runtime).
        trace_context: String pairs a middleware gave the event where it was invoked (W3C
            ``traceparent`` / ``tracestate``, say), or ``None``: a queue stores them with
            the event and hands them back unchanged.
    """

    request_id: str
    handler: str
    payload: Any
    first_enqueued: float
    attempts: int = 0
    trace_context: Mapping[str, str] | None = None

    def __init__(
        self,
        request_id: str,
        handler: str,
        payload: Any,
        first_enqueued: float,
        attempts: int = 0,
        trace_context: Mapping[str, str] | None = None,
    ) -> None:
        # the slots' own setters: the generated frozen __init__ goes through
        # object.__setattr__, which costs twice as much, once per invoke on a shared queue
        _set_request_id(self, request_id)
        _set_handler(self, handler)
        _set_payload(self, payload)
        _set_first_enqueued(self, first_enqueued)
        _set_attempts(self, attempts)
        _set_trace_context(self, trace_context)


(
    _set_request_id,
    _set_handler,
    _set_payload,
    _set_first_enqueued,
    _set_attempts,
    _set_trace_context,
) = (vars(QueuedEvent)[f.name].__set__ for f in fields(QueuedEvent))


class AppHost(Protocol):
    """What a source or a shared queue may use of the app that runs it.

    :class:`eventflow.App` implements it; a test may hand a source any object that does.
    """

    @property
    def clock(self) -> Clock:
        """The app's clock: delays a source or queue keeps run on it."""
        ...

    @property
    def concurrency(self) -> int:
        """Attempts that may run at once; a queue holds at most this plus one batch."""
        ...

    @property
    def shutdown_timeout(self) -> float:
        """Seconds the app waits at shutdown; bounds calls a source makes while it stops."""
        ...

    @property
    def region(self) -> str:
        """The region in the ARNs the app makes (a schedule's rule ARN, say)."""
        ...

    @property
    def account_id(self) -> str:
        """The account ID in the ARNs the app makes."""
        ...

    def handler_config(self, handler: str | Handler) -> HandlerConfig:
        """The settings events accepted now for ``handler`` run with."""
        ...

    async def submit(
        self, handler: str | Handler, payload: Any, *, settle: Settle | None = None
    ) -> Accepted:
        """Accept an event; ``settle`` is called once with its outcome."""
        ...

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
    ) -> InvocationResult: ...

    async def reject(
        self,
        handler: str | Handler,
        payload: Any,
        reason: str,
        *,
        settle: Settle | None = None,
        request_id: str | None = None,
    ) -> Accepted:
        """Accept an event that cannot run and send it down the failure path."""
        ...

    async def deliver(self, event: QueuedEvent, *, settle: Settle, defer: Defer) -> None:
        """Take an event from a shared queue to run here."""
        ...


@runtime_checkable
class Source(Protocol):
    """Submits events to an app until cancelled."""

    async def run(self, app: AppHost, *, task_status: TaskStatus[None]) -> None:
        """Call ``task_status.started()`` once receiving, then submit events until cancelled."""
        ...


@runtime_checkable
class SharedQueue(Protocol):
    """An event queue shared by apps: ``put`` stores an event, ``run`` delivers events.

    A queue that is also an async context manager is entered before the app starts and
    exited after every event it delivered has been settled.
    """

    async def put(self, event: QueuedEvent) -> None:
        """Store ``event`` durably; return only once it is stored (the 202 waits for it)."""
        ...

    async def run(self, app: AppHost, *, task_status: TaskStatus[None]) -> None:
        """Call ``task_status.started()``, then hand events to ``app.deliver`` until cancelled.

        Hold no more than ``app.concurrency`` plus one receive batch of undeleted events.
        """
        ...

    async def wait_empty(self) -> None:
        """Return once no event is stored, waiting for a retry or being run anywhere."""
        ...


# -- idempotency stores -----------------------------------------------------------------


class ClaimStatus(enum.Enum):
    """What a key's record says when an attempt claims it."""

    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CONFLICT = "conflict"


class Claim(NamedTuple):
    """A store's answer to ``claim()`` (a named tuple: cheap on the hot path).

    Attributes:
        status: What the key's record says.
        token: The new claim's token (``CLAIMED`` only): a string, or any value the same
            store recognises (MemoryStore uses the claim's record, by identity).
        result: The stored JSON result (``COMPLETED`` only).
        lease_until: When the current claim ends (``IN_PROGRESS`` only).
    """

    status: ClaimStatus
    token: Any = None
    result: str | None = None
    lease_until: float | None = None


@runtime_checkable
class IdempotencyStore(Protocol):
    """Claims and results of idempotent handlers; see :mod:`eventflow.stores`."""

    async def claim(
        self, key: str, payload: Any, *, now: float, lease_until: float, validate: bool
    ) -> Claim: ...

    async def complete(self, key: str, token: str, result: str, *, expires_at: float) -> None: ...

    async def release(self, key: str, token: str) -> None: ...
