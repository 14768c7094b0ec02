"""Tests of the typed event views in ``eventflow.events``, over every AWS sample we hold.

The samples live in ``tests/fixtures/events`` (see its SOURCES.md). ``EXPECTED`` says, for every
JSON file there, which views parse it (with field values copied from the file) and which reject
it; a guard test fails when a sample appears without an entry.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import FrozenInstanceError, dataclass, fields
from pathlib import Path
from typing import Any

import pytest

import eventflow.events as events_module
from eventflow import InvalidEvent
from eventflow.events import (
    CloudFormationCustomResourceEvent,
    CloudWatchLogsEvent,
    CodeCommitEvent,
    CodeCommitReference,
    CodePipelineJobEvent,
    ConfigRuleEvent,
    EventBridgeEvent,
    IoTEventsEvent,
    S3Event,
    S3EventRecord,
    SESEvent,
    SNSEvent,
    SNSRecord,
    SQSEvent,
    SQSRecord,
    is_s3_test_event,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
NOT_EVENT_SUFFIXES = frozenset({".http", ".md", ".pem"})

S3_DOC = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html"
S3_EB_DOC = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html"


def load(sample: str) -> Any:
    return json.loads((FIXTURES / sample).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the expectation table


@dataclass(frozen=True)
class Parses:
    """The view parses the sample into exactly these records (field name → expected value).

    A name ending in "()" is a method to call, e.g. "json()".
    """

    records: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Rejects:
    """The view raises InvalidEvent with this fragment in its message."""

    fragment: str


def parses(*records: dict[str, Any]) -> Parses:
    return Parses(records)


VIEWS: dict[str, Callable[[object], tuple[Any, ...]]] = {
    "S3Event": lambda event: S3Event.from_dict(event).records,
    "SNSEvent": lambda event: SNSEvent.from_dict(event).records,
    "EventBridgeEvent": EventBridgeEvent.all_from_dict,
    "SQSEvent": lambda event: SQSEvent.from_dict(event).records,
    "CloudWatchLogsEvent": lambda event: (CloudWatchLogsEvent.from_dict(event),),
    "CodeCommitEvent": lambda event: CodeCommitEvent.from_dict(event).records,
    "CodePipelineJobEvent": lambda event: (CodePipelineJobEvent.from_dict(event),),
    "SESEvent": lambda event: SESEvent.from_dict(event).records,
    "CloudFormationCustomResourceEvent": lambda event: (
        CloudFormationCustomResourceEvent.from_dict(event),
    ),
    "ConfigRuleEvent": lambda event: (ConfigRuleEvent.from_dict(event),),
    "IoTEventsEvent": lambda event: (IoTEventsEvent.from_dict(event),),
}

RAW_DELIVERY = Rejects("not an SNS envelope")
NOT_JSON = Rejects("that is not JSON")
SNS_IN_SQS_NOT_EB = Rejects("is an SNS envelope, not an EventBridge event")
SNS_US_EAST_2_CERT = (
    "https://sns.us-east-2.amazonaws.com/"
    "SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
)
ARTIFACTS = "lambda-artifacts-deafc19498e3f2df"
POWERTOOLS_JSON = {"message": "hello world", "username": "lessa"}
SNS_GO_ATTRIBUTES = {
    "Test": {"Type": "String", "Value": "TestString"},
    "TestBinary": {"Type": "Binary", "Value": "TestBinary"},
}


def signed_sns(message_id: str, subject: str | None, version: str) -> dict[str, Parses | Rejects]:
    """The ten signed samples are the same four messages in two spellings."""
    return {
        "SNSEvent": parses(
            {
                "message": "Hello world",
                "message_id": message_id,
                "subject": subject,
                "signature_version": version,
                "signing_cert_url": SNS_US_EAST_2_CERT,
                "message_attributes": {},
            }
        ),
        "S3Event": NOT_JSON,
    }


# Views absent from an entry must raise InvalidEvent (with any message).
EXPECTED: dict[str, dict[str, Parses | Rejects]] = {
    # ---- s3/
    "s3/s3-put.json": {
        "S3Event": parses(
            {
                "bucket": ARTIFACTS,
                "key": "b21b84d653bb07b05b1e6b33684dc11b",
                "event_name": "ObjectCreated:Put",
                "size": 1305107,
                "etag": "b21b84d653bb07b05b1e6b33684dc11b",
                "version_id": None,
                "sequencer": "0C0F6F405D6ED209E1",
                "event_time": "2019-09-03T19:37:27.192Z",
                "region": "us-east-2",
            }
        ),
        "SNSEvent": Rejects("eventSource 'aws:s3'; SNSEvent accepts"),
    },
    "s3/s3-delete.json": {
        "S3Event": parses(
            {
                "bucket": ARTIFACTS,
                "key": "b21b84d653bb07b05b1e6b33684dc11b",
                "event_name": "ObjectRemoved:Delete",
                "size": None,
                "etag": None,
                "sequencer": "0C0F6F405D6ED209E1",
            }
        ),
    },
    "s3/s3-put-key-percent-encoded.json": {
        "S3Event": parses(
            {
                "bucket": "sourcebucket",
                "key": "Happy Face.jpg",
                "version_id": "version",
                "sequencer": "Happy Sequencer",
                "size": 1024,
                "event_time": "1970-01-01T00:00:00.123Z",
            }
        ),
    },
    "s3/s3-put-awsdocs.json": {
        "S3Event": parses(
            {
                "bucket": "mybucket",
                "key": "HappyFace.jpg",
                "etag": "d41d8cd98f00b204e9800998ecf8427e",
                "version_id": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                "sequencer": "0055AED6DCD90281E5",
                "region": "us-west-2",
            }
        ),
    },
    "s3/s3-test-event.json": {
        "S3Event": Rejects("is the S3 test event (s3:TestEvent)"),
        "EventBridgeEvent": Rejects("has no 'source' field"),
    },
    "s3/s3-eventbridge-object-created.json": {
        "S3Event": parses(
            {
                "bucket": "example-bucket",
                "key": "IMG_m7fzo3.jpg",
                "event_name": "ObjectCreated:Put",
                "size": 184662,
                "etag": "4e68adba0abe2dc8653dc3354e14c01d",
                "version_id": None,
                "sequencer": "006408CAD69598B05E",
                "event_time": "2023-03-08T17:50:14Z",
                "region": "eu-west-1",
            }
        ),
        "EventBridgeEvent": parses(
            {
                "id": "f5f1e65c-dc3a-93ca-6c1e-b1647eac7963",
                "source": "aws.s3",
                "detail_type": "Object Created",
                "account": "123456789012",
                "resources": ("arn:aws:s3:::example-bucket",),
                "version": "0",
            }
        ),
    },
    "s3/s3-eventbridge-object-deleted.json": {
        "S3Event": parses(
            {
                "bucket": "example-bucket",
                "key": "IMG_m7fzo3.jpg",
                "event_name": "ObjectRemoved:DeleteMarkerCreated",
                "size": None,
                "etag": None,
                "event_time": "2021-11-12T00:00:00Z",
                "region": "ca-central-1",
            }
        ),
        "EventBridgeEvent": parses(
            {"id": "2ee9cc15-d022-99ea-1fb8-1b1bac4850f9", "detail_type": "Object Deleted"}
        ),
    },
    "s3/sqs-lambda-event-s3-notification.json": {
        "S3Event": parses(
            {
                "bucket": "xxx",
                "key": "test.pdf",
                "size": 104681,
                "version_id": "yd3d4HaWOT2zguDLvIQLU6ptDTwKBnQV",
                "event_time": "2023-04-12T20:43:38.021Z",
                "region": "us-east-1",
            }
        ),
        "SQSEvent": parses(
            {
                "message_id": "ca3e7a89-c358-40e5-8aa0-5da01403c267",
                "event_source_arn": "arn:aws:sqs:us-east-1:123456789012:SQS",
                "md5_of_body": "16f4460f4477d8d693a5abe94fdbbd73",
                "message_attributes": {},
            }
        ),
        "SNSEvent": RAW_DELIVERY,
    },
    # ---- real-captured/
    "real-captured/eventbridge-s3-object-created.json": {
        "S3Event": parses(
            {
                "bucket": "s3-eb-unwrap-sourcebucket-7mop1gqlyrzu",
                "key": "s3-eb-template.yaml",
                "event_name": "ObjectCreated:Put",
                "size": 1565,
                "etag": "e56e21b1610dd94e9907f82b8d05b934",
                "event_time": "2024-03-20T23:56:16Z",
            }
        ),
        "EventBridgeEvent": parses(
            {"id": "78eac3e6-798f-c27e-49ec-bbe3be7bab7d", "account": "683517028648"}
        ),
    },
    "real-captured/sns-lambda-s3-notification.json": {
        "S3Event": parses(
            {
                "bucket": "s3-sns-unwrap-bucket-683517028648",
                "key": "samconfig.toml",
                "size": 221,
                "etag": "551277913a5ad93e0db069e673f23376",
                "event_time": "2024-03-14T21:52:13.311Z",
            }
        ),
        "SNSEvent": parses(
            {
                "message_id": "2d44624b-23f8-5e80-99d9-3c265035c5ae",
                "topic_arn": "arn:aws:sns:us-east-1:683517028648:s3-sns-unwrap-Topic-7Xaj1echf9dg",
                "subject": "Amazon S3 Notification",
                "message_attributes": {},
                "signing_cert_url": "https://sns.us-east-1.amazonaws.com/"
                "SimpleNotificationService-60eadc530605d63b8e62a523676ef735.pem",
            }
        ),
    },
    "real-captured/sqs-eventbridge-s3-object-created.json": {
        "S3Event": parses(
            {
                "bucket": "s3-eb-unwrap-sourcebucket-7mop1gqlyrzu",
                "key": "__init__.py",
                "size": 0,
                "event_time": "2024-03-26T18:05:54Z",
            }
        ),
        "EventBridgeEvent": parses({"id": "75012ec5-af4a-7e39-2dd4-a28b7bb8cde4"}),
        "SQSEvent": parses({"message_id": "ee95829a-ba32-471d-9684-34368ab9995e"}),
        "SNSEvent": RAW_DELIVERY,
    },
    "real-captured/sqs-rawsns-notification.json": {
        "SQSEvent": parses(
            {"message_id": "c2f72267-c1b4-432b-b35e-c27a337798d1", "body": "this is a raw message"}
        ),
        "SNSEvent": Rejects("(it is not JSON); with raw message delivery"),
        "S3Event": NOT_JSON,
    },
    "real-captured/sqs-rawsns-s3-notification.json": {
        "S3Event": parses(
            {
                "bucket": "unwraptestevents-bucket-683517028648",
                "key": "samconfig.toml",
                "etag": "9cc7da5febb07868706f59ab70d89981",
                "region": "us-west-2",
            }
        ),
        "SQSEvent": parses({"aws_region": "us-west-2"}),
        "SNSEvent": Rejects("(it has no 'Type' field); with raw message delivery"),
    },
    "real-captured/sqs-s3-notification.json": {
        "S3Event": parses(
            {
                "bucket": "sqs-s3-unwrap-bucket-683517028648",
                "key": "samconfig.toml",
                "etag": "8f6c039f567cc53694be2a275e452743",
            }
        ),
        "SQSEvent": parses({"message_id": "44103047-3123-4583-aed3-7224000351a8"}),
        "SNSEvent": RAW_DELIVERY,
    },
    "real-captured/sqs-sns-notification.json": {
        "SNSEvent": parses(
            {
                "message": "from sns",
                "message_id": "bf5ff648-5111-5dbe-ad4b-a82514ed6a35",
                "subject": None,
                "signature_version": "1",
                "unsubscribe_url": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
                "&SubscriptionArn=arn:aws:sns:us-east-1:683517028648:"
                "sqs-sns-unwrap-Topic-0Wj2eIrU5hrM:42e6130c-54b0-4cec-a8c0-7d0cc356ea4e",
            }
        ),
        "SQSEvent": parses({"message_id": "10ad507c-8389-4585-ae55-11d32ea71997"}),
        "S3Event": Rejects("The SNS envelope in the body of SQS record 0 has a 'Message' that is"),
        "EventBridgeEvent": SNS_IN_SQS_NOT_EB,
    },
    "real-captured/sqs-sns-s3-notification.json": {
        "S3Event": parses(
            {
                "bucket": "unwraptestevents-bucket-683517028648",
                "key": "firehose-s3-template.json",
                "size": 4314,
                "etag": "e77dffcd1756d6e8e5123ef1e0ce7c54",
                "sequencer": "0065FA0B4B104A6DAB",
                "event_time": "2024-03-19T22:01:47.135Z",
            }
        ),
        "SNSEvent": parses(
            {
                "message_id": "53c941f5-1d7a-5f8e-8ffe-1f8110f6e667",
                "subject": "Amazon S3 Notification",
                "timestamp": "2024-03-19T22:01:48.137Z",
            }
        ),
        "SQSEvent": parses({"message_id": "45405be4-2278-4eef-a29c-993898bb8917"}),
        "EventBridgeEvent": SNS_IN_SQS_NOT_EB,
    },
    # ---- sns/
    "sns/sns-lambda-event.json": {
        "SNSEvent": parses(
            {
                "message": "Hello from SNS!",
                "subject": "TestInvoke",
                "topic_arn": "arn:aws:sns:us-east-2:123456789012:sns-lambda",
                "message_attributes": SNS_GO_ATTRIBUTES,
                "timestamp": "2019-01-02T12:45:07.000Z",
                "signing_cert_url": "https://sns.us-east-2.amazonaws.com/SimpleNotification",
                "unsubscribe_url": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
            }
        ),
        "S3Event": Rejects("SNS record 0 has a 'Sns.Message' that is not JSON"),
        "SQSEvent": Rejects("eventSource 'aws:sns'; SQSEvent accepts only 'aws:sqs' records"),
    },
    "sns/sns-lambda-event-aws-lambda-go.json": {
        "SNSEvent": parses(
            {
                "message": "Hello from SNS!",
                "topic_arn": "arn:aws:sns:EXAMPLE",
                "subject": "TestInvoke",
                "timestamp": "2015-06-03T17:43:27.123Z",
                "message_attributes": SNS_GO_ATTRIBUTES,
            }
        ),
    },
    "sns/sqs-lambda-event-sns-envelope.json": {
        "SNSEvent": parses(
            {
                "message_id": "d88d4479-6ec0-54fe-b63f-1cf9df4bb16e",
                "topic_arn": "arn:aws:sns:eu-west-1:231436140809:powertools265",
                "subject": None,
                "json()": POWERTOOLS_JSON,
            }
        ),
        "SQSEvent": parses({"message_id": "79406a00-bf15-46ca-978c-22c3613fcb30"}),
        "S3Event": Rejects("The message of the SNS envelope in the body of SQS record 0 has no"),
    },
    "sns/sqs-lambda-event-sns-fifo-envelope.json": {
        "SNSEvent": parses(
            {
                "message_id": "a7c9d2fa-77fa-5184-9de9-89391027cc7d",
                "topic_arn": "arn:aws:sns:eu-west-1:231436140809:Test.fifo",
                "signature_version": None,
                "signature": None,
                "signing_cert_url": None,
                "json()": POWERTOOLS_JSON,
            }
        ),
        "SQSEvent": parses(
            {"event_source_arn": "arn:aws:sqs:eu-west-1:231436140809:Test.fifo"},
        ),
    },
    "sns/awsdocs/http-notification.json": {
        "SNSEvent": parses(
            {
                "message": "Hello world!",
                "message_id": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                "subject": "My First Message",
                "message_attributes": {},
                "signing_cert_url": "https://sns.us-west-2.amazonaws.com/"
                "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
            }
        ),
        "S3Event": Rejects("The SNS envelope has a 'Message' that is not JSON"),
    },
    "sns/awsdocs/http-subscription-confirmation.json": {
        "SNSEvent": Rejects("has 'Type' 'SubscriptionConfirmation', not 'Notification'"),
        "S3Event": Rejects("'SubscriptionConfirmation'"),
    },
    "sns/awsdocs/http-unsubscribe-confirmation.json": {
        "SNSEvent": Rejects("has 'Type' 'UnsubscribeConfirmation', not 'Notification'"),
    },
    "sns/signed/http-notification-sigv1-no-subject.json": signed_sns(
        "792cda85-518f-5dd3-9163-81d851212f3a", None, "1"
    ),
    "sns/signed/http-notification-sigv1-with-subject.json": signed_sns(
        "11405cc3-9ac7-56d5-b45d-079e8f7a8edf", "Hello world", "1"
    ),
    "sns/signed/http-notification-sigv2-no-subject.json": signed_sns(
        "17dea24b-55c2-540b-8362-f916557af765", None, "2"
    ),
    "sns/signed/http-notification-sigv2-with-subject.json": signed_sns(
        "4504e649-d933-5aa9-8199-bd14ccf05f0b", "Hello world", "2"
    ),
    "sns/signed/lambda-style-notification-sigv1-no-subject.json": signed_sns(
        "792cda85-518f-5dd3-9163-81d851212f3a", None, "1"
    ),
    "sns/signed/lambda-style-notification-sigv1-subject-null.json": signed_sns(
        "792cda85-518f-5dd3-9163-81d851212f3a", None, "1"
    ),
    "sns/signed/lambda-style-notification-sigv1-with-subject.json": signed_sns(
        "11405cc3-9ac7-56d5-b45d-079e8f7a8edf", "Hello world", "1"
    ),
    "sns/signed/lambda-style-notification-sigv2-no-subject.json": signed_sns(
        "17dea24b-55c2-540b-8362-f916557af765", None, "2"
    ),
    "sns/signed/lambda-style-notification-sigv2-subject-null.json": signed_sns(
        "17dea24b-55c2-540b-8362-f916557af765", None, "2"
    ),
    "sns/signed/lambda-style-notification-sigv2-with-subject.json": signed_sns(
        "4504e649-d933-5aa9-8199-bd14ccf05f0b", "Hello world", "2"
    ),
    # ---- eventbridge/
    "eventbridge/eventbridge-aws-service-event-ec2.json": {
        "EventBridgeEvent": parses(
            {
                "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
                "source": "aws.ec2",
                "detail_type": "EC2 Instance State-change Notification",
                "detail": {"instance_id": "i-1234567890abcdef0", "state": "terminated"},
                "time": "2017-12-22T18:43:48Z",
                "region": "us-west-1",
                "account": "111122223333",
                "resources": ("arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0",),
            }
        ),
        "S3Event": Rejects("has 'source' 'aws.ec2', not 'aws.s3'"),
    },
    "eventbridge/eventbridge-custom-event.json": {
        "EventBridgeEvent": parses(
            {
                "source": "test.service.com",
                "detail_type": "Test",
                "detail": {"a": "b"},
                "account": "0123456789",
                "time": "1900-01-01T00:00:00Z",
            }
        ),
    },
    "eventbridge/eventbridge-scheduled-event.json": {
        "EventBridgeEvent": parses(
            {
                "source": "aws.events",
                "detail_type": "Scheduled Event",
                "detail": {},
                "resources": ("arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule",),
            }
        ),
    },
    "eventbridge/eventbridge-scheduler-event.json": {
        # detail is the JSON text "{}" in this sample; the view decodes it.
        "EventBridgeEvent": parses(
            {"source": "aws.scheduler", "detail": {}, "region": "eu-central-1"}
        ),
    },
    # ---- eventbridge/event-patterns/: event-ruler's pattern-matching corpus. The "events" are
    # fragments without an envelope and the rest are patterns; no view accepts any of them.
    "eventbridge/event-patterns/event-ruler/arrayEvent1.json": {
        "EventBridgeEvent": Rejects("has no 'id' field"),
    },
    "eventbridge/event-patterns/event-ruler/arrayEvent2.json": {
        "EventBridgeEvent": Rejects("has no 'id' field"),
    },
    "eventbridge/event-patterns/event-ruler/arrayEvent3.json": {
        "EventBridgeEvent": Rejects("has no 'source' field"),
    },
    "eventbridge/event-patterns/event-ruler/arrayEvent4.json": {
        "EventBridgeEvent": Rejects("has no 'source' field"),
    },
    "eventbridge/event-patterns/event-ruler/arrayRule1.json": {
        "EventBridgeEvent": Rejects("has 'source' of type array, expected a string"),
    },
    "eventbridge/event-patterns/event-ruler/arrayRule2.json": {
        "EventBridgeEvent": Rejects("has 'source' of type array, expected a string"),
    },
    "eventbridge/event-patterns/event-ruler/arrayRule3.json": {
        "EventBridgeEvent": Rejects("has no 'source' field"),
    },
    "eventbridge/event-patterns/event-ruler/arrayRule4.json": {
        "EventBridgeEvent": Rejects("has no 'source' field"),
    },
    "eventbridge/event-patterns/event-ruler/correctness-cases.json": {
        "S3Event": Rejects("expects the event as a dict (decoded JSON), got list"),
    },
    "eventbridge/event-patterns/event-ruler/normalRulesWithOrWording.json": {
        "SNSEvent": Rejects("expects the event as a dict (decoded JSON), got list"),
    },
    "eventbridge/event-patterns/event-ruler/orRelationshipRules.json": {
        "EventBridgeEvent": Rejects("expects the event as a dict (decoded JSON), got list"),
    },
    "eventbridge/event-patterns/event-ruler/wrongOrRelationshipRules.json": {
        "SQSEvent": Rejects("expects the event as a dict (decoded JSON), got list"),
    },
    # ---- lambda/: invocation records (destination payloads), not events of these services
    "lambda/lambda-destination-on-failure.json": {
        "S3Event": Rejects("has no 'Records' field"),
        "EventBridgeEvent": Rejects("has no 'source' field"),
    },
    "lambda/lambda-destination-on-failure-awsdocs.json": {
        "SQSEvent": Rejects("has no 'Records' field"),
    },
    # ---- samcli-templates/: placeholders are ordinary strings
    "samcli-templates/S3Put.json": {
        "S3Event": parses(
            {
                "bucket": "{{{bucket}}}",
                "key": "{{{key}}}",
                "region": "{{{region}}}",
                "size": 1024,
                "etag": "0123456789abcdef0123456789abcdef",
            }
        ),
    },
    "samcli-templates/S3Delete.json": {
        "S3Event": parses(
            {"event_name": "ObjectRemoved:Delete", "size": None, "sequencer": "0A1B2C3D4E5F678901"}
        ),
    },
    "samcli-templates/ScheduledEvent.json": {
        # SAM CLI leaves "version" out of its generated scheduled event.
        "EventBridgeEvent": parses(
            {
                "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
                "version": None,
                "account": "{{{account_id}}}",
            }
        ),
    },
    "samcli-templates/Sns.json": {
        "SNSEvent": parses({"message": "{{{message}}}", "subject": "{{{subject}}}"}),
    },
    "samcli-templates/Sqs.json": {
        "SQSEvent": parses(
            {
                "message_id": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78",
                "body": "{{{body}}}",
                "receipt_handle": "MessageReceiptHandle",
            }
        ),
    },
    # ---- sqs/
    "sqs/sqs-lambda-event.json": {
        "SQSEvent": parses(
            {
                "message_id": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "body": "Test message.",
                "aws_region": "us-east-2",
                "message_attributes": {
                    "testAttr": {
                        "stringValue": "100",
                        "binaryValue": "base64Str",
                        "dataType": "Number",
                    }
                },
            },
            {"message_id": "2e1424d4-f796-459a-8184-9c92662be6da", "json()": {"message": "foo1"}},
        ),
        "S3Event": Rejects("SQS record 0 has a 'body' that is not JSON"),
        "EventBridgeEvent": Rejects("SQS record 0 has a 'body' that is not JSON"),
    },
    "sqs/sqs-lambda-event-message-attributes.json": {
        "SQSEvent": parses(
            {
                "message_id": "MessageID_1",
                "body": "Message Body",
                "md5_of_body": "fce0ea8dd236ccb3ed9b37dae260836f",
                "attributes": {
                    "ApproximateReceiveCount": "2",
                    "SentTimestamp": "1520621625029",
                    "SenderId": "AROAIWPX5BD2BHG722MW4:sender",
                    "ApproximateFirstReceiveTimestamp": "1520621634884",
                },
            }
        ),
    },
    "sqs/sqs-lambda-event-from-dlq.json": {
        "SQSEvent": parses(
            {
                "body": "hello world",
                "event_source_arn": "arn:aws:sqs:eu-central-1:123456789012:"
                "sqs-redrive-SampleDLQ-Emgp9MFSLBZm",
                "attributes": {
                    "DeadLetterQueueSourceArn": "arn:aws:sqs:eu-central-1:123456789012:"
                    "sqs-redrive-SampleQueue-RNvLCpwGmLi7",
                    "ApproximateReceiveCount": "2",
                    "SentTimestamp": "1713185156609",
                    "SenderId": "AMCXIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1713185156612",
                },
            }
        ),
    },
    "sqs/sqs-lambda-event-awsdocs.json": {
        "SQSEvent": parses(
            {
                "message_id": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "body": "test",
                "md5_of_body": "098f6bcd4621d373cade4e832627b4f6",
                "aws_region": "us-east-2",
            },
            {"message_id": "2e1424d4-f796-459a-8184-9c92662be6da", "message_attributes": {}},
        ),
    },
    # ---- the other asynchronous sources
    "cloudwatch-logs/cloudwatch-logs-event.json": {
        "CloudWatchLogsEvent": parses(
            {
                "message_type": "DATA_MESSAGE",
                "owner": "123456789123",
                "log_group": "testLogGroup",
                "log_stream": "testLogStream",
                "subscription_filters": ("testFilter",),
                "is_control": False,
                "policy_level": None,
            }
        ),
    },
    "cloudwatch-logs/cloudwatch-logs-decoded-awsdocs.json": {
        # the decoded document is not the event: the event carries it in awslogs.data
        "CloudWatchLogsEvent": Rejects("has no 'awslogs.data' field"),
    },
    "codecommit/codecommit-trigger-awsdocs.json": {
        "CodeCommitEvent": parses(
            {
                "event_id": "31ade2c7-f889-47c5-a937-1cf99e2790e9",
                "event_name": "ReferenceChanges",
                "repository": "lambda-pipeline-repo",
                "region": "us-east-2",
                "user_arn": "arn:aws:iam::123456789012:user/intern",
                "trigger_name": "index.handler",
                "references": (
                    CodeCommitReference(
                        ref="refs/heads/master",
                        commit="5e493c6f3067653f3d04eca608b4901eb227078",
                        old_commit=None,
                        created=False,
                        deleted=False,
                    ),
                ),
            }
        ),
    },
    "codecommit/codecommit-eventbridge-reference-updated-awsdocs.json": {
        "CodeCommitEvent": parses(
            {
                "event_id": "01234567-EXAMPLE",
                "event_name": "referenceUpdated",
                "repository": "MyDemoRepo",
                "repository_arn": "arn:aws:codecommit:us-east-2:123456789012:MyDemoRepo",
                "references": (
                    CodeCommitReference(
                        ref="refs/heads/myBranch",
                        commit="7f0103fMERGE",
                        old_commit="3e5983DESTINATION",
                        created=False,
                        deleted=False,
                    ),
                ),
            }
        ),
        "EventBridgeEvent": parses(
            {"source": "aws.codecommit", "detail_type": "CodeCommit Repository State Change"}
        ),
    },
    "codepipeline/codepipeline-job.json": {
        "CodePipelineJobEvent": parses(
            {
                "job_id": "11111111-abcd-1111-abcd-111111abcdef",
                "account_id": "111111111111",
                "user_parameters": "some-input-such-as-a-URL",
                "continuation_token": "A continuation token if continuing job",
                "output_artifacts": (),
            }
        ),
    },
    "ses/ses-receipt.json": {
        "SESEvent": parses(
            {
                "message_id": "o3vrnil0e2ic28tr",
                "source": "janedoe@example.com",
                "subject": "Test Subject",
                "sender": ("Jane Doe <janedoe@example.com>",),
                "recipients": ("johndoe@example.com",),
                "spam": "PASS",
                "virus": "PASS",
                "dmarc": "PASS",
            }
        ),
    },
    "cloudformation/custom-resource-create.json": {
        "CloudFormationCustomResourceEvent": parses(
            {
                "request_type": "Create",
                "resource_type": "Custom::MyType",
                "physical_resource_id": None,
                "old_resource_properties": None,
            }
        ),
    },
    "cloudformation/custom-resource-update.json": {
        "CloudFormationCustomResourceEvent": parses(
            {
                "request_type": "Update",
                "physical_resource_id": "xxxxxxxxx",
                "old_resource_properties": {
                    "ServiceToken": "arn:aws:lambda:us-east-1:xxxxx:function:xxxxx-xxxx-xxx",
                    "MyProps": "old",
                },
            }
        ),
    },
    "config/config-rule-configuration-changed.json": {
        "ConfigRuleEvent": parses(
            {
                "config_rule_name": "MyRule",
                "rule_parameters": {"desiredInstanceType": "t2.micro"},
                "message_type": "ConfigurationItemChangeNotification",
                "account_id": "0123456789012",
                "evaluation_mode": "DETECTIVE",
                "event_left_scope": False,
            }
        ),
    },
    "config/config-rule-scheduled.json": {
        "ConfigRuleEvent": parses(
            {
                "config_rule_name": "rule-ec2-test",
                "rule_parameters": {"test": "x"},
                "message_type": "ScheduledNotification",
                "configuration_item": None,
            }
        ),
    },
    "iot-events/iot-events-action-awsdocs.json": {
        "IoTEventsEvent": parses(
            {
                "event_name": "myChargedEvent",
                "event_time": 1567797571647,
                "detector_model_name": "AWS_IoTEvents_Hello_World1567793458261",
                "key_value": "100009",
                "action_execution_id": "49f0f32f-1209-38a7-8a76-d6ca49dd0bc4",
                "state_name": "Charged",
            }
        ),
    },
}

SAMPLES = sorted(EXPECTED)
CASES = [(sample, view) for sample in SAMPLES for view in VIEWS]


def value_of(record: object, name: str) -> Any:
    if name.endswith("()"):
        return getattr(record, name[:-2])()
    return getattr(record, name)


def test_every_json_sample_has_an_expectation() -> None:
    on_disk = {path.relative_to(FIXTURES).as_posix() for path in FIXTURES.rglob("*.json")}
    assert sorted(on_disk - EXPECTED.keys()) == [], "new samples: add them to EXPECTED"
    assert sorted(EXPECTED.keys() - on_disk) == [], "EXPECTED names samples that do not exist"


def test_the_other_sample_files_are_not_json_events() -> None:
    suffixes = {p.suffix for p in FIXTURES.rglob("*") if p.is_file() and p.suffix != ".json"}
    assert suffixes <= NOT_EVENT_SUFFIXES


@pytest.mark.parametrize(("sample", "view"), CASES, ids=[f"{s}::{v}" for s, v in CASES])
def test_sample(sample: str, view: str) -> None:
    event = load(sample)
    expected = EXPECTED[sample].get(view)
    if isinstance(expected, Parses):
        records = VIEWS[view](event)
        assert len(records) == len(expected.records)
        for record, wanted in zip(records, expected.records, strict=True):
            assert {name: value_of(record, name) for name in wanted} == wanted
        return
    with pytest.raises(InvalidEvent) as caught:
        VIEWS[view](event)
    if expected is not None:
        assert expected.fragment in str(caught.value)


@pytest.mark.parametrize(
    "sample", [s for s in SAMPLES if isinstance(EXPECTED[s].get("EventBridgeEvent"), Parses)]
)
def test_eventbridge_from_dict_agrees_with_all_from_dict(sample: str) -> None:
    event = load(sample)
    assert (EventBridgeEvent.from_dict(event),) == EventBridgeEvent.all_from_dict(event)


@pytest.mark.parametrize(
    "sample", [s for s in SAMPLES if isinstance(EXPECTED[s].get("S3Event"), Parses)]
)
def test_s3_record_raw_is_the_record_or_envelope(sample: str) -> None:
    for record in S3Event.from_dict(load(sample)).records:
        if "detail" in record.raw:
            assert record.raw["detail"]["bucket"]["name"] == record.bucket
        else:
            assert record.raw["s3"]["bucket"]["name"] == record.bucket


# --------------------------------------------------------------------------- building events


def classic_s3(key: str = "in/red+flower+%281%29.jpg", *, bucket: str = "photos") -> dict[str, Any]:
    event: dict[str, Any] = load("s3/s3-put-awsdocs.json")
    event["Records"][0]["s3"]["object"]["key"] = key
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    return event


def eventbridge_s3(key: str = "in/red flower (1).jpg") -> dict[str, Any]:
    event: dict[str, Any] = load("s3/s3-eventbridge-object-created.json")
    event["detail"]["object"]["key"] = key
    return event


def sns_envelope(message: object) -> dict[str, Any]:
    envelope: dict[str, Any] = load("sns/awsdocs/http-notification.json")
    envelope["Message"] = message if isinstance(message, str) else json.dumps(message)
    return envelope


def sns_lambda(message: object) -> dict[str, Any]:
    event: dict[str, Any] = load("sns/sns-lambda-event.json")
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def sqs(*bodies: object) -> dict[str, Any]:
    template = load("sqs/sqs-lambda-event.json")["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"message-{index}"
        record["body"] = body if isinstance(body, str) else json.dumps(body)
        records.append(record)
    return {"Records": records}


def spaced_json(value: object) -> str:
    """JSON as SNS writes envelopes into SQS: indented, with spaces around the colons."""
    return json.dumps(value, indent=2, separators=(",", " : "))


def edited(event: Any, path: tuple[str | int, ...], value: object) -> Any:
    """A copy of ``event`` with the item at ``path`` replaced (or deleted, for DELETE)."""
    event = copy.deepcopy(event)
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return event


DELETE = object()


# --------------------------------------------------------------------------- key decoding


@pytest.mark.parametrize(
    ("raw_key", "key"),
    [
        ("red+flower+%281%29.jpg", "red flower (1).jpg"),
        ("Happy%20Face.jpg", "Happy Face.jpg"),
        ("a%2Bb.txt", "a+b.txt"),
        ("in/red+flower.jpg", "in/red flower.jpg"),
        ("test%2Fkey", "test/key"),
        ("caf%C3%A9.txt", "café.txt"),
        ("plain.txt", "plain.txt"),
    ],
)
def test_classic_keys_are_url_decoded(raw_key: str, key: str) -> None:
    (record,) = S3Event.from_dict(classic_s3(raw_key)).records
    assert record.key == key
    assert record.raw["s3"]["object"]["key"] == raw_key


@pytest.mark.parametrize(
    ("raw_key", "decoded"),
    [("red flower (1).jpg", "red flower (1).jpg"), ("a+b%2B.txt", "a b+.txt")],
)
def test_eventbridge_keys_are_raw_unless_asked(raw_key: str, decoded: str) -> None:
    for event in (eventbridge_s3(raw_key), sqs(eventbridge_s3(raw_key))):
        assert S3Event.from_dict(event).records[0].key == raw_key
        assert S3Event.from_dict(event, decode_eventbridge_keys=True).records[0].key == decoded


def test_decoding_eventbridge_keys_leaves_classic_keys_decoded_once() -> None:
    event = sqs(classic_s3("a%252B.txt"), eventbridge_s3("b%2B.txt"))
    records = S3Event.from_dict(event, decode_eventbridge_keys=True).records
    assert [r.key for r in records] == ["a%2B.txt", "b+.txt"]


# --------------------------------------------------------------------------- EventBridge names


@pytest.mark.parametrize(
    ("detail_type", "detail", "event_name"),
    [
        ("Object Created", {"reason": "PutObject"}, "ObjectCreated:Put"),
        ("Object Created", {"reason": "POST Object"}, "ObjectCreated:Post"),
        ("Object Created", {"reason": "CopyObject"}, "ObjectCreated:Copy"),
        (
            "Object Created",
            {"reason": "CompleteMultipartUpload"},
            "ObjectCreated:CompleteMultipartUpload",
        ),
        ("Object Created", {"reason": "FutureReason"}, "ObjectCreated:FutureReason"),
        (
            "Object Deleted",
            {"reason": "DeleteObject", "deletion-type": "Permanently Deleted"},
            "ObjectRemoved:Delete",
        ),
        (
            "Object Deleted",
            {"reason": "DeleteObject", "deletion-type": "Delete Marker Created"},
            "ObjectRemoved:DeleteMarkerCreated",
        ),
        (
            "Object Deleted",
            {"reason": "Lifecycle Expiration", "deletion-type": "Permanently Deleted"},
            "LifecycleExpiration:Delete",
        ),
        (
            "Object Deleted",
            {"reason": "Lifecycle Expiration", "deletion-type": "Delete Marker Created"},
            "LifecycleExpiration:DeleteMarkerCreated",
        ),
        ("Object Restore Initiated", {}, "ObjectRestore:Post"),
        ("Object Restore Completed", {}, "ObjectRestore:Completed"),
        ("Object Restore Expired", {}, "ObjectRestore:Delete"),
        ("Object Tags Added", {}, "ObjectTagging:Put"),
        ("Object Tags Deleted", {}, "ObjectTagging:Delete"),
        ("Object ACL Updated", {}, "ObjectAcl:Put"),
        ("Object Storage Class Changed", {}, "LifecycleTransition"),
        ("Object Access Tier Changed", {}, "IntelligentTiering"),
    ],
)
def test_eventbridge_event_names(detail_type: str, detail: dict[str, str], event_name: str) -> None:
    event = eventbridge_s3()
    event["detail-type"] = detail_type
    del event["detail"]["reason"]
    event["detail"].update(detail)
    assert S3Event.from_dict(event).records[0].event_name == event_name


@pytest.mark.parametrize(
    ("detail_type", "remove", "fragment"),
    [
        (
            "AWS API Call via CloudTrail",
            None,
            "has 'detail-type' 'AWS API Call via CloudTrail', which is not an S3 object event",
        ),
        ("Object Created", "reason", "has no 'detail.reason' field"),
        ("Object Deleted", "deletion-type", "has no 'detail.deletion-type' field"),
    ],
)
def test_eventbridge_event_names_that_cannot_be_built(
    detail_type: str, remove: str | None, fragment: str
) -> None:
    event = load("s3/s3-eventbridge-object-deleted.json")
    event["detail-type"] = detail_type
    if remove:
        del event["detail"][remove]
    with pytest.raises(InvalidEvent) as caught:
        S3Event.from_dict(event)
    assert str(caught.value).startswith(f"The EventBridge event {fragment}")
    assert f"(see {S3_EB_DOC})" in str(caught.value)


# --------------------------------------------------------------------------- nestings


NOTIFICATION = classic_s3()
NESTINGS: dict[str, dict[str, Any]] = {
    "S3 direct": NOTIFICATION,
    "S3 → SNS → Lambda": sns_lambda(NOTIFICATION),
    "S3 → SNS → HTTP envelope": sns_envelope(NOTIFICATION),
    "S3 → SQS": sqs(NOTIFICATION),
    "S3 → SNS (raw) → SQS": sqs(json.dumps(NOTIFICATION)),
    "S3 → SNS → SQS, compact envelope": sqs(sns_envelope(NOTIFICATION)),
    "S3 → SNS → SQS, spaced envelope": sqs(spaced_json(sns_envelope(NOTIFICATION))),
}


@pytest.mark.parametrize("nesting", list(NESTINGS))
def test_s3_nestings(nesting: str) -> None:
    (record,) = S3Event.from_dict(NESTINGS[nesting]).records
    assert (record.bucket, record.key, record.event_name) == (
        "photos",
        "in/red flower (1).jpg",
        "ObjectCreated:Put",
    )
    assert record.raw == NOTIFICATION["Records"][0]


@pytest.mark.parametrize(
    "event", [eventbridge_s3(), sqs(eventbridge_s3())], ids=["S3 → EB", "S3 → EB → SQS"]
)
def test_s3_via_eventbridge(event: dict[str, Any]) -> None:
    (record,) = S3Event.from_dict(event).records
    assert (record.bucket, record.key, record.event_name) == (
        "example-bucket",
        "in/red flower (1).jpg",
        "ObjectCreated:Put",
    )
    assert record.raw == eventbridge_s3()


def test_an_sqs_batch_of_mixed_deliveries_keeps_order() -> None:
    event = sqs(
        classic_s3("one.txt", bucket="b1"),
        spaced_json(sns_envelope(classic_s3("two+2.txt", bucket="b2"))),
        eventbridge_s3("three 3.txt"),
    )
    records = S3Event.from_dict(event).records
    assert [(r.bucket, r.key) for r in records] == [
        ("b1", "one.txt"),
        ("b2", "two 2.txt"),
        ("example-bucket", "three 3.txt"),
    ]


def test_several_records_in_one_notification_are_flattened() -> None:
    notification = classic_s3("a.txt")
    second = copy.deepcopy(notification["Records"][0])
    second["s3"]["object"]["key"] = "b.txt"
    notification["Records"].append(second)
    records = S3Event.from_dict(sns_lambda(notification)).records
    assert [r.key for r in records] == ["a.txt", "b.txt"]


@pytest.mark.parametrize(
    ("shape", "subject"),
    [
        (sns_envelope({"orderId": 42}), "My First Message"),
        (sqs(spaced_json(sns_envelope({"orderId": 42}))), "My First Message"),
        (sns_lambda({"orderId": 42}), "TestInvoke"),
    ],
    ids=["envelope", "envelope in SQS", "Lambda"],
)
def test_every_sns_shape_gives_the_same_view(shape: dict[str, Any], subject: str) -> None:
    (record,) = SNSEvent.from_dict(shape).records
    assert record.json() == {"orderId": 42}
    assert record.subject == subject
    assert record.signature_version == "1"


def test_sns_raw_is_the_sns_message_mapping() -> None:
    event = load("sns/sns-lambda-event.json")
    (record,) = SNSEvent.from_dict(event).records
    assert record.raw is event["Records"][0]["Sns"]


def test_eventbridge_from_sqs_needs_exactly_one_record() -> None:
    first, second = eventbridge_s3(), load("eventbridge/eventbridge-custom-event.json")
    event = sqs(first, second)
    assert [e.id for e in EventBridgeEvent.all_from_dict(event)] == [first["id"], second["id"]]
    with pytest.raises(InvalidEvent) as caught:
        EventBridgeEvent.from_dict(event)
    assert "needs exactly one event, but the SQS event has 2 records" in str(caught.value)
    assert "all_from_dict()" in str(caught.value)
    assert EventBridgeEvent.all_from_dict({"Records": []}) == ()
    with pytest.raises(InvalidEvent, match="has 0 records"):
        EventBridgeEvent.from_dict({"Records": []})


def test_eventbridge_detail_text() -> None:
    event = load("eventbridge/eventbridge-custom-event.json")
    event["detail"] = '{"a": 1}'
    assert EventBridgeEvent.from_dict(event).detail == {"a": 1}
    for detail, fragment in [
        ("[1]", "has 'detail' of type string, expected an object"),
        ("not json", "has a 'detail' string that is not JSON"),
        ([1], "has 'detail' of type array, expected an object"),
    ]:
        event["detail"] = detail
        with pytest.raises(InvalidEvent) as caught:
            EventBridgeEvent.from_dict(event)
        assert str(caught.value).startswith(f"The event {fragment}")


# --------------------------------------------------------------------------- the S3 test event


TEST_EVENT = load("s3/s3-test-event.json")
TEST_EVENT_DELIVERIES: dict[str, tuple[Any, str]] = {
    "bare": (TEST_EVENT, "The event is"),
    "S3 → SQS": (sqs(TEST_EVENT), "The body of SQS record 0 is"),
    "S3 → SNS envelope": (sns_envelope(TEST_EVENT), "The message of the SNS envelope is"),
    "S3 → SNS → Lambda": (sns_lambda(TEST_EVENT), "The message of SNS record 0 is"),
    "S3 → SNS → SQS": (
        sqs(spaced_json(sns_envelope(TEST_EVENT))),
        "The message of the SNS envelope in the body of SQS record 0 is",
    ),
}


@pytest.mark.parametrize("delivery", list(TEST_EVENT_DELIVERIES))
def test_the_s3_test_event_is_not_an_s3_event(delivery: str) -> None:
    event, where = TEST_EVENT_DELIVERIES[delivery]
    assert is_s3_test_event(event)
    with pytest.raises(InvalidEvent) as caught:
        S3Event.from_dict(event)
    message = str(caught.value)
    assert message.startswith(f"{where} the S3 test event (s3:TestEvent)")
    assert "sends when a notification configuration is saved" in message
    assert "is_s3_test_event()" in message


@pytest.mark.parametrize(
    "event",
    [
        load("s3/s3-put.json"),
        sqs(TEST_EVENT, classic_s3()),
        sqs("s3:TestEvent"),
        {"Records": []},
        {"Records": "s3:TestEvent"},
        {"Type": "Notification", "Message": 5},
        {"Event": "s3:ObjectCreated:Put"},
        "s3:TestEvent",
        json.dumps(TEST_EVENT),
        [TEST_EVENT],
        None,
    ],
)
def test_other_values_are_not_the_s3_test_event(event: object) -> None:
    assert is_s3_test_event(event) is False


# --------------------------------------------------------------------------- malformed input

S3_PUT = load("s3/s3-put-awsdocs.json")
SQS_S3 = load("real-captured/sqs-s3-notification.json")
SNS_LAMBDA = load("sns/sns-lambda-event.json")
ENVELOPE = load("sns/awsdocs/http-notification.json")
SQS_PLAIN = load("sqs/sqs-lambda-event-message-attributes.json")
EB = load("eventbridge/eventbridge-custom-event.json")
EB_S3 = load("s3/s3-eventbridge-object-created.json")
OBJECT = ("Records", 0, "s3", "object")

MALFORMED: list[tuple[str, str, Any, str]] = [
    # S3, classic
    ("S3Event", "no bucket name", edited(S3_PUT, ("Records", 0, "s3", "bucket", "name"), DELETE),
     "S3 event record 0 has no 's3.bucket.name' field"),
    ("S3Event", "no key", edited(S3_PUT, (*OBJECT, "key"), DELETE),
     "S3 event record 0 has no 's3.object.key' field"),
    ("S3Event", "key not a string", edited(S3_PUT, (*OBJECT, "key"), 12),
     "S3 event record 0 has 's3.object.key' of type number, expected a string"),
    ("S3Event", "size as text", edited(S3_PUT, (*OBJECT, "size"), "1024"),
     "S3 event record 0 has 's3.object.size' of type string, expected an integer"),
    ("S3Event", "size boolean", edited(S3_PUT, (*OBJECT, "size"), True),
     "S3 event record 0 has 's3.object.size' of type boolean, expected an integer"),
    ("S3Event", "bucket null", edited(S3_PUT, ("Records", 0, "s3", "bucket"), None),
     "S3 event record 0 has 's3.bucket' of type null, expected an object"),
    ("S3Event", "no eventName", edited(S3_PUT, ("Records", 0, "eventName"), DELETE),
     "S3 event record 0 has no 'eventName' field"),
    ("S3Event", "Records not a list", {"Records": {}},
     "The event has 'Records' of type object, expected an array"),
    ("S3Event", "record not an object", {"Records": ["x"]},
     "The event has 'Records[0]' of type string, expected an object"),
    ("S3Event", "no eventSource", edited(S3_PUT, ("Records", 0, "eventSource"), DELETE),
     "Event record 0 has no 'eventSource' field"),
    ("S3Event", "foreign eventSource", edited(S3_PUT, ("Records", 0, "eventSource"), "aws:kinesis"),
     "Event record 0 has eventSource 'aws:kinesis'; S3Event accepts 'aws:s3', 'aws:sns' and"),
    ("S3Event", "empty object", {},
     "The event has no 'Records' field (S3 notification, SNS or SQS event for Lambda)"),
    # S3, nested
    ("S3Event", "SQS body not JSON", edited(SQS_S3, ("Records", 0, "body"), "{"),
     "SQS record 0 has a 'body' that is not JSON (Expecting property name"),
    ("S3Event", "SQS body an array", edited(SQS_S3, ("Records", 0, "body"), "[]"),
     "The body of SQS record 0 is a JSON array, expected an object"),
    ("S3Event", "SQS record without messageId", edited(SQS_S3, ("Records", 0, "messageId"), DELETE),
     "SQS record 0 has no 'messageId' field; expected an SQS event for Lambda"),
    ("S3Event", "nested record without key", sqs(edited(S3_PUT, (*OBJECT, "key"), DELETE)),
     "S3 event record 0 in the body of SQS record 0 has no 's3.object.key' field"),
    ("S3Event", "nested twice", sqs(sns_envelope(edited(S3_PUT, (*OBJECT, "size"), -1.5))),
     "S3 event record 0 in the message of the SNS envelope in the body of SQS record 0 has"
     " 's3.object.size' of type number, expected an integer"),
    ("S3Event", "SNS record without Sns", edited(SNS_LAMBDA, ("Records", 0, "Sns"), DELETE),
     "SNS record 0 has no 'Sns' field; expected an SNS event for Lambda"),
    ("S3Event", "SNS message a number", edited(SNS_LAMBDA, ("Records", 0, "Sns", "Message"), 1),
     "SNS record 0 has 'Sns.Message' of type number, expected a string"),
    ("S3Event", "envelope message an array", sns_envelope("[1]"),
     "The message of the SNS envelope is a JSON array, expected an object"),
    # S3, EventBridge
    ("S3Event", "EB without bucket", edited(EB_S3, ("detail", "bucket"), DELETE),
     "The EventBridge event has no 'detail.bucket.name' field; expected an S3 event delivered"),
    ("S3Event", "EB detail an array", edited(EB_S3, ("detail",), []),
     "The EventBridge event has 'detail' of type array, expected an object"),
    ("S3Event", "EB not from S3", EB,
     "The EventBridge event has 'source' 'test.service.com', not 'aws.s3'"),
    # SNS
    ("SNSEvent", "envelope without Message", edited(ENVELOPE, ("Message",), DELETE),
     "The SNS envelope has no 'Message' field; expected an SNS Notification"),
    ("SNSEvent", "Lambda record without Type", edited(SNS_LAMBDA, ("Records", 0, "Sns", "Type"),
                                                      DELETE),
     "SNS record 0 has no 'Sns.Type' field"),
    ("SNSEvent", "attributes a list",
     edited(SNS_LAMBDA, ("Records", 0, "Sns", "MessageAttributes"), []),
     "SNS record 0 has 'Sns.MessageAttributes' of type array, expected an object"),
    ("SNSEvent", "attribute a string", edited(ENVELOPE, ("MessageAttributes",), {"kind": "x"}),
     "The SNS envelope has 'MessageAttributes.kind' of type string, expected an object"),
    ("SNSEvent", "subject a number", edited(ENVELOPE, ("Subject",), 5),
     "The SNS envelope has 'Subject' of type number, expected a string"),
    ("SNSEvent", "unknown Type", edited(ENVELOPE, ("Type",), "Other"),
     "The SNS envelope has 'Type' 'Other', not 'Notification'"),
    ("SNSEvent", "SQS body a JSON string", sqs(json.dumps("text")),
     "The body of SQS record 0 is not an SNS envelope (it has a JSON string)"),
    ("SNSEvent", "neither shape", {"Message": "x"},
     "The event has neither a 'Records' field (SNS or SQS event for Lambda) nor a 'Type'"),
    ("SNSEvent", "S3 records", S3_PUT,
     "Event record 0 has eventSource 'aws:s3'; SNSEvent accepts 'aws:sns' records and 'aws:sqs'"
     " records of SNS envelopes (read 'aws:s3' records with S3Event)"),
    # SQS
    ("SQSEvent", "attribute not a string",
     edited(SQS_PLAIN, ("Records", 0, "attributes", "ApproximateReceiveCount"), 2),
     "SQS record 0 has 'attributes.ApproximateReceiveCount' of type number, expected a string"),
    ("SQSEvent", "body null", edited(SQS_PLAIN, ("Records", 0, "body"), None),
     "SQS record 0 has 'body' of type null, expected a string"),
    ("SQSEvent", "message attribute a list",
     edited(SQS_PLAIN, ("Records", 0, "messageAttributes", "Attribute1"), []),
     "SQS record 0 has 'messageAttributes.Attribute1' of type array, expected an object"),
    ("SQSEvent", "no eventSourceARN", edited(SQS_PLAIN, ("Records", 0, "eventSourceARN"), DELETE),
     "SQS record 0 has no 'eventSourceARN' field"),
    ("SQSEvent", "SNS records", SNS_LAMBDA,
     "Event record 0 has eventSource 'aws:sns'; SQSEvent accepts only 'aws:sqs' records"
     " (read 'aws:sns' records with SNSEvent)"),
    # EventBridge
    ("EventBridgeEvent", "no detail-type", edited(EB, ("detail-type",), DELETE),
     "The event has no 'detail-type' field; expected an EventBridge event"),
    ("EventBridgeEvent", "no detail", edited(EB, ("detail",), DELETE),
     "The event has no 'detail' field"),
    ("EventBridgeEvent", "no id", edited(EB, ("id",), DELETE), "The event has no 'id' field"),
    ("EventBridgeEvent", "resources a string", edited(EB, ("resources",), "arn"),
     "The event has 'resources' of type string, expected an array"),
    ("EventBridgeEvent", "resource a number", edited(EB, ("resources",), [1]),
     "The event has 'resources[0]' of type number, expected a string"),
    ("EventBridgeEvent", "SQS body without source", sqs({"id": "x"}),
     "The body of SQS record 0 has no 'source' field; expected an EventBridge event"),
    ("EventBridgeEvent", "SQS body an SNS envelope", sqs(sns_envelope(EB)),
     "The body of SQS record 0 is an SNS envelope, not an EventBridge event"),
    ("EventBridgeEvent", "S3 records", S3_PUT,
     "Event record 0 has eventSource 'aws:s3'; EventBridgeEvent accepts 'aws:sqs' records of"
     " EventBridge events (read 'aws:s3' records with S3Event)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("view", "event", "message"),
    [(view, event, message) for view, _, event, message in MALFORMED],
    ids=[f"{view}: {name}" for view, name, _, _ in MALFORMED],
)
def test_malformed_events_name_the_field(view: str, event: Any, message: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        VIEWS[view](event)
    assert str(caught.value).startswith(message)
    assert "(see https://docs.aws.amazon.com/" in str(caught.value)


def test_the_documented_message_for_a_missing_bucket_name() -> None:
    event = edited(S3_PUT, ("Records", 0, "s3", "bucket", "name"), DELETE)
    with pytest.raises(InvalidEvent) as caught:
        S3Event.from_dict(event)
    assert str(caught.value) == (
        "S3 event record 0 has no 's3.bucket.name' field; expected an S3 event notification"
        f" (see {S3_DOC})."
    )


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize(
    ("value", "type_name"),
    [([], "list"), ("{}", "str"), (b"{}", "bytes"), (None, "NoneType"), (3, "int")],
)
def test_non_dict_input_names_its_type(view: str, value: object, type_name: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        VIEWS[view](value)
    message = str(caught.value)
    assert f"from_dict() expects the event as a dict (decoded JSON), got {type_name}" in message
    assert ("json.loads()" in message) == isinstance(value, str | bytes)


def test_sns_json_of_a_message_that_is_not_json() -> None:
    (record,) = SNSEvent.from_dict(load("sns/awsdocs/http-notification.json")).records
    with pytest.raises(InvalidEvent) as caught:
        record.json()
    assert str(caught.value).startswith(
        "SNS message '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324' has a 'Message' that is not JSON"
    )


def test_sqs_json_of_a_body_that_is_not_json() -> None:
    (record,) = SQSEvent.from_dict(SQS_PLAIN).records
    with pytest.raises(InvalidEvent) as caught:
        record.json()
    assert str(caught.value).startswith("SQS message 'MessageID_1' has a 'body' that is not JSON")


def test_a_body_nested_too_deeply_is_invalid() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for view in ("S3Event", "EventBridgeEvent"):
        with pytest.raises(InvalidEvent, match="has a 'body' nested too deeply to decode"):
            VIEWS[view](sqs(deep))
    with pytest.raises(InvalidEvent, match="is not an SNS envelope"):
        SNSEvent.from_dict(sqs(deep))
    assert is_s3_test_event(sqs(deep)) is False


def test_invalid_event_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="has no 'Records' field"):
        SQSEvent.from_dict({})


# --------------------------------------------------------------------------- robustness


WRONG_VALUES: tuple[object, ...] = (None, True, 7, "x", [], {})


def mutations(value: Any) -> Iterator[Any]:
    """Copies of ``value`` with one node removed or replaced by a value of another type.

    JSON text inside strings (SQS bodies, SNS messages) is mutated too.
    """
    yield from (bad for bad in WRONG_VALUES if type(bad) is not type(value))
    if isinstance(value, dict):
        for key, item in value.items():
            yield {k: v for k, v in value.items() if k != key}
            for mutant in mutations(item):
                yield {**value, key: mutant}
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield value[:index] + value[index + 1 :]
            for mutant in mutations(item):
                yield [*value[:index], mutant, *value[index + 1 :]]
    elif isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            inner = json.loads(value)
        except ValueError:
            return
        for mutant in mutations(inner):
            yield json.dumps(mutant)


@pytest.mark.parametrize("sample", SAMPLES)
def test_damaged_samples_raise_only_invalid_event(sample: str) -> None:
    count = 0
    for mutant in mutations(load(sample)):
        count += 1
        for view in VIEWS.values():
            try:
                view(mutant)
            except InvalidEvent:
                pass
        assert isinstance(is_s3_test_event(mutant), bool)
    assert count > len(WRONG_VALUES)


# --------------------------------------------------------------------------- the classes


def test_records_and_events_are_frozen_and_slotted() -> None:
    s3_record = S3Event.from_dict(load("s3/s3-put.json")).records[0]
    sns_record = SNSEvent.from_dict(load("sns/sns-lambda-event.json")).records[0]
    sqs_record = SQSEvent.from_dict(load("sqs/sqs-lambda-event.json")).records[0]
    eventbridge = EventBridgeEvent.from_dict(load("eventbridge/eventbridge-custom-event.json"))
    instances: list[Any] = [
        s3_record,
        sns_record,
        sqs_record,
        eventbridge,
        S3Event((s3_record,)),
        SNSEvent((sns_record,)),
        SQSEvent((sqs_record,)),
    ]
    for instance in instances:
        assert not hasattr(instance, "__dict__")
        name = fields(instance)[0].name
        with pytest.raises(FrozenInstanceError):
            setattr(instance, name, None)
    assert isinstance(s3_record, S3EventRecord)
    assert isinstance(sns_record, SNSRecord)
    assert isinstance(sqs_record, SQSRecord)


def test_public_names() -> None:
    assert isinstance(events_module.__all__, tuple)
    assert set(events_module.__all__) == {
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
    }
    for name in events_module.__all__:
        assert getattr(events_module, name).__doc__
