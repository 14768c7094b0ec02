"""What Lambda hands a function for each kind of message that reaches eventflow.

Outside Lambda, S3, SNS and EventBridge events arrive as SQS message bodies (or, for SNS,
as HTTP deliveries). :func:`decode_body` tells them apart and returns the payload that
Lambda would have given the function had the original service invoked it directly.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ("BodyKind", "decode_body", "parse_json", "sns_lambda_event")


class BodyKind(enum.Enum):
    S3 = "s3"
    S3_TEST_EVENT = "s3_test_event"
    SNS = "sns"
    EVENTBRIDGE = "eventbridge"
    JSON = "json"
    INVALID = "invalid"


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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (RFC 8259 has no NaN or Infinity)")


# json.loads with a hook builds a decoder per call; one shared decoder costs nothing
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def parse_json(text: str) -> Any:
    """Parse ``text`` as strict JSON: ``NaN`` and ``Infinity`` are refused as the
    ``ValueError`` of any invalid JSON. Nesting too deep for Python raises
    ``RecursionError``."""
    return _DECODER.decode(text)


_ADVICE = (
    "eventflow hands handlers JSON events, as Lambda does. Send JSON bodies, or consume "
    "this queue yourself."
)


def decode_body(body: str) -> tuple[BodyKind, Any]:
    """Classify an SQS message body and return the payload Lambda would have delivered.

    Never raises: a body that cannot become an event, for whatever reason (not JSON, nested
    too deeply, an envelope with a malformed field), is ``INVALID``, so that a poison
    message fails its own event and never stops the source.

    Returns:
        ``(kind, payload)``; for ``INVALID`` the payload is a sentence saying why.
    """
    try:
        data = parse_json(body)
    except RecursionError:
        return BodyKind.INVALID, (
            "The SQS message body is JSON nested too deeply for Python to decode (beyond "
            f"its recursion limit). {_ADVICE}"
        )
    except Exception as exc:  # ValueError for bad JSON; anything else for a non-text body
        return BodyKind.INVALID, f"The SQS message body is not valid JSON ({exc}). {_ADVICE}"
    try:
        return _classify(data)
    except Exception as exc:
        # a known envelope whose fields are malformed (say, an UnsubscribeURL that is no URL)
        return BodyKind.INVALID, (
            "The SQS message body is JSON but could not be turned into an event "
            f"({type(exc).__name__}: {exc}); check the fields of the envelope it carries."
        )


def _classify(data: Any) -> tuple[BodyKind, Any]:
    if isinstance(data, dict):
        records = data.get("Records")
        if (
            isinstance(records, list)
            and records
            and all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records)
        ):
            return BodyKind.S3, data
        if data.get("Event") == "s3:TestEvent" and data.get("Service") == "Amazon S3":
            return BodyKind.S3_TEST_EVENT, data
        if data.get("Type") == "Notification" and "TopicArn" in data and "Message" in data:
            return BodyKind.SNS, sns_lambda_event(data)
        if "detail-type" in data and "source" in data and "detail" in data:
            return BodyKind.EVENTBRIDGE, data
    return BodyKind.JSON, data
