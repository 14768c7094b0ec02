"""AWS adapters for eventflow, over aiobotocore.

Sources take events from SQS (S3 notifications, SNS subscriptions and EventBridge rules
all deliver there) or from SNS over HTTP(S); sinks write dead letters and destination
records to SQS, SNS and EventBridge in Lambda's formats. Every adapter takes
``endpoint_url=None, region_name=None`` and an optional aiobotocore ``session``, so it
works against AWS, LocalStack or a moto server alike. Importing ``eventflow`` alone never
imports this package.
"""

from __future__ import annotations

from ._errors import AWSError as AWSError
from ._errors import ResourceCheckFailed as ResourceCheckFailed
from ._sqs_source import SQSSource as SQSSource
from ._sqs_source import SQSSourceStatistics as SQSSourceStatistics

__all__ = ("AWSError", "ResourceCheckFailed", "SQSSource", "SQSSourceStatistics")
