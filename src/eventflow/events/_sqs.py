"""The SQS event for Lambda (an event source mapping's batch): :class:`SQSEvent`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._base import (
    _SQS_HINT,
    _attr_map,
    _Ctx,
    _decode,
    _nest,
    _record_source,
    _records,
    _str,
    _str_map,
    _View,
    _wrong_source,
)


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
class SQSEvent(_View):
    """An SQS event for Lambda (event source mapping): a batch of messages.

    Attributes:
        records: The messages, in delivery order.
    """

    _hint = _SQS_HINT

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
        data, top = cls._input(event)
        records: list[SQSRecord] = []
        for index, record in enumerate(_records(data, top)):
            source = _record_source(record, index, "", _SQS_HINT)
            if source != "aws:sqs":
                raise _wrong_source(source, index, "", "SQSEvent", "only 'aws:sqs' records")
            records.append(_sqs_record(record, index, ""))
        return cls(records=tuple(records))
