"""EventBridge events, bare or in SQS bodies: :class:`EventBridgeEvent`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._errors import InvalidEvent
from ._base import (
    _EB_HINT,
    _MISSING,
    _Ctx,
    _decode,
    _json_type,
    _lookup,
    _nested_dict,
    _opt_str,
    _record_source,
    _records,
    _str,
    _str_tuple,
    _View,
    _wrong_source,
)
from ._sqs import _sqs_body


@dataclass(frozen=True, slots=True)
class EventBridgeEvent(_View):
    """An EventBridge event (the envelope a rule target receives).

    Attributes:
        id: ``id``, unique per event.
        source: ``source``, e.g. "aws.s3" or a custom source.
        detail_type: ``detail-type``.
        detail: ``detail``. EventBridge Scheduler samples carry it as JSON text ("{}"); text
            that decodes to an object is decoded.
        time: ``time`` (RFC 3339).
        resources: ``resources``, ARNs (may be empty).
        account: ``account``, or None when absent (some emulators leave it out).
        region: ``region``, or None when absent.
        version: ``version`` ("0"), or None when absent (SAM CLI's generated scheduled event
            leaves it out).
        raw: The envelope mapping as received.
    """

    _hint = _EB_HINT

    id: str
    source: str
    detail_type: str
    detail: dict[str, Any]
    time: str
    resources: tuple[str, ...]
    account: str | None
    region: str | None
    version: str | None
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, event: object) -> EventBridgeEvent:
        """Read one EventBridge event: a bare envelope, or an SQS event with exactly one record.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event is not an EventBridge envelope; an SQS event does not hold
                exactly one record, or a body is not an envelope; or a field is missing or has
                the wrong type.
        """
        events = _eventbridge_events(event, "from_dict")
        if len(events) != 1:
            raise InvalidEvent(
                f"EventBridgeEvent.from_dict() needs exactly one event, but the SQS event has"
                f" {len(events)} records; use EventBridgeEvent.all_from_dict() for a batch."
            )
        return events[0]

    @classmethod
    def all_from_dict(cls, event: object) -> tuple[EventBridgeEvent, ...]:
        """Read every EventBridge event: one for an envelope, one per record of an SQS event.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed views, in delivery order.

        Raises:
            InvalidEvent: The event is not an EventBridge envelope, a body is not an envelope,
                or a field is missing or has the wrong type.
        """
        return tuple(_eventbridge_events(event, "all_from_dict"))


def _eventbridge_envelope(envelope: dict[str, Any], ctx: _Ctx) -> EventBridgeEvent:
    source = _str(envelope, "source", ctx)
    detail_type = _str(envelope, "detail-type", ctx)
    detail: Any = _lookup(envelope, "detail", ctx)
    if isinstance(detail, str):
        decoded = _decode(detail, "a 'detail' string", ctx)
        if isinstance(decoded, dict):
            detail = decoded
    if detail is _MISSING:
        raise ctx.fail("has no 'detail' field")
    if not isinstance(detail, dict):
        raise ctx.fail(f"has 'detail' of type {_json_type(detail)}, expected an object")
    return EventBridgeEvent(
        id=_str(envelope, "id", ctx),
        source=source,
        detail_type=detail_type,
        detail=detail,
        time=_str(envelope, "time", ctx),
        resources=_str_tuple(envelope, "resources", ctx),
        account=_opt_str(envelope, "account", ctx),
        region=_opt_str(envelope, "region", ctx),
        version=_opt_str(envelope, "version", ctx),
        raw=envelope,
    )


def _eventbridge_events(event: object, method: str) -> list[EventBridgeEvent]:
    data, top = EventBridgeEvent._input(event, method)
    if "Records" not in data:
        return [_eventbridge_envelope(data, top)]
    events: list[EventBridgeEvent] = []
    for index, record in enumerate(_records(data, top)):
        source = _record_source(record, index, "", _EB_HINT)
        if source != "aws:sqs":
            accepted = "'aws:sqs' records of EventBridge events"
            raise _wrong_source(source, index, "", "EventBridgeEvent", accepted)
        body, where = _sqs_body(record, index, "", _EB_HINT)
        envelope = _nested_dict(body, where, _EB_HINT)
        if "Type" in envelope and "detail-type" not in envelope:
            raise _Ctx(where, _EB_HINT).fail("is an SNS envelope, not an EventBridge event")
        events.append(_eventbridge_envelope(envelope, _Ctx(where, _EB_HINT)))
    return events
