"""One authority on what an SQS body is: SQSSource decides with ``eventflow.events``.

The S3 test event had two predicates that disagreed: ``events.is_s3_test_event`` took any
``{"Event": "s3:TestEvent"}`` and looked inside SNS envelopes, while the source's own
decoder wanted ``Service`` too and handed an enveloped test event to the handler as an SNS
event. Now there is one rule (both fields, as S3 sends them; bare or in the envelope that
carries it) and the source asks it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

import eventflow
from aws_support import make_queue, until
from eventflow.aws._shapes import decode_body
from eventflow.aws._sqs_source import SQSSource
from eventflow.events import is_s3_test_event
from eventflow.events._bodies import BodyKind

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
TEST_EVENT = json.loads((FIXTURES / "s3" / "s3-test-event.json").read_text(encoding="utf-8"))


def envelope(message: Any) -> dict[str, Any]:
    """An SNS Notification envelope as SNS delivers it to SQS (raw delivery off)."""
    return {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:uploads",
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(message),
        "Timestamp": "2026-01-02T03:04:05.678Z",
    }


# body -> whether it is the S3 test event; the first three are where the two predicates
# disagreed (events said yes, the source no; events said yes, the source said SNS)
CASES: dict[str, tuple[Any, bool]] = {
    "no Service": ({"Event": "s3:TestEvent"}, False),
    "another Service": ({"Event": "s3:TestEvent", "Service": 3}, False),
    "in an SNS envelope": (envelope(TEST_EVENT), True),
    "bare": (TEST_EVENT, True),
    "another event": ({"Event": "s3:ObjectCreated:Put", "Service": "Amazon S3"}, False),
    "SNS envelope of other JSON": (envelope({"Event": "s3:TestEvent"}), False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_source_and_the_events_module_agree_on_the_s3_test_event(case: str) -> None:
    body, expected = CASES[case]
    kind, _ = decode_body(json.dumps(body))
    assert is_s3_test_event(body) is expected
    assert (kind is BodyKind.S3_TEST_EVENT) is expected


async def test_sqs_source_deletes_the_enveloped_test_event_and_runs_what_only_names_it(
    aws: dict[str, Any], unique_name: str
) -> None:
    url, _ = await make_queue(aws["sqs"], unique_name)
    for body, _ in CASES.values():
        await aws["sqs"].send_message(QueueUrl=url, MessageBody=json.dumps(body))
    ran: list[Any] = []

    @eventflow.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    src = SQSSource(url, work, endpoint_url=aws["endpoint"], wait_time_seconds=1, pollers=1)
    async with eventflow.App(sources=[src]) as app:
        await until(lambda: src.statistics().deleted == len(CASES))
        await app.drain()
    stats = src.statistics()
    assert (stats.test_events, stats.submitted) == (2, 4)
    names = [e.get("Event") or e["Records"][0]["Sns"]["Message"] for e in ran]
    assert sorted(names) == sorted(
        ["s3:TestEvent", "s3:TestEvent", "s3:ObjectCreated:Put", '{"Event": "s3:TestEvent"}']
    )
    with anyio.fail_after(5):
        got = await aws["sqs"].receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert not got.get("Messages")
