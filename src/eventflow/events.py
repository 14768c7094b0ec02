"""Typed, read-only views of the AWS events that reach a Lambda handler.

Each view has a ``from_dict`` class method that takes the event as decoded JSON (a ``dict``) and
returns frozen dataclasses. Every malformed input raises :class:`eventflow.InvalidEvent`, whose
message names the field, where it is, and what was expected; no ``KeyError``, ``TypeError`` or
``json.JSONDecodeError`` escapes.

Supported shapes:

``S3Event.from_dict``
    * an S3 event notification: ``{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}``;
    * S3 → SNS → Lambda: ``{"Records": [{"EventSource": "aws:sns", "Sns": {...}}]}``, where
      ``Sns.Message`` is the JSON text of an S3 notification;
    * an SNS envelope (the body of an SNS HTTP(S) delivery, or of an SQS message):
      ``{"Type": "Notification", "Message": "<JSON of an S3 notification>", ...}``;
    * S3 → EventBridge: ``{"source": "aws.s3", "detail-type": "Object Created", "detail": {}}``;
    * SQS → Lambda, ``{"Records": [{"eventSource": "aws:sqs", "body": "<JSON>"}]}``, whose
      bodies are any of the above: an S3 notification (S3 → SQS, or S3 → SNS with raw message
      delivery → SQS), an SNS envelope, or an EventBridge event.

    The ``s3:TestEvent`` that S3 sends when a notification configuration is saved is not an
    S3Event: ``from_dict`` raises, and :func:`is_s3_test_event` recognises it.

``SNSEvent.from_dict``
    * SNS → Lambda (``Records[].Sns``; Lambda spells ``SigningCertUrl`` and ``UnsubscribeUrl``);
    * a bare SNS envelope of type ``Notification`` (HTTP(S) body, SQS body, either URL spelling);
    * SQS → Lambda whose bodies are SNS envelopes (raw message delivery is not an envelope: read
      such bodies with ``SQSEvent``).

``EventBridgeEvent.from_dict`` / ``EventBridgeEvent.all_from_dict``
    * a bare EventBridge envelope;
    * SQS → Lambda whose bodies are EventBridge envelopes (``from_dict`` needs exactly one record).

``SQSEvent.from_dict``
    * SQS → Lambda (event source mapping, camelCase keys), as ``eventflow.aws.SQSBatchSource``
      delivers it too.

The other asynchronous sources, each with an ``idempotency_key`` (the default key of
``Idempotency(key=None)``):

``CloudWatchLogsEvent.from_dict``
    * ``{"awslogs": {"data": <base64 of gzip of JSON>}}``, decoded; ``is_control`` marks the
      CONTROL_MESSAGE CloudWatch Logs sends first.
``CodeCommitEvent.from_dict``
    * a repository trigger's ``{"Records": [{"eventSource": "aws:codecommit", ...}]}``;
    * the EventBridge "CodeCommit Repository State Change" event.
``CodePipelineJobEvent.from_dict``
    * ``{"CodePipeline.job": {...}}`` (report it with ``eventflow.aws.CodePipelineJob``).
``SESEvent.from_dict``
    * an SES receipt rule's ``{"Records": [{"eventSource": "aws:ses", "ses": {...}}]}``.
``CloudFormationCustomResourceEvent.from_dict``
    * a custom resource request (answer it with ``eventflow.aws.CustomResource``).
``ConfigRuleEvent.from_dict``
    * an AWS Config rule event; ``invokingEvent`` and ``ruleParameters`` (JSON text) decoded
      (report with ``eventflow.aws.ConfigRuleEvaluation``).
``IoTEventsEvent.from_dict``
    * an AWS IoT Events detector's Lambda action (its default payload).

An IoT rule's Lambda action has no view: it sends what the rule's SQL ``SELECT`` produces, so
type it with a ``TypedDict`` (or dataclass) of the selected fields.

S3 object keys: the classic notification format URL-encodes keys form-style (space → ``+``), so
``S3EventRecord.key`` is decoded with :func:`urllib.parse.unquote_plus`. Whether EventBridge encodes
keys is not documented; those keys are kept as delivered unless ``decode_eventbridge_keys=True``.

EventBridge S3 events have no ``eventName``; ``S3EventRecord.event_name`` is built from
``detail-type`` and ``detail`` to match the classic names:

============================  ===============================  ===================================
detail-type                   detail                           event_name
============================  ===============================  ===================================
Object Created                reason PutObject                 ObjectCreated:Put
Object Created                reason POST Object               ObjectCreated:Post
Object Created                reason CopyObject                ObjectCreated:Copy
Object Created                reason CompleteMultipartUpload   ObjectCreated:CompleteMultipartUpload
Object Created                any other reason R               ObjectCreated:R (R verbatim)
Object Deleted                "Permanently Deleted" [1]_       ObjectRemoved:Delete
Object Deleted                "Delete Marker Created" [1]_     ObjectRemoved:DeleteMarkerCreated
Object Deleted                any other deletion-type D        ObjectRemoved:D (D verbatim)
Object Restore Initiated                                       ObjectRestore:Post
Object Restore Completed                                       ObjectRestore:Completed
Object Restore Expired                                         ObjectRestore:Delete
Object Tags Added                                              ObjectTagging:Put
Object Tags Deleted                                            ObjectTagging:Delete
Object ACL Updated                                             ObjectAcl:Put
Object Storage Class Changed                                   LifecycleTransition
Object Access Tier Changed                                     IntelligentTiering
============================  ===============================  ===================================

.. [1] ``detail.deletion-type``. When ``detail.reason`` is "Lifecycle Expiration" the prefix is
   ``LifecycleExpiration`` instead of ``ObjectRemoved``, as in the classic format.

Any other ``detail-type`` from ``aws.s3`` (for example "AWS API Call via CloudTrail") is not an
object event and raises InvalidEvent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote_plus

from ._errors import InvalidEvent

__all__ = (
    "S3Event",
    "S3EventRecord",
    "is_s3_test_event",
    "SNSEvent",
    "SNSRecord",
    "EventBridgeEvent",
    "SQSEvent",
    "SQSRecord",
    "CloudWatchLogsEvent",
    "CloudWatchLogEvent",
    "decode_awslogs_data",
    "CodeCommitEvent",
    "CodeCommitRecord",
    "CodeCommitReference",
    "CodePipelineJobEvent",
    "CodePipelineArtifact",
    "SESEvent",
    "SESRecord",
    "CloudFormationCustomResourceEvent",
    "ConfigRuleEvent",
    "IoTEventsEvent",
)

_S3_HINT: Final = (
    "expected an S3 event notification "
    "(see https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)"
)
_S3_EB_HINT: Final = (
    "expected an S3 event delivered by EventBridge "
    "(see https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)"
)
_SNS_HINT: Final = (
    "expected an SNS Notification "
    "(see https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html)"
)
_SNS_LAMBDA_HINT: Final = (
    "expected an SNS event for Lambda "
    "(see https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html)"
)
_SQS_HINT: Final = (
    "expected an SQS event for Lambda "
    "(see https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)"
)
_EB_HINT: Final = (
    "expected an EventBridge event "
    "(see https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html)"
)

_MISSING: Final = object()


# --------------------------------------------------------------------------- field access helpers


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Where a mapping sits in the event, and what shape was expected there."""

    where: str
    hint: str

    def fail(self, problem: str) -> InvalidEvent:
        message = f"{self.where} {problem}; {self.hint}."
        return InvalidEvent(message[0].upper() + message[1:])


def _nest(inner: str, origin: str) -> str:
    return f"{inner} in {origin}" if origin else inner


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _lookup(obj: dict[str, Any], path: str, ctx: _Ctx) -> Any:
    """Walk a dotted path; return ``_MISSING`` if a step is absent, raise if a step is no object."""
    current: Any = obj
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(current, dict):
            walked = ".".join(parts[:depth])
            raise ctx.fail(f"has '{walked}' of type {_json_type(current)}, expected an object")
        if part not in current:
            return _MISSING
        current = current[part]
    return current


def _typed(obj: dict[str, Any], path: str, ctx: _Ctx, kind: type, *, required: bool) -> Any:
    value = _lookup(obj, path, ctx)
    if value is _MISSING or (value is None and not required):
        if required:
            raise ctx.fail(f"has no '{path}' field")
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        expected = {str: "a string", int: "an integer", dict: "an object", list: "an array"}[kind]
        raise ctx.fail(f"has '{path}' of type {_json_type(value)}, expected {expected}")
    return value


def _str(obj: dict[str, Any], path: str, ctx: _Ctx) -> str:
    value: str = _typed(obj, path, ctx, str, required=True)
    return value


def _opt_str(obj: dict[str, Any], path: str, ctx: _Ctx) -> str | None:
    value: str | None = _typed(obj, path, ctx, str, required=False)
    return value


def _opt_int(obj: dict[str, Any], path: str, ctx: _Ctx) -> int | None:
    value: int | None = _typed(obj, path, ctx, int, required=False)
    return value


def _obj(obj: dict[str, Any], path: str, ctx: _Ctx) -> dict[str, Any]:
    value: dict[str, Any] = _typed(obj, path, ctx, dict, required=True)
    return value


def _str_tuple(obj: dict[str, Any], path: str, ctx: _Ctx) -> tuple[str, ...]:
    values: list[Any] = _typed(obj, path, ctx, list, required=True)
    for index, item in enumerate(values):
        if not isinstance(item, str):
            raise ctx.fail(f"has '{path}[{index}]' of type {_json_type(item)}, expected a string")
    return tuple(values)


def _str_map(obj: dict[str, Any], path: str, ctx: _Ctx) -> dict[str, str]:
    """An optional object of strings (``{}`` when absent or null)."""
    values: dict[str, Any] = _typed(obj, path, ctx, dict, required=False) or {}
    for name, item in values.items():
        if not isinstance(item, str):
            raise ctx.fail(f"has '{path}.{name}' of type {_json_type(item)}, expected a string")
    return values


def _attr_map(obj: dict[str, Any], path: str, ctx: _Ctx) -> dict[str, dict[str, Any]]:
    """An optional object of objects, as message attributes are (``{}`` when absent or null)."""
    values: dict[str, Any] = _typed(obj, path, ctx, dict, required=False) or {}
    for name, item in values.items():
        if not isinstance(item, dict):
            raise ctx.fail(f"has '{path}.{name}' of type {_json_type(item)}, expected an object")
    return values


def _first_str(obj: dict[str, Any], paths: tuple[str, ...], ctx: _Ctx) -> str | None:
    """The first of several spellings that is present (SNS URL fields differ by delivery)."""
    for path in paths:
        value = _opt_str(obj, path, ctx)
        if value is not None:
            return value
    return None


def _decode(text: str, what: str, ctx: _Ctx) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ctx.fail(f"has {what} that is not JSON ({exc})") from exc
    except RecursionError as exc:
        raise ctx.fail(f"has {what} nested too deeply to decode") from exc


def _require_dict(event: object, caller: str, hint: str) -> dict[str, Any]:
    if isinstance(event, dict):
        return event
    advice = ""
    if isinstance(event, str | bytes | bytearray):
        advice = "; if you hold the JSON text, decode it with json.loads() first"
    raise InvalidEvent(
        f"{caller}() expects the event as a dict (decoded JSON), got {type(event).__name__}"
        f"{advice}; {hint}."
    )


def _nested_dict(value: Any, where: str, hint: str) -> dict[str, Any]:
    """A decoded message or body must itself be a JSON object."""
    if not isinstance(value, dict):
        raise _Ctx(where, hint).fail(f"is a JSON {_json_type(value)}, expected an object")
    return value


def _records(event: dict[str, Any], ctx: _Ctx) -> list[dict[str, Any]]:
    records: list[Any] = _typed(event, "Records", ctx, list, required=True)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ctx.fail(
                f"has 'Records[{index}]' of type {_json_type(record)}, expected an object"
            )
    return records


def _record_source(record: dict[str, Any], index: int, origin: str, hint: str) -> str:
    """``eventSource`` (S3, SQS) or ``EventSource`` (SNS) of ``Records[index]``."""
    ctx = _Ctx(_nest(f"event record {index}", origin), hint)
    if "eventSource" in record:
        return _str(record, "eventSource", ctx)
    if "EventSource" in record:
        return _str(record, "EventSource", ctx)
    raise ctx.fail("has no 'eventSource' field")


_VIEW_OF_SOURCE: Final = {"aws:s3": "S3Event", "aws:sns": "SNSEvent", "aws:sqs": "SQSEvent"}
_HINT_OF_VIEW: Final = {
    "S3Event": _S3_HINT,
    "SNSEvent": _SNS_HINT,
    "SQSEvent": _SQS_HINT,
    "EventBridgeEvent": _EB_HINT,
}


def _wrong_source(source: str, index: int, origin: str, view: str, accepted: str) -> InvalidEvent:
    """The error for ``Records[index]`` whose eventSource ``view`` does not read."""
    other = _VIEW_OF_SOURCE.get(source)
    advice = f" (read {source!r} records with {other})" if other else ""
    return _Ctx(_nest(f"event record {index}", origin), _HINT_OF_VIEW[view]).fail(
        f"has eventSource {source!r}; {view} accepts {accepted}{advice}"
    )


# --------------------------------------------------------------------------- SQS


@dataclass(frozen=True, slots=True)
class SQSRecord:
    """One message of an SQS event for Lambda.

    Attributes:
        message_id: ``messageId``, assigned by SQS when the message was sent.
        receipt_handle: ``receiptHandle`` of this receive.
        body: The message body, as sent.
        attributes: System attributes (``ApproximateReceiveCount``, ``SentTimestamp``, FIFO
            ``MessageGroupId``...), all strings; ``{}`` when absent.
        message_attributes: ``messageAttributes`` as delivered (``{"name": {"dataType": ...,
            "stringValue": ...}}``); ``{}`` when absent.
        event_source_arn: ``eventSourceARN``, the queue ARN.
        aws_region: ``awsRegion`` of the queue.
        md5_of_body: ``md5OfBody``, MD5 hex digest of the body.
        raw: The record mapping as received.
    """

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    message_attributes: dict[str, dict[str, Any]]
    event_source_arn: str
    aws_region: str
    md5_of_body: str
    raw: dict[str, Any]

    def json(self) -> Any:
        """Decode the body as JSON.

        Returns:
            The decoded JSON value.

        Raises:
            InvalidEvent: The body is not JSON.
        """
        ctx = _Ctx(f"SQS message {self.message_id!r}", "expected a JSON body")
        return _decode(self.body, "a 'body'", ctx)


def _sqs_record(record: dict[str, Any], index: int, origin: str) -> SQSRecord:
    ctx = _Ctx(_nest(f"SQS record {index}", origin), _SQS_HINT)
    return SQSRecord(
        message_id=_str(record, "messageId", ctx),
        receipt_handle=_str(record, "receiptHandle", ctx),
        body=_str(record, "body", ctx),
        attributes=_str_map(record, "attributes", ctx),
        message_attributes=_attr_map(record, "messageAttributes", ctx),
        event_source_arn=_str(record, "eventSourceARN", ctx),
        aws_region=_str(record, "awsRegion", ctx),
        md5_of_body=_str(record, "md5OfBody", ctx),
        raw=record,
    )


def _sqs_body(record: dict[str, Any], index: int, origin: str, hint: str) -> tuple[Any, str]:
    """Decode the JSON body of SQS ``Records[index]``; return it with its description."""
    sqs = _sqs_record(record, index, origin)
    where = _nest(f"the body of SQS record {index}", origin)
    ctx = _Ctx(_nest(f"SQS record {index}", origin), hint)
    return _decode(sqs.body, "a 'body'", ctx), where


@dataclass(frozen=True, slots=True)
class SQSEvent:
    """An SQS event for Lambda (event source mapping): a batch of messages.

    Attributes:
        records: The messages, in delivery order.
    """

    records: tuple[SQSRecord, ...]

    @classmethod
    def from_dict(cls, event: object) -> SQSEvent:
        """Read an SQS event for Lambda (``{"Records": [{"eventSource": "aws:sqs", ...}]}``).

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event is not an SQS event for Lambda, or a field is missing or has
                the wrong type.
        """
        data = _require_dict(event, "SQSEvent.from_dict", _SQS_HINT)
        records: list[SQSRecord] = []
        for index, record in enumerate(_records(data, _Ctx("the event", _SQS_HINT))):
            source = _record_source(record, index, "", _SQS_HINT)
            if source != "aws:sqs":
                raise _wrong_source(source, index, "", "SQSEvent", "only 'aws:sqs' records")
            records.append(_sqs_record(record, index, ""))
        return cls(records=tuple(records))


# --------------------------------------------------------------------------- SNS


@dataclass(frozen=True, slots=True)
class SNSRecord:
    """One SNS Notification, from an SNS event for Lambda or from an SNS envelope.

    Attributes:
        message: ``Message``, the published text.
        message_id: ``MessageId``; unchanged on redelivery.
        topic_arn: ``TopicArn``.
        subject: ``Subject``, or None when it was not published (null or absent).
        message_attributes: ``MessageAttributes`` as delivered (``{"name": {"Type": ...,
            "Value": ...}}``); ``{}`` when absent.
        timestamp: ``Timestamp`` (ISO 8601) of the publication.
        signature_version: ``SignatureVersion`` ("1" or "2"), or None when absent (unsigned
            envelopes, such as SNS FIFO topics delivering to SQS).
        signature: ``Signature`` (base64), or None when absent.
        signing_cert_url: ``SigningCertURL`` (envelope spelling) or ``SigningCertUrl`` (Lambda
            spelling), or None.
        unsubscribe_url: ``UnsubscribeURL`` or ``UnsubscribeUrl``, or None.
        raw: The SNS message mapping: the ``Sns`` object of a Lambda record, or the envelope.
    """

    message: str
    message_id: str
    topic_arn: str
    subject: str | None
    message_attributes: dict[str, dict[str, Any]]
    timestamp: str
    signature_version: str | None
    signature: str | None
    signing_cert_url: str | None
    unsubscribe_url: str | None
    raw: dict[str, Any]

    def json(self) -> Any:
        """Decode the message as JSON.

        Returns:
            The decoded JSON value.

        Raises:
            InvalidEvent: The message is not JSON.
        """
        ctx = _Ctx(f"SNS message {self.message_id!r}", "expected a JSON message")
        return _decode(self.message, "a 'Message'", ctx)


_CONFIRMATION_ADVICE: Final = {
    "SubscriptionConfirmation": (
        "; confirm the subscription by fetching its 'SubscribeURL' after verifying the signature"
    ),
    "UnsubscribeConfirmation": "; it reports that a subscription was deleted",
}


def _sns_message(container: dict[str, Any], prefix: str, ctx: _Ctx) -> SNSRecord:
    """Read the SNS message at ``prefix``: ``"Sns."`` in a Lambda record, ``""`` in an envelope."""
    raw = _obj(container, prefix[:-1], ctx) if prefix else container
    message_type = _str(container, f"{prefix}Type", ctx)
    if message_type != "Notification":
        advice = _CONFIRMATION_ADVICE.get(message_type, "")
        raise ctx.fail(
            f"has '{prefix}Type' {message_type!r}, not 'Notification': only a Notification carries"
            f" a published message{advice}"
        )
    return SNSRecord(
        message=_str(container, f"{prefix}Message", ctx),
        message_id=_str(container, f"{prefix}MessageId", ctx),
        topic_arn=_str(container, f"{prefix}TopicArn", ctx),
        subject=_opt_str(container, f"{prefix}Subject", ctx),
        message_attributes=_attr_map(container, f"{prefix}MessageAttributes", ctx),
        timestamp=_str(container, f"{prefix}Timestamp", ctx),
        signature_version=_opt_str(container, f"{prefix}SignatureVersion", ctx),
        signature=_opt_str(container, f"{prefix}Signature", ctx),
        signing_cert_url=_first_str(
            container, (f"{prefix}SigningCertURL", f"{prefix}SigningCertUrl"), ctx
        ),
        unsubscribe_url=_first_str(
            container, (f"{prefix}UnsubscribeURL", f"{prefix}UnsubscribeUrl"), ctx
        ),
        raw=raw,
    )


def _sns_lambda_record(record: dict[str, Any], index: int, origin: str) -> SNSRecord:
    return _sns_message(
        record, "Sns.", _Ctx(_nest(f"SNS record {index}", origin), _SNS_LAMBDA_HINT)
    )


def _sns_envelope_in_sqs(record: dict[str, Any], index: int) -> SNSRecord:
    sqs = _sqs_record(record, index, "")
    where = f"the body of SQS record {index}"
    raw_delivery = (
        "; with raw message delivery the body is the published message itself: read it with"
        " SQSEvent"
    )
    try:
        body = json.loads(sqs.body)
    except (ValueError, RecursionError):
        raise _Ctx(where, _SNS_HINT).fail(
            f"is not an SNS envelope (it is not JSON){raw_delivery}"
        ) from None
    if not isinstance(body, dict) or "Type" not in body:
        found = "no 'Type' field" if isinstance(body, dict) else f"a JSON {_json_type(body)}"
        raise _Ctx(where, _SNS_HINT).fail(f"is not an SNS envelope (it has {found}){raw_delivery}")
    return _sns_message(body, "", _Ctx(where, _SNS_HINT))


@dataclass(frozen=True, slots=True)
class SNSEvent:
    """SNS Notifications, from any of the shapes in which SNS delivers them.

    Attributes:
        records: The notifications, in delivery order (one for an envelope).
    """

    records: tuple[SNSRecord, ...]

    @classmethod
    def from_dict(cls, event: object) -> SNSEvent:
        """Read an SNS event for Lambda, an SNS envelope, or an SQS event of SNS envelopes.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event is none of the accepted shapes; it is a
                SubscriptionConfirmation or UnsubscribeConfirmation; an SQS body is not an SNS
                envelope (raw message delivery); or a field is missing or has the wrong type.
        """
        data = _require_dict(event, "SNSEvent.from_dict", _SNS_HINT)
        if "Records" not in data:
            if "Type" not in data:
                raise _Ctx("the event", _SNS_HINT).fail(
                    "has neither a 'Records' field (SNS or SQS event for Lambda) nor a 'Type'"
                    " field (SNS envelope)"
                )
            return cls(records=(_sns_message(data, "", _Ctx("the SNS envelope", _SNS_HINT)),))
        records: list[SNSRecord] = []
        for index, record in enumerate(_records(data, _Ctx("the event", _SNS_HINT))):
            source = _record_source(record, index, "", _SNS_HINT)
            if source == "aws:sns":
                records.append(_sns_lambda_record(record, index, ""))
            elif source == "aws:sqs":
                records.append(_sns_envelope_in_sqs(record, index))
            else:
                accepted = "'aws:sns' records and 'aws:sqs' records of SNS envelopes"
                raise _wrong_source(source, index, "", "SNSEvent", accepted)
        return cls(records=tuple(records))


# --------------------------------------------------------------------------- EventBridge


@dataclass(frozen=True, slots=True)
class EventBridgeEvent:
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
        events = _eventbridge_events(event, "EventBridgeEvent.from_dict")
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
        return tuple(_eventbridge_events(event, "EventBridgeEvent.all_from_dict"))


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


def _eventbridge_events(event: object, caller: str) -> list[EventBridgeEvent]:
    data = _require_dict(event, caller, _EB_HINT)
    if "Records" not in data:
        return [_eventbridge_envelope(data, _Ctx("the event", _EB_HINT))]
    events: list[EventBridgeEvent] = []
    for index, record in enumerate(_records(data, _Ctx("the event", _EB_HINT))):
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


# --------------------------------------------------------------------------- S3


@dataclass(frozen=True, slots=True)
class S3EventRecord:
    """One S3 object event, from the classic notification format or from EventBridge.

    Attributes:
        bucket: The bucket name.
        key: The object key. Classic notifications: decoded with ``unquote_plus``. EventBridge:
            as delivered, unless ``decode_eventbridge_keys=True`` was given.
        event_name: The event type without the ``s3:`` prefix, e.g. "ObjectCreated:Put"; built
            from ``detail-type`` and ``detail`` for EventBridge (see the module docstring).
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
    return isinstance(value, dict) and value.get("Event") == "s3:TestEvent"


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
class S3Event:
    """S3 object events, from any of the shapes in which they reach a handler.

    Attributes:
        records: The object events, in delivery order (flattened across SQS and SNS records).
    """

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
        data = _require_dict(event, "S3Event.from_dict", _S3_HINT)
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


# --------------------------------------------------------------------------- the other sources
#
# Each view below reads one more asynchronous source of Lambda's. Their ``idempotency_key`` is
# the key ``Idempotency(key=None)`` uses for the same event.

_CWL_HINT: Final = (
    "expected a CloudWatch Logs subscription event "
    "(see https://docs.aws.amazon.com/lambda/latest/dg/services-cloudwatchlogs.html)"
)
_CODECOMMIT_HINT: Final = (
    "expected a CodeCommit trigger event or a 'CodeCommit Repository State Change' EventBridge"
    " event (see https://docs.aws.amazon.com/lambda/latest/dg/services-codecommit.html)"
)
_CODEPIPELINE_HINT: Final = (
    "expected a CodePipeline job event "
    "(see https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-invoke-lambda-function.html)"
)
_SES_HINT: Final = (
    "expected an SES receipt event "
    "(see https://docs.aws.amazon.com/ses/latest/dg/receiving-email-action-lambda-event.html)"
)
_CFN_HINT: Final = (
    "expected a CloudFormation custom resource request "
    "(see https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requests.html)"
)
_CONFIG_HINT: Final = (
    "expected an AWS Config rule event "
    "(see https://docs.aws.amazon.com/config/latest/developerguide/evaluate-config_develop-rules_example-events.html)"
)
_IOTEVENTS_HINT: Final = (
    "expected an AWS IoT Events action event "
    "(see https://docs.aws.amazon.com/lambda/latest/dg/services-iotevents.html)"
)


def _key_of(event: dict[str, Any]) -> str:
    from ._idempotency import natural_key

    return natural_key(event)


def _opt_bool(obj: dict[str, Any], path: str, ctx: _Ctx) -> bool | None:
    value = _lookup(obj, path, ctx)
    if value is _MISSING or value is None:
        return None
    if not isinstance(value, bool):
        raise ctx.fail(f"has '{path}' of type {_json_type(value)}, expected a boolean")
    return value


def _dict_list(obj: dict[str, Any], path: str, ctx: _Ctx) -> list[dict[str, Any]]:
    values: list[Any] = _typed(obj, path, ctx, list, required=True)
    for index, item in enumerate(values):
        if not isinstance(item, dict):
            raise ctx.fail(f"has '{path}[{index}]' of type {_json_type(item)}, expected an object")
    return values


def _json_in_string(obj: dict[str, Any], path: str, ctx: _Ctx, *, required: bool) -> Any:
    """A field that holds JSON text (Config's invokingEvent and ruleParameters)."""
    text = _typed(obj, path, ctx, str, required=required)
    if text is None:
        return None
    return _decode(text, f"a '{path}' string", ctx)


# -- CloudWatch Logs


@dataclass(frozen=True, slots=True)
class CloudWatchLogEvent:
    """One log event of a CloudWatch Logs subscription delivery.

    Attributes:
        id: ``id``, unique per log event.
        timestamp: ``timestamp``, milliseconds since the epoch.
        message: ``message``, the log line.
        extracted_fields: ``extractedFields`` of a filter pattern with fields, or ``{}``.
    """

    id: str
    timestamp: int
    message: str
    extracted_fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class CloudWatchLogsEvent:
    """A CloudWatch Logs subscription delivery: ``{"awslogs": {"data": <base64 of gzip>}}``.

    Attributes:
        message_type: ``DATA_MESSAGE``, or ``CONTROL_MESSAGE`` for the message CloudWatch Logs
            sends first to check that it can reach the destination (see :attr:`is_control`).
        owner: The account ID of the log group.
        log_group: ``logGroup``.
        log_stream: ``logStream``.
        subscription_filters: ``subscriptionFilters``, the names of the matching filters.
        log_events: The log events, in order.
        policy_level: ``policyLevel`` (account-level subscriptions), or None.
        raw: The decoded document (the JSON inside ``awslogs.data``).
        event: The event as delivered.
    """

    message_type: str
    owner: str
    log_group: str
    log_stream: str
    subscription_filters: tuple[str, ...]
    log_events: tuple[CloudWatchLogEvent, ...]
    policy_level: str | None
    raw: dict[str, Any]
    event: dict[str, Any]

    @property
    def is_control(self) -> bool:
        """True for the CONTROL_MESSAGE CloudWatch Logs sends to test the subscription."""
        return self.message_type == "CONTROL_MESSAGE"

    @property
    def idempotency_key(self) -> str:
        """``cwlogs:<owner>:<group>:<stream>:<first id>:<last id>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> CloudWatchLogsEvent:
        """Read a CloudWatch Logs subscription event, decoding ``awslogs.data``.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: ``awslogs.data`` is missing, not base64 of gzip of JSON, or a field
                of the decoded document is missing or has the wrong type.
        """
        data = _require_dict(event, "CloudWatchLogsEvent.from_dict", _CWL_HINT)
        ctx = _Ctx("the event", _CWL_HINT)
        doc = _nested_dict(
            decode_awslogs_data(_str(data, "awslogs.data", ctx), ctx),
            "the decoded 'awslogs.data'",
            _CWL_HINT,
        )
        inner = _Ctx("the decoded 'awslogs.data'", _CWL_HINT)
        log_events = []
        for item in _dict_list(doc, "logEvents", inner):
            log_events.append(
                CloudWatchLogEvent(
                    id=_str(item, "id", inner),
                    timestamp=_typed(item, "timestamp", inner, int, required=True),
                    message=_str(item, "message", inner),
                    extracted_fields=_str_map(item, "extractedFields", inner),
                )
            )
        return cls(
            message_type=_str(doc, "messageType", inner),
            owner=_str(doc, "owner", inner),
            log_group=_str(doc, "logGroup", inner),
            log_stream=_str(doc, "logStream", inner),
            subscription_filters=_str_tuple(doc, "subscriptionFilters", inner),
            log_events=tuple(log_events),
            policy_level=_opt_str(doc, "policyLevel", inner),
            raw=doc,
            event=data,
        )


def decode_awslogs_data(data: str, ctx: _Ctx | None = None) -> Any:
    """Decode CloudWatch Logs' ``awslogs.data``: base64, then gzip, then JSON.

    Raises:
        InvalidEvent: One of the three steps fails.
    """
    import base64
    import binascii
    import gzip
    import zlib

    ctx = ctx or _Ctx("the event", _CWL_HINT)
    try:
        compressed = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ctx.fail(f"has 'awslogs.data' that is not base64 ({exc})") from exc
    try:
        text = gzip.decompress(compressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise ctx.fail(f"has 'awslogs.data' that is not gzip-compressed ({exc})") from exc
    return _decode(text.decode("utf-8", "replace"), "'awslogs.data' whose content", ctx)


# -- CodeCommit


@dataclass(frozen=True, slots=True)
class CodeCommitReference:
    """A reference a CodeCommit event is about.

    Attributes:
        ref: The full reference name, e.g. "refs/heads/main".
        commit: The commit it points to now (None when it was deleted).
        old_commit: The commit it pointed to before (EventBridge ``oldCommitId``), or None.
        created: True when the reference was created (trigger ``created``, or
            EventBridge ``referenceCreated``).
        deleted: True when it was deleted.
    """

    ref: str
    commit: str | None
    old_commit: str | None
    created: bool
    deleted: bool


@dataclass(frozen=True, slots=True)
class CodeCommitRecord:
    """One CodeCommit event: a trigger record, or an EventBridge repository state change.

    Attributes:
        event_id: ``eventId`` (trigger) or the EventBridge ``id``.
        event_name: ``eventName`` ("ReferenceChanges", "TriggerEventTest") or the EventBridge
            ``detail.event`` ("referenceCreated", "referenceUpdated", "referenceDeleted").
        repository: The repository name.
        repository_arn: ``eventSourceARN`` (trigger) or ``resources[0]`` (EventBridge).
        region: ``awsRegion`` or ``region``, or None.
        time: ``eventTime`` or ``time``.
        user_arn: ``userIdentityARN`` or ``detail.callerUserArn``, or None.
        references: The references that changed.
        trigger_name: ``eventTriggerName`` (trigger only), or None.
        custom_data: ``customData`` of the trigger, or None.
        raw: The record, or the EventBridge envelope.
    """

    event_id: str
    event_name: str
    repository: str
    repository_arn: str | None
    region: str | None
    time: str
    user_arn: str | None
    references: tuple[CodeCommitReference, ...]
    trigger_name: str | None
    custom_data: str | None
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CodeCommitEvent:
    """CodeCommit events: a trigger's ``{"Records": [...]}`` or an EventBridge event.

    Attributes:
        records: The events, in delivery order (one for EventBridge).
        event: The event as delivered.
    """

    records: tuple[CodeCommitRecord, ...]
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``codecommit:<eventId>`` per record, or ``eventbridge:<id>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> CodeCommitEvent:
        """Read a CodeCommit trigger event or a CodeCommit EventBridge event.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event is neither shape, or a field is missing or has the wrong
                type.
        """
        data = _require_dict(event, "CodeCommitEvent.from_dict", _CODECOMMIT_HINT)
        if "Records" not in data:
            ctx = _Ctx("the EventBridge event", _CODECOMMIT_HINT)
            source = _str(data, "source", ctx)
            if source != "aws.codecommit":
                raise ctx.fail(f"has source {source!r}, not 'aws.codecommit'")
            return cls(records=(_codecommit_eventbridge(data, ctx),), event=data)
        records = []
        for index, record in enumerate(_records(data, _Ctx("the event", _CODECOMMIT_HINT))):
            source = _record_source(record, index, "", _CODECOMMIT_HINT)
            ctx = _Ctx(f"event record {index}", _CODECOMMIT_HINT)
            if source != "aws:codecommit":
                raise ctx.fail(f"has eventSource {source!r}, not 'aws:codecommit'")
            records.append(_codecommit_trigger(record, ctx))
        return cls(records=tuple(records), event=data)


def _codecommit_trigger(record: dict[str, Any], ctx: _Ctx) -> CodeCommitRecord:
    arn = _str(record, "eventSourceARN", ctx)
    references = []
    for ref in _dict_list(record, "codecommit.references", ctx):
        deleted = bool(_opt_bool(ref, "deleted", ctx))
        references.append(
            CodeCommitReference(
                ref=_str(ref, "ref", ctx),
                commit=_opt_str(ref, "commit", ctx),
                old_commit=None,
                created=bool(_opt_bool(ref, "created", ctx)),
                deleted=deleted,
            )
        )
    return CodeCommitRecord(
        event_id=_str(record, "eventId", ctx),
        event_name=_str(record, "eventName", ctx),
        repository=arn.rsplit(":", 1)[-1],
        repository_arn=arn,
        region=_opt_str(record, "awsRegion", ctx),
        time=_str(record, "eventTime", ctx),
        user_arn=_opt_str(record, "userIdentityARN", ctx),
        references=tuple(references),
        trigger_name=_opt_str(record, "eventTriggerName", ctx),
        custom_data=_opt_str(record, "customData", ctx),
        raw=record,
    )


def _codecommit_eventbridge(envelope: dict[str, Any], ctx: _Ctx) -> CodeCommitRecord:
    name = _str(envelope, "detail.event", ctx)
    resources = _str_tuple(envelope, "resources", ctx)
    full_name = _opt_str(envelope, "detail.referenceFullName", ctx)
    references: tuple[CodeCommitReference, ...] = ()
    if full_name is not None:
        references = (
            CodeCommitReference(
                ref=full_name,
                commit=_opt_str(envelope, "detail.commitId", ctx),
                old_commit=_opt_str(envelope, "detail.oldCommitId", ctx),
                created=name == "referenceCreated",
                deleted=name == "referenceDeleted",
            ),
        )
    return CodeCommitRecord(
        event_id=_str(envelope, "id", ctx),
        event_name=name,
        repository=_str(envelope, "detail.repositoryName", ctx),
        repository_arn=resources[0] if resources else None,
        region=_opt_str(envelope, "region", ctx),
        time=_str(envelope, "time", ctx),
        user_arn=_opt_str(envelope, "detail.callerUserArn", ctx),
        references=references,
        trigger_name=None,
        custom_data=None,
        raw=envelope,
    )


# -- CodePipeline


@dataclass(frozen=True, slots=True)
class CodePipelineArtifact:
    """An input or output artifact of a CodePipeline job.

    Attributes:
        name: ``name``.
        revision: ``revision``, or None.
        location_type: ``location.type`` ("S3").
        bucket: ``location.s3Location.bucketName``, or None for another location type.
        key: ``location.s3Location.objectKey``, or None.
    """

    name: str
    revision: str | None
    location_type: str
    bucket: str | None
    key: str | None


@dataclass(frozen=True, slots=True)
class CodePipelineJobEvent:
    """The job CodePipeline hands a Lambda invoke action (``{"CodePipeline.job": {...}}``).

    The function must report the job's outcome with PutJobSuccessResult or
    PutJobFailureResult: :class:`eventflow.aws.CodePipelineJob` does that in one line.

    Attributes:
        job_id: ``id``.
        account_id: ``accountId``.
        user_parameters: ``data.actionConfiguration.configuration.UserParameters``, or None.
        configuration: ``data.actionConfiguration.configuration``, all of it.
        input_artifacts: ``data.inputArtifacts``.
        output_artifacts: ``data.outputArtifacts``.
        artifact_credentials: ``data.artifactCredentials`` (temporary credentials for the
            artifact bucket), or ``{}``.
        continuation_token: ``data.continuationToken`` when the job continues an earlier
            run of the action, or None.
        encryption_key: ``data.encryptionKey``, or None.
        event: The event as delivered.
    """

    job_id: str
    account_id: str
    user_parameters: str | None
    configuration: dict[str, Any]
    input_artifacts: tuple[CodePipelineArtifact, ...]
    output_artifacts: tuple[CodePipelineArtifact, ...]
    artifact_credentials: dict[str, Any]
    continuation_token: str | None
    encryption_key: dict[str, Any] | None
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``codepipeline:<job id>`` (the default key)."""
        return _key_of(self.event)

    def user_parameters_json(self) -> Any:
        """Decode ``UserParameters`` as JSON (None when there are none).

        Raises:
            InvalidEvent: They are not JSON.
        """
        if self.user_parameters is None:
            return None
        ctx = _Ctx(f"CodePipeline job {self.job_id!r}", "expected JSON UserParameters")
        return _decode(self.user_parameters, "'UserParameters'", ctx)

    @classmethod
    def from_dict(cls, event: object) -> CodePipelineJobEvent:
        """Read a CodePipeline job event.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event has no ``CodePipeline.job``, or a field is missing or has
                the wrong type.
        """
        data = _require_dict(event, "CodePipelineJobEvent.from_dict", _CODEPIPELINE_HINT)
        ctx = _Ctx("the event", _CODEPIPELINE_HINT)
        job = data.get("CodePipeline.job")  # the key itself holds a dot
        if not isinstance(job, dict):
            raise ctx.fail("has no 'CodePipeline.job' object")
        ctx = _Ctx("the CodePipeline job", _CODEPIPELINE_HINT)
        configuration = (
            _typed(job, "data.actionConfiguration.configuration", ctx, dict, required=False) or {}
        )
        user_parameters = configuration.get("UserParameters")
        if user_parameters is not None and not isinstance(user_parameters, str):
            raise ctx.fail("has 'UserParameters' that is not a string")
        return cls(
            job_id=_str(job, "id", ctx),
            account_id=_str(job, "accountId", ctx),
            user_parameters=user_parameters,
            configuration=configuration,
            input_artifacts=_artifacts(job, "data.inputArtifacts", ctx),
            output_artifacts=_artifacts(job, "data.outputArtifacts", ctx),
            artifact_credentials=_typed(job, "data.artifactCredentials", ctx, dict, required=False)
            or {},
            continuation_token=_opt_str(job, "data.continuationToken", ctx),
            encryption_key=_typed(job, "data.encryptionKey", ctx, dict, required=False),
            event=data,
        )


def _artifacts(job: dict[str, Any], path: str, ctx: _Ctx) -> tuple[CodePipelineArtifact, ...]:
    if _lookup(job, path, ctx) in (_MISSING, None):
        return ()
    artifacts = []
    for item in _dict_list(job, path, ctx):
        artifacts.append(
            CodePipelineArtifact(
                name=_str(item, "name", ctx),
                revision=_opt_str(item, "revision", ctx),
                location_type=_str(item, "location.type", ctx),
                bucket=_opt_str(item, "location.s3Location.bucketName", ctx),
                key=_opt_str(item, "location.s3Location.objectKey", ctx),
            )
        )
    return tuple(artifacts)


# -- SES


@dataclass(frozen=True, slots=True)
class SESRecord:
    """One e-mail received by SES and handed to a Lambda receipt-rule action.

    Attributes:
        message_id: ``mail.messageId``, SES's ID of the message (also its S3 object key when
            an S3 action stored it).
        source: ``mail.source``, the envelope sender.
        destination: ``mail.destination``, the envelope recipients.
        timestamp: ``mail.timestamp``.
        subject: ``mail.commonHeaders.subject``, or None.
        sender: ``mail.commonHeaders.from``, or ``()``.
        recipients: ``receipt.recipients``, those this receipt rule matched.
        headers: ``mail.headers`` as (name, value) pairs, or ``()``.
        spam: ``receipt.spamVerdict.status`` ("PASS", "FAIL", "GRAY", "PROCESSING_FAILED").
        virus: ``receipt.virusVerdict.status``.
        spf: ``receipt.spfVerdict.status``.
        dkim: ``receipt.dkimVerdict.status``.
        dmarc: ``receipt.dmarcVerdict.status``, or None.
        action: ``receipt.action`` (type, invocationType, functionArn).
        raw: The record.
    """

    message_id: str
    source: str
    destination: tuple[str, ...]
    timestamp: str
    subject: str | None
    sender: tuple[str, ...]
    recipients: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    spam: str | None
    virus: str | None
    spf: str | None
    dkim: str | None
    dmarc: str | None
    action: dict[str, Any]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SESEvent:
    """An SES receipt event (``{"Records": [{"eventSource": "aws:ses", "ses": {...}}]}``).

    Attributes:
        records: The messages, in delivery order.
        event: The event as delivered.
    """

    records: tuple[SESRecord, ...]
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``ses:<mail.messageId>`` per record (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> SESEvent:
        """Read an SES receipt event.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: The event is not an SES receipt event, or a field is missing or has
                the wrong type.
        """
        data = _require_dict(event, "SESEvent.from_dict", _SES_HINT)
        records = []
        for index, record in enumerate(_records(data, _Ctx("the event", _SES_HINT))):
            source = _record_source(record, index, "", _SES_HINT)
            ctx = _Ctx(f"SES record {index}", _SES_HINT)
            if source != "aws:ses":
                raise ctx.fail(f"has eventSource {source!r}, not 'aws:ses'")
            headers = []
            if _lookup(record, "ses.mail.headers", ctx) not in (_MISSING, None):
                for header in _dict_list(record, "ses.mail.headers", ctx):
                    headers.append((_str(header, "name", ctx), _str(header, "value", ctx)))
            sender: tuple[str, ...] = ()
            if _lookup(record, "ses.mail.commonHeaders.from", ctx) not in (_MISSING, None):
                sender = _str_tuple(record, "ses.mail.commonHeaders.from", ctx)
            records.append(
                SESRecord(
                    message_id=_str(record, "ses.mail.messageId", ctx),
                    source=_str(record, "ses.mail.source", ctx),
                    destination=_str_tuple(record, "ses.mail.destination", ctx),
                    timestamp=_str(record, "ses.mail.timestamp", ctx),
                    subject=_opt_str(record, "ses.mail.commonHeaders.subject", ctx),
                    sender=sender,
                    recipients=_str_tuple(record, "ses.receipt.recipients", ctx),
                    headers=tuple(headers),
                    spam=_opt_str(record, "ses.receipt.spamVerdict.status", ctx),
                    virus=_opt_str(record, "ses.receipt.virusVerdict.status", ctx),
                    spf=_opt_str(record, "ses.receipt.spfVerdict.status", ctx),
                    dkim=_opt_str(record, "ses.receipt.dkimVerdict.status", ctx),
                    dmarc=_opt_str(record, "ses.receipt.dmarcVerdict.status", ctx),
                    action=_obj(record, "ses.receipt.action", ctx),
                    raw=record,
                )
            )
        return cls(records=tuple(records), event=data)


# -- CloudFormation custom resources


@dataclass(frozen=True, slots=True)
class CloudFormationCustomResourceEvent:
    """A CloudFormation custom resource request.

    The function must PUT a response document to :attr:`response_url`, or the stack waits
    for an hour: :class:`eventflow.aws.CustomResource` sends it in one line.

    Attributes:
        request_type: ``RequestType``: "Create", "Update" or "Delete".
        response_url: ``ResponseURL``, the pre-signed S3 URL for the response.
        stack_id: ``StackId``.
        request_id: ``RequestId``, unique per request.
        logical_resource_id: ``LogicalResourceId``.
        resource_type: ``ResourceType`` ("Custom::..." or "AWS::CloudFormation::CustomResource").
        physical_resource_id: ``PhysicalResourceId`` (Update and Delete), or None.
        service_token: ``ServiceToken``, or None.
        resource_properties: ``ResourceProperties``, or ``{}``.
        old_resource_properties: ``OldResourceProperties`` (Update), or None.
        event: The event as delivered.
    """

    request_type: str
    response_url: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    resource_type: str
    physical_resource_id: str | None
    service_token: str | None
    resource_properties: dict[str, Any]
    old_resource_properties: dict[str, Any] | None
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``cloudformation:<StackId>/<LogicalResourceId>/<RequestId>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> CloudFormationCustomResourceEvent:
        """Read a CloudFormation custom resource request.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: A field is missing or has the wrong type, or ``RequestType`` is not
                Create, Update or Delete.
        """
        data = _require_dict(event, "CloudFormationCustomResourceEvent.from_dict", _CFN_HINT)
        ctx = _Ctx("the event", _CFN_HINT)
        request_type = _str(data, "RequestType", ctx)
        if request_type not in ("Create", "Update", "Delete"):
            raise ctx.fail(f"has RequestType {request_type!r}, not Create, Update or Delete")
        return cls(
            request_type=request_type,
            response_url=_str(data, "ResponseURL", ctx),
            stack_id=_str(data, "StackId", ctx),
            request_id=_str(data, "RequestId", ctx),
            logical_resource_id=_str(data, "LogicalResourceId", ctx),
            resource_type=_str(data, "ResourceType", ctx),
            physical_resource_id=_opt_str(data, "PhysicalResourceId", ctx),
            service_token=_opt_str(data, "ServiceToken", ctx),
            resource_properties=_typed(data, "ResourceProperties", ctx, dict, required=False) or {},
            old_resource_properties=_typed(
                data, "OldResourceProperties", ctx, dict, required=False
            ),
            event=data,
        )


# -- AWS Config


@dataclass(frozen=True, slots=True)
class ConfigRuleEvent:
    """An AWS Config custom rule evaluation request.

    ``invokingEvent`` and ``ruleParameters`` arrive as JSON text; both are decoded. Report
    the verdict with PutEvaluations and the ``resultToken``:
    :class:`eventflow.aws.ConfigRuleEvaluation` does that in one line.

    Attributes:
        invoking_event: ``invokingEvent``, decoded.
        rule_parameters: ``ruleParameters``, decoded (``{}`` when absent).
        result_token: ``resultToken``, for PutEvaluations.
        config_rule_name: ``configRuleName``.
        config_rule_arn: ``configRuleArn``, or None.
        config_rule_id: ``configRuleId``, or None.
        account_id: ``accountId``.
        event_left_scope: ``eventLeftScope``: the resource is no longer in the rule's scope.
        execution_role_arn: ``executionRoleArn``, or None.
        evaluation_mode: ``evaluationMode`` ("DETECTIVE" or "PROACTIVE"), or None.
        version: ``version``.
        event: The event as delivered.
    """

    invoking_event: dict[str, Any]
    rule_parameters: dict[str, Any]
    result_token: str
    config_rule_name: str
    config_rule_arn: str | None
    config_rule_id: str | None
    account_id: str
    event_left_scope: bool
    execution_role_arn: str | None
    evaluation_mode: str | None
    version: str
    event: dict[str, Any]

    @property
    def message_type(self) -> str | None:
        """``invokingEvent.messageType``: "ConfigurationItemChangeNotification",
        "OversizedConfigurationItemChangeNotification" or "ScheduledNotification"."""
        value = self.invoking_event.get("messageType")
        return value if isinstance(value, str) else None

    @property
    def configuration_item(self) -> dict[str, Any] | None:
        """``invokingEvent.configurationItem`` (change notifications), or None."""
        value = self.invoking_event.get("configurationItem")
        return value if isinstance(value, dict) else None

    @property
    def idempotency_key(self) -> str:
        """``config:<rule name>:<sha256 of resultToken>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> ConfigRuleEvent:
        """Read an AWS Config rule event, decoding ``invokingEvent`` and ``ruleParameters``.

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: A field is missing or has the wrong type, or one of the JSON strings
                is not JSON or not an object.
        """
        data = _require_dict(event, "ConfigRuleEvent.from_dict", _CONFIG_HINT)
        ctx = _Ctx("the event", _CONFIG_HINT)
        invoking = _nested_dict(
            _json_in_string(data, "invokingEvent", ctx, required=True),
            "the decoded 'invokingEvent'",
            _CONFIG_HINT,
        )
        params = _json_in_string(data, "ruleParameters", ctx, required=False)
        where = "the decoded 'ruleParameters'"
        rule_parameters = {} if params is None else _nested_dict(params, where, _CONFIG_HINT)
        return cls(
            invoking_event=invoking,
            rule_parameters=rule_parameters,
            result_token=_str(data, "resultToken", ctx),
            config_rule_name=_str(data, "configRuleName", ctx),
            config_rule_arn=_opt_str(data, "configRuleArn", ctx),
            config_rule_id=_opt_str(data, "configRuleId", ctx),
            account_id=_str(data, "accountId", ctx),
            event_left_scope=bool(_opt_bool(data, "eventLeftScope", ctx)),
            execution_role_arn=_opt_str(data, "executionRoleArn", ctx),
            evaluation_mode=_opt_str(data, "evaluationMode", ctx),
            version=_str(data, "version", ctx),
            event=data,
        )


# -- IoT Events


@dataclass(frozen=True, slots=True)
class IoTEventsEvent:
    """The event an AWS IoT Events detector's Lambda action sends (the default payload).

    Attributes:
        event_name: ``event.eventName``, the detector model's event.
        event_time: ``event.eventTime``, milliseconds since the epoch.
        detector_model_name: ``payload.detector.detectorModelName``.
        detector_model_version: ``payload.detector.detectorModelVersion``.
        key_value: ``payload.detector.keyValue`` (the detector instance's key), or None.
        trigger_type: ``payload.eventTriggerDetails.triggerType`` ("Message", "Timer"...).
        input_name: ``payload.eventTriggerDetails.inputName``, or None.
        message_id: ``payload.eventTriggerDetails.messageId``, or None.
        action_execution_id: ``payload.actionExecutionId``, unique per action run.
        state_name: ``payload.state.stateName``.
        variables: ``payload.state.variables``.
        timers: ``payload.state.timers``.
        event: The event as delivered.
    """

    event_name: str
    event_time: int
    detector_model_name: str
    detector_model_version: str
    key_value: str | None
    trigger_type: str
    input_name: str | None
    message_id: str | None
    action_execution_id: str
    state_name: str
    variables: dict[str, Any]
    timers: dict[str, Any]
    event: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        """``iotevents:<actionExecutionId>`` (the default key)."""
        return _key_of(self.event)

    @classmethod
    def from_dict(cls, event: object) -> IoTEventsEvent:
        """Read an AWS IoT Events Lambda action event (``{"event": {...}}``).

        Args:
            event: The event as decoded JSON.

        Returns:
            The typed view.

        Raises:
            InvalidEvent: A field is missing or has the wrong type (a custom payload set on
                the action is not this shape: read it as the plain dict it is).
        """
        data = _require_dict(event, "IoTEventsEvent.from_dict", _IOTEVENTS_HINT)
        ctx = _Ctx("the event", _IOTEVENTS_HINT)
        p = "event.payload."
        return cls(
            event_name=_str(data, "event.eventName", ctx),
            event_time=_typed(data, "event.eventTime", ctx, int, required=True),
            detector_model_name=_str(data, f"{p}detector.detectorModelName", ctx),
            detector_model_version=_str(data, f"{p}detector.detectorModelVersion", ctx),
            key_value=_opt_str(data, f"{p}detector.keyValue", ctx),
            trigger_type=_str(data, f"{p}eventTriggerDetails.triggerType", ctx),
            input_name=_opt_str(data, f"{p}eventTriggerDetails.inputName", ctx),
            message_id=_opt_str(data, f"{p}eventTriggerDetails.messageId", ctx),
            action_execution_id=_str(data, f"{p}actionExecutionId", ctx),
            state_name=_str(data, f"{p}state.stateName", ctx),
            variables=_typed(data, f"{p}state.variables", ctx, dict, required=False) or {},
            timers=_typed(data, f"{p}state.timers", ctx, dict, required=False) or {},
            event=data,
        )
