"""``eventflow generate-event``: sample events in the formats AWS services send (spec §6).

Like ``sam local generate-event``, it prints one event as JSON on stdout, to feed to
``eventflow invoke --payload @file`` or to a handler's unit tests:

* ``s3 put`` / ``s3 delete``: an S3 event notification (keys form-encoded, as S3 sends them);
* ``sqs receive-message``: the event Lambda's SQS event source mapping hands a function;
* ``sns``: the event SNS hands a Lambda function (``Records[].Sns``);
* ``eventbridge``: an EventBridge envelope with your ``source``, ``detail-type`` and ``detail``;
* ``scheduled``: the event a scheduled EventBridge rule sends.

SAM CLI's flag names work too: ``--account-id`` for ``--account``, ``--topic NAME`` for a
topic in ``--region`` / ``--account``, and ``--partition`` (``aws``) for every ARN.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import time
import uuid
from typing import Any

from ._cli_common import CommandError, describe
from ._demo import s3_put_event

__all__ = (
    "add_parser",
    "eventbridge_event",
    "s3_event",
    "scheduled_event",
    "sns_event",
    "sqs_event",
)


def _now(ms: bool) -> str:
    t = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return f"{stamp}.{int(t % 1 * 1000):03d}Z" if ms else f"{stamp}Z"


def s3_event(
    kind: str, bucket: str, key: str, size: int, region: str, partition: str = "aws"
) -> dict[str, Any]:
    """An S3 ``ObjectCreated:Put`` or ``ObjectRemoved:Delete`` notification (spec §6.1)."""
    event = s3_put_event(bucket, key, size, region=region)
    record = event["Records"][0]
    record["s3"]["bucket"]["arn"] = f"arn:{partition}:s3:::{bucket}"
    if kind == "delete":
        record["eventName"] = "ObjectRemoved:Delete"
        obj = record["s3"]["object"]
        del obj["size"], obj["eTag"]  # delete notifications carry neither (spec §6.1)
    return event


def sqs_event(
    body: str, queue_name: str, region: str, account: str, partition: str = "aws"
) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping sends for one message (spec §6.7)."""
    sent = int(time.time() * 1000)
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                # SQS receipt handles are opaque base64 that starts "AQEB"
                "receiptHandle": "AQEB" + base64.b64encode(os.urandom(96)).decode(),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(sent),
                    "SenderId": account,
                    "ApproximateFirstReceiveTimestamp": str(sent + 1),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:{partition}:sqs:{region}:{account}:{queue_name}",
                "awsRegion": region,
            }
        ]
    }


def sns_event(
    topic_arn: str, message: str, subject: str | None, attributes: dict[str, str]
) -> dict[str, Any]:
    """The SNS → Lambda event for one notification (spec §6.3)."""
    region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else "us-east-1"
    host = f"https://sns.{region}.amazonaws.com"
    subscription = f"{topic_arn}:{uuid.uuid4()}"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": _now(ms=True),
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": f"{host}/SimpleNotificationService-EXAMPLE.pem",
                    "UnsubscribeUrl": (
                        f"{host}/?Action=Unsubscribe&SubscriptionArn={subscription}"
                    ),
                    "MessageAttributes": {
                        name: {"Type": "String", "Value": value}
                        for name, value in attributes.items()
                    },
                },
            }
        ]
    }


def eventbridge_event(
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    region: str,
    account: str,
    resources: list[str],
) -> dict[str, Any]:
    """An EventBridge envelope (spec §6.6)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": _now(ms=False),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def scheduled_event(rule: str, region: str, account: str, partition: str = "aws") -> dict[str, Any]:
    """The event a scheduled EventBridge rule sends its targets (spec §6.6)."""
    arn = f"arn:{partition}:events:{region}:{account}:rule/{rule}"
    return eventbridge_event("aws.events", "Scheduled Event", {}, region, account, [arn])


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option} must be a JSON object; {exc.msg} at {exc.pos}.") from None
    if not isinstance(value, dict):
        raise CommandError(f"{option} must be a JSON object, got {type(value).__name__}.")
    return value


def _attribute(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--attribute takes NAME=VALUE; got {text!r}")
    return name, value


def _generate(args: argparse.Namespace) -> dict[str, Any]:
    kind = args.event_kind
    if kind == "s3":
        return s3_event(args.s3_kind, args.bucket, args.key, args.size, args.region, args.partition)
    if kind == "sqs":
        return sqs_event(args.body, args.queue_name, args.region, args.account, args.partition)
    if kind == "sns":
        if args.topic_arn and args.topic:
            raise CommandError("Pass --topic-arn or --topic (a topic name), not both.")
        topic = args.topic or "example-topic"
        topic_arn = (
            args.topic_arn or f"arn:{args.partition}:sns:{args.region}:{args.account}:{topic}"
        )
        return sns_event(topic_arn, args.message, args.subject, dict(args.attribute))
    if kind == "eventbridge":
        detail = _json_object(args.detail, "--detail")
        return eventbridge_event(
            args.source, args.detail_type, detail, args.region, args.account, args.resource
        )
    return scheduled_event(args.rule, args.region, args.account, args.partition)


def _cmd(args: argparse.Namespace) -> int:
    print(json.dumps(_generate(args), indent=2))
    return 0


def _where(parser: argparse.ArgumentParser, *, account: bool = True) -> None:
    parser.add_argument("--region", default="us-east-1", help="AWS region (us-east-1)")
    if account:
        parser.add_argument(
            "--account",
            "--account-id",
            dest="account",
            default="123456789012",
            help="account ID (123456789012); --account-id is SAM CLI's name",
        )
    parser.add_argument(
        "--partition", default="aws", help="ARN partition: aws, aws-cn, aws-us-gov... (aws)"
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``generate-event`` and its event kinds."""
    gen = sub.add_parser(
        "generate-event",
        help="print a sample S3, SQS, SNS, EventBridge or scheduled event",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = gen.add_subparsers(dest="event_kind", required=True, metavar="KIND")
    s3 = kinds.add_parser("s3", help="S3 event notifications", description="S3 notifications.")
    s3_kinds = s3.add_subparsers(dest="s3_kind", required=True, metavar="put|delete")
    for name, text in (("put", "ObjectCreated:Put"), ("delete", "ObjectRemoved:Delete")):
        p = s3_kinds.add_parser(name, help=text, description=f"An S3 {text} notification.")
        p.add_argument("--bucket", default="example-bucket", help="bucket (example-bucket)")
        p.add_argument(
            "--key",
            default="uploads/photo 1.jpg",
            help="object key, unencoded; the event carries it form-encoded (uploads/photo 1.jpg)",
        )
        p.add_argument("--size", type=int, default=1024, help="object size in bytes (1024)")
        _where(p, account=False)
        p.set_defaults(func=_cmd)
    sqs = kinds.add_parser(
        "sqs", help="the SQS -> Lambda event", description="SQS events for Lambda."
    )
    sqs_kinds = sqs.add_subparsers(dest="sqs_kind", required=True, metavar="receive-message")
    receive = sqs_kinds.add_parser(
        "receive-message",
        help="one message, as Lambda's SQS event source mapping sends it",
        description="The event Lambda's SQS event source mapping sends for one message "
        "(as SAM CLI's 'generate-event sqs receive-message').",
    )
    receive.add_argument("--body", default="Hello from SQS!", help="message body (Hello from SQS!)")
    receive.add_argument("--queue-name", default="MyQueue", help="queue name (MyQueue)")
    _where(receive)
    receive.set_defaults(func=_cmd)
    sns = kinds.add_parser(
        "sns", help="the SNS -> Lambda event", description="The event SNS hands a function."
    )
    sns.add_argument("--topic-arn", help="topic ARN (arn:aws:sns:REGION:ACCOUNT:example-topic)")
    sns.add_argument("--topic", help="topic name, in --region and --account (SAM CLI's flag)")
    sns.add_argument("--message", default='{"hello": "world"}', help="the message text")
    sns.add_argument("--subject", default=None, help="subject (none: null, as SNS sends it)")
    sns.add_argument(
        "--attribute",
        type=_attribute,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a String message attribute; repeat for more",
    )
    _where(sns)
    sns.set_defaults(func=_cmd)
    eb = kinds.add_parser(
        "eventbridge",
        help="a custom EventBridge event",
        description="An EventBridge envelope with your source, detail-type and detail.",
    )
    eb.add_argument("--source", default="com.example.orders", help="(com.example.orders)")
    eb.add_argument("--detail-type", default="Order Placed", help="(Order Placed)")
    eb.add_argument("--detail", default='{"orderId": 42}', help="a JSON object")
    eb.add_argument(
        "--resource", action="append", default=[], metavar="ARN", help="a resource ARN; repeat"
    )
    _where(eb)
    eb.set_defaults(func=_cmd)
    sched = kinds.add_parser(
        "scheduled",
        help="a scheduled EventBridge rule's event",
        description="The event a scheduled EventBridge rule sends.",
    )
    sched.add_argument("--rule", default="my-schedule", help="rule name (my-schedule)")
    _where(sched)
    sched.set_defaults(func=_cmd)
