"""The SQS wire format of :class:`~eventflow.aws.SQSEventQueue`: one event as one message.

This is a contract between processes (every app on the queue, of whatever version, reads
what any other sends), so all of it is here; ``docs/multi-machine.md`` describes it.

=================  ===========  ==========================================================
field              where        meaning
=================  ===========  ==========================================================
payload            body         the event payload as compact JSON (UTF-8)
``RequestID``      String attr  the request ID ``invoke`` answered with
``Handler``        String attr  the handler's name
``FirstEnqueued``  Number attr  Unix seconds of the first enqueue: the event's age counts
                                from there wherever it runs
``Attempt``        Number attr  attempts made before this message was sent (0 for an invoke)
``NotBefore``      Number attr  on a long retry only: Unix seconds before which no attempt
                                runs (a receive before it puts the message back)
``TraceContext``   String attr  optional: the string pairs a middleware gave the event
                                where it was invoked (W3C ``traceparent`` / ``tracestate``)
                                as a JSON object; absent when there are none. Optional both
                                ways, so it needs no new version: a process from before it
                                does not ask for it, and a message without it (or with one
                                that cannot be read) runs without a trace context
``Version``        Number attr  :data:`VERSION`; absent means 1 (messages of processes from
                                before the field); a higher one is refused as malformed
=================  ===========  ==========================================================

The attempt rule: attempts before a delivery = ``Attempt`` + ``ApproximateReceiveCount``
- 1, so a delivery cut short by a dying process counts as an attempt. A long retry is sent
again with ``DelaySeconds`` as long as SQS allows; when that is shorter than the delay, the
receive before ``NotBefore`` will count one more, so ``Attempt`` is set one short
(:func:`resend_delay`). ``NotBefore`` is early by more than :data:`EARLY` seconds only,
since SQS's delays are whole seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = (
    "EARLY",
    "RECEIVE_ATTRIBUTES",
    "VERSION",
    "WireEvent",
    "attributes",
    "decode",
    "encode_body",
    "encode_trace",
    "identity",
    "is_early",
    "resend_delay",
    "size_of",
)

VERSION = 1
EARLY = 0.5  # a receive this much before NotBefore is early (SQS delays are whole seconds)
_REQUEST_ID, _HANDLER, _FIRST, _ATTEMPT = "RequestID", "Handler", "FirstEnqueued", "Attempt"
_NOT_BEFORE, _VERSION, _TRACE = "NotBefore", "Version", "TraceContext"
RECEIVE_ATTRIBUTES = [_REQUEST_ID, _HANDLER, _FIRST, _ATTEMPT, _NOT_BEFORE, _VERSION, _TRACE]
_OVERHEAD = 200  # bytes the attributes take besides the request ID and handler name


@dataclass(frozen=True, slots=True)
class WireEvent:
    """What a received message says about its event (the body is decoded apart)."""

    request_id: str
    handler: str
    first_enqueued: float
    attempts: int  # before this delivery, by the attempt rule
    not_before: float | None
    trace_context: dict[str, str] | None = None


def encode_body(payload: Any) -> str:
    """The message body of ``payload``: compact JSON, non-ASCII kept as is."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def encode_trace(trace_context: Mapping[str, str] | None) -> str | None:
    """The ``TraceContext`` attribute's value for ``trace_context`` (``None``: no attribute)."""
    if not trace_context:
        return None
    return json.dumps(dict(trace_context), separators=(",", ":"), ensure_ascii=False)


def size_of(body: str, request_id: str, handler: str, trace: str | None = None) -> int:
    """The bytes a message counts against the queue's MaximumMessageSize (an upper bound)."""
    extra = 0 if trace is None else len(_TRACE) + len(trace.encode()) + 6  # + "String"
    return len(body.encode()) + _OVERHEAD + len(request_id) + len(handler) + extra


def attributes(
    request_id: str,
    handler: str,
    first: float,
    attempts: int,
    not_before: float | None = None,
    trace: str | None = None,
) -> dict[str, Any]:
    """The message attributes that carry an event's identity and progress; ``trace`` is
    :func:`encode_trace`'s value."""
    out = {
        _REQUEST_ID: {"DataType": "String", "StringValue": request_id},
        _HANDLER: {"DataType": "String", "StringValue": handler},
        _FIRST: {"DataType": "Number", "StringValue": f"{first:.3f}"},
        _ATTEMPT: {"DataType": "Number", "StringValue": str(attempts)},
        _VERSION: {"DataType": "Number", "StringValue": str(VERSION)},
    }
    if not_before is not None:
        out[_NOT_BEFORE] = {"DataType": "Number", "StringValue": f"{not_before:.3f}"}
    if trace is not None:
        out[_TRACE] = {"DataType": "String", "StringValue": trace}
    return out


def _trace_context(attrs: Mapping[str, Any]) -> dict[str, str] | None:
    # it only links spans: one that cannot be read is left out, and the event runs
    raw = attrs.get(_TRACE)
    text = raw.get("StringValue") if isinstance(raw, dict) else None
    if not isinstance(text, str):
        return None
    try:
        pairs = json.loads(text)
    except ValueError:
        return None
    if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
        return None
    return pairs


def decode(message: Mapping[str, Any]) -> WireEvent:
    """Read an event's identity and progress from a received message.

    Raises:
        ValueError: The message is not an eventflow event (the reason is the message).
    """
    attrs = message.get("MessageAttributes") or {}
    try:
        version = int(attrs.get(_VERSION, {}).get("StringValue", "1"))
        request_id = str(attrs[_REQUEST_ID]["StringValue"])
        handler = str(attrs[_HANDLER]["StringValue"])
        first = float(attrs[_FIRST]["StringValue"])
        base = int(attrs.get(_ATTEMPT, {}).get("StringValue", "0"))
        count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        raw = attrs.get(_NOT_BEFORE)
        not_before = None if raw is None else float(raw["StringValue"])
    except Exception as exc:  # whatever a foreign sender put there
        raise ValueError(
            f"the message lacks eventflow's attributes ({exc!r}); only SQSEventQueue "
            "should send to an event queue"
        ) from None
    if version > VERSION:
        raise ValueError(
            f"the message has wire format version {version}, newer than this process "
            f"understands ({VERSION}); upgrade eventflow here"
        )
    return WireEvent(
        request_id, handler, first, base + max(0, count - 1), not_before, _trace_context(attrs)
    )


def identity(message: Mapping[str, Any]) -> tuple[str, str]:
    """The request ID and handler a message names, as far as they can be read ('' if not):
    for the log of a message that :func:`decode` refused."""
    attrs = message.get("MessageAttributes") or {}
    found = []
    for name in (_REQUEST_ID, _HANDLER):
        value = attrs.get(name)
        text = value.get("StringValue") if isinstance(value, dict) else None
        found.append(text if isinstance(text, str) else "")
    return found[0], found[1]


def is_early(not_before: float | None, now: float) -> bool:
    """Whether a message received at Unix time ``now`` came before its ``NotBefore``."""
    return not_before is not None and not_before - now > EARLY


def resend_delay(due: float, now: float, max_delay: int) -> tuple[int, int]:
    """``DelaySeconds`` for a message sent again at ``now`` to run at ``due``, and what to
    add to its ``Attempt``: -1 when SQS cannot delay it that long (the early receive to
    come postpones it, and is counted)."""
    delay = max(0, math.ceil(due - now))
    if delay > max_delay:
        return max_delay, -1
    return delay, 0
