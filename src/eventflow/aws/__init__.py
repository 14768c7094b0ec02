"""AWS adapters for eventflow, over aiobotocore.

Sources take events from SQS (S3 notifications, SNS subscriptions and EventBridge rules
all deliver there), one asynchronous invocation per message (:class:`SQSSource`) or in
batches as Lambda's SQS event-source mapping hands them (:class:`SQSBatchSource`), or from
SNS over HTTP(S); :class:`CodePipelineJob`, :class:`CustomResource` and
:class:`ConfigRuleEvaluation` make the call back that a CodePipeline job, a CloudFormation
custom resource and a Config rule owe AWS; sinks write dead letters and destination
records to SQS, SNS and EventBridge in Lambda's formats (and to Kinesis,
:class:`KinesisSink`); :func:`sink_for_arn` makes the sink for a queue, topic or bus ARN,
as Lambda's API names them; :class:`SQSEventQueue` puts the
app's event queue itself on SQS, shared by every process that uses it. Every adapter takes
``endpoint_url=None, region_name=None`` and an optional aiobotocore ``session``, so it
works against AWS, LocalStack or a moto server alike. Importing ``eventflow`` alone never
imports this package.
"""

from __future__ import annotations

from ._arn_sinks import queue_url_for_arn as queue_url_for_arn
from ._arn_sinks import sink_for_arn as sink_for_arn
from ._callbacks import CodePipelineJob as CodePipelineJob
from ._callbacks import ConfigRuleEvaluation as ConfigRuleEvaluation
from ._callbacks import CustomResource as CustomResource
from ._dynamodb_store import DynamoDBStore as DynamoDBStore
from ._errors import AWSError as AWSError
from ._errors import ResourceCheckFailed as ResourceCheckFailed
from ._kinesis import KinesisSink as KinesisSink
from ._sinks import EventBridgeSink as EventBridgeSink
from ._sinks import SinkStatistics as SinkStatistics
from ._sinks import SNSSink as SNSSink
from ._sinks import SQSSink as SQSSink
from ._sns_http import SNSEndpoint as SNSEndpoint
from ._sns_http import SNSEndpointStatistics as SNSEndpointStatistics
from ._sns_signature import SignatureError as SignatureError
from ._sns_signature import verify_sns_signature as verify_sns_signature
from ._sqs_batch import SQSBatchSource as SQSBatchSource
from ._sqs_batch import SQSBatchSourceStatistics as SQSBatchSourceStatistics
from ._sqs_queue import SQSEventQueue as SQSEventQueue
from ._sqs_queue import SQSEventQueueStatistics as SQSEventQueueStatistics
from ._sqs_source import SQSSource as SQSSource
from ._sqs_source import SQSSourceStatistics as SQSSourceStatistics

__all__ = (
    "AWSError",
    "CodePipelineJob",
    "ConfigRuleEvaluation",
    "CustomResource",
    "DynamoDBStore",
    "EventBridgeSink",
    "KinesisSink",
    "ResourceCheckFailed",
    "SNSEndpoint",
    "SNSEndpointStatistics",
    "SNSSink",
    "SQSBatchSource",
    "SQSBatchSourceStatistics",
    "SQSEventQueue",
    "SQSEventQueueStatistics",
    "SQSSink",
    "SQSSource",
    "SQSSourceStatistics",
    "SignatureError",
    "SinkStatistics",
    "queue_url_for_arn",
    "sink_for_arn",
    "verify_sns_signature",
)

# reprs and docs name the public module, not the private one a class is defined in
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = "eventflow.aws"
del _name, _obj
