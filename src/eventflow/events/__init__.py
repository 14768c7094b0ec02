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

from ._eventbridge import EventBridgeEvent
from ._other import (
    CloudFormationCustomResourceEvent,
    CloudWatchLogEvent,
    CloudWatchLogsEvent,
    CodeCommitEvent,
    CodeCommitRecord,
    CodeCommitReference,
    CodePipelineArtifact,
    CodePipelineJobEvent,
    ConfigRuleEvent,
    IoTEventsEvent,
    SESEvent,
    SESRecord,
    decode_awslogs_data,
)
from ._s3 import S3Event, S3EventRecord, is_s3_test_event
from ._sns import SNSEvent, SNSRecord
from ._sqs import SQSEvent, SQSRecord

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
