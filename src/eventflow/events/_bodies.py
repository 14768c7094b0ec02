"""What an SQS message body is, decided once: the shape decisions the SQS sources act on.

Outside Lambda, S3, SNS and EventBridge events reach a service as SQS message bodies.
:func:`classify` tells them apart and returns the payload Lambda would have given the
function had the original service invoked it directly; the views of this package read the
same shapes by the same rules (:func:`~eventflow.events.is_s3_test_event` is the S3 test
event's one definition).
"""

from __future__ import annotations

import enum
from typing import Any

from ._s3 import is_s3_test_event
from ._sns import sns_lambda_event

__all__ = ("BodyKind", "classify")


class BodyKind(enum.Enum):
    """The kind of a decoded SQS message body (``INVALID``: it cannot be an event)."""

    S3 = "s3"
    S3_TEST_EVENT = "s3_test_event"
    SNS = "sns"
    EVENTBRIDGE = "eventbridge"
    JSON = "json"
    INVALID = "invalid"


def classify(data: Any) -> tuple[BodyKind, Any]:
    """The kind of the decoded body ``data`` and the payload Lambda would have delivered.

    The S3 test event comes first, bare or in the SNS envelope that carries it (S3 → SNS →
    SQS); an S3 notification is delivered as is, an SNS envelope as the SNS → Lambda event,
    an EventBridge envelope as is, and any other JSON as parsed. A known envelope with a
    malformed field may raise; the caller turns that into ``INVALID``.
    """
    if is_s3_test_event(data):
        return BodyKind.S3_TEST_EVENT, data
    if isinstance(data, dict):
        records = data.get("Records")
        if (
            isinstance(records, list)
            and records
            and all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records)
        ):
            return BodyKind.S3, data
        if data.get("Type") == "Notification" and "TopicArn" in data and "Message" in data:
            return BodyKind.SNS, sns_lambda_event(data)
        if "detail-type" in data and "source" in data and "detail" in data:
            return BodyKind.EVENTBRIDGE, data
    return BodyKind.JSON, data
