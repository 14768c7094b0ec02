"""The views of the seed's other asynchronous sources: published samples, what
``eventflow generate-event`` prints, and each source's natural idempotency key."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from eventflow import InvalidEvent
from eventflow._cli import main
from eventflow._idempotency import natural_key
from eventflow.events import (
    CloudFormationCustomResourceEvent,
    CloudWatchLogsEvent,
    CodeCommitEvent,
    CodePipelineJobEvent,
    ConfigRuleEvent,
    IoTEventsEvent,
    SESEvent,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"


def load(sample: str) -> Any:
    return json.loads((FIXTURES / sample).read_text(encoding="utf-8"))


def awslogs(document: dict[str, Any]) -> dict[str, Any]:
    data = base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()
    return {"awslogs": {"data": data}}


def generate(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """What ``eventflow generate-event ARGS`` prints, decoded."""
    assert main(["generate-event", *args]) == 0
    return json.loads(capsys.readouterr().out)


# -- published samples


def test_cloudwatch_logs_documented_document_decodes() -> None:
    doc = load("cloudwatch-logs/cloudwatch-logs-decoded-awsdocs.json")
    view = CloudWatchLogsEvent.from_dict(awslogs(doc))
    assert view.log_group == "/aws/lambda/echo-nodejs"
    assert view.log_stream == "2019/03/13/[$LATEST]94fa867e5374431291a7fc14e2f56ae7"
    assert view.subscription_filters == ("LambdaStream_cloudwatchlogs-node",)
    (event,) = view.log_events
    assert event.id == "34622316099697884706540976068822859012661220141643892546"
    assert event.timestamp == 1552518348220
    assert event.message.startswith("REPORT RequestId: 6234bffe")
    assert view.raw == doc


def test_cloudwatch_logs_real_data_decodes_every_log_event() -> None:
    view = CloudWatchLogsEvent.from_dict(load("cloudwatch-logs/cloudwatch-logs-event.json"))
    assert [(e.id, e.message) for e in view.log_events] == [
        ("eventId1", "[ERROR] First test message"),
        ("eventId2", "[ERROR] Second test message"),
    ]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("not base64!", "not base64"),
        (base64.b64encode(b"plain text").decode(), "not gzip-compressed"),
        (base64.b64encode(gzip.compress(b"{oops")).decode(), "not JSON"),
    ],
)
def test_cloudwatch_logs_bad_data_names_the_step(data: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent, match=fragment):
        CloudWatchLogsEvent.from_dict({"awslogs": {"data": data}})


def test_codepipeline_artifacts_and_user_parameters() -> None:
    job = CodePipelineJobEvent.from_dict(load("codepipeline/codepipeline-job.json"))
    (artifact,) = job.input_artifacts
    assert artifact.name == "ArtifactName"
    assert artifact.location_type == "S3"
    assert artifact.bucket is not None and artifact.bucket.startswith("the name of the bucket")
    assert job.artifact_credentials["accessKeyId"] == "AKIAIOSFODNN7EXAMPLE"
    with pytest.raises(InvalidEvent, match="UserParameters"):
        job.user_parameters_json()  # "some-input-such-as-a-URL" is not JSON


def test_config_rule_decodes_its_json_strings() -> None:
    event = load("config/config-rule-configuration-changed.json")
    view = ConfigRuleEvent.from_dict(event)
    item = view.configuration_item
    assert item is not None
    assert (item["resourceType"], item["resourceId"]) == (
        "AWS::EC2::Instance",
        "i-042dd005362091826",
    )
    assert view.invoking_event == json.loads(event["invokingEvent"])
    broken = dict(event, invokingEvent="{not json")
    with pytest.raises(InvalidEvent, match="invokingEvent"):
        ConfigRuleEvent.from_dict(broken)


def test_ses_headers_are_pairs_in_order() -> None:
    (record,) = SESEvent.from_dict(load("ses/ses-receipt.json")).records
    assert record.headers[0] == ("Return-Path", "<janedoe@example.com>")
    assert ("Subject", "Test Subject") in record.headers
    assert record.action["type"] == "Lambda"


# -- natural idempotency keys


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


KEYS = [
    (
        "cloudwatch-logs/cloudwatch-logs-event.json",
        CloudWatchLogsEvent,
        "cwlogs:123456789123:testLogGroup:testLogStream:eventId1:eventId2",
    ),
    (
        "codecommit/codecommit-trigger-awsdocs.json",
        CodeCommitEvent,
        "codecommit:31ade2c7-f889-47c5-a937-1cf99e2790e9",
    ),
    (
        "codecommit/codecommit-eventbridge-reference-updated-awsdocs.json",
        CodeCommitEvent,
        "eventbridge:01234567-EXAMPLE",
    ),
    (
        "codepipeline/codepipeline-job.json",
        CodePipelineJobEvent,
        "codepipeline:11111111-abcd-1111-abcd-111111abcdef",
    ),
    ("ses/ses-receipt.json", SESEvent, "ses:o3vrnil0e2ic28tr"),
    (
        "cloudformation/custom-resource-update.json",
        CloudFormationCustomResourceEvent,
        "cloudformation:arn:aws:cloudformation:us-east-1:xxxx:stack/xxxx/"
        "271845b0-f2e8-11ed-90ac-0eeb25b8ae21/xxxxxxxxx/xxxxx-d2a0-4dfb-ab1f-xxxxxx",
    ),
    ("config/config-rule-scheduled.json", ConfigRuleEvent, None),
    (
        "iot-events/iot-events-action-awsdocs.json",
        IoTEventsEvent,
        "iotevents:49f0f32f-1209-38a7-8a76-d6ca49dd0bc4",
    ),
]


@pytest.mark.parametrize(("sample", "view", "key"), KEYS, ids=[k[0] for k in KEYS])
def test_each_view_exposes_the_natural_key(sample: str, view: Any, key: str | None) -> None:
    event = load(sample)
    expected = key or f"config:rule-ec2-test:{_sha(event['resultToken'])}"
    assert view.from_dict(event).idempotency_key == expected
    assert natural_key(event) == expected  # what Idempotency(key=None) uses


def test_undecodable_awslogs_falls_back_to_the_hash() -> None:
    assert natural_key({"awslogs": {"data": "not base64"}}).startswith("sha256:")


# -- generate-event


def test_generate_cloudwatch_logs(capsys: pytest.CaptureFixture[str]) -> None:
    event = generate(
        capsys, "cloudwatch-logs", "--log-group", "/app", "--message", "a", "--message", "b"
    )
    view = CloudWatchLogsEvent.from_dict(event)
    assert (view.log_group, view.is_control) == ("/app", False)
    assert [e.message for e in view.log_events] == ["a", "b"]
    assert view.idempotency_key.startswith("cwlogs:123456789012:/app:")


def test_generate_cloudwatch_logs_control_message(capsys: pytest.CaptureFixture[str]) -> None:
    view = CloudWatchLogsEvent.from_dict(generate(capsys, "cloudwatch-logs", "--control"))
    assert view.is_control
    assert view.message_type == "CONTROL_MESSAGE"


@pytest.mark.parametrize("eventbridge", [False, True])
def test_generate_codecommit(capsys: pytest.CaptureFixture[str], eventbridge: bool) -> None:
    args = ["codecommit", "--repository", "repo", "--ref", "refs/heads/dev", "--commit", "abc1"]
    event = generate(capsys, *args, *(["--eventbridge"] if eventbridge else []))
    (record,) = CodeCommitEvent.from_dict(event).records
    assert record.repository == "repo"
    (reference,) = record.references
    assert (reference.ref, reference.commit) == ("refs/heads/dev", "abc1")
    assert (reference.old_commit is not None) == eventbridge


def test_generate_codepipeline(capsys: pytest.CaptureFixture[str]) -> None:
    event = generate(capsys, "codepipeline", "--user-parameters", '{"stage": "prod"}')
    job = CodePipelineJobEvent.from_dict(event)
    assert job.user_parameters_json() == {"stage": "prod"}
    assert job.input_artifacts[0].location_type == "S3"


def test_generate_ses(capsys: pytest.CaptureFixture[str]) -> None:
    event = generate(capsys, "ses", "--sender", "a@example.com", "--subject", "Hi")
    (record,) = SESEvent.from_dict(event).records
    assert (record.source, record.subject, record.spam) == ("a@example.com", "Hi", "PASS")
    assert record.message_id == event["Records"][0]["ses"]["mail"]["messageId"]


@pytest.mark.parametrize("request_type", ["Create", "Update", "Delete"])
def test_generate_cloudformation(capsys: pytest.CaptureFixture[str], request_type: str) -> None:
    event = generate(
        capsys, "cloudformation", "--request-type", request_type, "--properties", '{"Size": 3}'
    )
    view = CloudFormationCustomResourceEvent.from_dict(event)
    assert view.request_type == request_type
    assert view.resource_properties["Size"] == 3
    assert (view.physical_resource_id is None) == (request_type == "Create")
    assert (view.old_resource_properties is not None) == (request_type == "Update")


@pytest.mark.parametrize("scheduled", [False, True])
def test_generate_config(capsys: pytest.CaptureFixture[str], scheduled: bool) -> None:
    args = ["config", "--rule", "r", "--rule-parameters", '{"max": 2}']
    view = ConfigRuleEvent.from_dict(generate(capsys, *args, *(["--scheduled"] * scheduled)))
    assert (view.config_rule_name, view.rule_parameters) == ("r", {"max": 2})
    expected = "ScheduledNotification" if scheduled else "ConfigurationItemChangeNotification"
    assert view.message_type == expected
    assert (view.configuration_item is None) == scheduled


def test_generate_iot_events(capsys: pytest.CaptureFixture[str]) -> None:
    event = generate(capsys, "iot-events", "--state", "Normal", "--key", "d7")
    view = IoTEventsEvent.from_dict(event)
    assert (view.state_name, view.key_value, view.trigger_type) == ("Normal", "d7", "Message")


def test_generate_iot_rule_is_the_rules_select_output(capsys: pytest.CaptureFixture[str]) -> None:
    event = generate(capsys, "iot-rule", "--topic", "t/1", "--payload", '{"temp": 3}')
    assert (event["temp"], event["topic"]) == (3, "t/1")
    assert {"clientid", "timestamp"} <= set(event)
