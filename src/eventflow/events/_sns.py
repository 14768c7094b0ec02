"""SNS Notifications in every shape SNS delivers them: :class:`SNSEvent`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from ._base import (
    _SNS_HINT,
    _SNS_LAMBDA_HINT,
    _attr_map,
    _Ctx,
    _decode,
    _first_str,
    _json_type,
    _nest,
    _obj,
    _opt_str,
    _record_source,
    _records,
    _str,
    _View,
    _wrong_source,
)
from ._sqs import _sqs_record


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
class SNSEvent(_View):
    """SNS Notifications, from any of the shapes in which SNS delivers them.

    Attributes:
        records: The notifications, in delivery order (one for an envelope).
    """

    _hint = _SNS_HINT

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
        data, top = cls._input(event)
        if "Records" not in data:
            if "Type" not in data:
                raise top.fail(
                    "has neither a 'Records' field (SNS or SQS event for Lambda) nor a 'Type'"
                    " field (SNS envelope)"
                )
            return cls(records=(_sns_message(data, "", _Ctx("the SNS envelope", _SNS_HINT)),))
        records: list[SNSRecord] = []
        for index, record in enumerate(_records(data, top)):
            source = _record_source(record, index, "", _SNS_HINT)
            if source == "aws:sns":
                records.append(_sns_lambda_record(record, index, ""))
            elif source == "aws:sqs":
                records.append(_sns_envelope_in_sqs(record, index))
            else:
                accepted = "'aws:sns' records and 'aws:sqs' records of SNS envelopes"
                raise _wrong_source(source, index, "", "SNSEvent", accepted)
        return cls(records=tuple(records))


# -- the SNS -> Lambda event, built from an envelope (SNSEndpoint, SQSSource)


def _subscription_arn(envelope: Mapping[str, Any]) -> str:
    # SQS-delivered envelopes carry the subscription ARN only inside the UnsubscribeURL
    url = envelope.get("UnsubscribeURL") or envelope.get("UnsubscribeUrl") or ""
    found = parse_qs(urlsplit(str(url)).query).get("SubscriptionArn")
    if found:
        return found[0]
    return str(envelope.get("TopicArn"))  # the best that is known


def _lambda_attributes(attributes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(attributes, Mapping):
        for name, attr in attributes.items():
            if isinstance(attr, Mapping):
                attr = dict(attr)
                # SNS delivers Number and String.Array attributes to Lambda as String
                if attr.get("Type") in ("Number", "String.Array"):
                    attr["Type"] = "String"
            out[name] = attr
    return out


def sns_lambda_event(
    envelope: Mapping[str, Any], subscription_arn: str | None = None
) -> dict[str, Any]:
    """The SNS → Lambda event (spec §6.3) for an SNS Notification envelope.

    Args:
        envelope: The notification as delivered over HTTP or in an SQS body (either URL
            spelling).
        subscription_arn: The subscription's ARN when known (the HTTP header); otherwise it
            is read from the ``UnsubscribeURL``, and failing that the topic ARN is used.

    Returns:
        The event with Lambda's spellings (``SigningCertUrl``, ``UnsubscribeUrl``),
        ``Subject`` null when absent, ``MessageAttributes`` ``{}`` when absent, and
        ``Number`` / ``String.Array`` attributes typed ``String`` as Lambda delivers them.
    """
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn or _subscription_arn(envelope),
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope.get("MessageId"),
                    "TopicArn": envelope.get("TopicArn"),
                    "Subject": envelope.get("Subject"),
                    "Message": envelope.get("Message"),
                    "Timestamp": envelope.get("Timestamp"),
                    "SignatureVersion": envelope.get("SignatureVersion"),
                    "Signature": envelope.get("Signature"),
                    "SigningCertUrl": envelope.get("SigningCertURL")
                    or envelope.get("SigningCertUrl"),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL")
                    or envelope.get("UnsubscribeUrl"),
                    "MessageAttributes": _lambda_attributes(envelope.get("MessageAttributes")),
                },
            }
        ]
    }
