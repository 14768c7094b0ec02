"""``eventflow generate-event``: sample events in the formats AWS services send (spec §6).

Like ``sam local generate-event``, it prints one event as JSON on stdout, to feed to
``eventflow invoke --payload @file`` or to a handler's unit tests:

* ``s3 put`` / ``s3 delete``: an S3 event notification (keys form-encoded, as S3 sends them);
* ``sqs receive-message``: the event Lambda's SQS event source mapping hands a function;
* ``sns``: the event SNS hands a Lambda function (``Records[].Sns``);
* ``eventbridge``: an EventBridge envelope with your ``source``, ``detail-type`` and ``detail``;
* ``scheduled``: the event a scheduled EventBridge rule sends;
* ``cloudwatch-logs``: a CloudWatch Logs subscription delivery (``awslogs.data``: gzip, base64);
* ``codecommit``: a repository trigger's event (``--eventbridge``: the EventBridge form);
* ``codepipeline``: the job a Lambda invoke action receives;
* ``ses``: an SES receipt rule's event;
* ``cloudformation``: a custom resource request (Create, Update or Delete);
* ``config``: an AWS Config rule evaluation (change-triggered, or ``--scheduled``);
* ``iot-events``: an AWS IoT Events detector's Lambda action;
* ``iot-rule``: an IoT rule's Lambda action (the rule's own SELECT output: here ``*`` plus
  ``topic()``, ``clientid()`` and ``timestamp()``).

SAM CLI's flag names work too: ``--account-id`` for ``--account``, ``--topic NAME`` for an
SNS topic in ``--region`` / ``--account``, and ``--partition`` (``aws``) for the ARNs of the
S3, SQS, SNS and scheduled events.
"""

from __future__ import annotations

import argparse
import base64
import gzip
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
    "cloudformation_event",
    "cloudwatch_logs_event",
    "codecommit_event",
    "codepipeline_event",
    "config_rule_event",
    "eventbridge_event",
    "iot_events_event",
    "iot_rule_event",
    "s3_event",
    "scheduled_event",
    "ses_event",
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


def cloudwatch_logs_event(
    log_group: str, log_stream: str, messages: list[str], account: str, *, control: bool = False
) -> dict[str, Any]:
    """A CloudWatch Logs subscription delivery; ``control`` gives the CONTROL_MESSAGE."""
    now = int(time.time() * 1000)
    if control:
        doc: dict[str, Any] = {
            "messageType": "CONTROL_MESSAGE",
            "owner": "CloudwatchLogs",
            "logGroup": "",
            "logStream": "",
            "subscriptionFilters": [],
            "logEvents": [
                {
                    "id": "",
                    "timestamp": now,
                    "message": "CWL CONTROL MESSAGE: Checking health of destination Lambda.",
                }
            ],
        }
    else:
        doc = {
            "messageType": "DATA_MESSAGE",
            "owner": account,
            "logGroup": log_group,
            "logStream": log_stream,
            "subscriptionFilters": ["example-filter"],
            "logEvents": [
                {"id": str(uuid.uuid4().int)[:56], "timestamp": now + i, "message": message}
                for i, message in enumerate(messages)
            ],
        }
    data = base64.b64encode(gzip.compress(json.dumps(doc).encode("utf-8"))).decode("ascii")
    return {"awslogs": {"data": data}}


def codecommit_event(
    repository: str, ref: str, commit: str, region: str, account: str, *, eventbridge: bool
) -> dict[str, Any]:
    """A CodeCommit trigger's event, or its EventBridge "Repository State Change" form."""
    arn = f"arn:aws:codecommit:{region}:{account}:{repository}"
    user = f"arn:aws:iam::{account}:user/example"
    if eventbridge:
        detail = {
            "event": "referenceUpdated",
            "repositoryName": repository,
            "repositoryId": str(uuid.uuid4()),
            "referenceType": "tag" if ref.startswith("refs/tags/") else "branch",
            "referenceName": ref.rsplit("/", 1)[-1],
            "referenceFullName": ref,
            "commitId": commit,
            "oldCommitId": hashlib.sha1(commit.encode()).hexdigest(),  # a stand-in earlier commit
            "callerUserArn": user,
        }
        return eventbridge_event(
            "aws.codecommit", "CodeCommit Repository State Change", detail, region, account, [arn]
        )
    return {
        "Records": [
            {
                "awsRegion": region,
                "codecommit": {"references": [{"commit": commit, "ref": ref}]},
                "eventId": str(uuid.uuid4()),
                "eventName": "ReferenceChanges",
                "eventPartNumber": 1,
                "eventSource": "aws:codecommit",
                "eventSourceARN": arn,
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime()),
                "eventTotalParts": 1,
                "eventTriggerConfigId": str(uuid.uuid4()),
                "eventTriggerName": "example-trigger",
                "eventVersion": "1.0",
                "userIdentityARN": user,
            }
        ]
    }


def codepipeline_event(user_parameters: str, bucket: str, account: str) -> dict[str, Any]:
    """The job CodePipeline hands a Lambda invoke action."""
    return {
        "CodePipeline.job": {
            "id": str(uuid.uuid4()),
            "accountId": account,
            "data": {
                "actionConfiguration": {
                    "configuration": {
                        "FunctionName": "example-function",
                        "UserParameters": user_parameters,
                    }
                },
                "inputArtifacts": [
                    {
                        "name": "SourceArtifact",
                        "revision": None,
                        "location": {
                            "type": "S3",
                            "s3Location": {
                                "bucketName": bucket,
                                "objectKey": "example-pipeline/SourceArti/abcdef1.zip",
                            },
                        },
                    }
                ],
                "outputArtifacts": [],
                "artifactCredentials": {
                    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                    "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    "sessionToken": "EXAMPLE-SESSION-TOKEN",
                },
            },
        }
    }


def ses_event(
    sender: str, recipient: str, subject: str, region: str, account: str
) -> dict[str, Any]:
    """An SES receipt rule's event for one received message."""
    stamp = _now(ms=True)
    message_id = uuid.uuid4().hex[:20]
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    headers = [
        ("Return-Path", f"<{sender}>"),
        ("From", sender),
        ("Date", date),
        ("To", recipient),
        ("Message-ID", f"<{message_id}@example.com>"),
        ("Subject", subject),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=UTF-8"),
    ]
    passed = {"status": "PASS"}
    return {
        "Records": [
            {
                "eventVersion": "1.0",
                "ses": {
                    "mail": {
                        "commonHeaders": {
                            "from": [sender],
                            "to": [recipient],
                            "returnPath": sender,
                            "messageId": f"<{message_id}@example.com>",
                            "date": date,
                            "subject": subject,
                        },
                        "source": sender,
                        "timestamp": stamp,
                        "destination": [recipient],
                        "headers": [{"name": n, "value": v} for n, v in headers],
                        "headersTruncated": False,
                        "messageId": message_id,
                    },
                    "receipt": {
                        "recipients": [recipient],
                        "timestamp": stamp,
                        "spamVerdict": passed,
                        "dkimVerdict": passed,
                        "processingTimeMillis": 574,
                        "action": {
                            "type": "Lambda",
                            "invocationType": "Event",
                            "functionArn": (
                                f"arn:aws:lambda:{region}:{account}:function:example-function"
                            ),
                        },
                        "dmarcVerdict": passed,
                        "spfVerdict": passed,
                        "virusVerdict": passed,
                    },
                },
                "eventSource": "aws:ses",
            }
        ]
    }


def cloudformation_event(
    request_type: str,
    resource_type: str,
    properties: dict[str, Any],
    response_url: str,
    region: str,
    account: str,
) -> dict[str, Any]:
    """A CloudFormation custom resource request."""
    token = f"arn:aws:lambda:{region}:{account}:function:example-function"
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": token,
        "ResponseURL": response_url,
        "StackId": f"arn:aws:cloudformation:{region}:{account}:stack/example-stack/{uuid.uuid4()}",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "ExampleResource",
        "ResourceType": resource_type,
        "ResourceProperties": {"ServiceToken": token, **properties},
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = "example-physical-id"
    if request_type == "Update":
        event["OldResourceProperties"] = {"ServiceToken": token}
    return event


def config_rule_event(
    rule: str,
    resource_type: str,
    resource_id: str,
    parameters: dict[str, Any],
    region: str,
    account: str,
    *,
    scheduled: bool,
) -> dict[str, Any]:
    """An AWS Config rule evaluation request; invokingEvent and ruleParameters are JSON text."""
    now = _now(ms=True)
    invoking: dict[str, Any]
    if scheduled:
        invoking = {
            "awsAccountId": account,
            "notificationCreationTime": now,
            "messageType": "ScheduledNotification",
            "recordVersion": "1.0",
        }
    else:
        invoking = {
            "configurationItemDiff": None,
            "configurationItem": {
                "relatedEvents": [],
                "relationships": [],
                "configuration": {},
                "tags": {},
                "configurationItemCaptureTime": now,
                "awsAccountId": account,
                "configurationItemStatus": "OK",
                "resourceType": resource_type,
                "resourceId": resource_id,
                "resourceName": None,
                "awsRegion": region,
            },
            "notificationCreationTime": now,
            "messageType": "ConfigurationItemChangeNotification",
            "recordVersion": "1.3",
        }
    rule_id = f"config-rule-{uuid.uuid4().hex[:6]}"
    return {
        "version": "1.0",
        "invokingEvent": json.dumps(invoking),
        "ruleParameters": json.dumps(parameters),
        "resultToken": base64.b64encode(uuid.uuid4().bytes * 4).decode("ascii"),
        "eventLeftScope": False,
        "executionRoleArn": (
            f"arn:aws:iam::{account}:role/aws-service-role/config.amazonaws.com/"
            "AWSServiceRoleForConfig"
        ),
        "configRuleArn": f"arn:aws:config:{region}:{account}:config-rule/{rule_id}",
        "configRuleName": rule,
        "configRuleId": rule_id,
        "accountId": account,
        "evaluationMode": "DETECTIVE",
    }


def iot_events_event(detector_model: str, state: str, event_name: str, key: str) -> dict[str, Any]:
    """The default payload of an AWS IoT Events detector's Lambda action."""
    return {
        "event": {
            "eventName": event_name,
            "eventTime": int(time.time() * 1000),
            "payload": {
                "detector": {
                    "detectorModelName": detector_model,
                    "detectorModelVersion": "1",
                    "keyValue": key,
                },
                "eventTriggerDetails": {
                    "triggerType": "Message",
                    "inputName": "ExampleInput",
                    "messageId": str(uuid.uuid4()),
                },
                "actionExecutionId": str(uuid.uuid4()),
                "state": {"variables": {}, "stateName": state, "timers": {}},
            },
        }
    }


def iot_rule_event(topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What ``SELECT *, topic() AS topic, clientid() AS clientid, timestamp() AS timestamp``
    hands a Lambda action for a message of ``payload`` on ``topic``."""
    return {
        **payload,
        "topic": topic,
        "clientid": "example-thing",
        "timestamp": int(time.time() * 1000),
    }


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
    if kind == "scheduled":
        return scheduled_event(args.rule, args.region, args.account, args.partition)
    return _generate_more(args)


def _generate_more(args: argparse.Namespace) -> dict[str, Any]:
    kind = args.event_kind
    if kind == "cloudwatch-logs":
        messages = args.message or ["[ERROR] example log line"]
        return cloudwatch_logs_event(
            args.log_group, args.log_stream, messages, args.account, control=args.control
        )
    if kind == "codecommit":
        return codecommit_event(
            args.repository,
            args.ref,
            args.commit,
            args.region,
            args.account,
            eventbridge=args.eventbridge,
        )
    if kind == "codepipeline":
        return codepipeline_event(args.user_parameters, args.bucket, args.account)
    if kind == "ses":
        return ses_event(args.sender, args.recipient, args.subject, args.region, args.account)
    if kind == "cloudformation":
        properties = _json_object(args.properties, "--properties")
        return cloudformation_event(
            args.request_type,
            args.resource_type,
            properties,
            args.response_url,
            args.region,
            args.account,
        )
    if kind == "config":
        parameters = _json_object(args.rule_parameters, "--rule-parameters")
        return config_rule_event(
            args.rule,
            args.resource_type,
            args.resource_id,
            parameters,
            args.region,
            args.account,
            scheduled=args.scheduled,
        )
    if kind == "iot-events":
        return iot_events_event(args.detector_model, args.state, args.event_name, args.key)
    return iot_rule_event(args.topic, _json_object(args.payload, "--payload"))


def _cmd(args: argparse.Namespace) -> int:
    print(json.dumps(_generate(args), indent=2))
    return 0


def _where(
    parser: argparse.ArgumentParser, *, account: bool = True, partition: bool = False
) -> None:
    parser.add_argument("--region", default="us-east-1", help="AWS region (us-east-1)")
    if account:
        parser.add_argument(
            "--account",
            "--account-id",
            dest="account",
            default="123456789012",
            help="account ID (123456789012); --account-id is SAM CLI's name",
        )
    if partition:  # the kinds whose ARNs are made here
        parser.add_argument(
            "--partition", default="aws", help="ARN partition: aws, aws-cn, aws-us-gov... (aws)"
        )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``generate-event`` and its event kinds."""
    gen = sub.add_parser(
        "generate-event",
        help="print a sample event of an AWS source (S3, SQS, SNS, EventBridge, SES, ...)",
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
        _where(p, account=False, partition=True)
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
    _where(receive, partition=True)
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
    _where(sns, partition=True)
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
    _where(sched, partition=True)
    sched.set_defaults(func=_cmd)
    _add_more_kinds(kinds)


def _kind(
    kinds: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    parser = kinds.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    parser.set_defaults(func=_cmd)
    return parser


def _add_more_kinds(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cwl = _kind(kinds, "cloudwatch-logs", "a CloudWatch Logs subscription delivery")
    cwl.add_argument("--log-group", default="/aws/lambda/example", help="(/aws/lambda/example)")
    cwl.add_argument("--log-stream", default="2026/01/01/[$LATEST]0123456789abcdef", help="")
    cwl.add_argument("--message", action="append", default=[], help="a log line; repeat")
    cwl.add_argument(
        "--control", action="store_true", help="the CONTROL_MESSAGE CloudWatch Logs sends first"
    )
    _where(cwl)
    cc = _kind(kinds, "codecommit", "a CodeCommit repository trigger's event")
    cc.add_argument("--repository", default="example-repo", help="(example-repo)")
    cc.add_argument("--ref", default="refs/heads/main", help="(refs/heads/main)")
    cc.add_argument("--commit", default="5e493c6f3067653f3d04eca608b4901eb227078", help="")
    cc.add_argument(
        "--eventbridge", action="store_true", help="the EventBridge form (Repository State Change)"
    )
    _where(cc)
    cp = _kind(kinds, "codepipeline", "the job CodePipeline hands a Lambda invoke action")
    cp.add_argument("--user-parameters", default='{"stage": "test"}', help="UserParameters text")
    cp.add_argument("--bucket", default="codepipeline-us-east-1-example", help="artifact bucket")
    _where(cp)
    ses = _kind(kinds, "ses", "an SES receipt rule's event")
    ses.add_argument("--sender", default="sender@example.com", help="(sender@example.com)")
    ses.add_argument("--recipient", default="inbox@example.com", help="(inbox@example.com)")
    ses.add_argument("--subject", default="Example subject", help="(Example subject)")
    _where(ses)
    cfn = _kind(kinds, "cloudformation", "a CloudFormation custom resource request")
    cfn.add_argument("--request-type", choices=("Create", "Update", "Delete"), default="Create")
    cfn.add_argument("--resource-type", default="Custom::Example", help="(Custom::Example)")
    cfn.add_argument("--properties", default="{}", help="ResourceProperties, a JSON object")
    cfn.add_argument(
        "--response-url",
        default="https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/example",
        help="ResponseURL (point it at a local server to try the response)",
    )
    _where(cfn)
    cfg = _kind(kinds, "config", "an AWS Config rule evaluation request")
    cfg.add_argument("--rule", default="example-rule", help="configRuleName (example-rule)")
    cfg.add_argument("--resource-type", default="AWS::EC2::Instance", help="")
    cfg.add_argument("--resource-id", default="i-0123456789abcdef0", help="")
    cfg.add_argument("--rule-parameters", default="{}", help="ruleParameters, a JSON object")
    cfg.add_argument(
        "--scheduled", action="store_true", help="a periodic rule's ScheduledNotification"
    )
    _where(cfg)
    ie = _kind(kinds, "iot-events", "an AWS IoT Events detector's Lambda action")
    ie.add_argument("--detector-model", default="ExampleDetectorModel", help="")
    ie.add_argument("--state", default="Alarm", help="stateName (Alarm)")
    ie.add_argument("--event-name", default="alarmRaised", help="eventName (alarmRaised)")
    ie.add_argument("--key", default="device-1", help="the detector's keyValue (device-1)")
    ir = _kind(kinds, "iot-rule", "an IoT rule's Lambda action (SELECT *, topic(), ...)")
    ir.add_argument("--topic", default="devices/device-1/telemetry", help="MQTT topic")
    ir.add_argument("--payload", default='{"temperature": 21.5}', help="the message, JSON")
