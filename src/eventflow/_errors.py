"""The exception hierarchy of eventflow.

::

    EventflowError
    ├── ConfigurationError (also ValueError)   bad option, raised when it is given
    │   └── InvalidPattern                     an event pattern or filter policy breaks the language
    ├── UnknownHandler (also LookupError)      invoke() named no registered handler
    ├── InvalidPayload (also ValueError)       the payload is not JSON, or beyond a limit
    ├── QueueFull                              invoke_nowait() found the event queue full
    ├── AppClosed                              invoke() after shutdown began, or before start
    ├── QueueUnavailable                       a shared queue did not store an invoked event
    ├── SchedulerFull                          the retry timer wheel is at capacity
    ├── InvalidEvent (also ValueError)         a typed event view met a malformed event
    ├── IdempotencyConflict                    an idempotency key came with another payload
    ├── IdempotencyKeyMissing (also KeyError)  an event has no idempotency key to claim
    ├── SinkRejected                           a sink can never send this message (not retried)
    ├── AWSError                               an AWS call made by an adapter failed
    │   ├── ResourceCheckFailed                an adapter's start-up check found its resource
    │   │                                      missing, forbidden or unreachable
    │   └── SignatureError                     an SNS message's signature did not verify
    └── SignatureRejected                      a request's Signature V4 did not verify

``SinkRejected`` lives in :mod:`eventflow.sinks`, the AWS errors in :mod:`eventflow.aws`
and ``SignatureRejected`` in :mod:`eventflow.http`: the core never imports AWS or HTTP
code, so their classes are defined there, on this root.

Every message is a sentence that says what was wrong and how to fix it.
"""

from __future__ import annotations

__all__ = (
    "AppClosed",
    "ConfigurationError",
    "EventflowError",
    "IdempotencyConflict",
    "IdempotencyKeyMissing",
    "InvalidEvent",
    "InvalidPattern",
    "InvalidPayload",
    "QueueFull",
    "QueueUnavailable",
    "SchedulerFull",
    "UnknownHandler",
)


class EventflowError(Exception):
    """The root of every exception eventflow raises on purpose."""


class ConfigurationError(EventflowError, ValueError):
    """An option has a value outside its accepted range; raised when the option is given."""


class InvalidPattern(ConfigurationError):
    """An event pattern, filter policy or key filter is invalid; raised when it is built.

    The message names the field (as a dotted path) and what is wrong with it, as
    EventBridge's ``InvalidEventPatternException`` does.
    """


class UnknownHandler(EventflowError, LookupError):
    """An invocation named a handler that this app does not serve."""


class InvalidPayload(EventflowError, ValueError):
    """A payload is not JSON, or breaks a payload limit, so no Lambda-style event can carry it."""


class QueueFull(EventflowError):
    """``invoke_nowait()`` found the bounded event queue full; wait with ``invoke()`` or retry."""


class AppClosed(EventflowError):
    """The app does not accept events: it has not started yet, or its shutdown has begun."""


class QueueUnavailable(EventflowError):
    """A shared event queue (``App(queue=...)``) did not store an invoked event.

    The event was not accepted: the caller may retry the invoke.
    """


class SchedulerFull(EventflowError):
    """The retry timer wheel holds as many timers as its capacity allows."""


class InvalidEvent(EventflowError, ValueError):
    """An event does not have the shape a typed view expects; the message names the field."""


class IdempotencyConflict(EventflowError):
    """An idempotency key arrived with a payload other than the one it was first used with.

    It fails that event's attempt (a function error), never a silent skip.
    """


class IdempotencyKeyMissing(EventflowError, KeyError):
    """An event has no idempotency key: the key path is not in it, or its value is None.

    It fails that event's attempt (a function error); the message names the path.
    """

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; this message is a sentence
        return str(self.args[0]) if self.args else ""
