"""S3 object events in every shape they reach a handler (:class:`S3Event`), and the S3
test event (:func:`is_s3_test_event`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote_plus

from ._base import (
    _S3_EB_HINT,
    _S3_HINT,
    _SNS_HINT,
    _Ctx,
    _decode,
    _nest,
    _nested_dict,
    _opt_int,
    _opt_str,
    _record_source,
    _records,
    _str,
    _View,
    _wrong_source,
)
from ._sns import _sns_lambda_record, _sns_message
from ._sqs import _sqs_body


@dataclass(frozen=True, slots=True)
class S3EventRecord:
    """One S3 object event, from the classic notification format or from EventBridge.

    Attributes:
        bucket: The bucket name.
        key: The object key. Classic notifications: decoded with ``unquote_plus``. EventBridge:
            as delivered, unless ``decode_eventbridge_keys=True`` was given.
        event_name: The event type without the ``s3:`` prefix, e.g. "ObjectCreated:Put"; built
            from ``detail-type`` and ``detail`` for EventBridge (see the
            ``eventflow.events`` docstring).
        size: Object size in bytes, or None (delete events carry none).
        etag: ``eTag`` (classic) or ``etag`` (EventBridge), or None.
        version_id: ``versionId`` / ``version-id``, or None when the bucket is not versioned.
        sequencer: ``sequencer``, or None; order events for one key by comparing sequencers.
        event_time: ``eventTime`` (classic, millisecond precision) or ``time`` (EventBridge,
            second precision).
        region: ``awsRegion`` / ``region``, or None when absent.
        raw: The record mapping: a ``Records[]`` item, or the whole EventBridge envelope.
    """

    bucket: str
    key: str
    event_name: str
    size: int | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_time: str
    region: str | None
    raw: dict[str, Any]


_EB_CREATED_REASONS: Final = {
    "PutObject": "Put",
    "POST Object": "Post",
    "CopyObject": "Copy",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
}
_EB_DELETION_TYPES: Final = {
    "Permanently Deleted": "Delete",
    "Delete Marker Created": "DeleteMarkerCreated",
}
_EB_FIXED_EVENT_NAMES: Final = {
    "Object Restore Initiated": "ObjectRestore:Post",
    "Object Restore Completed": "ObjectRestore:Completed",
    "Object Restore Expired": "ObjectRestore:Delete",
    "Object Tags Added": "ObjectTagging:Put",
    "Object Tags Deleted": "ObjectTagging:Delete",
    "Object ACL Updated": "ObjectAcl:Put",
    "Object Storage Class Changed": "LifecycleTransition",
    "Object Access Tier Changed": "IntelligentTiering",
}
_TEST_EVENT_ADVICE: Final = (
    "is the S3 test event (s3:TestEvent) that S3 sends when a notification configuration is"
    " saved; it describes no object, so skip it (eventflow.events.is_s3_test_event() recognises"
    " it)"
)


def _is_bare_test_event(value: object) -> bool:
    # both fields, as S3 sends them: a message merely naming the event is not deleted unrun
    return (
        isinstance(value, dict)
        and value.get("Event") == "s3:TestEvent"
        and value.get("Service") == "Amazon S3"
    )


def _eventbridge_event_name(envelope: dict[str, Any], ctx: _Ctx) -> str:
    detail_type = _str(envelope, "detail-type", ctx)
    if detail_type == "Object Created":
        reason = _str(envelope, "detail.reason", ctx)
        return f"ObjectCreated:{_EB_CREATED_REASONS.get(reason, reason)}"
    if detail_type == "Object Deleted":
        deletion_type = _str(envelope, "detail.deletion-type", ctx)
        deletion_reason = _opt_str(envelope, "detail.reason", ctx)
        lifecycle = deletion_reason == "Lifecycle Expiration"
        prefix = "LifecycleExpiration" if lifecycle else "ObjectRemoved"
        return f"{prefix}:{_EB_DELETION_TYPES.get(deletion_type, deletion_type)}"
    if detail_type in _EB_FIXED_EVENT_NAMES:
        return _EB_FIXED_EVENT_NAMES[detail_type]
    known = ", ".join(
        repr(name) for name in ("Object Created", "Object Deleted", *_EB_FIXED_EVENT_NAMES)
    )
    raise ctx.fail(f"has 'detail-type' {detail_type!r}, which is not an S3 object event ({known})")


def _s3_from_eventbridge(envelope: dict[str, Any], ctx: _Ctx, decode_key: bool) -> S3EventRecord:
    key = _str(envelope, "detail.object.key", ctx)
    return S3EventRecord(
        bucket=_str(envelope, "detail.bucket.name", ctx),
        key=unquote_plus(key) if decode_key else key,
        event_name=_eventbridge_event_name(envelope, ctx),
        size=_opt_int(envelope, "detail.object.size", ctx),
        etag=_opt_str(envelope, "detail.object.etag", ctx),
        version_id=_opt_str(envelope, "detail.object.version-id", ctx),
        sequencer=_opt_str(envelope, "detail.object.sequencer", ctx),
        event_time=_str(envelope, "time", ctx),
        region=_opt_str(envelope, "region", ctx),
        raw=envelope,
    )


def _s3_classic(record: dict[str, Any], ctx: _Ctx) -> S3EventRecord:
    return S3EventRecord(
        bucket=_str(record, "s3.bucket.name", ctx),
        key=unquote_plus(_str(record, "s3.object.key", ctx)),
        event_name=_str(record, "eventName", ctx),
        size=_opt_int(record, "s3.object.size", ctx),
        etag=_opt_str(record, "s3.object.eTag", ctx),
        version_id=_opt_str(record, "s3.object.versionId", ctx),
        sequencer=_opt_str(record, "s3.object.sequencer", ctx),
        event_time=_str(record, "eventTime", ctx),
        region=_opt_str(record, "awsRegion", ctx),
        raw=record,
    )


def _collect_s3(
    data: dict[str, Any], origin: str, decode_eb: bool, out: list[S3EventRecord]
) -> None:
    """Append the S3 records found in ``data`` (described by ``origin``; "" at the top)."""
    here = origin or "the event"
    if _is_bare_test_event(data):
        raise _Ctx(here, _S3_HINT).fail(_TEST_EVENT_ADVICE)
    if "Records" in data:
        for index, record in enumerate(_records(data, _Ctx(here, _S3_HINT))):
            _collect_s3_record(record, index, origin, decode_eb, out)
    elif "Type" in data:
        envelope = _nest("the SNS envelope", origin)
        sns = _sns_message(data, "", _Ctx(envelope, _SNS_HINT))
        where = _nest("the message of the SNS envelope", origin)
        inner = _decode(sns.message, "a 'Message'", _Ctx(envelope, _S3_HINT))
        _collect_s3(_nested_dict(inner, where, _S3_HINT), where, decode_eb, out)
    elif "source" in data or "detail-type" in data:
        ctx = _Ctx(_nest("the EventBridge event", origin), _S3_EB_HINT)
        source = _str(data, "source", ctx)
        if source != "aws.s3":
            raise ctx.fail(f"has 'source' {source!r}, not 'aws.s3': it is not an S3 event")
        out.append(_s3_from_eventbridge(data, ctx, decode_eb))
    else:
        raise _Ctx(here, _S3_HINT).fail(
            "has no 'Records' field (S3 notification, SNS or SQS event for Lambda), no 'Type'"
            " field (SNS envelope) and no 'source' field (EventBridge event)"
        )


def _collect_s3_record(
    record: dict[str, Any], index: int, origin: str, decode_eb: bool, out: list[S3EventRecord]
) -> None:
    source = _record_source(record, index, origin, _S3_HINT)
    if source == "aws:s3":
        out.append(_s3_classic(record, _Ctx(_nest(f"S3 event record {index}", origin), _S3_HINT)))
        return
    if source == "aws:sns":
        sns = _sns_lambda_record(record, index, origin)
        ctx = _Ctx(_nest(f"SNS record {index}", origin), _S3_HINT)
        where = _nest(f"the message of SNS record {index}", origin)
        inner = _decode(sns.message, "a 'Sns.Message'", ctx)
    elif source == "aws:sqs":
        inner, where = _sqs_body(record, index, origin, _S3_HINT)
    else:
        accepted = "'aws:s3', 'aws:sns' and 'aws:sqs' records"
        raise _wrong_source(source, index, origin, "S3Event", accepted)
    _collect_s3(_nested_dict(inner, where, _S3_HINT), where, decode_eb, out)


@dataclass(frozen=True, slots=True)
class S3Event(_View):
    """S3 object events, from any of the shapes in which they reach a handler.

    Attributes:
        records: The object events, in delivery order (flattened across SQS and SNS records).
    """

    _hint = _S3_HINT

    records: tuple[S3EventRecord, ...]

    @classmethod
    def from_dict(cls, event: object, *, decode_eventbridge_keys: bool = False) -> S3Event:
        """Read S3 object events, unwrapping SNS, SQS and EventBridge deliveries.

        Args:
            event: The event as decoded JSON.
            decode_eventbridge_keys: Decode keys of EventBridge-delivered events with
                ``unquote_plus`` too. Off by default: AWS does not document that EventBridge
                encodes keys. Keys of classic notifications are always decoded.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event (or a message inside it) is not an S3 object event, is the
                ``s3:TestEvent``, or has a field missing or of the wrong type.
        """
        data, _ = cls._input(event)
        records: list[S3EventRecord] = []
        _collect_s3(data, "", decode_eventbridge_keys, records)
        return cls(records=tuple(records))


def _unwrap_messages(value: dict[str, Any]) -> list[Any] | None:
    """The decoded messages an SNS/SQS delivery carries, or None if ``value`` is no delivery."""
    texts: list[Any] = []
    if isinstance(value.get("Records"), list) and value["Records"]:
        for record in value["Records"]:
            if not isinstance(record, dict):
                return None
            sns = record.get("Sns")
            texts.append(sns.get("Message") if isinstance(sns, dict) else record.get("body"))
    elif value.get("Type") == "Notification":
        texts.append(value.get("Message"))
    else:
        return None
    messages: list[Any] = []
    for text in texts:
        if not isinstance(text, str):
            return None
        try:
            messages.append(json.loads(text))
        except (ValueError, RecursionError):
            return None
    return messages


def is_s3_test_event(event: object) -> bool:
    """Tell whether ``event`` is the S3 test event (``s3:TestEvent``).

    S3 sends the test event to SQS and SNS destinations when a notification configuration is
    saved. It is recognised bare and inside the deliveries that carry it (an SNS envelope, an
    SNS or SQS event for Lambda); a batch counts only if every message in it is the test event.

    Args:
        event: The event as decoded JSON; any value is accepted.

    Returns:
        True for the test event, False for anything else (including malformed input).
    """
    if _is_bare_test_event(event):
        return True
    if not isinstance(event, dict):
        return False
    messages = _unwrap_messages(event)
    if not messages:
        return False
    return all(is_s3_test_event(message) for message in messages)
