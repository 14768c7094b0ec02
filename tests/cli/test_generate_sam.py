"""``eventflow generate-event`` beside SAM CLI's: the sqs kind, SAM's flag names, S3's fields."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime

from cli_support import Cli
from eventflow.events import EventBridgeEvent, S3Event, SNSEvent, SQSEvent


def test_sqs_receive_message_is_the_event_lambda_gets_from_sqs(cli: Cli) -> None:
    result = cli(
        "generate-event", "sqs", "receive-message", "--body", '{"orderId": 42}',
        "--queue-name", "orders", "--account-id", "111122223333", "--region", "eu-west-1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    raw = json.loads(result.stdout)
    record = SQSEvent.from_dict(raw).records[0]
    assert record.json() == {"orderId": 42}
    assert record.event_source_arn == "arn:aws:sqs:eu-west-1:111122223333:orders"
    assert record.aws_region == "eu-west-1"
    assert record.md5_of_body == hashlib.md5(b'{"orderId": 42}').hexdigest()
    assert record.attributes["ApproximateReceiveCount"] == "1"
    sent = int(record.attributes["SentTimestamp"])
    assert abs(sent / 1000 - time.time()) < 60  # epoch milliseconds, now
    # the same keys as SAM CLI's template, camelCase as Lambda sends them
    assert set(raw["Records"][0]) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes",
        "md5OfBody", "eventSource", "eventSourceARN", "awsRegion",
    }  # fmt: skip


def test_sam_flag_names_are_aliases(cli: Cli) -> None:
    sns = cli(
        "generate-event", "sns", "--topic", "orders", "--account-id", "111122223333",
        "--partition", "aws-cn", "--region", "cn-north-1",
    )  # fmt: skip
    assert sns.returncode == 0, sns.stderr
    topic = SNSEvent.from_dict(json.loads(sns.stdout)).records[0].topic_arn
    assert topic == "arn:aws-cn:sns:cn-north-1:111122223333:orders"
    sched = cli(
        "generate-event", "scheduled", "--account-id", "111122223333", "--partition", "aws-us-gov"
    )
    assert sched.returncode == 0, sched.stderr
    event = EventBridgeEvent.from_dict(json.loads(sched.stdout))
    assert event.account == "111122223333"
    assert event.resources[0].startswith("arn:aws-us-gov:events:us-east-1:111122223333:rule/")
    both = cli("generate-event", "sns", "--topic", "a", "--topic-arn", "arn:aws:sns:x:1:b")
    assert both.returncode == 2 and "not both" in both.stderr


def test_s3_event_time_has_real_milliseconds_and_sequencers_have_18_hex_digits(cli: Cli) -> None:
    before = time.time()
    result = cli("generate-event", "s3", "put", "--bucket", "photos", "--partition", "aws-cn")
    after = time.time()
    assert result.returncode == 0, result.stderr
    raw = json.loads(result.stdout)["Records"][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", raw["eventTime"])
    stamp = datetime.fromisoformat(raw["eventTime"].replace("Z", "+00:00")).timestamp()
    assert int(before * 1000) / 1000 <= stamp <= after  # the milliseconds are the clock's
    assert re.fullmatch(r"[0-9A-F]{18}", raw["s3"]["object"]["sequencer"])
    assert raw["s3"]["bucket"]["arn"] == "arn:aws-cn:s3:::photos"
    assert S3Event.from_dict({"Records": [raw]}).records[0].bucket == "photos"
